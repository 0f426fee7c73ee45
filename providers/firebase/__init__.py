"""The Firebase Authentication profile (``provider: firebase``).

Owns: the vocabulary of one Firebase (or Identity Platform) project
(``project_id``, optional ``tenants`` and ``sign_in_providers`` allow-lists)
and Firebase's ID token rules (Firebase, "Verify ID tokens using a third-party
JWT library"):

* issuer exactly ``https://securetoken.google.com/{project_id}``, ``aud``
  exactly the project id: the signing keys are shared by every Firebase
  project, so these two checks are the only project binding;
* keys from Google's ``{kid: PEM certificate}`` map for
  ``securetoken@system.gserviceaccount.com`` (honouring its Cache-Control),
  or from a configured ``jwks_uri``, which is a JWK Set; RS256 only; ``kid``
  required;
* id tokens only; ``iat`` required; ``sub`` non-empty and at most 128
  characters; ``auth_time`` required, a number, and not after ``iat``
  (which the engine holds to "not in the future", so ``auth_time`` is in the
  past);
* ``firebase.tenant``: refused unless ``tenants`` lists it (without
  ``tenants``, only project-level users); ``firebase.sign_in_provider``
  among ``sign_in_providers`` when configured;
* identity: key (issuer, ``sub``); for a tenant's user the namespace is
  ``{issuer}/tenants/{tenant}`` (tenants are separate user pools).

Must not: perform I/O, or accept custom tokens, session cookies or another
project's tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from federation.errors import InvalidClaim, UnknownKey, WrongTokenType
from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import (
    Identity,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    TokenType,
    as_strict_bool,
    numeric_date,
)

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["FIREBASE_CERTS_URL", "FIREBASE_ISSUER_PREFIX", "PLUGIN", "FirebaseConfig"]

#: Firebase ID token issuers are this prefix plus the project id.
FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"
#: Google's ``{kid: PEM certificate}`` map of the keys that sign every project's ID tokens.
FIREBASE_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)

# Google Cloud project ids: lowercase letters, digits, hyphens (legacy ids may be
# domain-scoped, "example.com:my-project"). A project *number* is all digits.
_PROJECT_ID = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]*[a-z0-9]")


def _firebase_claim(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    value = claims.get("firebase", {})
    if not isinstance(value, dict):
        raise InvalidClaim("'firebase' is not an object", claim="firebase")
    return value


class FirebaseConfig(ProviderProfile):
    """One Firebase project, trusted by its exact issuer and audience."""

    #: Firebase Admin SDKs refuse a ``sub`` (uid) longer than 128 characters.
    max_subject_length: ClassVar[int] = 128

    provider: Literal["firebase"] = "firebase"
    signing_algorithms: ClassVar[frozenset[str] | None] = frozenset({"RS256"})
    id_tokens_only: ClassVar[str | None] = "Firebase issues ID tokens only: token_types must be [id]"
    project_id: str = Field(
        min_length=1, max_length=100, description="The Firebase project id (not its number)."
    )
    tenants: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Identity Platform tenant ids accepted in firebase.tenant; absent: project users only.",
    )
    sign_in_providers: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Accepted firebase.sign_in_provider values (password, google.com ...); absent: any.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"], min_length=1, description="Firebase signs with RS256 only."
    )
    token_types: list[TokenType] = Field(
        default_factory=lambda: ["id"],  # type: ignore[arg-type]
        min_length=1,
        description="Firebase ID tokens only.",
    )
    jwks_uri: str | None = Field(
        default=None,
        description="A JWK Set URL instead of Google's PEM certificate map (e.g. Google's JWK Set "
        "of the same keys, or an emulator's); https, or loopback http with keys.allow_loopback_http.",
    )

    @field_validator("project_id")
    @classmethod
    def _valid_project(cls, value: str) -> str:
        if value.isdigit():
            raise ValueError("project_id is the project's id (e.g. my-project), not its number")
        if not _PROJECT_ID.fullmatch(value):
            raise ValueError(
                "project_id must be a Firebase project id: lowercase letters, digits and hyphens (not a URL)"
            )
        return value

    @field_validator("tenants", "sign_in_providers")
    @classmethod
    def _non_empty_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not v or v != v.strip() for v in value):
            raise ValueError("entries must be non-empty strings without surrounding spaces")
        return value

    # -- routing and keys -------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The project's exact issuer string."""
        return FIREBASE_ISSUER_PREFIX + self.project_id

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return (self.issuer,)

    @property
    def key_source(self) -> KeySourceSpec:
        if self.jwks_uri is not None:  # an override is a JWK Set, not Google's certificate map
            return KeySourceSpec(name=self.issuer, jwks_uri=self.jwks_uri)
        return KeySourceSpec(name=self.issuer, jwks_uri=FIREBASE_CERTS_URL, format="x509_pem_map")

    # -- token rules ------------------------------------------------------------------------

    def check_header(self, header: Mapping[str, Any]) -> None:
        if header.get("kid") is None:
            raise UnknownKey("Firebase ID tokens always name their key, and this one has no 'kid'")

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        typ = header.get("typ")
        if typ is not None and str(typ).lower().removeprefix("application/") != "jwt":
            raise WrongTokenType("the token's 'typ' names a kind of JWT that is not accepted")
        return "id"

    def audiences_for(self, token_type: TokenType) -> frozenset[str]:
        return frozenset({self.project_id})

    def require_iat(self, token_type: TokenType) -> bool:
        return True

    def check(self, token: TokenContext) -> None:
        claims = token.claims
        auth_time = numeric_date(claims, "auth_time", required=True)
        iat = numeric_date(claims, "iat", required=True)
        # Both stamped by Firebase's clock: no leeway between them. The engine holds iat
        # to now + leeway, so auth_time is in the past too.
        if auth_time is not None and iat is not None and auth_time > iat:
            raise InvalidClaim("'auth_time' is after 'iat'", claim="auth_time")
        firebase = _firebase_claim(claims)
        tenant = firebase.get("tenant")
        if self.tenants is None:
            if tenant is not None:
                raise InvalidClaim(
                    "the token belongs to a tenant and no tenants are configured",
                    claim="firebase.tenant",
                    code="tenant_not_allowed",
                )
        elif not isinstance(tenant, str) or tenant not in self.tenants:
            raise InvalidClaim(
                "the token's tenant is not an allowed tenant",
                claim="firebase.tenant",
                code="tenant_not_allowed",
            )
        if self.sign_in_providers is not None:
            method = firebase.get("sign_in_provider")
            if not isinstance(method, str) or method not in self.sign_in_providers:
                raise InvalidClaim(
                    "the token's sign-in provider is not an allowed one",
                    claim="firebase.sign_in_provider",
                    code="sign_in_provider_not_allowed",
                )

    # -- identity ---------------------------------------------------------------------------

    def identity(self, token: TokenContext) -> Identity:
        claims = token.claims
        tenant = _firebase_claim(claims).get("tenant")
        namespace = f"{token.issuer}/tenants/{tenant}" if isinstance(tenant, str) else token.issuer
        email = claims.get("email")
        return Identity(
            key=(namespace, str(claims["sub"])),
            email=email if isinstance(email, str) else None,
            email_verified=isinstance(email, str) and as_strict_bool(claims.get("email_verified")),
        )


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

def _breaks_rule(idp: MockIdP) -> str:
    return idp.mint(iss="https://securetoken.google.com/other-project", aud="other-project")


PLUGIN = ProviderPlugin(
    name="firebase",
    model=FirebaseConfig,
    shape="federation.providers.firebase.shape:FIREBASE",
    demo=DemoSpec(
        "Firebase project",
        {"project_id": "demo-project"},
        "token of another Firebase project",
        _breaks_rule,
        no_access="Firebase issues ID tokens only",
    ),
)
