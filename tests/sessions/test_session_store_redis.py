"""The Redis session store keeps the session-store protocol, sync and asyncio, on the real server."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _session_services import OnALoop

from federation.errors import RevocationUnavailable
from federation.storage import NewRefreshToken, SessionRecord
from federation.testing.session_conformance import SessionStoreConformance


class TestRedisSessionStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self, redis_store: Any) -> Any:
        return redis_store


def test_the_asyncio_twin_shares_the_keys(redis_store: Any) -> None:
    now = datetime.now(timezone.utc)
    refresh = NewRefreshToken("a" * 64, now, now + timedelta(hours=1))
    redis_store.create_session(SessionRecord("s-1", "u-1", now, now + timedelta(hours=1)), refresh)

    async def scenario() -> tuple[Any, Any, int]:
        aio = redis_store.aio
        assert aio is not None
        try:
            successor = NewRefreshToken("b" * 64, now, now + timedelta(hours=2))
            use = await aio.use_refresh("a" * 64, successor, now=now, grace=0)
            again = await aio.use_refresh("a" * 64, successor, now=now + timedelta(minutes=5), grace=0)
            return use, again, await aio.bump_generation("u-1")
        finally:
            await aio.aclose()

    use, again, generation = asyncio.run(scenario())
    assert use.outcome == "rotated" and again.outcome == "reused"
    assert redis_store.get_session("s-1").revoked_at is not None  # the sync store sees it
    assert redis_store.user_state("u-1", now=now).generation == generation == 1


def test_an_unreachable_server_is_revocation_unavailable() -> None:
    from federation.storage import RedisSessionStore

    store = RedisSessionStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(RevocationUnavailable) as caught:
        store.user_state("u", now=datetime.now(timezone.utc))
    assert caught.value.code == "revocation_unavailable"
    assert "127.0.0.1" not in str(caught.value)


@pytest.mark.parametrize("answer", [b"+OK\r\n", b",inf\r\n"])
def test_a_server_answering_what_redis_py_cannot_read_is_revocation_unavailable(answer: bytes) -> None:
    """A proxy or a foreign service on the port: redis-py's parser raised AttributeError and
    the like, not a RedisError, out of every call after the first (sync and asyncio)."""
    import socket
    import threading

    from federation.storage import RedisSessionStore

    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        def answer_all(conn: socket.socket) -> None:
            with conn:
                while conn.recv(65536):
                    conn.sendall(answer)

        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer_all, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    store = RedisSessionStore(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    now = datetime.now(timezone.utc)
    try:
        for _ in range(3):
            with pytest.raises(RevocationUnavailable):
                store.user_state("u", now=now)
        assert store.ping() is False

        async def scenario() -> None:
            aio = store.aio
            assert aio is not None
            try:
                for _ in range(2):
                    with pytest.raises(RevocationUnavailable):
                        await aio.user_state("u", now=now)
            finally:
                await aio.aclose()

        asyncio.run(scenario())
    finally:
        server.close()
        store.close()


def test_rows_expire_on_the_server_too(redis_store: Any) -> None:
    now = datetime.now(timezone.utc)
    redis_store.create_session(SessionRecord("s-2", "u-2", now, now + timedelta(seconds=30)), None)
    redis_store.revoke_token("j-1", user_id="u-2", expires_at=now + timedelta(seconds=30))
    client = redis_store.client
    for key in (f"{redis_store.key_prefix}session:s-2", f"{redis_store.key_prefix}user:u-2:jtis"):
        ttl = client.pttl(key)
        # The row's end plus the retention margin, set as an absolute time rounded up to the
        # millisecond: read back within the same millisecond, it is 1 ms more.
        assert 0 < ttl <= (30 + 300) * 1000 + 1, key
    assert client.pttl(f"{redis_store.key_prefix}gen:u-2") == -2  # no generation yet: nothing stored


class TestAsyncRedisSessionStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self, redis_store: Any) -> Any:
        adapter = OnALoop(redis_store.aio)
        yield adapter
        adapter.close()


def test_a_malformed_redis_url_is_a_config_error_without_the_password() -> None:
    from federation.errors import ConfigError
    from federation.storage import RedisSessionStore

    with pytest.raises(ConfigError) as caught:
        RedisSessionStore("redis://:hunter2@cache.internal:notaport/0")
    assert "hunter2" not in str(caught.value) and caught.value.field == "sessions.revocation"


def test_purge_wants_an_aware_datetime(redis_store: Any) -> None:
    with pytest.raises(TypeError, match="timezone-aware datetime"):
        redis_store.purge(now=1_800_000_000.0)
