"""Provider profiles, shipped as ``federation.providers``.

One module per identity provider. A profile is a typed configuration model
(pydantic, unknown keys refused) plus the rules it adds to the provider-neutral
engine: which exact issuer strings it trusts, where its keys come from, how a
token's kind (id or access) is told, and any extra claim rules.

Today: ``oidc`` (any standard OpenID Connect issuer). Adding a provider is one
module here, one entry in :data:`federation.config.IssuerConfig`, and its tests.

Must not: perform I/O or import the bridge; the engine calls profiles, never
the reverse.
"""
