"""Linking a new identity to an existing user by email: off by default; when on, only a
verified email from an issuer marked trust_email, only onto a user whose own email is
verified and who has no identity of that issuer yet (MAP-02, MAP-03, MAP-04, MAP-05)."""

from __future__ import annotations

from typing import Any

import pytest
from _prov_helpers import AuditLog

from federation.errors import AccountDisabled, LinkRefused
from federation.storage import MemoryStore
from federation.testing import FrozenClock, MockIdP

LINK = {"link_by_email": True}
TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"


@pytest.fixture
def partner(clock: FrozenClock) -> MockIdP:
    """A second issuer: the one whose identities get linked."""
    return MockIdP(issuer="https://partner-idp.test", audience="my-client", alg="ES256", clock=clock)


def _existing(login_bridge: Any, idp: MockIdP, store: Any, **claims: Any) -> Any:
    values = {"sub": "home-1", "email": "ada@corp.example", "email_verified": True, **claims}
    # the home issuer vouches for its emails: only then is the stored email verified
    return login_bridge(store, issuer={"trust_email": True}).login(idp.mint(values))


def test_off_by_default_a_second_account_is_created(
    login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any
) -> None:
    home = _existing(login_bridge, idp, store)
    bridge = login_bridge(store, idps=[(partner, {"trust_email": True})])
    other = bridge.login(partner.mint(sub="p-1", email="ada@corp.example", email_verified=True))
    assert other.created and not other.linked and other.user.id != home.user.id


def test_verified_email_from_a_trusted_issuer_links(
    login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any, audit: AuditLog
) -> None:
    home = _existing(login_bridge, idp, store, groups=["x"])
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": True})])
    audit.clear()
    linked = bridge.login(partner.mint(sub="p-1", email="ADA@Corp.Example", email_verified=True))
    assert linked.linked and not linked.created
    assert linked.user.id == home.user.id
    assert linked.identity.key == ("https://partner-idp.test", "p-1")
    assert linked.identity.user_id == home.user.id
    assert audit.names()[0] == "identity_linked" and audit[0].detail["via"] == "email"
    assert audit[0].issuer == "https://partner-idp.test" and audit[0].subject == "p-1"
    # from now on the partner identity is simply the user's
    again = bridge.login(partner.mint(sub="p-1", email="ada@corp.example", email_verified=True))
    assert not again.linked and not again.created and again.user.id == home.user.id
    # both identities still lead to the same user
    assert bridge.login(idp.mint(sub="home-1")).user.id == home.user.id


@pytest.mark.parametrize(
    ("claims", "trust", "reason"),
    [
        ({"email_verified": False}, True, "email_not_verified"),
        ({"email_verified": None}, True, "email_not_verified"),
        ({"email_verified": "true"}, True, "email_not_verified"),
        ({"email_verified": True}, False, "issuer_not_trusted"),
    ],
)
def test_the_tokens_email_must_be_verified_and_its_issuer_trusted(
    login_bridge: Any,
    idp: MockIdP,
    partner: MockIdP,
    store: Any,
    claims: dict[str, Any],
    trust: bool,
    reason: str,
) -> None:
    home = _existing(login_bridge, idp, store)
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": trust})])
    with pytest.raises(LinkRefused) as caught:
        bridge.login(partner.mint({"sub": "p-1", "email": "ada@corp.example", **claims}))
    assert caught.value.code == "link_refused" and caught.value.reason == reason
    with store.transaction() as tx:
        assert tx.find_identity("https://partner-idp.test", "p-1") is None
        assert [i.key for i in tx.identities_of(home.user.id)] == [("https://idp.test", "home-1")]


def test_the_existing_users_email_must_be_verified(login_bridge: Any, idp: MockIdP, partner: MockIdP) -> None:
    """Account pre-hijacking: an attacker registered the victim's address without
    verifying it; the victim's verified login must not land in that account."""
    store = MemoryStore()
    _existing(login_bridge, idp, store, sub="attacker", email_verified=False)
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": True})])
    with pytest.raises(LinkRefused) as caught:
        bridge.login(partner.mint(sub="victim", email="ada@corp.example", email_verified=True))
    assert caught.value.reason == "target_email_not_verified"
    assert len(store.users()) == 1 and len(store.identities()) == 1


