"""MockIdP's provider shapes behave like the real issuers beyond their claims.

Key ids look like the provider's (a verifier that mangles a Cognito kid full of ``+``,
``/`` and ``=`` must fail here, not in production), Cognito signs id and access
tokens with two key pairs, Google publishes two keys, the discovery documents name
the provider's endpoints (and the mock's code flow works there), the redirect carries
``iss`` only where the provider sends it, and the key set's Cache-Control is the
provider's. Also: the latency option, and a respx router started after the mock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from federation.testing import FrozenClock, MockIdP, x509_jwk_members


def header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


# -- kid shapes -----------------------------------------------------------------------------


def test_cognito_kids_are_44_characters_of_standard_base64() -> None:
    idp = MockIdP.for_provider("cognito")
    for key in idp.keys:
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", key.kid), key.kid
        assert "+" in key.kid and "/" in key.kid
        assert len(base64.b64decode(key.kid, validate=True)) == 32
    assert header(idp.mint())["kid"] in {k.kid for k in idp.keys}


@pytest.mark.parametrize("params", [{}, {"version": "1.0"}, {"tenant": "organizations"}])
def test_entra_kids_are_the_certificate_thumbprint(params: dict[str, Any]) -> None:
    idp = MockIdP.for_provider("azure_ad", **params)
    key = idp.key_for()
    assert re.fullmatch(r"[A-Za-z0-9_-]{27}", key.kid)
    (jwk,) = idp.jwks()["keys"]
    assert jwk["kid"] == jwk["x5t"] == key.kid == x509_jwk_members(idp.certificate(key))["x5t"]
    der = base64.b64decode(jwk["x5c"][0])
    digest = base64.urlsafe_b64encode(hashlib.sha1(der, usedforsecurity=False).digest()).rstrip(b"=")
    assert digest.decode() == key.kid
    minted = header(idp.mint())
    assert minted["kid"] == key.kid
    if params.get("version") == "1.0":  # v1 headers carry both, with the same value
        assert minted["x5t"] == minted["kid"]
    rotated = idp.rotate_keys(keep_old=False)
    assert [k["kid"] for k in idp.jwks()["keys"]] == [k["x5t"] for k in idp.jwks()["keys"]] == [rotated.kid]


@pytest.mark.parametrize("provider", ["okta", "keycloak"])
def test_okta_and_keycloak_kids_are_43_characters_of_base64url(provider: str) -> None:
    idp = MockIdP.for_provider(provider)
    kids = [k["kid"] for k in idp.jwks()["keys"] if k.get("use", "sig") == "sig"]
    assert kids and all(re.fullmatch(r"[A-Za-z0-9_-]{43}", kid) for kid in kids), kids
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", idp.rotate_keys().kid)


def test_google_kids_are_40_hex_digits() -> None:
    idp = MockIdP.for_provider("google")
    assert all(re.fullmatch(r"[0-9a-f]{40}", k.kid) for k in idp.keys)


KID_SHAPES = {
    "cognito": r"[A-Za-z0-9+/]{43}=",
    "azure_ad": r"[A-Za-z0-9_-]{27}",
    "okta": r"[A-Za-z0-9_-]{43}",
    "keycloak": r"[A-Za-z0-9_-]{43}",
    "google": r"[0-9a-f]{40}",
}


@pytest.mark.parametrize("provider", sorted(KID_SHAPES))
def test_bridges_verify_tokens_with_provider_shaped_kids(provider: str) -> None:
    idp = MockIdP.for_provider(provider, clock=FrozenClock())
    with idp.bridge() as bridge:
        kid = bridge.verify(idp.mint()).key_id
    assert kid == idp.key_for().kid and re.fullmatch(KID_SHAPES[provider], kid)


# -- keys published --------------------------------------------------------------------------


def test_cognito_signs_id_and_access_tokens_with_two_key_pairs() -> None:
    idp = MockIdP.for_provider("cognito", clock=FrozenClock())
    kids = [k["kid"] for k in idp.jwks()["keys"]]
    assert len(kids) == 2 and len(set(kids)) == 2
    id_kid = header(idp.mint())["kid"]
    access_kid = header(idp.mint(token_type="access"))["kid"]
    assert id_kid != access_kid and {id_kid, access_kid} == set(kids)
    assert idp.key_for(token_type="access").kid == access_kid
    with idp.bridge() as bridge:
        assert bridge.verify(idp.mint()).key_id == id_kid
        verified = bridge.verify(idp.mint(token_type="access"))
        assert (verified.token_type, verified.key_id) == ("access", access_kid)
    idp.rotate_keys(keep_old=False)  # a pool renews both pairs
    renewed = [k["kid"] for k in idp.jwks()["keys"]]
    assert len(renewed) == 2 and not set(renewed) & set(kids)
    assert header(idp.mint())["kid"] != header(idp.mint(token_type="access"))["kid"]


def test_google_publishes_two_keys_and_signs_with_the_first() -> None:
    idp = MockIdP.for_provider("google", clock=FrozenClock())
    kids = [k["kid"] for k in idp.jwks()["keys"]]
    assert len(kids) == 2 and header(idp.mint())["kid"] == kids[0]
    new = idp.rotate_keys(keep_old=False)
    kids = [k["kid"] for k in idp.jwks()["keys"]]
    assert len(kids) == 2 and kids[0] == new.kid == header(idp.mint())["kid"]


# -- discovery and the code flow -------------------------------------------------------------

ENDPOINTS = {
    "google": ("https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token"),
    "azure_ad": (
        "https://login.microsoftonline.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/oauth2/v2.0/token",
    ),
    "keycloak": (
        "https://sso.example.com/realms/example/protocol/openid-connect/auth",
        "https://sso.example.com/realms/example/protocol/openid-connect/token",
    ),
    "okta": (
        "https://dev-123.okta.com/oauth2/default/v1/authorize",
        "https://dev-123.okta.com/oauth2/default/v1/token",
    ),
}


def _code_flow(idp: MockIdP, client: httpx.Client) -> tuple[dict[str, list[str]], httpx.Response]:
    """One authorization-code round trip through the URLs the discovery document names."""
    doc = client.get(idp.discovery_url).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "https://app.test/callback"
    idp.register_client("app", client_secret="s3cret", redirect_uris=[redirect])
    params = {"client_id": "app", "redirect_uri": redirect, "response_type": "code", "scope": "openid"}
    params.update(code_challenge=challenge, code_challenge_method="S256", state="st")
    answer = client.get(doc["authorization_endpoint"], params=params)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect}
    token = client.post(
        doc["token_endpoint"], data={**form, "code_verifier": verifier}, auth=("app", "s3cret")
    )
    return query, token


@pytest.mark.parametrize("provider", sorted(ENDPOINTS))
def test_discovery_names_the_providers_endpoints_and_the_mock_serves_them(provider: str) -> None:
    idp = MockIdP.for_provider(provider, clock=FrozenClock())
    doc = idp.discovery_document()
    assert (doc["authorization_endpoint"], doc["token_endpoint"]) == ENDPOINTS[provider]
    assert (idp.authorization_endpoint, idp.token_endpoint) == ENDPOINTS[provider]
    query, token = _code_flow(idp, idp.client())
    assert token.status_code == 200, token.text
    assert header(token.json()["id_token"])["kid"] == idp.key_for().kid
    assert [len(idp.requests_to("authorize")), len(idp.requests_to("token"))] == [1, 1]
    sends_iss = provider in ("keycloak", "okta")
    assert ("iss" in query) is sends_iss
    assert ("authorization_response_iss_parameter_supported" in doc) is sends_iss


def test_the_providers_endpoints_work_on_the_loopback_server() -> None:
    idp = MockIdP.for_provider("keycloak", clock=FrozenClock())
    with idp.serve() as url, httpx.Client() as client:
        doc = idp.discovery_document(url)
        assert doc["token_endpoint"] == url + "/realms/example/protocol/openid-connect/token"
        assert client.post(doc["token_endpoint"], data={}).json()["error"] == "invalid_request"
        assert (
            client.get(doc["authorization_endpoint"]).status_code == 400
        )  # no client: shown, not redirected


def test_firebase_discovery_names_the_jwk_set_and_the_mock_serves_it() -> None:
    idp = MockIdP.for_provider("firebase")
    jwk_url = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
    assert idp.discovery_document()["jwks_uri"] == jwk_url
    client = idp.client()
    served = client.get(jwk_url)
    assert served.status_code == 200 and served.json() == idp.jwks()
    assert [k["kid"] for k in served.json()["keys"]] == list(idp.certificates())
    assert client.get(idp.jwks_uri).json() == idp.certificates()  # the certificate map stays where it was


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("keycloak", "no-cache"),
        ("azure_ad", "max-age=86400, private"),
        ("google", "public, max-age=21532, must-revalidate, no-transform"),
    ],
)
def test_key_set_cache_control_is_the_providers(provider: str, expected: str) -> None:
    idp = MockIdP.for_provider(provider)
    assert idp.client().get(idp.jwks_uri).headers["cache-control"] == expected
    generic = MockIdP.for_provider("oidc")  # the generic shape keeps the mock's own
    assert generic.client().get(generic.jwks_uri).headers["cache-control"] == "public, max-age=300"
    asked = MockIdP.for_provider(provider, cache_max_age=60)  # an explicit choice wins
    assert asked.client().get(asked.jwks_uri).headers["cache-control"] == "public, max-age=60"


# -- latency ----------------------------------------------------------------------------------


def test_slow_delays_only_the_named_route() -> None:
    idp = MockIdP()
    client = idp.client()
    with idp.slow(0.3, only="jwks"):
        started = time.monotonic()
        assert client.get(idp.discovery_url).status_code == 200
        assert time.monotonic() - started < 0.2
        started = time.monotonic()
        assert client.get(idp.jwks_uri).json() == idp.jwks()
        assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.get(idp.jwks_uri)
    assert time.monotonic() - started < 0.2


def test_slow_within_the_clients_timeout_still_verifies_over_the_loopback_server() -> None:
    idp = MockIdP(clock=FrozenClock())
    with idp.serve(), idp.slow(0.3), idp.bridge(served=True) as bridge:
        started = time.monotonic()
        assert bridge.verify(idp.mint(sub="late")).subject == "late"
        assert time.monotonic() - started >= 0.3


def test_slow_checks_its_arguments() -> None:
    idp = MockIdP()
    with pytest.raises(ValueError, match="only"), idp.slow(0.1, only="keys"):  # type: ignore[arg-type]
        pass
    with pytest.raises(ValueError, match="seconds"), idp.slow(-1):
        pass


# -- respx routers ----------------------------------------------------------------------------


def test_a_respx_router_started_after_the_mock_gets_its_routes() -> None:
    respx = pytest.importorskip("respx")
    with MockIdP() as idp, respx.mock(assert_all_called=False) as router:
        router.get("https://api.example.test/ping").respond(json={"pong": True})
        with httpx.Client() as client:
            assert client.get("https://api.example.test/ping").json() == {"pong": True}
            assert client.get(idp.jwks_uri).json() == idp.jwks()


def test_the_no_mock_error_names_the_way_out() -> None:
    pytest.importorskip("respx")
    with MockIdP(), httpx.Client() as client, pytest.raises(httpx.ConnectError, match="respx_mock fixture"):
        client.get("https://elsewhere.test/")
