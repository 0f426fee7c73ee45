"""Four worker processes of the example ASGI app on loopback, sharing PostgreSQL and Redis.

uvicorn runs examples/fastapi_app with ``--workers 4``; the identity provider is a
MockIdP served over loopback HTTP; the database is a PostgreSQL database of this test's
own (created and dropped here) and Redis a redis-server of its own (so it can be
killed). Every request opens a new connection, so the kernel spreads them over the
workers. Bounded: the whole module takes well under a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from own_services import RedisServer, free_port, wait_for_port

from federation.sessions import generate_private_key_pem
from federation.testing import MockIdP

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
POSTGRES = os.environ.get("FEDERATION_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
WORKERS = 4


def _missing(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


class Database:
    """A PostgreSQL database of this module's own."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"fedscale_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
        except psycopg.Error as exc:
            _missing(f"PostgreSQL not reachable at {POSTGRES} ({type(exc).__name__})")
        base = POSTGRES.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Fleet:
    """uvicorn with four workers of the example app, and a client opening a connection per request."""

    def __init__(self, tmp: Path, idp: MockIdP, database: Database, redis: RedisServer) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = idp.bridge_config(
            served=True,
            storage=database.url,
            sessions={"issuer": self.base, "keys": [{"env": "SESSION_KEY"}], "revocation": redis.url},
            web={"public_url": self.base, "insecure_http": True},
        )
        path = tmp / "federation.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "FEDERATION_CONFIG": str(path),
            "SESSION_KEY": generate_private_key_pem("ES256").decode(),
        }
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "app:create_app", "--factory",
                "--app-dir", str(ROOT / "examples" / "fastapi_app"),
                "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(WORKERS), "--log-level", "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(self.workers()) < WORKERS:
            time.sleep(0.1)
        assert wait_for_port(self.port, 30), "uvicorn did not listen"
        self.await_ready()

    def workers(self) -> list[int]:
        """The worker processes' pids (children of uvicorn's supervisor)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def await_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.get("/auth/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail("the workers did not become healthy")

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        with httpx.Client(base_url=self.base, timeout=10, headers={"Connection": "close"}) as client:
            return client.request(method, path, **options)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.request("GET", path, headers=headers)

    def exchange(self, id_token: str) -> httpx.Response:
        form = {"grant_type": EXCHANGE, "subject_token": id_token, "subject_token_type": ID_TOKEN}
        return self.request("POST", "/auth/token", data=form)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Fleet, MockIdP, Database, RedisServer]]:
    redis = RedisServer()
    database = Database()
    redis.start()
    idp = MockIdP(issuer="https://login.scale.test", audience="scale-app")
    try:
        with idp.serve():
            fleet = Fleet(tmp_path_factory.mktemp("fleet"), idp, database, redis)
            try:
                yield fleet, idp, database, redis
            finally:
                fleet.stop()
    finally:
        redis.stop()
        database.drop()


def _concurrently(n: int, job: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        barrier.wait()
        return job(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_twenty_concurrent_first_logins_across_workers_make_one_user(services: Any) -> None:
    fleet, idp, database, _ = services
    tokens = [
        idp.mint(sub="race", email="race@example.com", email_verified=True, jti=f"race-{i}")
        for i in range(20)
    ]
    answers = _concurrently(20, lambda i: fleet.exchange(tokens[i]))
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers if a.status_code != 200]
    users = {fleet.get("/me", a.json()["access_token"]).json()["user"] for a in answers}
    assert len(users) == 1
    rows = database.query(
        "SELECT count(*) FROM federation_identities "
        "WHERE issuer = 'https://login.scale.test' AND subject = 'race'"
    )
    assert rows == [(1,)]
    assert database.query("SELECT count(*) FROM federation_users WHERE email = 'race@example.com'") == [(1,)]


def test_one_token_exchanged_by_every_worker_at_once_makes_one_session(services: Any) -> None:
    fleet, idp, _, _ = services
    token = idp.mint(sub="exchanged-once")
    answers = _concurrently(12, lambda _: fleet.exchange(token))
    assert sorted(a.status_code for a in answers) == [200] + [400] * 11
    assert {a.json()["code"] for a in answers if a.status_code == 400} == {"token_replayed"}


def test_a_revocation_in_one_worker_is_refused_by_all_within_a_second(services: Any) -> None:
    fleet, idp, _, _ = services
    session = fleet.exchange(idp.mint(sub="revoked-soon")).json()
    token = session["access_token"]
    warm = _concurrently(16, lambda _: fleet.get("/me", token))  # every worker remembers the user
    assert {r.status_code for r in warm} == {200}
    assert fleet.request("POST", "/auth/revoke", data={"token": token}).status_code == 200
    revoked_at = time.monotonic()
    last_accepted = None
    while time.monotonic() - revoked_at < 1.5:
        for response in _concurrently(8, lambda _: fleet.get("/me", token)):
            if response.status_code == 200:
                last_accepted = time.monotonic() - revoked_at
            else:
                assert response.status_code == 401 and response.json()["detail"]["error"] == "revoked"
    assert last_accepted is None or last_accepted < 1.0, f"accepted {last_accepted:.3f} s after revoking"


def test_killing_redis_fails_closed_and_recovers(services: Any) -> None:
    fleet, idp, _, redis = services
    token = fleet.exchange(idp.mint(sub="during-outage")).json()["access_token"]
    assert {r.status_code for r in _concurrently(8, lambda _: fleet.get("/me", token))} == {200}
    redis.stop()
    time.sleep(0.5)  # the subscriptions notice the reset connection
    during = _concurrently(8, lambda _: fleet.get("/me", token))
    assert {r.status_code for r in during} == {503}
    assert {r.json()["detail"]["error"] for r in during} == {"revocation_unavailable"}
    assert all(r.headers.get("retry-after") for r in during)
    redis.start()  # empty: a session minted before is unknown, a new one works everywhere
    deadline = time.monotonic() + 15
    while True:
        fresh = fleet.exchange(idp.mint(sub="after-outage"))
        if fresh.status_code == 200:
            break
        assert time.monotonic() < deadline, fresh.text
        time.sleep(0.2)
    again = fresh.json()["access_token"]
    deadline = time.monotonic() + 10
    while {r.status_code for r in _concurrently(8, lambda _: fleet.get("/me", again))} != {200}:
        assert time.monotonic() < deadline, "the workers did not recover"
        time.sleep(0.2)


def test_killing_a_worker_mid_login_leaves_nothing_half_written(services: Any) -> None:
    fleet, idp, database, _ = services
    tokens = [idp.mint(sub=f"crash-{i}", email=f"crash-{i}@example.com") for i in range(40)]
    victim = fleet.workers()[0]
    results: list[httpx.Response | Exception] = []

    def login(i: int) -> None:
        try:
            results.append(fleet.exchange(tokens[i]))
        except httpx.HTTPError as exc:
            results.append(exc)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 40
    orphans = database.query(
        "SELECT count(*) FROM federation_users u WHERE NOT EXISTS "
        "(SELECT 1 FROM federation_identities i WHERE i.user_id = u.id)"
    )
    assert orphans == [(0,)], "a user row without its identity: a login was half-written"
    created = database.query("SELECT count(*) FROM federation_identities WHERE subject LIKE 'crash-%'")[0][0]
    succeeded = sum(1 for r in results if isinstance(r, httpx.Response) and r.status_code == 200)
    assert succeeded <= created <= 40
    # Whatever was cut off can be retried, with a new token from the issuer (a token is
    # exchanged once, and a cut-off exchange may have spent it): the fleet (its supervisor
    # restarts the worker) answers it.
    deadline = time.monotonic() + 20
    while len(fleet.workers()) < WORKERS:
        assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
        time.sleep(0.1)
    again = [idp.mint(sub=f"crash-{i}", email=f"crash-{i}@example.com", jti=f"retry-{i}") for i in range(40)]
    retried = [fleet.exchange(t).status_code for t in again]
    assert retried == [200] * 40
    assert database.query("SELECT count(*) FROM federation_identities WHERE subject LIKE 'crash-%'") == [
        (40,)
    ]
