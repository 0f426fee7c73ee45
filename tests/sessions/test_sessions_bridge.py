"""The session layer through the bridge: every rule of docs/sessions.md, on every store, sync and async."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from _session_services import Flaky

from federation import Bridge
from federation.errors import (
    AccountDisabled,
    ConfigError,
    FederationError,
    InvalidRequest,
    InvalidToken,
    MalformedToken,
    RefreshReused,
    StorageError,
    TokenExpired,
    TokenRevoked,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.sessions import generate_private_key_pem
from federation.storage import AuditEvent, MemorySessionStore, MemoryStore, SQLStore, UpdateUser, drive
from federation.testing import FrozenClock, MockIdP

APP = "https://app.example.test"
_PEMS = {alg: generate_private_key_pem(alg).decode() for alg in ("ES256", "EdDSA")}
_SECOND_PEM = generate_private_key_pem("ES256").decode()


class Audit(list[AuditEvent]):
    def names(self) -> list[str]:
        return [e.name for e in self]


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, sql_store_factory: Callable[[str], SQLStore]) -> Any:
    return MemoryStore() if request.param == "memory" else sql_store_factory(request.param)


@pytest.fixture
def make_bridge(idp: MockIdP, store: Any, audit: Audit) -> Iterator[Callable[..., Bridge]]:
    built: list[Bridge] = []

    def factory(sessions: dict[str, Any] | None = None, **options: Any) -> Bridge:
        section = {"issuer": APP, "keys": [{"env": "SESSION_KEY"}], **(sessions or {})}
        config = idp.bridge_config(sessions=section)
        options.setdefault("environ", {"SESSION_KEY": _PEMS["ES256"], "OLD_KEY": _SECOND_PEM})
        options.setdefault("store", store)
        options.setdefault("audit", audit.append)
        bridge = idp.bridge(config=config, **options)
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


@pytest.fixture
def bridge(make_bridge: Callable[..., Bridge]) -> Bridge:
    return make_bridge()


def _set_user(bridge: Bridge, user_id: str, **changes: Any) -> None:
    """Change a user behind the bridge's back (another process, an admin tool)."""
    store = bridge.store
    with store.transaction() as tx:  # type: ignore[union-attr]
        drive(_update(user_id, changes), tx)


def _update(user_id: str, changes: dict[str, Any]) -> Any:
    from federation.storage import call

    yield from call(UpdateUser(user_id, changes))


# -- issue and authenticate -------------------------------------------------------------


def test_exchange_issues_a_session_that_authenticates(bridge: Bridge, idp: MockIdP, audit: Audit) -> None:
    session = bridge.exchange(idp.mint(sub="alice", email="alice@example.test"))
    assert session.token_type == "Bearer" and session.expires_in == 3600
    assert session.refresh_token is not None and len(session.refresh_token) >= 43  # 256 bits, base64url
    principal = bridge.authenticate(session.access_token)
    assert principal.kind == "session" and principal.user.id == session.user.id
    assert principal.session_id == session.session_id
    assert principal.token.claims["sub"] == session.user.id  # the local id, never the IdP's
    assert principal.token.claims["sub"] != "alice"
    assert "session_issued" in audit.names()
    assert session.access_token not in repr(session) and session.refresh_token not in repr(session)


def test_exchange_of_a_declared_kind_takes_only_that_kind(bridge: Bridge, idp: MockIdP, audit: Audit) -> None:
    """token_type (RFC 8693's subject_token_type): a token of another kind logs nobody in."""
    for kind, declared in (("id", "access"), ("access", "id")):
        with pytest.raises(WrongTokenType):
            bridge.exchange(idp.mint(sub="mallory", token_type=kind), token_type=declared)  # type: ignore[arg-type]
        with pytest.raises(WrongTokenType):
            asyncio.run(bridge.aexchange(idp.mint(sub="mallory", token_type=kind), token_type=declared))  # type: ignore[arg-type]
    assert bridge.store.find_login(idp.issuer, "mallory") is None
    assert audit.names().count("login_failed") == 4
    assert bridge.exchange(idp.mint(sub="ada", token_type="access"), token_type="access").user is not None
    assert bridge.exchange(idp.mint(sub="ada"), token_type=None).user is not None


