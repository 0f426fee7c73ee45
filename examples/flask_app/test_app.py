"""Testing the login code of examples/flask_app with federation's toolkit.

The ``mock_idp`` and ``federation_clock`` fixtures come from the pytest plugin
installed with federation-bridge: no conftest, no network.
"""

from __future__ import annotations

from app import create_app

from federation.testing import FrozenClock
from federation.testing.pytest_plugin import MockIdPFactory


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_accepts_a_valid_token_and_rejects_an_expired_one(mock_idp: MockIdPFactory) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-api")
    client = create_app(idp.bridge_config()).test_client()
    ok = client.get("/me", headers=bearer(idp.mint(sub="ada", email="ada@example.com")))
    assert ok.status_code == 200 and ok.json["sub"] == "ada"
    expired = client.get("/me", headers=bearer(idp.mint(sub="ada", expired=True)))
    assert expired.status_code == 401 and expired.json == {"error": "expired"}


def test_missing_or_foreign_tokens_are_refused(mock_idp: MockIdPFactory) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-api")
    client = create_app(idp.bridge_config()).test_client()
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers=bearer(idp.mint(aud="another-app"))).json == {
        "error": "invalid_audience"
    }
    forger = mock_idp(issuer="https://login.example.test", audience="my-api", install=False)
    assert client.get("/me", headers=bearer(forger.mint(kid=idp.key_for().kid))).json == {
        "error": "bad_signature"
    }


def test_key_rotation_is_picked_up(mock_idp: MockIdPFactory, federation_clock: FrozenClock) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-api", clock=federation_clock)
    client = create_app(idp.bridge_config(), clock=federation_clock).test_client()
    assert client.get("/me", headers=bearer(idp.mint())).status_code == 200
    federation_clock.advance(31)  # past the bridge's refetch cooldown (keys.refresh_cooldown)
    idp.rotate_keys(keep_old=False)
    assert client.get("/me", headers=bearer(idp.mint(sub="bob"))).json["sub"] == "bob"
    assert len(idp.requests_to("jwks")) == 2  # the new kid caused exactly one refetch


def test_issuer_outage_is_a_503_not_a_401(mock_idp: MockIdPFactory, federation_clock: FrozenClock) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-api", clock=federation_clock)
    client = create_app(idp.bridge_config(), clock=federation_clock).test_client()
    idp.outage(status=500)
    down = client.get("/me", headers=bearer(idp.mint()))
    assert down.status_code == 503 and down.headers["Retry-After"] == "30"
    idp.recover()
    federation_clock.advance(31)  # failed fetches are retried at most once per cooldown
    assert client.get("/me", headers=bearer(idp.mint())).status_code == 200


def test_time_travel_with_a_frozen_clock(mock_idp: MockIdPFactory, federation_clock: FrozenClock) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-api", clock=federation_clock)
    client = create_app(idp.bridge_config(), clock=federation_clock).test_client()
    token = idp.mint(lifetime=3600)
    assert client.get("/me", headers=bearer(token)).status_code == 200
    federation_clock.advance(3600 + 61)  # past exp and the default 60 s leeway
    assert client.get("/me", headers=bearer(token)).json == {"error": "expired"}
