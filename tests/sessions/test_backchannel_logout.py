"""OIDC Back-Channel Logout 1.0: the logout token's rules (§2.4, §2.6) and what a logout ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from _session_services import Flaky

from federation import Bridge
from federation.errors import FederationError, InvalidToken, StorageError, TokenRevoked
from federation.sessions import generate_private_key_pem
from federation.storage import MemoryStore
from federation.testing import FrozenClock, MockIdP, generate_signing_key

APP = "https://app.example.test"
EVENT = {"http://schemas.openid.net/event/backchannel-logout": {}}
_PEM = generate_private_key_pem("ES256").decode()


@pytest.fixture
def bridge(idp: MockIdP) -> Iterator[Bridge]:
    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]})
    built = idp.bridge(config=config, store=MemoryStore(), environ={"SESSION_KEY": _PEM})
    yield built
    built.close()


def logout_token(idp: MockIdP, **claims: Any) -> str:
    """A logout token as an OP sends one: typ logout+jwt, the event, a jti, no nonce."""
    headers = claims.pop("headers", {"typ": "logout+jwt"})
    claims.setdefault("events", EVENT)
    claims.setdefault("jti", f"logout-{len(claims)}-{claims.get('sub')}-{claims.get('sid')}")
    claims.setdefault("nonce", None)
    return idp.mint(headers=headers, **claims)


def test_a_logout_token_verifies_to_what_it_names(bridge: Bridge, idp: MockIdP) -> None:
    logout = bridge.verify_logout_token(logout_token(idp, sub="ada", sid="op-session-1", jti="j-1"))
    assert (logout.issuer, logout.provider, logout.subject) == (idp.issuer, "oidc", "ada")
    assert logout.identity_key == bridge.verify(idp.mint(sub="ada")).identity_key
    assert (logout.provider_session, logout.jti) == ("op-session-1", "j-1")
    assert logout.expires_at > logout.issued_at
    assert "op-session-1" not in repr(logout)  # the claims stay out of logs
    for typ in ("JWT", "application/logout+jwt"):
        assert bridge.verify_logout_token(logout_token(idp, sub="ada", headers={"typ": typ})).subject == "ada"
    assert bridge.verify_logout_token(logout_token(idp, sub="ada", headers={"typ": None})).subject == "ada"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"events": None}, "wrong_token_type"),  # an id token is no logout token
        ({"events": {"http://schemas.openid.net/event/backchannel-logout": "yes"}}, "wrong_token_type"),
        ({"events": {"https://example.test/other-event": {}}}, "wrong_token_type"),
        ({"nonce": "n-1"}, "invalid_claim"),  # §2.4: never an id token
        ({"sub": None, "sid": None}, "invalid_claim"),
        ({"sub": ""}, "invalid_claim"),
        ({"sid": 7}, "invalid_claim"),
        ({"jti": None}, "invalid_claim"),
        ({"iat": None}, "invalid_claim"),
        ({"aud": "another-client"}, "invalid_audience"),
        ({"iss": "https://evil.example"}, "untrusted_issuer"),
        ({"expired": True}, "expired"),
        ({"headers": {"typ": "at+jwt"}}, "wrong_token_type"),
    ],
)
def test_a_logout_token_that_breaks_a_rule_is_refused(
    bridge: Bridge, idp: MockIdP, claims: dict[str, Any], code: str
) -> None:
    claims = {"sub": "ada", **claims}
    with pytest.raises(InvalidToken) as caught:
        bridge.verify_logout_token(logout_token(idp, **claims))
    assert caught.value.code == code


def test_a_forged_logout_token_is_a_bad_signature(bridge: Bridge, idp: MockIdP) -> None:
    forger = generate_signing_key("RS256", kid=idp.key_for().kid)
    forged = idp.mint(key=forger, sub="ada", events=EVENT, jti="forged", nonce=None)
    with pytest.raises(InvalidToken) as caught:
        bridge.backchannel_logout(forged)
    assert caught.value.code == "bad_signature"


def test_a_logout_ends_every_session_and_token_of_the_user_once(
    bridge: Bridge, idp: MockIdP, clock: FrozenClock
) -> None:
    external = idp.mint(sub="ada", jti="ada-id-token")
    first = bridge.exchange(external)
    second = bridge.issue_session(first.user)
    bystander = bridge.exchange(idp.mint(sub="bob", jti="bob-id-token"))
    bridge.authenticate(first.access_token)  # remembered: the logout must reach memory too
    token = logout_token(idp, sub="ada", sid="op-session-1", jti="logout-ada")
    assert bridge.backchannel_logout(token) == first.user.id
    for refused in (first.access_token, second.access_token, external):
        with pytest.raises(TokenRevoked):
            bridge.authenticate(refused)
    with pytest.raises(TokenRevoked):
        bridge.refresh(first.refresh_token or "")
    assert bridge.authenticate(bystander.access_token).user.id == bystander.user.id
    with pytest.raises(TokenRevoked) as caught:  # a replay would end sessions begun since
        bridge.backchannel_logout(token)
    assert caught.value.code == "logout_token_replayed"
    clock.advance(1)
    again = bridge.exchange(idp.mint(sub="ada", jti="ada-signs-in-again"))
    assert bridge.authenticate(again.access_token).user.id == first.user.id


def test_a_logout_of_someone_unknown_or_by_sid_alone(bridge: Bridge, idp: MockIdP) -> None:
    assert bridge.backchannel_logout(logout_token(idp, sub="never-signed-in")) is None
    with pytest.raises(InvalidToken) as caught:
        bridge.backchannel_logout(logout_token(idp, sub=None, sid="op-session-9"))
    assert caught.value.code == "logout_without_sub"


def test_a_logout_token_is_no_bearer_credential(bridge: Bridge, idp: MockIdP) -> None:
    token = logout_token(idp, sub="ada", headers={"typ": None})
    for attempt in (bridge.verify, bridge.authenticate, bridge.exchange):
        with pytest.raises(FederationError) as caught:
            attempt(token)
        assert caught.value.code == "wrong_token_type"


def test_the_async_twin(bridge: Bridge, idp: MockIdP) -> None:
    session = bridge.exchange(idp.mint(sub="cy", jti="cy-id-token"))

    async def scenario() -> str | None:
        logout = await bridge.averify_logout_token(logout_token(idp, sub="cy", jti="cy-check"))
        assert logout.subject == "cy"
        return await bridge.abackchannel_logout(logout_token(idp, sub="cy", jti="cy-logout"))

    assert asyncio.run(scenario()) == session.user.id
    with pytest.raises(TokenRevoked):
        bridge.authenticate(session.access_token)


def test_a_logout_that_failed_half_way_is_finished_by_the_providers_retry(idp: MockIdP) -> None:
    """The jti was claimed before the revocation: storage failing between the two made the
    provider's retry a 'replay' (400), and the user stayed signed in."""
    store = Flaky()
    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]})
    bridge = idp.bridge(
        config=config, store=MemoryStore(), session_store=store, environ={"SESSION_KEY": _PEM}
    )
    session = bridge.exchange(idp.mint(sub="dee", jti="dee-id-token"))
    token = logout_token(idp, sub="dee", jti="dee-logout")
    store.failures = 1
    with pytest.raises(StorageError):
        bridge.backchannel_logout(token)  # 503: the provider retries
    assert bridge.backchannel_logout(token) == session.user.id
    with pytest.raises(TokenRevoked):
        bridge.authenticate(session.access_token)
    with pytest.raises(TokenRevoked) as caught:
        bridge.backchannel_logout(token)  # acted on now: a replay
    assert caught.value.code == "logout_token_replayed"
    bridge.close()


