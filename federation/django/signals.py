"""Tokens follow the user model: a user disabled or deleted in Django is refused at once.

Owns: the receivers that call :meth:`~federation.Bridge.revoke_user` when a
user's ``is_active`` goes from true to false (the admin's checkbox, a
``save()`` of the application's own) or the user is deleted. The bridge's
per-request status check would refuse them within ``sessions.user_check``
seconds anyway; revoking closes that window. A revocation that fails raises:
the save it belongs to fails rather than leave the user's tokens working.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_init, post_save

__all__ = ["connect"]

_WAS_ACTIVE = "_federation_was_active"


def _remember(sender: Any, instance: Any, **kwargs: Any) -> None:
    # The loaded value only: reading a field that .only()/.defer() left out is one query
    # per row. Unknown (deferred) counts as active at the save.
    instance.__dict__[_WAS_ACTIVE] = instance.__dict__.get("is_active", True)


def _saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    active = getattr(instance, "is_active", True)
    was_active = instance.__dict__.get(_WAS_ACTIVE, True)
    instance.__dict__[_WAS_ACTIVE] = active
    if not created and was_active and not active:
        _revoke(instance, "disabled")


def _deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    _revoke(instance, "deleted")


def _revoke(instance: Any, reason: str) -> None:
    if not _configured():
        return
    from .conf import get_bridge

    get_bridge().revoke_user(str(instance.pk), reason=reason)


def _configured() -> bool:
    return isinstance(getattr(settings, "FEDERATION", None), dict)


def connect() -> None:
    """Connect the receivers to ``AUTH_USER_MODEL`` (called by the app's ``ready()``)."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    post_init.connect(_remember, sender=model, dispatch_uid="federation.django.remember")
    post_save.connect(_saved, sender=model, dispatch_uid="federation.django.saved")
    post_delete.connect(_deleted, sender=model, dispatch_uid="federation.django.deleted")
