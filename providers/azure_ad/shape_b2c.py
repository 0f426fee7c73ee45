"""The claim shape of Azure AD B2C (``provider: azure_ad_b2c``).

Owns: the default claims of B2C id and access tokens after Microsoft's
samples (``ver: "1.0"`` on a ``/v2.0/`` issuer with a trailing slash, ``tfp``
naming the user flow, ``oid`` = ``sub``, ``emails``; access tokens ``scp`` and
``azp``), the default and ``tfp`` issuer forms, the per-policy key set at
``https://{domain}/{tenant_name}.onmicrosoft.com/{policy}/discovery/v2.0/keys``
(no ``alg``, no ``issuer`` member), and the profile's entry (``tenant_name``,
``tenant_id``, ``policies``, ``audiences``).

Must not: perform I/O.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, profile_key_url

from .shape import DEFAULT_CLIENT_ID, DEFAULT_TENANT_ID, entra_endpoints, entra_key_set

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["AZURE_AD_B2C"]


def _setup(
    *,
    tenant_name: str = "contoso",
    tenant_id: str = DEFAULT_TENANT_ID,
    policy: str = "B2C_1_signupsignin1",
    client_id: str = DEFAULT_CLIENT_ID,
    domain: str | None = None,
    issuer_form: str = "default",
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("azure_ad_b2c", tenant_name=..., tenant_id=..., policy=..., client_id=...,
    domain=<custom domain>, issuer_form="default" | "tfp")``."""
    if issuer_form not in ("default", "tfp"):
        raise ValueError("issuer_form must be 'default' or 'tfp'")
    host = domain or f"{tenant_name}.b2clogin.com"
    issuer = (
        f"https://{host}/{tenant_id}/v2.0/"
        if issuer_form == "default"
        else f"https://{host}/tfp/{tenant_id}/{policy}/v2.0/"
    )
    options.setdefault("issuer", issuer)
    options.setdefault("audience", client_id)
    options.setdefault(
        "jwks_uri", f"https://{host}/{tenant_name}.onmicrosoft.com/{policy}/discovery/v2.0/keys"
    )
    options.setdefault(
        "provider_params",
        {
            "tenant_name": tenant_name,
            "tenant_id": tenant_id,
            "policy": policy,
            "client_id": client_id,
            "domain": domain,
            "issuer_form": issuer_form,
        },
    )
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    user = "1558f87f-452b-4757-bcd1-883a1b2c3d4e"
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": idp.audience,
        "oid": user,
        "sub": user,
        "name": "David",
        "emails": ["david@contoso.example"],
        "tfp": idp.provider_params["policy"],
        "nonce": secrets.token_urlsafe(8),
        "auth_time": now,
        "ver": "1.0",
    }
    if kind == "access":
        claims.update(scp="read", azp="38307aee-303c-4fff-8087-d8d2a1b2c3d4")
    return claims


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    profile_key_url(idp, entry)
    params = idp.provider_params
    config: dict[str, Any] = {
        "provider": "azure_ad_b2c",
        "tenant_name": params["tenant_name"],
        "tenant_id": params["tenant_id"],
        "policies": [params["policy"]],
        "audiences": [idp.audience],
    }
    if params["domain"] is not None:
        config["domain"] = params["domain"]
    if params["issuer_form"] != "default":
        config["issuer_forms"] = [params["issuer_form"]]
    return config


def _jwks(idp: MockIdP, document: dict[str, Any]) -> dict[str, Any]:
    return entra_key_set(idp, document, None, certificates=False)


AZURE_AD_B2C = ProviderShape(
    "azure_ad_b2c",
    claims=_claims,
    setup=_setup,
    issuer_config=_issuer_config,
    jwks=_jwks,
    traits=ProviderTraits(endpoints=entra_endpoints, iss_parameter=False),
)
