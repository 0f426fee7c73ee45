"""Load figures: requests per second and latency of a protected endpoint, 1 and 4 worker processes.

Run from the repository root (loopback only, about a minute; ``--quick`` for a smoke run)::

    python benchmarks/load.py [--quick] [--requests N] [--connections C]

The app (benchmarks/load_app.py) runs under uvicorn with ``--workers 1`` and then
``--workers 4``, users in a PostgreSQL database of its own, sessions in a Redis server of
its own, keys from a MockIdP served over loopback HTTP. A client in this process keeps
C keep-alive connections busy (plain HTTP/1.1 on asyncio streams: httpx would be the
bottleneck) and sends N requests per row. Rows, interleaved in rounds so each is measured
beside its baseline under the same load:

* ``/open``: no authentication (the baseline: HTTP, uvicorn, FastAPI);
* ``/me``, repeated app token (the cache hit of ``authenticate``);
* ``/me``, new app token (a new ES256 session token per request);
* ``/me``, repeated external token (an issuer's RS256 token sent again);
* ``POST /auth/token``, token exchange of an existing user's id token (a login: verify,
  map, one transaction on PostgreSQL, a session written to Redis, two tokens signed).

Printed per row and worker count: requests per second, p50 and p99 latency, and the
ratio of the row's rate to the baseline's in the same round (1.0: authentication costs
nothing). The client shares the machine's CPUs with the workers: with 4 workers on a
2-CPU machine the figures say what the machine can do, not what 4 workers could.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from federation import Bridge  # noqa: E402
from federation.sessions import generate_private_key_pem  # noqa: E402
from federation.testing import MockIdP  # noqa: E402

POSTGRES = os.environ.get("FEDERATION_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def _redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


@contextmanager
def _database() -> Iterator[str]:
    import psycopg

    name = f"fedload_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _workers(n: int, config: Path, key: str) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "FEDERATION_CONFIG": str(config), "SESSION_KEY": key}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "load_app:create_app", "--factory", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(n),
            "--log-level", "warning", "--no-access-log",
        ],
        env=env,
    )  # fmt: skip
    try:
        _wait_port(port)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the client: HTTP/1.1 keep-alive on asyncio streams ---------------------------------------


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _run(port: int, requests: Sequence[bytes], connections: int) -> tuple[float, list[float]]:
    """Send every request over ``connections`` keep-alive connections; (rate, latencies)."""
    queue = list(reversed(requests))
    latencies: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"answered {status}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return len(requests) / (time.perf_counter() - started), latencies


def _get(path: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


def _post_form(path: str, form: dict[str, str]) -> bytes:
    body = urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="1 round of 300 requests")
    args = parser.parse_args(argv)
    rounds, n = (1, 300) if args.quick else (args.rounds, args.requests)
    key = generate_private_key_pem("ES256").decode()
    idp = MockIdP(issuer="https://login.load.test", audience="load-app", alg="RS256")
    print(f"{os.cpu_count()} CPUs, {rounds} rounds x {n} requests per row, {args.connections} connections\n")
    with tempfile.TemporaryDirectory() as tmp, _redis() as redis_url, _database() as db_url, idp.serve():
        config = idp.bridge_config(
            served=True,
            storage=db_url,
            sessions={
                "issuer": "https://app.load.test",
                "keys": [{"env": "SESSION_KEY"}],
                "revocation": redis_url,
                "touch_interval": 86400,
            },
            web={"public_url": "http://127.0.0.1", "insecure_http": True},
        )
        path = Path(tmp) / "federation.yaml"
        path.write_text(yaml.safe_dump(config))
        # This process mints the tokens the workers will see (the same keys, users and Redis).
        minter = Bridge.from_file(path, environ={"SESSION_KEY": key}, audit=lambda e: None)
        id_token = idp.mint(sub="load-user", lifetime=7200)
        user = minter.exchange(id_token).user
        repeated_session = minter.issue_session(user).access_token
        exchange = _post_form("/auth/token", {
            "grant_type": EXCHANGE, "subject_token": id_token, "subject_token_type": ID_TOKEN,
        })  # fmt: skip
        rows = {
            "/open (baseline)": lambda: [_get("/open", None)] * n,
            "/me, repeated app token": lambda: [_get("/me", repeated_session)] * n,
            "/me, new app token": lambda: [
                _get("/me", minter.issue_session(user).access_token) for _ in range(n)
            ],
            "/me, repeated external token": lambda: [_get("/me", id_token)] * n,
            "POST /auth/token (exchange)": lambda: [exchange] * n,
        }
        for workers in (1, 4):
            rates: dict[str, list[float]] = {name: [] for name in rows}
            latencies: dict[str, list[float]] = {name: [] for name in rows}
            ratios: dict[str, list[float]] = {name: [] for name in rows}
            with _workers(workers, path, key) as port:
                for make in rows.values():  # warm every worker's caches and connections
                    asyncio.run(_run(port, make()[: 4 * args.connections], args.connections))
                for _ in range(rounds):
                    baseline = None
                    for name, make in rows.items():
                        batch = make()
                        rate, lat = asyncio.run(_run(port, batch, args.connections))
                        baseline = rate if baseline is None else baseline
                        rates[name].append(rate)
                        latencies[name].extend(lat)
                        ratios[name].append(rate / baseline)
            print(f"{workers} worker{'s' if workers > 1 else ''}:")
            print(f"  {'row':36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x baseline':>11}")
            for name in rows:
                print(
                    f"  {name:36} {statistics.median(rates[name]):8.0f} "
                    f"{_percentile(latencies[name], 0.5) * 1000:8.2f} "
                    f"{_percentile(latencies[name], 0.99) * 1000:8.2f} "
                    f"{statistics.median(ratios[name]):11.3f}"
                )
            print()
        minter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
