"""MAP-01..MAP-13: account mapping and provisioning attacks (catalogue: docs/security.md).

Each test builds the attack through ``bridge.login`` (verification, mapping and
provisioning together) on a :class:`~federation.storage.MemoryStore` (SQLite for the
injection row), with a :class:`~security_support.Net` that records every request.
MAP-11 (the JIT race) and the disabled-user half of MAP-12 are proven by the
provisioning suite (``tests/provisioning/``) and referenced from docs/security.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_support import Net

from federation import Bridge
from federation.errors import (
    AccessDenied,
    AccountDisabled,
    InvalidClaim,
    InvalidUserData,
    LinkRefused,
    RegistrationClosed,
)
from federation.mapping import Mapping
from federation.storage import AuditEvent, MemoryStore, SQLStore
from federation.testing import FrozenClock, MockIdP

LINK = {"link_by_email": True}
T_HOME = "11111111-1111-1111-1111-111111111111"  # our tenant
T_EVIL = "22222222-2222-2222-2222-222222222222"  # another tenant the multi-tenant app accepts
ENTRA_CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"
TENANTS = {"allowed_tenants": [T_HOME, T_EVIL]}
OID = "aaaaaaaa-0000-4000-8000-000000000001"
EVIL_OID = "eeeeeeee-0000-4000-8000-000000000666"
ADMIN_GROUP = "5a6a5a2c-1d4e-4b5f-9c3a-2f1e0d9c8b7a"

Build = Callable[..., Bridge]


def entra_iss(tid: str) -> str:
    return f"https://login.microsoftonline.com/{tid}/v2.0"


def entra_claims(tid: str, oid: str, **claims: Any) -> dict[str, Any]:
    """An Entra token of tenant ``tid`` for user ``oid`` (the mock's issuer is T_HOME's)."""
    return {"tid": tid, "iss": entra_iss(tid), "oid": oid, **claims}


@pytest.fixture
def entra(clock: FrozenClock) -> MockIdP:
    """A multi-tenant Entra app (tenant ``organizations``) accepting T_HOME and T_EVIL."""
    return MockIdP.for_provider(
        "azure_ad", tenant="organizations", tenant_id=T_HOME, client_id=ENTRA_CLIENT, clock=clock
    )


@pytest.fixture
def audit() -> list[AuditEvent]:
    return []


@pytest.fixture
def build(clock: FrozenClock, audit: list[AuditEvent]) -> Iterator[Build]:
    """``build((idp, overrides), ..., store=, mapping=, provisioning=, net=)``: a login bridge."""
    built: list[Bridge] = []

    def factory(
        *entries: tuple[MockIdP, dict[str, Any]],
        store: Any = None,
        mapping: Any = None,
        provisioning: dict[str, Any] | None = None,
        net: Net | None = None,
    ) -> Bridge:
        net = net or Net(*(idp for idp, _ in entries))
        config: dict[str, Any] = {"issuers": [idp.issuer_config(**overrides) for idp, overrides in entries]}
        if provisioning is not None:
            config["provisioning"] = provisioning
        bridge = Bridge.from_dict(
            config,
            http_client=httpx.Client(transport=net.transport()),
            async_http_client=httpx.AsyncClient(transport=net.transport()),
            clock=clock,
            on_event=lambda event: None,
            store=store if store is not None else MemoryStore(),
            mapping=mapping,
            audit=audit.append,
        )
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


def _identity_keys(store: Any, user_id: str) -> list[tuple[str, str]]:
    with store.transaction() as tx:
        return sorted(i.key for i in tx.identities_of(user_id))


# -- MAP-01 --------------------------------------------------------------------------------


def test_map_01_same_sub_at_two_issuers_is_two_accounts(build: Build, idp: MockIdP, idp_b: MockIdP) -> None:
    store = MemoryStore()
    bridge = build((idp, {}), (idp_b, {}), store=store)
    a = bridge.login(idp.mint(sub="12345", email="same@corp.example", email_verified=True))
    b = bridge.login(idp_b.mint(sub="12345", email="same@corp.example", email_verified=True))
    assert a.created and b.created and a.user.id != b.user.id
    assert a.identity.key == ("https://idp.test", "12345")
    assert b.identity.key == ("https://idp-b.test", "12345")
    # each later login lands in its own account, whatever the other issuer did
    assert bridge.login(idp_b.mint(sub="12345")).user.id == b.user.id
    assert bridge.login(idp.mint(sub="12345")).user.id == a.user.id
    assert len(store.users()) == 2 and len(store.identities()) == 2
    # disabling one of them leaves the other alone
    bridge.deprovision(issuer="https://idp.test", subject="12345")
    with pytest.raises(AccountDisabled):
        bridge.login(idp.mint(sub="12345"))
    assert bridge.login(idp_b.mint(sub="12345")).user.id == b.user.id


def test_map_01_entra_key_is_tenant_and_object_id(build: Build, entra: MockIdP) -> None:
    """One multi-tenant issuer entry: the same oid in two tenants is two people."""
    store = MemoryStore()
    bridge = build((entra, TENANTS), store=store)
    home = bridge.login(entra.mint(entra_claims(T_HOME, OID)))
    other = bridge.login(entra.mint(entra_claims(T_EVIL, OID)))
    assert home.identity.key == (f"entra:{T_HOME}", OID)
    assert other.identity.key == (f"entra:{T_EVIL}", OID)
    assert other.created and other.user.id != home.user.id


# -- MAP-02 --------------------------------------------------------------------------------


def test_map_02_noauth_unverified_entra_email_never_links(build: Build, idp: MockIdP, entra: MockIdP) -> None:
    store = MemoryStore()
    victim = build((idp, {}), store=store).login(
        idp.mint(sub="victim", email="victim@corp.example", email_verified=True)
    )
    # even with linking on and the Entra entry marked trust_email
    linking = build((idp, {}), (entra, {**TENANTS, "trust_email": True}), store=store, provisioning=LINK)
    for extra in ({}, {"xms_edov": False}, {"xms_edov": "true"}, {"email_verified": True}):
        token = entra.mint(
            entra_claims(
                T_EVIL,
                EVIL_OID,
                email="victim@corp.example",
                preferred_username="victim@corp.example",
                **extra,
            )
        )
        with pytest.raises(LinkRefused) as caught:
            linking.login(token)
        assert caught.value.code == "link_refused" and caught.value.reason == "email_not_verified"
    assert len(store.users()) == 1
    assert _identity_keys(store, victim.user.id) == [("https://idp.test", "victim")]
    # linking off (the default): the attacker gets an account of their own, email unverified
    plain = build((idp, {}), (entra, TENANTS), store=store)
    own = plain.login(entra.mint(entra_claims(T_EVIL, EVIL_OID, email="victim@corp.example")))
    assert own.created and not own.linked and own.user.id != victim.user.id
    assert own.identity.key == (f"entra:{T_EVIL}", EVIL_OID)
    assert own.user.email_verified is False
    assert _identity_keys(store, victim.user.id) == [("https://idp.test", "victim")]


# -- MAP-03 --------------------------------------------------------------------------------


@pytest.mark.parametrize("verified", [False, None, "false", "true", 1])
def test_map_03_unverified_email_never_links(
    build: Build, idp: MockIdP, idp_b: MockIdP, verified: Any
) -> None:
    store = MemoryStore()
    victim = build((idp, {}), store=store).login(
        idp.mint(sub="victim", email="victim@corp.example", email_verified=True)
    )
    claims = {"sub": "p-1", "email": "victim@corp.example", "email_verified": verified}  # None drops it
    linking = build((idp, {}), (idp_b, {"trust_email": True}), store=store, provisioning=LINK)
    with pytest.raises(LinkRefused) as caught:
        linking.login(idp_b.mint(claims))
    assert caught.value.code == "link_refused" and caught.value.reason == "email_not_verified"
    assert len(store.users()) == 1 and len(store.identities()) == 1
    # without linking a new account is created, its email marked unverified
    fresh = build((idp, {}), (idp_b, {"trust_email": True}), store=store).login(idp_b.mint(claims))
    assert fresh.created and not fresh.linked and fresh.user.id != victim.user.id
    assert fresh.user.email == "victim@corp.example" and fresh.user.email_verified is False
    assert _identity_keys(store, victim.user.id) == [("https://idp.test", "victim")]


# -- MAP-04 --------------------------------------------------------------------------------


def test_map_04_cross_idp_same_verified_email_is_not_auto_linked(
    build: Build, idp: MockIdP, idp_b: MockIdP
) -> None:
    store = MemoryStore()
    home = build((idp, {}), store=store).login(
        idp.mint(sub="home", email="ada@corp.example", email_verified=True)
    )
    token = idp_b.mint(sub="b-1", email="ada@corp.example", email_verified=True)
    # linking off (default): a separate account; joining them is the application's explicit step
    separate = build((idp, {}), (idp_b, {"trust_email": True}), store=MemoryStore()).login(token)
    assert separate.created and not separate.linked
    # linking on, ISS_B not authoritative (trust_email false, the default)
    with pytest.raises(LinkRefused) as caught:
        build((idp, {}), (idp_b, {}), store=store, provisioning=LINK).login(token)
    assert caught.value.code == "link_refused" and caught.value.reason == "issuer_not_trusted"
    # ISS_B trusted, but the domain is not one the deployment accepts
    other_domain = {**LINK, "allowed_email_domains": ["other.example"]}
    with pytest.raises(LinkRefused) as caught:
        build((idp, {}), (idp_b, {"trust_email": True}), store=store, provisioning=other_domain).login(token)
    assert caught.value.code == "link_refused" and caught.value.reason == "email_domain_not_allowed"
    assert _identity_keys(store, home.user.id) == [("https://idp.test", "home")]
    assert len(store.users()) == 1


def test_map_04_an_authoritative_issuer_links_and_the_link_is_audited(
    build: Build, idp: MockIdP, idp_b: MockIdP, audit: list[AuditEvent]
) -> None:
    store = MemoryStore()
    # the home account's email counts as verified only because its issuer is trusted for emails
    home = build((idp, {"trust_email": True}), store=store).login(
        idp.mint(sub="home", email="ada@corp.example", email_verified=True)
    )
    provisioning = {**LINK, "allowed_email_domains": ["corp.example"]}
    bridge = build((idp, {}), (idp_b, {"trust_email": True}), store=store, provisioning=provisioning)
    audit.clear()
    linked = bridge.login(idp_b.mint(sub="b-1", email="ada@corp.example", email_verified=True))
    assert linked.linked and not linked.created and linked.user.id == home.user.id
    assert _identity_keys(store, home.user.id) == [
        ("https://idp-b.test", "b-1"),
        ("https://idp.test", "home"),
    ]
    event = next(e for e in audit if e.name == "identity_linked")
    assert event.detail["via"] == "email" and (event.issuer, event.subject) == ("https://idp-b.test", "b-1")


# -- MAP-05 --------------------------------------------------------------------------------


def test_map_05_lapsed_workspace_domain_new_sub_never_gets_the_old_account(
    build: Build, clock: FrozenClock
) -> None:
    google = MockIdP.for_provider("google", hosted_domain="dead-startup.com", clock=clock)
    store = MemoryStore()
    claims = {"email": "a@dead-startup.com", "hd": "dead-startup.com", "email_verified": True}
    bridge = build((google, {}), store=store)
    old = bridge.login(google.mint(sub="1001", **claims))
    with store.transaction() as tx:  # roles the application granted the old owner
        tx.update_user(old.user.id, {"roles": frozenset({"billing-admin"})})
    new = bridge.login(google.mint(sub="2002", **claims))
    assert new.token.email_verified is True  # Google vouches for the address: it is still no key
    assert new.created and new.user.id != old.user.id and new.user.roles == frozenset()
    # with linking on and Google trusted, a new sub for a known email at the same issuer is refused
    linking = build((google, {"trust_email": True}), store=MemoryStore(), provisioning=LINK)
    linking.login(google.mint(sub="1001", **claims))
    with pytest.raises(LinkRefused) as caught:
        linking.login(google.mint(sub="3003", **claims))
    assert caught.value.code == "link_refused" and caught.value.reason == "issuer_already_linked"
    assert _identity_keys(store, old.user.id) == [("https://accounts.google.com", "1001")]


# -- MAP-06 --------------------------------------------------------------------------------

#: existing verified accounts, and the look-alike addresses a trusted ISS_B presents
TARGETS = (
    "victim@corp.example",
    "kelvin@corp.example",
    "strasse@corp.example",
    "finance@corp.example",
    "victim@xn--crp-tna.example",  # "cörp.example" as an A-label
)
LOOKALIKES = (
    "v\u0456ctim@corp.example",  # Cyrillic i (U+0456)
    "\uff56ictim@corp.example",  # full-width v
    "vict\u0131m@corp.example",  # Turkish dotless i
    "V\u0130CTIM@corp.example",  # dotted capital I
    "\u212aelvin@corp.example",  # Kelvin sign -> k under NFKC / case folding
    "stra\u00dfe@corp.example",  # ß -> ss under case folding
    "\ufb01nance@corp.example",  # ﬁ ligature -> fi under NFKC
    "victim@corp.example.",  # trailing-dot domain
    "victim+tag@corp.example",  # sub-address
    "victim@c\u00f6rp.example",  # U-label of the A-label target
)


def test_map_06_look_alike_emails_never_merge_accounts(build: Build, idp: MockIdP, idp_b: MockIdP) -> None:
    store = MemoryStore()
    home = build((idp, {"trust_email": True}), store=store)  # the targets' emails are verified
    targets = {
        home.login(idp.mint(sub=f"t-{n}", email=email, email_verified=True)).user.id
        for n, email in enumerate(TARGETS)
    }
    bridge = build((idp, {}), (idp_b, {"trust_email": True}), store=store, provisioning=LINK)
    for n, email in enumerate(LOOKALIKES):
        result = bridge.login(idp_b.mint(sub=f"l-{n}", email=email, email_verified=True))
        assert result.created and not result.linked, email
        assert result.user.id not in targets and result.user.email == email
    # invisible characters are refused outright (MAP-08's value checks)
    with pytest.raises(InvalidUserData) as caught:
        bridge.login(idp_b.mint(sub="zw", email="vic\u200btim@corp.example", email_verified=True))
    assert caught.value.code == "invalid_attribute" and caught.value.attribute == "email"
    for target in targets:
        assert len(_identity_keys(store, target)) == 1
    # the one canonical form: an all-ASCII address, lower-cased whole (pinned policy)
    same = bridge.login(idp_b.mint(sub="ascii-case", email="Victim@CORP.Example", email_verified=True))
    assert same.linked and same.user.id in targets


def test_map_06_confusable_usernames_are_data_not_keys(build: Build, idp: MockIdP, idp_b: MockIdP) -> None:
    """Pinned: usernames are not unique and never looked up; a mixed-script look-alike is
    stored as sent for its own user (no UTS #39 check), invisible characters are refused."""
    store = MemoryStore()
    bridge = build((idp, {}), (idp_b, {}), store=store)
    admin = bridge.login(idp.mint(sub="admin-1", preferred_username="admin"))
    look_alike = bridge.login(idp_b.mint(sub="x-1", preferred_username="\u0430dmin"))  # Cyrillic a
    assert look_alike.created and look_alike.user.id != admin.user.id
    assert (admin.user.username, look_alike.user.username) == ("admin", "\u0430dmin")
    with pytest.raises(InvalidUserData) as caught:
        bridge.login(idp_b.mint(sub="x-2", preferred_username="ad\u200bmin"))
    assert caught.value.code == "invalid_attribute" and caught.value.attribute == "username"


# -- MAP-07 --------------------------------------------------------------------------------


def test_map_07_changed_mutable_claims_keep_the_account(build: Build, idp: MockIdP, entra: MockIdP) -> None:
    store = MemoryStore()
    bridge = build((idp, {}), (entra, TENANTS), store=store)
    first = bridge.login(idp.mint(sub="u-7", email="ada@corp.example", preferred_username="ada", name="Ada"))
    changed = bridge.login(
        idp.mint(sub="u-7", email="ada.king@corp.example", preferred_username="aking", name="Ada King")
    )
    assert changed.user.id == first.user.id and not changed.created
    assert (changed.user.email, changed.user.display_name) == ("ada.king@corp.example", "Ada King")
    # a new sub carrying the old email and username is someone else
    stranger = bridge.login(idp.mint(sub="u-8", email="ada@corp.example", preferred_username="ada"))
    assert stranger.created and stranger.user.id != first.user.id
    # Entra: sub (pairwise), email, preferred_username, upn, unique_name, name all change; the oid stays
    e1 = bridge.login(
        entra.mint(entra_claims(T_HOME, OID, sub="pw-1", email="a@contoso.example", upn="a@contoso.example"))
    )
    e2 = bridge.login(
        entra.mint(
            entra_claims(
                T_HOME,
                OID,
                sub="pw-2",
                email="b@contoso.example",
                preferred_username="b@contoso.example",
                upn="b@contoso.example",
                unique_name="b@contoso.example",
                name="Someone Else",
            )
        )
    )
    assert e2.user.id == e1.user.id and not e2.created
    assert len(store.users()) == 3


# -- MAP-08 --------------------------------------------------------------------------------

PAYLOADS = (
    "'; DROP TABLE users;--",
    "x' OR '1'='1",
    "*)(uid=*",
    "<script>alert(1)</script>",
    "../../etc/passwd",
)


def test_map_08_injection_payloads_are_stored_verbatim(build: Build, idp: MockIdP, tmp_path: Path) -> None:
    """Parameterised SQL: the payloads are data, in every column they reach (SQLite store)."""
    store = SQLStore(f"sqlite:///{tmp_path}/users.db")
    try:
        bridge = build((idp, {}), store=store)
        ids = set()
        for payload in PAYLOADS:
            result = bridge.login(idp.mint(sub=payload, preferred_username=payload, name=payload, email=None))
            assert result.created and result.identity.subject == payload
            assert (result.user.username, result.user.display_name) == (payload, payload)
            assert bridge.login(idp.mint(sub=payload)).user.id == result.user.id
            ids.add(result.user.id)
        assert len(ids) == len(PAYLOADS)
        with store.transaction() as tx:
            for payload in PAYLOADS:
                identity = tx.find_identity("https://idp.test", payload)
                assert identity is not None and identity.user_id in ids
                assert tx.get_user(identity.user_id).display_name == payload
            assert tx.find_identity("https://idp.test", "x") is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("claims", "attribute"),
    [
        ({"name": "a\r\nSet-Cookie: x"}, "display_name"),
        ({"email": "a@b.c\r\nX-Injected: 1"}, "email"),
        ({"preferred_username": "ada\x00admin"}, "username"),
        ({"preferred_username": "ada\x1b[2Jadmin"}, "username"),
        ({"name": "n" * 257}, "display_name"),
        ({"name": "n" * 20_000}, "display_name"),
        ({"email": "x" * 250 + "@b.cd"}, "email"),
        ({"preferred_username": "u" * 256}, "username"),
    ],
)
def test_map_08_control_characters_and_oversized_values_are_refused(
    build: Build, idp: MockIdP, claims: dict[str, Any], attribute: str
) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidUserData) as caught:
        build((idp, {}), store=store).login(idp.mint(sub="mallory", **claims))
    assert caught.value.code == "invalid_attribute" and caught.value.attribute == attribute
    for value in claims.values():
        assert value[:40] not in str(caught.value)
    assert store.users() == [] and store.identities() == []


