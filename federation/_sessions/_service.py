"""The session layer: issue, authenticate, refresh and revoke the app's own tokens.

Owns: the rules of docs/sessions.md — one refresh family per session,
rotation with a reuse grace, revocation by ``jti``, by session and by the
user's generation, the per-request path with its verified-token cache and
its bounded-staleness user cache, and the audit events of each step.

Each operation is written once, as a generator that yields the I/O it needs
(:class:`_Step`: a store call, a login, a key lookup) and receives the
result; :func:`_drive` runs it for sync callers and :func:`_adrive` for
async ones (blocking stores in a worker thread, memory stores inline).
A repeated session token is answered from memory without any step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import secrets
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from .._rfc7515 import CompactJWS, Limits, parse_compact
from .._rfc7519 import later
from ..errors import (
    AccountDisabled,
    AccountExists,
    AccountLocked,
    ConfigError,
    DuplicateIdentity,
    InvalidClaim,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    InvalidUserData,
    MalformedToken,
    RefreshReused,
    RegistrationClosed,
    TokenExpired,
    TokenNotYetValid,
    TokenRevoked,
)
from ..frozen import fast_init, record_factory
from ..storage import (
    ACCOUNT_LOCKED,
    LOGIN_SUCCEEDED,
    PASSWORD_LOGIN_FAILED,
    REFRESH_REUSED,
    SESSION_ISSUED,
    SESSION_REFRESHED,
    SESSION_REVOKED,
    USER_CREATED,
    USER_SESSIONS_REVOKED,
    AttemptState,
    AuditEvent,
    AuditSink,
    CredentialStore,
    LocalCredential,
    MemorySessionStore,
    NewRefreshToken,
    NewUser,
    SessionRecord,
    SessionStore,
    User,
    UserIdentity,
    UserSessionState,
    deliver,
    email_key,
)
from ._passwords import Passwords, account_key, address_key, login_key
from ._tokens import AccessClaims, SessionTokens

if TYPE_CHECKING:
    from .._oidc_logout import LogoutToken
    from ..provisioning import LoginResult, Provisioner
    from ..spi import VerifiedToken

__all__ = ["Principal", "Session", "SessionPolicy", "SessionService", "refresh_hash"]

T = TypeVar("T")
Kind = Literal["session", "external"]

#: The verified-token cache's byte bound (tokens and their claims), whatever ``token_cache_size`` is.
TOKEN_CACHE_BYTES = 32 * 1024 * 1024
#: How many users' status and revocation state one process keeps.
USER_CACHE_SIZE = 100_000
_ENTRY_OVERHEAD = 1024  # a cached entry's claims and bookkeeping, roughly
#: How long past a logout token's ``exp`` its ``jti`` stays claimed: the largest leeway.
_LOGOUT_CLAIM_PAST_EXPIRY = 300
#: A logout token acted on is marked so with its user's revocations (a replay is refused).
_LOGOUT_DONE = "backchannel-done:"
#: How long ``revoke_user`` keeps refusing external tokens issued before it: longer than any
#: provider's tokens live (a day at most: Cognito's longest; Entra, Google, Firebase an hour).
EXTERNAL_REVOCATION_TTL = 2 * 86400
#: An external token carries no generation, so ``revoke_user`` also stores a time, kept in
#: the store's revoked jtis (no store needs a new method) under this prefix; an external
#: token issued (``iat``) before the latest such time is refused.
_REVOKED_BEFORE = "revoked-before:"
_REVOKED_BEFORE_MESSAGE = "the token was revoked (its user's tokens were revoked after it was issued)"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """The ``sessions:`` knobs the service applies (seconds)."""

    access_ttl: int = 3600
    refresh_ttl: int = 1209600
    refresh_reuse_grace: float = 10
    max_lifetime: int = 2592000  # 0: none
    touch_interval: float = 300
    revoke_previous: bool = False
    user_check: float = 30
    token_cache_size: int = 10000
    outage_grace: float = 0


@dataclass(frozen=True, slots=True)
class Session:
    """What issuing or refreshing returns: the token pair and the user it is for.

    ``expires_at`` is the access token's expiry; ``refresh_token`` is None when
    refresh tokens are off (``refresh_ttl: 0``). The repr never shows a token.
    """

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    issued_at: datetime
    user: User
    session_id: str
    refresh_expires_at: datetime | None = None
    token_type: str = "Bearer"

    @property
    def expires_in(self) -> int:
        """Seconds the access token lives from its issue (RFC 6749 ``expires_in``)."""
        return int((self.expires_at - self.issued_at).total_seconds())

    def __repr__(self) -> str:
        return f"Session(user_id={self.user.id!r}, session_id={self.session_id!r})"


@fast_init  # built for every admission
@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the user, the verified token and its kind.

    ``kind`` is ``session`` (the app's own access token; ``token`` its
    :class:`~federation.sessions.AccessClaims`) or ``external`` (an issuer's
    token; ``token`` its :class:`~federation.spi.VerifiedToken`). ``roles``:
    the session token's roles, or the user's roles for an external token.
    """

    user: User
    token: AccessClaims | VerifiedToken
    kind: Kind
    roles: frozenset[str]
    session_id: str | None = None

    def __repr__(self) -> str:
        return f"Principal(user_id={self.user.id!r}, kind={self.kind!r})"


_make_principal = record_factory(Principal)


