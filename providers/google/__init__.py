"""The Google Sign-In profile (``provider: google``).

Owns: the vocabulary of an application that accepts Google ID tokens (its
OAuth ``client_ids``, optional Workspace ``hosted_domains``) and Google's
rules:

* two exact issuers, ``https://accounts.google.com`` and the legacy
  ``accounts.google.com``; keys from ``https://www.googleapis.com/oauth2/v3/certs``
  (a JWK Set, honouring its Cache-Control) or a configured ``jwks_uri`` (an
  emulator's JWK Set); RS256 only;
* id tokens only (Google access tokens are opaque, not JWTs);
* ``aud`` among ``client_ids`` (engine), and ``azp``, when present, among
  ``client_ids`` too, even when ``aud`` is single-valued;
* with ``hosted_domains``: the ``hd`` claim must be one of them (a missing
  ``hd`` is a consumer account: refused). The email's domain is never used;
* identity: key (``https://accounts.google.com``, ``sub``) for both issuer
  spellings; ``email_verified`` only where Google is authoritative for the
  address (``@gmail.com``, or a Workspace account with ``hd``).

Must not: perform I/O, or decide anything from the email's domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from federation.errors import InvalidAudience, InvalidClaim, WrongTokenType
from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import Identity, KeySourceSpec, ProviderProfile, TokenContext, TokenType, as_strict_bool

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["GOOGLE_ISSUER", "GOOGLE_ISSUERS", "GOOGLE_JWKS_URI", "PLUGIN", "GoogleConfig"]

#: The issuer Google documents as current; identity keys use it for both spellings.
GOOGLE_ISSUER = "https://accounts.google.com"
#: Both exact issuer strings Google's ID tokens carry (the second is the legacy form).
GOOGLE_ISSUERS = (GOOGLE_ISSUER, "accounts.google.com")
#: Google's signing keys as a JWK Set (the discovery document's ``jwks_uri``).
GOOGLE_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"


class GoogleConfig(ProviderProfile):
    """Google ID tokens issued to this application's OAuth clients."""

    provider: Literal["google"] = "google"
    signing_algorithms: ClassVar[frozenset[str] | None] = frozenset({"RS256"})
    id_tokens_only: ClassVar[str | None] = (
        "Google access tokens are opaque, not JWTs: only 'id' can be verified"
    )
    client_ids: list[str] = Field(
        min_length=1, description="OAuth client ids (….apps.googleusercontent.com) accepted in aud and azp."
    )
    hosted_domains: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Google Workspace domains allowed in the 'hd' claim; absent: any account.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"], min_length=1, description="Google signs with RS256 only."
    )
    token_types: list[TokenType] = Field(
        default_factory=lambda: ["id"],  # type: ignore[arg-type]
        min_length=1,
        description="Google ID tokens only; Google access tokens are opaque.",
    )
    jwks_uri: str | None = Field(
        default=None,
        description="Key set URL (a JWK Set) instead of Google's, for emulators; https, or "
        "loopback http with keys.allow_loopback_http.",
    )

    @field_validator("client_ids")
    @classmethod
    def _valid_clients(cls, value: list[str]) -> list[str]:
        if any(not c or c != c.strip() for c in value):
            raise ValueError("client_ids must be non-empty strings without surrounding spaces")
        return value

    @field_validator("hosted_domains")
    @classmethod
    def _valid_domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for domain in value:
            if not domain or domain != domain.strip() or "@" in domain or "/" in domain:
                raise ValueError("hosted_domains are bare domain names, e.g. example.com")
        return [d.lower() for d in value]

    # -- routing and keys -------------------------------------------------------------------

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return GOOGLE_ISSUERS

    @classmethod
    def namespace_of(cls, issuer: str) -> str | None:
        # both spellings are one issuer, as in the identity key
        return GOOGLE_ISSUER if issuer in GOOGLE_ISSUERS else None

    @property
    def key_source(self) -> KeySourceSpec:
        return KeySourceSpec(name=GOOGLE_ISSUER, jwks_uri=self.jwks_uri or GOOGLE_JWKS_URI)

    # -- token rules ------------------------------------------------------------------------

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        typ = header.get("typ")
        if typ is not None and str(typ).lower().removeprefix("application/") != "jwt":
            raise WrongTokenType("the token's 'typ' names a kind of JWT that is not accepted")
        return "id"

    def audiences_for(self, token_type: TokenType) -> frozenset[str]:
        return frozenset(self.client_ids)

    def check(self, token: TokenContext) -> None:
        claims = token.claims
        if "azp" in claims:
            azp = claims["azp"]
            if not isinstance(azp, str):
                raise InvalidClaim("'azp' is not a string", claim="azp")
            if azp not in self.client_ids:
                raise InvalidAudience("'azp' is not a configured client id")
        if self.hosted_domains is not None:
            hd = claims.get("hd")
            if not isinstance(hd, str) or hd.lower() not in self.hosted_domains:
                raise InvalidClaim(
                    "the account's hosted domain ('hd') is not an allowed domain",
                    claim="hd",
                    code="hosted_domain_not_allowed",
                )

    # -- identity ---------------------------------------------------------------------------

    def identity(self, token: TokenContext) -> Identity:
        claims = token.claims
        email = claims.get("email")
        hd = claims.get("hd")
        # Google is authoritative for an address only for @gmail.com accounts and for
        # Workspace accounts (hd present); otherwise email_verified may be stale.
        authoritative = isinstance(email, str) and (
            email.lower().endswith("@gmail.com") or (isinstance(hd, str) and bool(hd))
        )
        return Identity(
            key=(GOOGLE_ISSUER, str(claims["sub"])),
            email=email if isinstance(email, str) else None,
            email_verified=authoritative
            and as_strict_bool(claims.get("email_verified"), accept_strings=True),
        )


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

def _breaks_rule(idp: MockIdP) -> str:
    return idp.mint(hd="other.example", email="elisa@other.example")


PLUGIN = ProviderPlugin(
    name="google",
    model=GoogleConfig,
    shape="federation.providers.google.shape:GOOGLE",
    demo=DemoSpec(
        "Google Sign-In for a Workspace domain",
        {"client_id": "1234567890-demo.apps.googleusercontent.com", "hosted_domain": "example.com"},
        "account of another Workspace domain (hd)",
        _breaks_rule,
        no_access="Google access tokens are opaque, not JWTs",
    ),
)