def test_map_08_control_characters_in_sub_are_refused_at_verification(build: Build, idp: MockIdP) -> None:
    store = MemoryStore()
    bridge = build((idp, {}), store=store)
    for sub in ("u-1\r\nSet-Cookie: x", "u-1\x00admin", "u" * 256):
        with pytest.raises(InvalidClaim) as caught:
            bridge.login(idp.mint(sub=sub))
        assert caught.value.code == "invalid_claim" and caught.value.claim == "sub"
    assert store.users() == []


# -- MAP-09 --------------------------------------------------------------------------------

SCOPED_ROLES: dict[str, Any] = {
    "version": 1,
    "roles": {"sync": "authoritative", "privileged": ["admin"], "rules": []},
    "issuers": {
        "https://idp.test": {
            "roles": {
                "rules": [
                    {
                        "grant": ["admin"],
                        "allow_privileged": True,
                        "when": {"claim": "$groups", "contains": "admin"},
                    }
                ]
            }
        }
    },
    "providers": {
        "azure_ad": {
            "roles": {
                "rules": [
                    {
                        "grant": ["admin"],
                        "allow_privileged": True,
                        "when": {
                            "all": [
                                {"claim": "$groups", "contains": ADMIN_GROUP},
                                {"claim": "tid", "equals": T_HOME},
                            ]
                        },
                    }
                ]
            }
        }
    },
}