def test_a_repeated_token_writes_nothing_and_audits_nothing(
    bridge: Bridge, idp: MockIdP, audit: Audit
) -> None:
    external = idp.mint(sub="bob")
    first = bridge.authenticate(external)
    assert first.kind == "external"
    events = len(audit)
    logins = audit.names().count("login_succeeded")
    seen = first.user.last_login_at
    for _ in range(20):
        again = bridge.authenticate(external)
        assert again.user.id == first.user.id
    assert len(audit) == events and audit.names().count("login_succeeded") == logins
    assert bridge.provisioner.read_user(first.user.id).last_login_at == seen  # type: ignore[union-attr]


def test_last_login_is_touched_at_most_every_touch_interval(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock, audit: Audit
) -> None:
    bridge = make_bridge({"touch_interval": 300, "user_check": 30})
    session = bridge.exchange(idp.mint(sub="carol"))
    login_at = bridge.provisioner.read_user(session.user.id).last_login_at  # type: ignore[union-attr]
    clock.advance(200)
    bridge.authenticate(session.access_token)
    assert bridge.provisioner.read_user(session.user.id).last_login_at == login_at  # type: ignore[union-attr]
    clock.advance(150)
    events = len(audit)
    bridge.authenticate(session.access_token)
    touched = bridge.provisioner.read_user(session.user.id).last_login_at  # type: ignore[union-attr]
    assert touched is not None and login_at is not None and touched > login_at
    assert len(audit) == events  # a touch is no login: no event


