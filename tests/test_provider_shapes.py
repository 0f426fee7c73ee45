"""Provider claim shapes: ``MockIdP.for_provider(name, ...)`` mints tokens with each
provider's real claims, serves its keys where and how the provider does, and
``idp.bridge()`` trusts it in the provider profile's own vocabulary, so the
profile's rules really apply (shown here by breaking one rule per provider).

One mock per case, built once (RSA keys are slow to make); a frozen clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from federation import Bridge, VerifiedToken
from federation.config import load_config
from federation.errors import (
    InvalidAudience,
    InvalidClaim,
    InvalidToken,
    TokenExpired,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import FrozenClock, MockIdP, mock_transport, registered_providers

NOW = 1_800_000_000
COGNITO_SUB = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OKTA_USER = "00uixa271s6x7qt8I0h7"
ENTRA_TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
ENTRA_USERS_TENANT = "11112222-bbbb-3333-cccc-4444dddd5555"
ENTRA_OTHER_TENANT = "99998888-7777-6666-5555-444433332222"
ENTRA_OID = "690222be-ff1a-4d56-abd1-7e4f7d38e474"
ENTRA_GROUP = "b5a0c1d2-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
B2C_USER = "1558f87f-452b-4757-bcd1-883a1b2c3d4e"
KEYCLOAK_USER = "8befeac4-8963-49da-a9ac-f310e8d922d8"
GOOGLE_SUB = "110169484474386276334"
FIREBASE_UID = "YX4oa0l2AXh4cQE4yodfchnYma02"
FIREBASE_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)

# case -> (provider, for_provider keywords)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "cognito": ("cognito", {}),
    "cognito-updated": (
        "cognito",
        {
            "user_pool_id": "eu-west-1_AbCdEf123",
            "region": "eu-west-1",
            "client_id": "abc123client",
            "issuer_form": "updated",
        },
    ),
    "okta": ("okta", {}),
    "okta-org": ("okta", {"domain": "acme.okta.com", "authorization_server": None, "client_id": "0oaorg1"}),
    "azure_ad": ("azure_ad", {}),
    "azure_ad-v1": ("azure_ad", {"version": "1.0"}),
    "azure_ad-organizations": ("azure_ad", {"tenant": "organizations", "tenant_id": ENTRA_USERS_TENANT}),
    "azure_ad_b2c": ("azure_ad_b2c", {}),
    "azure_ad_b2c-tfp": ("azure_ad_b2c", {"tenant_name": "fabrikam", "issuer_form": "tfp"}),
    "keycloak": ("keycloak", {}),
    "keycloak-legacy": (
        "keycloak",
        {"base_url": "https://sso.example.com/auth", "realm": "dev", "client_id": "api"},
    ),
    "google": ("google", {}),
    "google-workspace": ("google", {"hosted_domain": "example.com"}),
    "firebase": ("firebase", {}),
    "firebase-tenant": ("firebase", {"tenant": "acme-x1", "sign_in_provider": "password"}),
}

# (case, kind) -> (identity_key, email, email_verified, username, groups, roles), as each profile defines
_ENTRA = (("entra:" + ENTRA_TENANT, ENTRA_OID), (ENTRA_GROUP,), ("Task.Read",))
_KC_ROLES = ("offline_access", "uma_authorization")
EXPECTED: dict[tuple[str, str], tuple[Any, ...]] = {
    ("cognito", "id"): (
        ("https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example", COGNITO_SUB),
        "my-test-user@example.com",
        True,
        "my-test-user",
        ("test-group-a",),
        ("arn:aws:iam::111122223333:role/my-test-role",),
    ),
    ("cognito", "access"): (
        ("https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example", COGNITO_SUB),
        None,
        False,
        "my-test-user",
        ("test-group-a",),
        (),
    ),
    # the updated issuer form: users are still keyed on the canonical pool issuer
    ("cognito-updated", "id"): (
        ("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", COGNITO_SUB),
        "my-test-user@example.com",
        True,
        "my-test-user",
        ("test-group-a",),
        ("arn:aws:iam::111122223333:role/my-test-role",),
    ),
    ("cognito-updated", "access"): (
        ("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", COGNITO_SUB),
        None,
        False,
        "my-test-user",
        ("test-group-a",),
        (),
    ),
    ("okta", "id"): (
        ("https://dev-123.okta.com", OKTA_USER),
        "joe.user@example.com",
        True,
        "joe.user@example.com",
        ("Everyone",),
        (),
    ),
    # the access token's sub is the login; the key is its uid
    ("okta", "access"): (
        ("https://dev-123.okta.com", OKTA_USER),
        None,
        False,
        "joe.user@example.com",
        (),
        (),
    ),
    ("okta-org", "id"): (
        ("https://acme.okta.com", OKTA_USER),
        "joe.user@example.com",
        True,
        "joe.user@example.com",
        ("Everyone",),
        (),
    ),
    # nOAuth: Entra's email is unverified without xms_edov
    ("azure_ad", "id"): (_ENTRA[0], "abeli@contoso.example", False, "abeli@contoso.example", *_ENTRA[1:]),
    ("azure_ad", "access"): (_ENTRA[0], None, False, "abeli@contoso.example", *_ENTRA[1:]),
    ("azure_ad-v1", "id"): (_ENTRA[0], "abeli@contoso.example", False, "abeli@contoso.example", *_ENTRA[1:]),
    ("azure_ad-v1", "access"): (_ENTRA[0], None, False, "abeli@contoso.example", *_ENTRA[1:]),
    ("azure_ad-organizations", "id"): (
        ("entra:" + ENTRA_USERS_TENANT, ENTRA_OID),
        "abeli@contoso.example",
        False,
        "abeli@contoso.example",
        *_ENTRA[1:],
    ),
    ("azure_ad-organizations", "access"): (
        ("entra:" + ENTRA_USERS_TENANT, ENTRA_OID),
        None,
        False,
        "abeli@contoso.example",
        *_ENTRA[1:],
    ),
    ("azure_ad_b2c", "id"): (
        ("entra:" + ENTRA_TENANT, B2C_USER),
        "david@contoso.example",
        False,
        None,
        (),
        (),
    ),
    ("azure_ad_b2c", "access"): (
        ("entra:" + ENTRA_TENANT, B2C_USER),
        "david@contoso.example",
        False,
        None,
        (),
        (),
    ),
    ("azure_ad_b2c-tfp", "id"): (
        ("entra:" + ENTRA_TENANT, B2C_USER),
        "david@contoso.example",
        False,
        None,
        (),
        (),
    ),
    ("azure_ad_b2c-tfp", "access"): (
        ("entra:" + ENTRA_TENANT, B2C_USER),
        "david@contoso.example",
        False,
        None,
        (),
        (),
    ),
    # Keycloak's roles scope adds realm and client roles to access tokens only
    ("keycloak", "id"): (
        ("https://sso.example.com/realms/example", KEYCLOAK_USER),
        "pat@example.org",
        True,
        "pat",
        (),
        (),
    ),
    ("keycloak", "access"): (
        ("https://sso.example.com/realms/example", KEYCLOAK_USER),
        "pat@example.org",
        True,
        "pat",
        (),
        ("default-roles-example", *_KC_ROLES, "web-app:user"),
    ),
    ("keycloak-legacy", "id"): (
        ("https://sso.example.com/auth/realms/dev", KEYCLOAK_USER),
        "pat@example.org",
        True,
        "pat",
        (),
        (),
    ),
    ("keycloak-legacy", "access"): (
        ("https://sso.example.com/auth/realms/dev", KEYCLOAK_USER),
        "pat@example.org",
        True,
        "pat",
        (),
        ("default-roles-dev", *_KC_ROLES, "api:user"),
    ),
    ("google", "id"): (
        ("https://accounts.google.com", GOOGLE_SUB),
        "elisa.g.beckett@gmail.com",
        True,
        None,
        (),
        (),
    ),
    ("google-workspace", "id"): (
        ("https://accounts.google.com", GOOGLE_SUB),
        "elisa.beckett@example.com",
        True,
        None,
        (),
        (),
    ),
    ("firebase", "id"): (
        ("https://securetoken.google.com/my-project", FIREBASE_UID),
        "kashif.shaikh@gmail.com",
        True,
        None,
        (),
        (),
    ),
    # a tenant's users are a separate pool; a password user's address is not verified yet
    ("firebase-tenant", "id"): (
        ("https://securetoken.google.com/my-project/tenants/acme-x1", FIREBASE_UID),
        "kashif.shaikh@gmail.com",
        False,
        None,
        (),
        (),
    ),
}
TOKEN_CASES = sorted(EXPECTED)


class Mocks:
    """One mock issuer and one bridge per case, made on first use."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.idps: dict[str, MockIdP] = {}
        self.bridges: dict[str, Bridge] = {}

    def idp(self, case: str) -> MockIdP:
        if case not in self.idps:
            name, params = CASES[case]
            self.idps[case] = MockIdP.for_provider(name, clock=self.clock, **params)
        return self.idps[case]

    def bridge(self, case: str) -> Bridge:
        if case not in self.bridges:
            self.bridges[case] = self.idp(case).bridge(on_event=lambda event: None)
        return self.bridges[case]

    def close(self) -> None:
        for bridge in self.bridges.values():
            bridge.close()
        for idp in self.idps.values():
            idp.close()


