"""The Entra ID (``azure_ad``) and Azure AD B2C (``azure_ad_b2c``) profiles.

Tokens are Microsoft's official sample payloads (providers.md §2.8) and
Entra-shaped claims, re-signed with test keys; key sets are served at the
exact Entra URLs by an ``httpx.MockTransport`` with the per-key ``issuer``
member Entra publishes. No network; the clock is frozen.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _azure_helpers import (
    B2C_ACCESS_SAMPLE,
    B2C_TENANT_ID,
    MSA_TENANT,
    TEMPLATE_V2,
    V1_ACCESS_SAMPLE,
    V1_ID_HEADER,
    V1_ID_SAMPLE,
    V2_ACCESS_SAMPLE,
    V2_ID_SAMPLE,
    KeyServer,
    entra_claims,
    entra_issuer,
    entra_jwk,
    entra_jwks_uri,
    sample,
)
from federation.providers.azure_ad import AzureAdB2CConfig, AzureAdConfig

from federation import Bridge
from federation._rfc7517 import import_jwks
from federation.errors import (
    ConfigError,
    DisallowedAlgorithm,
    InvalidAudience,
    InvalidClaim,
    InvalidToken,
    MalformedToken,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import FrozenClock, MockIdP, SigningKey, generate_signing_key
from federation.testing._keys import sign

T_A = "fa15d692-e9c7-4460-a743-29f2956fd429"  # tenant of the v1 samples
T_B = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # tenant of the v2 access sample
T_C = "9122040d-6c67-4c5b-b112-36a304b66dad"  # tenant of the v2 id sample
T_EVIL = "3b0f6a2e-5c1d-4e8f-9a7b-2c4d6e8f0a1b"
CLIENT = "6cb04018-a3f5-46a7-b995-940c78f5aef3"  # aud of the v2 id sample
V1_ID_AUD = V1_ID_SAMPLE["aud"]
V1_API = V1_ACCESS_SAMPLE["aud"]
V2_API = V2_ACCESS_SAMPLE["aud"]
ALL_AUDIENCES = [CLIENT, V1_ID_AUD, V1_API, f"api://{V1_API}", V2_API]

B2C_NAME = "contoso0926tenant"
B2C_POLICY = "B2C_1_signupsignin1"
B2C_AUD = B2C_ACCESS_SAMPLE["aud"]
B2C_ISSUER = f"https://{B2C_NAME}.b2clogin.com/{B2C_TENANT_ID}/v2.0/"
B2C_JWKS = f"https://{B2C_NAME}.b2clogin.com/{B2C_NAME}.onmicrosoft.com/{B2C_POLICY}/discovery/v2.0/keys"
US_HOST = "login.microsoftonline.us"
APP_ID = "0b5e6f3c-2d1a-4c9b-8e7f-6a5b4c3d2e1f"


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def entra_clock() -> FrozenClock:
    return FrozenClock(1_800_000_000.0)


@pytest.fixture(scope="module")
def idp(entra_clock: FrozenClock) -> Iterator[MockIdP]:
    """Mints the tokens; its RS256 key is a tenant key (templated issuer)."""
    mock = MockIdP(issuer=entra_issuer(T_A, "2.0"), audience=CLIENT, clock=entra_clock)
    yield mock
    mock.close()


class Keys:
    def __init__(self, idp: MockIdP) -> None:
        self.tenant = idp.key_for("RS256")  # issuer: the {tenantid} template
        self.msa = generate_signing_key("RS256")  # issuer: the concrete MSA issuer
        self.plain = generate_signing_key("RS256")  # no issuer member (v1 key sets)
        self.foreign = generate_signing_key("RS256")  # issuer: another tenant's concrete issuer
        self.own = generate_signing_key("RS256")  # issuer: T_A's concrete v2 issuer
        self.es256 = generate_signing_key("ES256")  # a non-RSA tenant key
        self.attacker = generate_signing_key("RS256")  # never published


@pytest.fixture(scope="module")
def keys(idp: MockIdP) -> Keys:
    return Keys(idp)


@pytest.fixture(scope="module")
def server(keys: Keys) -> KeyServer:
    srv = KeyServer()
    entra = [
        entra_jwk(keys.tenant),
        entra_jwk(keys.msa, entra_issuer(MSA_TENANT, "2.0")),
        entra_jwk(keys.plain, None),
        entra_jwk(keys.foreign, entra_issuer(T_EVIL, "2.0")),
        entra_jwk(keys.own, entra_issuer(T_A, "2.0")),
        entra_jwk(keys.es256),
    ]
    for tenant in ("common", "organizations", "consumers", T_A, T_B, T_C, T_EVIL):
        srv.publish(entra_jwks_uri(tenant), *entra)
    srv.publish(entra_jwks_uri("organizations", app_id=APP_ID), *entra)
    srv.publish(
        entra_jwks_uri("organizations", host=US_HOST),
        entra_jwk(keys.tenant, f"https://{US_HOST}/{{tenantid}}/v2.0"),
    )
    srv.publish(B2C_JWKS, entra_jwk(keys.plain, None), entra_jwk(keys.tenant))
    return srv


BridgeFactory = Callable[..., Bridge]


@pytest.fixture
def make(server: KeyServer, entra_clock: FrozenClock) -> Iterator[BridgeFactory]:
    """``make(entry_overrides...)``: a bridge with one azure_ad (or given) issuer entry."""
    clients: list[httpx.Client] = []

    def factory(**entry: Any) -> Bridge:
        entry.setdefault("provider", "azure_ad")
        if entry["provider"] == "azure_ad":
            entry.setdefault("audiences", ALL_AUDIENCES)
        client = httpx.Client(transport=server.transport())
        clients.append(client)
        return Bridge.from_dict(
            {"issuers": [entry]},
            http_client=client,
            async_http_client=httpx.AsyncClient(transport=server.transport()),
            clock=entra_clock,
        )

    yield factory
    for client in clients:
        client.close()


def mint(
    idp: MockIdP,
    claims: dict[str, Any],
    *,
    key: SigningKey | None = None,
    headers: dict[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """Sign ``claims`` (iat/nbf now, exp in an hour, as Entra does)."""
    return idp.mint(claims, key=key, headers=headers, alg=alg, jti=None, lifetime=3600, not_before=0)


def rejects(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        bridge.verify(token)
    assert type(info.value) is cls, repr(info.value)
    assert info.value.code == code
    return info.value


async def arejects(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> None:
    with pytest.raises(InvalidToken) as info:
        await bridge.averify(token)
    assert type(info.value) is cls, repr(info.value)
    assert info.value.code == code


ORGS = {"tenant": "organizations", "allowed_tenants": [T_A, T_B, T_C], "versions": ["1.0", "2.0"]}


# -- the official samples, re-signed ----------------------------------------------------------------


def test_v1_id_token_sample_accepted(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(tenant=T_A, versions=["1.0", "2.0"])
    token = mint(idp, sample(V1_ID_SAMPLE), headers=V1_ID_HEADER)
    result = bridge.verify(token)
    assert result.issuer == "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f2956fd429/"
    assert result.token_type == "id"
    assert result.provider == "azure_ad"
    assert result.identity_key == (f"entra:{T_A}", "05833b6b-aa1d-42d4-9ec0-1b2bb9194438")
    assert result.username == "AbeLi@microsoft.com"  # unique_name (v1)
    assert result.email == "abeli@microsoft.com"
    assert result.email_verified is False  # no xms_edov: nOAuth


def test_v2_id_token_sample_accepted_as_an_ordinary_tenant(make: BridgeFactory, idp: MockIdP) -> None:
    # Quirk fixed deliberately: the sample's tenant 9122040d-... is an ordinary tenant, not MSA.
    bridge = make(**ORGS)
    result = bridge.verify(mint(idp, sample(V2_ID_SAMPLE)))
    assert result.token_type == "id"
    assert result.identity_key == (f"entra:{T_C}", "00000000-0000-0000-66f3-3332eca7ea81")
    assert result.username == "AbeLi@microsoft.com"  # preferred_username (v2)
    assert result.email is None


def test_v1_access_token_sample_with_its_issuer_fixed_accepted(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS)
    claims = sample(V1_ACCESS_SAMPLE, iss=f"https://sts.windows.net/{T_A}/")
    result = bridge.verify(mint(idp, claims, headers={"x5t": "i6lGk3FZzxRcUb2C3nEQ7syHJlY"}))
    assert result.token_type == "access"
    assert result.identity_key == (f"entra:{T_A}", "02223b6b-aa1d-42d4-9ec0-1b2bb9194438")
    assert result.username == "abeli@microsoft.com"
    assert result.email_verified is False


def test_v1_access_token_with_an_app_id_uri_audience_accepted(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS)
    claims = sample(V1_ACCESS_SAMPLE, iss=f"https://sts.windows.net/{T_A}/", aud=f"api://{V1_API}")
    assert bridge.verify(mint(idp, claims)).audience == (f"api://{V1_API}",)


@pytest.mark.parametrize(
    ("version", "token_type"),
    [("2.0", "access"), ("2.0", "id"), ("1.0", "id")],
    ids=["v2-access", "v2-id", "v1-id"],
)
def test_an_app_id_uri_audience_only_in_a_v1_access_token(
    make: BridgeFactory, idp: MockIdP, version: str, token_type: str
) -> None:
    """The page: App ID URIs "only for v1 access tokens". Every kind was accepted on one,
    so a token issued for another use of the same API passed as this app's id token."""
    bridge = make(**ORGS)
    uri = f"api://{V1_API}"
    claims = entra_claims(T_A, uri, version, token_type)
    if token_type == "access":
        claims["azp" if version == "2.0" else "appid"] = CLIENT
    rejects(bridge, mint(idp, claims), InvalidAudience, "invalid_audience")
    assert bridge.verify(mint(idp, entra_claims(T_A, CLIENT, version, token_type))).audience == (CLIENT,)


