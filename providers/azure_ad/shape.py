"""The claim shape of Microsoft Entra ID (``provider: azure_ad``).

Owns: the default claims of Entra id and access tokens after Microsoft's
official samples, v2 (``ver: "2.0"``, issuer ``https://{authority_host}/{tid}/v2.0``,
``preferred_username``; access tokens ``scp``, ``azp``, ``azpacr``) and v1
(``ver: "1.0"``, issuer ``https://sts.windows.net/{tid}/``, ``unique_name``/``upn``;
access tokens ``scp``, ``appid``, ``appidacr``; header ``x5t``), always with
``tid``, ``oid``, ``sub``, ``groups`` and ``roles``; ``aud`` as Entra sets it
(the client id GUID in id tokens and all v2 tokens, the App ID URI or the GUID
in v1 access tokens); Entra's key set as Entra
serves it at ``https://{authority_host}/{tenant}/discovery/v2.0/keys``: no
``alg``, ``use: sig``, ``x5t``/``x5c`` of a self-signed certificate, and an
``issuer`` member, the ``{tenantid}`` template; and the profile's entry
(``tenant``, ``audiences``, ``versions``, ``allowed_tenants``).

Must not: perform I/O.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from federation.testing import ProviderShape, ProviderTraits, TokenKind, profile_key_url

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["AZURE_AD", "entra_key_set"]

PUBLIC_CLOUD_HOST = "login.microsoftonline.com"
#: The tenant of personal Microsoft accounts (``consumers``).
MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
#: Microsoft's documentation placeholders for a tenant and an application.
DEFAULT_TENANT_ID = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
DEFAULT_CLIENT_ID = "00001111-aaaa-2222-bbbb-3333cccc4444"

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MULTI_TENANT = ("common", "organizations")


def entra_key_set(
    idp: MockIdP, document: dict[str, Any], issuer: str | None, *, certificates: bool = True
) -> dict[str, Any]:
    """``document``'s keys as Entra publishes them: no ``alg``, ``use: sig``, ``x5t``
    and ``x5c`` of a certificate (unless ``certificates=False``: B2C), and the
    key's ``issuer`` member when given."""
    from federation.testing import x509_jwk_members

    by_kid = {key.kid: key for key in idp.keys}
    keys = []
    for jwk in document["keys"]:
        entry = {k: v for k, v in jwk.items() if k != "alg"}
        entry["use"] = "sig"
        key = by_kid.get(jwk.get("kid", ""))
        if key is not None and certificates:
            members = x509_jwk_members(idp.certificate(key))
            entry["x5t"], entry["x5c"] = members["x5t"], members["x5c"]
        if issuer is not None:
            entry["issuer"] = issuer
        keys.append(entry)
    return {"keys": keys}


def _setup(
    *,
    tenant: str = DEFAULT_TENANT_ID,
    tenant_id: str | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    app_id_uri: str | None = None,
    version: str = "2.0",
    authority_host: str = PUBLIC_CLOUD_HOST,
    **options: Any,
) -> dict[str, Any]:
    """``for_provider("azure_ad", tenant=<GUID> | "organizations" | "common" | "consumers",
    tenant_id=<the users' tenant GUID, multi-tenant>, client_id=<GUID>, app_id_uri="api://...",
    version="2.0" | "1.0", authority_host=...)``.

    ``aud`` is what Entra puts there: the client id GUID in id tokens and in every v2
    token; ``app_id_uri`` (when given) in v1 access tokens. An ``audience=`` that is
    not a GUID is refused: no real Entra token carries it in every kind."""
    if not _GUID.fullmatch(client_id):
        raise ValueError("client_id is the application (client) id, a lowercase GUID")
    audience = options.get("audience", client_id)
    if not isinstance(audience, str) or not _GUID.fullmatch(audience):
        raise ValueError(
            "Entra tokens carry the application (client) id GUID as aud (v1 access tokens may carry "
            "the App ID URI instead): pass client_id=<GUID> and app_id_uri='api://...'"
        )
    tenant = tenant.lower()
    if _GUID.fullmatch(tenant):
        if tenant_id is not None and tenant_id != tenant:
            raise ValueError("tenant_id is the users' tenant of a multi-tenant app; a GUID tenant is it")
        tid = tenant
    elif tenant == "consumers":
        tid = MSA_TENANT_ID
    elif tenant in _MULTI_TENANT:
        tid = (tenant_id or DEFAULT_TENANT_ID).lower()
    else:
        raise ValueError("tenant must be a tenant GUID or common, organizations, consumers")
    if version not in ("1.0", "2.0"):
        raise ValueError("version must be '1.0' or '2.0'")
    if version == "1.0" and authority_host != PUBLIC_CLOUD_HOST:
        raise ValueError("the mock serves version 1.0 tokens in the public cloud only")
    issuer = f"https://sts.windows.net/{tid}/" if version == "1.0" else f"https://{authority_host}/{tid}/v2.0"
    options.setdefault("issuer", issuer)
    options.setdefault("audience", client_id)
    options.setdefault("jwks_uri", f"https://{authority_host}/{tenant}/discovery/v2.0/keys")
    options.setdefault(
        "provider_params",
        {
            "tenant": tenant,
            "tenant_id": tid,
            "client_id": client_id,
            "app_id_uri": app_id_uri,
            "version": version,
            "authority_host": authority_host,
        },
    )
    return options