def refresh_hash(token: str) -> str:
    """How a refresh token is stored: SHA-256, hex (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# -- I/O steps ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """One piece of I/O: ``run`` for sync callers; ``arun`` (awaited) or ``run`` for async ones."""

    run: Callable[[], Any]
    arun: Callable[[], Awaitable[Any]] | None = None
    blocking: bool = True


Flow = Generator[_Step, Any, T]


def _drive(flow: Flow[T]) -> T:
    try:
        step = next(flow)
        while True:
            try:
                result = step.run()
            except BaseException as exc:  # the flow decides what a failed step means
                step = flow.throw(exc)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return cast(T, stop.value)


async def _adrive(flow: Flow[T]) -> T:
    try:
        step = next(flow)
        while True:
            try:
                if step.arun is not None:
                    result = await step.arun()
                elif step.blocking:
                    result = await asyncio.to_thread(step.run)
                else:
                    result = step.run()
            except BaseException as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(result)
    except StopIteration as stop:
        return cast(T, stop.value)


# -- caches -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _UserEntry:
    """What this process knows of a user, and until when it may serve it without a read."""

    user: User | None
    state: UserSessionState
    fetched: float
    fresh_until: float  # fetched + user_check
    touch_due: float  # when authenticate should write last_login_at again
    external_cutoff: float  # an external token issued (iat) before this is revoked; -inf: none
    since: int  # the service's forget count when the state was read (see SessionService._remember)


def _external_cutoff(state: UserSessionState | None) -> float:
    """The first second ``revoke_user`` left valid for external tokens (-inf when never called).

    ``iat`` has whole seconds: a token of the revoking second is refused, whichever side of
    the call it was issued on.
    """
    cutoff = -math.inf
    for jti in state.revoked_jtis if state is not None else ():
        if jti.startswith(_REVOKED_BEFORE):
            try:
                cutoff = max(cutoff, math.floor(float(jti.split(":")[1])) + 1)
            except (ValueError, OverflowError, IndexError):
                continue  # not one this service wrote
    return cutoff


def _issued_at(verified: VerifiedToken) -> float:
    """An external token's ``iat`` (-inf without one: refused by any revocation)."""
    iat = verified.claims.get("iat")
    if isinstance(iat, (int, float)) and not isinstance(iat, bool) and math.isfinite(iat):
        return float(iat)
    return -math.inf


@dataclass(slots=True)
class _Cached:
    """A token that authenticated: what a repeat must re-check, and nothing it need not."""

    kind: Kind
    user_id: str
    valid_until: float  # exp + leeway
    valid_from: float  # nbf - leeway (-inf without nbf)
    generation: int
    session_id: str | None
    jti: str | None
    roles: frozenset[str]
    size: int
    claims: AccessClaims | None = None
    verified: VerifiedToken | None = None
    key: Any = None  # the external token's verification key, compared by identity on a repeat
    # Its issuer's key source's keyset_cache (an object whose ``keyset`` is the current set and
    # ``fresh_until`` the end of its freshness), and the key set the token was verified with.
    keyset_cache: Any = None
    keyset: Any = None
    # The user entry the token was last admitted under, the principal, and the times between
    # which that admission holds (the entry's freshness, the token's validity and the touch
    # due, intersected): the same entry (replaced whenever the user or its revocation state is
    # read again) admits the same way. One tuple, so that a reader never pairs one thread's
    # entry with another's principal; two bounds, so that a repeat reads two floats, not five.
    admitted: tuple[_UserEntry, Principal, float, float] | None = None


def _check_id(value: object, what: str) -> None:
    """An id an application passed to an administrative call: printable text of at most 255
    characters (a lone surrogate or a number reached the driver as its own exception)."""
    if type(value) is not str or not value or len(value) > 255 or not value.isprintable():
        raise InvalidRequest(f"a {what} is a non-empty string of printable text (at most 255 characters)")


