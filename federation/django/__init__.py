"""Django: a store on the project's own user model, an authentication backend, middleware,
Django REST framework classes and the sign-in views (``federation-bridge[django]``).

Add ``"federation.django"`` to ``INSTALLED_APPS`` and ``FEDERATION = {"config": ...}`` to the
settings; docs/django.md has the ten-line setup. :func:`get_bridge` is the process's one
bridge, built on first use over :class:`~federation.django.store.DjangoStore`.
"""

from __future__ import annotations

from .conf import get_bridge, reset_bridge

__all__ = ["get_bridge", "reset_bridge"]
