"""The Keycloak profile: issuers with and without ``/auth``, kind from the ``typ``
claim, the ``aud``/``azp`` rules (``account`` is never our audience), realm
isolation, the ``enc`` key beside the signing key, and the identity.

Tokens are Keycloak's real payloads (providers.md §4.8: the OSSS Keycloak 25
token set, the deskoh legacy ``/auth`` tokens, a pre-25 ``nbf: 0`` token),
re-signed with test keys and re-dated to the frozen clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from _kgf_helpers import KeyServer, Mode, hmac_token, rejects, run
from federation.providers.keycloak import KeycloakConfig

from federation import Bridge
from federation.errors import (
    ConfigError,
    DisallowedAlgorithm,
    InvalidAudience,
    InvalidClaim,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import FrozenClock, MockIdP, generate_signing_key

NOW = 1_800_000_000
ACME = "https://sso.example.com/realms/acme"
LEGACY = "https://sso.example.com/auth/realms/dev"
OSSS = "http://localhost:8085/realms/OSSS"  # the sample's own issuer (loopback http)
OTHER = "https://sso.example.com/realms/other"
CERTS = "/protocol/openid-connect/certs"

CONFIG: dict[str, Any] = {
    "issuers": [
        {
            "provider": "keycloak",
            "base_url": "https://sso.example.com",
            "realm": "acme",
            "client_ids": ["web-app"],
        },
        {
            "provider": "keycloak",
            "base_url": "https://sso.example.com/auth",
            "realm": "dev",
            "client_ids": ["api"],
        },
        {
            "provider": "keycloak",
            "base_url": "http://localhost:8085",
            "realm": "OSSS",
            "client_ids": ["osss-client"],
        },
    ],
    "keys": {"allow_loopback_http": True},
}


def osss_access(**overrides: Any) -> dict[str, Any]:
    """The OSSS Keycloak 25 access token: no 'aud' at all, client in 'azp'."""
    claims: dict[str, Any] = {
        "exp": NOW + 300,
        "iat": NOW,
        "auth_time": NOW,
        "jti": "179a04e8-6a41-41bb-ab20-14d55a8518af",
        "iss": OSSS,
        "aud": None,
        "sub": "8befeac4-8963-49da-a9ac-f310e8d922d8",
        "typ": "Bearer",
        "azp": "osss-client",
        "sid": "54db1502-a5dc-4a27-af62-eeef0694a628",
        "realm_access": {"roles": ["uma_authorization"]},
        "resource_access": {"osss-client": {"roles": ["user"]}, "account": {"roles": ["view-profile"]}},
        "scope": "openid email web-origins profile roles",
        "email_verified": True,
        "preferred_username": "teacher@example.org",
        "given_name": "Pat",
        "family_name": "Teacher",
        "email": "teacher@example.org",
    }
    claims.update(overrides)
    return claims


def osss_id(**overrides: Any) -> dict[str, Any]:
    """The id token of the same login: typ ID, aud = the client."""
    claims = osss_access(typ="ID", aud="osss-client", nonce="n-0S6_WzA2Mj", scope=None)
    claims.update(overrides)
    return claims


def osss_refresh() -> dict[str, Any]:
    return {
        "exp": NOW + 1800,
        "iat": NOW,
        "jti": "ee3d3d78-6819-42ac-9eb7-136bdfca136c",
        "iss": OSSS,
        "aud": OSSS,
        "sub": "8befeac4-8963-49da-a9ac-f310e8d922d8",
        "typ": "Refresh",
        "azp": "osss-client",
        "sid": "54db1502-a5dc-4a27-af62-eeef0694a628",
        "scope": "openid email basic web-origins profile roles",
    }


def legacy_access(**overrides: Any) -> dict[str, Any]:
    """deskoh's legacy /auth token (host moved from nip.io to the test host)."""
    claims: dict[str, Any] = {
        "exp": NOW + 300,
        "iat": NOW,
        "jti": "7c0a5e3e-1f4e-4c2a-9a40-2b3f8f0e1d11",
        "iss": LEGACY,
        "aud": "api",
        "sub": "2f1e8a4c-6b9d-4f3e-8c1a-0d5b7e9f2a34",
        "typ": "Bearer",
        "azp": "webclient",
        "session_state": "0b8f3c2d-4e5a-4b6c-9d7e-8f9a0b1c2d3e",
        "resource_access": {"api": {"roles": ["default"]}},
        "groups": ["GroupA"],
        "preferred_username": "user1",
    }
    claims.update(overrides)
    return claims


