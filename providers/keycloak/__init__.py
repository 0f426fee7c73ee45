"""The Keycloak profile (``provider: keycloak``).

Owns: the vocabulary of one Keycloak realm (server ``base_url``, ``realm``,
the realm's ``client_ids`` this application answers to, optional ``jwks_uri``)
and its rules:

* the issuer is built exactly as ``{base_url}/realms/{realm}`` (legacy servers:
  give ``base_url`` with its ``/auth`` context path); keys come from the
  realm's certs endpoint ``{issuer}/protocol/openid-connect/certs``;
* the token kind comes from Keycloak's payload ``typ`` claim: ``Bearer`` is an
  access token, ``ID`` an id token; ``Refresh``, ``Offline``, ``Logout`` and
  any other value are refused (``wrong_token_type``);
* id tokens: ``aud`` among ``client_ids`` (OIDC Core rules, in the engine);
  access tokens: ``aud`` names a configured client, or, when ``aud`` is absent
  or names only Keycloak's own built-in clients (``account``,
  ``realm-management``, ``broker``), ``azp`` must be a configured client.
  Those built-in clients are never accepted as our audience;
* identity: key (issuer, ``sub``), ``preferred_username``, ``groups``, realm
  roles as-is plus the configured clients' roles as ``{client}:{role}``.

Must not: perform I/O, or accept a refresh token or another realm's token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from federation.errors import InvalidAudience, WrongTokenType
from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import (
    Identity,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    TokenType,
    as_string_list,
    audience_values,
)

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["KEYCLOAK_BUILTIN_AUDIENCES", "PLUGIN", "KeycloakConfig"]

#: Keycloak's own clients that its Audience Resolve mapper puts in ``aud`` because the
#: user holds roles of theirs (``account`` by default for every user). They never name
#: an application's API, so they never count as its audience.
KEYCLOAK_BUILTIN_AUDIENCES = frozenset({"account", "realm-management", "broker"})

#: Payload ``typ`` values (Keycloak ``TokenUtil``) and the kind each one is.
_KINDS: dict[str, TokenType] = {"Bearer": "access", "ID": "id"}

# Characters a realm name may use so that the issuer needs no percent-encoding.
_REALM = re.compile(r"[A-Za-z0-9._~-]+")


class KeycloakConfig(ProviderProfile):
    """One Keycloak realm, trusted by its exact issuer ``{base_url}/realms/{realm}``."""

    provider: Literal["keycloak"] = "keycloak"
    base_url: str = Field(
        min_length=1,
        description="The server's public URL, e.g. https://sso.example.com (legacy: .../auth).",
    )
    realm: str = Field(min_length=1, description="The realm name, as in /realms/{realm}.")
    client_ids: list[str] = Field(
        min_length=1, description="Client ids of this application (and its API) in the realm."
    )
    jwks_uri: str | None = Field(
        default=None,
        description="Key set URL; default {issuer}/protocol/openid-connect/certs.",
    )

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str) -> str:
        base = value.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("base_url must be the server's https:// URL, e.g. https://sso.example.com")
        if parts.query or parts.fragment or parts.username is not None or parts.password is not None:
            raise ValueError("base_url must not carry a query, a fragment or credentials")
        if "/realms/" in parts.path + "/":
            raise ValueError("base_url is the server URL without /realms/...: put the realm name in 'realm'")
        return base

    @field_validator("realm")
    @classmethod
    def _valid_realm(cls, value: str) -> str:
        if not _REALM.fullmatch(value):
            raise ValueError("realm names may use letters, digits and . _ ~ - only")
        return value

    @field_validator("client_ids")
    @classmethod
    def _valid_clients(cls, value: list[str]) -> list[str]:
        if any(not c for c in value):
            raise ValueError("client_ids must be non-empty strings")
        builtin = sorted(KEYCLOAK_BUILTIN_AUDIENCES.intersection(value))
        if builtin:
            raise ValueError(
                f"{', '.join(builtin)} is a Keycloak built-in client, never this application's "
                "audience: list your own client ids"
            )
        return value

    # -- routing and keys -------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The realm's exact issuer string."""
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return (self.issuer,)

    @property
    def key_source(self) -> KeySourceSpec:
        return KeySourceSpec(
            name=self.issuer, jwks_uri=self.jwks_uri or self.issuer + "/protocol/openid-connect/certs"
        )

    # -- token rules ------------------------------------------------------------------------

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        media = header.get("typ")
        if media is not None:
            media = str(media).lower().removeprefix("application/")
            if media not in ("jwt", "at+jwt"):
                raise WrongTokenType("the token's 'typ' header names a kind of JWT that is not accepted")
        typ = claims.get("typ")
        kind = _KINDS.get(typ) if isinstance(typ, str) else None
        if kind is None:
            raise WrongTokenType(
                "the Keycloak 'typ' claim is not Bearer or ID (refresh, offline, logout tokens are refused)"
            )
        if media == "at+jwt" and kind != "access":
            raise WrongTokenType("the token's 'typ' header and claim disagree")
        return kind

    def audiences_for(self, token_type: TokenType) -> frozenset[str] | None:
        # Id tokens follow OIDC Core (engine); access tokens are bound in check().
        return frozenset(self.client_ids) if token_type == "id" else None

    def check(self, token: TokenContext) -> None:
        if token.token_type == "access":
            self._check_access_audience(token.claims, token.max_audiences)

    def _check_access_audience(self, claims: Mapping[str, Any], max_audiences: int) -> None:
        clients = frozenset(self.client_ids)
        values = audience_values(claims, max_audiences=max_audiences)
        if not clients.isdisjoint(values):
            return
        if not KEYCLOAK_BUILTIN_AUDIENCES.issuperset(values):
            raise InvalidAudience("the access token is intended for another audience")
        # No audience of ours (absent, or only Keycloak's built-in clients): the token
        # must have been issued to one of our clients.
        azp = claims.get("azp")
        if not isinstance(azp, str) or azp not in clients:
            raise InvalidAudience("neither 'aud' nor 'azp' names a configured client")

    # -- identity ---------------------------------------------------------------------------

    def identity(self, token: TokenContext) -> Identity:
        # Generic OIDC claims; roles come from realm_access / resource_access instead.
        return replace(super().identity(token), roles=self._roles(token.claims))

    def _roles(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """Realm roles as-is, then each configured client's roles as ``{client}:{role}``."""
        roles: list[str] = []
        realm_access = claims.get("realm_access")
        if isinstance(realm_access, dict):
            roles.extend(as_string_list(realm_access.get("roles")))
        resource_access = claims.get("resource_access")
        if isinstance(resource_access, dict):
            for client in self.client_ids:
                access = resource_access.get(client)
                if isinstance(access, dict):
                    roles.extend(f"{client}:{role}" for role in as_string_list(access.get("roles")))
        return tuple(dict.fromkeys(roles))


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

def _breaks_rule(idp: MockIdP) -> str:
    return idp.mint(token_type="access", typ="Refresh")


def _stand_in(claims: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    # every client in resource_access counts as configured, so $roles lists all client roles
    access = claims.get("resource_access")
    return {"client_ids": list(access) if isinstance(access, dict) else []}


PLUGIN = ProviderPlugin(
    name="keycloak",
    model=KeycloakConfig,
    shape="federation.providers.keycloak.shape:KEYCLOAK",
    demo=DemoSpec(
        "Keycloak realm",
        {"base_url": "https://sso.example.com", "realm": "demo", "client_id": "demo-app"},
        "refresh token (typ: Refresh)",
        _breaks_rule,
    ),
    stand_in=_stand_in,
)
