"""``settings.FEDERATION`` and the process's one bridge.

Owns: reading the setting (:func:`federation_settings`), building the bridge
on first use with a :class:`~federation.django.store.DjangoStore` and its
session tables (:func:`get_bridge`), and dropping it when a test changes the
setting (:func:`reset_bridge`, on Django's ``setting_changed``).

The setting::

    FEDERATION = {
        "config": BASE_DIR / "federation.yaml",  # or the same shape inline, as a dict
        "database": "default",                   # the database alias of the users and sessions
        "staff_roles": ["staff"],                # roles that make is_staff true (roles.privileged only)
        "superuser_roles": ["admin"],            # roles that make is_superuser true (likewise)
        "user_fields": ["first_name", "last_name"],  # mapped attributes copied to user columns
    }

``environ`` (a mapping) replaces ``os.environ`` for ``{env: NAME}`` entries;
``bridge_options`` go to :class:`~federation.Bridge` as they are (a test's
``http_client`` and ``clock``).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..bridge import Bridge
    from ..web import Guard

__all__ = ["FederationSettings", "federation_settings", "get_bridge", "get_guard", "reset_bridge"]

_KNOWN = frozenset(
    {"config", "database", "staff_roles", "superuser_roles", "user_fields", "environ", "bridge_options"}
)
#: User-model columns a mapped attribute may never be copied to: who may do what, and the keys
#: (with the user model's own username, email and primary-key fields, see _key_fields).
PROTECTED_FIELDS = frozenset(
    {
        "id",
        "password",
        "is_active",
        "is_staff",
        "is_superuser",
        "last_login",
        "date_joined",
        "groups",
        "user_permissions",
    }
)


@dataclass(frozen=True)
class FederationSettings:
    """``settings.FEDERATION``, checked."""

    config: str | Path | Mapping[str, Any]
    database: str = "default"
    staff_roles: frozenset[str] = frozenset()
    superuser_roles: frozenset[str] = frozenset()
    user_fields: tuple[str, ...] = ("first_name", "last_name")
    environ: Mapping[str, str] | None = None
    bridge_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flags(self) -> dict[str, frozenset[str]]:
        """The privilege flags the roles decide (a flag with no role listed is never touched)."""
        flags = {"is_staff": self.staff_roles, "is_superuser": self.superuser_roles}
        return {name: roles for name, roles in flags.items() if roles}


def _key_fields() -> frozenset[str]:
    """The user model's fields the store writes itself: the unique username it derives at
    creation, the email (the mapping's ``email``, not an attribute) and the primary key."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    return frozenset({model.USERNAME_FIELD, model.get_email_field_name(), model._meta.pk.name})


def _roles(value: object, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if (
        isinstance(value, str)
        or not isinstance(value, Collection)
        or not all(isinstance(r, str) for r in value)
    ):
        raise ConfigError(f"FEDERATION[{name!r}] must be a list of role names", field=name)
    return frozenset(value)


def federation_settings() -> FederationSettings:
    """``settings.FEDERATION`` as :class:`FederationSettings`; a :class:`~federation.errors.ConfigError`
    names the key that is wrong."""
    raw = getattr(settings, "FEDERATION", None)
    if not isinstance(raw, Mapping) or "config" not in raw:
        raise ConfigError(
            'settings.FEDERATION must be a dict with "config": the path of federation.yaml, or its content',
            field="FEDERATION",
        )
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ConfigError(f"settings.FEDERATION has unknown keys: {', '.join(unknown)}", field="FEDERATION")
    config = raw["config"]
    if not isinstance(config, (str, Path, Mapping)):
        raise ConfigError('FEDERATION["config"] must be a path or a dict', field="config")
    database = raw.get("database", "default")
    if not isinstance(database, str) or database not in settings.DATABASES:
        raise ConfigError('FEDERATION["database"] must name an entry of DATABASES', field="database")
    fields = raw.get("user_fields", ("first_name", "last_name"))
    if not isinstance(fields, (list, tuple)) or not all(isinstance(f, str) for f in fields):
        raise ConfigError('FEDERATION["user_fields"] must be a list of field names', field="user_fields")
    refused = sorted(set(fields) & (PROTECTED_FIELDS | _key_fields()))
    if refused:
        raise ConfigError(
            f'FEDERATION["user_fields"] may not name {", ".join(refused)}: roles and the store decide those',
            field="user_fields",
        )
    environ = raw.get("environ")
    options = raw.get("bridge_options") or {}
    if not isinstance(options, Mapping) or (environ is not None and not isinstance(environ, Mapping)):
        raise ConfigError('FEDERATION["bridge_options"] and ["environ"] must be dicts', field="FEDERATION")
    return FederationSettings(
        config=config,
        database=database,
        staff_roles=_roles(raw.get("staff_roles"), "staff_roles"),
        superuser_roles=_roles(raw.get("superuser_roles"), "superuser_roles"),
        user_fields=tuple(fields),
        environ=environ,
        bridge_options=dict(options),
    )


_lock = threading.Lock()
_bridge: Bridge | None = None
_guard: Guard | None = None


def build_bridge(options: FederationSettings) -> Bridge:
    """A new bridge over Django's database, as ``options`` say (:func:`get_bridge` shares one)."""
    from ..bridge import Bridge
    from ..config import load_config
    from .store import DjangoStore

    config = load_config(options.config)
    if config.storage is not None:
        raise ConfigError(
            "storage: is not used under Django: users live in AUTH_USER_MODEL, sessions in the "
            'federation app\'s tables (FEDERATION["database"] picks the database); remove storage:',
            field="storage",
        )
    if config.local_accounts is not None:
        raise ConfigError(
            "local_accounts: is not used under Django: Django's ModelBackend keeps the password accounts",
            field="local_accounts",
        )
    store = DjangoStore(using=options.database, flags=options.flags, user_fields=options.user_fields)
    # Sessions live beside the users (every worker shares the database), unless the config
    # names a Redis revocation store: that one is shared by every worker too.
    redis = config.sessions is not None and config.sessions.revocation.startswith(("redis://", "rediss://"))
    bridge = Bridge(
        config,
        store=store,
        session_store=None if redis else store.session_store(),
        environ=options.environ,
        **dict(options.bridge_options),
    )
    privileged: frozenset[str] = getattr(bridge._mapping, "privileged_roles", frozenset())
    for flag, roles in options.flags.items():
        loose = sorted(roles - privileged)
        if loose:
            bridge.close()
            raise ConfigError(
                f"{', '.join(loose)} would make users {flag} but the mapping does not list them in "
                "roles.privileged: only rules with allow_privileged may grant them",
                field="staff_roles" if flag == "is_staff" else "superuser_roles",
            )
    return bridge


def get_bridge() -> Bridge:
    """The process's bridge (built once, on first use; thread-safe)."""
    global _bridge
    bridge = _bridge
    if bridge is None:
        with _lock:
            bridge = _bridge
            if bridge is None:
                bridge = _bridge = build_bridge(federation_settings())
    return bridge


def get_guard() -> Guard:
    """Who a request is, by the web layer's rules (:class:`~federation.web.Guard`) over the
    process's bridge: bearer tokens always; the bridge's session cookie when ``web:`` is set."""
    global _guard
    guard = _guard
    if guard is None or guard.bridge is not _bridge:
        from ..web import Guard, WebSettings

        bridge = get_bridge()
        settings_ = (
            WebSettings.load(bridge, environ=federation_settings().environ) if bridge.config.web else None
        )
        guard = _guard = Guard(bridge, settings_)
    return guard


def reset_bridge() -> None:
    """Close and forget the process's bridge (the next :func:`get_bridge` reads the settings again)."""
    global _bridge, _guard
    with _lock:
        bridge, _bridge, _guard = _bridge, None, None
    if bridge is not None:
        bridge.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("FEDERATION", "DATABASES", "AUTH_USER_MODEL"):
        reset_bridge()


setting_changed.connect(_on_setting_changed, dispatch_uid="federation.django.conf")
