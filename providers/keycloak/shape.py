"""The claim shape of a Keycloak realm (``provider: keycloak``).

Owns: the default claims of Keycloak 25 tokens: access tokens (payload ``typ:
Bearer``, ``aud: account``, ``azp`` = the client, ``realm_access`` and
``resource_access`` roles, ``scope``, ``sid``, ``allowed-origins``) and id
tokens (``typ: ID``, ``aud`` = the client, ``at_hash``, no roles, as the
default ``roles`` scope adds them to access tokens only); the realm's issuer
``{base_url}/realms/{realm}`` and certs endpoint; the realm's key set with
``x5c``/``x5t`` and, beside the signing key, an ``enc`` key (RSA-OAEP), as
Keycloak publishes; and the profile's entry (``base_url``, ``realm``,
``client_ids``).

Must not: perform I/O.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, base64url_kid

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["KEYCLOAK"]

_USER = "8befeac4-8963-49da-a9ac-f310e8d922d8"


def _setup(
    *,
    base_url: str = "https://sso.example.com",
    realm: str = "example",
    client_id: str = "web-app",
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("keycloak", base_url=... (legacy: .../auth), realm=..., client_id=...)``."""
    base_url = base_url.rstrip("/")
    issuer = f"{base_url}/realms/{realm}"
    options.setdefault("issuer", issuer)
    options.setdefault("audience", client_id)
    options.setdefault("jwks_uri", issuer + "/protocol/openid-connect/certs")
    options.setdefault("provider_params", {"base_url": base_url, "realm": realm, "client_id": client_id})
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    realm = idp.provider_params["realm"]
    claims: dict[str, Any] = {
        "auth_time": now,
        "jti": str(uuid.uuid4()),
        "iss": idp.issuer,
        "sub": _USER,
        "azp": idp.audience,
        "sid": "54db1502-a5dc-4a27-af62-eeef0694a628",
        "acr": "1",
        "email_verified": True,
        "name": "Pat Teacher",
        "preferred_username": "pat",
        "given_name": "Pat",
        "family_name": "Teacher",
        "email": "pat@example.org",
    }
    if kind == "access":
        claims.update(
            aud="account",
            typ="Bearer",
            scope="openid email profile",
            realm_access={"roles": [f"default-roles-{realm.lower()}", "offline_access", "uma_authorization"]},
            resource_access={
                idp.audience: {"roles": ["user"]},
                "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]},
            },
        )
        claims["allowed-origins"] = ["https://app.example.com"]
    else:
        claims.update(
            aud=idp.audience,
            typ="ID",
            nonce=secrets.token_urlsafe(8),
            at_hash=secrets.token_urlsafe(16),
        )
    return claims


@functools.cache
def _encryption_jwk() -> dict[str, Any]:
    """The realm's RSA-OAEP encryption key (public part; one for every mock realm)."""
    from federation.testing import generate_signing_key

    jwk = dict(generate_signing_key("RS256", kid="enc-" + secrets.token_urlsafe(8)).public_jwk)
    jwk.update(alg="RSA-OAEP", use="enc")
    return jwk


def _jwks(idp: MockIdP, document: dict[str, Any]) -> dict[str, Any]:
    from federation.testing import x509_jwk_members

    by_kid = {key.kid: key for key in idp.keys}
    keys = []
    for jwk in document["keys"]:
        key = by_kid.get(jwk.get("kid", ""))
        keys.append({**jwk, **x509_jwk_members(idp.certificate(key))} if key is not None else jwk)
    return {"keys": [*keys, dict(_encryption_jwk())]}


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    params = idp.provider_params
    config: dict[str, Any] = {
        "provider": "keycloak",
        "base_url": params["base_url"],
        "realm": params["realm"],
        "client_ids": [idp.audience],
    }
    jwks_uri = entry.get("jwks_uri")
    if jwks_uri is not None and jwks_uri != idp.jwks_uri:  # the loopback server (served=True)
        config["jwks_uri"] = jwks_uri
    return config


def _endpoints(idp: MockIdP) -> tuple[str, str]:
    base = idp.issuer.rstrip("/") + "/protocol/openid-connect"
    return base + "/auth", base + "/token"


KEYCLOAK = ProviderShape(
    "keycloak",
    claims=_claims,
    setup=_setup,
    issuer_config=_issuer_config,
    jwks=_jwks,
    traits=ProviderTraits(kid=base64url_kid, endpoints=_endpoints, jwks_cache_control="no-cache"),
)