def test_map_09_role_rules_are_scoped_per_issuer_and_tenant(
    build: Build, idp: MockIdP, idp_b: MockIdP, entra: MockIdP
) -> None:
    bridge = build((idp, {}), (idp_b, {}), (entra, TENANTS), mapping=Mapping.from_dict(SCOPED_ROLES))
    assert bridge.login(idp.mint(sub="a", groups=["admin"])).user.roles == {"admin"}
    # the same group name (and an app role) at ISS_B grants nothing
    assert bridge.login(idp_b.mint(sub="a", groups=["admin"], roles=["Admin"])).user.roles == frozenset()
    # Entra: the admin group id in our tenant; the same id from another allowed tenant means nothing
    assert bridge.login(entra.mint(entra_claims(T_HOME, OID, groups=[ADMIN_GROUP]))).user.roles == {"admin"}
    assert bridge.login(entra.mint(entra_claims(T_EVIL, OID, groups=[ADMIN_GROUP]))).user.roles == frozenset()
    # group ids, never display names
    assert (
        bridge.login(entra.mint(entra_claims(T_HOME, EVIL_OID, groups=["admin"]))).user.roles == frozenset()
    )


def test_map_09_an_unscoped_rule_applies_to_every_issuer(build: Build, idp: MockIdP, idp_b: MockIdP) -> None:
    """Pinned: scoping is the mapping's (issuers/providers sections, issuer/tid conditions);
    a base rule matches the claim whatever issuer sent it."""
    unscoped = Mapping.from_dict(
        {
            "version": 1,
            "roles": {
                "sync": "additive",
                "rules": [{"grant": ["staff"], "when": {"claim": "$groups", "contains": "staff"}}],
            },
        }
    )
    bridge = build((idp, {}), (idp_b, {}), mapping=unscoped)
    assert bridge.login(idp_b.mint(sub="b", groups=["staff"])).user.roles == {"staff"}


