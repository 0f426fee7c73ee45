"""The claim shape of a generic OpenID Connect issuer (``provider: oidc``).

Owns: the default claims of a standard id token (``iss``, ``sub``, ``aud``,
``jti``) and of an RFC 9068 access token (``typ: at+jwt``, ``client_id``,
``scope``). It is also the template for provider shape modules: one module
``shape.py`` next to its profile, named by the provider's ``PLUGIN``.

Must not: perform I/O.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, TokenKind

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["OIDC"]


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "sub": "user-1",
        "aud": idp.audience,
        "jti": secrets.token_urlsafe(12),
    }
    if kind == "access":
        claims["client_id"] = idp.audience
        claims["scope"] = "openid"
    return claims


def _headers(idp: MockIdP, kind: TokenKind) -> dict[str, Any]:
    return {"typ": "at+jwt"} if kind == "access" else {}


OIDC = ProviderShape("oidc", claims=_claims, headers=_headers)
