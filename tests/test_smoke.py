"""The public API contract of the foundation issue, end to end."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from federation import Bridge, VerifiedToken
from federation.errors import ConfigError, FederationError, InvalidToken, KeySetUnavailable
from federation.testing import FrozenClock, MockIdP


def test_verify_returns_the_documented_fields(idp: MockIdP, bridge: Bridge, clock: FrozenClock) -> None:
    token = idp.mint(sub="u1", email="a@example.com")
    vt = bridge.verify(token)
    assert isinstance(vt, VerifiedToken)
    assert (vt.issuer, vt.subject, vt.provider, vt.token_type) == ("https://idp.test", "u1", "oidc", "id")
    assert vt.claims["email"] == "a@example.com"
    assert vt.header["alg"] == "RS256"
    assert vt.key_id == idp.key_for("RS256").kid
    assert vt.expires_at == datetime.fromtimestamp(clock() + 300, tz=timezone.utc)


def test_averify_agrees_with_verify(idp: MockIdP, bridge: Bridge) -> None:
    token = idp.mint(sub="u2", alg="ES256")
    assert asyncio.run(bridge.averify(token)).subject == bridge.verify(token).subject == "u2"


def test_error_hierarchy_is_as_documented() -> None:
    assert issubclass(InvalidToken, FederationError)
    assert issubclass(ConfigError, FederationError)
    assert issubclass(KeySetUnavailable, FederationError)
    assert not issubclass(KeySetUnavailable, InvalidToken)
    assert KeySetUnavailable("x").code == "keyset_unavailable"
