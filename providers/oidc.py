"""The generic OpenID Connect profile (``provider: oidc``).

Owns: the configuration vocabulary of a standard OIDC issuer (issuer, audiences,
optional ``jwks_uri``, algorithm and token-type allow-lists) and its rules:
exact issuer match, keys from ``jwks_uri`` or OIDC discovery, token kind from
``typ`` (RFC 9068 ``at+jwt``) or OAuth claims.

Must not: perform I/O or know any vendor's quirks (those are other profiles).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from federation._rfc7518 import ASYMMETRIC_ALGORITHMS, NEVER_ALLOWED
from federation._rfc7519 import TokenType, classify_token

__all__ = ["DEFAULT_ALGORITHMS", "OidcIssuerConfig"]

#: Every asymmetric JWS algorithm the engine implements; HMAC and ``none`` never.
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)


def _both_kinds() -> list[TokenType]:
    return ["id", "access"]


class OidcIssuerConfig(BaseModel):
    """A standard OIDC issuer, trusted by exact ``issuer`` string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["oidc"] = "oidc"
    issuer: str = Field(min_length=1, description="Exact issuer string; compared code point by code point.")
    audiences: list[str] = Field(min_length=1, description="Accepted 'aud' values (your client id / API id).")
    jwks_uri: str | None = Field(
        default=None, description="Key set URL; when absent, OIDC discovery is used."
    )
    algorithms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALGORITHMS),
        min_length=1,
        description="Allowed 'alg' values; asymmetric algorithms only.",
    )
    token_types: list[TokenType] = Field(
        default_factory=_both_kinds, min_length=1, description="Which token kinds are accepted."
    )

    @field_validator("audiences")
    @classmethod
    def _non_empty_audiences(cls, value: list[str]) -> list[str]:
        if any(not a for a in value):
            raise ValueError("audiences must be non-empty strings")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        for alg in value:
            if alg in NEVER_ALLOWED or alg.lower() == "none":
                raise ValueError(f"algorithm {alg!r} is never accepted from an issuer with a key set")
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"unknown algorithm {alg!r}; supported: {', '.join(DEFAULT_ALGORITHMS)}")
        return value

    @model_validator(mode="after")
    def _discovery_needs_url(self) -> OidcIssuerConfig:
        if self.jwks_uri is None and not self.issuer.startswith(("https://", "http://")):
            raise ValueError("issuer must be a URL when jwks_uri is not given (OIDC discovery)")
        return self

    # -- the profile interface the engine calls ---------------------------------

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        """The exact ``iss`` strings this profile accepts."""
        return (self.issuer,)

    @property
    def discovery_url(self) -> str:
        """OIDC Discovery 1.0 §4: the issuer with the well-known path appended."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        """The token's kind (id or access), or :class:`~federation.errors.WrongTokenType`."""
        return classify_token(header, claims)
