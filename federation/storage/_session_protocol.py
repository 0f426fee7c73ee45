"""The session-store protocol: the app's own sessions, refresh families and revocations.

Owns: the records (:class:`SessionRecord`, :class:`NewRefreshToken`,
:class:`RefreshUse`, :class:`UserSessionState`, :class:`AttemptState`), the
:class:`SessionStore` protocol with the exact contract of each method, and
:class:`CredentialStore` (local password accounts, kept beside the users).

A session is one refresh family: the first refresh token, every token that
rotation issued from it, and every access token minted with them. Each method
is one atomic step, so a backend without transactions that span calls (Redis:
a Lua script per method) keeps the same contract as a SQL database. The
conformance suite (:mod:`federation.testing.session_conformance`) checks it.

Refresh tokens reach the store only as hashes (SHA-256 of the opaque
token, hex): a copy of the store does not let anyone refresh.

Must not: decide policy (how long tokens live, who may refresh): the session
layer passes every time and bound in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from ._records import NewUser, User

__all__ = [
    "MAX_LOCKOUT_DOUBLINGS",
    "AttemptState",
    "CredentialStore",
    "LocalCredential",
    "NewRefreshToken",
    "RefreshOutcome",
    "RefreshUse",
    "SessionRecord",
    "SessionStore",
    "UserSessionState",
    "after_failure",
    "purge_instant",
    "refresh_outcome",
]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session (refresh family) of a user.

    ``expires_at`` is when the family ends: its newest refresh token's expiry
    (or the access token's, when refresh tokens are off). ``refreshed_at``:
    the last rotation. ``revoked_at``: set once, by :meth:`SessionStore.revoke_session`
    or a detected reuse; a revoked session's tokens are all refused.
    ``generation``: the user's generation when the session was issued; once
    the user's generation moves on, the session is dead.
    """

    session_id: str
    user_id: str
    issued_at: datetime
    expires_at: datetime
    refreshed_at: datetime | None = None
    revoked_at: datetime | None = None
    generation: int = 0

    def live(self, now: datetime) -> bool:
        """Neither revoked nor past its end."""
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    """A refresh token to store: its hash, and when it stops being usable."""

    token_hash: str
    issued_at: datetime
    expires_at: datetime


#: What presenting a refresh token did (:meth:`SessionStore.use_refresh`).
RefreshOutcome = Literal["rotated", "grace", "reused", "revoked", "expired", "unknown"]


@dataclass(frozen=True, slots=True)
class RefreshUse:
    """The outcome of one refresh-token presentation, and its session as it now is.

    * ``rotated``: the token was unused; it is now used and the successor stored.
    * ``grace``: it was used at most ``grace`` seconds ago; the successor is stored too.
    * ``reused``: it was used longer ago; the session is now revoked (nothing stored).
    * ``revoked``: the session was revoked already; ``expired``: the token is past
      its expiry; ``unknown``: no such token (``session`` is None).
    """

    outcome: RefreshOutcome
    session: SessionRecord | None = None


@dataclass(frozen=True, slots=True)
class UserSessionState:
    """What refusing a user's tokens needs, read in one step.

    ``generation``: the user's token generation (0 until first bumped); a
    token minted under an earlier generation is refused. ``revoked_sessions``
    and ``revoked_jtis``: the user's revoked sessions and access tokens that
    have not expired yet.
    """

    generation: int = 0
    revoked_sessions: frozenset[str] = frozenset()
    revoked_jtis: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AttemptState:
    """Failed sign-in attempts under one key (an account, a client address).

    ``failures`` since the last lockout or success; ``locked_until`` the end of
    the current lockout (None when not locked); ``lockouts`` how many lockouts
    happened since the last success (each doubles the next).
    """

    failures: int = 0
    locked_until: datetime | None = None
    lockouts: int = 0