def test_session_and_external_tokens_are_never_confused(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="dave"))
    with pytest.raises(UntrustedIssuer):
        bridge.verify(session.access_token)
    with pytest.raises(UntrustedIssuer):
        bridge.login(session.access_token)
    # an issuer's token claiming the app as its issuer is not a session token: not our key
    forged = idp.mint({"iss": APP, "sub": session.user.id, "aud": APP})
    with pytest.raises(InvalidToken):
        bridge.authenticate(forged)
    # our key, but an id token's typ: refused as a session token
    tokens = bridge.sessions.tokens
    import base64
    import json

    def b64(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    claims = dict(bridge.authenticate(session.access_token).token.claims)  # type: ignore[union-attr]
    header = {"alg": "ES256", "kid": tokens.ring.signing_key.kid, "typ": "JWT"}
    signing_input = b64(header) + b"." + b64(claims)
    signature = base64.urlsafe_b64encode(tokens.ring.sign(signing_input)).rstrip(b"=")
    with pytest.raises(WrongTokenType):
        bridge.authenticate((signing_input + b"." + signature).decode())
    # our key and typ, but no kid: every session token names its key (the key set's
    # fallback for kid-less tokens is for issuers' tokens)
    header = {"alg": "ES256", "typ": "at+jwt"}
    signing_input = b64(header) + b"." + b64({**claims, "jti": claims["jti"] + "-2"})
    signature = base64.urlsafe_b64encode(tokens.ring.sign(signing_input)).rstrip(b"=")
    with pytest.raises(UnknownKey):
        bridge.authenticate((signing_input + b"." + signature).decode())


def test_an_expired_session_token_is_refused_even_when_cached(
    bridge: Bridge, idp: MockIdP, clock: FrozenClock
) -> None:
    session = bridge.exchange(idp.mint(sub="erin"))
    bridge.authenticate(session.access_token)
    clock.advance(3600 + 6)  # past exp and the 5 s session leeway
    with pytest.raises(TokenExpired):
        bridge.authenticate(session.access_token)


def test_a_repeat_is_refused_at_its_expiry_while_its_user_is_still_fresh(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    """The user entry outlives both tokens here: the tokens' own bounds must refuse them."""
    bridge = make_bridge({"user_check": 3600, "touch_interval": 86400, "access_ttl": 600})
    session = bridge.exchange(idp.mint(sub="erin"))
    external = idp.mint(sub="erin", lifetime=300)
    for _ in range(3):  # first seen, admitted, answered from the admission
        assert bridge.authenticate(external).kind == "external"
        assert bridge.authenticate(session.access_token).kind == "session"
    clock.advance(300 + 59)  # within the issuer's 60 s leeway (and its key set's 600 s TTL)
    assert bridge.authenticate(external).kind == "external"
    clock.advance(2)
    with pytest.raises(TokenExpired):
        bridge.authenticate(external)
    clock.advance(600 + 4 - 361)  # the session token: exp + its 5 s leeway not reached yet
    assert bridge.authenticate(session.access_token).kind == "session"
    clock.advance(2)
    with pytest.raises(TokenExpired):
        bridge.authenticate(session.access_token)


def test_a_repeat_answered_from_memory_still_touches_when_due(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = make_bridge({"touch_interval": 300, "user_check": 3600})
    session = bridge.exchange(idp.mint(sub="carol"))
    login_at = bridge.provisioner.read_user(session.user.id).last_login_at  # type: ignore[union-attr]
    for _ in range(3):
        bridge.authenticate(session.access_token)
    clock.advance(299)
    bridge.authenticate(session.access_token)
    assert bridge.provisioner.read_user(session.user.id).last_login_at == login_at  # type: ignore[union-attr]
    clock.advance(2)
    bridge.authenticate(session.access_token)
    touched = bridge.provisioner.read_user(session.user.id).last_login_at  # type: ignore[union-attr]
    assert touched is not None and login_at is not None and touched > login_at


def _refused_by_each(
    calls: tuple[Callable[[Any], object], ...], given: Any, error: type[FederationError]
) -> None:
    """Each of ``calls`` (the last one async) refuses ``given`` with ``error``'s own code."""
    *sync, async_call = calls
    for call in sync:
        with pytest.raises(error) as caught:
            call(given)
        assert caught.value.code == error.code, call
    with pytest.raises(error):
        asyncio.run(async_call(given))  # type: ignore[arg-type]


@pytest.mark.parametrize("token", [None, 5, b"a.b.c", ["a.b.c"]], ids=["none", "int", "bytes", "list"])
def test_a_token_that_is_no_string_is_malformed_at_every_door(bridge: Bridge, token: Any) -> None:
    """authenticate() said invalid_token where verify() and login() say malformed."""
    doors = (bridge.authenticate, bridge.verify, bridge.login, bridge.aauthenticate)
    _refused_by_each(doors, token, MalformedToken)


@pytest.mark.parametrize("bad", ["\ud800", 5, None, "", "a\nb", "x" * 256], ids=repr)
def test_an_administrative_call_with_an_id_that_is_no_text_is_an_invalid_request(
    bridge: Bridge, bad: Any
) -> None:
    """A lone surrogate reached SQLAlchemy as UnicodeEncodeError, a number as AttributeError."""
    calls = (bridge.sessions_of, bridge.revoke_user, bridge.revoke_session, bridge.arevoke_user)
    _refused_by_each(calls, bad, InvalidRequest)


def test_authenticate_is_the_session_services_own_once_built(bridge: Bridge, idp: MockIdP) -> None:
    """The per-request path without the bridge's forwarding call; the same answers either way."""
    token = idp.mint(sub="fay")
    first = Bridge.authenticate(bridge, token)  # the forwarding method builds the service
    assert bridge.authenticate == bridge.sessions.authenticate
    assert bridge.aauthenticate == bridge.sessions.aauthenticate
    assert bridge.authenticate(token).user.id == first.user.id


# -- refresh ----------------------------------------------------------------------------


def test_refresh_rotates_and_carries_the_current_roles(bridge: Bridge, idp: MockIdP, audit: Audit) -> None:
    session = bridge.exchange(idp.mint(sub="frank"))
    _set_user(bridge, session.user.id, roles=frozenset({"editor"}))
    renewed = bridge.refresh(session.refresh_token or "")
    assert renewed.session_id == session.session_id
    assert renewed.refresh_token != session.refresh_token
    assert bridge.authenticate(renewed.access_token).roles == {"editor"}
    assert bridge.authenticate(session.access_token).user.id == session.user.id  # still valid until exp
    assert "session_refreshed" in audit.names()


def test_reuse_within_the_grace_gets_a_sibling_and_after_it_kills_the_family(
    bridge: Bridge, idp: MockIdP, clock: FrozenClock, audit: Audit
) -> None:
    session = bridge.exchange(idp.mint(sub="grace"))
    first = bridge.refresh(session.refresh_token or "")
    clock.advance(5)
    sibling = bridge.refresh(session.refresh_token or "")  # a second tab, within 10 s
    assert sibling.session_id == session.session_id and sibling.refresh_token != first.refresh_token
    clock.advance(6)
    with pytest.raises(RefreshReused) as caught:
        bridge.refresh(session.refresh_token or "")
    assert caught.value.code == "refresh_reused" and (session.refresh_token or "") not in str(caught.value)
    assert "refresh_reused" in audit.names()
    for token in (session.access_token, first.access_token, sibling.access_token):
        with pytest.raises(TokenRevoked):
            bridge.authenticate(token)
    for refresh in (first.refresh_token, sibling.refresh_token):
        with pytest.raises(TokenRevoked):
            bridge.refresh(refresh or "")


def test_refresh_refuses_disabled_deleted_and_unknown(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="henry"))
    _set_user(bridge, session.user.id, status="disabled")
    with pytest.raises(AccountDisabled):
        bridge.refresh(session.refresh_token or "")
    other = bridge.exchange(idp.mint(sub="ivy"))
    bridge.deprovision(issuer="https://idp.test", subject="ivy", mode="delete")
    with pytest.raises(TokenRevoked):
        bridge.refresh(other.refresh_token or "")
    with pytest.raises(InvalidToken) as caught:
        bridge.refresh("not-a-refresh-token")
    assert caught.value.code == "invalid_token"


def test_refresh_tokens_expire(make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock) -> None:
    bridge = make_bridge({"refresh_ttl": 7200})
    session = bridge.exchange(idp.mint(sub="jack"))
    clock.advance(7200)
    with pytest.raises(TokenExpired):
        bridge.refresh(session.refresh_token or "")


def test_no_refresh_token_when_refresh_ttl_is_zero(make_bridge: Callable[..., Bridge], idp: MockIdP) -> None:
    session = make_bridge({"refresh_ttl": 0}).exchange(idp.mint(sub="kate"))
    assert session.refresh_token is None and session.refresh_expires_at is None


def test_parallel_refreshes_of_one_token_stay_in_one_family(
    bridge: Bridge, idp: MockIdP, audit: Audit
) -> None:
    session = bridge.exchange(idp.mint(sub="liam"))
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: bridge.refresh(session.refresh_token or ""), range(20)))
    assert {r.session_id for r in results} == {session.session_id}
    assert len({r.refresh_token for r in results}) == 20
    outcomes = [e.detail["outcome"] for e in audit if e.name == "session_refreshed"]
    assert outcomes.count("rotated") == 1 and outcomes.count("grace") == 19


