"""Provider profiles, shipped as ``federation.providers``.

One module per identity provider. A profile is a typed configuration model
(pydantic, unknown keys refused) plus the rules it adds to the provider-neutral
engine: which exact issuer strings it trusts, where its keys come from, how a
token's kind (id or access) is told, and any extra claim rules.

Adding a provider is one module here (a subclass of
:class:`~federation.spi.ProviderProfile` whose ``provider``
field is a ``Literal`` naming it), one entry in :data:`PROFILE_MODELS` below,
a docs page and its tests. ``federation.yaml`` picks the model by ``provider``.

Must not: perform I/O or import the bridge; the engine calls profiles, never
the reverse.
"""

from __future__ import annotations

from federation.spi import Identity, KeySourceSpec, ProviderProfile, TokenContext
from .azure_ad import AzureAdB2CConfig, AzureAdConfig
from .cognito import CognitoIssuerConfig
from .firebase import FirebaseConfig
from .google import GoogleConfig
from .keycloak import KeycloakConfig
from .oidc import OidcIssuerConfig
from .okta import OktaIssuerConfig

__all__ = [
    "PROFILE_MODELS",
    "AzureAdB2CConfig",
    "AzureAdConfig",
    "CognitoIssuerConfig",
    "FirebaseConfig",
    "GoogleConfig",
    "Identity",
    "KeySourceSpec",
    "KeycloakConfig",
    "OidcIssuerConfig",
    "OktaIssuerConfig",
    "ProviderProfile",
    "TokenContext",
]

#: Every profile model, discriminated by its ``provider`` field.
PROFILE_MODELS: tuple[type[ProviderProfile], ...] = (
    OidcIssuerConfig,
    AzureAdConfig,
    AzureAdB2CConfig,
    KeycloakConfig,
    GoogleConfig,
    FirebaseConfig,
    CognitoIssuerConfig,
    OktaIssuerConfig,
)
