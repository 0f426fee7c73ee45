"""The claim shape of Google ID tokens (``provider: google``).

Owns: the default claims of a Google ID token as Sign In With Google issues
it (issuer ``https://accounts.google.com``, ``aud`` and ``azp`` = the OAuth
client id, a numeric ``sub``, ``email``/``email_verified``, profile claims, and
``hd`` for a Workspace account), Google's key set URL
``https://www.googleapis.com/oauth2/v3/certs`` (another host than the issuer),
and the profile's entry (``client_ids``, ``hosted_domains``, and ``jwks_uri``
when the keys are served elsewhere). Google access
tokens are opaque, not JWTs: asking for one is an error. The legacy issuer
spelling is one keyword away: ``idp.mint(iss="accounts.google.com")``.

Must not: perform I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, hex_kid

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["GOOGLE"]

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"


def _setup(
    *,
    client_id: str = "1234567890-abc123def456.apps.googleusercontent.com",
    hosted_domain: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("google", client_id=..., hosted_domain=<Workspace domain> | None)``."""
    options.setdefault("issuer", GOOGLE_ISSUER)
    options.setdefault("audience", client_id)
    options.setdefault("jwks_uri", GOOGLE_JWKS_URI)
    options.setdefault("provider_params", {"client_id": client_id, "hosted_domain": hosted_domain})
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    if kind == "access":
        raise ValueError("Google access tokens are opaque, not JWTs: the google shape mints id tokens only")
    hd = idp.provider_params["hosted_domain"]
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "azp": idp.audience,
        "aud": idp.audience,
        "sub": "110169484474386276334",
        "email": f"elisa.beckett@{hd}" if hd else "elisa.g.beckett@gmail.com",
        "email_verified": True,
        "name": "Elisa Beckett",
        "picture": "https://lh3.googleusercontent.com/a-/e2718281828459045235360uler",
        "given_name": "Elisa",
        "family_name": "Beckett",
        "jti": "abc161803398874def",
    }
    if hd:
        claims["hd"] = hd
    return claims


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"provider": "google", "client_ids": [idp.audience]}
    hd = idp.provider_params["hosted_domain"]
    if hd:
        config["hosted_domains"] = [hd]
    if entry.get("jwks_uri", GOOGLE_JWKS_URI) != GOOGLE_JWKS_URI:  # the loopback server, an emulator
        config["jwks_uri"] = entry["jwks_uri"]
    return config


def _endpoints(idp: MockIdP) -> tuple[str, str]:
    return "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token"


GOOGLE = ProviderShape(
    "google",
    claims=_claims,
    setup=_setup,
    issuer_config=_issuer_config,
    jwt_access_tokens=False,
    traits=ProviderTraits(
        kid=hex_kid,  # 40 hex digits (SHA-1)
        spare_keys=1,  # Google's set always holds at least two keys
        endpoints=_endpoints,
        iss_parameter=False,
        # Google's max-age counts down to its next rotation; about six hours is typical.
        jwks_cache_control="public, max-age=21532, must-revalidate, no-transform",
    ),
)