def test_a_logout_token_is_held_to_the_providers_rules_as_an_id_token_is() -> None:
    """Entra binds the tenant of iss to tid (check()); the logout path skipped it, so a token
    of tenant A naming tid B logged out tenant B's user of the same oid."""
    tenant_a, tenant_b = "aaaabbbb-0000-cccc-1111-dddd2222eeee", "bbbbcccc-1111-dddd-2222-eeee3333ffff"
    idp = MockIdP.for_provider("azure_ad", tenant="organizations", tenant_id=tenant_b, clock=FrozenClock())
    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]})
    config["issuers"][0]["allowed_tenants"] = [tenant_a, tenant_b]
    bridge = idp.bridge(config=config, store=MemoryStore(), environ={"SESSION_KEY": _PEM})
    victim = bridge.exchange(idp.mint(oid="shared-oid"))
    issuer_a = idp.claims()["iss"].replace(tenant_b, tenant_a)
    crossed = logout_token(idp, iss=issuer_a, tid=tenant_b, oid="shared-oid", jti="crossed")
    with pytest.raises(InvalidToken):
        bridge.backchannel_logout(crossed)
    assert bridge.authenticate(victim.access_token).user.id == victim.user.id
    no_oid = logout_token(idp, oid=None, jti="no-oid")
    with pytest.raises(InvalidToken) as caught:
        bridge.backchannel_logout(no_oid)
    assert caught.value.code != "logout_without_sub"  # it has a sub: not what is missing
    assert bridge.backchannel_logout(logout_token(idp, oid="shared-oid", jti="own-tenant")) == victim.user.id
    bridge.close()


