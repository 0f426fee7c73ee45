"""The generic OpenID Connect profile (``provider: oidc``).

Owns: the configuration vocabulary of a standard OIDC issuer (issuer, audiences,
optional ``jwks_uri`` and ``client_ids``, algorithm and token-type allow-lists)
and its rules: exact issuer match, keys from ``jwks_uri`` or OIDC discovery,
token kind from ``typ`` (RFC 9068 ``at+jwt``) or OAuth claims, ``aud`` among
the configured audiences for both kinds; with ``client_ids``, an access token
without ``aud`` is accepted when its ``client_id`` is one of them (as
Cognito-style issuers and emulators such as cognito-local issue them).

Must not: perform I/O or know any vendor's quirks (those are other profiles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import (
    DEFAULT_ALGORITHMS,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    TokenType,
    check_client_bound_access,
)

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["DEFAULT_ALGORITHMS", "PLUGIN", "OidcIssuerConfig"]


class OidcIssuerConfig(ProviderProfile):
    """A standard OIDC issuer, trusted by exact ``issuer`` string."""

    provider: Literal["oidc"] = "oidc"
    issuer: str = Field(min_length=1, description="Exact issuer string; compared code point by code point.")
    audiences: list[str] = Field(min_length=1, description="Accepted 'aud' values (client id / API id).")
    jwks_uri: str | None = Field(default=None, description="Key set URL; when absent, OIDC discovery.")
    client_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Access tokens without 'aud' are accepted when their 'client_id' is one of these "
        "(Cognito-style issuers); a token with 'aud' still needs one of audiences.",
    )

    @field_validator("audiences", "client_ids")
    @classmethod
    def _non_empty_audiences(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not a for a in value):
            raise ValueError("entries must be non-empty strings")
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

    def audiences_for(self, token_type: TokenType) -> frozenset[str] | None:
        if token_type == "access" and self.client_ids is not None:
            return None  # aud or client_id: bound in check()
        return frozenset(self.audiences)

    def check(self, token: TokenContext) -> None:
        if token.token_type == "access" and self.client_ids is not None:
            check_client_bound_access(
                token, client_ids=self.client_ids, audiences=self.audiences, client_id_always=False
            )


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

def _breaks_rule(idp: MockIdP) -> str:
    return idp.mint(kid="not-published")


PLUGIN = ProviderPlugin(
    name="oidc",
    model=OidcIssuerConfig,
    shape="federation.providers.oidc.shape:OIDC",
    demo=DemoSpec(
        "OpenID Connect issuer",
        {"issuer": "https://idp.example.test", "audience": "demo-app"},
        "token signed with an unknown key",
        _breaks_rule,
        id_claims={
            "sub": "user-42",
            "email": "ada@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
            "groups": ["staff"],
        },
        access_claims={"sub": "user-42", "scope": "openid profile"},
        person={
            "sub": "user-42",
            "email": "ada@example.com",
            "email_verified": True,
            "preferred_username": "ada",
            "name": "Ada Lovelace",
            "groups": ["staff"],
            "department": "Analytical Engines",
        },
        returning={
            "sub": "user-42",
            "email": "ada@example.com",
            "email_verified": True,
            "preferred_username": "ada",
            "name": "Ada King",
            "groups": ["staff", "admins"],
            "department": "Computing",
        },
    ),
)
