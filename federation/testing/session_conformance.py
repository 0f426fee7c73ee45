"""The session-store conformance suite: run it against your own session store.

Every backend of :class:`~federation.storage.SessionStore` (memory, SQL,
Redis, your own) must keep the same contract: refresh rotation as one atomic
step, reuse detection, idempotent revocation, atomic generations, lockouts.
Checks use fresh unique ids, so they run on a store that already holds data;
``check_purge`` deletes whatever has ended by its clock (a few hours from now).

::

    import pytest
    from federation.testing.session_conformance import SessionStoreConformance

    class TestMySessionStore(SessionStoreConformance):
        @pytest.fixture
        def session_store(self):
            yield MySessionStore(...)

A failing check raises :class:`~federation.testing.storage_conformance.ConformanceError`
naming the broken rule.

Must not: be imported by the library's runtime code.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from federation.storage import NewRefreshToken, SessionRecord, SessionStore

from .storage_conformance import ConformanceError

__all__ = ["SESSION_CHECKS", "SessionStoreConformance", "run_all", "run_check"]

SessionCheck = Callable[[SessionStore], None]

#: How many threads the concurrency checks start.
CONCURRENCY = 20

#: The checks' clock: the current second, taken anew as each check starts (a store that also
#: keeps rows by its own clock, Redis expiring keys, sees times near its own).
_T0 = datetime.now(timezone.utc).replace(microsecond=0)


def _require(condition: bool, rule: str) -> None:
    if not condition:
        raise ConformanceError(rule)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _refresh(at: datetime, ttl: float = 3600) -> tuple[str, NewRefreshToken]:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    return digest, NewRefreshToken(digest, at, at + timedelta(seconds=ttl))


def _session(
    store: SessionStore, user_id: str, at: datetime | None = None, ttl: float = 3600
) -> tuple[str, str]:
    """A new session with one refresh token (issued at ``at``, default now): (session_id, token_hash)."""
    at = at if at is not None else _T0
    digest, refresh = _refresh(at, ttl)
    sid = _id("sid")
    store.create_session(SessionRecord(sid, user_id, at, refresh.expires_at), refresh)
    return sid, digest


def _same(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) < 0.001


def check_session_round_trip(store: SessionStore) -> None:
    """A created session reads back whole; its refresh token finds it; unknown ids read None."""
    user = _id("user")
    sid, digest = _session(store, user)
    found = store.get_session(sid)
    _require(found is not None, "get_session must return a created session")
    assert found is not None
    _require(found.user_id == user and found.session_id == sid, "get_session must keep ids")
    _require(
        _same(found.issued_at, _T0) and _same(found.expires_at, _T0 + timedelta(hours=1)),
        "get_session must keep issued_at and expires_at",
    )
    _require(
        found.revoked_at is None and found.refreshed_at is None,
        "a new session is neither revoked nor refreshed",
    )
    via = store.find_refresh(digest)
    _require(via is not None and via.session_id == sid, "find_refresh must find the token's session")
    _require(store.get_session(_id("none")) is None, "get_session of an unknown id must be None")
    _require(store.find_refresh("0" * 64) is None, "find_refresh of an unknown hash must be None")
    without = _id("sid")
    store.create_session(SessionRecord(without, user, _T0, _T0 + timedelta(minutes=5), generation=3), None)
    plain = store.get_session(without)
    _require(plain is not None, "a session without a refresh token is stored too")
    _require(plain is not None and plain.generation == 3, "get_session must keep the session's generation")


def check_rotation(store: SessionStore) -> None:
    """An unused token rotates once; its successor works; the old one is used."""
    sid, digest = _session(store, _id("user"))
    next_digest, successor = _refresh(_T0 + timedelta(seconds=5))
    use = store.use_refresh(digest, successor, now=_T0 + timedelta(seconds=5), grace=0)
    _require(use.outcome == "rotated", f"an unused refresh token must rotate, got {use.outcome!r}")
    _require(use.session is not None and use.session.session_id == sid, "rotation returns the session")
    assert use.session is not None
    _require(_same(use.session.refreshed_at, _T0 + timedelta(seconds=5)), "rotation sets refreshed_at")
    _require(
        _same(use.session.expires_at, successor.expires_at), "rotation moves expires_at to the successor's"
    )
    third_digest, third = _refresh(_T0 + timedelta(seconds=6))
    again = store.use_refresh(next_digest, third, now=_T0 + timedelta(seconds=6), grace=0)
    _require(again.outcome == "rotated", "the successor must rotate in turn")
    _require(store.find_refresh(third_digest) is not None, "the successor's successor is stored")


def check_grace_and_reuse(store: SessionStore) -> None:
    """A used token within the grace gets a sibling; after it, the whole family is revoked."""
    user = _id("user")
    sid, digest = _session(store, user)
    d1, s1 = _refresh(_T0)
    _require(store.use_refresh(digest, s1, now=_T0, grace=10).outcome == "rotated", "first use rotates")
    d2, s2 = _refresh(_T0 + timedelta(seconds=10))
    use = store.use_refresh(digest, s2, now=_T0 + timedelta(seconds=10), grace=10)
    _require(use.outcome == "grace", f"a reuse within the grace must be 'grace', got {use.outcome!r}")
    _require(store.find_refresh(d2) is not None, "a grace use stores its successor")
    d3, s3 = _refresh(_T0 + timedelta(seconds=11))
    reuse = store.use_refresh(digest, s3, now=_T0 + timedelta(seconds=11), grace=10)
    _require(reuse.outcome == "reused", f"a reuse after the grace must be 'reused', got {reuse.outcome!r}")
    _require(store.find_refresh(d3) is None, "a detected reuse stores no successor")
    session = store.get_session(sid)
    _require(session is not None and session.revoked_at is not None, "a detected reuse revokes the session")
    for later in (d1, d2):
        _, s4 = _refresh(_T0 + timedelta(seconds=12))
        outcome = store.use_refresh(later, s4, now=_T0 + timedelta(seconds=12), grace=10).outcome
        _require(outcome == "revoked", f"every token of a revoked family must be 'revoked', got {outcome!r}")
    _require(sid in store.user_state(user, now=_T0).revoked_sessions, "the revoked family is in user_state")
    _require(
        all(s.session_id != sid for s in store.sessions_of(user, now=_T0)), "a revoked session is not live"
    )


def check_expired_and_unknown(store: SessionStore) -> None:
    """An expired token is 'expired' (and rotates nothing); an unknown one is 'unknown'."""
    _sid, digest = _session(store, _id("user"), ttl=60)
    nd, successor = _refresh(_T0 + timedelta(seconds=60))
    use = store.use_refresh(digest, successor, now=_T0 + timedelta(seconds=60), grace=10)
    _require(use.outcome == "expired", f"a token at its expiry must be 'expired', got {use.outcome!r}")
    _require(store.find_refresh(nd) is None, "an expired token stores no successor")
    unknown = store.use_refresh("f" * 64, successor, now=_T0, grace=10)
    _require(unknown.outcome == "unknown" and unknown.session is None, "an unknown hash must be 'unknown'")


def check_concurrent_rotation(store: SessionStore) -> None:
    """Concurrent presentations of one unused token: exactly one rotates, the rest are grace uses."""
    _sid, digest = _session(store, _id("user"))
    successors = [_refresh(_T0 + timedelta(seconds=1)) for _ in range(CONCURRENCY)]

    def present(index: int) -> str:
        return store.use_refresh(
            digest, successors[index][1], now=_T0 + timedelta(seconds=1), grace=10
        ).outcome

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        outcomes = Counter(pool.map(present, range(CONCURRENCY)))
    _require(
        outcomes["rotated"] == 1, f"exactly one concurrent presentation may rotate, got {dict(outcomes)}"
    )
    _require(outcomes["grace"] == CONCURRENCY - 1, f"the others are within the grace, got {dict(outcomes)}")


def check_revoke_session(store: SessionStore) -> None:
    """revoke_session is idempotent (the first time stays) and kills the family's refresh tokens."""
    user = _id("user")
    sid, digest = _session(store, user)
    first = store.revoke_session(sid, now=_T0 + timedelta(seconds=1))
    _require(
        first is not None and _same(first.revoked_at, _T0 + timedelta(seconds=1)),
        "revoke_session sets revoked_at",
    )
    second = store.revoke_session(sid, now=_T0 + timedelta(seconds=2))
    _require(
        second is not None and _same(second.revoked_at, _T0 + timedelta(seconds=1)),
        "revoking again keeps the first time",
    )
    _require(store.revoke_session(_id("none"), now=_T0) is None, "revoking an unknown session returns None")
    # The bridge refuses a revoked session's access tokens through user_state alone.
    _require(
        sid in store.user_state(user, now=_T0 + timedelta(seconds=2)).revoked_sessions,
        "a session revoked by revoke_session is in user_state's revoked_sessions",
    )
    _require(
        sid not in [s.session_id for s in store.sessions_of(user, now=_T0 + timedelta(seconds=2))],
        "a revoked session is not listed by sessions_of",
    )
    _, successor = _refresh(_T0 + timedelta(seconds=3))
    outcome = store.use_refresh(digest, successor, now=_T0 + timedelta(seconds=3), grace=10).outcome
    _require(outcome == "revoked", f"a revoked session's refresh token must be 'revoked', got {outcome!r}")


