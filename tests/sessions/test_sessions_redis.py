"""Sessions on Redis through the bridge: many processes share revocations, within a second.

Each bridge here stands for one worker process: its own RedisSessionStore (its own
connections and subscription) on the same server and key prefix, its own memory.
The outage tests run a Redis server of their own (killed and restarted), never the
machine's shared one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _session_services import REDIS_URL
from own_services import RedisServer

from federation import Bridge
from federation.errors import RevocationUnavailable, TokenRevoked
from federation.sessions import generate_private_key_pem
from federation.storage import MemoryStore
from federation.testing import MockIdP

APP = "https://app.example.test"
PEM = generate_private_key_pem("ES256").decode()


def _worker(idp: MockIdP, store: Any, users: MemoryStore, **sessions: Any) -> Bridge:
    section = {"issuer": APP, "keys": [{"env": "SESSION_KEY"}], "user_check": 30, **sessions}
    config = idp.bridge_config(sessions=section)
    return idp.bridge(config=config, store=users, session_store=store, environ={"SESSION_KEY": PEM})


@pytest.fixture
def fleet(redis_store: Any, idp: MockIdP) -> Iterator[Callable[..., Bridge]]:
    """``fleet(**sessions)``: another worker on the same Redis keys and the same users."""
    from federation.storage import RedisSessionStore

    users = MemoryStore()
    opened: list[Any] = []

    def worker(**sessions: Any) -> Bridge:
        store = RedisSessionStore(REDIS_URL, key_prefix=redis_store.key_prefix)
        opened.append(store)
        return _worker(idp, store, users, **sessions)

    yield worker
    for store in opened:
        store.close()


def _refused_within(seconds: float, attempt: Callable[[], object]) -> float:
    """How long until ``attempt`` raises TokenRevoked (fails the test after ``seconds``)."""
    start = time.monotonic()
    while True:
        try:
            attempt()
        except TokenRevoked:
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            pytest.fail(f"still accepted {seconds} s after the revocation")
        time.sleep(0.01)


def test_a_revocation_in_one_worker_is_refused_by_another_within_a_second(
    fleet: Callable[..., Bridge], idp: MockIdP
) -> None:
    a, b = fleet(), fleet()
    session = a.exchange(idp.mint(sub="ada"))
    assert b.authenticate(session.access_token).user.id == session.user.id  # b remembers the user now
    assert a.revoke(session.access_token)
    assert _refused_within(1.0, lambda: b.authenticate(session.access_token)) < 1.0


def test_revoke_user_in_one_worker_ends_the_users_tokens_everywhere(
    fleet: Callable[..., Bridge], idp: MockIdP
) -> None:
    a, b = fleet(), fleet()
    first, second = a.exchange(idp.mint(sub="ada")), a.exchange(idp.mint(sub="ada"))
    for session in (first, second):
        b.authenticate(session.access_token)
    a.revoke_user(first.user.id)
    for session in (first, second):
        _refused_within(1.0, lambda s=session: b.authenticate(s.access_token))  # type: ignore[misc]


def test_the_subscription_outlives_an_error_that_is_not_a_redis_error(
    fleet: Callable[..., Bridge], idp: MockIdP
) -> None:
    """On a torn connection redis-py can raise an AttributeError from its parser. The
    listening thread must live on: ended, it would leave this worker trusting its memory
    while no revocation reaches it."""
    a, b = fleet(), fleet()
    session = a.exchange(idp.mint(sub="ada"))
    b.authenticate(session.access_token)
    store = b.sessions.store
    invalidations = store.invalidations
    _wait(lambda: invalidations.live)
    client = store.client
    real_pubsub = client.pubsub
    broken: list[bool] = []

    def pubsub(**options: Any) -> Any:
        subscription = real_pubsub(**options)
        if not broken:  # the next subscription fails once, as redis-py's parser does
            broken.append(True)

            def get_message(*args: Any, **kwargs: Any) -> Any:
                raise AttributeError("'NoneType' object has no attribute 'readline'")

            subscription.get_message = get_message
        return subscription

    client.pubsub = pubsub
    # Break the live subscription: its connection goes, the listener resubscribes with the
    # patched factory, and that one fails with the AttributeError.
    client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    _wait(lambda: bool(broken))
    _wait(lambda: invalidations.live)  # back: the thread survived and subscribed again
    assert invalidations._thread is not None and invalidations._thread.is_alive()
    assert a.revoke(session.access_token)
    assert _refused_within(1.0, lambda: b.authenticate(session.access_token)) < 1.0


def test_the_sessions_layer_on_redis_from_the_config(idp: MockIdP, redis_store: Any) -> None:
    from federation.storage import RedisSessionStore

    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "K"}], "revocation": REDIS_URL})
    with idp.bridge(config=config, store=MemoryStore(), environ={"K": PEM}) as bridge:
        assert isinstance(bridge.sessions.store, RedisSessionStore)
        session = bridge.exchange(idp.mint(sub="ada"))
        assert session.refresh_token is not None
        renewed = bridge.refresh(session.refresh_token)
        assert bridge.authenticate(renewed.access_token).user.id == session.user.id


def test_async_callers_use_the_asyncio_client_not_threads(
    fleet: Callable[..., Bridge], idp: MockIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = fleet()
    session = bridge.exchange(idp.mint(sub="ada"))
    assert session.refresh_token is not None
    refresh_token = session.refresh_token

    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a session-store step went to a worker thread")

    monkeypatch.setattr("federation._sessions._service.asyncio.to_thread", no_threads)

    async def scenario() -> str:
        renewed = await bridge.arefresh(refresh_token)
        principal = await bridge.aauthenticate(renewed.access_token)
        await bridge.arevoke(renewed.access_token)
        return principal.user.id

    assert asyncio.run(scenario()) == session.user.id


def test_a_config_with_an_unknown_revocation_is_refused() -> None:
    from federation.config import load_config
    from federation.errors import ConfigError

    with pytest.raises(ConfigError, match="revocation"):
        load_config(
            {
                "issuers": [{"provider": "oidc", "issuer": "https://i.test", "audiences": ["a"]}],
                "sessions": {"issuer": APP, "keys": [{"env": "K"}], "revocation": "mysql://nope"},
            }
        )


# -- Redis going away ------------------------------------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def _bridge_on(server: RedisServer, idp: MockIdP, users: MemoryStore, **sessions: Any) -> tuple[Bridge, Any]:
    from federation.storage import RedisSessionStore

    store = RedisSessionStore(server.url, key_prefix=f"t{uuid.uuid4().hex[:6]}:")
    return _worker(idp, store, users, **sessions), store


def _wait(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the condition did not come true in time")
        time.sleep(0.02)


def test_redis_down_fails_closed_then_recovers(own_redis: RedisServer, idp: MockIdP) -> None:
    bridge, store = _bridge_on(own_redis, idp, MemoryStore())
    try:
        session = bridge.exchange(idp.mint(sub="ada"))
        bridge.authenticate(session.access_token)  # remembered, fresh for user_check seconds
        own_redis.stop()
        _wait(lambda: not store.invalidations.live)
        with pytest.raises(RevocationUnavailable) as refused:
            bridge.authenticate(session.access_token)  # memory is not trusted without the messages
        assert refused.value.code == "revocation_unavailable"
        own_redis.start()  # a new, empty server: the revocation state is gone with the old one
        _wait(lambda: store.invalidations.live)
        assert bridge.authenticate(session.access_token).user.id == session.user.id
    finally:
        store.close()


def test_outage_grace_serves_memory_for_a_bounded_time(own_redis: RedisServer, idp: MockIdP) -> None:
    bridge, store = _bridge_on(own_redis, idp, MemoryStore(), outage_grace=0.5)
    try:
        session = bridge.exchange(idp.mint(sub="ada"))
        bridge.authenticate(session.access_token)
        own_redis.stop()
        _wait(lambda: not store.invalidations.live)
        assert bridge.authenticate(session.access_token).user.id == session.user.id  # within the grace
        time.sleep(0.6)
        with pytest.raises(RevocationUnavailable):
            bridge.authenticate(session.access_token)
    finally:
        store.close()


def _config_file(tmp_path: Any, idp: MockIdP, revocation: str) -> str:
    import json

    import yaml

    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(idp.key_document()))
    entry = {"provider": "oidc", "issuer": idp.issuer, "audiences": [idp.audience], "jwks_file": str(keys)}
    config = {
        "issuers": [entry],
        "storage": f"sqlite:///{tmp_path}/users.db",
        "sessions": {"issuer": APP, "keys": [{"env": "FEDERATION_TEST_KEY"}], "revocation": revocation},
    }
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_check_config_probes_redis_and_never_prints_its_password(
    tmp_path: Any, idp: MockIdP, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from federation.cli import EXIT_OK, EXIT_UNAVAILABLE, main

    monkeypatch.setenv("FEDERATION_TEST_KEY", PEM)
    down = "redis://default:hunter2@127.0.0.1:1/0"
    assert main(["check-config", _config_file(tmp_path, idp, down), "--probe"]) == EXIT_UNAVAILABLE
    out = capsys.readouterr()
    assert "hunter2" not in out.out + out.err
    assert "revocation redis://default:***@127.0.0.1:1/0: unavailable" in out.out
    path = _config_file(tmp_path, idp, REDIS_URL)
    assert main(["check-config", path, "--probe"]) == EXIT_OK, capsys.readouterr()
    assert f"probe    revocation {REDIS_URL}: ok" in capsys.readouterr().out
