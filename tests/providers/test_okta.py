"""The Okta profile (``provider: okta``): org and custom authorization servers.

Tokens are Okta's official sample payloads (providers.md §3.8: the
"customize tokens: groups claim" and "OAuth claims" pages) re-signed by mock
authorization servers and moved to the frozen clock. Security row: OIDC-09.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from federation.providers.okta import OktaIssuerConfig

from federation import Bridge
from federation.config import load_config
from federation.errors import ConfigError, InvalidClaim, InvalidToken
from federation.testing import FrozenClock, MockIdP, generate_signing_key

NOW = 1_800_000_000
DOMAIN = "dev-123.okta.com"
ORG = f"https://{DOMAIN}"
CUSTOM = f"{ORG}/oauth2/default"
ORG_KEYS = f"{ORG}/oauth2/v1/keys"
CUSTOM_KEYS = f"{CUSTOM}/v1/keys"
SPA_CLIENT = "0oaoiuhhch8VRtBnC0h7"  # the id token sample's aud
API_CLIENT = "0oaipnnzumvqt5tiu1d6"  # the access token sample's cid
USER_ID = "00uixa271s6x7qt8I0h7"

# ID token, org authorization server, with groups (Okta "Customize tokens ... with a groups claim").
ID_SAMPLE: dict[str, Any] = {
    "sub": USER_ID,
    "ver": 1,
    "iss": ORG,
    "aud": SPA_CLIENT,
    "jti": "ID.ewMNfSvcpuqyS93OgVeCN3F2LseqROkyYjz7DNb9yhs",
    "amr": ["pwd", "mfa", "kba"],
    "idp": "00oixa26ycdNcX0VT0h7",
    "nonce": "UBGW",
    "auth_time": NOW - 60,
    "groups": ["Everyone", "IT"],
}

# Access token, custom authorization server, with a custom groups claim (same page); 'aud' is the
# authorization server's Audience, here https://{yourOktaDomain}; uid is the sample id token's user.
ACCESS_SAMPLE: dict[str, Any] = {
    "ver": 1,
    "jti": "AT.BYBJNkCefidrwo0VtGLHIZCYfSAeOyB0tVPTB6eqFss",
    "iss": CUSTOM,
    "aud": ORG,
    "cid": API_CLIENT,
    "uid": USER_ID,
    "scp": ["openid"],
    "sub": "joe.user@example.com",
    "GroupsClaim": ["Midwest Sales", "Everyone"],
}

# Access token from "OAuth 2.0 and OIDC claims" (sub is the user id there; the doc's trailing commas removed).
ACCESS_SAMPLE_2: dict[str, Any] = {
    "ver": 1,
    "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
    "iss": CUSTOM,
    "aud": "https://api.example.com",
    "sub": "00ujmkLgagxeRrAg20g3",
    "cid": "nmdP1fcyvdVO11AL7ECm",
    "uid": "00ujmkLgagxeRrAg20g3",
    "scp": ["openid", "email"],
    "auth_time": NOW - 60,
}


@pytest.fixture(scope="module")
def frozen() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def org(frozen: FrozenClock) -> Iterator[MockIdP]:
    idp = MockIdP(issuer=ORG, audience=SPA_CLIENT, jwks_path="/oauth2/v1/keys", clock=frozen)
    yield idp
    idp.close()


@pytest.fixture(scope="module")
def custom(frozen: FrozenClock) -> Iterator[MockIdP]:
    idp = MockIdP(issuer=CUSTOM, audience=SPA_CLIENT, jwks_path="/oauth2/default/v1/keys", clock=frozen)
    yield idp
    idp.close()


def transport(served: dict[str, MockIdP], seen: list[str]) -> httpx.MockTransport:
    """Both servers live on one host: serve each key set at its exact URL."""

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen.append(url)
        idp = served.get(url)
        if idp is None:
            return httpx.Response(404)
        return httpx.Response(200, json=idp.jwks(), headers={"cache-control": "max-age=300"})

    return httpx.MockTransport(handler)


def custom_entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provider": "okta",
        "domain": DOMAIN,
        "authorization_server": "default",
        "audiences": ["api://default", ORG, "https://api.example.com"],
        "client_ids": [SPA_CLIENT, API_CLIENT, "nmdP1fcyvdVO11AL7ECm"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def org_entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"provider": "okta", "domain": DOMAIN, "client_ids": [SPA_CLIENT]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def fetched() -> list[str]:
    """The key set URLs the bridges of one test fetched, in order."""
    return []


@pytest.fixture
def make(
    org: MockIdP, custom: MockIdP, frozen: FrozenClock, fetched: list[str]
) -> Iterator[Callable[..., Bridge]]:
    bridges: list[Bridge] = []
    clients: list[httpx.Client] = []

    def factory(*entries: dict[str, Any]) -> Bridge:
        mock = transport({ORG_KEYS: org, CUSTOM_KEYS: custom}, fetched)
        client = httpx.Client(transport=mock)
        clients.append(client)
        bridge = Bridge.from_dict(
            {"issuers": list(entries or (custom_entry(),))},
            http_client=client,
            async_http_client=httpx.AsyncClient(transport=mock),
            clock=frozen,
        )
        bridges.append(bridge)
        return bridge

    yield factory
    for bridge in bridges:
        bridge.close()
    for client in clients:
        client.close()


def id_token(idp: MockIdP, **claims: Any) -> str:
    return idp.mint({**ID_SAMPLE, "iss": idp.issuer, **claims})


def access_token(idp: MockIdP, sample: dict[str, Any] = ACCESS_SAMPLE, **claims: Any) -> str:
    # Okta access tokens carry no 'typ: at+jwt' header.
    return idp.mint({**sample, "iss": idp.issuer, **claims}, headers={"typ": None})


def rejected(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(cls) as info:
        bridge.verify(token)
    assert info.value.code == code
    assert (info.value.issuer is None) is (code == "untrusted_issuer")
    return info.value


async def arejected(bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    with pytest.raises(cls) as info:
        await bridge.averify(token)
    assert info.value.code == code
    return info.value


# -- configuration -------------------------------------------------------------------------------


def test_the_issue_example_config_names_the_custom_server_and_its_keys() -> None:
    config = load_config(
        {
            "issuers": [
                {
                    "provider": "okta",
                    "domain": "dev-123.okta.com",
                    "authorization_server": "default",
                    "audiences": ["api://default"],
                    "client_ids": ["0oa1example"],
                }
            ]
        }
    )
    profile = config.issuers[0]
    assert isinstance(profile, OktaIssuerConfig)
    assert profile.trusted_issuers == ("https://dev-123.okta.com/oauth2/default",)
    assert profile.key_source.jwks_uri == "https://dev-123.okta.com/oauth2/default/v1/keys"
    assert profile.key_source.discovery_url is None
    assert profile.token_types == ["id", "access"]
    assert profile.algorithms == ["RS256"]


def test_the_org_server_accepts_id_tokens_only_by_default() -> None:
    profile = OktaIssuerConfig.model_validate(org_entry(domain="Acme.OktaPreview.com"))
    assert profile.trusted_issuers == ("https://acme.oktapreview.com",)
    assert profile.key_source.jwks_uri == "https://acme.oktapreview.com/oauth2/v1/keys"
    assert profile.token_types == ["id"]


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        (org_entry(token_types=["id", "access"]), "cannot be validated locally"),
        (org_entry(audiences=["api://default"]), "audiences apply to access tokens"),
        (custom_entry(audiences=None), "audiences is required to accept access tokens"),
        (custom_entry(domain="https://dev-123.okta.com"), "without https://"),
        (custom_entry(domain="dev-123.okta.com/oauth2/default"), "without https://"),
        (custom_entry(domain="dev-123.okta.com:443"), "hostname"),
        (custom_entry(domain="{yourOktaDomain}"), "hostname"),
        (custom_entry(domain="localhost"), "hostname"),
        (custom_entry(domain="dev-123-admin.okta.com"), "admin console"),
        (custom_entry(authorization_server="https://dev-123.okta.com/oauth2/default"), "server's id"),
        (custom_entry(authorization_server="default/v1"), "server's id"),
        (custom_entry(client_ids=[]), "client_ids"),
        (custom_entry(client_ids=[" 0oa1"]), "non-empty strings"),
        (custom_entry(algorithms=["none"]), "never accepted"),
        (custom_entry(issuer="https://dev-123.okta.com"), "unknown key"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(entry: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"issuers": [entry]})
    assert info.value.code == "config_error"
    assert needle in str(info.value)


# -- accepted tokens ------------------------------------------------------------------------------


def test_a_custom_server_access_token_is_accepted_with_its_identity(
    custom: MockIdP, make: Callable[..., Bridge], fetched: list[str]
) -> None:
    bridge = make(custom_entry(groups_claim="GroupsClaim"))
    vt = bridge.verify(access_token(custom))
    assert (vt.provider, vt.token_type, vt.issuer) == ("okta", "access", CUSTOM)
    # sub is the login (mutable): the key is the Okta user id in uid, namespaced by the org.
    assert vt.subject == "joe.user@example.com"
    assert vt.identity_key == (ORG, USER_ID)
    assert vt.username == "joe.user@example.com"
    assert vt.groups == ("Midwest Sales", "Everyone")
    assert (vt.email, vt.email_verified) == (None, False)
    assert fetched == [CUSTOM_KEYS]


def test_the_second_official_access_token_sample(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    vt = make().verify(access_token(custom, ACCESS_SAMPLE_2))
    assert vt.identity_key == (ORG, "00ujmkLgagxeRrAg20g3")
    assert vt.audience == ("https://api.example.com",)


def test_a_custom_server_id_token_names_the_same_user(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    vt = bridge.verify(id_token(custom, preferred_username="joe.user@example.com", email="joe@example.com"))
    assert vt.token_type == "id"
    assert vt.identity_key == (ORG, USER_ID) == bridge.verify(access_token(custom)).identity_key
    assert vt.username == "joe.user@example.com"
    assert vt.groups == ("Everyone", "IT")
    assert (vt.email, vt.email_verified) == ("joe@example.com", False)
    assert (
        bridge.verify(id_token(custom, email="joe@example.com", email_verified=True)).email_verified is True
    )
    assert (
        bridge.verify(id_token(custom, email="joe@example.com", email_verified="true")).email_verified
        is False
    )


def test_the_official_org_server_id_token_is_accepted(
    org: MockIdP, make: Callable[..., Bridge], fetched: list[str]
) -> None:
    bridge = make(org_entry())
    vt = bridge.verify(id_token(org))
    assert (vt.issuer, vt.token_type) == (ORG, "id")
    assert vt.identity_key == (ORG, USER_ID)
    assert vt.groups == ("Everyone", "IT")
    assert fetched == [ORG_KEYS]


def test_a_client_credentials_token_is_keyed_by_its_client(
    custom: MockIdP, make: Callable[..., Bridge]
) -> None:
    token = access_token(custom, uid=None, sub=API_CLIENT, scp=["orders.read"], GroupsClaim=None)
    vt = make().verify(token)
    assert vt.identity_key == (ORG, API_CLIENT)
    assert (vt.username, vt.groups) == (None, ())


def test_org_and_custom_servers_side_by_side(
    org: MockIdP, custom: MockIdP, make: Callable[..., Bridge], fetched: list[str]
) -> None:
    bridge = make(org_entry(), custom_entry())
    assert bridge.verify(id_token(org)).issuer == ORG
    assert bridge.verify(access_token(custom)).issuer == CUSTOM
    assert sorted(fetched) == [CUSTOM_KEYS, ORG_KEYS]


@pytest.mark.anyio
async def test_async_accepts_both_kinds(org: MockIdP, custom: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make(org_entry(), custom_entry())
    assert (await bridge.averify(id_token(org))).token_type == "id"
    assert (await bridge.averify(id_token(custom))).token_type == "id"
    assert (await bridge.averify(access_token(custom))).identity_key == (ORG, USER_ID)


# -- OIDC-09: org server vs custom server, cid ----------------------------------------------------


def test_oidc09_an_org_server_token_where_the_custom_server_is_expected(
    org: MockIdP, make: Callable[..., Bridge]
) -> None:
    bridge = make(custom_entry())
    rejected(bridge, id_token(org), InvalidToken, "untrusted_issuer")
    rejected(bridge, access_token(org, aud="api://default"), InvalidToken, "untrusted_issuer")


def test_a_custom_server_token_where_the_org_server_is_expected(
    custom: MockIdP, make: Callable[..., Bridge]
) -> None:
    rejected(make(org_entry()), id_token(custom), InvalidToken, "untrusted_issuer")


def test_another_custom_server_of_the_same_org(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    token = id_token(custom, iss=f"{ORG}/oauth2/aus9o8wzkhckw9TLa0h7z")
    rejected(make(), token, InvalidToken, "untrusted_issuer")


@pytest.mark.parametrize("cid", ["0oaSomeOtherClient", None, 42, [API_CLIENT]])
def test_oidc09_an_access_token_of_another_client(
    custom: MockIdP, make: Callable[..., Bridge], cid: object
) -> None:
    # okta-jwt-verifier checks iss/aud/exp only: any client of the server would pass there.
    rejected(make(), access_token(custom, cid=cid), InvalidToken, "invalid_audience")


def test_an_access_token_for_another_audience(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make(custom_entry(audiences=["api://default"]))
    assert bridge.verify(access_token(custom, aud="api://default")).token_type == "access"
    rejected(bridge, access_token(custom), InvalidToken, "invalid_audience")  # aud https://{domain}
    rejected(bridge, access_token(custom, aud=None), InvalidToken, "invalid_audience")
    rejected(bridge, access_token(custom, aud=SPA_CLIENT), InvalidToken, "invalid_audience")


def test_an_org_server_access_token_gets_a_code_that_says_why(
    org: MockIdP, make: Callable[..., Bridge]
) -> None:
    # If its key verifies, the kind is still refused: Okta says validate these by introspection.
    token = access_token(org, aud=ORG, cid=SPA_CLIENT)
    rejected(make(org_entry()), token, InvalidToken, "okta_org_access_token")


def test_an_org_server_access_token_signed_with_an_unpublished_key(
    org: MockIdP, make: Callable[..., Bridge]
) -> None:
    # Real org-server access tokens are signed with keys Okta does not publish: they are named
    # before key lookup, so the code says why and no refetch is spent on the unknown kid.
    token = org.mint({**ACCESS_SAMPLE, "iss": ORG, "aud": ORG}, key=generate_signing_key("RS256"))
    before = len(org.requests)
    rejected(make(org_entry()), token, InvalidToken, "okta_org_access_token")
    assert len(org.requests) == before


@pytest.mark.anyio
async def test_oidc09_async_rejections(org: MockIdP, custom: MockIdP, make: Callable[..., Bridge]) -> None:
    await arejected(make(custom_entry()), id_token(org), InvalidToken, "untrusted_issuer")
    await arejected(make(), access_token(custom, cid="0oaSomeOtherClient"), InvalidToken, "invalid_audience")
    token = access_token(org, aud=ORG, cid=SPA_CLIENT)
    await arejected(make(org_entry()), token, InvalidToken, "okta_org_access_token")


# -- token kinds, id token audience, Okta claims ---------------------------------------------------


def test_each_kind_only_where_configured(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    rejected(make(custom_entry(token_types=["id"])), access_token(custom), InvalidToken, "wrong_token_type")
    rejected(make(custom_entry(token_types=["access"])), id_token(custom), InvalidToken, "wrong_token_type")


def test_the_kind_from_the_header_and_claims(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    # scp without cid is an access token, and then it names no client
    rejected(bridge, access_token(custom, cid=None), InvalidToken, "invalid_audience")
    # an RFC 9068 header makes it an access token, whatever the claims
    typed = custom.mint({**ID_SAMPLE, "iss": CUSTOM}, headers={"typ": "at+jwt"})
    rejected(bridge, typed, InvalidToken, "invalid_audience")
    rejected(
        bridge,
        custom.mint({**ID_SAMPLE, "iss": CUSTOM}, headers={"typ": "logout+jwt"}),
        InvalidToken,
        "wrong_token_type",
    )
    assert bridge.verify(custom.mint({**ID_SAMPLE, "iss": CUSTOM}, headers={"typ": None})).token_type == "id"


def test_an_id_token_for_another_client(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    rejected(bridge, id_token(custom, aud="0oaSomeOtherClient"), InvalidToken, "invalid_audience")
    rejected(bridge, id_token(custom, aud="api://default"), InvalidToken, "invalid_audience")
    rejected(
        bridge, id_token(custom, aud=[SPA_CLIENT, "0oaSomeOtherClient"]), InvalidToken, "invalid_audience"
    )


@pytest.mark.parametrize("ver", [2, "1", True, 1.5])
def test_an_unknown_token_version(custom: MockIdP, make: Callable[..., Bridge], ver: object) -> None:
    err = rejected(make(), id_token(custom, ver=ver), InvalidClaim, "invalid_claim")
    assert isinstance(err, InvalidClaim) and err.claim == "ver"


@pytest.mark.parametrize("uid", [None, "", 7])
def test_a_user_access_token_without_a_usable_uid(
    custom: MockIdP, make: Callable[..., Bridge], uid: object
) -> None:
    # Without uid the only user name is the login in sub: never an identity key.
    err = rejected(make(), access_token(custom, uid=uid), InvalidClaim, "invalid_claim")
    assert isinstance(err, InvalidClaim) and err.claim == "uid"


def test_only_rs256_by_default(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    rejected(
        make(), custom.mint({**ID_SAMPLE, "iss": CUSTOM}, alg="ES256"), InvalidToken, "disallowed_algorithm"
    )


def test_a_forged_signature_and_an_expired_token(custom: MockIdP, make: Callable[..., Bridge]) -> None:
    bridge = make()
    forged = custom.mint(
        {**ID_SAMPLE, "iss": CUSTOM}, key=generate_signing_key("RS256"), kid=custom.keys[0].kid
    )
    rejected(bridge, forged, InvalidToken, "bad_signature")
    rejected(bridge, custom.mint({**ACCESS_SAMPLE}, expired=True), InvalidToken, "expired")
    err = rejected(bridge, custom.mint({**ACCESS_SAMPLE}, iat=None), InvalidClaim, "invalid_claim")
    assert isinstance(err, InvalidClaim) and err.claim == "iat"
