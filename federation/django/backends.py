"""The authentication backend: ``django.contrib.auth.authenticate(request, token=...)``.

Owns: :class:`FederationBackend`. A token (an issuer's id or access token, or
one of the app's own session tokens) goes through
:meth:`~federation.Bridge.authenticate`: verified, a first-seen external token
provisioned (the user created or updated by the mapping), then the Django
user, refused when inactive. Permissions come from :class:`ModelBackend`
(groups are the mapping's roles); passwords are not this backend's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from ..errors import FederationError

__all__ = ["FederationBackend", "federated_user"]

log = logging.getLogger("federation.django")

#: The dotted path :func:`django.contrib.auth.login` records for users this backend signed in.
BACKEND = "federation.django.backends.FederationBackend"


def federated_user(user_id: str) -> Any:
    """The active Django user of a federation user id, or None (one read, no lock)."""
    from .conf import get_bridge

    store = get_bridge().store
    user_of = getattr(store, "user_of", None)
    user = user_of(user_id) if callable(user_of) else None
    return user if user is not None and getattr(user, "is_active", False) else None


class FederationBackend(ModelBackend):
    """Signs in the user of a bearer token; ModelBackend's permissions, without its passwords."""

    def authenticate(self, request: HttpRequest | None, token: str | None = None, **credentials: Any) -> Any:
        """The active user ``token`` belongs to, or None (Django's "not mine, or refused")."""
        if not token or credentials:
            return None  # a username and password: ModelBackend's, not ours
        from .conf import get_bridge

        try:
            principal = get_bridge().authenticate(token)
        except FederationError as exc:
            log.info("token refused: %s", exc.code)  # the code only: never the token
            return None
        user = federated_user(principal.user.id)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user
