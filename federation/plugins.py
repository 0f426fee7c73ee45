"""The provider registry: which identity-provider profiles this process knows.

Owns: :class:`ProviderPlugin` (everything about one provider that the rest of
the library needs: its configuration model, its mock claim shape, its demo
parameters, its dry-run stand-in settings and its mapping vocabulary),
:class:`DemoSpec`, and the registry itself: :func:`register`, :func:`get`,
:func:`names`, :func:`plugins`, :func:`loaded`. A built-in provider's module
is imported when it is first named (:func:`get`) or when every plugin is
asked for (:func:`plugins`), so a process whose config names one provider
never imports the others. The ``federation.providers`` entry-point group is
loaded on first use of the registry, so a package outside this repository
adds a provider by declaring::

    [project.entry-points."federation.providers"]
    acme = "acme_idp:PLUGIN"

A name registered twice is refused with :class:`ValueError` (no plugin can
replace another's rules silently); an installed entry point that cannot be
imported or is refused makes every use of the registry raise
:class:`~federation.errors.ConfigError` naming it.

Must not: import a provider module statically (the core names no provider),
or import the testing toolkit at run time (a shape is loaded only when asked).
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, cast

from ._profile import ProviderProfile
from .errors import ConfigError

if TYPE_CHECKING:
    from federation.testing import MockIdP, ProviderShape

__all__ = [
    "ENTRY_POINT_GROUP",
    "DemoSpec",
    "ProviderPlugin",
    "generation",
    "get",
    "loaded",
    "names",
    "plugins",
    "register",
]

#: The entry-point group a provider distribution declares its plugin in.
ENTRY_POINT_GROUP = "federation.providers"

# The shipped providers by name, each imported when first named (generic OIDC first: it
# is the default of an entry without ``provider:``). Each must carry the name it is filed
# under, which _builtin checks.
_BUILTIN: dict[str, str] = {
    "oidc": "federation.providers.oidc:PLUGIN",
    "azure_ad": "federation.providers.azure_ad:PLUGIN",
    "azure_ad_b2c": "federation.providers.azure_ad:B2C_PLUGIN",
    "keycloak": "federation.providers.keycloak:PLUGIN",
    "google": "federation.providers.google:PLUGIN",
    "firebase": "federation.providers.firebase:PLUGIN",
    "cognito": "federation.providers.cognito:PLUGIN",
    "okta": "federation.providers.okta:PLUGIN",
}

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _no_stand_in(claims: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class DemoSpec:
    """What ``federation demo --provider NAME`` mocks and shows.

    ``params`` are the ``MockIdP.for_provider`` keywords; ``rule`` names the
    provider rule the demo breaks and ``breaks_rule(idp)`` mints a token that
    breaks it; ``no_access`` says why no access token is minted (None: one
    is); ``id_claims``/``access_claims`` go over the shape's defaults;
    ``person``/``returning`` are the claims of the full demo's first and
    later logins.
    """

    what: str
    params: Mapping[str, Any]
    rule: str
    breaks_rule: Callable[[MockIdP], str]
    no_access: str | None = None
    id_claims: Mapping[str, Any] = field(default_factory=dict)
    access_claims: Mapping[str, Any] = field(default_factory=dict)
    person: Mapping[str, Any] = field(default_factory=dict)
    returning: Mapping[str, Any] = field(default_factory=lambda: {"name": "Renamed by the identity provider"})


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    """One identity provider, declared in one place.

    ``name``
        The ``provider:`` value of ``federation.yaml``; must equal the
        ``Literal`` default of ``model``'s ``provider`` field.
    ``model``
        The :class:`~federation.spi.ProviderProfile` subclass (config and rules).
    ``shape``
        ``"module:attr"`` of its :class:`federation.testing.ProviderShape`
        (imported only when ``MockIdP.for_provider`` asks), or None.
    ``demo``
        Its :class:`DemoSpec`, or None (then ``federation demo`` does not offer it).
    ``stand_in(claims, issuer)``
        Settings for a dry-run profile built without ``federation.yaml``
        (e.g. Okta's ``domain`` from the issuer); ``model_construct`` gets them.
    ``vocabulary``
        Extra mapping ``$``-names (name -> description), never a neutral one.
    ``values(claims)``
        The values of those names for one token (missing names are absent).
    """

    name: str
    model: type[ProviderProfile]
    shape: str | None = None
    demo: DemoSpec | None = None
    stand_in: Callable[[Mapping[str, Any], str], dict[str, Any]] = _no_stand_in
    vocabulary: Mapping[str, str] = field(default_factory=dict)
    values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def load_shape(self) -> ProviderShape | None:
        """The claim shape, imported on first call (None when the plugin has none)."""
        if self.shape is None:
            return None
        return cast("ProviderShape", _load(self.shape))


_LOCK = threading.RLock()
_REGISTRY: dict[str, ProviderPlugin] = {}  # the plugins loaded so far
_ENTRY_POINTS_LOADED = False
_GENERATION = 0


def _load(reference: str) -> Any:
    module, _, attr = reference.partition(":")
    value: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        value = getattr(value, part)
    return value


def _check(plugin: ProviderPlugin) -> None:
    if not isinstance(plugin, ProviderPlugin):
        raise TypeError(f"expected a ProviderPlugin, got {type(plugin).__name__}")
    if not _NAME.fullmatch(plugin.name):
        raise ValueError(f"provider name {plugin.name!r} must match {_NAME.pattern}")
    if not (isinstance(plugin.model, type) and issubclass(plugin.model, ProviderProfile)):
        raise ValueError(f"provider {plugin.name!r}: model must be a ProviderProfile subclass")
    declared = plugin.model.model_fields.get("provider")
    if declared is None or declared.default != plugin.name:
        raise ValueError(
            f"provider {plugin.name!r}: the model's 'provider' field must default to {plugin.name!r}"
        )


def _add(plugin: ProviderPlugin) -> None:
    """Register ``plugin`` (caller holds the lock); a built-in name is compared with the built-in."""
    global _GENERATION
    _check(plugin)
    known = _builtin(plugin.name) if plugin.name in _BUILTIN else _REGISTRY.get(plugin.name)
    if known is plugin:
        return
    if known is not None:
        raise ValueError(f"provider {plugin.name!r} is already registered ({known.model.__qualname__})")
    _REGISTRY[plugin.name] = plugin
    _GENERATION += 1


def _builtin(name: str) -> ProviderPlugin:
    """The shipped plugin filed as ``name``, imported on first use (caller holds the lock)."""
    global _GENERATION
    plugin = _REGISTRY.get(name)
    if plugin is None:
        plugin = cast(ProviderPlugin, _load(_BUILTIN[name]))
        _check(plugin)
        if plugin.name != name:
            raise ValueError(f"the built-in provider filed as {name!r} is named {plugin.name!r}")
        _REGISTRY[name] = plugin
        _GENERATION += 1
    return plugin


def _ensure_entry_points() -> None:
    if not _ENTRY_POINTS_LOADED:
        with _LOCK:
            _load_entry_points()


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:  # another thread loaded them while this one waited for the lock
        return
    _ENTRY_POINTS_LOADED = True  # set first: a plugin module may call register() while it is imported
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            _add(entry.load())  # the same object as a built-in is accepted; another one is refused
        except Exception as exc:
            # An installed package's broken plugin is a configuration problem of this process:
            # a typed error naming the entry point, raised again on every use (not a partial registry).
            _ENTRY_POINTS_LOADED = False
            raise ConfigError(
                f"the provider plugin {entry.name!r} ({entry.value}) of the {ENTRY_POINT_GROUP!r} entry "
                f"points cannot be used: {type(exc).__name__}: {exc}",
                field="provider",
            ) from exc


def _in_order(registry: Mapping[str, ProviderPlugin]) -> tuple[ProviderPlugin, ...]:
    """Built-ins in table order, then the others in registration order."""
    shipped = [registry[name] for name in _BUILTIN if name in registry]
    return (*shipped, *(p for name, p in registry.items() if name not in _BUILTIN))


def register(plugin: ProviderPlugin) -> ProviderPlugin:
    """Add ``plugin`` to the registry and return it.

    Raises :class:`ValueError` when its name is taken by another plugin (the
    same plugin object twice is a no-op), is not a valid provider name, or
    does not match its model's ``provider`` field.
    """
    _ensure_entry_points()
    with _LOCK:
        _add(plugin)
    return plugin


def get(name: str) -> ProviderPlugin | None:
    """The plugin registered as ``name``, or None (a built-in one is imported now if it was not)."""
    _ensure_entry_points()
    plugin = _REGISTRY.get(name) if type(name) is str else None
    if plugin is None and type(name) is str and name in _BUILTIN:
        with _LOCK:
            plugin = _builtin(name)
    return plugin


def plugins() -> tuple[ProviderPlugin, ...]:
    """Every registered plugin, in registration order (built-ins first); imports every built-in."""
    _ensure_entry_points()
    with _LOCK:
        for name in _BUILTIN:
            _builtin(name)
        return _in_order(_REGISTRY)


def loaded() -> tuple[ProviderPlugin, ...]:
    """The plugins imported so far, in the order of :func:`plugins` (imports nothing)."""
    _ensure_entry_points()
    with _LOCK:
        return _in_order(_REGISTRY)


def names() -> tuple[str, ...]:
    """Every registered provider name, in registration order (imports no built-in)."""
    _ensure_entry_points()
    with _LOCK:
        return (*_BUILTIN, *(name for name in _REGISTRY if name not in _BUILTIN))


def generation() -> int:
    """A counter that changes whenever a plugin is registered or a built-in one is imported
    (for caches built from the registry)."""
    _ensure_entry_points()
    return _GENERATION