@pytest.fixture(scope="module")
def mocks() -> Iterator[Mocks]:
    made = Mocks(FrozenClock(NOW))
    yield made
    made.close()


def rejected(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(cls) as info:
        bridge.verify(token)
    assert type(info.value) is cls, type(info.value).__name__
    assert info.value.code == code
    return info.value


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return tuple(  # type: ignore[return-value]
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (header, payload)
    )


def check(vt: VerifiedToken, case: str, kind: str) -> None:
    provider = CASES[case][0]
    key, email, email_verified, username, groups, roles = EXPECTED[(case, kind)]
    assert (vt.provider, vt.token_type) == (provider, kind)
    assert vt.identity_key == key
    assert (vt.email, vt.email_verified, vt.username) == (email, email_verified, username)
    assert (vt.groups, vt.roles) == (groups, roles)


# -- every provider, every kind, sync and async ---------------------------------------------------


@pytest.mark.parametrize(("case", "kind"), TOKEN_CASES, ids=[f"{c}-{k}" for c, k in TOKEN_CASES])
def test_shaped_tokens_verify(mocks: Mocks, case: str, kind: str) -> None:
    idp = mocks.idp(case)
    vt = mocks.bridge(case).verify(idp.mint(token_type=kind))  # type: ignore[arg-type]
    check(vt, case, kind)
    assert vt.issuer == idp.issuer and vt.expires_at.timestamp() == NOW + 300


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "kind"), TOKEN_CASES, ids=[f"{c}-{k}" for c, k in TOKEN_CASES])
async def test_shaped_tokens_verify_async(mocks: Mocks, case: str, kind: str) -> None:
    idp = mocks.idp(case)
    vt = await mocks.bridge(case).averify(idp.mint(token_type=kind))  # type: ignore[arg-type]
    check(vt, case, kind)


