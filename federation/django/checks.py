"""System checks (``manage.py check``) for the mistakes a federation setup makes most.

Owns: ``federation.E001`` (no usable ``FEDERATION`` setting or config),
``E002`` (the backend is not in ``AUTHENTICATION_BACKENDS``), ``E003`` (the
middleware before Django's ``AuthenticationMiddleware``, which would then
replace the token's user with the session's), ``W001`` (the middleware not
listed: bearer tokens work only through DRF), ``W002`` (``USE_TZ`` off),
``W003`` (SQLite without ``"transaction_mode": "IMMEDIATE"``, Django 5.1 and
later: concurrent logins then retry on "database is locked").
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings
from django.core import checks

from ..errors import ConfigError

__all__ = ["check_settings"]

BACKEND = "federation.django.backends.FederationBackend"
MIDDLEWARE = "federation.django.middleware.FederationMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


@checks.register(checks.Tags.security, "federation")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The findings on the current settings."""
    found: list[checks.CheckMessage] = []
    try:
        from .conf import build_bridge, federation_settings

        options = federation_settings()
        bridge = build_bridge(options)  # the mapping, the roles, the keys: what start-up refuses
        try:
            bridge.preflight(environ=options.environ)
        finally:
            bridge.close()
    except ConfigError as exc:
        found.append(
            checks.Error(
                f"the federation configuration is not usable: {exc}",
                hint='FEDERATION = {"config": BASE_DIR / "federation.yaml"}; see manage.py federation_check',
                id="federation.E001",
            )
        )
    if BACKEND not in getattr(settings, "AUTHENTICATION_BACKENDS", ()):
        found.append(
            checks.Error(
                f"{BACKEND} is not in AUTHENTICATION_BACKENDS: "
                "signed-in users are logged out on their next request",
                hint="add it (keep django.contrib.auth.backends.ModelBackend for password accounts)",
                id="federation.E002",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", ()))
    if MIDDLEWARE not in middleware:
        found.append(
            checks.Warning(
                f"{MIDDLEWARE} is not in MIDDLEWARE: "
                "bearer tokens are read only by DRF's FederationAuthentication",
                id="federation.W001",
            )
        )
    elif AUTH_MIDDLEWARE not in middleware or middleware.index(MIDDLEWARE) < middleware.index(
        AUTH_MIDDLEWARE
    ):
        found.append(
            checks.Error(
                f"{MIDDLEWARE} must come after {AUTH_MIDDLEWARE}",
                hint="otherwise Django's session user replaces the token's user",
                id="federation.E003",
            )
        )
    if not settings.USE_TZ:
        found.append(
            checks.Warning(
                "USE_TZ is off: token and session times are kept as naive local time",
                hint="set USE_TZ = True",
                id="federation.W002",
            )
        )
    for alias, database in settings.DATABASES.items():
        engine = str(database.get("ENGINE", ""))
        mode = (database.get("OPTIONS") or {}).get("transaction_mode")
        if engine.endswith("sqlite3") and django.VERSION >= (5, 1) and str(mode).upper() != "IMMEDIATE":
            found.append(
                checks.Warning(
                    f"DATABASES[{alias!r}] is SQLite without transaction_mode IMMEDIATE",
                    hint='add "OPTIONS": {"transaction_mode": "IMMEDIATE"}: concurrent logins then wait '
                    "for the write lock instead of retrying",
                    id="federation.W003",
                )
            )
    return found