def test_v2_access_token_sample_accepted(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS)
    result = bridge.verify(mint(idp, sample(V2_ACCESS_SAMPLE)))
    assert result.token_type == "access"
    assert result.identity_key == (f"entra:{T_B}", "690222be-ff1a-4d56-abd1-7e4f7d38e474")
    assert result.username == "abeli@microsoft.com"
    assert result.groups == () and result.identity.groups_overage is False


@pytest.mark.anyio
async def test_samples_accepted_async(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS)
    for claims in (sample(V1_ID_SAMPLE), sample(V2_ID_SAMPLE), sample(V2_ACCESS_SAMPLE)):
        result = await bridge.averify(mint(idp, claims))
        assert result.claims["oid"] == claims["oid"]


def test_v1_access_sample_as_published_rejected(make: BridgeFactory, idp: MockIdP) -> None:
    # Its iss names tenant ...-29f29522229 (not a GUID), its tid ...-29f2956fd429.
    token = mint(idp, sample(V1_ACCESS_SAMPLE))
    rejects(make(**ORGS), token, UntrustedIssuer, "untrusted_issuer")
    rejects(
        make(tenant="organizations", allow_any_tenant=True, versions=["1.0", "2.0"]),
        token,
        UntrustedIssuer,
        "untrusted_issuer",
    )