# -- MAP-10 --------------------------------------------------------------------------------

DISTRIBUTED = {
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {"src1": {"endpoint": "https://attacker.test/claims", "access_token": "x"}},
}
OVERAGE_MAPPING: dict[str, Any] = {
    "version": 1,
    "roles": {
        "sync": "authoritative",
        "rules": [{"grant": ["staff"], "when": {"claim": "$groups", "contains": "staff"}}],
    },
    "deny": [{"when": {"claim": "$groups_overage", "equals": True}, "code": "groups_overage"}],
}


def test_map_10_distributed_and_overage_claims_are_never_fetched(
    build: Build, idp: MockIdP, entra: MockIdP
) -> None:
    net = Net(idp, entra)
    bridge = build((idp, {}), (entra, TENANTS), mapping=Mapping.from_dict(OVERAGE_MAPPING), net=net)
    plain = bridge.login(idp.mint(sub="d-1", **DISTRIBUTED))
    assert plain.token.groups == () and plain.user.roles == frozenset()
    for claims in (DISTRIBUTED, {"hasgroups": True}):
        with pytest.raises(AccessDenied) as caught:
            bridge.login(entra.mint(entra_claims(T_HOME, OID, **claims)))
        assert caught.value.code == "access_denied" and caught.value.reason == "groups_overage"
    assert "attacker.test" not in net.hosts()
    assert net.hosts() <= {"idp.test", "login.microsoftonline.com"}


