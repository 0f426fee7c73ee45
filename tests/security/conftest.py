"""Fixtures of the security conformance suite, and the vector-count summary.

The catalogue's reference fixtures (docs/security.md) map onto the
shared ones: ``clock`` (NOW = 1_800_000_000), ``idp`` (ISS_A = https://idp.test
with an RSA-2048 RS256 key and a P-256 ES256 key, audience CLIENT = my-client).
Attacker keys (KX) are generated once per session. Every bridge here runs on a
:class:`~security_support.Net` that records every request whatever its host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from security_support import BridgeFactory, Net
from security_vectors import VECTOR_SUMMARY

from federation import Bridge
from federation.testing import FrozenClock, MockIdP, SigningKey, generate_signing_key

_KEYS: dict[tuple[str, str], SigningKey] = {}
_real_generate = generate_signing_key


def cached_idp(namespace: str, **options: Any) -> MockIdP:
    """A MockIdP whose initial keys are generated once per (namespace, alg) per session.

    RSA-2048 generation dominates the suite's run time otherwise; each test
    still gets a fresh mock (requests, overrides, rotation are per test).
    Keys created later (``rotate_keys``, ``key_for`` a new alg) are fresh.
    """

    def generate(alg: str = "RS256", *, kid: str | None = None, rsa_bits: int = 2048) -> SigningKey:
        if kid is not None or rsa_bits != 2048:
            return _real_generate(alg, kid=kid, rsa_bits=rsa_bits)
        key = _KEYS.get((namespace, alg))
        if key is None:
            key = _KEYS[(namespace, alg)] = _real_generate(alg)
        return key

    with mock.patch("federation.testing._mockidp.generate_signing_key", generate):
        return MockIdP(**options)


@pytest.fixture
def idp(clock: FrozenClock) -> MockIdP:
    """Same as the shared ``idp`` (ISS_A: https://idp.test, RS256 + ES256, audience my-client),
    with session-cached keys."""
    return cached_idp("a", issuer="https://idp.test", audience="my-client", algorithms=["ES256"], clock=clock)


@pytest.fixture
def idp_b(clock: FrozenClock) -> MockIdP:
    """ISS_B: a second federated issuer with keys of its own (RS256 only)."""
    return cached_idp("b", issuer="https://idp-b.test", audience="my-client", clock=clock)


@pytest.fixture(scope="session")
def attacker() -> dict[str, SigningKey]:
    """KX: attacker key pairs that are in no key set (kid chosen per test)."""
    return {
        "RS256": generate_signing_key("RS256", kid="kx-rsa"),
        "ES256": generate_signing_key("ES256", kid="kx-ec"),
        "EdDSA": generate_signing_key("EdDSA", kid="kx-ed"),
    }


@pytest.fixture
def bridges(clock: FrozenClock) -> Iterator[BridgeFactory]:
    factory = BridgeFactory(clock)
    yield factory
    factory.close()


@pytest.fixture
def net(idp: MockIdP) -> Net:
    """A recording network serving ``idp``."""
    return Net(idp)


@pytest.fixture
def fresh(idp: MockIdP, net: Net, bridges: BridgeFactory) -> Callable[..., Bridge]:
    """``fresh(**issuer_overrides, top=...)``: a new bridge trusting ``idp`` on ``net``."""

    def build(*, top: dict[str, Any] | None = None, **issuer: Any) -> Bridge:
        return bridges({"issuers": [idp.issuer_config(**issuer)], **(top or {})}, net)

    return build


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the external-vector counts so the CI log shows them."""
    if not VECTOR_SUMMARY:
        return
    tr = terminalreporter
    tr.section("security vectors (Wycheproof + RFC 7520)")
    for line in VECTOR_SUMMARY.get("lines", []):
        tr.write_line(line)
