"""FETCH-01..05: routing, discovery, redirects, unsafe key URLs, TLS (catalogue: docs/security.md).

FETCH-06..11 (size/time caps, unknown-kid flood, rotation, cache headers,
fail-closed, verified-token cache) are covered by the key cache tests
(tests/test_key_cache*.py, tests/test_key_fetch_http.py); the resource bounds
of a fetch are also unit-tested in test_sec_bounds.py.

Catalogue class -> ours: InvalidIssuer -> UntrustedIssuer; JWKSUnavailable ->
KeySetUnavailable (``keyset_unavailable``, a 503, not an InvalidToken); its
``reason`` names the fetch failure.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from security_support import BridgeFactory, Net, base_claims, expect_reject, hdr, signed

from federation import Bridge
from federation.errors import ConfigError, KeySetUnavailable, UntrustedIssuer
from federation.testing import MockIdP, SigningKey

Fresh = Callable[..., Bridge]


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


@pytest.mark.parametrize("discovery", [False, True], ids=["jwks_uri", "discovery"])
def test_fetch_01_token_iss_is_never_a_fetch_target(
    fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey, discovery: bool
) -> None:
    bridge = fresh(**({} if not discovery else {"jwks_uri": None}))
    for iss in (
        "https://attacker.test",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080",
        "file:///etc/passwd",
        "https://idp.test/other-path",
        "https://idp.test/.well-known/openid-configuration",
    ):
        token = signed(hdr(rs, jku=iss + "/jwks"), base_claims(idp, iss=iss), rs)
        expect_reject(lambda t=token: bridge.verify(t), UntrustedIssuer, "untrusted_issuer")
    assert net.requests == []


def _discovery_net(idp: MockIdP, document: dict[str, Any]) -> Net:
    def extra(request: httpx.Request) -> httpx.Response | None:
        if str(request.url) == idp.discovery_url:
            return httpx.Response(200, json=document, headers={"content-type": "application/json"})
        return None

    return Net(idp, extra=extra)


@pytest.mark.parametrize(
    "issuer",
    ["https://evil.test", "https://idp.test/", "HTTPS://IDP.TEST", None, ["https://idp.test"]],
    ids=repr,
)
def test_fetch_02_discovery_issuer_mismatch(
    bridges: BridgeFactory, idp: MockIdP, rs: SigningKey, issuer: Any
) -> None:
    net = _discovery_net(idp, {"issuer": issuer, "jwks_uri": idp.jwks_uri})
    bridge = bridges({"issuers": [idp.issuer_config(discovery=True)]}, net)
    err = expect_reject(lambda: bridge.verify(signed(hdr(rs), base_claims(idp), rs)), KeySetUnavailable)
    assert err.reason == "discovery_issuer_mismatch"
    assert net.urls == [idp.discovery_url]  # no key set was loaded from the refused document


def test_fetch_02_matching_discovery_document_works(
    bridges: BridgeFactory, idp: MockIdP, rs: SigningKey
) -> None:
    net = Net(idp)
    bridge = bridges({"issuers": [idp.issuer_config(discovery=True)]}, net)
    assert bridge.verify(signed(hdr(rs), base_claims(idp), rs)).subject == "u-1"
    assert net.urls == [idp.discovery_url, idp.jwks_uri]


_TARGETS = [
    "https://attacker.test/jwks",
    "http://idp.test/jwks",
    "http://127.0.0.1/jwks",
    "https://169.254.169.254/latest/meta-data/",
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("what", ["jwks", "discovery"])
def test_fetch_03_redirects_are_not_followed(
    bridges: BridgeFactory,
    idp: MockIdP,
    rs: SigningKey,
    attacker: dict[str, SigningKey],
    status: int,
    what: str,
) -> None:
    for target in _TARGETS:
        origin_url = idp.jwks_uri if what == "jwks" else idp.discovery_url

        def extra(
            request: httpx.Request, origin_url: str = origin_url, target: str = target
        ) -> httpx.Response | None:
            if str(request.url) == origin_url:
                return httpx.Response(status, headers={"location": target})
            if request.url.host != "idp.test" or request.url.scheme != "https":
                kx = attacker["RS256"]
                return httpx.Response(200, json={"keys": [dict(kx.public_jwk, kid=rs.kid)]})
            return None

        net = Net(idp, extra=extra)
        bridge = bridges({"issuers": [idp.issuer_config(discovery=what == "discovery")]}, net)
        err = expect_reject(
            lambda b=bridge: b.verify(signed(hdr(rs), base_claims(idp), rs)), KeySetUnavailable
        )
        assert err.reason == "redirect_refused"
        assert net.urls == [origin_url], f"followed a redirect to {target}"


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://idp.test/jwks",
        "file:///etc/passwd",
        "ftp://idp.test/jwks",
        'data:application/json,{"keys":[]}',
        "//attacker.test/jwks",
        "jwks",
        "https:///jwks",
        "javascript:alert(1)",
        None,
        123,
    ],
    ids=repr,
)
def test_fetch_04_unsafe_jwks_uri_scheme_from_discovery(
    bridges: BridgeFactory, idp: MockIdP, rs: SigningKey, jwks_uri: Any
) -> None:
    net = _discovery_net(idp, {"issuer": idp.issuer, "jwks_uri": jwks_uri})
    bridge = bridges({"issuers": [idp.issuer_config(discovery=True)]}, net)
    err = expect_reject(lambda: bridge.verify(signed(hdr(rs), base_claims(idp), rs)), KeySetUnavailable)
    assert err.reason == "discovery_jwks_uri_not_https"
    assert net.urls == [idp.discovery_url]


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "https://10.0.0.5/jwks",
        "https://127.0.0.1/jwks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/jwks",
        "https://[fc00::1]/jwks",
        "https://[::ffff:127.0.0.1]/jwks",
        "https://0.0.0.0/jwks",
        "https://192.168.1.1/jwks",
        "https://localhost/jwks",
    ],
)
def test_fetch_04_private_or_loopback_jwks_uri_from_discovery(
    bridges: BridgeFactory, idp: MockIdP, rs: SigningKey, attacker: dict[str, SigningKey], jwks_uri: str
) -> None:
    """A discovery document may not point the key fetch at internal addresses (SSRF)."""
    kx = attacker["RS256"]

    def extra(request: httpx.Request) -> httpx.Response | None:
        if str(request.url) == idp.discovery_url:
            return httpx.Response(200, json={"issuer": idp.issuer, "jwks_uri": jwks_uri})
        if request.url.host != "idp.test":  # the internal service answers
            return httpx.Response(200, json={"keys": [kx.public_jwk]})
        return None

    net = Net(idp, extra=extra)
    bridge = bridges({"issuers": [idp.issuer_config(discovery=True)]}, net)
    with pytest.raises(KeySetUnavailable):
        bridge.verify(signed(hdr(kx), base_claims(idp), kx))
    assert net.urls == [idp.discovery_url], f"fetched {net.urls[1:]}"


@pytest.mark.parametrize(
    "jwks_uri", ["http://idp.test/jwks", "file:///etc/passwd", "ftp://idp.test/jwks", "http://127.0.0.1/jwks"]
)
def test_fetch_04_unsafe_configured_jwks_uri_is_a_config_error(idp: MockIdP, jwks_uri: str) -> None:
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config(jwks_uri=jwks_uri)]})


def test_fetch_04_loopback_http_only_with_the_explicit_test_flag(idp: MockIdP) -> None:
    cfg = {"issuers": [idp.issuer_config(jwks_uri="http://127.0.0.1:8080/jwks")]}
    with pytest.raises(ConfigError):
        Bridge.from_dict(cfg)
    Bridge.from_dict({**cfg, "keys": {"allow_loopback_http": True}}).close()
    with pytest.raises(ConfigError):  # the flag never opens non-loopback http
        Bridge.from_dict(
            {
                "issuers": [idp.issuer_config(jwks_uri="http://10.0.0.5/jwks")],
                "keys": {"allow_loopback_http": True},
            }
        )


@pytest.mark.parametrize(
    "message",
    [
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired",
    ],
)
def test_fetch_05_tls_failures_fail_closed(
    bridges: BridgeFactory, idp: MockIdP, rs: SigningKey, message: str
) -> None:
    def extra(request: httpx.Request) -> httpx.Response | None:
        raise httpx.ConnectError(message, request=request)

    net = Net(idp, extra=extra)
    bridge = bridges({"issuers": [idp.issuer_config()]}, net)
    err = expect_reject(lambda: bridge.verify(signed(hdr(rs), base_claims(idp), rs)), KeySetUnavailable)
    assert err.reason == "connect_failed"


@pytest.mark.parametrize(
    "keys", [{"verify": False}, {"tls_verify": False}, {"insecure": True}, {"verify_ssl": False}], ids=repr
)
def test_fetch_05_there_is_no_verify_false_option(idp: MockIdP, keys: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config()], "keys": keys})
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config(**keys)]})


def test_fetch_05_the_bridges_own_client_verifies_tls(
    monkeypatch: pytest.MonkeyPatch, idp: MockIdP, rs: SigningKey, clock: Any
) -> None:
    """When the bridge builds its own httpx client it leaves TLS verification at its default (on)."""
    created: list[dict[str, Any]] = []
    real_client = httpx.Client
    net = Net(idp)

    def recording_client(*args: Any, **kwargs: Any) -> httpx.Client:
        created.append(kwargs)
        assert not args
        return real_client(transport=net.transport())

    monkeypatch.setattr(httpx, "Client", recording_client)
    with Bridge.from_dict({"issuers": [idp.issuer_config()]}, clock=clock) as bridge:
        assert bridge.verify(signed(hdr(rs), base_claims(idp), rs)).subject == "u-1"
    assert created, "the bridge did not build its own client"
    for kwargs in created:
        assert kwargs.get("verify", True) is not False
        assert "mounts" not in kwargs
        # Issue 10: the own client's transport is the address-checking one; its TLS still verifies.
        transport = kwargs.get("transport")
        assert type(transport).__name__ == "_GuardedTransport"
        context = transport._pool._ssl_context
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
