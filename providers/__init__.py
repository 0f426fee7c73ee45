"""Provider profiles, shipped as ``federation.providers``.

One module per identity provider. A profile is a typed configuration model
(pydantic, unknown keys refused) plus the rules it adds to the provider-neutral
engine: which exact issuer strings it trusts, where its keys come from, how a
token's kind (id or access) is told, and any extra claim rules.

Adding a provider is one module here (a subclass of
:class:`~federation.providers._profile.ProviderProfile` whose ``provider``
field is a ``Literal`` naming it), one entry in :data:`PROFILE_MODELS` below,
a docs page and its tests. ``federation.yaml`` picks the model by ``provider``.

Must not: perform I/O or import the bridge; the engine calls profiles, never
the reverse.
"""

from __future__ import annotations

from ._profile import Identity, KeySourceSpec, ProviderProfile, TokenContext
from .oidc import OidcIssuerConfig

__all__ = [
    "PROFILE_MODELS",
    "Identity",
    "KeySourceSpec",
    "OidcIssuerConfig",
    "ProviderProfile",
    "TokenContext",
]

#: Every profile model, discriminated by its ``provider`` field.
PROFILE_MODELS: tuple[type[ProviderProfile], ...] = (OidcIssuerConfig,)
