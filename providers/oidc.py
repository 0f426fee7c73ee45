"""The generic OpenID Connect profile (``provider: oidc``).

Owns: the configuration vocabulary of a standard OIDC issuer (issuer, audiences,
optional ``jwks_uri``, algorithm and token-type allow-lists) and its rules:
exact issuer match, keys from ``jwks_uri`` or OIDC discovery, token kind from
``typ`` (RFC 9068 ``at+jwt``) or OAuth claims, ``aud`` among the configured
audiences for both kinds.

Must not: perform I/O or know any vendor's quirks (those are other profiles).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from federation._rfc7519 import TokenType

from ._profile import DEFAULT_ALGORITHMS, KeySourceSpec, ProviderProfile

__all__ = ["DEFAULT_ALGORITHMS", "OidcIssuerConfig"]


class OidcIssuerConfig(ProviderProfile):
    """A standard OIDC issuer, trusted by exact ``issuer`` string."""

    provider: Literal["oidc"] = "oidc"
    issuer: str = Field(min_length=1, description="Exact issuer string; compared code point by code point.")
    audiences: list[str] = Field(min_length=1, description="Accepted 'aud' values (client id / API id).")
    jwks_uri: str | None = Field(default=None, description="Key set URL; when absent, OIDC discovery.")

    @field_validator("audiences")
    @classmethod
    def _non_empty_audiences(cls, value: list[str]) -> list[str]:
        if any(not a for a in value):
            raise ValueError("audiences must be non-empty strings")
        return value

    @model_validator(mode="after")
    def _discovery_needs_url(self) -> OidcIssuerConfig:
        if self.jwks_uri is None and not self.issuer.startswith(("https://", "http://")):
            raise ValueError("issuer must be a URL when jwks_uri is not given (OIDC discovery)")
        return self

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return (self.issuer,)

    @property
    def discovery_url(self) -> str:
        """OIDC Discovery 1.0 §4: the issuer with the well-known path appended."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def key_source(self) -> KeySourceSpec:
        if self.jwks_uri is not None:
            return KeySourceSpec(name=self.issuer, jwks_uri=self.jwks_uri)
        return KeySourceSpec(name=self.issuer, discovery_url=self.discovery_url, discovery_issuer=self.issuer)

    def audiences_for(self, token_type: TokenType) -> frozenset[str]:
        return frozenset(self.audiences)
