"""The Okta profile (``provider: okta``): the org and custom authorization servers.

Owns: the configuration vocabulary of one Okta authorization server
(``domain``, ``authorization_server``, ``audiences``, ``client_ids``,
``groups_claim``) and its rules:

* custom authorization server ``{id}``: issuer ``https://{domain}/oauth2/{id}``,
  keys ``https://{domain}/oauth2/{id}/v1/keys``; id and access tokens;
* org authorization server (no ``authorization_server``): issuer
  ``https://{domain}``, keys ``https://{domain}/oauth2/v1/keys``; id tokens
  only, since Okta says its access tokens are for Okta's own APIs and cannot be
  validated locally (``okta_org_access_token``);
* the kind: an access token carries ``cid``/``scp`` (or ``typ: at+jwt``);
* id tokens: ``aud`` among the client ids; access tokens: ``aud`` among the
  authorization server's audiences *and* ``cid`` among the client ids (Okta's
  own verifier skips ``cid``); ``ver``, when present, is 1;
* identity: (``https://{domain}``, Okta user id): the id token's ``sub``, the
  access token's ``uid`` (its ``sub`` is the mutable login); client-credentials
  access tokens (no ``uid``, ``sub`` = ``cid``) are keyed by the client id.

Must not: perform I/O, or build a key URL from the token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from federation.errors import InvalidAudience, InvalidClaim, WrongTokenType
from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import (
    Identity,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    TokenType,
    as_strict_bool,
    as_string_list,
)

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["PLUGIN", "OktaIssuerConfig"]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# Okta admin-console hosts never issue tokens (okta-jwt-verifier-python constants.ADMIN_DOMAINS).
_ADMIN_SUFFIXES = ("-admin.okta.com", "-admin.oktapreview.com", "-admin.okta-emea.com")
# Authorization server ids: "default" or generated ids such as "aus9o8wzkhckw9TLa0h7z".
_SERVER_ID = re.compile(r"[A-Za-z0-9]{1,64}")


class OktaIssuerConfig(ProviderProfile):
    """One Okta authorization server: a custom one, or the org server when omitted."""

    provider: Literal["okta"] = "okta"
    domain: str = Field(
        description="Okta domain, a hostname such as dev-123.okta.com or a custom domain (no https://)."
    )
    authorization_server: str | None = Field(
        default=None,
        description="Custom authorization server id (e.g. 'default', 'aus...'); omit for the org server.",
    )
    audiences: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Access tokens: the authorization server's Audience (e.g. api://default).",
    )
    client_ids: list[str] = Field(
        min_length=1,
        description="Client IDs: the id token 'aud' and the access token 'cid'.",
    )
    groups_claim: str = Field(
        default="groups", min_length=1, description="Name of the groups claim configured in Okta."
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"],
        min_length=1,
        description="Allowed 'alg' values; Okta signs tokens with RS256.",
    )

    @model_validator(mode="before")
    @classmethod
    def _org_server_defaults_to_id_tokens(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("authorization_server") is None
            and "token_types" not in data
        ):
            data = {**data, "token_types": ["id"]}
        return data

    @field_validator("domain")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if "://" in value or "/" in value:
            raise ValueError("domain is a hostname only (e.g. dev-123.okta.com), without https:// or a path")
        host = value.lower()
        if not _HOSTNAME.fullmatch(host):
            raise ValueError("domain must be a hostname such as dev-123.okta.com (no port, no placeholder)")
        if host.endswith(_ADMIN_SUFFIXES):
            raise ValueError("domain is the Okta admin console host; use the org domain without '-admin'")
        return host

    @field_validator("authorization_server")
    @classmethod
    def _server_id(cls, value: str | None) -> str | None:
        if value is not None and not _SERVER_ID.fullmatch(value):
            raise ValueError(
                "authorization_server is the server's id ('default' or 'aus...'), not a URL or a name"
            )
        return value

    @field_validator("client_ids", "audiences")
    @classmethod
    def _non_empty_strings(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not v or v != v.strip() for v in value):
            raise ValueError("entries must be non-empty strings without surrounding spaces")
        return value

    @model_validator(mode="after")
    def _server_kind_rules(self) -> OktaIssuerConfig:
        if self.authorization_server is None:
            if "access" in self.token_types:
                raise ValueError(
                    "the org authorization server's access tokens are for Okta's APIs and cannot be "
                    "validated locally; configure a custom authorization_server to accept access tokens"
                )
            if self.audiences is not None:
                raise ValueError("audiences apply to access tokens of a custom authorization_server")
        elif "access" in self.token_types and self.audiences is None:
            raise ValueError(
                "audiences is required to accept access tokens: the authorization server's Audience "
                "(e.g. api://default)"
            )
        return self

    # -- routing and keys ---------------------------------------------------------------

    @property
    def is_org_server(self) -> bool:
        return self.authorization_server is None

    @property
    def org_url(self) -> str:
        """``https://{domain}``: the org server's issuer and the identity namespace."""
        return f"https://{self.domain}"

    @property
    def issuer(self) -> str:
        if self.authorization_server is None:
            return self.org_url
        return f"{self.org_url}/oauth2/{self.authorization_server}"

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return (self.issuer,)

    @property
    def key_source(self) -> KeySourceSpec:
        # Okta: the org server's keys are at /oauth2/v1/keys, a custom server's at {issuer}/v1/keys.
        base = f"{self.org_url}/oauth2" if self.is_org_server else self.issuer
        return KeySourceSpec(name=self.issuer, jwks_uri=base + "/v1/keys")

    # -- token rules --------------------------------------------------------------------

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        kind: TokenType = "access" if "cid" in claims or "scp" in claims else "id"
        typ = header.get("typ")
        if typ is not None:
            media = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
            if media == "at+jwt":
                kind = "access"
            elif media != "jwt":
                raise WrongTokenType("the token's 'typ' names a kind of JWT that is not accepted")
        if kind == "access" and self.is_org_server:
            raise WrongTokenType(
                "access tokens of the Okta org authorization server cannot be validated locally "
                "(use introspection, or a custom authorization server)",
                code="okta_org_access_token",
            )
        return kind

    def check_unverified(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        # Okta does not publish the keys that sign org-server access tokens, so such a
        # token would only ever reach key lookup as an unknown kid (and cost a refetch):
        # name it now. Only refuses; classify() applies the same rule after verification.
        if self.is_org_server:
            self.classify(header, claims)

    def audiences_for(self, token_type: TokenType) -> frozenset[str] | None:
        if token_type == "id":
            return frozenset(self.client_ids)
        return frozenset(self.audiences or ())

    def require_iat(self, token_type: TokenType) -> bool:
        return True  # Okta sets iat on both kinds

    def check(self, token: TokenContext) -> None:
        claims = token.claims
        if "ver" in claims and (type(claims["ver"]) is not int or claims["ver"] != 1):
            raise InvalidClaim("the token's 'ver' is not 1", claim="ver", issuer=token.issuer)
        if token.token_type != "access":
            return
        cid = claims.get("cid")
        if not isinstance(cid, str):
            raise InvalidAudience("the access token has no 'cid' string", issuer=token.issuer)
        if cid not in self.client_ids:
            raise InvalidAudience(
                "the access token was issued to a client that is not configured", issuer=token.issuer
            )
        uid = claims.get("uid")
        if "uid" in claims and (not isinstance(uid, str) or not uid):
            raise InvalidClaim("'uid' is not a non-empty string", claim="uid", issuer=token.issuer)
        if uid is None and claims.get("sub") != cid:
            # A user's access token without its user id: its sub is a mutable login, never a key.
            raise InvalidClaim("the user access token has no 'uid'", claim="uid", issuer=token.issuer)

    def identity(self, token: TokenContext) -> Identity:
        claims = token.claims
        email = claims.get("email")
        if token.token_type == "id":
            user_id = claims["sub"]
            username = claims.get("preferred_username")
        elif "uid" in claims:  # a user's token: sub is the login
            user_id = claims["uid"]
            username = claims.get("sub")
        else:  # client credentials: sub is the client id
            user_id = claims["sub"]
            username = None
        return Identity(
            key=(self.org_url, str(user_id)),
            email=email if isinstance(email, str) else None,
            email_verified=isinstance(email, str) and as_strict_bool(claims.get("email_verified")),
            username=username if isinstance(username, str) else None,
            groups=as_string_list(claims.get(self.groups_claim)),
        )


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

def _breaks_rule(idp: MockIdP) -> str:
    return idp.mint(token_type="access", cid="0oaotherclient")


def _stand_in(claims: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    return {"domain": urlsplit(issuer).hostname or "okta.invalid"}


PLUGIN = ProviderPlugin(
    name="okta",
    model=OktaIssuerConfig,
    shape="federation.providers.okta.shape:OKTA",
    demo=DemoSpec(
        "Okta authorization server",
        {"domain": "dev-123.okta.com", "authorization_server": "default", "client_id": "0oademoapp42"},
        "access token of an unconfigured client (cid)",
        _breaks_rule,
    ),
    stand_in=_stand_in,
)
