"""The claim shape of Firebase Authentication ID tokens (``provider: firebase``).

Owns: the default claims of a Firebase ID token (issuer
``https://securetoken.google.com/{project_id}``, ``aud`` = the project id,
``user_id`` = ``sub``, ``auth_time`` an hour before ``iat``, the ``firebase``
claim with ``identities``, ``sign_in_provider`` and, for an Identity Platform
tenant, ``tenant``), the keys as Google's ``{kid: PEM certificate}`` map at
``https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com``
(``key_format="x509_pem_map"``: a self-signed certificate per key; with
``key_format="jwks"`` a JWK Set, which the entry then names as its
``jwks_uri`` override), and the profile's entry (``project_id``, ``tenants``). Firebase issues ID tokens
only: asking for an access token is an error.

Must not: perform I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, hex_kid

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["FIREBASE"]

FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"
FIREBASE_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)
_UID = "YX4oa0l2AXh4cQE4yodfchnYma02"
_EMAIL = "kashif.shaikh@gmail.com"


def _setup(
    *,
    project_id: str = "my-project",
    tenant: str | None = None,
    sign_in_provider: str = "google.com",
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("firebase", project_id=..., tenant=<tenant id> | None,
    sign_in_provider="google.com" | "password" | "anonymous" | ...)``."""
    options.setdefault("issuer", FIREBASE_ISSUER_PREFIX + project_id)
    options.setdefault("audience", project_id)
    options.setdefault("jwks_uri", FIREBASE_CERTS_URL)
    options.setdefault("key_format", "x509_pem_map")
    options.setdefault(
        "provider_params",
        {"project_id": project_id, "tenant": tenant, "sign_in_provider": sign_in_provider},
    )
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    if kind == "access":
        raise ValueError("Firebase issues ID tokens only: the firebase shape mints id tokens only")
    params = idp.provider_params
    method = params["sign_in_provider"]
    identities: dict[str, list[str]] = {}
    claims: dict[str, Any] = {"iss": idp.issuer, "aud": idp.audience, "auth_time": now - 3600}
    if method == "google.com":
        claims.update(name="Kashif Shaikh", picture="https://lh3.googleusercontent.com/a-/AOh14GjQhMB")
        identities["google.com"] = ["102769505389790198629"]
    claims.update(user_id=_UID, sub=_UID)
    if method != "anonymous":
        # Firebase vouches for an address once verified: at once for Google accounts, not for passwords
        claims.update(email=_EMAIL, email_verified=method != "password")
        identities["email"] = [_EMAIL]
    firebase: dict[str, Any] = {"identities": identities, "sign_in_provider": method}
    if params["tenant"] is not None:
        firebase["tenant"] = params["tenant"]
    claims["firebase"] = firebase
    return claims


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    params = idp.provider_params
    config: dict[str, Any] = {"provider": "firebase", "project_id": params["project_id"]}
    if params["tenant"] is not None:
        config["tenants"] = [params["tenant"]]
    jwks_uri = entry.get("jwks_uri")
    if idp.key_format == "jwks":
        # The profile's jwks_uri override is a JWK Set, which this mock serves.
        config["jwks_uri"] = jwks_uri or idp.jwks_uri
    elif jwks_uri is not None and jwks_uri != FIREBASE_CERTS_URL:
        raise ValueError(
            "the firebase profile reads Google's certificate map only from its own URL; a jwks_uri "
            "override is a JWK Set: build the mock with key_format='jwks' to serve one"
        )
    return config


#: Firebase's discovery document names this JWK Set (not the certificate map).
FIREBASE_JWK_URL = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"

FIREBASE = ProviderShape(
    "firebase",
    claims=_claims,
    setup=_setup,
    issuer_config=_issuer_config,
    jwt_access_tokens=False,
    traits=ProviderTraits(kid=hex_kid, iss_parameter=False, discovery_jwks_uri=FIREBASE_JWK_URL),
)