@pytest.mark.parametrize("case", sorted(CASES))
def test_expired_works_for_every_provider(mocks: Mocks, case: str) -> None:
    idp = mocks.idp(case)
    rejected(mocks.bridge(case), idp.mint(expired=True), TokenExpired, "expired")


@pytest.mark.anyio
@pytest.mark.parametrize("case", sorted(CASES))
async def test_expired_works_for_every_provider_async(mocks: Mocks, case: str) -> None:
    idp = mocks.idp(case)
    with pytest.raises(TokenExpired):
        await mocks.bridge(case).averify(idp.mint(expired=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_entry_is_the_profiles_own_and_names_the_mocks_urls(mocks: Mocks, case: str) -> None:
    idp = mocks.idp(case)
    entry = idp.issuer_config()
    assert entry["provider"] == CASES[case][0]
    assert "issuer" not in entry or CASES[case][0] == "oidc"  # the profile derives the issuer
    profile = load_config({"issuers": [entry]}).issuers[0]
    assert idp.issuer in profile.trusted_issuers
    assert profile.key_source.jwks_uri == idp.jwks_uri  # the exact URL the profile fetches
    assert profile.key_source.format == idp.key_format


@pytest.mark.parametrize("case", sorted(CASES))
def test_with_idp_serves_every_key_url_through_respx(case: str) -> None:
    """A bridge with its own httpx client, as an application builds it: respx answers
    the key URL, on whichever host the provider keeps it."""
    clock = FrozenClock(NOW)
    name, params = CASES[case]
    with MockIdP.for_provider(name, clock=clock, **params) as idp:
        with Bridge.from_dict(idp.bridge_config(), clock=clock, on_event=lambda e: None) as bridge:
            assert bridge.verify(idp.mint()).provider == name
        assert [str(r.url) for r in idp.requests_to("jwks")] == [idp.jwks_uri]
        with pytest.raises(httpx.ConnectError):
            httpx.get("https://elsewhere.example/")
    idp.close()


# -- one provider rule per provider bites through the shape ------------------------------------------


def test_cognito_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("cognito"), mocks.bridge("cognito")
    header, claims = decode(idp.mint(token_type="access"))
    assert "typ" not in header and "aud" not in claims and claims["client_id"] == idp.audience
    # an id token relabelled as an access token names no client_id
    rejected(bridge, idp.mint(token_use="access"), InvalidAudience, "invalid_audience")
    rejected(bridge, idp.mint(token_use=None), WrongTokenType, "wrong_token_type")
    rejected(
        bridge, idp.mint(token_type="access", client_id="otherclient"), InvalidAudience, "invalid_audience"
    )


def test_okta_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("okta"), mocks.bridge("okta")
    _, claims = decode(idp.mint(token_type="access"))
    assert (claims["aud"], claims["cid"], claims["jti"][:3]) == ("api://default", idp.audience, "AT.")
    rejected(bridge, idp.mint(token_type="access", cid="0oaother"), InvalidAudience, "invalid_audience")
    rejected(bridge, idp.mint(ver=2), InvalidClaim, "invalid_claim")
    org = mocks.idp("okta-org")
    assert mocks.bridge("okta-org").issuers == ("https://acme.okta.com",)
    rejected(mocks.bridge("okta-org"), org.mint(token_type="access"), WrongTokenType, "okta_org_access_token")


def test_azure_ad_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("azure_ad"), mocks.bridge("azure_ad")
    other = f"https://login.microsoftonline.com/{ENTRA_OTHER_TENANT}/v2.0"
    rejected(bridge, idp.mint(tid=ENTRA_OTHER_TENANT, iss=other), UntrustedIssuer, "tenant_not_allowed")
    rejected(bridge, idp.mint(token_type="access", azp=None), InvalidClaim, "missing_client")
    rejected(bridge, idp.mint(ver="1.0"), UntrustedIssuer, "issuer_version_mismatch")
    assert bridge.verify(idp.mint(xms_edov=True)).email_verified is True
    multi = mocks.idp("azure_ad-organizations")
    other_tid = multi.mint(tid=ENTRA_OTHER_TENANT, iss=other)
    rejected(mocks.bridge("azure_ad-organizations"), other_tid, UntrustedIssuer, "tenant_not_allowed")


def test_azure_ad_key_set_and_headers_are_entras(mocks: Mocks) -> None:
    idp = mocks.idp("azure_ad-v1")
    (jwk,) = idp.jwks()["keys"]
    assert "alg" not in jwk and jwk["use"] == "sig"
    assert jwk["issuer"] == "https://login.microsoftonline.com/{tenantid}/v2.0"
    cert = x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0]))
    assert cert.public_key().public_numbers() == idp.key_for().private_key.public_key().public_numbers()  # type: ignore[union-attr]
    header, claims = decode(idp.mint())
    assert header["x5t"] == jwk["x5t"] and header["typ"] == "JWT"
    assert (claims["ver"], claims["iss"]) == ("1.0", f"https://sts.windows.net/{ENTRA_TENANT}/")
    assert idp.jwks_uri == f"https://login.microsoftonline.com/{ENTRA_TENANT}/discovery/v2.0/keys"
    # the key set goes through the engine with its issuer member honoured
    wrong_issuer = idp.jwks()
    wrong_issuer["keys"][0]["issuer"] = f"https://login.microsoftonline.com/{ENTRA_OTHER_TENANT}/v2.0"
    idp.serve_jwks(wrong_issuer)
    try:
        with idp.bridge(on_event=lambda e: None) as bridge:
            rejected(bridge, idp.mint(), UntrustedIssuer, "key_issuer_mismatch")
    finally:
        idp.serve_jwks(None)


