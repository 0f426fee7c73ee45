"""The SQL store for async callers: the same tables and rules on SQLAlchemy's asyncio engine.

Owns: :class:`AsyncSQLStore`, an :class:`~federation.storage.SQLStore` that is
also an :class:`~federation.storage.AsyncStore`: ``alogin``, ``aauthenticate``
and ``adeprovision`` run their transactions on an asyncio engine (psycopg 3's
async connections for PostgreSQL, aiosqlite for SQLite), so an ASGI app never
hands a login to a thread. Sync callers (the CLI, a sync view, the session
tables) keep the sync engine on the same database. The statements and what
their results mean are the sync store's (``SQLStore.statements``); this module
only awaits them, under the same transaction discipline (SQLite: ``BEGIN
IMMEDIATE`` through the same listeners; PostgreSQL: ``FOR UPDATE`` and the
unique identity key).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import URL, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..errors import ConfigError, ConnectionLost
from ._ops import run_to_the_end
from ._records import NewUser, User, UserIdentity
from ._sql import (
    Parsed,
    SQLStore,
    _is_memory_sqlite,
    _storage_error,
    _user,
    identity_conflict,
    sqlite_discipline,
)

T = TypeVar("T")

__all__ = ["AsyncSQLStore"]


def async_url(url: URL) -> URL:
    """The asyncio driver for a sync URL: psycopg 3 serves both; SQLite needs aiosqlite."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "postgresql" and driver in ("psycopg", "psycopg_async"):
        return url.set(drivername="postgresql+psycopg_async")
    if backend == "sqlite":
        if _is_memory_sqlite(url):
            raise ConfigError(
                "an in-memory SQLite database cannot be shared by a sync and an async engine: use a file",
                field="storage",
            )
        return url.set(drivername="sqlite+aiosqlite")
    raise ConfigError(
        f"the async SQL store supports PostgreSQL (psycopg) and SQLite, not {url.drivername}", field="storage"
    )