def check_sessions_of(store: SessionStore) -> None:
    """sessions_of lists the user's live sessions, oldest first, and nobody else's."""
    user, other = _id("user"), _id("user")
    first, _ = _session(store, user, at=_T0)
    second, _ = _session(store, user, at=_T0 + timedelta(seconds=1))
    ended, _ = _session(store, user, at=_T0, ttl=10)
    _session(store, other)
    live = [s.session_id for s in store.sessions_of(user, now=_T0 + timedelta(seconds=20))]
    _require(live == [first, second], f"sessions_of must list live sessions oldest first, got {len(live)}")
    _require(ended not in live, "an ended session is not live")
    _require(list(store.sessions_of(_id("user"), now=_T0)) == [], "an unknown user has no sessions")


def check_revoked_tokens(store: SessionStore) -> None:
    """A revoked jti is in user_state until it expires; only the user's own."""
    user = _id("user")
    jti = _id("jti")
    store.revoke_token(jti, user_id=user, expires_at=_T0 + timedelta(seconds=30))
    store.revoke_token(jti, user_id=user, expires_at=_T0 + timedelta(seconds=30))  # idempotent
    _require(jti in store.user_state(user, now=_T0).revoked_jtis, "a revoked jti must be listed")
    _require(
        jti not in store.user_state(user, now=_T0 + timedelta(seconds=30)).revoked_jtis,
        "a revoked jti is dropped once the token has expired",
    )
    _require(not store.user_state(_id("user"), now=_T0).revoked_jtis, "another user's state lists no jti")


