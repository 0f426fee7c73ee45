"""The Django tests: settings configured here, before pytest-django sets Django up.

``postgres`` is a second database alias when PostgreSQL answers; tests parametrised over
``DATABASES`` (the ``database`` fixture) skip PostgreSQL with the reason on a laptop
without it, and fail under ``FEDERATION_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import django
import pytest
from django.conf import settings
from django_settings import POSTGRES_URL, postgres_database
from django_settings import settings as test_settings

REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"


def _postgres_problem() -> str | None:
    import psycopg

    entry = postgres_database()
    try:
        with psycopg.connect(
            host=entry["HOST"],
            port=entry["PORT"],
            user=entry["USER"],
            password=entry["PASSWORD"] or None,
            dbname=entry["NAME"],
            connect_timeout=3,
        ):
            return None
    except Exception as exc:  # any failure to reach the server
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__})"


POSTGRES_PROBLEM = _postgres_problem()

if not settings.configured:
    settings.configure(**test_settings(with_postgres=POSTGRES_PROBLEM is None))
    django.setup()

#: The database aliases every store test runs on.
DATABASES = ["default", "postgres"]


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    """A database alias: ``default`` (SQLite) or ``postgres``."""
    alias: str = request.param
    if alias == "postgres" and POSTGRES_PROBLEM is not None:
        if REQUIRE_SERVICES:
            pytest.fail(POSTGRES_PROBLEM + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(POSTGRES_PROBLEM)
    return alias


@pytest.fixture(autouse=True)
def _fresh_bridge() -> Iterator[None]:
    """Every test starts without the process's bridge (settings.FEDERATION changes per test)."""
    from federation.django import reset_bridge

    reset_bridge()
    yield
    reset_bridge()