def purge_instant(now: object) -> datetime:
    """``purge``'s ``now``: a timezone-aware datetime. A Unix time (``time.time()``, what
    the rest of the API's clocks give) or a naive datetime is a ``TypeError`` saying so,
    not a driver's error that reads like a database outage."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise TypeError("purge(now=...) takes a timezone-aware datetime, such as datetime.now(timezone.utc)")
    return now


#: A lockout doubles on each repeat up to this many times (300 s becomes at most 21 hours):
#: without a bound, a burst of guesses locked an account for centuries, then overflowed.
MAX_LOCKOUT_DOUBLINGS = 8


def after_failure(state: AttemptState, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
    """The attempt state after one more failure (the rule of :meth:`SessionStore.record_failure`).

    A failure while a lockout runs changes nothing: it is an attempt that began before the
    lock (the password check is slow) and landed after it, and counting it started a new,
    doubled lockout at once, so one burst of parallel guesses locked an account for days.
    """
    if state.locked_until is not None and state.locked_until > now:
        return state
    if state.locked_until is not None:
        state = AttemptState(0, None, state.lockouts)  # an ended lockout starts a new count
    failures = state.failures + 1
    if failures >= max_attempts:
        seconds = lockout * 2 ** min(state.lockouts, MAX_LOCKOUT_DOUBLINGS)
        return AttemptState(0, now + timedelta(seconds=seconds), state.lockouts + 1)
    return AttemptState(failures, state.locked_until, state.lockouts)


def refresh_outcome(
    session: SessionRecord, expires_at: datetime, used_at: datetime | None, *, now: datetime, grace: float
) -> RefreshOutcome:
    """What presenting a known refresh token of ``session`` does (the rule of
    :meth:`SessionStore.use_refresh`): ``revoked`` or ``expired`` (nothing changes),
    ``rotated`` (unused) or ``grace`` (used at most ``grace`` seconds ago: the successor is
    stored either way), ``reused`` (used longer ago: revoke the session)."""
    if session.revoked_at is not None:
        return "revoked"
    if expires_at <= now:
        return "expired"
    if used_at is None:
        return "rotated"
    return "grace" if now - used_at <= timedelta(seconds=grace) else "reused"


class SessionStore(Protocol):
    """Where sessions, refresh families, revocations and generations live.

    Every method is atomic on its own and safe to call from many threads and
    processes at once. Times are timezone-aware UTC.
    """

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        """Store a new session and, when given, its first refresh token."""
        ...

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        """Present the refresh token ``token_hash``, in one atomic step.

        Unknown: ``unknown``. Session revoked: ``revoked``. Token expired
        (``expires_at <= now``): ``expired``. Unused: mark it used at ``now``,
        store ``successor`` in its session, set the session's ``refreshed_at``
        to ``now`` and ``expires_at`` to the successor's: ``rotated``. Used at
        most ``grace`` seconds before ``now``: the same, ``grace``. Used longer
        ago: revoke the session at ``now`` (every token of it): ``reused``.
        Two concurrent presentations of an unused token: exactly one rotates.
        """
        ...

    def find_refresh(self, token_hash: str) -> SessionRecord | None:
        """The session of the refresh token ``token_hash`` (used or not), or None."""
        ...

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None when unknown (or purged)."""
        ...

    def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        """Revoke the session (idempotent: the first ``revoked_at`` stays); None when unknown."""
        ...

    def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse the access token ``jti`` of ``user_id`` until ``expires_at`` (idempotent)."""
        ...

    def bump_generation(self, user_id: str) -> int:
        """Increment the user's generation atomically; return the new value (1 the first time)."""
        ...

    def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed, False ever after (atomically: of concurrent
        claims exactly one wins); the claim may be forgotten once ``expires_at`` has passed.
        The replay cache of single-use tokens (a ``/sso`` URL token's jti)."""
        ...

    def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        """The user's generation, revoked live sessions and revoked unexpired jtis."""
        ...

    def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        """The user's live sessions (not revoked, not ended), oldest first."""
        ...

    def record_failure(self, key: str, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
        """Count a failed attempt under ``key``, atomically.

        A lockout that has ended clears the failure count first. When the
        count reaches ``max_attempts`` the key is locked for
        ``lockout * 2**lockouts`` seconds, ``lockouts`` grows by one and the
        count restarts at zero. Returns the state after the step.
        """
        ...

    def attempts(self, key: str) -> AttemptState:
        """The attempt state under ``key`` (all zero when none)."""
        ...

    def clear_attempts(self, key: str) -> None:
        """Forget ``key``'s failures and lockouts (after a successful sign-in)."""
        ...

    def purge(self, *, now: datetime) -> int:
        """Delete sessions, refresh tokens and revoked jtis that ended before ``now``;
        return how many rows went. Generations and attempt state are kept."""
        ...


@dataclass(frozen=True, slots=True)
class LocalCredential:
    """A local account's password: the argon2 hash (PHC string) and the keys it signs in with.

    ``username_key`` and ``email_key`` are the lower-cased username and
    :func:`~federation.storage.email_key` of the email: each unique among
    local accounts.
    """

    user_id: str
    username_key: str
    email_key: str | None
    password_hash: str
    updated_at: datetime


class CredentialStore(Protocol):
    """Optional on a user store: local password accounts (``local_accounts:``).

    Deleting a user (``delete_user``) deletes its credential too.
    """

    def insert_local_user(
        self, user: NewUser, *, username_key: str, email_key: str | None, password_hash: str
    ) -> str:
        """Insert the user and its credential atomically; return the user's id.

        Raise :class:`~federation.errors.DuplicateIdentity` when another local
        account has this ``username_key`` or ``email_key`` (nothing is written).
        """
        ...

    def find_credential(self, login_key: str) -> tuple[LocalCredential, User | None] | None:
        """The credential whose ``username_key`` or ``email_key`` equals ``login_key``, and its user."""
        ...

    def set_password_hash(self, user_id: str, password_hash: str, *, now: datetime) -> None:
        """Replace the user's password hash (a rehash, a password change)."""
        ...