def test_revoke_user_racing_refresh_leaves_no_usable_token(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="mia"))
    gotten: list[Any] = []
    lock = threading.Lock()

    def refresh_chain() -> None:
        token = session.refresh_token or ""
        for _ in range(10):
            try:
                renewed = bridge.refresh(token)
            except InvalidToken:
                return
            with lock:
                gotten.append(renewed)
            token = renewed.refresh_token or ""

    with ThreadPoolExecutor(3) as pool:
        chain = pool.submit(refresh_chain)
        pool.submit(bridge.revoke_user, session.user.id, reason="racing").result()
        chain.result()
    for renewed in [session, *gotten]:
        with pytest.raises(InvalidToken):
            bridge.authenticate(renewed.access_token)
        with pytest.raises(InvalidToken):
            bridge.refresh(renewed.refresh_token or "")


# -- revoke -----------------------------------------------------------------------------


def test_revoke_an_access_token_refuses_it_at_once(bridge: Bridge, idp: MockIdP, audit: Audit) -> None:
    session = bridge.exchange(idp.mint(sub="noah"))
    other = bridge.issue_session(session.user)
    bridge.authenticate(session.access_token)  # cached
    assert bridge.revoke(session.access_token) is True
    with pytest.raises(TokenRevoked) as caught:
        bridge.authenticate(session.access_token)
    assert caught.value.code == "revoked" and session.access_token not in str(caught.value)
    assert bridge.authenticate(other.access_token).user.id == session.user.id
    assert bridge.revoke(session.access_token) is True  # idempotent (RFC 7009)
    assert (
        bridge.revoke("garbage") is False and bridge.revoke("a.b.c") is False and bridge.revoke("") is False
    )
    assert "session_revoked" in audit.names()


def test_revoke_a_refresh_token_kills_its_family(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="olga"))
    assert bridge.revoke(session.refresh_token or "") is True
    with pytest.raises(TokenRevoked):
        bridge.refresh(session.refresh_token or "")
    with pytest.raises(TokenRevoked):
        bridge.authenticate(session.access_token)
    assert bridge.sessions_of(session.user.id) == []


