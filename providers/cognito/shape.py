"""The claim shape of an AWS Cognito user pool (``provider: cognito``).

Owns: the default claims of Cognito id tokens (``token_use: id``, ``aud`` = app
client id, ``cognito:username``, ``cognito:groups``) and access tokens
(``token_use: access``, ``client_id``, ``username``, ``scope``, ``version: 2``,
no ``aud``), after AWS's official samples; no ``typ`` header, as Cognito sends
none. The mock's key set is served at the pool's fixed URL on the
``cognito-idp`` host whichever issuer form it uses, and the bridge entry is the
profile's own (``user_pool_id``, ``client_ids``, plus ``jwks_uri`` when the
keys are served elsewhere: the loopback server, a ``jwks_uri=`` of the mock).

Must not: perform I/O.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, standard_base64_kid

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["COGNITO"]


def _setup(
    *,
    user_pool_id: str = "us-west-2_example",
    region: str | None = None,
    client_id: str = "xxxxxxxxxxxxexample",
    issuer_form: str = "original",
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("cognito", user_pool_id=..., region=..., client_id=..., issuer_form="updated")``."""
    pool_region = user_pool_id.rsplit("_", 1)[0]
    if region is not None and region != pool_region:
        raise ValueError(f"region {region!r} is not the region of user pool {user_pool_id!r}")
    if issuer_form not in ("original", "updated"):
        raise ValueError("issuer_form must be 'original' or 'updated'")
    canonical = _canonical_issuer(user_pool_id)
    issuer = (
        canonical if issuer_form == "original" else canonical.replace("://cognito-", "://issuer-cognito-")
    )
    options.setdefault("issuer", issuer)
    options.setdefault("audience", client_id)
    options.setdefault("jwks_uri", canonical + "/.well-known/jwks.json")
    options.setdefault(
        "provider_params",
        {"user_pool_id": user_pool_id, "region": region, "client_id": client_id, "issuer_form": issuer_form},
    )
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    common: dict[str, Any] = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["test-group-a"],
        "iss": idp.issuer,
        "origin_jti": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "auth_time": now,
        "jti": str(uuid.uuid4()),
    }
    if kind == "access":
        return {
            **common,
            "token_use": "access",
            "client_id": idp.audience,
            "scope": "openid profile email",
            "username": "my-test-user",
            "version": 2,
        }
    return {
        **common,
        "token_use": "id",
        "aud": idp.audience,
        "cognito:username": "my-test-user",
        "cognito:roles": ["arn:aws:iam::111122223333:role/my-test-role"],
        "cognito:preferred_role": "arn:aws:iam::111122223333:role/my-test-role",
        "email": "my-test-user@example.com",
        "email_verified": True,
        "nonce": secrets.token_urlsafe(8),
    }


def _headers(idp: MockIdP, kind: TokenKind) -> dict[str, Any]:
    return {"typ": None}  # Cognito headers are {kid, alg}


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    params = idp.provider_params
    config: dict[str, Any] = {
        "provider": "cognito",
        "user_pool_id": params["user_pool_id"],
        "client_ids": [idp.audience],
    }
    if params.get("region") is not None:
        config["region"] = params["region"]
    pool_keys = _canonical_issuer(params["user_pool_id"]) + "/.well-known/jwks.json"
    if entry.get("jwks_uri", pool_keys) != pool_keys:  # the loopback server, an emulator's URL
        config["jwks_uri"] = entry["jwks_uri"]
    return config


def _canonical_issuer(user_pool_id: str) -> str:
    return f"https://cognito-idp.{user_pool_id.rsplit('_', 1)[0]}.amazonaws.com/{user_pool_id}"


COGNITO = ProviderShape(
    "cognito",
    claims=_claims,
    setup=_setup,
    headers=_headers,
    issuer_config=_issuer_config,
    # A user pool's kids are standard base64 (+, / and =), and its id and access tokens
    # are signed by two key pairs.
    traits=ProviderTraits(kid=standard_base64_kid, access_key=True),
)