def _claims(idp: MockIdP, kind: TokenKind, now: int) -> dict[str, Any]:
    params = idp.provider_params
    version = params["version"]
    claims: dict[str, Any] = {
        "aud": idp.audience,
        "iss": idp.issuer,
        "aio": "AXQAi/8IAAAAqxsuB+R4D2rFQqOETO4YdXbLD9kZ8xfXadeAM0Q2NkNT5izfg3uwbWSXhuSSj6UT5hy2D6WqApB5jKA6",
        "name": "Abe Lincoln",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        "tid": params["tenant_id"],
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "rh": "I",
        "ver": version,
        "groups": ["b5a0c1d2-3e4f-4a5b-8c6d-7e8f9a0b1c2d"],
        "roles": ["Task.Read"],
    }
    if version == "1.0":
        claims.update(
            amr=["pwd"],
            family_name="Lincoln",
            given_name="Abe",
            ipaddr="131.107.222.22",
            unique_name="abeli@contoso.example",
            upn="abeli@contoso.example",
        )
    else:
        claims["preferred_username"] = "abeli@contoso.example"
    if kind == "id":
        claims["email"] = "abeli@contoso.example"  # unverified for Entra unless xms_edov is true
        claims["nonce"] = "123523"
    elif version == "1.0":
        # v1 access tokens name the resource as it was requested: the App ID URI, or the GUID.
        claims.update(scp="user_impersonation", appid=idp.audience, appidacr="0")
        claims["aud"] = params.get("app_id_uri") or idp.audience
    else:
        claims.update(scp="access_as_user", azp=idp.audience, azpacr="0")
    return claims


def _headers(idp: MockIdP, kind: TokenKind) -> dict[str, Any]:
    if idp.provider_params["version"] == "1.0":  # v1 tokens also name the certificate
        from federation.testing import x509_jwk_members

        return {"x5t": x509_jwk_members(idp.certificate())["x5t"]}
    return {}


def _issuer_config(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    profile_key_url(idp, entry)
    params = idp.provider_params
    audiences = [idp.audience]
    if params.get("app_id_uri") and params["version"] == "1.0":
        audiences.append(params["app_id_uri"])
    config: dict[str, Any] = {"provider": "azure_ad", "tenant": params["tenant"], "audiences": audiences}
    if params["tenant"] in _MULTI_TENANT:
        config["allowed_tenants"] = [params["tenant_id"]]
    if params["version"] != "2.0":
        config["versions"] = [params["version"]]
    if params["authority_host"] != PUBLIC_CLOUD_HOST:
        config["authority_host"] = params["authority_host"]
    return config


def _jwks(idp: MockIdP, document: dict[str, Any]) -> dict[str, Any]:
    return entra_key_set(idp, document, f"https://{idp.provider_params['authority_host']}/{{tenantid}}/v2.0")


def entra_endpoints(idp: MockIdP) -> tuple[str, str]:
    """The authorize and token endpoints under the tenant the keys are fetched for."""
    base = idp.jwks_uri.rsplit("/discovery/", 1)[0]  # .../{tenant}/discovery/v2.0/keys
    if idp.provider_params.get("version") == "1.0":
        return base + "/oauth2/authorize", base + "/oauth2/token"
    return base + "/oauth2/v2.0/authorize", base + "/oauth2/v2.0/token"


AZURE_AD = ProviderShape(
    "azure_ad",
    claims=_claims,
    setup=_setup,
    headers=_headers,
    issuer_config=_issuer_config,
    jwks=_jwks,
    id_token_azp=False,  # Entra's id tokens never carry azp; its access tokens do (v2)
    traits=ProviderTraits(
        kid="x5t",  # Entra's kid is the certificate thumbprint, x5t
        endpoints=entra_endpoints,
        iss_parameter=False,  # Entra neither sends iss on the redirect nor advertises it
        jwks_cache_control="max-age=86400, private",
    ),
)
