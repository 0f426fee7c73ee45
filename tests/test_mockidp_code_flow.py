"""MockIdP's authorization endpoint and token endpoint: the OIDC authorization-code flow with PKCE.

Driven with httpx twice over: through the mock transport (``idp.client()``) and
through the real loopback server (``idp.serve(as_issuer=True)``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from federation import Bridge
from federation.testing import FrozenClock, MockIdP

CLIENT = "web-app"
REDIRECT = "https://app.test/callback"


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified."""
    segment = token.split(".")[1]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return value


def pkce() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Flow:
    """One client's side of the flow against an issuer reachable through ``http``."""

    def __init__(self, idp: MockIdP, http: httpx.Client, discovery_url: str) -> None:
        self.idp = idp
        self.http = http
        self.doc: dict[str, Any] = http.get(discovery_url).json()
        self.verifier, self.challenge = pkce()
        self.state = secrets.token_urlsafe(8)
        self.nonce = secrets.token_urlsafe(8)

    def authorize(self, **overrides: str | None) -> httpx.Response:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": CLIENT,
            "redirect_uri": REDIRECT,
            "scope": "openid email profile",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **overrides,
        }
        sent = {k: v for k, v in params.items() if v is not None}
        return self.http.get(self.doc["authorization_endpoint"], params=sent)

    def code(self, **overrides: str | None) -> str:
        response = self.authorize(**overrides)
        assert response.status_code == 302, response.text
        return query_of(response.headers["location"])["code"]

    def token(
        self, code: str, *, auth: tuple[str, str] | None = None, **overrides: str | None
    ) -> httpx.Response:
        form: dict[str, str | None] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": self.verifier,
            "client_id": None if auth else CLIENT,
            **overrides,
        }
        data = {k: v for k, v in form.items() if v is not None}
        if auth is None:
            return self.http.post(self.doc["token_endpoint"], data=data)
        return self.http.post(self.doc["token_endpoint"], data=data, auth=auth)


@contextmanager
def reach(idp: MockIdP, how: str) -> Iterator[Flow]:
    """A :class:`Flow` in memory (mock transport) or over the loopback server."""
    if how == "memory":
        with idp.client(follow_redirects=False) as http:
            yield Flow(idp, http, idp.discovery_url)
    else:
        with idp.serve(as_issuer=True) as base, httpx.Client(follow_redirects=False) as http:
            assert idp.issuer == base
            yield Flow(idp, http, base + "/.well-known/openid-configuration")


@pytest.fixture(params=["memory", "loopback"])
def flow(request: pytest.FixtureRequest, idp: MockIdP) -> Iterator[Flow]:
    idp.register_client(CLIENT, redirect_uris=[REDIRECT, "https://app.test/other"])
    with reach(idp, request.param) as flow:
        yield flow


def oauth_error(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    error: str = response.json()["error"]
    return error


# -- discovery ----------------------------------------------------------------------------------


def test_discovery_lists_the_endpoints(flow: Flow) -> None:
    doc, issuer = flow.doc, flow.idp.issuer
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == issuer + "/authorize" == flow.idp.authorization_endpoint
    assert doc["token_endpoint"] == issuer + "/token" == flow.idp.token_endpoint
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"client_secret_basic", "client_secret_post", "none"} == set(
        doc["token_endpoint_auth_methods_supported"]
    )
    assert doc["scopes_supported"] == ["openid", "email", "profile"]


def test_endpoints_follow_an_issuer_path() -> None:
    idp = MockIdP("https://sso.test/realms/acme")
    doc = idp.discovery_document()
    assert doc["authorization_endpoint"] == "https://sso.test/realms/acme/authorize"
    assert doc["token_endpoint"] == "https://sso.test/realms/acme/token"
    served = idp.discovery_document("http://127.0.0.1:1234")
    assert served["token_endpoint"] == "http://127.0.0.1:1234/realms/acme/token"
    idp.register_client(CLIENT, redirect_uris=[REDIRECT])
    with idp.client() as http:
        assert http.get("https://sso.test/authorize").status_code == 404  # not the issuer's path
        assert http.get(doc["authorization_endpoint"]).status_code == 400  # the endpoint, no client
    with idp.serve() as base, httpx.Client() as http:
        response = http.get(base + "/.well-known/openid-configuration")
        assert response.status_code == 404  # the issuer has a path: discovery is under it
        served = http.get(base + "/realms/acme/.well-known/openid-configuration").json()
        assert served["authorization_endpoint"] == base + "/realms/acme/authorize"
        assert http.post(served["token_endpoint"], data={}).json()["error"] == "invalid_request"


# -- the happy path -----------------------------------------------------------------------------