def test_a_replay_from_an_issuer_whose_clock_runs_ahead_is_refused(
    bridge: Bridge, idp: MockIdP, clock: FrozenClock
) -> None:
    """The replay rule compared the revocation's time with the token's iat: an iat ahead of
    this clock made every replay end the sessions begun since."""
    bridge.exchange(idp.mint(sub="eve", jti="eve-1"))
    ahead = logout_token(idp, sub="eve", jti="eve-logout", iat=int(clock()) + 5)
    assert bridge.backchannel_logout(ahead) is not None
    clock.advance(10)
    later_session = bridge.exchange(idp.mint(sub="eve", jti="eve-2"))
    with pytest.raises(TokenRevoked) as caught:
        bridge.backchannel_logout(ahead)
    assert caught.value.code == "logout_token_replayed"
    assert bridge.authenticate(later_session.access_token).user.id == later_session.user.id


def test_a_logout_token_valid_until_the_year_9999_is_no_crash(bridge: Bridge, idp: MockIdP) -> None:
    bridge.exchange(idp.mint(sub="far", jti="far-1"))
    token = logout_token(idp, sub="far", jti="far-logout", exp=253402300799)
    assert bridge.backchannel_logout(token) is not None  # was OverflowError


def test_a_late_retry_finishes_and_a_replay_for_a_user_made_since_is_refused(idp: MockIdP) -> None:
    """A retry past ten minutes lost the logout; a token whose first delivery found no user,
    replayed once that user signed in, ended the new session."""
    store, clock = Flaky(), idp.clock
    assert isinstance(clock, FrozenClock)
    config = idp.bridge_config(sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]})
    bridge = idp.bridge(
        config=config, store=MemoryStore(), session_store=store, environ={"SESSION_KEY": _PEM}
    )
    session = bridge.exchange(idp.mint(sub="fay", jti="fay-id", lifetime=7200))
    token = logout_token(idp, sub="fay", jti="fay-logout", lifetime=3600)
    store.failures = 1
    with pytest.raises(StorageError):
        bridge.backchannel_logout(token)
    clock.advance(900)  # the provider's back-off
    assert bridge.backchannel_logout(token) == session.user.id
    with pytest.raises(TokenRevoked):
        bridge.authenticate(session.access_token)
    early = logout_token(idp, sub="gus", jti="gus-logout", lifetime=3600)
    assert bridge.backchannel_logout(early) is None  # no such user yet: nothing to end
    clock.advance(30)
    newcomer = bridge.exchange(idp.mint(sub="gus", jti="gus-id"))
    with pytest.raises(TokenRevoked) as caught:
        bridge.backchannel_logout(early)
    assert caught.value.code == "logout_token_replayed"
    assert bridge.authenticate(newcomer.access_token).user.id == newcomer.user.id
    bridge.close()
