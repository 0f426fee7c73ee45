"""Django integration: the bridge over Django's own users, sessions and admin (docs/django.md).

Add ``"federation.django"`` to ``INSTALLED_APPS``, the backend
(:class:`~federation.django.backends.FederationBackend`) to
``AUTHENTICATION_BACKENDS``, the middleware
(:class:`~federation.django.middleware.FederationMiddleware`) after Django's
``AuthenticationMiddleware``, ``path("auth/", include("federation.django.urls"))``,
and ``FEDERATION = {"config": BASE_DIR / "federation.yaml"}`` to the settings.

Importing this package imports nothing of Django; its modules do.
"""

from __future__ import annotations

__all__ = ["get_bridge", "reset_bridge"]

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bridge import Bridge


def get_bridge() -> Bridge:
    """The process's bridge, built from ``settings.FEDERATION`` on first use (see :mod:`.conf`)."""
    from .conf import get_bridge as build

    return build()


def reset_bridge() -> None:
    """Close the process's bridge; the next :func:`get_bridge` builds it anew from the settings."""
    from .conf import reset_bridge as reset

    reset()