def acme_access(**overrides: Any) -> dict[str, Any]:
    """A pre-25 token: nbf 0, auth_time 0, aud 'account' (acme realm, client web-app)."""
    claims: dict[str, Any] = {
        "exp": NOW + 300,
        "iat": NOW,
        "nbf": 0,
        "auth_time": 0,
        "jti": "c7a1e2b3-d4f5-4a6b-8c9d-0e1f2a3b4c5d",
        "iss": ACME,
        "aud": "account",
        "sub": "f3b2a1c0-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
        "typ": "Bearer",
        "azp": "web-app",
        "allowed-origins": ["*"],
        "realm_access": {"roles": ["shoppy-client", "offline_access", "uma_authorization"]},
        "resource_access": {"account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}},
        "scope": "openid profile email",
        "email_verified": False,
        "preferred_username": "alice",
        "email": "alice@example.com",
    }
    claims.update(overrides)
    return claims


def acme_id(**overrides: Any) -> dict[str, Any]:
    claims = acme_access(typ="ID", aud="web-app", nbf=None, scope=None, **{"allowed-origins": None})
    claims.update(overrides)
    return claims


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def enc_key() -> dict[str, Any]:
    """The realm's RSA-OAEP encryption key, published beside the signing key (K9)."""
    key = generate_signing_key("RS256", kid="Q2O_f0Z7hVL1WUxKQbChyWK_FzQK-qRZh4Kg9mxxt_I")
    return {"key": key, "jwk": {**key.public_jwk, "use": "enc", "alg": "RSA-OAEP"}}


@pytest.fixture(scope="module")
def idps(clock: FrozenClock) -> dict[str, MockIdP]:
    return {iss: MockIdP(issuer=iss, audience="web-app", clock=clock) for iss in (ACME, LEGACY, OSSS, OTHER)}


@pytest.fixture(scope="module")
def server(idps: dict[str, MockIdP], enc_key: dict[str, Any]) -> KeyServer:
    server = KeyServer()
    for iss, idp in idps.items():
        server.add(iss + CERTS, idp.jwks, max_age=None)  # Keycloak answers with no-cache
    acme = idps[ACME]
    server.add(ACME + CERTS, lambda: {"keys": [*acme.jwks()["keys"], enc_key["jwk"]]}, max_age=None)
    return server


@pytest.fixture(scope="module")
def bridge(server: KeyServer, clock: FrozenClock) -> Iterator[Bridge]:
    bridge = server.bridge(CONFIG, clock)
    yield bridge
    bridge.close()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    mode: Mode = request.param
    return mode


def mint(idps: dict[str, MockIdP], claims: dict[str, Any], **kw: Any) -> str:
    return idps[claims["iss"]].mint(claims, **kw)


# -- accepted: the real token shapes -----------------------------------------------------------


def test_keycloak25_access_token_without_aud_is_bound_by_azp(
    bridge: Bridge, idps: dict[str, MockIdP], mode: Mode
) -> None:
    vt = run(bridge, mint(idps, osss_access()), mode)
    assert (vt.provider, vt.token_type, vt.issuer) == ("keycloak", "access", OSSS)
    assert vt.identity_key == (OSSS, "8befeac4-8963-49da-a9ac-f310e8d922d8")
    assert vt.username == "teacher@example.org"
    assert (vt.email, vt.email_verified) == ("teacher@example.org", True)
    # realm roles as-is, configured clients' roles as client:role; 'account' roles never
    assert vt.roles == ("uma_authorization", "osss-client:user")
    assert vt.groups == ()


def test_id_token_is_classified_from_the_typ_claim(
    bridge: Bridge, idps: dict[str, MockIdP], mode: Mode
) -> None:
    vt = run(bridge, mint(idps, osss_id()), mode)
    assert vt.token_type == "id"
    assert vt.audience == ("osss-client",)


def test_legacy_auth_issuer_with_groups_and_client_roles(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    vt = bridge.verify(mint(idps, legacy_access()))
    assert vt.issuer == LEGACY
    assert vt.groups == ("GroupA",)
    assert vt.roles == ("api:default",)
    assert vt.username == "user1"
    assert (vt.email, vt.email_verified) == (None, False)
    vt = bridge.verify(mint(idps, legacy_access(aud=["api", "webserver"])))
    assert vt.audience == ("api", "webserver")


def test_pre25_token_with_nbf_zero_and_account_audience_falls_back_to_azp(
    bridge: Bridge, idps: dict[str, MockIdP]
) -> None:
    vt = bridge.verify(mint(idps, acme_access()))
    assert vt.roles == ("shoppy-client", "offline_access", "uma_authorization")
    assert vt.email_verified is False


@pytest.mark.parametrize(
    "aud",
    [
        ["account", "realm-management"],
        ["broker", "account"],
        ["web-app", "account"],
        ["other-api", "web-app"],
    ],
)
def test_access_audiences_accepted(bridge: Bridge, idps: dict[str, MockIdP], aud: list[str]) -> None:
    assert bridge.verify(mint(idps, acme_access(aud=aud))).subject


def test_rfc9068_header_type_is_accepted_for_bearer_tokens(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    token = mint(idps, acme_access(), headers={"typ": "at+jwt"})
    assert bridge.verify(token).token_type == "access"


def test_realm_jwks_with_an_encryption_key_beside_the_signing_key(
    bridge: Bridge, idps: dict[str, MockIdP], enc_key: dict[str, Any], server: KeyServer
) -> None:
    assert bridge.verify(mint(idps, acme_id())).token_type == "id"
    # The 'use: enc' key is skipped: a token naming it (and signed by it) finds no key.
    forged = mint(idps, acme_id(), key=enc_key["key"])
    rejects(bridge, forged, UnknownKey, "unknown_key")


def test_identity_is_honest_about_email_and_usernames(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    vt = bridge.verify(
        mint(idps, acme_id(email_verified="true", groups="/staff/admins", preferred_username=7))
    )
    assert (vt.email, vt.email_verified) == ("alice@example.com", False)
    assert vt.groups == ("/staff/admins",)
    assert vt.username is None
    vt = bridge.verify(mint(idps, acme_id(email=None, email_verified=True, realm_access="admin")))
    assert (vt.email, vt.email_verified, vt.roles) == (None, False, ())


# -- rejected ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS512", "HS256"])
def test_hmac_refresh_token_is_refused_by_the_algorithm_allow_list(
    bridge: Bridge, alg: str, mode: Mode
) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": "689952b1-7c65-409f-a29c-9a49d5bda4fa"}
    token = hmac_token(header, osss_refresh(), secrets.token_bytes(32))
    error = rejects(bridge, token, DisallowedAlgorithm, "disallowed_algorithm", mode)
    assert error.issuer == OSSS


@pytest.mark.parametrize(
    "typ", ["Refresh", "Offline", "Logout", "Serialized-ID", "bearer", "at+jwt", None, 1]
)
def test_other_keycloak_token_kinds_are_refused(
    bridge: Bridge, idps: dict[str, MockIdP], typ: object, mode: Mode
) -> None:
    rejects(bridge, mint(idps, osss_access(typ=typ)), WrongTokenType, "wrong_token_type", mode)


def test_rs256_signed_refresh_token_is_refused(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    claims = {**osss_refresh(), "aud": None}
    rejects(bridge, mint(idps, claims), WrongTokenType, "wrong_token_type")


@pytest.mark.parametrize(
    ("header_typ", "claim_typ"), [("logout+jwt", "Logout"), ("logout+jwt", "Bearer"), ("at+jwt", "ID")]
)
def test_header_typ_must_agree(
    bridge: Bridge, idps: dict[str, MockIdP], header_typ: str, claim_typ: str
) -> None:
    token = mint(idps, acme_access(typ=claim_typ), headers={"typ": header_typ})
    rejects(bridge, token, WrongTokenType, "wrong_token_type")


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "account", "azp": "other-client"},  # the default audience, another client
        {"aud": "account", "azp": None},
        {"aud": None, "azp": "shoppy-client"},
        {"aud": ["account", "realm-management"], "azp": "account-console"},
        {"aud": "other-api", "azp": "web-app"},  # for another API, even if our client asked
        {"aud": ["account", "other-api"], "azp": "web-app"},
        {"aud": [], "azp": "web-app"},
        {"aud": 5, "azp": "web-app"},
        {"aud": ["web-app", 5]},
    ],
)
def test_access_token_audience_rules(
    bridge: Bridge, idps: dict[str, MockIdP], overrides: dict[str, Any]
) -> None:
    rejects(bridge, mint(idps, acme_access(**overrides)), InvalidAudience, "invalid_audience")


def test_account_audience_with_foreign_azp_is_refused_async(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    token = mint(idps, acme_access(aud="account", azp="other-client"))
    rejects(bridge, token, InvalidAudience, "invalid_audience", "async")


@pytest.mark.parametrize("aud", ["other-client", ["web-app", "other-client"], "account", None])
def test_id_token_audience_follows_oidc_core(bridge: Bridge, idps: dict[str, MockIdP], aud: object) -> None:
    rejects(bridge, mint(idps, acme_id(aud=aud)), InvalidAudience, "invalid_audience")


@pytest.mark.parametrize(
    "iss",
    [OTHER, "https://sso.example.com/auth/realms/acme", ACME + "/", "http://sso.example.com/realms/acme"],
)
def test_other_realms_and_issuer_spellings_are_untrusted(
    bridge: Bridge, idps: dict[str, MockIdP], iss: str, mode: Mode
) -> None:
    token = idps[OTHER].mint(acme_access(iss=iss))
    rejects(bridge, token, UntrustedIssuer, "untrusted_issuer", mode)


def test_another_realms_key_never_verifies_for_this_realm(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    token = idps[OTHER].mint(acme_access())  # claims acme, signed with realm 'other''s key
    rejects(bridge, token, UnknownKey, "unknown_key")


def test_missing_sub_is_refused(bridge: Bridge, idps: dict[str, MockIdP]) -> None:
    error = rejects(bridge, mint(idps, acme_access(sub=None)), InvalidClaim, "invalid_claim")
    assert error.claim == "sub"


def test_token_types_restricts_to_access(
    server: KeyServer, idps: dict[str, MockIdP], clock: FrozenClock
) -> None:
    entry = {**CONFIG["issuers"][0], "token_types": ["access"]}
    with server.bridge({"issuers": [entry]}, clock) as bridge:
        assert bridge.verify(mint(idps, acme_access())).token_type == "access"
        rejects(bridge, mint(idps, acme_id()), WrongTokenType, "wrong_token_type")
        rejects(bridge, mint(idps, acme_id()), WrongTokenType, "wrong_token_type", "async")


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "issuer"),
    [
        ("https://sso.example.com", "https://sso.example.com/realms/acme"),
        ("https://sso.example.com/", "https://sso.example.com/realms/acme"),
        ("https://sso.example.com/auth", "https://sso.example.com/auth/realms/acme"),
        ("https://sso.example.com:8443/auth/", "https://sso.example.com:8443/auth/realms/acme"),
    ],
)
def test_issuer_and_certs_url_construction(base_url: str, issuer: str) -> None:
    profile = KeycloakConfig(base_url=base_url, realm="acme", client_ids=["web-app"])
    assert profile.trusted_issuers == (issuer,)
    assert profile.key_source.jwks_uri == issuer + CERTS
    assert profile.key_source.format == "jwks"


def test_jwks_uri_override(server: KeyServer, idps: dict[str, MockIdP], clock: FrozenClock) -> None:
    url = "https://keycloak.internal.example/realms/acme/protocol/openid-connect/certs"
    server.add(url, idps[ACME].jwks)
    entry = {**CONFIG["issuers"][0], "jwks_uri": url}
    with server.bridge({"issuers": [entry]}, clock) as bridge:
        assert bridge.verify(mint(idps, acme_access())).issuer == ACME
    assert server.count(url) == 1


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"base_url": "https://sso.example.com/realms/acme"}, "realm"),
        ({"base_url": "sso.example.com"}, "https://"),
        ({"base_url": "ftp://sso.example.com"}, "https://"),
        ({"base_url": "https://sso.example.com?x=1"}, "query"),
        ({"base_url": "http://sso.example.com"}, "https://"),  # plain http only on loopback
        ({"realm": "ac/me"}, "realm"),
        ({"realm": ""}, "realm"),
        ({"client_ids": ["account"]}, "built-in"),
        ({"client_ids": ["web-app", "realm-management"]}, "built-in"),
        ({"client_ids": []}, "client_ids"),
        ({"token_types": ["refresh"]}, "token_types"),
        ({"algorithms": ["HS512"]}, "HS512"),
        ({"issuer": ACME}, "issuer"),
    ],
)
def test_invalid_configuration(entry: dict[str, Any], fragment: str) -> None:
    base = {
        "provider": "keycloak",
        "base_url": "https://sso.example.com",
        "realm": "acme",
        "client_ids": ["web-app"],
    }
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict({"issuers": [{**base, **entry}]})
    assert info.value.code == "config_error"
    assert fragment in str(info.value)


def test_access_audience_bound_in_the_profile_still_honours_max_audiences(
    bridge: Bridge, idps: dict[str, MockIdP]
) -> None:
    # Keycloak access tokens bind 'aud' in the profile; the configured bound must still apply.
    crowd = ["web-app"] + [f"client-{i}" for i in range(60)]
    rejects(bridge, mint(idps, acme_access(aud=crowd)), InvalidAudience, "invalid_audience")