def test_v2_id_sample_is_not_a_personal_account(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    bridge = make(tenant="consumers")
    rejects(bridge, mint(idp, sample(V2_ID_SAMPLE)), UntrustedIssuer, "tenant_not_allowed")
    fixed = sample(V2_ID_SAMPLE, iss=entra_issuer(MSA_TENANT, "2.0"), tid=MSA_TENANT)
    result = bridge.verify(mint(idp, fixed, key=keys.msa))
    assert result.identity_key == (f"entra:{MSA_TENANT}", fixed["oid"])


def test_v1_id_sample_with_padded_payload_rejected(make: BridgeFactory, idp: MockIdP) -> None:
    # Quirk: Microsoft's published v1 id token ends its payload segment with '='.
    key = idp.key_for()
    claims = idp.claims(sample(V1_ID_SAMPLE), lifetime=3600)
    header = {"typ": "JWT", "alg": "RS256", "kid": key.kid, **V1_ID_HEADER}

    def b64(data: dict[str, Any], padded: bool) -> str:
        raw = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
        return raw if padded else raw.rstrip("=")

    payload = b64(claims, True)
    while not payload.endswith("="):  # make sure the segment really carries padding
        claims["pad"] = claims.get("pad", "") + "x"
        payload = b64(claims, True)
    signing_input = b64(header, False) + "." + payload
    signature = base64.urlsafe_b64encode(sign(key.private_key, "RS256", signing_input.encode())).decode()
    rejects(
        make(tenant=T_A, versions=["1.0"]),
        signing_input + "." + signature.rstrip("="),
        MalformedToken,
        "malformed",
    )


# -- tenants (OIDC-05) -------------------------------------------------------------------------------


def test_other_tenant_rejected_when_tenants_are_listed(make: BridgeFactory, idp: MockIdP) -> None:
    # A genuine token of the attacker's tenant, for our client, signed with the shared keys.
    token = mint(idp, entra_claims(T_EVIL, CLIENT))
    err = rejects(make(**ORGS), token, UntrustedIssuer, "tenant_not_allowed")
    assert err.issuer == entra_issuer(T_EVIL, "2.0")
    rejects(make(tenant=T_A), token, UntrustedIssuer, "tenant_not_allowed")


def test_other_tenant_for_another_audience_is_not_routed(make: BridgeFactory, idp: MockIdP) -> None:
    token = mint(idp, entra_claims(T_EVIL, "someone-else"))
    rejects(make(**ORGS), token, UntrustedIssuer, "untrusted_issuer")


@pytest.mark.anyio
async def test_other_tenant_rejected_async(make: BridgeFactory, idp: MockIdP) -> None:
    await arejects(
        make(**ORGS), mint(idp, entra_claims(T_EVIL, CLIENT)), UntrustedIssuer, "tenant_not_allowed"
    )


def test_listed_tenant_issuers_are_exact_routes(make: BridgeFactory) -> None:
    bridge = make(**ORGS)
    assert set(bridge.issuers) == {entra_issuer(t, v) for t in (T_A, T_B, T_C) for v in ("1.0", "2.0")}
    assert make(tenant=T_A.upper()).issuers == (entra_issuer(T_A, "2.0"),)


def test_any_tenant_accepts_a_new_tenant(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(tenant="organizations", allow_any_tenant=True)
    assert bridge.issuers == ()
    result = bridge.verify(mint(idp, entra_claims(T_EVIL, CLIENT)))
    assert result.issuer == entra_issuer(T_EVIL, "2.0")
    assert result.identity_key == (f"entra:{T_EVIL}", "690222be-ff1a-4d56-abd1-7e4f7d38e474")


# A v2-only entry needs its client id GUID in audiences (v2 tokens never carry anything else).
THIRD_APP = "3a1f9c2e-0b4d-4e6f-8a7b-9c0d1e2f3a4b"


def test_entries_for_two_applications_do_not_capture_each_other(
    server: KeyServer, entra_clock: FrozenClock, idp: MockIdP
) -> None:
    entries = [
        {"provider": "azure_ad", "tenant": "organizations", "allow_any_tenant": True, "audiences": [CLIENT]},
        {"provider": "azure_ad", "tenant": "common", "allow_any_tenant": True, "audiences": [V2_API]},
        {"provider": "azure_ad", "tenant": T_EVIL, "audiences": [THIRD_APP]},
    ]
    with httpx.Client(transport=server.transport()) as client:
        bridge = Bridge.from_dict({"issuers": entries}, http_client=client, clock=entra_clock)
        assert bridge.verify(mint(idp, entra_claims(T_B, CLIENT))).audience == (CLIENT,)
        assert bridge.verify(mint(idp, entra_claims(MSA_TENANT, V2_API))).audience == (V2_API,)
        assert bridge.verify(mint(idp, entra_claims(T_EVIL, THIRD_APP))).audience == (THIRD_APP,)
        # A personal account for the organizations-only application is refused, not re-routed.
        rejects(bridge, mint(idp, entra_claims(MSA_TENANT, CLIENT)), UntrustedIssuer, "tenant_not_allowed")
        rejects(bridge, mint(idp, entra_claims(T_B, "fourth-app")), UntrustedIssuer, "untrusted_issuer")


def test_any_tenant_requires_iss_to_name_tid(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(tenant="organizations", allow_any_tenant=True)
    forged = entra_claims(T_EVIL, CLIENT, tid=T_A)  # iss of one tenant, tid of another
    rejects(bridge, mint(idp, forged), UntrustedIssuer, "untrusted_issuer")


@pytest.mark.parametrize(
    "iss, tid",
    [
        ("https://login.microsoftonline.com/{tenantid}/v2.0", "{tenantid}"),
        ("https://login.microsoftonline.com/{tenantid}/v2.0", T_EVIL),
        (entra_issuer(T_EVIL, "2.0"), T_EVIL.upper()),
        (entra_issuer(T_EVIL, "2.0"), [T_EVIL]),
        (entra_issuer(T_EVIL, "2.0"), None),
    ],
)
def test_any_tenant_never_routes_templates_or_odd_tids(
    make: BridgeFactory, idp: MockIdP, iss: str, tid: object
) -> None:
    bridge = make(tenant="common", allow_any_tenant=True)
    rejects(
        bridge, mint(idp, entra_claims(T_EVIL, CLIENT, iss=iss, tid=tid)), UntrustedIssuer, "untrusted_issuer"
    )


def test_organizations_refuses_personal_accounts(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    token = mint(idp, entra_claims(MSA_TENANT, CLIENT), key=keys.msa)
    rejects(make(tenant="organizations", allow_any_tenant=True), token, UntrustedIssuer, "tenant_not_allowed")
    assert make(tenant="common", allow_any_tenant=True).verify(token).claims["tid"] == MSA_TENANT
    assert make(tenant="consumers").verify(token).issuer == entra_issuer(MSA_TENANT, "2.0")


def test_listed_issuer_with_another_tid_rejected(make: BridgeFactory, idp: MockIdP) -> None:
    token = mint(idp, entra_claims(T_A, CLIENT, tid=T_B))  # iss of T_A (a listed route)
    rejects(make(**ORGS), token, UntrustedIssuer, "tenant_mismatch")


@pytest.mark.parametrize(
    "overrides",
    [{"tid": None}, {"tid": 42}, {"tid": T_A.upper()}, {"TID": T_B}, {"Tid": T_A}],
)
def test_tid_must_be_one_lowercase_guid(make: BridgeFactory, idp: MockIdP, overrides: dict[str, Any]) -> None:
    claims = entra_claims(T_A, CLIENT)
    for name, value in overrides.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = value
    err = rejects(make(tenant=T_A), mint(idp, claims), InvalidClaim, "invalid_tenant_id")
    assert isinstance(err, InvalidClaim) and err.claim == "tid"


# -- versions (OIDC-06) --------------------------------------------------------------------------


def test_v1_token_rejected_by_default_v2_only_config(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(tenant=T_A)
    assert bridge.config.issuers[0].versions == ["2.0"]  # type: ignore[attr-defined]
    token = mint(idp, entra_claims(T_A, CLIENT, "1.0"))
    rejects(bridge, token, WrongTokenType, "version_not_allowed")
    # Not routed when the token is for someone else: a plain untrusted issuer.
    rejects(bridge, mint(idp, entra_claims(T_A, "other-app", "1.0")), UntrustedIssuer, "untrusted_issuer")


@pytest.mark.anyio
async def test_v1_token_rejected_by_v2_only_config_async(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(tenant="common", allow_any_tenant=True)
    await arejects(bridge, mint(idp, entra_claims(T_B, CLIENT, "1.0")), WrongTokenType, "version_not_allowed")


def test_v2_token_rejected_by_v1_only_config(make: BridgeFactory, idp: MockIdP) -> None:
    token = mint(idp, entra_claims(T_A, CLIENT, "2.0"))
    rejects(make(tenant=T_A, versions=["1.0"]), token, WrongTokenType, "version_not_allowed")


@pytest.mark.parametrize(("ver", "iss_version"), [("1.0", "2.0"), ("2.0", "1.0")])
def test_ver_must_match_issuer_form(make: BridgeFactory, idp: MockIdP, ver: str, iss_version: str) -> None:
    claims = entra_claims(T_A, CLIENT, ver, iss=entra_issuer(T_A, iss_version))
    rejects(make(**ORGS), mint(idp, claims), UntrustedIssuer, "issuer_version_mismatch")


@pytest.mark.parametrize("ver", [None, "3.0", 2.0, ["2.0"]])
def test_ver_must_be_known(make: BridgeFactory, idp: MockIdP, ver: object) -> None:
    claims = entra_claims(T_A, CLIENT, ver=ver)
    rejects(make(**ORGS), mint(idp, claims), InvalidClaim, "invalid_version")


# -- keys ---------------------------------------------------------------------------------------------


def test_keys_come_from_the_configured_tenant_v2_endpoint(
    make: BridgeFactory, idp: MockIdP, server: KeyServer
) -> None:
    before = len(server.requests)
    make(tenant=T_B, versions=["1.0", "2.0"]).verify(mint(idp, entra_claims(T_B, CLIENT, "1.0")))
    assert server.requests[before:] == [entra_jwks_uri(T_B)]
    assert AzureAdConfig(
        tenant="organizations", allow_any_tenant=True, audiences=[CLIENT]
    ).key_source.jwks_uri == ("https://login.microsoftonline.com/organizations/discovery/v2.0/keys")


def test_app_specific_keys(make: BridgeFactory, idp: MockIdP, server: KeyServer) -> None:
    before = len(server.requests)
    make(**ORGS, app_id=APP_ID.upper()).verify(mint(idp, entra_claims(T_A, CLIENT)))
    assert server.requests[before:] == [entra_jwks_uri("organizations", app_id=APP_ID)]


def test_template_key_signs_any_tenant_v1_and_v2(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    bridge = make(**ORGS)
    for version in ("1.0", "2.0"):
        assert (
            bridge.verify(mint(idp, entra_claims(T_B, CLIENT, version), key=keys.tenant)).claims["ver"]
            == version
        )


def test_concrete_key_issuer_needs_an_exact_match(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    bridge = make(**ORGS)
    # T_A's own key: its v2 tokens, and its v1 tokens (the v2 form of their issuer).
    assert bridge.verify(mint(idp, entra_claims(T_A, CLIENT), key=keys.own)).claims["tid"] == T_A
    assert bridge.verify(mint(idp, entra_claims(T_A, CLIENT, "1.0"), key=keys.own)).claims["tid"] == T_A
    for key in (keys.own, keys.msa, keys.foreign):  # another tenant's (or the MSA) key
        rejects(bridge, mint(idp, entra_claims(T_B, CLIENT), key=key), UntrustedIssuer, "key_issuer_mismatch")


@pytest.mark.anyio
async def test_key_issuer_mismatch_async(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    token = mint(idp, entra_claims(T_A, CLIENT), key=keys.msa)
    await arejects(make(**ORGS), token, UntrustedIssuer, "key_issuer_mismatch")


def test_key_without_issuer_member_accepted(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    assert (
        make(**ORGS).verify(mint(idp, entra_claims(T_A, CLIENT, "1.0"), key=keys.plain)).claims["ver"]
        == "1.0"
    )


def test_unpublished_key_is_unknown(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    token = mint(idp, entra_claims(T_A, CLIENT), key=keys.attacker)
    rejects(make(**ORGS), token, UnknownKey, "unknown_key")


def test_rs256_only_by_default(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    token = mint(idp, entra_claims(T_A, CLIENT), key=keys.es256, alg="ES256")
    rejects(make(**ORGS), token, DisallowedAlgorithm, "disallowed_algorithm")
    assert make(**ORGS, algorithms=["RS256", "ES256"]).verify(token).algorithm == "ES256"


def test_graph_token_refused_before_key_lookup(
    make: BridgeFactory, idp: MockIdP, keys: Keys, server: KeyServer
) -> None:
    bridge = make(tenant=T_C)  # a fresh tenant: the first key fetch would show in the log
    before = len(server.requests)
    claims = entra_claims(T_C, CLIENT, "2.0", "access")
    token = mint(
        idp, claims, key=keys.attacker, headers={"nonce": "Fqm6p0sLqTGrJaLBH2nb0hN1N9K6uNJTzNMKKuEj1Ck"}
    )
    err = rejects(bridge, token, WrongTokenType, "graph_token")
    assert err.issuer == entra_issuer(T_C, "2.0")
    assert server.requests[before:] == []


@pytest.mark.parametrize("tenant", ["common", "organizations"])
def test_real_entra_key_sets_import_with_their_issuer(shared_dir: Path, tenant: str) -> None:
    path = shared_dir / "fixtures" / "wellknown" / f"entra-{tenant}"
    for document in sorted(path.glob("*.json"))[-3:]:
        data = json.loads(document.read_text())
        keyset, warnings = import_jwks(data["jwks"], max_keys=100)
        assert warnings == [] and len(keyset) == len(data["jwks"]["keys"])
        assert all(k.alg is None and "RS256" in k.algorithms for k in keyset.keys)
        assert {k.issuer for k in keyset.keys} <= {TEMPLATE_V2, entra_issuer(MSA_TENANT, "2.0")}
        assert any(k.issuer == TEMPLATE_V2 for k in keyset.keys)
        assert data["metadata"]["issuer"] == TEMPLATE_V2


# -- token kinds, audience, clients --------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        (entra_claims(T_A, CLIENT), "id"),
        (entra_claims(T_A, CLIENT, "1.0"), "id"),
        (entra_claims(T_A, CLIENT, token_type="access"), "access"),
        (entra_claims(T_A, CLIENT, "1.0", "access"), "access"),
        (
            entra_claims(T_A, CLIENT, token_type="access", scp=None, roles=["Data.Read"], idtyp="app"),
            "access",
        ),
        (entra_claims(T_A, CLIENT, roles=["Admin"]), "id"),  # app roles appear in id tokens too
    ],
)
def test_classify(make: BridgeFactory, idp: MockIdP, claims: dict[str, Any], kind: str) -> None:
    result = make(**ORGS).verify(mint(idp, claims))
    assert result.token_type == kind


def test_token_types_allow_list(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS, token_types=["access"])
    rejects(bridge, mint(idp, entra_claims(T_A, CLIENT)), WrongTokenType, "wrong_token_type")


def test_audience_must_be_configured(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS)
    for kind in ("id", "access"):
        token = mint(
            idp, entra_claims(T_A, CLIENT, token_type=kind, aud="00000003-0000-0000-c000-000000000000")
        )
        rejects(bridge, token, InvalidAudience, "invalid_audience")


def test_access_token_names_its_client(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS)
    v2 = entra_claims(T_A, CLIENT, "2.0", "access", azp=None)
    v1 = entra_claims(T_A, CLIENT, "1.0", "access", appid=None)
    for claims, name in ((v2, "azp"), (v1, "appid")):
        err = rejects(bridge, mint(idp, claims), InvalidClaim, "missing_client")
        assert isinstance(err, InvalidClaim) and err.claim == name


def test_allowed_clients(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(**ORGS, allowed_clients=[V2_API])
    assert bridge.verify(mint(idp, sample(V2_ACCESS_SAMPLE))).token_type == "access"
    claims = sample(V2_ACCESS_SAMPLE, azp="11111111-2222-3333-4444-555555555555")
    rejects(bridge, mint(idp, claims), InvalidClaim, "client_not_allowed")
    v1 = sample(V1_ACCESS_SAMPLE, iss=f"https://sts.windows.net/{T_A}/")  # appid 75dbe77f-...
    rejects(bridge, mint(idp, v1), InvalidClaim, "client_not_allowed")
    assert bridge.verify(mint(idp, entra_claims(T_A, CLIENT))).token_type == "id"  # id tokens: no client rule


def test_iat_required(make: BridgeFactory, idp: MockIdP) -> None:
    claims = entra_claims(T_A, CLIENT, token_type="access")
    token = idp.mint(claims, jti=None, iat=None)
    err = rejects(make(**ORGS), token, InvalidClaim, "invalid_claim")
    assert isinstance(err, InvalidClaim) and err.claim == "iat"


# -- identity (MAP-02, MAP-10) -----------------------------------------------------------------


def test_noauth_email_is_unverified_unless_xms_edov(make: BridgeFactory, idp: MockIdP) -> None:
    bridge = make(tenant="organizations", allow_any_tenant=True)
    victim = "victim@corp.example"
    attacker = entra_claims(T_EVIL, CLIENT, email=victim, oid="9e1c7a52-3b8d-4f6e-a1c2-d3e4f5a6b7c8")
    result = bridge.verify(mint(idp, attacker))
    assert result.email == victim and result.email_verified is False
    assert result.identity_key == (f"entra:{T_EVIL}", "9e1c7a52-3b8d-4f6e-a1c2-d3e4f5a6b7c8")
    for edov in (False, "true", 1, "True"):
        assert bridge.verify(mint(idp, {**attacker, "xms_edov": edov})).email_verified is False
    assert bridge.verify(mint(idp, {**attacker, "xms_edov": True})).email_verified is True
    # xms_edov without an email vouches for nothing.
    assert bridge.verify(mint(idp, {**attacker, "email": None, "xms_edov": True})).email_verified is False


def test_groups_roles_and_overage(make: BridgeFactory, idp: MockIdP, server: KeyServer) -> None:
    bridge = make(**ORGS)
    plain = bridge.verify(mint(idp, entra_claims(T_A, CLIENT, groups=["g1", "g2"], roles=["Admin"])))
    assert plain.groups == ("g1", "g2") and plain.roles == ("Admin",)
    assert plain.identity.groups_overage is False
    overage = entra_claims(
        T_A,
        CLIENT,
        _claim_names={"groups": "src1"},
        _claim_sources={"src1": {"endpoint": "https://attacker.test/groups"}},
    )
    result = bridge.verify(mint(idp, overage))
    assert result.identity.groups_overage is True and result.groups == ()
    assert not any("attacker.test" in url for url in server.requests)  # never fetched (MAP-10)
    implicit = bridge.verify(mint(idp, entra_claims(T_A, CLIENT, hasgroups=True)))
    assert implicit.identity.groups_overage is True
    assert (
        bridge.verify(mint(idp, entra_claims(T_A, CLIENT, hasgroups="true"))).identity.groups_overage is False
    )


def test_without_oid_the_token_is_refused(make: BridgeFactory, idp: MockIdP) -> None:
    # Issue 10: falling back to (iss, sub) switched namespaces; see test_hardening_providers.py.
    with pytest.raises(InvalidClaim) as info:
        make(**ORGS).verify(mint(idp, entra_claims(T_A, CLIENT, oid=None)))
    assert (info.value.code, info.value.claim) == ("invalid_claim", "oid")


def test_username_falls_back_to_upn(make: BridgeFactory, idp: MockIdP) -> None:
    claims = entra_claims(T_A, CLIENT, "1.0", unique_name=None, upn="abe@contoso.example")
    assert make(**ORGS).verify(mint(idp, claims)).username == "abe@contoso.example"


# -- national clouds ----------------------------------------------------------------------------


def test_national_cloud_v2(make: BridgeFactory, idp: MockIdP, server: KeyServer) -> None:
    bridge = make(tenant="organizations", allowed_tenants=[T_A], authority_host=US_HOST)
    assert bridge.issuers == (f"https://{US_HOST}/{T_A}/v2.0",)
    before = len(server.requests)
    result = bridge.verify(mint(idp, entra_claims(T_A, CLIENT, iss=f"https://{US_HOST}/{T_A}/v2.0")))
    assert result.issuer == f"https://{US_HOST}/{T_A}/v2.0"
    assert server.requests[before:] == [entra_jwks_uri("organizations", host=US_HOST)]
    # A public-cloud token is not a US Government token.
    rejects(bridge, mint(idp, entra_claims(T_A, CLIENT)), UntrustedIssuer, "untrusted_issuer")


def test_national_cloud_v1_needs_its_sts_host() -> None:
    with pytest.raises(ConfigError, match="v1_issuer_host"):
        _load(tenant=T_A, authority_host=US_HOST, versions=["1.0", "2.0"])
    cfg = AzureAdConfig(
        tenant=T_A,
        audiences=[CLIENT],
        authority_host=US_HOST,
        versions=["1.0"],
        v1_issuer_host="sts.example.us",
    )
    assert cfg.trusted_issuers == (f"https://sts.example.us/{T_A}/",)


# -- configuration ------------------------------------------------------------------------------


def _load(**entry: Any) -> Any:
    from federation.config import load_config

    entry.setdefault("provider", "azure_ad")
    entry.setdefault("audiences", [CLIENT])
    return load_config({"issuers": [entry]}).issuers[0]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"tenant": "organizations"}, "allowed_tenants"),
        ({"tenant": "common"}, "allow_any_tenant"),
        ({"tenant": "organizations", "allowed_tenants": []}, "allowed_tenants"),
        ({"tenant": "organizations", "allowed_tenants": ["not-a-guid"]}, "GUID"),
        ({"tenant": "organizations", "allowed_tenants": [T_A + "0"]}, "GUID"),
        ({"tenant": "contoso.onmicrosoft.com"}, "GUID"),
        ({"tenant": "{tenantid}"}, "GUID"),
        ({"tenant": T_A, "allowed_tenants": [T_B]}, "common/organizations only"),
        ({"tenant": "consumers", "allow_any_tenant": True}, "common/organizations only"),
        ({"tenant": "common", "allowed_tenants": [T_A], "allow_any_tenant": True}, "exclude"),
        ({"tenant": "organizations", "allowed_tenants": [MSA_TENANT]}, "personal"),
        ({"tenant": T_A, "app_id": "my-app"}, "GUID"),
        ({"tenant": T_A, "authority_host": "https://login.microsoftonline.us"}, "host name"),
        ({"tenant": T_A, "versions": ["3.0"]}, "versions"),
        ({"tenant": T_A, "versions": []}, "versions"),
        ({"tenant": T_A, "audiences": []}, "audiences"),
        ({"tenant": T_A, "audiences": [""]}, "audiences"),
        ({"tenant": T_A, "algorithms": ["HS256"]}, "HS256"),
        ({"tenant": T_A, "allowed_clients": []}, "allowed_clients"),
        ({"tenant": T_A, "issuer": "https://sts.windows.net/x/"}, "issuer"),
    ],
)
def test_config_errors(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(**entry)
    assert info.value.code == "config_error"
    assert fragment in str(info.value) + " ".join(info.value.problems)


def test_config_normalises_guids() -> None:
    cfg = _load(tenant="common", allowed_tenants=[T_A.upper(), T_A, MSA_TENANT], versions=["2.0", "2.0"])
    assert isinstance(cfg, AzureAdConfig)
    assert cfg.allowed_tenants == [T_A, MSA_TENANT] and cfg.versions == ["2.0"]
    assert cfg.trusted_issuers == (entra_issuer(T_A, "2.0"), entra_issuer(MSA_TENANT, "2.0"))
    assert _load(tenant="Consumers").trusted_issuers == (entra_issuer(MSA_TENANT, "2.0"),)


# -- Azure AD B2C ---------------------------------------------------------------------------------


B2C_ENTRY: dict[str, Any] = {
    "provider": "azure_ad_b2c",
    "tenant_name": B2C_NAME,
    "tenant_id": B2C_TENANT_ID,
    "policies": [B2C_POLICY, "B2C_1A_signup_signin"],
    "audiences": [B2C_AUD],
}


def test_b2c_access_sample_accepted(make: BridgeFactory, idp: MockIdP, server: KeyServer, keys: Keys) -> None:
    bridge = make(**B2C_ENTRY)
    assert bridge.issuers == (B2C_ISSUER,)
    before = len(server.requests)
    result = bridge.verify(mint(idp, sample(B2C_ACCESS_SAMPLE), key=keys.plain))
    assert server.requests[before:] == [B2C_JWKS]
    assert result.provider == "azure_ad_b2c" and result.token_type == "access"
    assert result.identity_key == (f"entra:{B2C_TENANT_ID}", B2C_ACCESS_SAMPLE["oid"])


@pytest.mark.anyio
async def test_b2c_id_token_accepted_async(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    claims = sample(
        B2C_ACCESS_SAMPLE, scp=None, azp=None, tfp="b2c_1_SIGNUPSIGNIN1", emails=["david@example.com"]
    )
    result = await make(**B2C_ENTRY).averify(mint(idp, claims, key=keys.plain))
    assert result.token_type == "id"
    assert result.email == "david@example.com" and result.email_verified is False


def test_b2c_wrong_policy_rejected(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    bridge = make(**B2C_ENTRY)
    for claims in (
        sample(B2C_ACCESS_SAMPLE, tfp="B2C_1_passwordreset"),
        sample(B2C_ACCESS_SAMPLE, tfp=None),
        sample(B2C_ACCESS_SAMPLE, tfp=None, acr="b2c_1_profileedit"),
    ):
        rejects(bridge, mint(idp, claims, key=keys.plain), InvalidClaim, "policy_not_allowed")
    legacy = sample(B2C_ACCESS_SAMPLE, tfp=None, acr="b2c_1_signupsignin1")
    assert bridge.verify(mint(idp, legacy, key=keys.plain)).claims["acr"] == "b2c_1_signupsignin1"


@pytest.mark.anyio
async def test_b2c_wrong_policy_rejected_async(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    token = mint(idp, sample(B2C_ACCESS_SAMPLE, tfp="B2C_1_other"), key=keys.plain)
    await arejects(make(**B2C_ENTRY), token, InvalidClaim, "policy_not_allowed")


def test_b2c_tfp_issuer_form(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    bridge = make(**B2C_ENTRY, issuer_forms=["tfp"])
    tfp_iss = f"https://{B2C_NAME}.b2clogin.com/tfp/{B2C_TENANT_ID}/{B2C_POLICY}/v2.0/"
    assert tfp_iss in bridge.issuers and B2C_ISSUER not in bridge.issuers
    assert bridge.verify(mint(idp, sample(B2C_ACCESS_SAMPLE, iss=tfp_iss), key=keys.plain)).issuer == tfp_iss
    mixed = sample(B2C_ACCESS_SAMPLE, iss=tfp_iss, tfp="B2C_1A_signup_signin")
    rejects(bridge, mint(idp, mixed, key=keys.plain), UntrustedIssuer, "policy_mismatch")
    rejects(bridge, mint(idp, sample(B2C_ACCESS_SAMPLE), key=keys.plain), UntrustedIssuer, "untrusted_issuer")


def test_b2c_other_rules(make: BridgeFactory, idp: MockIdP, keys: Keys) -> None:
    bridge = make(**B2C_ENTRY)
    rejects(
        bridge,
        mint(idp, sample(B2C_ACCESS_SAMPLE, tid=T_A), key=keys.plain),
        UntrustedIssuer,
        "tenant_mismatch",
    )
    # An Entra tenant key (templated issuer) does not sign for the B2C issuer.
    rejects(
        bridge, mint(idp, sample(B2C_ACCESS_SAMPLE), key=keys.tenant), UntrustedIssuer, "key_issuer_mismatch"
    )
    rejects(
        bridge,
        mint(idp, sample(B2C_ACCESS_SAMPLE, aud=CLIENT), key=keys.plain),
        InvalidAudience,
        "invalid_audience",
    )


def test_b2c_custom_domain_and_key_policy() -> None:
    cfg = AzureAdB2CConfig(
        **{**B2C_ENTRY, "domain": "Login.Contoso.example", "key_policy": "B2C_1A_signup_signin"}
    )
    assert cfg.trusted_issuers == (f"https://login.contoso.example/{B2C_TENANT_ID}/v2.0/",)
    assert cfg.key_source.jwks_uri == (
        f"https://login.contoso.example/{B2C_NAME}.onmicrosoft.com/B2C_1A_signup_signin/discovery/v2.0/keys"
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"tenant_id": "contoso"}, "GUID"),
        ({"tenant_name": "con toso"}, "tenant_name"),
        ({"policies": []}, "policies"),
        ({"policies": ["B2C 1"]}, "policy"),
        ({"key_policy": "B2C_1_other"}, "key_policy"),
        ({"issuer_forms": ["legacy"]}, "issuer_forms"),
        ({"allowed_tenants": [T_A]}, "allowed_tenants"),
    ],
)
def test_b2c_config_errors(overrides: dict[str, Any], fragment: str) -> None:
    from federation.config import load_config

    with pytest.raises(ConfigError) as info:
        load_config({"issuers": [{**B2C_ENTRY, **overrides}]})
    assert info.value.code == "config_error"
    assert fragment in str(info.value) + " ".join(info.value.problems)