def test_azure_ad_b2c_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("azure_ad_b2c"), mocks.bridge("azure_ad_b2c")
    (jwk,) = idp.jwks()["keys"]
    assert "alg" not in jwk and "issuer" not in jwk
    rejected(bridge, idp.mint(tfp="B2C_1_passwordreset"), InvalidClaim, "policy_not_allowed")
    assert mocks.idp("azure_ad_b2c-tfp").issuer == (
        f"https://fabrikam.b2clogin.com/tfp/{ENTRA_TENANT}/B2C_1_signupsignin1/v2.0/"
    )


def test_keycloak_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("keycloak"), mocks.bridge("keycloak")
    _, claims = decode(idp.mint(token_type="access"))
    assert (claims["typ"], claims["aud"], claims["azp"]) == ("Bearer", "account", "web-app")
    rejected(bridge, idp.mint(token_type="access", typ="Refresh"), WrongTokenType, "wrong_token_type")
    rejected(bridge, idp.mint(token_type="access", azp="other-app"), InvalidAudience, "invalid_audience")
    uses = sorted(k["use"] for k in idp.jwks()["keys"])
    assert uses == ["enc", "sig"]  # the realm's encryption key is published beside the signing key


def test_google_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("google-workspace"), mocks.bridge("google-workspace")
    rejected(bridge, idp.mint(hd="other.example"), InvalidClaim, "hosted_domain_not_allowed")
    rejected(bridge, idp.mint(hd=None), InvalidClaim, "hosted_domain_not_allowed")  # a consumer account
    rejected(
        bridge, idp.mint(azp="someone-else.apps.googleusercontent.com"), InvalidAudience, "invalid_audience"
    )
    legacy = mocks.bridge("google").verify(mocks.idp("google").mint(iss="accounts.google.com"))
    assert legacy.identity_key == ("https://accounts.google.com", GOOGLE_SUB)
    with pytest.raises(ValueError, match="opaque"):
        idp.mint(token_type="access")


