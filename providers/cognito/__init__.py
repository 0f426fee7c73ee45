"""The AWS Cognito user pool profile (``provider: cognito``).

Owns: the configuration vocabulary of a Cognito user pool (``region``,
``user_pool_id``, app ``client_ids``, resource-binding ``audiences``,
``token_use``, an emulator's ``jwks_uri``) and its rules:

* both issuer forms of the pool are trusted, ``https://cognito-idp.{region}
  .amazonaws.com/{pool}`` and the "updated" ``https://issuer-cognito-idp...``,
  with one key set ``https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json``
  (or the configured ``jwks_uri``, for emulators that sign with the pool's issuer);
* the token kind comes from the ``token_use`` claim alone (required, ``id`` or
  ``access``); a missing or other value is ``wrong_token_type``;
* id tokens: ``aud`` among the app client ids; access tokens: ``client_id``
  among them (Cognito access tokens carry no ``aud`` unless a resource binding
  was requested; a present ``aud`` must then be a configured audience);
* identity: (canonical pool issuer, ``sub``), ``cognito:groups``,
  ``cognito:roles``, ``cognito:username`` / ``username``, and ``email_verified``
  as Cognito renders it (JSON boolean or the string ``"true"``).

Must not: perform I/O, or trust the token to choose the pool or the key URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from federation.errors import WrongTokenType
from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import (
    Identity,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    TokenType,
    as_strict_bool,
    as_string_list,
    check_client_bound_access,
)

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["PLUGIN", "CognitoIssuerConfig"]

# AWS region names: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-7, us-isob-east-1 ...
_REGION = re.compile(r"[a-z]{2}-(?:gov-|iso[a-z]?-)?[a-z]+-[0-9]{1,2}")
# A user pool id is "{region}_{alphanumerics}" (aws-jwt-verify: ^(region)_[a-zA-Z0-9]+$).
_POOL_ID = re.compile(r"(?P<region>[a-z0-9-]+)_(?P<id>[A-Za-z0-9]+)")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~+-]+")
# Either issuer form of a pool (original cognito-idp, updated issuer-cognito-idp).
_ISSUER = re.compile(
    r"https://(?:issuer-)?cognito-idp\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<pool>(?P=region)_[A-Za-z0-9]+)"
)

IssuerForm = Literal["original", "updated"]


def _token_use(claims: Mapping[str, Any]) -> TokenType:
    value = claims.get("token_use")
    if value == "id":
        return "id"
    if value == "access":
        return "access"
    if value is None:
        raise WrongTokenType("the token has no 'token_use' claim: not a Cognito id or access token")
    raise WrongTokenType("the token's 'token_use' is neither 'id' nor 'access'")


class CognitoIssuerConfig(ProviderProfile):
    """One Cognito user pool, trusted for the listed app clients."""

    provider: Literal["cognito"] = "cognito"
    region: str | None = Field(
        default=None,
        description="AWS region of the user pool (e.g. eu-west-1); defaults to the pool id's prefix.",
    )
    user_pool_id: str = Field(description="User pool ID, '{region}_{id}' (e.g. eu-west-1_AbCdEf123).")
    client_ids: list[str] = Field(
        min_length=1,
        description="App client IDs: the id token 'aud' and the access token 'client_id'.",
    )
    audiences: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Resource-binding audiences: a present access token 'aud' must be one of them.",
    )
    issuer_forms: list[IssuerForm] = Field(
        default_factory=lambda: ["original", "updated"],  # type: ignore[arg-type]
        min_length=1,
        description="Which issuer forms of the pool are trusted (cognito-idp / issuer-cognito-idp).",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"],
        min_length=1,
        description="Allowed 'alg' values; Cognito user pools sign with RS256 only.",
    )
    token_types: list[TokenType] = Field(
        default_factory=lambda: ["id", "access"],  # type: ignore[arg-type]
        min_length=1,
        validation_alias=AliasChoices("token_types", "token_use"),
        description="Accepted 'token_use' values (id and/or access); 'token_use' is an alias.",
    )
    jwks_uri: str | None = Field(
        default=None,
        description="Key set URL (a JWK Set) instead of the pool's own, for emulators such as moto "
        "or LocalStack; https, or loopback http with keys.allow_loopback_http.",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_name_for_token_types(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "token_types" in data and "token_use" in data:
            raise ValueError("give either token_use or token_types (they are the same setting), not both")
        return data

    @field_validator("region")
    @classmethod
    def _region_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _REGION.fullmatch(value):
            raise ValueError("region must be an AWS region name such as eu-west-1")
        if value.startswith("cn-"):
            raise ValueError(
                "Cognito in the AWS China regions uses amazonaws.com.cn hosts; use provider: oidc there"
            )
        return value

    @field_validator("user_pool_id")
    @classmethod
    def _pool_id_format(cls, value: str) -> str:
        match = _POOL_ID.fullmatch(value)
        if match is None or not _REGION.fullmatch(match["region"]):
            raise ValueError("user_pool_id must look like '{region}_{id}', e.g. eu-west-1_AbCdEf123")
        return value

    @field_validator("client_ids", "audiences")
    @classmethod
    def _non_empty_strings(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not v or v != v.strip() for v in value):
            raise ValueError("entries must be non-empty strings without surrounding spaces")
        return value

    @field_validator("client_ids")
    @classmethod
    def _client_id_format(cls, value: list[str]) -> list[str]:
        if any(not _CLIENT_ID.fullmatch(v) for v in value):
            raise ValueError("app client IDs are letters and digits (copy the ID, not the name or secret)")
        return value

    @model_validator(mode="after")
    def _region_matches_pool(self) -> CognitoIssuerConfig:
        pool_region = self.user_pool_id.rsplit("_", 1)[0]
        if self.region is not None and self.region != pool_region:
            raise ValueError(
                "region does not match the user pool ID (its prefix before '_' is the pool's region)"
            )
        return self

    # -- routing and keys ---------------------------------------------------------------

    @property
    def pool_region(self) -> str:
        """The pool's region (the configured one, which equals the pool id's prefix)."""
        return self.region or self.user_pool_id.rsplit("_", 1)[0]

    @property
    def canonical_issuer(self) -> str:
        """The original issuer form; also the identity namespace of the pool's users."""
        return f"https://cognito-idp.{self.pool_region}.amazonaws.com/{self.user_pool_id}"

    @classmethod
    def namespace_of(cls, issuer: str) -> str | None:
        # Either form of a pool names the pool: its original form, the identity namespace.
        match = _ISSUER.fullmatch(issuer)
        if match is None:
            return None
        return f"https://cognito-idp.{match['region']}.amazonaws.com/{match['pool']}"

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        forms = {
            "original": self.canonical_issuer,
            "updated": f"https://issuer-cognito-idp.{self.pool_region}.amazonaws.com/{self.user_pool_id}",
        }
        return tuple(forms[f] for f in dict.fromkeys(self.issuer_forms))

    @property
    def key_source(self) -> KeySourceSpec:
        # Both issuer forms publish the same pool keys; one fixed URL (or the configured
        # override), never discovered.
        return KeySourceSpec(
            name=self.canonical_issuer,
            jwks_uri=self.jwks_uri or self.canonical_issuer + "/.well-known/jwks.json",
        )

    # -- token rules --------------------------------------------------------------------

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        kind = _token_use(claims)
        typ = header.get("typ")
        if typ is not None:
            media = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
            if media != "jwt" and not (media == "at+jwt" and kind == "access"):
                raise WrongTokenType("the token's 'typ' does not match a Cognito id or access token")
        return kind

    def audiences_for(self, token_type: TokenType) -> frozenset[str] | None:
        # Id tokens: aud is the app client id. Access tokens: bound in check() via client_id.
        return frozenset(self.client_ids) if token_type == "id" else None

    def require_iat(self, token_type: TokenType) -> bool:
        return True  # Cognito sets iat on both kinds

    def check(self, token: TokenContext) -> None:
        if token.token_type == "access":
            # client_id always names the app client; aud only with a resource binding.
            check_client_bound_access(
                token, client_ids=self.client_ids, audiences=self.audiences, client_id_always=True
            )

    def identity(self, token: TokenContext) -> Identity:
        claims = token.claims
        email = claims.get("email")
        username = claims.get("cognito:username" if token.token_type == "id" else "username")
        return Identity(
            key=(self.canonical_issuer, str(claims["sub"])),
            email=email if isinstance(email, str) else None,
            # Cognito renders some booleans as the strings "true"/"false" (AWS docs, allauth).
            email_verified=isinstance(email, str)
            and as_strict_bool(claims.get("email_verified"), accept_strings=True),
            username=username if isinstance(username, str) else None,
            groups=as_string_list(claims.get("cognito:groups")),
            # IAM role ARNs are in id tokens only (AWS's claim reference): an access token
            # naming them was not written by Cognito.
            roles=as_string_list(claims.get("cognito:roles")) if token.token_type == "id" else (),
        )


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

def _breaks_rule(idp: MockIdP) -> str:
    return idp.mint(token_use=None)


def _stand_in(claims: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    pool = issuer.rstrip("/").rsplit("/", 1)[-1]
    return {"user_pool_id": pool if "_" in pool else "dry-run_pool"}


PLUGIN = ProviderPlugin(
    name="cognito",
    model=CognitoIssuerConfig,
    shape="federation.providers.cognito.shape:COGNITO",
    demo=DemoSpec(
        "AWS Cognito user pool",
        {"user_pool_id": "eu-west-1_Demo12345", "client_id": "demoappclient42"},
        "token without token_use (not a pool token)",
        _breaks_rule,
    ),
    stand_in=_stand_in,
)
