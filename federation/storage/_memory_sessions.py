"""The in-process session store: sessions, refresh families and revocations in dicts.

Owns: :class:`MemorySessionStore`, the reference implementation of
:class:`~federation.storage.SessionStore` (``revocation: memory``, tests).
One lock makes every method one atomic step; nothing persists, and nothing
is shared between processes.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

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

__all__ = ["MemorySessionStore"]


@dataclass(slots=True)
class _Refresh:
    session_id: str
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(slots=True)
class _UserRow:
    generation: int = 0
    sessions: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)  # of sessions: user_state reads these only
    revoked_jtis: dict[str, datetime] = field(default_factory=dict)


class MemorySessionStore:
    """Sessions and revocations of one process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, datetime] = {}
        self._sessions: dict[str, SessionRecord] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._users: dict[str, _UserRow] = {}
        self._attempts: dict[str, AttemptState] = {}

    def _user(self, user_id: str) -> _UserRow:
        row = self._users.get(user_id)
        if row is None:
            row = self._users[user_id] = _UserRow()
        return row

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        """Store a new session and its first refresh token."""
        with self._lock:
            self._sessions[session.session_id] = session
            self._user(session.user_id).sessions.add(session.session_id)
            if refresh is not None:
                self._refresh[refresh.token_hash] = _Refresh(session.session_id, refresh.expires_at)

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        """Present a refresh token (see the protocol for the rules)."""
        with self._lock:
            token = self._refresh.get(token_hash)
            if token is None:
                return RefreshUse("unknown")
            session = self._sessions.get(token.session_id)
            if session is None:
                return RefreshUse("unknown")
            outcome = refresh_outcome(session, token.expires_at, token.used_at, now=now, grace=grace)
            if outcome in ("revoked", "expired"):
                return RefreshUse(outcome, session)
            if outcome == "reused":
                return RefreshUse("reused", self._revoke(session, now))
            if outcome == "rotated":
                token.used_at = now
            self._refresh[successor.token_hash] = _Refresh(session.session_id, successor.expires_at)
            session = self._sessions[session.session_id] = dataclasses.replace(
                session, refreshed_at=now, expires_at=max(session.expires_at, successor.expires_at)
            )
            return RefreshUse(outcome, session)

    def find_refresh(self, token_hash: str) -> SessionRecord | None:
        """The session of a refresh token, or None."""
        with self._lock:
            token = self._refresh.get(token_hash)
            return None if token is None else self._sessions.get(token.session_id)

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        with self._lock:
            return self._sessions.get(session_id)

    def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        """Revoke a session (idempotent)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.revoked_at is not None:
                return session
            return self._revoke(session, now)

    def _revoke(self, session: SessionRecord, now: datetime) -> SessionRecord:
        revoked = self._sessions[session.session_id] = dataclasses.replace(session, revoked_at=now)
        self._user(session.user_id).revoked.add(session.session_id)
        return revoked

    def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse an access token until it expires."""
        with self._lock:
            revoked = self._user(user_id).revoked_jtis
            revoked[jti] = max(expires_at, revoked.get(jti, expires_at))

    def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed."""
        with self._lock:
            if key in self._claims:
                return False
            self._claims[key] = expires_at
            return True

    def bump_generation(self, user_id: str) -> int:
        """Increment the user's generation."""
        with self._lock:
            row = self._user(user_id)
            row.generation += 1
            return row.generation

    def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        """The user's generation and live revocations."""
        with self._lock:
            row = self._users.get(user_id)
            if row is None:
                return UserSessionState()
            revoked = frozenset(
                sid
                for sid in row.revoked
                if (s := self._sessions.get(sid)) is not None and s.expires_at > now
            )
            jtis = frozenset(jti for jti, until in row.revoked_jtis.items() if until > now)
            return UserSessionState(row.generation, revoked, jtis)

    def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        """The user's live sessions, oldest first."""
        with self._lock:
            row = self._users.get(user_id)
            found = [self._sessions[sid] for sid in (row.sessions if row else ()) if sid in self._sessions]
        live = [s for s in found if s.live(now)]
        return sorted(live, key=lambda s: (s.issued_at, s.session_id))

    def record_failure(self, key: str, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
        """Count a failed attempt; lock when the count reaches ``max_attempts``."""
        with self._lock:
            state = after_failure(
                self._attempts.get(key, AttemptState()), now=now, max_attempts=max_attempts, lockout=lockout
            )
            self._attempts[key] = state
            return state

    def attempts(self, key: str) -> AttemptState:
        """The attempt state under ``key``."""
        with self._lock:
            return self._attempts.get(key, AttemptState())

    def clear_attempts(self, key: str) -> None:
        """Forget ``key``'s failures."""
        with self._lock:
            self._attempts.pop(key, None)

    def purge(self, *, now: datetime) -> int:
        """Delete what ended before ``now``."""
        now = purge_instant(now)
        with self._lock:
            ended = {sid for sid, s in self._sessions.items() if s.expires_at <= now}
            gone = [h for h, t in self._refresh.items() if t.session_id in ended or t.expires_at <= now]
            for h in gone:
                del self._refresh[h]
            count = len(gone)
            for sid in ended:
                session = self._sessions.pop(sid)
                self._user(session.user_id).sessions.discard(sid)
                self._user(session.user_id).revoked.discard(sid)
                count += 1
            for row in self._users.values():
                old = [jti for jti, until in row.revoked_jtis.items() if until <= now]
                for jti in old:
                    del row.revoked_jtis[jti]
                count += len(old)
            claims = [k for k, until in self._claims.items() if until <= now]
            for k in claims:
                del self._claims[k]
            return count + len(claims)
