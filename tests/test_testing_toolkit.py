"""The testing toolkit itself: MockIdP, its transports, its loopback server, claim shapes."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from federation import Bridge
from federation.errors import (
    BadSignature,
    KeySetUnavailable,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
)
from federation.sessions import generate_private_key_pem
from federation.testing import (
    FrozenClock,
    MockIdP,
    ProviderShape,
    generate_signing_key,
    mock_transport,
    provider_shape,
    register_provider,
    registered_providers,
    unregister_provider,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(segment: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        return value

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        assert response.status == 200
        return json.loads(response.read())


# -- minting ------------------------------------------------------------------------------------


def test_default_token_is_realistic(idp: MockIdP, clock: FrozenClock) -> None:
    header, claims = decode(idp.mint())
    assert header == {"alg": "RS256", "kid": idp.key_for("RS256").kid, "typ": "JWT"}
    assert claims["iss"] == "https://idp.test" and claims["aud"] == "my-client"
    assert claims["sub"] and claims["jti"]
    assert (claims["iat"], claims["exp"]) == (int(clock()), int(clock()) + 300)


def test_claims_from_a_dict_and_keywords_none_drops(idp: MockIdP) -> None:
    _, claims = decode(idp.mint({"sub": "u1", "groups": ["admins"]}, email="a@example.com", jti=None))
    assert (claims["sub"], claims["groups"], claims["email"]) == ("u1", ["admins"], "a@example.com")
    assert "jti" not in claims
    _, claims = decode(idp.mint({"sub": "from-dict"}, sub="keyword-wins"))
    assert claims["sub"] == "keyword-wins"


def test_minted_tokens_verify(idp: MockIdP, bridge: Bridge) -> None:
    vt = bridge.verify(idp.mint(sub="u1", email="a@example.com", groups=["admins"]))
    assert (vt.subject, vt.claims["groups"], vt.token_type) == ("u1", ["admins"], "id")


def test_expired_not_before_and_issued_at(idp: MockIdP, bridge: Bridge, clock: FrozenClock) -> None:
    now = int(clock())
    _, claims = decode(idp.mint(expired=True))
    assert claims["exp"] == now - 600 and claims["iat"] < claims["exp"]
    with pytest.raises(TokenExpired):
        bridge.verify(idp.mint(expired=True))
    future = idp.mint(not_before=600)
    _, claims = decode(future)
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (now, now + 600, now + 900)
    with pytest.raises(TokenNotYetValid):
        bridge.verify(future)
    _, claims = decode(idp.mint(not_before=-5, issued_at=-60, lifetime=120))
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (now - 60, now - 5, now + 115)
    moment = datetime.fromtimestamp(now, tz=timezone.utc) - timedelta(hours=2)
    _, claims = decode(idp.mint(issued_at=moment))
    assert (claims["iat"], claims["exp"]) == (now - 7200, now - 6900)
    with pytest.raises(TokenExpired):  # issued two hours ago with a five-minute lifetime
        bridge.verify(idp.mint(issued_at=moment))
    _, claims = decode(idp.mint(issued_at=moment.replace(tzinfo=None)))  # naive means UTC
    assert claims["iat"] == now - 7200


def test_kid_headers_and_foreign_keys(idp: MockIdP, bridge: Bridge) -> None:
    with pytest.raises(UnknownKey):
        bridge.verify(idp.mint(kid="unknown"))
    header, _ = decode(idp.mint(headers={"typ": None, "x-extra": "1"}))
    assert "typ" not in header and header["x-extra"] == "1"
    attacker = generate_signing_key("RS256", kid=idp.key_for().kid)
    with pytest.raises(BadSignature):
        bridge.verify(idp.mint(key=attacker))


@pytest.mark.parametrize(
    ("alg", "kty", "crv"),
    [("ES256", "EC", "P-256"), ("ES384", "EC", "P-384"), ("EdDSA", "OKP", "Ed25519"), ("PS256", "RSA", None)],
)
def test_other_algorithms_get_their_own_keys(alg: str, kty: str, crv: str | None, clock: FrozenClock) -> None:
    idp = MockIdP(alg=alg, clock=clock)
    (jwk,) = idp.jwks()["keys"]
    assert (jwk["kty"], jwk.get("crv"), jwk["alg"]) == (kty, crv, alg)
    assert not PRIVATE_MEMBERS & set(jwk)
    with idp.bridge() as bridge:
        vt = bridge.verify(idp.mint(sub="u1"))
    assert (vt.algorithm, vt.key_id) == (alg, jwk["kid"])


def test_rsa_keys_are_2048_bits_and_alg_on_request_adds_a_key(idp: MockIdP, bridge: Bridge) -> None:
    rsa = idp.key_for("RS256")
    assert rsa.private_key.key_size == 2048  # type: ignore[union-attr]
    assert {k.alg for k in idp.keys} == {"RS256", "ES256"}
    token = idp.mint(alg="EdDSA")  # not published before: a key is made and published
    assert {k.alg for k in idp.keys} == {"RS256", "ES256", "EdDSA"}
    assert bridge.verify(token).algorithm == "EdDSA"


def test_jwks_never_contains_private_members() -> None:
    idp = MockIdP(algorithms=["PS256", "ES256", "ES512", "EdDSA"])
    keys = idp.jwks()["keys"]
    assert len(keys) == 5  # the default RS256 key and one per extra algorithm
    for jwk in keys:
        assert not PRIVATE_MEMBERS & set(jwk), jwk["kty"]
        assert jwk["use"] == "sig" and jwk["kid"]


def test_access_tokens_follow_rfc_9068(idp: MockIdP, bridge: Bridge) -> None:
    token = idp.mint(token_type="access", scope="read write")
    header, claims = decode(token)
    assert header["typ"] == "at+jwt"
    assert (claims["client_id"], claims["scope"]) == ("my-client", "read write")
    assert bridge.verify(token).token_type == "access"
    with pytest.raises(ValueError, match="token_type"):
        idp.mint(token_type="refresh")  # type: ignore[arg-type]


# -- rotation -------------------------------------------------------------------------------------


def test_rotation_keeping_the_old_key(idp: MockIdP, bridge: Bridge, clock: FrozenClock) -> None:
    old_token = idp.mint(sub="old")
    assert bridge.verify(old_token).subject == "old"
    old_kid = idp.key_for().kid
    new = idp.rotate_keys(keep_old=True)
    assert new.kid != old_kid and {old_kid, new.kid} <= {k["kid"] for k in idp.jwks()["keys"]}
    clock.advance(31)  # past the refetch cooldown
    assert bridge.verify(idp.mint(sub="new")).key_id == new.kid  # unknown kid: one refetch
    assert bridge.verify(old_token).subject == "old"
    assert len(idp.requests_to("jwks")) == 2


def test_rotation_dropping_the_old_key(idp: MockIdP, clock: FrozenClock, make_bridge: Any) -> None:
    old_token = idp.mint()
    old_kid = idp.key_for().kid
    idp.rotate_keys(keep_old=False)
    assert old_kid not in {k["kid"] for k in idp.jwks()["keys"]}
    with pytest.raises(UnknownKey):
        make_bridge().verify(old_token)
    idp.remove_key(idp.key_for("ES256").kid)
    assert {k.alg for k in idp.keys} == {"RS256"}


# -- outages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"status": 500}, "http_500"),
        ({"status": 404}, "http_404"),
        ({"timeout": True}, "timeout"),
        ({"body": b"<html>not json"}, "not_json"),
    ],
)
def test_outage_then_recovery(
    idp: MockIdP, make_bridge: Any, clock: FrozenClock, kwargs: dict[str, Any], reason: str
) -> None:
    bridge = make_bridge()
    idp.outage(**kwargs)
    with pytest.raises(KeySetUnavailable) as caught:
        bridge.verify(idp.mint())
    assert caught.value.reason == reason
    assert len(idp.requests_to("jwks")) == 1  # refused requests are recorded too
    idp.recover()
    assert idp.outage_kind is None
    clock.advance(31)
    assert bridge.verify(idp.mint(sub="back")).subject == "back"
    assert len(idp.requests_to("jwks")) == 2


def test_outage_of_one_document(idp: MockIdP, make_bridge: Any) -> None:
    idp.outage(503, only="jwks")
    assert idp.outage_kind == "status"
    bridge = make_bridge(issuer={"jwks_uri": None})  # discovery, then the JWKS
    with pytest.raises(KeySetUnavailable) as caught:
        bridge.verify(idp.mint())
    assert caught.value.reason == "http_503"
    assert [len(idp.requests_to("discovery")), len(idp.requests_to("jwks"))] == [1, 1]
    with pytest.raises(ValueError):
        idp.outage(only="keys")  # type: ignore[arg-type]


def test_serve_jwks_overrides_the_document(idp: MockIdP, make_bridge: Any) -> None:
    idp.serve_jwks({"keys": "nope"})
    with pytest.raises(KeySetUnavailable) as caught:
        make_bridge().verify(idp.mint())
    assert caught.value.reason == "not_a_jwk_set"


# -- requests and documents --------------------------------------------------------------------------


def test_request_recording(idp: MockIdP) -> None:
    with idp.bridge(discovery=True) as bridge:
        for _ in range(3):
            bridge.verify(idp.mint())
    assert [str(r.url) for r in idp.requests] == [idp.discovery_url, idp.jwks_uri]
    assert len(idp.requests_to("discovery")) == len(idp.requests_to("jwks")) == 1
    assert idp.requests[0].headers["user-agent"] == "federation-bridge"
    idp.requests.clear()
    assert idp.requests_to("jwks") == []
    assert idp.requests_to("token") == []  # the code flow's endpoints are counted too
    assert idp.requests_to("userinfo") == []  # and the UserInfo endpoint
    with pytest.raises(ValueError):
        idp.requests_to("introspect")  # type: ignore[arg-type]


def test_discovery_document(idp: MockIdP) -> None:
    with idp.client() as client:
        response = client.get(idp.discovery_url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=300"
        doc = response.json()
        assert client.get("https://idp.test/elsewhere").status_code == 404
    assert doc["issuer"] == "https://idp.test"
    assert doc["jwks_uri"] == "https://idp.test/jwks"
    assert doc["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert {"authorization_endpoint", "token_endpoint", "response_types_supported"} <= set(doc)


def test_issuer_with_a_path_and_a_jwks_uri_on_another_host() -> None:
    idp = MockIdP("https://sso.test/realms/acme", jwks_uri="https://keys.test/certs", cache_max_age=None)
    assert idp.discovery_url == "https://sso.test/realms/acme/.well-known/openid-configuration"
    with idp.client() as client:
        assert client.get(idp.discovery_url).json()["jwks_uri"] == "https://keys.test/certs"
        response = client.get("https://keys.test/certs")
        assert "cache-control" not in response.headers
        assert response.json() == idp.jwks()
    with idp.bridge(discovery=True) as bridge:
        assert bridge.verify(idp.mint(sub="u1")).subject == "u1"


def test_config_helpers(idp: MockIdP) -> None:
    assert idp.issuer_config() == {
        "provider": "oidc",
        "issuer": "https://idp.test",
        "audiences": ["my-client"],
        "jwks_uri": "https://idp.test/jwks",
    }
    assert "jwks_uri" not in idp.issuer_config(discovery=True)
    assert idp.issuer_config(audiences=["a", "b"])["audiences"] == ["a", "b"]
    config = idp.bridge_config(leeway=0, keys={"ttl": 60})
    assert config == {"issuers": [idp.issuer_config()], "leeway": 0, "keys": {"ttl": 60}}
    assert Bridge.from_dict(config).issuers == ("https://idp.test",)
    with pytest.raises(RuntimeError, match="serve"):
        idp.issuer_config(served=True)


# -- httpx integration ------------------------------------------------------------------------------


def test_mock_transport_in_a_users_own_client(clock: FrozenClock) -> None:
    a = MockIdP("https://a.test", clock=clock)
    b = MockIdP("https://b.test", alg="ES256", clock=clock)
    with httpx.Client(transport=mock_transport(a, b)) as client:
        assert client.get("https://a.test/jwks").json() == a.jwks()
        assert client.get("https://b.test/jwks").json() == b.jwks()
        assert client.get("https://c.test/jwks").status_code == 404
        config = {"issuers": [a.issuer_config(), b.issuer_config()]}
        with Bridge.from_dict(config, http_client=client, clock=clock) as bridge:
            assert bridge.verify(a.mint(sub="from-a")).subject == "from-a"
            assert bridge.verify(b.mint(sub="from-b")).subject == "from-b"
    assert len(a.requests_to("jwks")) == 2 and len(b.requests_to("jwks")) == 2


def test_async_client_and_averify(idp: MockIdP) -> None:
    async def main() -> tuple[dict[str, Any], str]:
        async with idp.async_client() as client:
            jwks = (await client.get(idp.jwks_uri)).json()
        with idp.bridge() as bridge:
            vt = await bridge.averify(idp.mint(sub="async", alg="ES256"))
        return jwks, vt.subject

    jwks, subject = asyncio.run(main())
    assert jwks == idp.jwks() and subject == "async"


def test_with_block_serves_every_httpx_client(clock: FrozenClock) -> None:
    with MockIdP(clock=clock) as idp:
        assert httpx.get("https://idp.test/jwks").json() == idp.jwks()
        with Bridge.from_dict(idp.bridge_config(), clock=clock) as bridge:  # its own client
            assert bridge.verify(idp.mint(sub="u1")).subject == "u1"
        with pytest.raises(httpx.ConnectError, match=re.escape("no MockIdP serves https://elsewhere.test")):
            httpx.get("https://elsewhere.test/")
    assert not idp.installed_now


def test_with_blocks_nest(clock: FrozenClock) -> None:
    outer = MockIdP("https://outer.test", clock=clock)
    inner = MockIdP("https://inner.test", clock=clock)
    bystander = MockIdP("https://bystander.test", clock=clock)  # never installed: served on loopback
    with bystander.serve() as url:
        with outer:
            with pytest.raises(httpx.ConnectError, match="no MockIdP serves"):
                httpx.get(url + "/jwks")  # loopback is off too while mocks are installed
            with inner, outer.installed():
                assert httpx.get("https://inner.test/jwks").json() == inner.jwks()
                assert httpx.get("https://outer.test/jwks").json() == outer.jwks()
            assert outer.installed_now and not inner.installed_now
            assert httpx.get("https://outer.test/jwks").status_code == 200
            with pytest.raises(httpx.ConnectError):
                httpx.get("https://inner.test/jwks")
        # all mocks gone: httpx reaches the real loopback server again
        assert httpx.get(url + "/jwks").json() == bystander.jwks()
    assert len(inner.requests) == 1 and len(outer.requests) == 2 and len(bystander.requests) == 1


# -- the loopback server ---------------------------------------------------------------------------


def test_loopback_server_with_a_real_bridge(idp: MockIdP) -> None:
    with idp.serve() as url:
        assert url.startswith("http://127.0.0.1:") and idp.url == url
        assert fetch_json(url + "/jwks") == idp.jwks()
        doc = fetch_json(url + "/.well-known/openid-configuration")
        assert doc["issuer"] == "https://idp.test"  # the issuer tokens carry
        assert doc["jwks_uri"] == url + "/jwks"  # where the keys really are
        config = idp.bridge_config(served=True)
        assert config["keys"] == {"allow_loopback_http": True}
        assert config["issuers"][0]["jwks_uri"] == url + "/jwks"
        with idp.bridge(served=True) as bridge:  # the bridge's own httpx client, real HTTP
            assert bridge.verify(idp.mint(sub="u1")).subject == "u1"
            assert asyncio.run(bridge.averify(idp.mint(sub="u2", alg="ES256"))).subject == "u2"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + "/nothing-here", timeout=5)
        assert caught.value.code == 404
        with pytest.raises(RuntimeError, match="already serving"), idp.serve():
            pass
        with pytest.raises(ValueError, match="as_issuer"):
            idp.bridge_config(discovery=True, served=True)
    assert idp.url is None
    assert {str(r.url) for r in idp.requests_to("jwks")} == {url + "/jwks"}
    assert len(idp.requests_to("discovery")) == 1
    with pytest.raises(httpx.ConnectError):  # the server is gone
        httpx.get(url + "/jwks")


def test_loopback_server_outages_and_rotation(idp: MockIdP, clock: FrozenClock) -> None:
    with idp.serve() as url:
        idp.outage(status=502)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + "/jwks", timeout=5)
        assert caught.value.code == 502
        idp.outage(body=b"garbage")
        with urllib.request.urlopen(url + "/jwks", timeout=5) as response:
            assert response.read() == b"garbage"
        idp.outage(timeout=True)
        config = idp.bridge_config(served=True, keys={"timeout": 0.2})
        with Bridge.from_dict(config, clock=clock) as bridge:
            with pytest.raises(KeySetUnavailable) as unavailable:
                bridge.verify(idp.mint())
            assert unavailable.value.reason == "timeout"
            idp.recover()
            clock.advance(31)
            assert bridge.verify(idp.mint(sub="back")).subject == "back"
            new = idp.rotate_keys(keep_old=False)
            clock.advance(31)
            assert bridge.verify(idp.mint()).key_id == new.kid
    assert len(idp.requests_to("jwks")) == 5


def test_loopback_server_as_the_issuer(idp: MockIdP) -> None:
    with idp.serve(as_issuer=True) as url:
        assert idp.issuer == url and idp.jwks_uri == url + "/jwks"
        assert decode(idp.mint())[1]["iss"] == url
        doc = fetch_json(url + "/.well-known/openid-configuration")
        assert (doc["issuer"], doc["jwks_uri"]) == (url, url + "/jwks")
        with Bridge.from_dict(idp.bridge_config(discovery=True), clock=idp.clock) as bridge:
            assert bridge.verify(idp.mint(sub="u1")).issuer == url
        with idp.bridge(discovery=True) as in_memory:  # the mock transport answers the loopback URL too
            assert in_memory.verify(idp.mint(sub="u2")).subject == "u2"
    assert idp.issuer == "https://idp.test" and idp.jwks_uri == "https://idp.test/jwks"
    assert len(idp.requests_to("discovery")) == 3


def test_close_undoes_everything(clock: FrozenClock) -> None:
    idp = MockIdP(clock=clock)
    idp.__enter__()
    server = idp.serve()
    url = server.__enter__()
    client = idp.client()
    idp.close()
    assert not idp.installed_now and idp.url is None and client.is_closed
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/jwks")
    server.__exit__(None, None, None)
    idp.close()  # twice is fine


# -- provider claim shapes -----------------------------------------------------------------------------


def test_the_generic_shape_is_registered() -> None:
    assert "oidc" in registered_providers()
    idp = MockIdP.for_provider("oidc", issuer="https://o.test", audience="app")
    assert (idp.provider, idp.shape.name, idp.issuer) == ("oidc", "oidc", "https://o.test")
    with pytest.raises(LookupError, match="no claim shape for provider 'nosuch'"):
        MockIdP.for_provider("nosuch")
    with pytest.raises(LookupError):
        provider_shape("../etc")
    assert MockIdP(provider="nosuch").shape is provider_shape("oidc")  # labels only


def _acme_claims(idp: MockIdP, kind: str, now: int) -> dict[str, Any]:
    tenant = idp.provider_params["tenant"]
    claims: dict[str, Any] = {"iss": idp.issuer, "sub": "acme|42", "aud": idp.audience, "acme:tenant": tenant}
    if kind == "access":
        claims["scp"] = "api.read"
    return claims


ACME = ProviderShape(
    "acme",
    claims=_acme_claims,
    setup=lambda tenant, app_id="acme-app", **rest: {
        "issuer": f"https://{tenant}.acme.test",
        "audience": app_id,
        "jwks_path": "/keys.json",
        **rest,
    },
    headers=lambda idp, kind: {"typ": "at+jwt"} if kind == "access" else {},
    issuer_config=lambda idp, entry: {**entry, "provider": "oidc"},  # no 'acme' profile exists
)


def test_a_registered_shape_drives_for_provider(clock: FrozenClock) -> None:
    register_provider(ACME)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_provider(ProviderShape("acme", claims=_acme_claims))
        idp = MockIdP.for_provider("acme", tenant="blue", clock=clock)
        assert (idp.issuer, idp.audience, idp.jwks_uri) == (
            "https://blue.acme.test",
            "acme-app",
            "https://blue.acme.test/keys.json",
        )
        assert idp.provider == "acme" and idp.provider_params == {"tenant": "blue", "clock": clock}
        _, claims = decode(idp.mint(expired=True))
        assert claims["acme:tenant"] == "blue" and claims["exp"] == int(clock()) - 600
        with idp.bridge() as bridge:
            vt = bridge.verify(idp.mint())
            assert (vt.subject, vt.claims["acme:tenant"]) == ("acme|42", "blue")
            assert bridge.verify(idp.mint(token_type="access")).token_type == "access"
    finally:
        unregister_provider("acme")
    assert "acme" not in registered_providers()
    with pytest.raises(ValueError, match="must match"):
        register_provider(ProviderShape("Bad Name", claims=_acme_claims))


def test_with_mock_idp_without_respx_names_the_testing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # Outside the fixture too: 'with idp:' is the same install and says the same.
    import sys

    from federation.testing import MockIdP

    monkeypatch.setitem(sys.modules, "respx", None)
    idp = MockIdP(issuer="https://idp.test", audience="my-client")
    with pytest.raises(RuntimeError, match=r"pip install 'federation-bridge\[testing\]'"):
        idp.__enter__()


def test_a_mock_bridge_keeps_its_users_and_sessions_in_memory(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock
) -> None:
    """idp.bridge() writes no federation.db where the tests run, and no bridge sees another's
    users; a config naming storage:, or store=, is used as given."""
    monkeypatch.chdir(tmp_path)
    idp = MockIdP(clock=clock)
    sessions = {"issuer": "https://app.example.test", "keys": [{"env": "SESSION_KEY"}]}
    environ = {"SESSION_KEY": generate_private_key_pem("ES256").decode()}
    one = idp.bridge(config=idp.bridge_config(sessions=sessions), environ=environ)
    two = idp.bridge(config=idp.bridge_config(sessions=sessions), environ=environ)
    assert one.exchange(idp.mint(sub="ada")).user is not None
    assert one.store.find_login(idp.issuer, "ada") is not None
    assert two.store.find_login(idp.issuer, "ada") is None
    assert list(tmp_path.iterdir()) == []
    on_disk = idp.bridge(config={**idp.bridge_config(), "storage": "sqlite:///users.db"})
    on_disk.login(idp.mint(sub="ada"))
    on_disk.close()
    assert (tmp_path / "users.db").is_file()