class SessionService:
    """The app's sessions over a :class:`~federation.storage.SessionStore`.

    ``provisioner`` gives user reads, logins and touches; ``verify_external``
    and ``key_of`` (sync and async) verify an issuer's token and look up its
    current key; ``clock`` returns Unix time.
    """

    def __init__(
        self,
        tokens: SessionTokens | None,
        store: SessionStore,
        provisioner: Callable[[], Provisioner],
        policy: SessionPolicy,
        *,
        clock: Callable[[], float],
        audit: Callable[[], AuditSink],
        external: ExternalTokens | None = None,
        limits: Limits | None = None,
        passwords: Passwords | None = None,
        default_roles: frozenset[str] = frozenset(),
    ) -> None:
        self.passwords = passwords
        self.default_roles = default_roles
        self._tokens = tokens
        self.store = store
        self.policy = policy
        self._provisioner = provisioner
        self._clock = clock
        self._audit = audit
        self._external = external
        self._leeway = tokens.leeway if tokens is not None else 0.0
        self._limits = limits or Limits()
        self._headers: dict[str, Any] = {}  # parse_compact's header cache (bounded there)
        self._blocking = not isinstance(store, MemorySessionStore)
        self._aio: Any = getattr(store, "aio", None)  # a store's asyncio twin (Redis)
        # A store shared by many processes tells each of them what another one revoked: forget
        # that user at once. While that news may be missed, memory is served only within
        # ``policy.outage_grace`` seconds (0: never; every request then reads the store).
        self._invalidations: Any = getattr(store, "invalidations", None)
        self._lock = threading.Lock()
        # Forgets, counted: a read that began before a forget of its user (or of all) is not kept.
        self._forgets = 0
        self._forgot: dict[str, int] = {}  # user -> the count at its latest forget (bounded)
        self._forgot_all = 0  # the count at the latest forget of every user
        # Read without the lock (a dict read is atomic); written under it, the oldest entries
        # evicted first (OrderedDict: O(1) at the front, where a dict's holes would pile up).
        # Bounded in entries and in bytes (tokens and their claims).
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_bytes = 0
        self._users: OrderedDict[str, _UserEntry] = OrderedDict()
        if self._invalidations is not None:
            self._invalidations.subscribe(self._forget_user, self._forget_users)

    # -- plumbing -------------------------------------------------------------------------

    @property
    def tokens(self) -> SessionTokens:
        """The session token minter and verifier (a ConfigError without ``sessions:``)."""
        if self._tokens is None:
            raise ConfigError("sessions are not configured: add a sessions: section", field="sessions")
        return self._tokens

    def _call(self, method: str, *args: Any, **kwargs: Any) -> _Step:
        """A session-store call: the store's ``method``, or its asyncio twin's (``store.aio``) for
        async callers, who then never wait on a thread."""
        sync = getattr(self.store, method)
        twin = getattr(self._aio, method, None) if self._aio is not None else None
        return _Step(
            lambda: sync(*args, **kwargs),
            (lambda: twin(*args, **kwargs)) if twin is not None else None,
            self._blocking,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=timezone.utc)

    def _emit(self, name: str, user_id: str | None, **detail: Any) -> None:
        deliver(self._audit(), [AuditEvent(name, self._now(), user_id, None, None, detail)])

    def _forget_user(self, user_id: str) -> None:
        """Drop what this process remembers of the user: its next request reads it again."""
        with self._lock:
            self._users.pop(user_id, None)
            self._forgets += 1
            if len(self._forgot) >= USER_CACHE_SIZE:  # bounded: as if every user were forgotten
                self._forgot.clear()
                self._forgot_all = self._forgets
            self._forgot[user_id] = self._forgets

    def _forget_users(self) -> None:
        """Drop what this process remembers of every user (revocations may have been missed)."""
        with self._lock:
            self._users.clear()
            self._forgets += 1
            self._forgot.clear()
            self._forgot_all = self._forgets

    def _fresh(self, entry: _UserEntry, now: float) -> bool:
        """Whether a remembered user may be served: within ``user_check``, and (a shared store)
        while another process's revocations still reach this one, or within ``outage_grace``."""
        if not entry.fetched <= now < entry.fresh_until:
            return False
        news = self._invalidations
        return news is None or news.lost_at is None or bool(news.trusted(self.policy.outage_grace))

    def _user_step(self, user_id: str) -> _Step:
        provisioner = self._provisioner()
        return _Step(lambda: provisioner.read_user(user_id), lambda: provisioner.aread_user(user_id))

    # -- issue ----------------------------------------------------------------------------

    def issue_flow(self, subject: User | LoginResult, via: str) -> Flow[Session]:
        """Mint a session (access token, refresh token) for an active user."""
        user = subject if isinstance(subject, User) else subject.user
        if user.status != "active":
            raise AccountDisabled("the account is disabled", user_id=user.id)
        now = self._now()
        state: UserSessionState | None = None
        if not isinstance(subject, User) or not self.policy.revoke_previous:
            state = yield self._call("user_state", user.id, now=now)
        if not isinstance(subject, User) and self._before_revocation(
            subject.token, _external_cutoff(state), now.timestamp()
        ):
            # A login by an external token issued before revoke_user, at any door.
            raise TokenRevoked(_REVOKED_BEFORE_MESSAGE)
        if self.policy.revoke_previous:
            generation = yield self._call("bump_generation", user.id)
            self._forget_user(user.id)
        else:
            assert state is not None
            generation = state.generation
        session, record, refresh = self._mint(user, roles=user.roles, generation=generation, now=now)
        yield self._call("create_session", record, refresh)
        if self.policy.revoke_previous:
            self._emit(USER_SESSIONS_REVOKED, user.id, reason="revoke_previous", generation=generation)
        self._emit(SESSION_ISSUED, user.id, session_id=record.session_id, via=via)
        return session

    def _before_revocation(self, verified: VerifiedToken, cutoff: float, now: float) -> bool:
        """Whether an external token was issued before the user's latest ``revoke_user``
        (``cutoff``: the first second after it): its ``iat`` is earlier; or, within the issuer's
        leeway after the call, its ``iat`` is in the future, as a token issued just before the
        call carries when the issuer's clock runs ahead. No ``iat``: issued before."""
        if cutoff == -math.inf:
            return False
        iat = _issued_at(verified)
        if iat < cutoff:
            return True
        external = self._external
        window = external.leeway(verified) if external is not None else 0.0
        return iat > now and now < cutoff + window

    def login_admitted_flow(self, result: LoginResult) -> Flow[int]:
        """For a sign-in that keeps its own session (Django's): refuse a login by an external
        token issued before ``revoke_user``, as :meth:`issue_flow` does; the user's generation,
        for the session to record (it ends when the generation moves)."""
        now = self._now()
        state: UserSessionState = yield self._call("user_state", result.user.id, now=now)
        if self._before_revocation(result.token, _external_cutoff(state), now.timestamp()):
            raise TokenRevoked(_REVOKED_BEFORE_MESSAGE)
        return state.generation

    def _mint(
        self,
        user: User,
        *,
        roles: frozenset[str],
        generation: int,
        now: datetime,
        session_id: str | None = None,
    ) -> tuple[Session, SessionRecord, NewRefreshToken | None]:
        sid = session_id or secrets.token_urlsafe(16)
        access, claims = self.tokens.issue(
            user.id, roles=roles, generation=generation, session_id=sid, now=now.timestamp()
        )
        expires = datetime.fromtimestamp(claims.expires_at, tz=timezone.utc)
        issued = datetime.fromtimestamp(claims.issued_at, tz=timezone.utc)
        refresh_token: str | None = None
        refresh: NewRefreshToken | None = None
        ends = expires
        if self.policy.refresh_ttl > 0:
            refresh_token = secrets.token_urlsafe(32)  # 256 bits
            refresh_ends = now + timedelta(seconds=self.policy.refresh_ttl)
            if self.policy.max_lifetime:  # never past the session's own end
                refresh_ends = min(refresh_ends, now + timedelta(seconds=self.policy.max_lifetime))
            refresh = NewRefreshToken(refresh_hash(refresh_token), now, refresh_ends)
            ends = max(ends, refresh_ends)
        record = SessionRecord(sid, user.id, now, ends, generation=generation)
        session = Session(
            access, refresh_token, expires, issued, user, sid, refresh.expires_at if refresh else None
        )
        return session, record, refresh

    # -- refresh --------------------------------------------------------------------------

    def refresh_flow(self, refresh_token: str) -> Flow[Session]:
        """Rotate a refresh token (see docs/sessions.md for the grace and reuse rules)."""
        if not isinstance(refresh_token, str) or not refresh_token or len(refresh_token) > 512:
            raise InvalidToken("not a refresh token of this app")
        now = self._now()
        digest = refresh_hash(refresh_token)
        successor_token = secrets.token_urlsafe(32)
        successor = NewRefreshToken(
            refresh_hash(successor_token), now, now + timedelta(seconds=self.policy.refresh_ttl)
        )
        grace = self.policy.refresh_reuse_grace
        use = yield self._call("use_refresh", digest, successor, now=now, grace=grace)
        record = use.session
        if use.outcome == "unknown" or record is None:
            raise InvalidToken("not a refresh token of this app")
        if use.outcome == "expired":
            raise TokenExpired("the refresh token has expired")
        if use.outcome == "revoked":
            raise TokenRevoked("the session was revoked")
        if use.outcome == "reused":
            self._forget_user(record.user_id)
            self._emit(REFRESH_REUSED, record.user_id, session_id=record.session_id)
            raise RefreshReused("the refresh token was used already; its whole session is revoked")
        lifetime = self.policy.max_lifetime
        if lifetime and now >= record.issued_at + timedelta(seconds=lifetime):
            # RFC 9700 §4.14.2: a refresh token expires, however often it is used; sign in again.
            yield self._call("revoke_session", record.session_id, now=now)
            raise TokenExpired(
                "the session reached its maximum lifetime; sign in again", code="session_too_old"
            )
        user: User | None = yield self._user_step(record.user_id)
        state: UserSessionState = yield self._call("user_state", record.user_id, now=now)
        moved = state.generation != record.generation
        if user is None or moved:
            yield self._call("revoke_session", record.session_id, now=now)
        if user is not None and user.status != "active":
            # Before the generation's answer: deprovisioning disables and moves the generation
            # at once, and its user is told the account is disabled, as authenticate says.
            raise AccountDisabled("the account is disabled", user_id=user.id)
        if user is None or moved:
            raise TokenRevoked("the session was revoked")
        access, claims = self.tokens.issue(
            user.id,
            roles=user.roles,
            generation=record.generation,
            session_id=record.session_id,
            now=now.timestamp(),
        )
        expires = datetime.fromtimestamp(claims.expires_at, tz=timezone.utc)
        issued = datetime.fromtimestamp(claims.issued_at, tz=timezone.utc)
        self._emit(SESSION_REFRESHED, user.id, session_id=record.session_id, outcome=use.outcome)
        ends = successor.expires_at
        if lifetime:  # what the client is told: never past the session's own end
            ends = min(ends, later(record.issued_at, lifetime))
        return Session(access, successor_token, expires, issued, user, record.session_id, ends)

    # -- revoke ---------------------------------------------------------------------------

    def revoke_flow(self, token: str) -> Flow[bool]:
        """Revoke an access token (its ``jti``) or a refresh token (its family); True when one was found."""
        if not isinstance(token, str) or not token:
            return False
        now = self._now()
        if "." in token:
            try:
                claims = self.tokens.verify(token, now=now.timestamp(), check_time=False)
            except InvalidToken:
                return False  # RFC 7009 §2.2: an invalid token is not an error
            until = datetime.fromtimestamp(claims.expires_at, tz=timezone.utc)
            yield self._call("revoke_token", claims.jti, user_id=claims.user_id, expires_at=until)
            self._drop(token)
            self._forget_user(claims.user_id)
            self._emit(SESSION_REVOKED, claims.user_id, jti=claims.jti, session_id=claims.session_id)
            return True
        if len(token) > 512:
            return False
        digest = refresh_hash(token)
        record: SessionRecord | None = yield self._call("find_refresh", digest)
        if record is None:
            return False
        return (yield from self.revoke_session_flow(record.session_id))

    def revoke_session_flow(self, session_id: str, reason: str | None = None) -> Flow[bool]:
        """Revoke one session (a family) at once; True when it exists. ``reason`` goes to the audit."""
        _check_id(session_id, "session id")
        now = self._now()
        record: SessionRecord | None = yield self._call("revoke_session", session_id, now=now)
        if record is None:
            return False
        self._forget_user(record.user_id)
        detail = {"reason": reason} if reason is not None else {}
        self._emit(SESSION_REVOKED, record.user_id, session_id=session_id, **detail)
        return True

    def revoke_user_flow(self, user_id: str, reason: str | None, audit: bool = True) -> Flow[int]:
        """Refuse every token of the user issued so far; return the new generation."""
        _check_id(user_id, "user id")
        generation: int = yield self._call("bump_generation", user_id)
        now = self._now()
        mark = f"{_REVOKED_BEFORE}{now.timestamp():.6f}:{hashlib.sha256(user_id.encode()).hexdigest()[:32]}"
        until = now + timedelta(seconds=EXTERNAL_REVOCATION_TTL)
        yield self._call("revoke_token", mark, user_id=user_id, expires_at=until)
        self._forget_user(user_id)
        if audit:
            self._emit(USER_SESSIONS_REVOKED, user_id, reason=reason or "revoke_user", generation=generation)
        return generation

    def logout_flow(self, logout: LogoutToken) -> Flow[str | None]:
        """OIDC back-channel logout: every session and token of the token's user, refused
        (``revoke_user``); the user's id, None when no user has that identity.

        A token is acted on once (its ``jti`` claimed until it expires): replayed later, it
        would end sessions begun after the logout it announced. A delivery that claimed it
        and failed before the revocation is finished by the provider's retry.
        """
        if logout.identity_key is None:
            raise InvalidClaim(
                "the logout token names only a provider session (sid): sessions here are ended by sub",
                claim="sub",
                code="logout_without_sub",
            )
        replayed = TokenRevoked("this logout token was used already", code="logout_token_replayed")
        key = f"backchannel-logout\x00{logout.issuer}\x00{logout.jti}"
        until = later(logout.expires_at, _LOGOUT_CLAIM_PAST_EXPIRY)
        first = yield self._call("claim_once", key, expires_at=until)
        provisioner = self._provisioner()
        issuer, subject = logout.identity_key
        identity: UserIdentity | None = yield _Step(
            lambda: provisioner.identity_of(issuer, subject),
            lambda: provisioner.aidentity_of(issuer, subject),
        )
        if identity is None:
            return None
        user_id = identity.user_id
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        done = f"{_LOGOUT_DONE}{digest}"  # kept with the user's revocations once acted on
        if not first:
            # Acted on already (the mark is there), or its first delivery found no such user
            # (the identity is younger than the token): a replay. Else that delivery failed
            # before revoking (storage down: a 503 the provider retries): this retry finishes it.
            state: UserSessionState = yield self._call("user_state", user_id, now=self._now())
            if done in state.revoked_jtis or identity.created_at > logout.issued_at:
                raise replayed
        yield from self.revoke_user_flow(user_id, "backchannel_logout")
        yield self._call("revoke_token", done, user_id=user_id, expires_at=until)
        return user_id

    def admit_login(self, result: LoginResult) -> int:
        """Sync driver of :meth:`login_admitted_flow`."""
        return _drive(self.login_admitted_flow(result))

    def current_generation(self, user_id: str, *, fresh: bool = False) -> int:
        """The user's token generation as ``authenticate`` serves it (from memory, at most
        ``user_check`` seconds old; ``fresh``: read from the store): a session of another
        framework that recorded the generation at sign-in (Django's) is revoked once it moved."""
        if fresh:
            state: UserSessionState = _drive(_single(self._call("user_state", user_id, now=self._now())))
            return state.generation
        return _drive(self._user_entry(user_id, self._clock())).state.generation

    def sessions_flow(self, user_id: str) -> Flow[list[SessionRecord]]:
        """The user's live sessions of the current generation, oldest first."""
        _check_id(user_id, "user id")
        now = self._now()
        state: UserSessionState = yield self._call("user_state", user_id, now=now)
        found: Sequence[SessionRecord] = yield self._call("sessions_of", user_id, now=now)
        return [s for s in found if s.generation == state.generation]

    # -- local accounts -------------------------------------------------------------------

    def _credentials(self) -> CredentialStore:
        store = self._provisioner().store
        if self.passwords is None:
            raise ConfigError("local accounts are not configured: add a local_accounts: section")
        if not callable(getattr(store, "find_credential", None)):
            raise ConfigError("local accounts need a store with credentials (SQLStore or MemoryStore)")
        return cast("CredentialStore", store)

    def register_flow(self, username: str, email: str | None, password: str) -> Flow[User]:
        """Create a local account (argon2id hash, the mapping's default roles); audited ``user_created``."""
        credentials, passwords = self._credentials(), self.passwords
        assert passwords is not None
        if not passwords.policy.registration:
            raise RegistrationClosed("registration of local accounts is closed", reason="local_accounts")
        name = _clean_username(username)
        address = _clean_email(email)
        passwords.check_new(password)
        now = self._now()
        user = NewUser(name, address, False, None, self.default_roles, {}, "active", now, now, None)
        digest: str = yield _Step(lambda: passwords.hash(password))
        username_key, mail_key = login_key(name), email_key(address)
        try:
            user_id: str = yield _Step(
                lambda: credentials.insert_local_user(
                    user, username_key=username_key, email_key=mail_key, password_hash=digest
                )
            )
        except DuplicateIdentity:
            raise AccountExists("a local account with this username or email exists") from None
        self._emit(USER_CREATED, user_id, provider="local")
        return user.with_id(user_id)

    def password_flow(self, login: str, password: str, client_address: str | None) -> Flow[Session]:
        """Sign in with a username or email and a password; a session, or one error for every failure."""
        credentials, passwords = self._credentials(), self.passwords
        assert passwords is not None
        policy, now = passwords.policy, self._now()
        if not isinstance(login, str) or not login or len(login) > 320:
            raise InvalidCredentials("the login or the password is wrong")
        key = login_key(login)
        keys = [account_key(key)] + ([address_key(client_address)] if client_address else [])
        yield from self._refuse_locked(keys, now)
        found: tuple[LocalCredential, User | None] | None = yield _Step(
            lambda: credentials.find_credential(key)
        )
        credential, user = found if found is not None else (None, None)
        if user is not None:
            # The account itself, whichever of its logins (username, email) was typed: one
            # count and one lock, not one per spelling (which doubled the guesses allowed
            # and let the email sign in while the username was locked).
            owner = account_key(f"user:{user.id}")
            yield from self._refuse_locked([owner], now)
            keys.insert(1, owner)
        stored = credential.password_hash if credential is not None else None
        ok, stale = yield _Step(lambda: passwords.check(stored, password))
        if not ok or credential is None or user is None:
            user_id = user.id if user is not None else None
            for limiter in keys:
                after: AttemptState = yield self._call(
                    "record_failure",
                    limiter,
                    now=now,
                    max_attempts=policy.max_attempts,
                    lockout=policy.lockout,
                )
                if after.locked_until is not None and after.failures == 0 and after.locked_until > now:
                    self._emit(ACCOUNT_LOCKED, user_id, key=limiter.split(":")[0], lockouts=after.lockouts)
            self._emit(PASSWORD_LOGIN_FAILED, user_id, reason="invalid_credentials")
            raise InvalidCredentials("the login or the password is wrong")
        if user.status != "active":
            self._emit(PASSWORD_LOGIN_FAILED, user.id, reason="account_disabled")
            raise AccountDisabled("the account is disabled", user_id=user.id)
        for limiter in keys[:2]:  # the login typed and its account; an address's count stays
            yield self._call("clear_attempts", limiter)
        if stale:  # other parameters, or a hash of the password as typed before NFC
            fresh: str = yield _Step(lambda: passwords.hash(password))
            yield _Step(lambda: credentials.set_password_hash(user.id, fresh, now=now))
        provisioner = self._provisioner()
        uid = user.id
        touched = yield _Step(lambda: provisioner.touch(uid), lambda: provisioner.atouch(uid))
        self._emit(LOGIN_SUCCEEDED, user.id, via="password")
        return (yield from self.issue_flow(touched or user, "password"))

    def _refuse_locked(self, keys: Sequence[str], now: datetime) -> Flow[None]:
        """:class:`~federation.errors.AccountLocked` while any of ``keys`` is locked."""
        for limiter in keys:
            state: AttemptState = yield self._call("attempts", limiter)
            if state.locked_until is not None and state.locked_until > now:
                retry = (state.locked_until - now).total_seconds()
                self._emit(PASSWORD_LOGIN_FAILED, None, reason="account_locked", key=limiter.split(":")[0])
                raise AccountLocked("too many failed sign-ins; try again later", retry_after=retry)

    # -- authenticate ---------------------------------------------------------------------

    def cached(self, token: str) -> Principal | None:
        """A repeated token answered from memory, or None when a step is needed.

        Re-checks on every hit: expiry, that the user's state is within
        ``user_check`` and no touch is due, and (external) that the issuer's
        key set is still the one the token was verified with.
        """
        hit = self._cache.get(token) if type(token) is str else None
        if hit is None:
            return None
        entry = self._users.get(hit.user_id)
        if entry is None:
            return None
        now = self._clock()
        admitted = hit.admitted
        if admitted is not None and admitted[0] is entry:  # the bounds below, intersected
            if not admitted[2] <= now < admitted[3]:
                return None
        elif (
            not (entry.fetched <= now < entry.fresh_until and hit.valid_from <= now < hit.valid_until)
            or now >= entry.touch_due
        ):
            return None  # a read or a touch is due, or the flow raises the expiry
        else:
            admitted = None
        news = self._invalidations  # inlined _fresh: this is the per-request path
        if news is not None and news.lost_at is not None and not news.trusted(self.policy.outage_grace):
            return None
        keys = hit.keyset_cache  # read in place, not called: this is the per-request path
        if keys is not None and (keys.keyset is not hit.keyset or now >= keys.fresh_until):
            return None  # refetched since, or past its TTL: the flow looks the key up again
        if admitted is not None:
            return admitted[1]
        return self._admit(token, hit, entry, now)

    def first_seen_session(self, token: str) -> Principal | None:
        """A session token not seen before, answered without a step when its user is in memory.

        Verifies and remembers the token as the flow would; None when it is not
        a session token of this app or its user needs a read or a touch (the
        flow then finds the token remembered and does only that step).
        """
        tokens = self._tokens
        if tokens is None or type(token) is not str:
            return None
        now = self._clock()
        jws = parse_compact(token, self._limits, self._headers)
        if jws.claims.get("iss") != tokens.issuer:
            return None
        hit = self._session_seen(token, jws, tokens, now)
        entry = self._users.get(hit.user_id)
        if entry is None or not self._fresh(entry, now) or now >= entry.touch_due:
            return None
        return self._admit(token, hit, entry, now)

    def authenticate(self, token: str) -> Principal:
        """:meth:`cached`, else :meth:`first_seen_session`, else the flow (the sync entry point)."""
        return (
            self.cached(token) or self.first_seen_session(token) or _drive(self.authenticate_flow(token))
        )

    async def aauthenticate(self, token: str) -> Principal:
        """Async twin of :meth:`authenticate` (a cache hit never leaves the event loop)."""
        hit = self.cached(token) or self.first_seen_session(token)
        return hit if hit is not None else await _adrive(self.authenticate_flow(token))

    def authenticate_flow(self, token: str) -> Flow[Principal]:
        """Who presents ``token``: a session token or an external token (one login per distinct token)."""
        if not isinstance(token, str):  # as verify() and login() refuse it (their code too)
            raise MalformedToken("token is not a string")
        now = self._clock()
        hit = self._cache.get(token)
        if hit is None:
            hit = yield from self._first_seen(token, now)
        elif hit.kind == "external":
            hit = yield from self._key_still_current(token, hit, now)
        entry = yield from self._user_entry(hit.user_id, now)
        if now >= entry.touch_due:
            provisioner = self._provisioner()
            uid = hit.user_id
            touched = yield _Step(lambda: provisioner.touch(uid), lambda: provisioner.atouch(uid))
            entry = self._remember(
                hit.user_id, touched if touched is not None else entry.user, entry.state, now, entry.since
            )
        return self._admit(token, hit, entry, now)

    def _first_seen(self, token: str, now: float) -> Flow[_Cached]:
        jws = parse_compact(token, self._limits, self._headers)
        tokens = self._tokens
        if tokens is not None and jws.claims.get("iss") == tokens.issuer:  # exact match, as for issuers
            return self._session_seen(token, jws, tokens, now)
        external = self._external
        if external is None:
            raise InvalidToken("not a session token of this app")
        verified, key = yield _Step(lambda: external.verify(token), lambda: external.averify(token))
        provisioner = self._provisioner()
        since = self._forgets
        result: LoginResult = yield _Step(
            lambda: provisioner.login(verified, trust_email=verified.issuer_trusts_email),
            lambda: provisioner.alogin(verified, trust_email=verified.issuer_trusts_email),
        )
        user_id = result.user.id
        at = self._now()
        state: UserSessionState = yield self._call("user_state", user_id, now=at)
        self._remember(user_id, result.user, state, now, since)
        nbf = verified.claims.get("nbf")
        leeway = external.leeway(verified)
        keys = getattr(external.source(verified), "keyset_cache", None)
        cached = _Cached(
            "external",
            user_id,
            verified.expires_at.timestamp() + leeway,
            float(nbf) - leeway if type(nbf) in (int, float) else -math.inf,
            state.generation,
            None,
            None,
            result.user.roles,
            len(token) + _ENTRY_OVERHEAD,
            verified=verified,
            key=key,
            keyset_cache=keys,
            keyset=keys.keyset if keys is not None else None,
        )
        self._keep(token, cached)
        return cached

    def _session_seen(self, token: str, jws: CompactJWS, tokens: SessionTokens, now: float) -> _Cached:
        """A parsed session token verified and remembered."""
        claims = tokens.verify_parsed(jws, now=now)
        cached = _Cached(
            "session",
            claims.user_id,
            claims.expires_at + self._leeway,
            -math.inf,
            claims.generation,
            claims.session_id,
            claims.jti,
            claims.roles,
            len(token) + _ENTRY_OVERHEAD,
            claims=claims,
        )
        self._keep(token, cached)
        return cached

    def _keep(self, token: str, cached: _Cached) -> None:
        limit = self.policy.token_cache_size
        if limit <= 0 or cached.size > TOKEN_CACHE_BYTES // 16:
            return
        with self._lock:
            old = self._cache.pop(token, None)
            if old is not None:
                self._cache_bytes -= old.size
            while self._cache and (
                len(self._cache) >= limit or self._cache_bytes + cached.size > TOKEN_CACHE_BYTES
            ):
                self._cache_bytes -= self._cache.popitem(last=False)[1].size
            self._cache[token] = cached
            self._cache_bytes += cached.size

    def _drop(self, token: str) -> None:
        with self._lock:
            old = self._cache.pop(token, None)
            if old is not None:
                self._cache_bytes -= old.size

    def _key_still_current(self, token: str, hit: _Cached, now: float) -> Flow[_Cached]:
        """A repeated external token: its key must still be in the issuer's current set."""
        external = self._external
        assert external is not None and hit.verified is not None
        verified = hit.verified
        try:
            key = yield _Step(lambda: external.key(verified), lambda: external.akey(verified))
        except InvalidToken:
            self._drop(token)
            raise TokenRevoked("the token's signing key was removed by its issuer") from None
        if key is not hit.key:  # the key set was refetched: verify the signature again
            self._drop(token)
            _verified, key = yield _Step(lambda: external.verify(token), lambda: external.averify(token))
        keys = hit.keyset_cache
        hit = dataclasses.replace(
            hit,
            key=key,
            keyset=keys.keyset if keys is not None else None,
            admitted=None,
        )
        self._keep(token, hit)
        return hit

    def _user_entry(self, user_id: str, now: float) -> Flow[_UserEntry]:
        entry = self._users.get(user_id)
        if entry is not None and self._fresh(entry, now):
            return entry
        at = self._now()
        since = self._forgets
        user: User | None = yield self._user_step(user_id)
        state: UserSessionState = yield self._call("user_state", user_id, now=at)
        return self._remember(user_id, user, state, now, since)

    def _remember(
        self, user_id: str, user: User | None, state: UserSessionState, now: float, since: int
    ) -> _UserEntry:
        """Keep what was read of a user for ``user_check`` seconds, unless a forget (a revocation
        here, or news of one from another process) came after the read began (``since``): the
        read may predate it, so it answers this request only and the next one reads again."""
        touch_due = float("inf")
        if user is not None and user.status == "active":
            last = user.last_login_at
            touch_due = -float("inf") if last is None else last.timestamp() + self.policy.touch_interval
        cutoff = _external_cutoff(state)
        with self._lock:
            if self._forgot_all > since or self._forgot.get(user_id, -1) > since:
                return _UserEntry(user, state, now, now, touch_due, cutoff, since)
            entry = _UserEntry(user, state, now, now + self.policy.user_check, touch_due, cutoff, since)
            if user_id not in self._users and len(self._users) >= USER_CACHE_SIZE:
                self._users.popitem(last=False)
            self._users[user_id] = entry
        return entry

    def _admit(self, token: str, hit: _Cached, entry: _UserEntry, now: float) -> Principal:
        """Every re-check a repeat makes: time, the user's status, revocations, generation."""
        if now >= hit.valid_until:
            self._drop(token)
            raise TokenExpired("the token has expired")
        if now < hit.valid_from:
            raise TokenNotYetValid("the token is not valid yet")
        user, state = entry.user, entry.state
        if user is None:
            raise TokenRevoked("the token's user no longer exists")
        if user.status != "active":
            raise AccountDisabled("the account is disabled", user_id=user.id)
        if hit.generation != state.generation:
            raise TokenRevoked(_REVOKED_BEFORE_MESSAGE)
        if hit.session_id in state.revoked_sessions or hit.jti in state.revoked_jtis:
            raise TokenRevoked("the token was revoked")
        if hit.verified is not None and self._before_revocation(hit.verified, entry.external_cutoff, now):
            raise TokenRevoked(_REVOKED_BEFORE_MESSAGE)
        if hit.claims is not None and hit.claims.issued_at < entry.external_cutoff - 1:
            # A session token of an earlier second than the latest revoke_user: the generation
            # refuses it already, unless the store lost its generations (a Redis flush) since.
            raise TokenRevoked(_REVOKED_BEFORE_MESSAGE)
        if hit.kind == "session":
            assert hit.claims is not None
            principal = _make_principal(user, hit.claims, "session", hit.roles, hit.session_id)
        else:
            assert hit.verified is not None
            principal = _make_principal(user, hit.verified, "external", user.roles, None)
        hit.admitted = (
            entry,
            principal,
            max(entry.fetched, hit.valid_from),
            min(entry.fresh_until, hit.valid_until, entry.touch_due),
        )
        return principal


