"""The example project's settings: federation-bridge in front of Django's own users.

The lines federation-bridge needs are marked ``# federation``. The database is
SQLite beside this file, or PostgreSQL when ``DATABASE_URL`` says so
(``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import django

BASE_DIR = Path(__file__).resolve().parent.parent

# Never ship this key: set DJANGO_SECRET_KEY in any real deployment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-insecure-key-" + "x" * 32)
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "federation.django",  # federation
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "federation.django.middleware.FederationMiddleware",  # federation: after AuthenticationMiddleware
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "federation.django.backends.FederationBackend",  # federation
    "django.contrib.auth.backends.ModelBackend",  # the admin's own password accounts
]

FEDERATION = {  # federation
    "config": BASE_DIR / "federation.yaml",
    "staff_roles": ["staff"],
    "superuser_roles": ["admin"],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "federation.django.drf.FederationAuthentication",  # federation
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "project.wsgi.application"


def _database(url: str) -> dict[str, object]:
    if not url:
        options: dict[str, object] = {"timeout": 20}
        if django.VERSION >= (5, 1):  # writers wait for the lock instead of deadlocking on a first write
            options["transaction_mode"] = "IMMEDIATE"
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": options,
            "TEST": {"NAME": str(BASE_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "TEST": {"NAME": f"test_federation_django_{os.getpid()}"},
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL", ""))}

LOGIN_REDIRECT_URL = "/whoami"
LOGOUT_REDIRECT_URL = "/"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