async def _dispose_at_shutdown(engine: AsyncEngine, forget: Callable[[], None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        # Forgotten first: the entry holds this generator, which the loop's finalizer hook
        # ties back to the loop, so an entry left behind kept every closed loop (and its
        # engine) alive for the life of the process.
        forget()
        await engine.dispose()


class _AsyncSQLTransaction:
    """The storage protocol's operations on one open async connection (the sync store's statements)."""

    def __init__(self, store: SQLStore, conn: AsyncConnection) -> None:
        self._q = store.statements
        self._conn = conn

    async def _read(self, planned: tuple[Any, Parsed]) -> Any:
        statement, parse = planned
        return parse(await self._conn.execute(statement))

    async def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        found: UserIdentity | None = await self._read(self._q.find_identity(issuer, subject))
        return found

    async def get_user(self, user_id: str) -> User | None:
        found: User | None = await self._read(self._q.get_user(user_id))
        return found

    async def find_users_by_email(self, email_key: str) -> Sequence[User]:
        lock = self._q.email_lock(email_key)
        if lock is not None:
            await self._conn.execute(lock)
        found: list[User] = await self._read(self._q.find_users_by_email(email_key))
        return found

    async def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        found: list[UserIdentity] = await self._read(self._q.identities_of(user_id))
        return found

    async def insert_user(self, user: NewUser) -> str:
        statement, user_id = self._q.insert_user(user)
        await self._conn.execute(statement)
        return user_id

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        statement = self._q.update_user(user_id, changes)
        if statement is not None:
            await self._conn.execute(statement)

    async def insert_identity(self, identity: UserIdentity) -> None:
        try:
            await self._conn.execute(self._q.insert_identity(identity))
        except IntegrityError as exc:
            raise identity_conflict(exc) from exc

    async def delete_user(self, user_id: str) -> None:
        for statement in self._q.delete_user(user_id):
            await self._conn.execute(statement)


class AsyncSQLStore(SQLStore):
    """:class:`~federation.storage.SQLStore` with a native async face (``atransaction``).

    ``Bridge(config, store=AsyncSQLStore("postgresql+psycopg://app@db/app"))``,
    or ``storage_async: true`` beside ``storage:``. Takes the options of
    :class:`~federation.storage.SQLStore`; ``async_engine`` lets an
    application share its own asyncio engine.
    """

    def __init__(
        self,
        url: str | URL = "sqlite:///federation.db",
        *,
        base_dir: str | Path | None = None,
        busy_timeout: float = 30.0,
        async_engine: AsyncEngine | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, base_dir=base_dir, busy_timeout=busy_timeout, **options)
        self._given_engine = async_engine
        self._engine_options = {
            k: v for k, v in options.items() if k not in ("table_prefix", "schema", "create_schema", "engine")
        }
        self._busy_timeout = busy_timeout
        # An asyncio connection belongs to the event loop that opened it: one engine per loop
        # (one in a server; a test suite's asyncio.run calls each get their own).
        self._engines: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncEngine, AsyncIterator[None]]
        ] = weakref.WeakKeyDictionary()
        if async_engine is None:
            async_url(self.url)  # refuse an unsupported database now, not at the first login
        dialect = async_engine.dialect.name if async_engine is not None else self.engine.dialect.name
        self._unlocked_async: dict[str, Any] = (
            {"federation_unlocked_read": True} if dialect == "sqlite" else {"isolation_level": "AUTOCOMMIT"}
        )

    async def aengine(self) -> AsyncEngine:
        """The asyncio engine of the running event loop (made on first use in that loop).

        Its pool is disposed when the loop shuts its async generators down
        (``asyncio.run`` does as it ends): a guard generator is parked in it.
        """
        if self._given_engine is not None:
            return self._given_engine
        loop = asyncio.get_running_loop()
        found = self._engines.get(loop)
        if found is None:
            for closed in [other for other in list(self._engines) if other.is_closed()]:
                # Closed without shutting its generators down: nothing will dispose its pool
                # now; at least the loop and engine are not kept for ever.
                self._engines.pop(closed, None)
            engine = self._new_engine()
            ref = weakref.ref(loop)
            guard = _dispose_at_shutdown(engine, lambda: self._forget(ref()))
            await guard.__anext__()  # the loop now tracks it, and closes it as it shuts down
            found = self._engines[loop] = (engine, guard)
        return found[0]

    def _forget(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is not None:
            self._engines.pop(loop, None)

    def _new_engine(self) -> AsyncEngine:
        options = dict(self._engine_options)
        options.setdefault("hide_parameters", True)
        target = async_url(self.url)
        if target.get_backend_name() != "sqlite":
            # No pre-ping (a round trip per checkout): a dead connection is ConnectionLost, retried once.
            return create_async_engine(target, **options)
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("timeout", self._busy_timeout)
        engine = create_async_engine(target, connect_args=connect_args, **options)
        sqlite_discipline(engine.sync_engine, self._busy_timeout)
        return engine

    def __repr__(self) -> str:
        return f"AsyncSQLStore({self.url.render_as_string(hide_password=True)!r})"

    async def _aensure_schema(self) -> None:
        if not self._schema_ready:
            await asyncio.to_thread(self._ensure_schema)  # once per process, before the first login

    @asynccontextmanager
    async def atransaction(self) -> AsyncIterator[_AsyncSQLTransaction]:
        """One database transaction on the asyncio engine (the sync store's locking discipline)."""
        async with self.aconnection() as conn:
            yield _AsyncSQLTransaction(self, conn)

    @asynccontextmanager
    async def aconnection(self, *, unlocked_read: bool = False) -> AsyncIterator[AsyncConnection]:
        """An async connection inside a transaction (``unlocked_read``: for one read outside any);
        database errors become :class:`~federation.errors.StorageError` or ``StorageConflict``."""
        await self._aensure_schema()
        engine = await self.aengine()
        committing = False
        try:
            if unlocked_read:
                async with engine.connect() as conn:
                    yield await conn.execution_options(**self._unlocked_async)
            else:
                async with engine.begin() as conn:
                    yield conn
                    committing = True  # the block ended: leaving the with commits
        except SQLAlchemyError as exc:
            raise _storage_error(exc, committing=committing) from exc

    async def aread(self, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """One read outside any transaction; a lost connection is read again once, on a new one
        (the async twin of :meth:`SQLStore._read_row`)."""

        async def once() -> T:
            async with self.aconnection(unlocked_read=True) as conn:
                return await read(conn)

        try:
            return await run_to_the_end(once)
        except ConnectionLost:
            return await run_to_the_end(once)

    async def _aread_row(self, statement: Any, params: Mapping[str, Any] | None = None) -> Row[Any] | None:
        async def first(conn: AsyncConnection) -> Row[Any] | None:
            return (await conn.execute(statement, params)).first()

        return await self.aread(first)

    async def afind_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """Async twin of :meth:`find_login` (one unlocked read)."""
        row = await self._aread_row(self.login_query(), {"issuer": issuer, "subject": subject})
        return self.login_of(row)

    async def aread_user(self, user_id: str) -> User | None:
        """Async twin of :meth:`read_user`."""
        t = self.users_table
        row = await self._aread_row(select(t).where(t.c.id == user_id))
        return None if row is None else _user(row)

    async def aclose(self) -> None:
        """Release this event loop's connection pool and the sync one."""
        found = self._engines.pop(asyncio.get_running_loop(), None)
        engine = self._given_engine or (found[0] if found is not None else None)
        if engine is not None:
            await engine.dispose()
        self.close()
