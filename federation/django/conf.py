"""``settings.FEDERATION`` and the process's one bridge.

Keys of ``settings.FEDERATION`` (a dict):

``config``
    Path of the bridge configuration (YAML), or the configuration itself as a dict.
``privileged_roles``
    ``{"is_staff": [...roles], "is_superuser": [...roles]}``: the mapping's roles that grant
    Django's staff and superuser flags. A flag is reachable only through a role listed here;
    with no entry for a flag, federation never changes it.
``environ``
    Where ``{env: NAME}`` secrets are read (default: the process environment).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..bridge import Bridge

__all__ = ["FederationSettings", "get_bridge", "reset_bridge", "settings"]

_FLAGS = ("is_staff", "is_superuser")


@dataclass(frozen=True)
class FederationSettings:
    """``settings.FEDERATION``, checked."""

    config: Path | Mapping[str, Any]
    privileged_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    environ: Mapping[str, str] | None = None


def settings() -> FederationSettings:
    """``settings.FEDERATION`` read and checked (a ConfigError naming the key otherwise)."""
    from django.conf import settings as django_settings

    raw = getattr(django_settings, "FEDERATION", None)
    if not isinstance(raw, Mapping):
        raise ConfigError("settings.FEDERATION must be a dict with a 'config' key", field="FEDERATION")
    unknown = set(raw) - {"config", "privileged_roles", "environ"}
    if unknown:
        raise ConfigError(f"settings.FEDERATION: unknown keys {sorted(unknown)}", field="FEDERATION")
    config = raw.get("config")
    if isinstance(config, (str, Path)):
        config = Path(config)
    elif not isinstance(config, Mapping):
        raise ConfigError(
            "settings.FEDERATION['config'] must be a path to federation.yaml or a dict",
            field="FEDERATION.config",
        )
    privileged: dict[str, frozenset[str]] = {}
    roles = raw.get("privileged_roles") or {}
    if not isinstance(roles, Mapping):
        raise ConfigError("settings.FEDERATION['privileged_roles'] must be a dict", field="FEDERATION")
    for flag, names in roles.items():
        if flag not in _FLAGS:
            raise ConfigError(
                f"settings.FEDERATION['privileged_roles']: {flag!r} is not one of {list(_FLAGS)}",
                field="FEDERATION.privileged_roles",
            )
        if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(
                f"settings.FEDERATION['privileged_roles'][{flag!r}] must be a list of role names",
                field="FEDERATION.privileged_roles",
            )
        privileged[flag] = frozenset(names)
    environ = raw.get("environ")
    if environ is not None and not isinstance(environ, Mapping):
        raise ConfigError("settings.FEDERATION['environ'] must be a dict", field="FEDERATION.environ")
    return FederationSettings(config=config, privileged_roles=privileged, environ=environ)


_lock = threading.Lock()
_bridge: Bridge | None = None


def get_bridge() -> Bridge:
    """The process's bridge over the Django store, built on first use and shared."""
    global _bridge
    bridge = _bridge
    if bridge is not None:
        return bridge
    with _lock:
        if _bridge is None:
            _bridge = _build(settings())
        return _bridge


def reset_bridge() -> None:
    """Close and forget the bridge (tests, or after changing ``settings.FEDERATION``)."""
    global _bridge
    with _lock:
        bridge, _bridge = _bridge, None
    if bridge is not None:
        bridge.close()


def _build(conf: FederationSettings) -> Bridge:
    from ..bridge import Bridge
    from .store import DjangoStore

    store = DjangoStore(privileged_roles=conf.privileged_roles)
    options: dict[str, Any] = {"store": store}
    if conf.environ is not None:
        options["environ"] = conf.environ
    if isinstance(conf.config, Mapping):
        bridge = Bridge.from_dict(conf.config, **options)
    else:
        bridge = Bridge.from_file(conf.config, **options)
    if bridge.config.storage is not None:
        raise ConfigError(
            "under Django the users live in Django's database: remove storage: from the config",
            field="storage",
        )
    return bridge