def test_the_whole_flow(flow: Flow, clock: FrozenClock) -> None:
    idp = flow.idp
    idp.approve("alice", email="alice@example.com", email_verified=True, name="Alice", groups=["admins"])
    response = flow.authorize()
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    answer = query_of(location)
    assert set(answer) == {"code", "state", "iss"}
    assert answer["state"] == flow.state and answer["iss"] == idp.issuer
    assert len(answer["code"]) >= 32

    response = flow.token(answer["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 300
    assert tokens["scope"] == "openid email profile"

    claims = claims_of(tokens["id_token"])
    assert claims["iss"] == idp.issuer
    assert (claims["sub"], claims["aud"], claims["azp"], claims["nonce"]) == (
        "alice",
        CLIENT,
        CLIENT,
        flow.nonce,
    )
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Alice" and claims["groups"] == ["admins"]
    assert claims["auth_time"] == int(clock())
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    access = claims_of(tokens["access_token"])
    assert (access["sub"], access["aud"], access["client_id"]) == ("alice", idp.audience, CLIENT)
    assert access["exp"] - access["iat"] == 300

    config = idp.bridge_config()
    config["issuers"][0]["audiences"] = [CLIENT, idp.audience]
    with idp.bridge(config=config) as bridge:
        verified = bridge.verify(tokens["id_token"])
        assert (verified.subject, verified.email, verified.audience) == (
            "alice",
            "alice@example.com",
            (CLIENT,),
        )
        assert bridge.verify(tokens["access_token"]).subject == "alice"

    routes = [r.extensions["federation.testing.route"] for r in idp.requests]
    assert routes[:3] == ["discovery", "authorize", "token"]
    assert idp.requests[2].method == "POST"
    assert [r.method for r in idp.requests_to("authorize")] == ["GET"]
    assert [r.method for r in idp.requests_to("token")] == ["POST"]


def test_the_userinfo_endpoint_answers_for_its_access_tokens(flow: Flow, clock: FrozenClock) -> None:
    idp = flow.idp
    idp.approve("alice", name="Alice", userinfo={"email": "alice@example.com", "email_verified": True})
    assert flow.doc["userinfo_endpoint"].endswith("/userinfo")
    tokens = flow.token(flow.code()).json()
    assert "email" not in claims_of(tokens["id_token"])  # only the UserInfo endpoint has it
    url = flow.doc["userinfo_endpoint"]
    answer = flow.http.get(url, headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "sub": "alice",
        "name": "Alice",
        "email": "alice@example.com",
        "email_verified": True,
    }
    assert [r.method for r in idp.requests_to("userinfo")] == ["GET"]
    for authorization in ("", "Bearer not-a-token", f"Basic {tokens['access_token']}"):
        refused = flow.http.post(url, headers={"authorization": authorization} if authorization else {})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
    clock.advance(300)  # the access token's lifetime
    expired = flow.http.get(url, headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["www-authenticate"]


def test_default_user_and_a_client_whose_id_is_the_audience(idp: MockIdP) -> None:
    idp.register_client(idp.audience, redirect_uris=[REDIRECT])
    with idp.client() as http:
        flow = Flow(idp, http, idp.discovery_url)
        code = flow.code(client_id=idp.audience, nonce=None)
        tokens = flow.token(code, client_id=idp.audience).json()
    claims = claims_of(tokens["id_token"])
    assert claims["sub"] == "mock-user" and "nonce" not in claims
    with idp.bridge() as bridge:  # the default config already trusts this audience
        assert bridge.verify(tokens["id_token"]).subject == "mock-user"


def test_the_redirect_uri_keeps_its_own_query(idp: MockIdP) -> None:
    idp.register_client(CLIENT, redirect_uris=["https://app.test/cb?tenant=t1"])
    with idp.client() as http:
        response = Flow(idp, http, idp.discovery_url).authorize(redirect_uri="https://app.test/cb?tenant=t1")
    answer = query_of(response.headers["location"])
    assert answer["tenant"] == "t1" and "code" in answer


def test_confidential_client_basic_and_post(idp: MockIdP) -> None:
    idp.register_client(CLIENT, client_secret="s3cret:+/", redirect_uris=[REDIRECT])
    with idp.client() as http:
        flow = Flow(idp, http, idp.discovery_url)
        # client_secret_basic: id and secret form-encoded before base64 (RFC 6749 §2.3.1)
        basic = base64.b64encode(b"web-app:s3cret%3A%2B%2F").decode()
        response = http.post(
            flow.doc["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": flow.code(),
                "redirect_uri": REDIRECT,
                "code_verifier": flow.verifier,
            },
            headers={"authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200, response.text
        response = flow.token(flow.code(), client_secret="s3cret:+/")  # client_secret_post
        assert response.status_code == 200, response.text


# -- refusals at the authorization endpoint -----------------------------------------------------


def test_unregistered_redirect_uri_is_shown_not_followed(flow: Flow) -> None:
    for overrides in (
        {"redirect_uri": "https://evil.test/callback"},
        {"redirect_uri": REDIRECT + "/"},  # exact match only
        {"redirect_uri": None},
        {"client_id": "someone-else"},
        {"client_id": None},
    ):
        response = flow.authorize(**overrides)
        assert response.status_code == 400, overrides
        assert "location" not in response.headers
        assert response.json()["error"] in ("invalid_request", "invalid_client")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # defaults to plain
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"scope": "email profile"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_requests_redirect_back_with_an_error(
    flow: Flow, overrides: dict[str, str | None], error: str
) -> None:
    response = flow.authorize(**overrides)
    assert response.status_code == 302
    answer = query_of(response.headers["location"])
    assert answer["error"] == error and answer["state"] == flow.state and answer["iss"] == flow.idp.issuer
    assert "code" not in answer


def test_deny_then_approve(flow: Flow) -> None:
    flow.idp.deny()
    answer = query_of(flow.authorize().headers["location"])
    assert (answer["error"], answer["state"]) == ("access_denied", flow.state)
    assert "code" not in answer
    flow.idp.deny("login_required", "nobody is signed in")
    answer = query_of(flow.authorize().headers["location"])
    assert (answer["error"], answer["error_description"]) == ("login_required", "nobody is signed in")
    flow.idp.approve("bob")
    assert claims_of(flow.token(flow.code()).json()["id_token"])["sub"] == "bob"


# -- refusals at the token endpoint -------------------------------------------------------------


def test_wrong_verifier(flow: Flow) -> None:
    other, _ = pkce()
    response = flow.token(flow.code(), code_verifier=other)
    assert oauth_error(response) == "invalid_grant"
    assert response.headers["content-type"] == "application/json"


def test_malformed_verifier(flow: Flow) -> None:
    assert oauth_error(flow.token(flow.code(), code_verifier="short")) == "invalid_request"
    assert oauth_error(flow.token(flow.code(), code_verifier="a" * 42 + "!")) == "invalid_request"


def test_reused_code(flow: Flow) -> None:
    code = flow.code()
    first = flow.token(code)
    assert first.status_code == 200
    assert oauth_error(flow.token(code)) == "invalid_grant"
    issued = {claims_of(first.json()[name])["jti"] for name in ("access_token", "id_token")}
    assert issued <= flow.idp.revoked_jtis  # RFC 6749 §4.1.2: the tokens it bought are revoked


def test_expired_code(flow: Flow, clock: FrozenClock) -> None:
    code = flow.code()
    clock.advance(61)
    assert oauth_error(flow.token(code)) == "invalid_grant"
    code = flow.code()
    clock.advance(59)
    assert flow.token(code).status_code == 200


def test_code_bound_to_redirect_uri_and_client(flow: Flow) -> None:
    flow.idp.register_client("other-app", redirect_uris=[REDIRECT])
    assert oauth_error(flow.token(flow.code(), redirect_uri="https://app.test/other")) == "invalid_grant"
    assert oauth_error(flow.token(flow.code(), redirect_uri=None)) == "invalid_request"
    assert oauth_error(flow.token(flow.code(), client_id="other-app")) == "invalid_grant"
    assert oauth_error(flow.token("no-such-code")) == "invalid_grant"


def test_confidential_client_with_wrong_secret(flow: Flow) -> None:
    flow.idp.register_client(CLIENT, client_secret="right", redirect_uris=[REDIRECT])
    code = flow.code()
    for attempt in (
        {"auth": (CLIENT, "wrong")},
        {"client_secret": "wrong"},
        {},  # no secret at all
    ):
        response = flow.token(code, **attempt)
        assert oauth_error(response, 401) == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")
    assert flow.token(code, auth=(CLIENT, "right")).status_code == 200  # failed auth did not use the code


def test_unknown_client_and_grant_type(flow: Flow) -> None:
    code = flow.code()
    assert oauth_error(flow.token(code, client_id="nobody"), 401) == "invalid_client"
    assert oauth_error(flow.token(code, grant_type="password")) == "unsupported_grant_type"
    assert oauth_error(flow.token(code, grant_type=None)) == "invalid_request"
    response = flow.http.post(flow.doc["token_endpoint"], json={"grant_type": "authorization_code"})
    assert oauth_error(response) == "invalid_request"  # not form-encoded
    assert flow.http.get(flow.doc["token_endpoint"]).status_code == 405


def test_register_client_checks_its_arguments(idp: MockIdP) -> None:
    with pytest.raises(TypeError):
        idp.register_client(CLIENT, redirect_uris=REDIRECT)
    with pytest.raises(ValueError):
        idp.register_client(CLIENT, redirect_uris=[])
    with pytest.raises(ValueError):
        idp.register_client(CLIENT, redirect_uris=["https://app.test/cb#frag"])
    with pytest.raises(ValueError):
        idp.register_client(CLIENT, redirect_uris=["/relative"])


def test_outages_reach_the_endpoints_too(flow: Flow) -> None:
    flow.idp.outage(status=503)
    assert flow.authorize().status_code == 503
    flow.idp.outage(status=503, only="jwks")
    assert flow.authorize().status_code == 302
    flow.idp.recover()


def test_bridge_verifies_over_the_loopback_server(idp: MockIdP) -> None:
    idp.register_client(CLIENT, redirect_uris=[REDIRECT])
    idp.approve("carol", email="carol@example.com")
    with reach(idp, "loopback") as flow:
        tokens = flow.token(flow.code()).json()
        config = idp.bridge_config(discovery=True, served=True)
        config["issuers"][0]["audiences"] = [CLIENT]
        with Bridge.from_dict(config, clock=idp.clock) as bridge:
            assert bridge.verify(tokens["id_token"]).subject == "carol"
