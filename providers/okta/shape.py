"""The claim shape of an Okta authorization server (``provider: okta``).

Owns: the default claims of Okta id tokens (``ver: 1``, ``jti`` ``ID.…``,
``aud`` = client id, ``sub`` = user id, ``groups``) and access tokens (``jti``
``AT.…``, ``aud`` = the server's audience, ``cid``, ``uid``, ``scp`` array,
``sub`` = the login), after Okta's official samples; no ``typ`` header.
``authorization_server=None`` mocks the org server (issuer ``https://{domain}``,
keys ``/oauth2/v1/keys``, id tokens only); the default is the custom server
``default``. The bridge entry is the profile's own (``domain``,
``authorization_server``, ``audiences``, ``client_ids``).

Must not: perform I/O.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, base64url_kid, profile_key_url

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["OKTA"]

_USER_ID = "00uixa271s6x7qt8I0h7"


def _setup(
    *,
    domain: str = "dev-123.okta.com",
    authorization_server: str | None = "default",
    client_id: str = "0oaoiuhhch8VRtBnC0h7",
    audience: str = "api://default",
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("okta", domain=..., authorization_server=None | "default" | "aus…",
    client_id=..., audience=...)``; ``audience`` is the server's (access tokens' ``aud``)."""
    domain = domain.lower()
    org = f"https://{domain}"
    issuer = org if authorization_server is None else f"{org}/oauth2/{authorization_server}"
    keys = f"{org}/oauth2/v1/keys" if authorization_server is None else f"{issuer}/v1/keys"
    options.setdefault("issuer", issuer)
    options.setdefault("audience", client_id)
    options.setdefault("jwks_uri", keys)
    options.setdefault(
        "provider_params",
        {
            "domain": domain,
            "authorization_server": authorization_server,
            "client_id": client_id,
            "audience": audience,
        },
    )
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    if kind == "access":
        return {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": idp.issuer,
            "aud": idp.provider_params["audience"],
            "cid": idp.audience,
            "uid": _USER_ID,
            "scp": ["openid", "profile", "email"],
            "sub": "joe.user@example.com",
            "auth_time": now,
        }
    return {
        "sub": _USER_ID,
        "ver": 1,
        "iss": idp.issuer,
        "aud": idp.audience,
        "jti": "ID." + secrets.token_urlsafe(32),
        "amr": ["pwd"],
        "idp": "00oixa26ycdNcX0VT0h7",
        "auth_time": now,
        "preferred_username": "joe.user@example.com",
        "email": "joe.user@example.com",
        "email_verified": True,
        "groups": ["Everyone"],
    }


def _headers(idp: MockIdP, kind: TokenKind) -> dict[str, Any]:
    return {"typ": None}  # Okta headers are {kid, alg}


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    profile_key_url(idp, entry)
    params = idp.provider_params
    config: dict[str, Any] = {"provider": "okta", "domain": params["domain"], "client_ids": [idp.audience]}
    server = params["authorization_server"]
    if server is not None:
        config["authorization_server"] = server
        config["audiences"] = [params["audience"]]
    return config


def _endpoints(idp: MockIdP) -> tuple[str, str]:
    # Beside the keys: {issuer}/v1/keys, or the org server's https://{domain}/oauth2/v1/keys
    base = idp.jwks_uri.rsplit("/keys", 1)[0]
    return base + "/authorize", base + "/token"


OKTA = ProviderShape(
    "okta",
    claims=_claims,
    setup=_setup,
    headers=_headers,
    issuer_config=_issuer_config,
    traits=ProviderTraits(kid=base64url_kid, endpoints=_endpoints),
)
