"""Testing examples/starlette_app with federation's toolkit (the mock_idp fixture; no network)."""

from __future__ import annotations

from typing import Any

from app import create_app
from starlette.testclient import TestClient

from federation.sessions import generate_private_key_pem
from federation.testing.pytest_plugin import MockIdPFactory

APP = "https://app.example.test"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
MAPPING = {
    "version": 1,
    "roles": {
        "sync": "authoritative",
        "privileged": ["admin"],
        "rules": [
            {
                "name": "ops",
                "grant": ["admin"],
                "allow_privileged": True,
                "when": {"claim": "groups", "contains": "ops"},
            }
        ],
    },
}


def client_for(mock_idp: MockIdPFactory) -> tuple[TestClient, Any]:
    idp = mock_idp(issuer="https://login.example.test", audience="my-api")
    config = idp.bridge_config(
        sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]},
        web={"public_url": APP},
        mapping=MAPPING,
    )
    environ = {"SESSION_KEY": generate_private_key_pem("ES256").decode()}
    return TestClient(create_app(config, environ=environ), base_url=APP), idp


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def exchange(client: TestClient, token: str) -> str:
    response = client.post(
        "/auth/token", data={"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": ID_TOKEN}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_an_issuer_token_is_exchanged_for_a_session(mock_idp: MockIdPFactory) -> None:
    client, idp = client_for(mock_idp)
    with client:
        session = exchange(client, idp.mint(sub="ada", email="ada@example.com", email_verified=True))
        me = client.get("/me", headers=bearer(session))
        assert me.status_code == 200
        assert me.json()["kind"] == "session"


def test_an_issuer_token_works_directly_too(mock_idp: MockIdPFactory) -> None:
    client, idp = client_for(mock_idp)
    me = client.get("/me", headers=bearer(idp.mint(sub="ada")))
    assert me.status_code == 200
    assert me.json()["kind"] == "external"


def test_no_token_is_401(mock_idp: MockIdPFactory) -> None:
    client, _ = client_for(mock_idp)
    response = client.get("/me")
    assert response.status_code == 401
    # Anonymous: federation's requires() answers in the one error shape, with the challenge.
    assert response.json()["error"] == "missing_token"
    assert response.headers["www-authenticate"] == 'Bearer realm="federation"'


def test_roles_come_from_the_mapping(mock_idp: MockIdPFactory) -> None:
    client, idp = client_for(mock_idp)
    plain = exchange(client, idp.mint(sub="ada"))
    assert client.get("/admin", headers=bearer(plain)).status_code == 403
    ops = exchange(client, idp.mint(sub="grace", groups=["ops"]))
    assert client.get("/admin", headers=bearer(ops)).json() == {
        "admin": client.get("/me", headers=bearer(ops)).json()["user"]
    }


def test_a_revoked_session_is_refused_at_once(mock_idp: MockIdPFactory) -> None:
    client, idp = client_for(mock_idp)
    session = exchange(client, idp.mint(sub="ada"))
    assert client.get("/me", headers=bearer(session)).status_code == 200
    assert client.post("/auth/revoke", data={"token": session}).status_code == 200
    refused = client.get("/me", headers=bearer(session))
    assert refused.status_code == 401
    assert refused.json()["error"] == "revoked"
    assert refused.headers["www-authenticate"].startswith("Bearer")


def test_a_bad_token_is_answered_in_the_one_error_shape(mock_idp: MockIdPFactory) -> None:
    client, idp = client_for(mock_idp)
    token = idp.mint(sub="ada")
    response = client.get("/me", headers=bearer(token[:-4] + "AAAA"))
    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    assert token not in response.text