# -- MAP-12 --------------------------------------------------------------------------------


def test_map_12_user_disabled_locally_is_refused(build: Build, idp: MockIdP, idp_b: MockIdP) -> None:
    """Disabled by the application through the store (not by deprovision): every identity refused."""
    store = MemoryStore()
    bridge = build(
        (idp, {"trust_email": True}), (idp_b, {"trust_email": True}), store=store, provisioning=LINK
    )
    first = bridge.login(idp.mint(sub="u", email="ada@corp.example", email_verified=True))
    assert bridge.login(idp_b.mint(sub="b", email="ada@corp.example", email_verified=True)).linked
    with store.transaction() as tx:
        tx.update_user(first.user.id, {"status": "disabled"})
        before = tx.get_user(first.user.id)
    for token in (idp.mint(sub="u", name="Changed"), idp_b.mint(sub="b")):
        with pytest.raises(AccountDisabled) as caught:
            bridge.login(token)
        assert caught.value.code == "account_disabled" and caught.value.reason == "disabled"
        assert caught.value.user_id == first.user.id
    with store.transaction() as tx:
        assert tx.get_user(first.user.id) == before  # nothing written, not even the login time


def test_map_12_deleted_user_comes_back_only_as_a_new_account(build: Build, idp: MockIdP) -> None:
    """Pinned: ``mode="delete"`` forgets the identity, so a later login is a stranger's first
    login (a new user without the old roles), refused only when creation is off."""
    store = MemoryStore()
    bridge = build((idp, {}), store=store)
    first = bridge.login(idp.mint(sub="u"))
    with store.transaction() as tx:
        tx.update_user(first.user.id, {"roles": frozenset({"admin"})})
    bridge.deprovision(issuer="https://idp.test", subject="u", mode="delete")
    closed = build((idp, {}), store=store, provisioning={"create_users": False})
    with pytest.raises(RegistrationClosed) as caught:
        closed.login(idp.mint(sub="u"))
    assert caught.value.code == "registration_closed" and caught.value.reason == "creation_disabled"
    again = bridge.login(idp.mint(sub="u"))
    assert again.created and again.user.id != first.user.id and again.user.roles == frozenset()


# -- MAP-13 --------------------------------------------------------------------------------


def test_map_13_same_email_through_another_customers_idp_is_another_account(
    build: Build, idp: MockIdP, idp_b: MockIdP
) -> None:
    """Customer X's IdP is ISS_A, customer Y's is ISS_B; the account is bound to the issuer
    entry used, and tenant membership stays the application's check."""
    store = MemoryStore()
    bridge = build((idp, {}), (idp_b, {}), store=store)
    alice = bridge.login(idp.mint(sub="alice", email="alice@x-corp.example", email_verified=True))
    via_y = bridge.login(idp_b.mint(sub="alice", email="alice@x-corp.example", email_verified=True))
    assert via_y.created and via_y.user.id != alice.user.id
    assert via_y.identity.issuer == "https://idp-b.test" and via_y.token.issuer == "https://idp-b.test"
    with pytest.raises(LinkRefused) as caught:
        build((idp, {}), (idp_b, {}), store=store, provisioning=LINK).login(
            idp_b.mint(sub="alice-2", email="alice@x-corp.example", email_verified=True)
        )
    assert caught.value.code == "link_refused" and caught.value.reason == "issuer_not_trusted"
    assert _identity_keys(store, alice.user.id) == [("https://idp.test", "alice")]
