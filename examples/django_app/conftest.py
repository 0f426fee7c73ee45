"""Fixtures for the example's tests: a mock identity provider the project's bridge trusts.

``bridge`` points ``settings.FEDERATION`` at a :class:`~federation.testing.MockIdP`
(its keys, discovery, authorization and token endpoints served in memory: no
network) with the project's own mapping; everything else is the project as
configured in ``project/settings.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from federation import Bridge
from federation.django import get_bridge, reset_bridge
from federation.sessions import generate_private_key_pem
from federation.testing import MockIdP
from federation.testing.pytest_plugin import MockIdPFactory

APP = "http://testserver"
CLIENT_ID = "my-django-app"
MAPPING = str(Path(__file__).parent / "mapping.yaml")
SESSION_KEY = generate_private_key_pem("ES256").decode()


@pytest.fixture
def idp(mock_idp: MockIdPFactory) -> MockIdP:
    """The identity provider: issuer ``https://login.example.test``, the project's client registered."""
    provider = mock_idp(issuer="https://login.example.test", audience=CLIENT_ID)
    provider.register_client(CLIENT_ID, redirect_uris=[f"{APP}/auth/callback/corp"])
    return provider


def federation_config(idp: MockIdP, **top: Any) -> dict[str, Any]:
    """The project's federation.yaml, trusting ``idp`` instead of the real provider."""
    config = idp.bridge_config(
        sessions={"issuer": APP, "keys": [{"env": "SESSION_KEY"}]},
        mapping=MAPPING,
        audit="store",
        **top,
    )
    config["issuers"][0].update(name="corp", login={"client_id": CLIENT_ID})
    return config


@pytest.fixture
def bridge(settings: Any, idp: MockIdP, transactional_db: None) -> Iterator[Bridge]:
    """The project's bridge (``federation.django.get_bridge()``) over the test database."""
    settings.FEDERATION = {
        **settings.FEDERATION,
        "config": federation_config(idp),
        "environ": {"SESSION_KEY": SESSION_KEY},
        "bridge_options": {"http_client": idp.client(), "clock": idp.clock},
    }
    yield get_bridge()
    reset_bridge()
    if connection.vendor == "postgresql":
        # Threads of a concurrency test opened connections of their own; end them so the
        # test database can be flushed and dropped.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def bearer(token: str) -> dict[str, str]:
    """Headers for the Django test client: ``Authorization: Bearer <token>``."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
