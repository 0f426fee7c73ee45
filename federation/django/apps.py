"""The Django app of federation-bridge (label ``federation``)."""

from __future__ import annotations

from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Registers the models, the system checks and the signals that revoke a disabled user's tokens."""

    name = "federation.django"
    label = "federation"
    verbose_name = "Federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401 - registering is importing

        signals.connect()