def test_firebase_rules(mocks: Mocks) -> None:
    idp, bridge = mocks.idp("firebase"), mocks.bridge("firebase")
    _, claims = decode(idp.mint())
    assert claims["firebase"]["sign_in_provider"] == "google.com" and claims["user_id"] == claims["sub"]
    assert claims["auth_time"] < claims["iat"]
    other = idp.mint(iss="https://securetoken.google.com/other-project", aud="other-project")
    rejected(bridge, other, UntrustedIssuer, "untrusted_issuer")
    rejected(bridge, idp.mint(aud="other-project"), InvalidAudience, "invalid_audience")
    rejected(bridge, idp.mint(auth_time=NOW + 5), InvalidClaim, "invalid_claim")
    tenant_user = idp.mint(firebase={**claims["firebase"], "tenant": "acme-x1"})
    rejected(bridge, tenant_user, InvalidClaim, "tenant_not_allowed")  # no tenants configured
    with pytest.raises(ValueError, match="ID tokens only"):
        idp.mint(token_type="access")


def test_firebase_keys_are_a_certificate_map(mocks: Mocks) -> None:
    idp = mocks.idp("firebase")
    assert (idp.key_format, idp.jwks_uri) == ("x509_pem_map", FIREBASE_CERTS_URL)
    document = idp.key_document()
    assert list(document) == [idp.key_for().kid]
    cert = x509.load_pem_x509_certificate(document[idp.key_for().kid].encode())
    public = idp.key_for().private_key.public_key()
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert idp.certificate() is idp.certificate()  # made once per key
    response = httpx.Client(transport=idp.transport()).get(FIREBASE_CERTS_URL)
    assert response.json() == document and "max-age" in response.headers["cache-control"]