def check_generation(store: SessionStore) -> None:
    """Generations start at 0 and concurrent bumps all count."""
    user = _id("user")
    _require(store.user_state(user, now=_T0).generation == 0, "a new user's generation is 0")
    _require(store.bump_generation(user) == 1, "the first bump returns 1")
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        values = list(pool.map(lambda _: store.bump_generation(user), range(CONCURRENCY)))
    _require(
        sorted(values) == list(range(2, CONCURRENCY + 2)), "concurrent bumps must each return a new value"
    )
    _require(store.user_state(user, now=_T0).generation == CONCURRENCY + 1, "every bump counts")


def check_attempts(store: SessionStore) -> None:
    """Failures count up to a lockout that doubles on repeat; clear_attempts forgets them."""
    key = _id("acct")
    _require(store.attempts(key).failures == 0, "an unknown key has no failures")
    for n in (1, 2):
        state = store.record_failure(key, now=_T0, max_attempts=3, lockout=60)
        _require(state.failures == n and state.locked_until is None, "failures count up before the limit")
    locked = store.record_failure(key, now=_T0, max_attempts=3, lockout=60)
    _require(
        _same(locked.locked_until, _T0 + timedelta(seconds=60)) and locked.lockouts == 1,
        "the max_attempts-th failure locks for `lockout` seconds",
    )
    _require(_same(store.attempts(key).locked_until, locked.locked_until), "attempts reads the lockout")
    later = _T0 + timedelta(seconds=61)
    for _ in range(3):
        state = store.record_failure(key, now=later, max_attempts=3, lockout=60)
    _require(
        _same(state.locked_until, later + timedelta(seconds=120)) and state.lockouts == 2,
        "a repeated lockout doubles",
    )
    store.clear_attempts(key)
    cleared = store.attempts(key)
    _require(
        cleared.failures == 0 and cleared.locked_until is None and cleared.lockouts == 0,
        "clear_attempts forgets failures and lockouts",
    )
    other = _id("addr")
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(
            pool.map(
                lambda _: store.record_failure(other, now=_T0, max_attempts=1000, lockout=1),
                range(CONCURRENCY),
            )
        )
    _require(store.attempts(other).failures == CONCURRENCY, "concurrent failures must all count")


