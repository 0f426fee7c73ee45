"""Creating users: the first login, the identity key, the result, creation policy and
the values that are refused before they reach a user table (MAP-01, MAP-07, MAP-08)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from _prov_helpers import AuditLog, StubMapping

from federation.errors import InvalidUserData, LoginRefused, RegistrationClosed
from federation.mapping import MappingResult
from federation.provisioning import DefaultMapping, LoginResult
from federation.storage import MemoryStore
from federation.testing import FrozenClock, MockIdP

ADA = {
    "sub": "user-42",
    "email": "ada@example.com",
    "email_verified": True,
    "preferred_username": "ada",
    "name": "Ada Lovelace",
}


def test_first_login_creates_the_user_and_its_identity(
    login_bridge: Any, idp: MockIdP, clock: FrozenClock
) -> None:
    store = MemoryStore()
    bridge = login_bridge(store, issuer={"trust_email": True})
    token = idp.mint(ADA)
    result = bridge.login(token)
    now = datetime.fromtimestamp(clock(), tz=timezone.utc)

    assert isinstance(result, LoginResult)
    assert result.created and not result.linked and result.changes == {}
    user = result.user
    assert (user.username, user.email, user.email_verified, user.display_name) == (
        "ada",
        "ada@example.com",
        True,
        "Ada Lovelace",
    )
    assert user.roles == frozenset() and dict(user.attributes) == {}
    assert user.status == "active" and user.active
    assert user.created_at == user.updated_at == user.last_login_at == now
    assert (result.identity.issuer, result.identity.subject) == ("https://idp.test", "user-42")
    assert result.identity.provider == "oidc" and result.identity.user_id == user.id
    assert result.token.subject == "user-42" and result.token.identity_key == result.identity.key
    assert store.users() == [user]
    assert store.identities() == [result.identity]
    assert token not in repr(result)


def test_second_login_finds_the_same_user(login_bridge: Any, idp: MockIdP, clock: FrozenClock) -> None:
    store = MemoryStore()
    bridge = login_bridge(store)
    first = bridge.login(idp.mint(ADA))
    clock.advance(60)
    second = bridge.login(idp.mint(ADA))
    assert not second.created
    assert second.user.id == first.user.id
    assert second.user.last_login_at == datetime.fromtimestamp(clock(), tz=timezone.utc)
    assert second.user.updated_at == first.user.updated_at  # nothing changed but the login time
    assert len(store.users()) == 1 and len(store.identities()) == 1


@pytest.mark.anyio
async def test_alogin_creates_then_finds(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store)
    first = await bridge.alogin(idp.mint(ADA))
    second = await bridge.alogin(idp.mint(ADA))
    assert first.created and not second.created
    assert first.user.id == second.user.id
    assert bridge.login(idp.mint(ADA)).user.id == first.user.id


def test_provision_takes_an_already_verified_token(login_bridge: Any, idp: MockIdP) -> None:
    bridge = login_bridge(MemoryStore())
    vt = bridge.verify(idp.mint(ADA))
    assert bridge.provision(vt).created
    assert not bridge.provision(vt).created


def test_identity_is_keyed_on_issuer_and_subject_never_email(
    login_bridge: Any, idp: MockIdP, clock: FrozenClock
) -> None:
    """MAP-01: the same sub at two issuers is two people; MAP-07: a changed email or
    username is still the same person; a new sub with a known email is a new person."""
    other = MockIdP(issuer="https://other-idp.test", audience="my-client", alg="ES256", clock=clock)
    store = MemoryStore()
    bridge = login_bridge(store, idps=[(other, {})])
    a = bridge.login(idp.mint(sub="12345", email="same@example.com", email_verified=True))
    b = bridge.login(other.mint(sub="12345", email="same@example.com", email_verified=True))
    assert a.user.id != b.user.id and a.created and b.created
    renamed = bridge.login(idp.mint(sub="12345", email="renamed@example.com", preferred_username="new"))
    assert renamed.user.id == a.user.id and not renamed.created
    assert renamed.user.email == "renamed@example.com"
    stranger = bridge.login(idp.mint(sub="67890", email="renamed@example.com", email_verified=True))
    assert stranger.created and stranger.user.id != a.user.id
    assert len(store.users()) == 3


def test_subjects_are_compared_exactly(login_bridge: Any, idp: MockIdP) -> None:
    store = MemoryStore()
    bridge = login_bridge(store)
    ids = {bridge.login(idp.mint(sub=sub)).user.id for sub in ("abc", "ABC", "abc ", " abc")}
    assert len(ids) == 4


def test_entra_identity_is_tenant_and_object_id(login_bridge: Any, clock: FrozenClock) -> None:
    tenant = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
    entra = MockIdP.for_provider(
        "azure_ad", tenant=tenant, client_id="00001111-aaaa-2222-bbbb-3333cccc4444", clock=clock
    )
    bridge = login_bridge(MemoryStore(), idps=[(entra, {})])
    first = bridge.login(entra.mint(oid="11111111-2222-3333-4444-555555555555", sub="pairwise-1"))
    assert first.identity.key == (f"entra:{tenant}", "11111111-2222-3333-4444-555555555555")
    assert first.identity.provider == "azure_ad"
    # the pairwise sub, the email and the upn change: the oid is the person
    again = bridge.login(
        entra.mint(
            oid="11111111-2222-3333-4444-555555555555",
            sub="pairwise-2",
            email="changed@contoso.example",
            preferred_username="changed@contoso.example",
        )
    )
    assert again.user.id == first.user.id and not again.created


def test_creation_turned_off_refuses_new_identities_only(
    login_bridge: Any, idp: MockIdP, audit: AuditLog
) -> None:
    store = MemoryStore()
    existing = login_bridge(store).login(idp.mint(ADA))
    closed = login_bridge(store, provisioning={"create_users": False})
    assert closed.login(idp.mint(ADA)).user.id == existing.user.id
    with pytest.raises(RegistrationClosed) as caught:
        closed.login(idp.mint(sub="newcomer"))
    exc = caught.value
    assert isinstance(exc, LoginRefused) and exc.code == "registration_closed"
    assert exc.reason == "creation_disabled" and exc.subject == "newcomer"
    assert len(store.users()) == 1
    assert audit[-1].name == "login_failed" and audit[-1].detail["reason"] == "registration_closed"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"email": "eve@evil.example", "email_verified": True}, "email_domain_not_allowed"),
        ({"email": "eve@corp.example.evil", "email_verified": True}, "email_domain_not_allowed"),
        ({"email": "eve@sub.corp.example", "email_verified": True}, "email_domain_not_allowed"),
        ({"email": "eve@corp.example", "email_verified": False}, "email_not_verified"),
        ({"email": "eve@corp.example"}, "email_not_verified"),
        ({}, "email_not_verified"),
    ],
)
def test_allowed_email_domains_refuse_creation(
    login_bridge: Any, idp: MockIdP, claims: dict[str, Any], reason: str
) -> None:
    store = MemoryStore()
    bridge = login_bridge(store, provisioning={"allowed_email_domains": ["corp.example", "Partner.Example"]})
    with pytest.raises(RegistrationClosed) as caught:
        bridge.login(idp.mint(sub="eve", **claims))
    assert caught.value.reason == reason
    assert store.users() == []


def test_allowed_email_domains_admit_listed_domains_case_insensitively(
    login_bridge: Any, idp: MockIdP
) -> None:
    store = MemoryStore()
    bridge = login_bridge(store, provisioning={"allowed_email_domains": ["corp.example", "Partner.Example"]})
    assert bridge.login(idp.mint(sub="a", email="a@CORP.example", email_verified=True)).created
    assert bridge.login(idp.mint(sub="b", email="b@partner.example", email_verified=True)).created


def test_allowed_email_domains_do_not_lock_out_existing_users(login_bridge: Any, idp: MockIdP) -> None:
    store = MemoryStore()
    created = login_bridge(store).login(idp.mint(sub="old-timer", email="x@elsewhere.example"))
    restricted = login_bridge(store, provisioning={"allowed_email_domains": ["corp.example"]})
    assert restricted.login(idp.mint(sub="old-timer")).user.id == created.user.id


def _mapping(attributes: dict[str, Any]) -> StubMapping:
    return StubMapping(lambda token, existing: MappingResult(attributes=attributes))


@pytest.mark.parametrize(
    ("attributes", "name"),
    [
        ({"username": "ada\x00admin"}, "username"),
        ({"username": "ada\u200badmin"}, "username"),  # zero-width space
        ({"username": "admin\u3164"}, "username"),  # Hangul filler: prints as nothing
        ({"username": "admin\u2800"}, "username"),  # braille blank
        ({"username": "ad\u034fmin"}, "username"),  # combining grapheme joiner
        ({"username": "admin\u00a0"}, "username"),  # no-break space
        ({"username": "admin\ufe0f"}, "username"),  # variation selector
        ({"email": "admin\u3164@example.com"}, "email"),
        ({"display_name": "Ada\u2028Set-Cookie: x"}, "display_name"),  # line separator
        ({"department": "R&D\u2029"}, "department"),  # paragraph separator
        ({"username": "x" * 256}, "username"),
        ({"username": ""}, "username"),
        ({"username": 42}, "username"),
        ({"email": "a@b.c\r\nX-Injected: 1"}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@at@signs.example"}, "email"),
        ({"email": "spaces in@example.com"}, "email"),
        ({"email": "x" * 250 + "@b.cd"}, "email"),
        ({"display_name": "a\r\nSet-Cookie: x"}, "display_name"),
        ({"display_name": "admin\u202egnp.exe"}, "display_name"),  # right-to-left override
        ({"display_name": "n" * 257}, "display_name"),
        ({"department": "R&D\x07"}, "department"),
        ({"department": "x" * 5000}, "department"),
        ({"department": float("nan")}, "department"),
        ({"department": object()}, "department"),
        ({"department": {"deep": [[[[[[[[["too deep"]]]]]]]]]}}, "department"),
        ({"department": {1: "non-string key"}}, "department"),
        ({"bad\nname": "x"}, "bad\nname"),
    ],
)
def test_unstorable_values_are_refused_and_nothing_is_written(
    login_bridge: Any, idp: MockIdP, audit: AuditLog, attributes: dict[str, Any], name: str
) -> None:
    store = MemoryStore()
    bridge = login_bridge(store, mapping=_mapping(attributes))
    with pytest.raises(InvalidUserData) as caught:
        bridge.login(idp.mint(sub="mallory"))
    exc = caught.value
    assert exc.code == "invalid_attribute" and exc.attribute == name[:128]
    assert exc.subject == "mallory"
    for value in attributes.values():
        if isinstance(value, str) and 0 < len(value) < 300:
            assert value not in str(exc)
    assert store.users() == []
    assert audit.names() == ["login_failed"] and audit[0].detail["reason"] == "invalid_attribute"


def test_storable_values_round_trip(login_bridge: Any, idp: MockIdP) -> None:
    attributes = {
        "username": "zoë",
        "display_name": "Zoë 🚀 Ω — ‍ok",  # emoji with a zero-width joiner is fine in names
        "department": "R&D",
        "cost_center": 4711,
        "ratio": 0.5,
        "manager": None,  # None on creation: not stored
        "tags": ["a", "b"],
        "address": {"city": "Zürich", "zip": "8000"},
    }
    store = MemoryStore()
    result = login_bridge(store, mapping=_mapping(attributes)).login(idp.mint(sub="zoe"))
    assert result.user.username == "zoë" and result.user.display_name == attributes["display_name"]
    assert dict(result.user.attributes) == {
        "department": "R&D",
        "cost_center": 4711,
        "ratio": 0.5,
        "tags": ["a", "b"],
        "address": {"city": "Zürich", "zip": "8000"},
    }


def test_email_verified_is_the_providers_word_for_the_tokens_own_email(
    login_bridge: Any, idp: MockIdP
) -> None:
    """...from an issuer trusted for emails; any other issuer's word is never stored."""
    store = MemoryStore()
    trusted = {"trust_email": True}
    own = login_bridge(store, issuer=trusted).login(
        idp.mint(sub="a", email="a@example.com", email_verified=True)
    )
    assert own.user.email_verified
    unverified = login_bridge(store, issuer=trusted).login(
        idp.mint(sub="b", email="b@example.com", email_verified=False)
    )
    assert not unverified.user.email_verified
    stringly = login_bridge(store, issuer=trusted).login(
        idp.mint(sub="c", email="c@example.com", email_verified="true")
    )
    assert not stringly.user.email_verified  # generic OIDC: only JSON true counts
    # a mapping that writes some other address: the provider vouched for nothing about it
    elsewhere = login_bridge(store, mapping=_mapping({"email": "someone-else@example.com"}), issuer=trusted)
    other = elsewhere.login(idp.mint(sub="d", email="d@example.com", email_verified=True))
    assert other.user.email == "someone-else@example.com" and not other.user.email_verified
    # an issuer not trusted for emails (the default): its word is not stored
    untrusted = login_bridge(store).login(idp.mint(sub="e", email="e@example.com", email_verified=True))
    assert untrusted.token.email_verified and not untrusted.user.email_verified


def test_default_mapping_copies_columns_and_grants_nothing(idp: MockIdP, login_bridge: Any) -> None:
    bridge = login_bridge(MemoryStore())
    result = bridge.login(idp.mint(ADA, groups=["admins"], roles=["admin"]))
    assert result.user.roles == frozenset()
    assert result.mapping.trace and all(entry.rule.startswith("default.") for entry in result.mapping.trace)
    assert isinstance(DefaultMapping().apply(result.token, None), MappingResult)


def test_the_mapping_sees_the_existing_user_with_its_columns(login_bridge: Any, idp: MockIdP) -> None:
    mapping = StubMapping(
        lambda token, existing: MappingResult(
            attributes={"username": "ada", "department": "R&D"}, roles=frozenset({"reader"})
        )
    )
    bridge = login_bridge(MemoryStore(), mapping=mapping)
    bridge.login(idp.mint(ADA))
    bridge.login(idp.mint(ADA))
    assert mapping.calls[0][1] is None
    existing = mapping.calls[1][1]
    assert existing is not None
    assert existing.roles == frozenset({"reader"})
    assert existing.attributes == {
        "username": "ada",
        "email": None,
        "display_name": None,
        "department": "R&D",
    }
