"""The SQL session store: sessions, refresh families and revocations beside the users.

Owns: :class:`SQLSessionStore`, the :class:`~federation.storage.SessionStore`
protocol over the version-2 tables of an :class:`~federation.storage.SQLStore`
(``SQLStore.session_store()``). Each method is one transaction through the
store's connection discipline (SQLite: ``BEGIN IMMEDIATE``, one writer at a
time; PostgreSQL: ``SELECT ... FOR UPDATE`` on the rows a step decides on),
retried on a conflict (a deadlock, a serialization failure, SQLite locked
past ``busy_timeout``), so a caller sees one atomic step. A rotation locks the
token row, then its session row: twenty concurrent presentations of one
unused refresh token queue on the token row, and exactly one finds it unused.
Rows that concurrent steps may create first (generations, attempts, revoked
jtis) are written with ``INSERT ... ON CONFLICT``, so a race to create one
never fails on the unique key.

Each step is written once, as a plan (:class:`SessionPlans`: a generator that
yields statements and receives their results); :class:`SQLSessionStore` runs
the plans on the sync engine and, on an ``AsyncSQLStore``, its twin
:class:`AsyncSQLSessionStore` (``store.aio``) awaits the very same plans on the
asyncio engine.

Must not: decide session policy; it stores what the session layer decides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import ConnectionLost, CorruptRecord, StorageConflict, StorageError
from ._ops import run_to_the_end
from ._records import TIME, stored_reader
from ._session_protocol import (
    AttemptState,
    NewRefreshToken,
    RefreshUse,
    SessionRecord,
    UserSessionState,
    after_failure,
    purge_instant,
    refresh_outcome,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ._sql import SQLStore

__all__ = ["AsyncSQLSessionStore", "SQLSessionStore", "SessionPlans"]

T = TypeVar("T")
_ATTEMPTS = 8
#: A claim_once marker's jti: the prefix and the SHA-256 of the key (fits the 128-character column).
CLAIM_PREFIX = "once:"


def _upsert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` with ``ON CONFLICT`` clauses, in the database's dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StorageError(f"the session store supports SQLite and PostgreSQL, not {dialect}")


_SESSION_COLUMNS = tuple(f.name for f in dataclasses.fields(SessionRecord))
_stored_session = stored_reader(
    SessionRecord,
    "session",
    {
        "session_id": str,
        "user_id": str,
        "issued_at": datetime,
        "expires_at": datetime,
        "refreshed_at": TIME,
        "revoked_at": TIME,
        "generation": int,
    },
)
_stored_attempts = stored_reader(
    AttemptState, "attempt count", {"failures": int, "locked_until": TIME, "lockouts": int}
)


def _session(m: Mapping[Any, Any]) -> SessionRecord:
    return _stored_session([m[name] for name in _SESSION_COLUMNS])


def _generation(value: Any) -> int:
    """A stored token generation (none yet: 0)."""
    if value is None:
        return 0
    if type(value) is not int:
        raise CorruptRecord("a stored token generation is not an integer")
    return value


#: One protocol step as a plan: it yields statements and receives their results, so the
#: sync shell (``conn.execute``) and the async one (``await conn.execute``) run the same logic.
Plan = Generator[Any, Any, T]


def drive(plan: Plan[T], conn: Connection) -> T:
    """Run ``plan`` on a sync connection."""
    try:
        statement = next(plan)
        while True:
            statement = plan.send(conn.execute(statement))
    except StopIteration as stop:
        return cast(T, stop.value)


async def adrive(plan: Plan[T], conn: AsyncConnection) -> T:
    """Run ``plan`` on an async connection."""
    try:
        statement = next(plan)
        while True:
            statement = plan.send(await conn.execute(statement))
    except StopIteration as stop:
        return cast(T, stop.value)


class SessionPlans:
    """Every :class:`~federation.storage.SessionStore` step as a plan over the session tables."""

    def __init__(self, store: SQLStore) -> None:
        self.dialect = store.engine.dialect.name
        self.returning = bool(store.engine.dialect.insert_returning)
        self.sessions = store.sessions_table
        self.refresh = store.refresh_table
        self.revoked = store.revoked_table
        self.generations = store.generations_table
        self.attempts_table = store.attempts_table

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> Plan[None]:
        yield insert(self.sessions).values(
            session_id=session.session_id,
            user_id=session.user_id,
            issued_at=session.issued_at,
            expires_at=session.expires_at,
            refreshed_at=session.refreshed_at,
            revoked_at=session.revoked_at,
            generation=session.generation,
        )
        if refresh is not None:
            yield self._insert_refresh(session.session_id, refresh)

    def _insert_refresh(self, session_id: str, refresh: NewRefreshToken) -> Any:
        return insert(self.refresh).values(
            token_hash=refresh.token_hash,
            session_id=session_id,
            issued_at=refresh.issued_at,
            expires_at=refresh.expires_at,
        )

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, now: datetime, grace: float
    ) -> Plan[RefreshUse]:
        """The protocol's rules, locking the token row, then its session's."""
        r, s = self.refresh, self.sessions
        token = (yield select(r).where(r.c.token_hash == token_hash).with_for_update()).first()
        if token is None:
            return RefreshUse("unknown")
        t = token._mapping
        row = (yield select(s).where(s.c.session_id == t["session_id"]).with_for_update()).first()
        if row is None:
            return RefreshUse("unknown")
        session = _session(row._mapping)
        outcome = refresh_outcome(session, t["expires_at"], t["used_at"], now=now, grace=grace)
        if outcome in ("revoked", "expired"):
            return RefreshUse(outcome, session)
        if outcome == "reused":
            yield update(s).where(s.c.session_id == session.session_id).values(revoked_at=now)
            return RefreshUse("reused", _replace(session, revoked_at=now))
        if outcome == "rotated":
            yield update(r).where(r.c.token_hash == token_hash).values(used_at=now)
        yield self._insert_refresh(session.session_id, successor)
        ends = max(session.expires_at, successor.expires_at)
        yield update(s).where(s.c.session_id == session.session_id).values(refreshed_at=now, expires_at=ends)
        return RefreshUse(outcome, _replace(session, refreshed_at=now, expires_at=ends))

    def find_refresh(self, token_hash: str) -> Plan[SessionRecord | None]:
        r, s = self.refresh, self.sessions
        query = select(s).join(r, r.c.session_id == s.c.session_id).where(r.c.token_hash == token_hash)
        row = (yield query).first()
        return None if row is None else _session(row._mapping)

    def get_session(self, session_id: str) -> Plan[SessionRecord | None]:
        s = self.sessions
        row = (yield select(s).where(s.c.session_id == session_id)).first()
        return None if row is None else _session(row._mapping)

    def revoke_session(self, session_id: str, now: datetime) -> Plan[SessionRecord | None]:
        s = self.sessions
        yield update(s).where(s.c.session_id == session_id, s.c.revoked_at.is_(None)).values(revoked_at=now)
        row = (yield select(s).where(s.c.session_id == session_id)).first()
        return None if row is None else _session(row._mapping)

    def revoke_token(self, jti: str, user_id: str, expires_at: datetime) -> Plan[None]:
        v = self.revoked
        stmt = _upsert(self.dialect, v).values(jti=jti, user_id=user_id, expires_at=expires_at)
        # The later expiry wins: a second revocation never shortens the first.
        yield stmt.on_conflict_do_update(
            index_elements=[v.c.jti],
            set_={"expires_at": stmt.excluded.expires_at},
            where=v.c.expires_at < stmt.excluded.expires_at,
        )

    def claim_once(self, key: str, expires_at: datetime) -> Plan[bool]:
        """One insert that a second claim conflicts with, in the revoked-token table under the
        user id ``""`` (no user has it): ``purge`` forgets it once it expires."""
        v = self.revoked
        marker = CLAIM_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        stmt = _upsert(self.dialect, v).values(jti=marker, user_id="", expires_at=expires_at)
        stmt = stmt.on_conflict_do_nothing(index_elements=[v.c.jti])
        if self.returning:  # rowcount is not reliable through every driver
            return (yield stmt.returning(v.c.jti)).first() is not None
        return bool((yield stmt).rowcount == 1)

    def bump_generation(self, user_id: str) -> Plan[int]:
        """One upsert; the row stays locked until commit."""
        g = self.generations
        stmt = _upsert(self.dialect, g).values(user_id=user_id, generation=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[g.c.user_id], set_={"generation": g.c.generation + 1}
        )
        if self.returning:  # PostgreSQL; SQLite from 3.35
            return _generation((yield stmt.returning(g.c.generation)).scalar_one())
        # Older SQLite: BEGIN IMMEDIATE holds the write lock, so the read sees our write.
        yield stmt
        return _generation((yield select(g.c.generation).where(g.c.user_id == user_id)).scalar_one())

    def user_state(self, user_id: str, now: datetime) -> Plan[UserSessionState]:
        g, s, v = self.generations, self.sessions, self.revoked
        generation = (yield select(g.c.generation).where(g.c.user_id == user_id)).scalar()
        sessions = (
            yield select(s.c.session_id).where(
                s.c.user_id == user_id, s.c.revoked_at.is_not(None), s.c.expires_at > now
            )
        ).scalars()
        revoked_sessions = frozenset(sessions)
        jtis = (yield select(v.c.jti).where(v.c.user_id == user_id, v.c.expires_at > now)).scalars()
        return UserSessionState(_generation(generation), revoked_sessions, frozenset(jtis))

    def sessions_of(self, user_id: str, now: datetime) -> Plan[list[SessionRecord]]:
        s = self.sessions
        query = (
            select(s)
            .where(s.c.user_id == user_id, s.c.revoked_at.is_(None), s.c.expires_at > now)
            .order_by(s.c.issued_at, s.c.session_id)
        )
        return [_session(row._mapping) for row in (yield query)]

    def record_failure(
        self, key: str, now: datetime, max_attempts: int, lockout: float
    ) -> Plan[AttemptState]:
        a = self.attempts_table
        # Make sure the row exists (a racing first failure just finds it), then lock it:
        # concurrent failures under one key queue on the row lock and each counts.
        zero = _upsert(self.dialect, a).values(key=key, failures=0, locked_until=None, lockouts=0)
        yield zero.on_conflict_do_nothing(index_elements=[a.c.key])
        row = (yield select(a).where(a.c.key == key).with_for_update()).one()
        state = after_failure(_attempt(row._mapping), now=now, max_attempts=max_attempts, lockout=lockout)
        yield (
            update(a)
            .where(a.c.key == key)
            .values(failures=state.failures, locked_until=state.locked_until, lockouts=state.lockouts)
        )
        return state

    def attempts(self, key: str) -> Plan[AttemptState]:
        a = self.attempts_table
        row = (yield select(a).where(a.c.key == key)).first()
        return AttemptState() if row is None else _attempt(row._mapping)

    def clear_attempts(self, key: str) -> Plan[None]:
        a = self.attempts_table
        yield delete(a).where(a.c.key == key)

    def purge(self, now: datetime) -> Plan[int]:
        now = purge_instant(now)
        r, s, v = self.refresh, self.sessions, self.revoked
        ended = select(s.c.session_id).where(s.c.expires_at <= now)
        count = (yield delete(r).where((r.c.expires_at <= now) | r.c.session_id.in_(ended))).rowcount
        count += (yield delete(s).where(s.c.expires_at <= now)).rowcount
        count += (yield delete(v).where(v.c.expires_at <= now)).rowcount
        return int(count)


class SQLSessionStore:
    """The session store on an :class:`~federation.storage.SQLStore`'s database.

    On an :class:`~federation.storage.AsyncSQLStore`, :attr:`aio` is its asyncio
    twin: the same plans on the asyncio engine, for async callers.
    """

    def __init__(self, store: SQLStore) -> None:
        self.sql = store
        self.plans = SessionPlans(store)
        self.aio: AsyncSQLSessionStore | None = None
        if callable(getattr(store, "aengine", None)):
            self.aio = AsyncSQLSessionStore(self)

    def _atomic(self, plan: Callable[[], Plan[T]]) -> T:
        """Run the plan in one transaction; a conflict (deadlock, serialization failure) runs it
        again, up to 8 times. Any other failure (a duplicate session id, say) raises at once."""
        self.sql._ensure_schema()
        last: StorageConflict | None = None
        lost = False
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(_jitter(attempt))
            try:
                with self.sql._connection() as conn:
                    return drive(plan(), conn)
            except ConnectionLost:  # nothing committed: once more, on a new connection
                if lost:
                    raise
                lost = True
            except StorageConflict as exc:
                last = exc
        raise _gave_up() from last

    def _read(self, plan: Callable[[], Plan[T]]) -> T:
        self.sql._ensure_schema()
        return self.sql._read_row(lambda conn: drive(plan(), conn))  # the store's read-once rule

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        """Store a new session and its first refresh token."""
        self._atomic(lambda: self.plans.create_session(session, refresh))

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        """Present a refresh token (the protocol's rules), locking its row then its session's."""
        return self._atomic(lambda: self.plans.use_refresh(token_hash, successor, now, grace))

    def find_refresh(self, token_hash: str) -> SessionRecord | None:
        """The session of a refresh token, or None."""
        return self._read(lambda: self.plans.find_refresh(token_hash))

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        return self._read(lambda: self.plans.get_session(session_id))

    def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        """Revoke a session; the first ``revoked_at`` stays."""
        return self._atomic(lambda: self.plans.revoke_session(session_id, now))

    def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse an access token until it expires (idempotent)."""
        self._atomic(lambda: self.plans.revoke_token(jti, user_id, expires_at))

    def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed."""
        return self._atomic(lambda: self.plans.claim_once(key, expires_at))

    def bump_generation(self, user_id: str) -> int:
        """Increment the user's generation."""
        return self._atomic(lambda: self.plans.bump_generation(user_id))

    def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        """The user's generation and live revocations, in one connection."""
        return self._read(lambda: self.plans.user_state(user_id, now))

    def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        """The user's live sessions, oldest first."""
        return self._read(lambda: self.plans.sessions_of(user_id, now))

    def record_failure(self, key: str, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
        """Count a failed attempt; lock when the count reaches ``max_attempts``."""
        return self._atomic(lambda: self.plans.record_failure(key, now, max_attempts, lockout))

    def attempts(self, key: str) -> AttemptState:
        """The attempt state under ``key``."""
        return self._read(lambda: self.plans.attempts(key))

    def clear_attempts(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._atomic(lambda: self.plans.clear_attempts(key))

    def purge(self, *, now: datetime) -> int:
        """Delete sessions, refresh tokens and revoked jtis that ended before ``now``."""
        return self._atomic(lambda: self.plans.purge(now))


class AsyncSQLSessionStore:
    """The asyncio twin of :class:`SQLSessionStore` (``store.aio``): the same plans, awaited."""

    def __init__(self, sync: SQLSessionStore) -> None:
        self.sql: Any = sync.sql  # an AsyncSQLStore
        self.plans = sync.plans

    async def _atomic(self, plan: Callable[[], Plan[T]]) -> T:
        last: StorageConflict | None = None
        lost = False
        for attempt in range(_ATTEMPTS):
            if attempt:
                await asyncio.sleep(_jitter(attempt))
            try:
                return await run_to_the_end(lambda: self._attempt(plan))
            except ConnectionLost:  # nothing committed: once more, on a new connection
                if lost:
                    raise
                lost = True
            except StorageConflict as exc:
                last = exc
        raise _gave_up() from last

    async def _attempt(self, plan: Callable[[], Plan[T]]) -> T:
        async with self.sql.aconnection() as conn:
            return await adrive(plan(), conn)

    async def _read(self, plan: Callable[[], Plan[T]]) -> T:
        result: T = await self.sql.aread(lambda conn: adrive(plan(), conn))  # the store's read-once rule
        return result

    async def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        await self._atomic(lambda: self.plans.create_session(session, refresh))

    async def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        return await self._atomic(lambda: self.plans.use_refresh(token_hash, successor, now, grace))

    async def find_refresh(self, token_hash: str) -> SessionRecord | None:
        return await self._read(lambda: self.plans.find_refresh(token_hash))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        return await self._read(lambda: self.plans.get_session(session_id))

    async def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        return await self._atomic(lambda: self.plans.revoke_session(session_id, now))

    async def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        await self._atomic(lambda: self.plans.revoke_token(jti, user_id, expires_at))

    async def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        return await self._atomic(lambda: self.plans.claim_once(key, expires_at))

    async def bump_generation(self, user_id: str) -> int:
        return await self._atomic(lambda: self.plans.bump_generation(user_id))

    async def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        return await self._read(lambda: self.plans.user_state(user_id, now))

    async def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        return await self._read(lambda: self.plans.sessions_of(user_id, now))

    async def record_failure(
        self, key: str, *, now: datetime, max_attempts: int, lockout: float
    ) -> AttemptState:
        return await self._atomic(lambda: self.plans.record_failure(key, now, max_attempts, lockout))

    async def attempts(self, key: str) -> AttemptState:
        return await self._read(lambda: self.plans.attempts(key))

    async def clear_attempts(self, key: str) -> None:
        await self._atomic(lambda: self.plans.clear_attempts(key))

    async def purge(self, *, now: datetime) -> int:
        return await self._atomic(lambda: self.plans.purge(now))


def _jitter(attempt: int) -> float:
    return random.uniform(0, min(0.05, 0.002 * 2**attempt))  # noqa: S311 - jitter, not a secret


def _gave_up() -> StorageError:
    return StorageError(f"the session store kept conflicting; gave up after {_ATTEMPTS} attempts")


def _attempt(m: Mapping[Any, Any]) -> AttemptState:
    return _stored_attempts([m["failures"], m["locked_until"], m["lockouts"]])


def _replace(session: SessionRecord, **changes: Any) -> SessionRecord:
    return dataclasses.replace(session, **changes)
