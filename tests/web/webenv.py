"""The web tests' environment: a mock issuer with a sign-in client, a bridge with sessions
and a ``web:`` section, and the login service behind Starlette's test client.

The service is reached as ``https://app.example.test`` (cookies are ``Secure``: the
test client only sends them over https), the mock issuer in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from federation import Bridge
from federation.sessions import generate_private_key_pem
from federation.storage import MemoryStore
from federation.testing import FrozenClock, MockIdP
from federation.web import create_app

APP = "https://app.example.test"
CLIENT_ID = "web-client"
CLIENT_SECRET = "web-client-secret-0123456789"
REGISTRATION_KEY = "registration-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef0123456789"
#: A mapping granting the privileged ``admin`` role to members of the ``admins`` group.
ADMIN_MAPPING = {
    "version": 1,
    "roles": {
        "sync": "authoritative",
        "privileged": ["admin"],
        "rules": [
            {
                "name": "admins",
                "grant": ["admin"],
                "allow_privileged": True,
                "when": {"claim": "groups", "contains": "admins"},
            }
        ],
    },
}


@dataclass
class WebEnv:
    """One service under test and what it was built from."""

    idp: MockIdP
    bridge: Bridge
    app: Any
    client: TestClient
    clock: FrozenClock
    environ: dict[str, str]
    audit: list[Any]

    def login_token(self, sub: str = "alice", **claims: Any) -> str:
        """An external id token of the mock issuer for the service's client."""
        return self.idp.mint(sub=sub, **claims)

    def exchange(self, sub: str = "alice", **claims: Any) -> dict[str, Any]:
        """POST /token (token exchange): the JSON body."""
        response = self.client.post(
            "/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": self.login_token(sub, **claims),
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            },
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def build_env(
    clock: FrozenClock,
    *,
    web: dict[str, Any] | None = None,
    sessions: dict[str, Any] | None = None,
    local_accounts: dict[str, Any] | None = None,
    mapping: dict[str, Any] | None = None,
    base_url: str = APP,
    store: Any = None,
    issuers: list[dict[str, Any]] | None = None,
    login: dict[str, Any] | None = None,
    entry: dict[str, Any] | None = None,
    top: dict[str, Any] | None = None,
) -> WebEnv:
    """A login service over a mock issuer; ``entry`` is merged into its issuer entry and
    ``top`` into the config (``provisioning:``, ...)."""
    idp = MockIdP(audience=CLIENT_ID, clock=clock)
    idp.register_client(CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[f"{base_url}/callback/mock"])
    environ = {
        "SESSION_KEY": generate_private_key_pem("ES256").decode(),
        "REGISTRATION_KEY": REGISTRATION_KEY,
        "ADMIN_KEY": ADMIN_KEY,
        "CLIENT_SECRET": CLIENT_SECRET,
    }
    config = idp.bridge_config(
        sessions={"issuer": base_url, "keys": [{"env": "SESSION_KEY"}], **(sessions or {})},
        web={
            "public_url": base_url,
            "allowed_redirects": ["https://shop.example.test"],
            "registration_key": {"env": "REGISTRATION_KEY"},
            "admin_key": {"env": "ADMIN_KEY"},
            **(web or {}),
        },
    )
    config["issuers"][0].update(name="mock", **(entry or {}))
    config.update(top or {})
    config["issuers"][0]["login"] = {
        "client_id": CLIENT_ID,
        "client_secret": {"env": "CLIENT_SECRET"},
        **(login or {}),
    }
    config["issuers"].extend(issuers or [])  # trusted too, with no sign-in of their own
    if local_accounts is not None:
        config["local_accounts"] = local_accounts
    if mapping is not None:
        config["mapping"] = mapping
    audit: list[Any] = []
    store = store if store is not None else MemoryStore()
    bridge = idp.bridge(config=config, store=store, environ=environ, audit=audit.append)
    app = create_app(bridge, environ=environ)
    client = TestClient(app, base_url=base_url, follow_redirects=False)
    return WebEnv(idp, bridge, app, client, clock, environ, audit)
