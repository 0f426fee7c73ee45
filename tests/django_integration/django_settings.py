"""Django settings of the in-process Django tests (configured by conftest.py).

Two databases: ``default`` is SQLite in a file (threads of the concurrency tests need a
shared database, not SQLite's per-connection memory), ``postgres`` the machine's
PostgreSQL when it answers (``FEDERATION_TEST_POSTGRES_URL``). pytest-django creates and
drops ``test_*`` databases for both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

POSTGRES_URL = os.environ.get(
    "FEDERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SQLITE_DIR = Path(tempfile.mkdtemp(prefix="federation-django-"))


def postgres_database() -> dict[str, Any]:
    """Django's DATABASES entry for POSTGRES_URL."""
    url = urlsplit(POSTGRES_URL)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/") or "test",
        "USER": url.username or "postgres",
        "PASSWORD": url.password or "",
        "HOST": url.hostname or "127.0.0.1",
        "PORT": str(url.port or 5432),
        "TEST": {"NAME": "test_federation_django"},
    }


def settings(*, with_postgres: bool) -> dict[str, Any]:
    """The settings for ``django.conf.settings.configure``."""
    databases: dict[str, Any] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_DIR / "default.sqlite3"),
            "TEST": {"NAME": str(SQLITE_DIR / "test_default.sqlite3")},
            "OPTIONS": {"timeout": 20},
        }
    }
    if with_postgres:
        databases["postgres"] = postgres_database()
    return {
        "DEBUG": False,
        "SECRET_KEY": "federation-tests-only-" + "x" * 40,
        "ALLOWED_HOSTS": ["testserver", "app.example.test", "127.0.0.1", "localhost"],
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "rest_framework",
            "federation.django",
        ],
        "MIDDLEWARE": [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "federation.django.middleware.FederationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        "AUTHENTICATION_BACKENDS": [
            "federation.django.backends.FederationBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "ROOT_URLCONF": "django_urls",
        "DATABASES": databases,
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        # Each test sets FEDERATION (a MockIdP config) through the ``federation_settings`` fixture.
        "FEDERATION": {"config": {"issuers": []}},
    }
