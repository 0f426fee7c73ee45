"""The parsed-header cache: a speed-up that must never change an outcome."""

from __future__ import annotations

import pytest

from federation import Bridge
from federation._rfc7515 import _HEADER_CACHE_SIZE
from federation.errors import BadSignature, MalformedToken
from federation.testing import MockIdP


def test_same_header_different_signature_is_still_checked(idp: MockIdP, bridge: Bridge) -> None:
    good = idp.mint(sub="a")
    bridge.verify(good)  # the header is now cached
    forged = idp.mint(sub="b", key=MockIdP(issuer="https://other.test").key_for())
    forged = good.split(".")[0] + "." + forged.split(".", 1)[1]  # same header segment, other signer
    with pytest.raises(BadSignature):
        bridge.verify(forged)


def test_cached_header_is_shared_read_only(idp: MockIdP, bridge: Bridge) -> None:
    first = bridge.verify(idp.mint(sub="a"))
    second = bridge.verify(idp.mint(sub="b"))
    assert first.header == second.header
    with pytest.raises(TypeError):
        first.header["alg"] = "none"  # type: ignore[index]


def test_cache_is_bounded_and_bad_headers_are_never_cached(idp: MockIdP, bridge: Bridge) -> None:
    cache = bridge._verifier._header_cache
    for i in range(3 * _HEADER_CACHE_SIZE):
        bridge.verify(idp.mint(headers={"x-n": i}))
        assert len(cache) <= _HEADER_CACHE_SIZE
    malformed = idp.mint(headers={"crit": ["exp"]})
    for _ in range(2):  # refused every time: a refused header is not remembered
        with pytest.raises(MalformedToken):
            bridge.verify(malformed)
    assert all("crit" not in header for header, _, _ in cache.values())


def test_dynamic_routes_are_reused_and_bounded() -> None:
    from typing import Any

    from federation.providers.oidc import OidcIssuerConfig

    from federation._rfc7515 import Limits
    from federation._verify import _DYNAMIC_ROUTES, Verifier

    class AnyTenant(OidcIssuerConfig):  # a profile whose issuers cannot be listed
        def matches_issuer(self, iss: str, claims: Any) -> bool:
            return iss.startswith("https://tenant-")

    verifier = Verifier([AnyTenant(issuer="https://listed.test", audiences=["a"])], Limits(), lambda: 0.0, 60)
    first = verifier.route_for("https://tenant-1.test", {})
    assert first is not None and first.issuer == "https://tenant-1.test"
    assert verifier.route_for("https://tenant-1.test", {}) is first
    assert verifier.route_for("https://elsewhere.test", {}) is None
    for i in range(3 * _DYNAMIC_ROUTES):
        assert verifier.route_for(f"https://tenant-{i}.test", {}) is not None
        assert len(verifier._dynamic_routes) <= _DYNAMIC_ROUTES