def test_revoke_user_refuses_every_earlier_token_even_within_one_second(
    bridge: Bridge, idp: MockIdP, audit: Audit
) -> None:
    external = idp.mint(sub="paul")
    first = bridge.exchange(external)
    second = bridge.issue_session(first.user)  # the same frozen second
    bridge.authenticate(external)
    bridge.revoke_user(first.user.id, reason="stolen laptop")
    for token in (first.access_token, second.access_token, external):
        with pytest.raises(TokenRevoked):
            bridge.authenticate(token)
    for refresh in (first.refresh_token, second.refresh_token):
        with pytest.raises(TokenRevoked):
            bridge.refresh(refresh or "")
    fresh = bridge.issue_session(first.user)  # in the same second, after the revocation
    assert bridge.authenticate(fresh.access_token).user.id == first.user.id
    assert [e.detail["reason"] for e in audit if e.name == "user_sessions_revoked"] == ["stolen laptop"]


def test_revoke_user_refuses_earlier_external_tokens_in_every_process_and_door(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = make_bridge({"user_check": 0})
    other = make_bridge({"user_check": 0}, session_store=bridge.sessions.store)  # another process
    seen, unseen = idp.mint(sub="pia"), idp.mint(sub="pia", jti="second-token")
    user = bridge.login(seen).user
    bridge.authenticate(seen)
    bridge.revoke_user(user.id, reason="signed out everywhere")
    bridge.sessions._cache.clear()  # evicted: no memory of having seen it
    for process in (bridge, other):
        for token in (seen, unseen):
            with pytest.raises(TokenRevoked):
                process.authenticate(token)
            with pytest.raises(TokenRevoked):
                process.exchange(token)  # a new session from a token of before: no
    clock.advance(1)
    later = idp.mint(sub="pia", jti="third-token")  # issued after the call: a fresh login
    assert other.exchange(later).user.id == user.id
    assert bridge.authenticate(later).user.id == user.id


def test_revoke_user_refuses_a_token_of_before_it_from_a_clock_running_ahead(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = make_bridge()
    ahead = idp.mint(sub="zoe", jti="ahead", iat=int(clock()) + 30)  # now, by a clock 30 s ahead
    user = bridge.login(idp.mint(sub="zoe", jti="first")).user
    bridge.revoke_user(user.id)
    with pytest.raises(TokenRevoked):
        bridge.exchange(ahead)
    with pytest.raises(TokenRevoked):
        bridge.authenticate(ahead)
    clock.advance(61)  # past the issuer's leeway: a future iat is a fresh token again
    later = idp.mint(sub="zoe", jti="later", iat=int(clock()) + 30)
    assert bridge.exchange(later).user.id == user.id


def test_a_revocation_arriving_during_a_read_is_not_lost(
    make_bridge: Callable[..., Bridge], idp: MockIdP
) -> None:
    revoke_during_read: list[Callable[[], object]] = []

    class RacingStore(MemorySessionStore):
        def user_state(self, user_id: str, *, now: Any) -> Any:
            state = super().user_state(user_id, now=now)  # read before the revocation...
            while revoke_during_read:
                revoke_during_read.pop()()  # ...which lands (and is announced) before it returns
            return state

    bridge = make_bridge(session_store=RacingStore())
    session = bridge.exchange(idp.mint(sub="rosa"))
    bridge.sessions._forget_user(session.user.id)
    revoke_during_read.append(lambda: bridge.revoke(session.access_token))
    try:
        bridge.authenticate(session.access_token)  # raced the revocation: either answer
    except TokenRevoked:
        pass
    with pytest.raises(TokenRevoked):  # the state read before it must not be served on
        bridge.authenticate(session.access_token)


def test_revoke_user_after_the_store_lost_its_generations_refuses_earlier_sessions(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    store = MemorySessionStore()
    bridge = make_bridge({"user_check": 0}, session_store=store)
    first = bridge.exchange(idp.mint(sub="sven"))
    bridge.revoke_user(first.user.id)  # generation 1
    clock.advance(5)
    second = bridge.issue_session(first.user)  # generation 1, issued before the next call
    store.__init__()  # type: ignore[misc]  # the store lost everything (a Redis flush, a restart)
    clock.advance(5)
    assert bridge.revoke_user(first.user.id) == 1  # generation 1 again
    with pytest.raises(TokenRevoked):
        bridge.authenticate(second.access_token)
    third = bridge.issue_session(first.user)  # the same second, after the call
    assert bridge.authenticate(third.access_token).user.id == first.user.id


def test_a_session_ends_at_its_maximum_lifetime_however_active(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    """Each rotation slid the refresh window on: a stolen session lived for ever (RFC 9700 §4.14.2)."""
    default = make_bridge()  # 30 days
    session = default.exchange(idp.mint(sub="ulla"))
    bridge = make_bridge({"max_lifetime": 100})
    short = bridge.exchange(idp.mint(sub="vera"))
    assert short.refresh_expires_at == short.issued_at + timedelta(seconds=100)  # as told at sign-in
    clock.advance(60)
    short = bridge.refresh(short.refresh_token or "")
    clock.advance(50)  # 110 s after the sign-in
    with pytest.raises(TokenExpired) as caught:
        bridge.refresh(short.refresh_token or "")
    assert caught.value.code == "session_too_old"
    with pytest.raises(TokenRevoked):
        bridge.authenticate(short.access_token)  # the session is over, its access tokens too
    for _ in range(2):
        clock.advance(12 * 86400)  # within the refresh window: rotates
        session = default.refresh(session.refresh_token or "")
    clock.advance(7 * 86400)  # 31 days after the sign-in
    with pytest.raises(TokenExpired):
        default.refresh(session.refresh_token or "")


def test_another_users_revocation_does_not_stop_a_login_time_being_kept(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget of any user made every due touch a write on every request (user_check long)."""
    bridge = make_bridge({"touch_interval": 60, "user_check": 3600})
    token = idp.mint(sub="wim", jti="wim-1", lifetime=7200)
    bridge.authenticate(token)  # wim's state read and kept
    other = bridge.exchange(idp.mint(sub="xia", jti="xia-1"))
    bridge.revoke(other.access_token)  # forgets xia, not wim
    touches: list[str] = []
    touch = bridge.provisioner.touch
    monkeypatch.setattr(bridge.provisioner, "touch", lambda uid: touches.append(uid) or touch(uid))
    clock.advance(61)  # wim's login time is due
    for _ in range(5):
        bridge.authenticate(token)
    assert len(touches) == 1


def test_revoke_previous_keeps_only_the_newest_session(
    make_bridge: Callable[..., Bridge], idp: MockIdP
) -> None:
    bridge = make_bridge({"revoke_previous": True})
    first = bridge.exchange(idp.mint(sub="quinn"))
    second = bridge.issue_session(first.user)
    with pytest.raises(TokenRevoked):
        bridge.authenticate(first.access_token)
    assert bridge.authenticate(second.access_token).session_id == second.session_id
    assert [s.session_id for s in bridge.sessions_of(first.user.id)] == [second.session_id]


def test_sessions_of_and_revoke_session(bridge: Bridge, idp: MockIdP, clock: FrozenClock) -> None:
    first = bridge.exchange(idp.mint(sub="rose"))
    clock.advance(1)
    phone = bridge.issue_session(first.user)
    listed = bridge.sessions_of(first.user.id)
    assert [s.session_id for s in listed] == [first.session_id, phone.session_id]
    assert listed[0].issued_at.timestamp() == pytest.approx(clock() - 1)
    assert bridge.revoke_session(phone.session_id) is True
    assert bridge.revoke_session(phone.session_id) is True  # idempotent
    assert bridge.revoke_session("no-such-session") is False
    with pytest.raises(TokenRevoked):
        bridge.authenticate(phone.access_token)
    assert [s.session_id for s in bridge.sessions_of(first.user.id)] == [first.session_id]


# -- the user's status -------------------------------------------------------------------


def test_a_disable_whose_revocation_failed_is_finished_by_its_repeat(idp: MockIdP) -> None:
    """The store committed the disable, then the revocation storage failed (503): the
    repeat a SCIM handler makes was action 'none' and skipped the revocation, so the
    user's old tokens worked again once the user was re-enabled."""
    sessions = Flaky()
    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]})
    bridge = idp.bridge(
        config=config, store=MemoryStore(), session_store=sessions, environ={"SESSION_KEY": _PEMS["ES256"]}
    )
    session = bridge.exchange(idp.mint(sub="una"))
    sessions.failures = 1
    with pytest.raises(StorageError):
        bridge.deprovision(issuer="https://idp.test", subject="una")
    repeat = bridge.deprovision(issuer="https://idp.test", subject="una")
    assert repeat is not None and repeat.action == "none"
    _set_user(bridge, session.user.id, status="active")
    with pytest.raises(TokenRevoked):
        bridge.authenticate(session.access_token)
    bridge.close()


def test_deprovision_refuses_the_users_tokens_at_once(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="sam"))
    bridge.authenticate(session.access_token)
    bridge.deprovision(issuer="https://idp.test", subject="sam", mode="disable")
    with pytest.raises(AccountDisabled):
        bridge.authenticate(session.access_token)
    assert session.refresh_token is not None
    with pytest.raises(AccountDisabled):  # as authenticate says; before: the generation's revoked
        bridge.refresh(session.refresh_token)
    deleted = bridge.exchange(idp.mint(sub="tina"))
    bridge.deprovision(issuer="https://idp.test", subject="tina", mode="delete")
    with pytest.raises(TokenRevoked):
        bridge.authenticate(deleted.access_token)
    assert deleted.refresh_token is not None
    with pytest.raises(TokenRevoked):
        bridge.refresh(deleted.refresh_token)


def test_user_check_bounds_how_stale_a_users_status_may_be(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = make_bridge({"user_check": 30})
    session = bridge.exchange(idp.mint(sub="uma"))
    bridge.authenticate(session.access_token)
    _set_user(bridge, session.user.id, status="disabled")  # elsewhere: this process is not told
    clock.advance(29)
    assert bridge.authenticate(session.access_token).user.status == "active"  # within user_check
    clock.advance(2)
    with pytest.raises(AccountDisabled):
        bridge.authenticate(session.access_token)


def test_user_check_zero_reads_every_time(make_bridge: Callable[..., Bridge], idp: MockIdP) -> None:
    bridge = make_bridge({"user_check": 0})
    session = bridge.exchange(idp.mint(sub="vera"))
    bridge.authenticate(session.access_token)
    _set_user(bridge, session.user.id, status="disabled")
    with pytest.raises(AccountDisabled):
        bridge.authenticate(session.access_token)


def test_a_disabled_user_gets_no_session(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="walt"))
    _set_user(bridge, session.user.id, status="disabled")
    user = bridge.provisioner.read_user(session.user.id)
    assert user is not None
    with pytest.raises(AccountDisabled):
        bridge.issue_session(user)


# -- keys -------------------------------------------------------------------------------


def test_a_token_of_the_previous_key_verifies_until_it_expires(
    make_bridge: Callable[..., Bridge], idp: MockIdP
) -> None:
    old = make_bridge({"keys": [{"env": "OLD_KEY"}]})
    session = old.exchange(idp.mint(sub="xena"))
    rotated = make_bridge({"keys": [{"env": "SESSION_KEY"}, {"env": "OLD_KEY"}]})
    assert rotated.authenticate(session.access_token).user.id == session.user.id
    kids = {k["kid"] for k in rotated.session_jwks()["keys"]}
    assert len(kids) == 2 and old.session_jwks()["keys"][0]["kid"] in kids
    new = rotated.issue_session(session.user)
    assert new.access_token.split(".")[0] != session.access_token.split(".")[0]  # signed by the new kid
    with pytest.raises(InvalidToken):
        old.authenticate(new.access_token)  # a ring without the new key does not know it


def test_an_external_tokens_removed_key_revokes_it_at_once(bridge: Bridge, idp: MockIdP) -> None:
    token = idp.mint(sub="yan")
    bridge.authenticate(token)
    old_kid = idp.keys[0].kid
    idp.rotate_keys(keep_old=False)
    assert idp.keys[0].kid != old_kid
    assert bridge.warm_up().ok  # the issuer's set is fetched again: the key is gone
    with pytest.raises(TokenRevoked):
        bridge.authenticate(token)


def test_an_external_token_whose_key_was_replaced_under_its_kid_is_refused(
    bridge: Bridge, idp: MockIdP
) -> None:
    token = idp.mint(sub="yves")
    bridge.authenticate(token)  # remembered with its key
    kid = idp.key_for().kid
    idp.replace_key()
    assert bridge.authenticate(idp.mint(sub="yves")).kind == "external"  # the new key, after one refetch
    assert len(idp.requests_to("jwks")) == 2
    assert idp.key_for().kid == kid
    with pytest.raises(InvalidToken):
        bridge.authenticate(token)  # the set it was remembered with is gone: checked again, and fails
    assert len(idp.requests_to("jwks")) == 2


def test_hs256_sessions_with_a_shared_secret(make_bridge: Callable[..., Bridge], idp: MockIdP) -> None:
    secret = "s" * 40
    bridge = make_bridge(
        {"algorithm": "HS256", "keys": [], "secret": {"env": "SECRET"}}, environ={"SECRET": secret}
    )
    session = bridge.exchange(idp.mint(sub="zoe"))
    assert bridge.authenticate(session.access_token).kind == "session"
    assert bridge.session_jwks() == {"keys": []}
    with pytest.raises(ConfigError):
        make_bridge(
            {"algorithm": "HS256", "keys": [], "secret": {"env": "SECRET"}}, environ={"SECRET": "short"}
        )


# -- async ------------------------------------------------------------------------------


def test_the_async_twins_keep_the_same_rules(bridge: Bridge, idp: MockIdP, clock: FrozenClock) -> None:
    async def scenario() -> None:
        session = await bridge.aexchange(idp.mint(sub="async-amy"))
        assert (await bridge.aauthenticate(session.access_token)).kind == "session"
        external = idp.mint(sub="async-ben")
        assert (await bridge.aauthenticate(external)).kind == "external"
        assert (await bridge.aauthenticate(external)).kind == "external"
        renewed = await bridge.arefresh(session.refresh_token or "")
        clock.advance(11)
        with pytest.raises(RefreshReused):
            await bridge.arefresh(session.refresh_token or "")
        with pytest.raises(TokenRevoked):
            await bridge.aauthenticate(renewed.access_token)
        other = await bridge.aissue_session(session.user)
        assert [s.session_id for s in await bridge.asessions_of(session.user.id)] == [other.session_id]
        assert await bridge.arevoke(other.access_token) is True
        with pytest.raises(TokenRevoked):
            await bridge.aauthenticate(other.access_token)
        third = await bridge.aissue_session(session.user)
        assert await bridge.arevoke_session(third.session_id) is True
        fourth = await bridge.aissue_session(session.user)
        await bridge.arevoke_user(session.user.id)
        with pytest.raises(TokenRevoked):
            await bridge.aauthenticate(fourth.access_token)
        await bridge.adeprovision(issuer="https://idp.test", subject="async-ben")
        with pytest.raises(AccountDisabled):
            await bridge.aauthenticate(external)

    asyncio.run(scenario())


def test_every_session_event_is_audited_without_tokens(
    bridge: Bridge, idp: MockIdP, clock: FrozenClock, audit: Audit
) -> None:
    session = bridge.exchange(idp.mint(sub="events"))
    renewed = bridge.refresh(session.refresh_token or "")
    clock.advance(11)
    with pytest.raises(RefreshReused):
        bridge.refresh(session.refresh_token or "")
    other = bridge.issue_session(session.user)
    bridge.revoke(other.access_token)
    bridge.revoke_user(session.user.id)
    names = set(audit.names())
    assert {
        "session_issued",
        "session_refreshed",
        "refresh_reused",
        "session_revoked",
        "user_sessions_revoked",
    } <= names
    dumped = repr([(e.name, dict(e.detail)) for e in audit])
    for secret in (session.access_token, session.refresh_token, renewed.refresh_token, other.access_token):
        assert secret and secret not in dumped


def test_a_repeated_external_token_follows_its_issuers_key_set_past_its_ttl(
    make_bridge: Callable[..., Bridge], idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = make_bridge({"user_check": 3600, "touch_interval": 86400})
    token = idp.mint(sub="ttl-user", lifetime=3000)
    bridge.authenticate(token)
    fetches = len(idp.requests_to("jwks"))
    clock.advance(700)  # past the key set's 600 s TTL: the repeat must not trust the old set
    assert bridge.authenticate(token).kind == "external"
    assert len(idp.requests_to("jwks")) == fetches + 1  # it refetched, and the key is still there
    idp.rotate_keys(keep_old=False)
    clock.advance(700)
    with pytest.raises(TokenRevoked):
        bridge.authenticate(token)