@dataclass(frozen=True, slots=True)
class ExternalTokens:
    """How the session layer reaches the bridge's external verification.

    ``verify``/``averify`` return the verified token and the key that verified
    it; ``key``/``akey`` look that key up again in its issuer's current set
    (raising :class:`~federation.errors.InvalidToken` when it is gone);
    ``source`` is the token's key source and ``leeway`` its clock skew allowance.
    """

    verify: Callable[[str], tuple[VerifiedToken, Any]]
    averify: Callable[[str], Awaitable[tuple[VerifiedToken, Any]]]
    key: Callable[[VerifiedToken], Any]
    akey: Callable[[VerifiedToken], Awaitable[Any]]
    source: Callable[[VerifiedToken], Any]
    leeway: Callable[[VerifiedToken], float]


def _clean_username(username: str) -> str:
    if not isinstance(username, str):
        raise InvalidUserData("the username must be a string", attribute="username")
    name = unicodedata.normalize("NFKC", username).strip()
    if not 1 <= len(name) <= 150 or "@" in name or any(unicodedata.category(c)[0] in "CZ" for c in name):
        raise InvalidUserData(
            "the username must be 1 to 150 characters, without spaces, control characters or '@'",
            attribute="username",
        )
    return name


def _clean_email(email: str | None) -> str | None:
    if email is None:
        return None
    if not isinstance(email, str):
        raise InvalidUserData("the email must be a string", attribute="email")
    address = unicodedata.normalize("NFKC", email).strip()
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or len(address) > 254 or any(c.isspace() for c in address):
        raise InvalidUserData("the email is not an address", attribute="email")
    return address


run = _drive
arun = _adrive


def _single(step: _Step) -> Flow[Any]:
    """A flow of one step (its result)."""
    return (yield step)