def test_firebase_key_rotation_publishes_a_new_certificate() -> None:
    clock = FrozenClock(NOW)
    idp = MockIdP.for_provider("firebase", project_id="rotating", clock=clock)
    with idp.bridge(config=idp.bridge_config(keys={"refresh_cooldown": 0})) as bridge:
        old = idp.key_for()
        assert bridge.verify(idp.mint()).key_id == old.kid
        new = idp.rotate_keys(keep_old=True)
        assert sorted(idp.certificates()) == sorted([old.kid, new.kid])
        assert bridge.verify(idp.mint()).key_id == new.kid  # unknown kid: refetched
    idp.close()


# -- the toolkit around the shapes ----------------------------------------------------------------------


def test_two_providers_sharing_a_key_host() -> None:
    """Google and Firebase both keep keys on www.googleapis.com: each mock answers its own URL."""
    clock = FrozenClock(NOW)
    google = MockIdP.for_provider("google", clock=clock)
    firebase = MockIdP.for_provider("firebase", clock=clock)
    config = {"issuers": [google.issuer_config(), firebase.issuer_config()]}
    transport = mock_transport(firebase, google)
    with Bridge.from_dict(config, http_client=httpx.Client(transport=transport), clock=clock) as bridge:
        assert bridge.verify(google.mint()).provider == "google"
        assert bridge.verify(firebase.mint()).provider == "firebase"
    with google, firebase, Bridge.from_dict(config, clock=clock) as bridge:
        assert bridge.verify(firebase.mint()).provider == "firebase"
        assert bridge.verify(google.mint()).provider == "google"
    assert len(google.requests_to("jwks")) == len(firebase.requests_to("jwks")) == 2
    google.close()
    firebase.close()


def test_provider_params_are_the_resolved_vocabulary(mocks: Mocks) -> None:
    assert mocks.idp("cognito").provider_params == {
        "user_pool_id": "us-west-2_example",
        "region": None,
        "client_id": "xxxxxxxxxxxxexample",
        "issuer_form": "original",
    }
    assert mocks.idp("okta-org").provider_params["authorization_server"] is None
    assert mocks.idp("azure_ad-organizations").provider_params["tenant_id"] == ENTRA_USERS_TENANT
    assert {"cognito", "okta", "azure_ad", "azure_ad_b2c", "keycloak", "google", "firebase"} <= set(
        registered_providers()
    )


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("cognito", {"user_pool_id": "eu-west-1_Abc", "region": "us-east-1"}, "not the region"),
        ("cognito", {"issuer_form": "newest"}, "issuer_form"),
        ("azure_ad", {"tenant": "contoso.com"}, "tenant must be"),
        ("azure_ad", {"tenant": ENTRA_TENANT, "tenant_id": ENTRA_OTHER_TENANT}, "tenant_id"),
        ("azure_ad", {"version": "3.0"}, "version"),
        ("azure_ad_b2c", {"issuer_form": "other"}, "issuer_form"),
    ],
)
def test_setup_refuses_contradictory_vocabulary(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MockIdP.for_provider(name, **params)


def test_a_loopback_server_cannot_stand_in_for_a_fixed_key_url(mocks: Mocks) -> None:
    # Entra's key URL has no override (Cognito, Google and Firebase take jwks_uri: issue 10).
    idp = mocks.idp("azure_ad")
    with idp.serve(), pytest.raises(ValueError, match="cannot be pointed elsewhere"):
        idp.bridge_config(served=True)


def test_keycloak_takes_its_keys_from_the_loopback_server() -> None:
    clock = FrozenClock(NOW)
    idp = MockIdP.for_provider("keycloak", realm="served", clock=clock)
    with idp.serve() as url:
        entry = idp.issuer_config(served=True)
        assert entry["jwks_uri"] == url + "/realms/served/protocol/openid-connect/certs"
        with idp.bridge(served=True, on_event=lambda e: None) as bridge:
            assert bridge.verify(idp.mint(token_type="access")).roles[-1] == "web-app:user"
    idp.close()


def test_the_pytest_fixture_builds_shaped_mocks(mock_idp: Any, federation_clock: FrozenClock) -> None:
    idp = mock_idp.for_provider("cognito", user_pool_id="ap-south-1_Fixture1", clock=federation_clock)
    with Bridge.from_dict(idp.bridge_config(), clock=federation_clock) as bridge:  # installed: respx
        assert bridge.verify(idp.mint(token_type="access")).token_type == "access"
