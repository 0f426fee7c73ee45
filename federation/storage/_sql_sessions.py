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

Must not: decide session policy; it stores what the session layer decides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import StorageConflict, StorageError
from ._session_protocol import (
    AttemptState,
    NewRefreshToken,
    RefreshUse,
    SessionRecord,
    UserSessionState,
    after_failure,
)

if TYPE_CHECKING:
    from ._sql import SQLStore

__all__ = ["SQLSessionStore"]

T = TypeVar("T")
_ATTEMPTS = 8
#: A claim_once marker's jti: the prefix and the SHA-256 of the key (fits the 128-character column).
CLAIM_PREFIX = "once:"


def _upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` with ``ON CONFLICT`` clauses, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StorageError(f"the session store supports SQLite and PostgreSQL, not {conn.dialect.name}")


def _session(m: Mapping[Any, Any]) -> SessionRecord:
    return SessionRecord(
        session_id=m["session_id"],
        user_id=m["user_id"],
        issued_at=m["issued_at"],
        expires_at=m["expires_at"],
        refreshed_at=m["refreshed_at"],
        revoked_at=m["revoked_at"],
        generation=int(m["generation"]),
    )


class SQLSessionStore:
    """The session store on an :class:`~federation.storage.SQLStore`'s database."""

    def __init__(self, store: SQLStore) -> None:
        self.sql = store
        self.sessions = store.sessions_table
        self.refresh = store.refresh_table
        self.revoked = store.revoked_table
        self.generations = store.generations_table
        self.attempts_table = store.attempts_table

    def _atomic(self, step: Callable[[Connection], T]) -> T:
        """Run ``step`` in one transaction; a conflict (deadlock, serialization failure) runs it again.

        Any other failure (a duplicate session id, say) is no race: it raises at once.
        """
        self.sql._ensure_schema()
        last: StorageConflict | None = None
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))  # noqa: S311 - jitter
            try:
                with self.sql._connection() as conn:
                    return step(conn)
            except StorageConflict as exc:
                last = exc
        raise StorageError(
            f"the session store kept conflicting; gave up after {_ATTEMPTS} attempts"
        ) from last

    def _read(self, step: Callable[[Connection], T]) -> T:
        self.sql._ensure_schema()
        with self.sql._connection(unlocked_read=True) as conn:
            return step(conn)

    # -- sessions and refresh tokens ------------------------------------------------------

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        """Store a new session and its first refresh token."""

        def step(conn: Connection) -> None:
            conn.execute(
                insert(self.sessions).values(
                    session_id=session.session_id,
                    user_id=session.user_id,
                    issued_at=session.issued_at,
                    expires_at=session.expires_at,
                    refreshed_at=session.refreshed_at,
                    revoked_at=session.revoked_at,
                    generation=session.generation,
                )
            )
            if refresh is not None:
                self._insert_refresh(conn, session.session_id, refresh)

        self._atomic(step)

    def _insert_refresh(self, conn: Connection, session_id: str, refresh: NewRefreshToken) -> None:
        conn.execute(
            insert(self.refresh).values(
                token_hash=refresh.token_hash,
                session_id=session_id,
                issued_at=refresh.issued_at,
                expires_at=refresh.expires_at,
            )
        )

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        """Present a refresh token (the protocol's rules), locking its row then its session's."""
        r, s = self.refresh, self.sessions

        def step(conn: Connection) -> RefreshUse:
            token = conn.execute(select(r).where(r.c.token_hash == token_hash).with_for_update()).first()
            if token is None:
                return RefreshUse("unknown")
            t = token._mapping
            row = conn.execute(select(s).where(s.c.session_id == t["session_id"]).with_for_update()).first()
            if row is None:
                return RefreshUse("unknown")
            session = _session(row._mapping)
            if session.revoked_at is not None:
                return RefreshUse("revoked", session)
            if t["expires_at"] <= now:
                return RefreshUse("expired", session)
            used_at: datetime | None = t["used_at"]
            if used_at is None:
                conn.execute(update(r).where(r.c.token_hash == token_hash).values(used_at=now))
                outcome = "rotated"
            elif now - used_at <= timedelta(seconds=grace):
                outcome = "grace"
            else:
                conn.execute(update(s).where(s.c.session_id == session.session_id).values(revoked_at=now))
                return RefreshUse("reused", _replace(session, revoked_at=now))
            self._insert_refresh(conn, session.session_id, successor)
            ends = max(session.expires_at, successor.expires_at)
            conn.execute(
                update(s)
                .where(s.c.session_id == session.session_id)
                .values(refreshed_at=now, expires_at=ends)
            )
            return RefreshUse(outcome, _replace(session, refreshed_at=now, expires_at=ends))  # type: ignore[arg-type]

        return self._atomic(step)

    def find_refresh(self, token_hash: str) -> SessionRecord | None:
        """The session of a refresh token, or None."""
        r, s = self.refresh, self.sessions
        query = select(s).join(r, r.c.session_id == s.c.session_id).where(r.c.token_hash == token_hash)
        row = self._read(lambda conn: conn.execute(query).first())
        return None if row is None else _session(row._mapping)

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        s = self.sessions
        row = self._read(lambda conn: conn.execute(select(s).where(s.c.session_id == session_id)).first())
        return None if row is None else _session(row._mapping)

    def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        """Revoke a session; the first ``revoked_at`` stays."""
        s = self.sessions

        def step(conn: Connection) -> SessionRecord | None:
            conn.execute(
                update(s).where(s.c.session_id == session_id, s.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            row = conn.execute(select(s).where(s.c.session_id == session_id)).first()
            return None if row is None else _session(row._mapping)

        return self._atomic(step)

    # -- revocations and generations --------------------------------------------------------

    def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse an access token until it expires (idempotent)."""
        v = self.revoked

        def step(conn: Connection) -> None:
            stmt = _upsert(conn, v).values(jti=jti, user_id=user_id, expires_at=expires_at)
            # The later expiry wins: a second revocation never shortens the first.
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[v.c.jti],
                    set_={"expires_at": stmt.excluded.expires_at},
                    where=v.c.expires_at < stmt.excluded.expires_at,
                )
            )

        self._atomic(step)

    def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed: one insert that a second claim conflicts with.

        Kept in the revoked-token table under the user id ``""`` (no user has it), so
        ``purge`` forgets it once it expires and no schema change was needed.
        """
        v = self.revoked
        marker = CLAIM_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

        def step(conn: Connection) -> bool:
            stmt = _upsert(conn, v).values(jti=marker, user_id="", expires_at=expires_at)
            stmt = stmt.on_conflict_do_nothing(index_elements=[v.c.jti])
            if conn.dialect.insert_returning:  # rowcount is not reliable through every driver
                return conn.execute(stmt.returning(v.c.jti)).first() is not None
            return bool(conn.execute(stmt).rowcount == 1)

        return self._atomic(step)

    def bump_generation(self, user_id: str) -> int:
        """Increment the user's generation: one upsert, the row locked until commit."""
        g = self.generations

        def step(conn: Connection) -> int:
            stmt = _upsert(conn, g).values(user_id=user_id, generation=1)
            stmt = stmt.on_conflict_do_update(
                index_elements=[g.c.user_id], set_={"generation": g.c.generation + 1}
            )
            if conn.dialect.insert_returning:  # PostgreSQL; SQLite from 3.35
                return int(conn.execute(stmt.returning(g.c.generation)).scalar_one())
            # Older SQLite: BEGIN IMMEDIATE holds the write lock, so the read sees our write.
            conn.execute(stmt)
            return int(conn.execute(select(g.c.generation).where(g.c.user_id == user_id)).scalar_one())

        return self._atomic(step)

    def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        """The user's generation and live revocations, in one connection."""
        g, s, v = self.generations, self.sessions, self.revoked

        def step(conn: Connection) -> UserSessionState:
            generation = conn.execute(select(g.c.generation).where(g.c.user_id == user_id)).scalar()
            sessions = conn.execute(
                select(s.c.session_id).where(
                    s.c.user_id == user_id, s.c.revoked_at.is_not(None), s.c.expires_at > now
                )
            ).scalars()
            revoked_sessions = frozenset(sessions)
            jtis = conn.execute(select(v.c.jti).where(v.c.user_id == user_id, v.c.expires_at > now)).scalars()
            return UserSessionState(int(generation or 0), revoked_sessions, frozenset(jtis))

        return self._read(step)

    def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        """The user's live sessions, oldest first."""
        s = self.sessions
        query = (
            select(s)
            .where(s.c.user_id == user_id, s.c.revoked_at.is_(None), s.c.expires_at > now)
            .order_by(s.c.issued_at, s.c.session_id)
        )
        return self._read(lambda conn: [_session(row._mapping) for row in conn.execute(query)])

    # -- attempts -------------------------------------------------------------------------

    def record_failure(self, key: str, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
        """Count a failed attempt; lock when the count reaches ``max_attempts``."""
        a = self.attempts_table

        def step(conn: Connection) -> AttemptState:
            # Make sure the row exists (a racing first failure just finds it), then lock it:
            # concurrent failures under one key queue on the row lock and each counts.
            zero = _upsert(conn, a).values(key=key, failures=0, locked_until=None, lockouts=0)
            conn.execute(zero.on_conflict_do_nothing(index_elements=[a.c.key]))
            row = conn.execute(select(a).where(a.c.key == key).with_for_update()).one()
            state = after_failure(_attempt(row._mapping), now=now, max_attempts=max_attempts, lockout=lockout)
            conn.execute(
                update(a)
                .where(a.c.key == key)
                .values(failures=state.failures, locked_until=state.locked_until, lockouts=state.lockouts)
            )
            return state

        return self._atomic(step)

    def attempts(self, key: str) -> AttemptState:
        """The attempt state under ``key``."""
        a = self.attempts_table
        row = self._read(lambda conn: conn.execute(select(a).where(a.c.key == key)).first())
        return AttemptState() if row is None else _attempt(row._mapping)

    def clear_attempts(self, key: str) -> None:
        """Forget ``key``'s failures."""
        a = self.attempts_table
        self._atomic(lambda conn: conn.execute(delete(a).where(a.c.key == key)))

    def purge(self, *, now: datetime) -> int:
        """Delete sessions, refresh tokens and revoked jtis that ended before ``now``."""
        r, s, v = self.refresh, self.sessions, self.revoked

        def step(conn: Connection) -> int:
            ended = select(s.c.session_id).where(s.c.expires_at <= now)
            count = conn.execute(
                delete(r).where((r.c.expires_at <= now) | r.c.session_id.in_(ended))
            ).rowcount
            count += conn.execute(delete(s).where(s.c.expires_at <= now)).rowcount
            count += conn.execute(delete(v).where(v.c.expires_at <= now)).rowcount
            return int(count)

        return self._atomic(step)


def _attempt(m: Mapping[Any, Any]) -> AttemptState:
    return AttemptState(int(m["failures"]), m["locked_until"], int(m["lockouts"]))


def _replace(session: SessionRecord, **changes: Any) -> SessionRecord:
    return dataclasses.replace(session, **changes)
