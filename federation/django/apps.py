"""The Django application ``federation.django`` (app label ``federation``)."""

from __future__ import annotations

from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Models of federated identities and sessions, the system checks, ``federation_check``."""

    name = "federation.django"
    label = "federation"
    verbose_name = "Federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
