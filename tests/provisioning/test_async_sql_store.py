"""The native async SQL store: the storage contract on SQLAlchemy's asyncio engine (aiosqlite, psycopg).

Both faces of one AsyncSQLStore pass the conformance suite (the sync engine for sync
callers, the asyncio one for async callers); an async login never leaves the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _prov_helpers import POSTGRES_URL

from federation import Bridge
from federation.errors import ConfigError
from federation.storage import AsyncSQLStore, is_async_store
from federation.testing import MockIdP
from federation.testing.storage_conformance import StoreConformance


@pytest.fixture(params=["sqlite", "postgres"])
def async_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AsyncSQLStore]:
    if request.param == "sqlite":
        store = AsyncSQLStore(f"sqlite:///{tmp_path}/async-{uuid.uuid4().hex[:8]}.db")
    else:
        schema = request.getfixturevalue("postgres_schema")
        store = AsyncSQLStore(POSTGRES_URL, schema=schema, table_prefix=f"a{uuid.uuid4().hex[:6]}_")
    yield store
    store.close()


class TestAsyncSQLStore(StoreConformance):
    @pytest.fixture
    def store(self, async_store: AsyncSQLStore) -> AsyncSQLStore:
        assert is_async_store(async_store)
        return async_store


def test_an_async_login_never_leaves_the_event_loop(
    async_store: AsyncSQLStore, idp: MockIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge: Bridge = idp.bridge(store=async_store)

    def no_threads(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("provisioning handed a step to a worker thread")

    async def scenario() -> tuple[Any, Any]:
        await async_store._aensure_schema()  # the one-time schema check, before the watch starts
        monkeypatch.setattr("federation.provisioning._shell.asyncio.to_thread", no_threads)
        first = await bridge.alogin(idp.mint(sub="ada", email="ada@example.com"))
        again = await bridge.alogin(idp.mint(sub="ada", email="ada@example.com"))
        return first, again

    first, again = asyncio.run(scenario())
    assert first.created and not again.created
    assert first.user.id == again.user.id
    assert async_store.read_user(first.user.id) == again.user  # the sync face sees the same row


def test_event_loops_that_ended_are_not_kept(async_store: AsyncSQLStore, idp: MockIdP) -> None:
    """Each loop's engine sat in a weak dictionary whose value (the disposal guard, tied to
    the loop by its finalizer hook) kept the loop alive: every ``asyncio.run`` left its loop
    and engine behind, about 77 KB each, for the life of the process."""
    import gc
    import weakref

    bridge: Bridge = idp.bridge(store=async_store)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def login() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await bridge.alogin(idp.mint(sub="ada"))

    for _ in range(5):
        asyncio.run(login())
    gc.collect()
    assert len(async_store._engines) == 0
    assert [ref() for ref in loops] == [None] * 5  # every loop collected
    # A loop closed without shutting its generators down is let go at the next new loop.
    loop = asyncio.new_event_loop()
    loop.run_until_complete(login())
    loop.close()
    asyncio.run(login())
    assert len(async_store._engines) == 0


def test_an_in_memory_database_is_refused() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        AsyncSQLStore("sqlite://")


def test_storage_async_in_the_config_builds_the_async_store(idp: MockIdP, tmp_path: Path) -> None:
    config = idp.bridge_config(storage=f"sqlite:///{tmp_path}/users.db", storage_async=True)
    with idp.bridge(config=config) as bridge:
        assert isinstance(bridge.store, AsyncSQLStore)
        result = asyncio.run(bridge.alogin(idp.mint(sub="grace")))
        assert bridge.login(idp.mint(sub="grace")).user.id == result.user.id


def test_an_async_back_channel_logout_finds_and_signs_out_the_user(
    async_store: AsyncSQLStore, idp: MockIdP
) -> None:
    from federation.errors import TokenRevoked
    from federation.sessions import generate_private_key_pem

    config = idp.bridge_config(sessions={"issuer": "https://app.example.test", "keys": [{"env": "K"}]})
    bridge: Bridge = idp.bridge(
        config=config, store=async_store, environ={"K": generate_private_key_pem("ES256").decode()}
    )
    event = {"http://schemas.openid.net/event/backchannel-logout": {}}

    async def scenario() -> tuple[Any, Any]:
        session = await bridge.aexchange(idp.mint(sub="ada", jti="ada-id"))
        logout = idp.mint(sub="ada", jti="ada-logout", events=event, nonce=None)
        return session, await bridge.abackchannel_logout(logout)

    session, user_id = asyncio.run(scenario())
    assert user_id == session.user.id
    with pytest.raises(TokenRevoked):
        bridge.authenticate(session.access_token)
    bridge.close()


def test_run_to_the_end_lets_the_work_finish_when_its_caller_is_cancelled() -> None:
    from federation.storage import run_to_the_end

    steps: list[str] = []

    async def work() -> str:
        steps.append("begun")
        await asyncio.sleep(0.05)  # the statement the caller stops waiting for
        steps.append("committed")
        return "done"

    async def scenario() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(run_to_the_end(work), 0.01)
        assert steps == ["begun"]
        await asyncio.sleep(0.1)
        assert steps == ["begun", "committed"]
        assert await run_to_the_end(work) == "done"  # and an uncancelled caller gets the answer

    asyncio.run(scenario())


def test_a_failure_after_its_caller_was_cancelled_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    from federation.errors import StorageError
    from federation.storage import run_to_the_end

    async def work() -> None:
        await asyncio.sleep(0.05)
        raise StorageError("the commit failed")

    async def scenario() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(run_to_the_end(work), 0.01)
        await asyncio.sleep(0.1)

    with caplog.at_level("WARNING", logger="federation.storage"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "a storage step whose caller was cancelled failed as it finished (StorageError)"
    ]


def test_a_cancelled_refresh_leaves_sqlite_writable(tmp_path: Path) -> None:
    """Cancelled mid-transaction (a request timeout), a refresh's connection went back to the
    pool with SQLite's write lock held: every writer then waited out busy_timeout."""
    import sqlite3

    from federation.sessions import generate_private_key_pem

    path = tmp_path / "cancel.db"
    store = AsyncSQLStore(f"sqlite:///{path}", busy_timeout=1)
    idp = MockIdP(issuer="https://idp.test", audience="app", alg="ES256")
    config = idp.bridge_config(
        sessions={"issuer": "https://app.test", "keys": [{"env": "K"}], "revocation": "store"}
    )
    bridge = idp.bridge(config=config, store=store, environ={"K": generate_private_key_pem("ES256").decode()})

    async def scenario() -> int:
        locked = 0
        for i in range(24):
            session = await bridge.aexchange(idp.mint(sub=f"r{i}"))
            assert session.refresh_token is not None
            try:
                await asyncio.wait_for(bridge.arefresh(session.refresh_token), 0.0002 * (i + 1))
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(0.1)  # whatever the refresh still does, it does by now
            outside = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                outside.execute("BEGIN IMMEDIATE")
                outside.execute("ROLLBACK")
            except sqlite3.OperationalError:
                locked += 1
                await asyncio.sleep(1.5)
            finally:
                outside.close()
        return locked

    try:
        assert asyncio.run(scenario()) == 0
    finally:
        bridge.close()
        store.close()
