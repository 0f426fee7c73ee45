"""Provider profiles, shipped as ``federation.providers``.

One module per identity provider. A profile is a typed configuration model
(pydantic, unknown keys refused) plus the rules it adds to the provider-neutral
engine: which exact issuer strings it trusts, where its keys come from, how a
token's kind (id or access) is told, and any extra claim rules.

A provider is one folder here: ``__init__.py`` holds its profile (a subclass
of :class:`~federation.spi.ProviderProfile` whose ``provider`` field is a
``Literal`` naming it) and its ``PLUGIN`` (:class:`ProviderPlugin`: the model,
its demo parameters, its dry-run stand-in, its mapping vocabulary and the
name of its mock claim shape, ``shape.py`` beside it). The engine finds
providers only through the registry (:mod:`federation.plugins`), which loads
the built-in ``PLUGIN`` objects by name and then the ``federation.providers``
entry-point group; :func:`register` adds one at run time. A package outside
this repository adds a provider the same way (see docs/providers/adding.md).
``federation.yaml`` picks the model by ``provider``.

Must not: perform I/O or import the bridge; the engine calls profiles, never
the reverse.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from federation.plugins import DemoSpec, ProviderPlugin, register
from federation.spi import Identity, KeySourceSpec, ProviderProfile, TokenContext

if TYPE_CHECKING:
    from .azure_ad import AzureAdB2CConfig, AzureAdConfig
    from .cognito import CognitoIssuerConfig
    from .firebase import FirebaseConfig
    from .google import GoogleConfig
    from .keycloak import KeycloakConfig
    from .oidc import OidcIssuerConfig
    from .okta import OktaIssuerConfig

# Each profile model from its own module, imported on first access: importing one
# provider (the registry does, for the providers a config names) imports no other.
_MODELS = {
    "AzureAdB2CConfig": "azure_ad",
    "AzureAdConfig": "azure_ad",
    "CognitoIssuerConfig": "cognito",
    "FirebaseConfig": "firebase",
    "GoogleConfig": "google",
    "KeycloakConfig": "keycloak",
    "OidcIssuerConfig": "oidc",
    "OktaIssuerConfig": "okta",
}

__all__ = [
    "PROFILE_MODELS",
    "AzureAdB2CConfig",
    "AzureAdConfig",
    "CognitoIssuerConfig",
    "DemoSpec",
    "FirebaseConfig",
    "GoogleConfig",
    "Identity",
    "KeySourceSpec",
    "KeycloakConfig",
    "OidcIssuerConfig",
    "OktaIssuerConfig",
    "ProviderPlugin",
    "ProviderProfile",
    "TokenContext",
    "register",
]


def __getattr__(name: str) -> Any:
    """A profile model, from its provider's module; ``PROFILE_MODELS``: deprecated, every
    registered profile model (read the registry instead)."""
    if name in _MODELS:
        return getattr(importlib.import_module(f"{__name__}.{_MODELS[name]}"), name)
    if name == "PROFILE_MODELS":
        warnings.warn(
            "federation.providers.PROFILE_MODELS is deprecated: use federation.plugins.plugins() "
            "(each plugin's .model)",
            DeprecationWarning,
            stacklevel=2,
        )
        from federation import plugins

        return tuple(p.model for p in plugins.plugins())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODELS})