def check_lockout_bounds(store: SessionStore) -> None:
    """A failure while a lockout runs changes nothing (an attempt that began before the lock
    and ended after it), and the doubling stops at ``MAX_LOCKOUT_DOUBLINGS``."""
    from ..storage import MAX_LOCKOUT_DOUBLINGS

    key = _id("burst")
    locked = store.record_failure(key, now=_T0, max_attempts=1, lockout=60)
    during = store.record_failure(key, now=_T0 + timedelta(seconds=1), max_attempts=1, lockout=60)
    _require(
        _same(during.locked_until, locked.locked_until) and during.lockouts == 1,
        "a failure during a lockout neither extends it nor counts as a repeat",
    )
    now, state = _T0, locked
    for _ in range(MAX_LOCKOUT_DOUBLINGS + 4):
        assert state.locked_until is not None
        now = state.locked_until + timedelta(seconds=1)
        state = store.record_failure(key, now=now, max_attempts=1, lockout=60)
    assert state.locked_until is not None
    _require(
        _same(state.locked_until, now + timedelta(seconds=60 * 2**MAX_LOCKOUT_DOUBLINGS)),
        "a lockout doubles at most MAX_LOCKOUT_DOUBLINGS times",
    )


def check_purge(store: SessionStore) -> None:
    """purge deletes what ended and keeps what is live."""
    user = _id("user")
    far = _T0 + timedelta(hours=3)
    ended, ended_digest = _session(store, user, at=_T0, ttl=60)
    live, live_digest = _session(store, user, at=far, ttl=3600)
    jti = _id("jti")
    store.revoke_token(jti, user_id=user, expires_at=_T0 + timedelta(seconds=60))
    store.bump_generation(user)
    removed = store.purge(now=far)
    _require(removed >= 2, f"purge must delete the ended session and token rows, removed {removed}")
    _require(
        store.get_session(ended) is None and store.find_refresh(ended_digest) is None,
        "an ended session and its refresh tokens are purged",
    )
    _require(
        store.get_session(live) is not None and store.find_refresh(live_digest) is not None,
        "a live session is kept",
    )
    state = store.user_state(user, now=_T0)
    _require(jti not in state.revoked_jtis, "an expired revoked jti is purged")
    _require(state.generation == 1, "purge keeps generations")


def check_claim_once(store: SessionStore) -> None:
    """claim_once: the first claim wins, later and concurrent ones lose; purge forgets expired claims."""
    key = _id("url-token")
    until = _T0 + timedelta(seconds=120)
    _require(store.claim_once(key, expires_at=until) is True, "a first claim wins")
    _require(store.claim_once(key, expires_at=until) is False, "a second claim loses")
    other = _id("url-token")
    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = list(pool.map(lambda _: store.claim_once(other, expires_at=until), range(16)))
    _require(wins.count(True) == 1, "of concurrent claims exactly one wins")
    old = _id("url-token")
    store.claim_once(old, expires_at=_T0 - timedelta(seconds=1))
    store.purge(now=_T0)
    _require(store.claim_once(old, expires_at=until) is True, "purge forgets an expired claim")
    _require(store.claim_once(key, expires_at=until) is False, "purge keeps a live claim")


def _at_the_current_second(check: SessionCheck) -> SessionCheck:
    @functools.wraps(check)
    def run(store: SessionStore) -> None:
        global _T0
        _T0 = datetime.now(timezone.utc).replace(microsecond=0)
        check(store)

    return run


#: Every check, in a sensible order.
SESSION_CHECKS: tuple[SessionCheck, ...] = tuple(
    map(
        _at_the_current_second,
        (
            check_session_round_trip,
            check_rotation,
            check_grace_and_reuse,
            check_expired_and_unknown,
            check_concurrent_rotation,
            check_revoke_session,
            check_sessions_of,
            check_revoked_tokens,
            check_generation,
            check_attempts,
            check_lockout_bounds,
            check_claim_once,
            check_purge,
        ),
    )
)


def check_id(check: SessionCheck) -> str:
    """A readable test id for a check."""
    return getattr(check, "__name__", "check").removeprefix("check_")


def run_check(check: SessionCheck, store: Any) -> None:
    """Run one check against ``store``."""
    check(store)


def run_all(store: Any) -> None:
    """Run every check against ``store``."""
    for check in SESSION_CHECKS:
        check(store)


class SessionStoreConformance:
    """Base class: subclass it in a ``Test...`` class and provide a ``session_store`` fixture."""

    @pytest.fixture
    def session_store(self) -> Any:
        """Your session store; override this fixture."""
        raise NotImplementedError("provide a 'session_store' fixture returning your session store")

    @pytest.mark.parametrize("check", SESSION_CHECKS, ids=check_id)
    def test_session_store_conformance(self, session_store: Any, check: SessionCheck) -> None:
        """One rule of the session-store protocol."""
        check(session_store)