def test_never_a_second_identity_of_the_same_issuer(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    """MAP-05: a new sub for a known email at the same issuer (a recycled account, a lapsed
    domain) is not the old person."""
    _existing(login_bridge, idp, store)
    bridge = login_bridge(store, provisioning=LINK, issuer={"trust_email": True})
    with pytest.raises(LinkRefused) as caught:
        bridge.login(idp.mint(sub="home-2", email="ada@corp.example", email_verified=True))
    assert caught.value.reason == "issuer_already_linked"


def test_never_when_the_email_is_ambiguous(
    login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any
) -> None:
    _existing(login_bridge, idp, store, sub="one")
    _existing(login_bridge, idp, store, sub="two", email="Ada@corp.example")
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": True})])
    with pytest.raises(LinkRefused) as caught:
        bridge.login(partner.mint(sub="p-1", email="ada@corp.example", email_verified=True))
    assert caught.value.reason == "ambiguous_email"


def test_never_outside_the_allowed_domains(
    login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any
) -> None:
    _existing(login_bridge, idp, store)
    bridge = login_bridge(
        store,
        provisioning={**LINK, "allowed_email_domains": ["other.example"]},
        idps=[(partner, {"trust_email": True})],
    )
    with pytest.raises(LinkRefused) as caught:
        bridge.login(partner.mint(sub="p-1", email="ada@corp.example", email_verified=True))
    assert caught.value.reason == "email_domain_not_allowed"


def test_never_onto_a_disabled_user(login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any) -> None:
    home = _existing(login_bridge, idp, store)
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": True})])
    bridge.deprovision(issuer="https://idp.test", subject="home-1")
    with pytest.raises(AccountDisabled) as caught:
        bridge.login(partner.mint(sub="p-1", email="ada@corp.example", email_verified=True))
    assert caught.value.user_id == home.user.id


def test_never_entra_emails_without_xms_edov(login_bridge: Any, idp: MockIdP, clock: FrozenClock) -> None:
    """MAP-02 (nOAuth): an Entra email is unverified unless xms_edov says otherwise, even
    when the tenant entry is marked trust_email."""
    entra = MockIdP.for_provider(
        "azure_ad", tenant=TENANT, client_id="00001111-aaaa-2222-bbbb-3333cccc4444", clock=clock
    )
    store = MemoryStore()
    home = _existing(login_bridge, idp, store, email="victim@corp.example")
    bridge = login_bridge(store, provisioning=LINK, idps=[(entra, {"trust_email": True})])
    for claims in ({}, {"xms_edov": False}):
        with pytest.raises(LinkRefused) as caught:
            bridge.login(
                entra.mint(oid="99999999-0000-0000-0000-000000000001", email="victim@corp.example", **claims)
            )
        assert caught.value.reason == "email_not_verified"
    # with xms_edov the domain owner vouches for the address: the link is allowed
    linked = bridge.login(
        entra.mint(oid="99999999-0000-0000-0000-000000000001", email="victim@corp.example", xms_edov=True)
    )
    assert linked.linked and linked.user.id == home.user.id
    assert linked.identity.key == (f"entra:{TENANT}", "99999999-0000-0000-0000-000000000001")


def test_no_candidate_means_a_new_user(login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any) -> None:
    _existing(login_bridge, idp, store)
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": False})])
    fresh = bridge.login(partner.mint(sub="p-9", email="grace@corp.example", email_verified=False))
    assert fresh.created and not fresh.linked


def test_non_ascii_emails_are_never_matched(login_bridge: Any, idp: MockIdP, partner: MockIdP) -> None:
    """MAP-06: look-alike and case-folding collisions never merge accounts (Cyrillic i,
    dotless i, dotted capital I)."""
    store = MemoryStore()
    _existing(login_bridge, idp, store, email="victim@corp.example")
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": True})])
    for sub, email in (
        ("p-1", "v\u0456ctim@corp.example"),
        ("p-2", "vict\u0131m@corp.example"),
        ("p-3", "V\u0130CTIM@corp.example"),
    ):
        result = bridge.login(partner.mint(sub=sub, email=email, email_verified=True))
        assert result.created and not result.linked
    assert len(store.users()) == 4


@pytest.mark.anyio
async def test_async_linking(login_bridge: Any, idp: MockIdP, partner: MockIdP, store: Any) -> None:
    home = _existing(login_bridge, idp, store)
    bridge = login_bridge(store, provisioning=LINK, idps=[(partner, {"trust_email": True})])
    linked = await bridge.alogin(partner.mint(sub="p-1", email="ada@corp.example", email_verified=True))
    assert linked.linked and linked.user.id == home.user.id
    with pytest.raises(LinkRefused):
        await bridge.alogin(partner.mint(sub="p-2", email="ada@corp.example", email_verified=True))
