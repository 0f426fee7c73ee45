"""Entra ID / B2C token shapes and a key-set server for the azure_ad profile tests.

The sample payloads are Microsoft's official samples (providers.md §2.8, from
learn.microsoft.com id-tokens / access-tokens), without their timestamps: the
tests re-sign them with test keys at the frozen clock's time.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import httpx

from federation.testing import SigningKey

MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
TEMPLATE_V2 = "https://login.microsoftonline.com/{tenantid}/v2.0"

# -- official samples (timestamps removed) ---------------------------------------------------

V1_ID_SAMPLE: dict[str, Any] = {
    "aud": "b14a7505-96e9-4927-91e8-0601d0fc9caa",
    "iss": "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f2956fd429/",
    "aio": "AXQAi/8IAAAAqxsuB+R4D2rFQqOETO4YdXbLD9kZ8xfXadeAM0Q2NkNT5izfg3uwbWSXhuSSj6UT5hy2D6WqApB5jKA6"
    "ZgZ9k/SU27uV9cetXfLOtpNttgk5DcBtk+LLstz/Jg+gYRmv9bUU4XlphTc6C86Jmj1FCw==",
    "amr": ["rsa"],
    "email": "abeli@microsoft.com",
    "family_name": "Lincoln",
    "given_name": "Abe",
    "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
    "ipaddr": "131.107.222.22",
    "name": "abeli",
    "nonce": "123523",
    "oid": "05833b6b-aa1d-42d4-9ec0-1b2bb9194438",
    "rh": "I",
    "sub": "5_J9rSss8-jvt_Icu6ueRNL8xXb8LF4Fsg_KooC2RJQ",
    "tid": "fa15d692-e9c7-4460-a743-29f2956fd429",
    "unique_name": "AbeLi@microsoft.com",
    "uti": "Lxe_46GqTkOpGSfTln4EAA",
    "ver": "1.0",
}
V1_ID_HEADER = {"x5t": "7_Zuf1tvkwLxYaHS3q6lUjUYIGw"}

# Quirk: presented as a personal-account token, but its tenant is 9122040d-..., not the MSA tenant.
V2_ID_SAMPLE: dict[str, Any] = {
    "ver": "2.0",
    "iss": "https://login.microsoftonline.com/9122040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
    "aud": "6cb04018-a3f5-46a7-b995-940c78f5aef3",
    "name": "Abe Lincoln",
    "preferred_username": "AbeLi@microsoft.com",
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "tid": "9122040d-6c67-4c5b-b112-36a304b66dad",
    "nonce": "123523",
    "aio": "Df2UVXL1ix!lMCWMSOJBcFatzcGfvFGhjKv8q5g0x732dR5MB5BisvGQO7YWByjd8iQDLq!eGbIDakyp5mnOrcdqHe"
    "YSnltepQmRp6AIZ8jY",
}

# Quirk: 'iss' names tenant fa15d692-...-29f29522229 (11 hex digits), 'tid' is fa15d692-...-29f2956fd429.
V1_ACCESS_SAMPLE: dict[str, Any] = {
    "aud": "ef1da9d4-ff77-4c3e-a005-840c3f830745",
    "iss": "https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/",
    "acr": "1",
    "aio": "AXQAi/8IAAAAFm+E/QTG+gFnVxLjWdw8K+61AGrSOuMMF6ebaMj7XO3IbmD3fGmrOyD+NvZyGn2VaT/kDKXw4MIhrgG"
    "Vq6Bn8wLXoT1LkIZ+FzQVkJPPLQOV4KcXqSlCVPDS/DiCDgE222TImMvWNaEMaUOTsIGvTQ==",
    "amr": ["wia"],
    "appid": "75dbe77f-10a3-4e59-85fd-8c127544f17c",
    "appidacr": "0",
    "email": "AbeLi@microsoft.com",
    "family_name": "Lincoln",
    "given_name": "Abe (MSFT)",
    "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd0122247/",
    "ipaddr": "222.222.222.22",
    "name": "abeli",
    "oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438",
    "rh": "I",
    "scp": "user_impersonation",
    "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
    "tid": "fa15d692-e9c7-4460-a743-29f2956fd429",
    "unique_name": "abeli@microsoft.com",
    "uti": "FVsGxYXI30-TuikuuUoFAA",
    "ver": "1.0",
}

V2_ACCESS_SAMPLE: dict[str, Any] = {
    "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
    "aio": "AXQAi/8IAAAAtAaZLo3ChMif6KOnttRB7eBq4/DccQzjcJGxPYy/C3jDaNGxXd6wNIIVGRghNRnwJ1lOcAnNZcjvkoy"
    "rFxCttv33140RioOFJ4bCCGVuoCag1uOTT22222gHwLPYQ/uf79QX+0KIijdrmp69RctzmQ==",
    "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "azpacr": "0",
    "name": "Abe Lincoln",
    "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
    "preferred_username": "abeli@microsoft.com",
    "rh": "I",
    "scp": "access_as_user",
    "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
    "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "uti": "fqiBqXLPj0eQa82S-IYFAA",
    "ver": "2.0",
}

# B2C access token sample (its truncated ids completed with made-up digits).
B2C_TENANT_ID = "c64a4f7d-3091-4c73-a7f0-4a1a3c2b1d0e"
B2C_ACCESS_SAMPLE: dict[str, Any] = {
    "iss": f"https://contoso0926tenant.b2clogin.com/{B2C_TENANT_ID}/v2.0/",
    "aud": "f2a76e08-93f2-4350-833c-965b4a1c2d3e",
    "oid": "1558f87f-452b-4757-bcd1-883a1b2c3d4e",
    "sub": "1558f87f-452b-4757-bcd1-883a1b2c3d4e",
    "name": "David",
    "tfp": "B2C_1_signupsignin1",
    "nonce": "anyRandomValue",
    "scp": "read",
    "azp": "38307aee-303c-4fff-8087-d8d2a1b2c3d4",
    "ver": "1.0",
}


def sample(payload: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """A deep copy of ``payload`` with ``overrides`` (None removes a claim)."""
    claims = copy.deepcopy(dict(payload))
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


# -- claim-shape factory ------------------------------------------------------------------------


def entra_issuer(tenant: str, version: str, host: str = "login.microsoftonline.com") -> str:
    """The exact issuer of an Entra token of ``version`` for ``tenant`` (public cloud v1 host)."""
    return f"https://sts.windows.net/{tenant}/" if version == "1.0" else f"https://{host}/{tenant}/v2.0"


def entra_jwks_uri(tenant: str, host: str = "login.microsoftonline.com", app_id: str | None = None) -> str:
    """Where the azure_ad profile fetches keys (``tenant``: GUID, common, organizations, consumers)."""
    uri = f"https://{host}/{tenant}/discovery/v2.0/keys"
    return uri + (f"?appid={app_id}" if app_id else "")


def entra_claims(
    tenant: str, client_id: str, version: str = "2.0", token_type: str = "id", **overrides: Any
) -> dict[str, Any]:
    """Claims shaped like a real Entra token (no iat/exp/nbf: the mock stamps them).

    ``version`` "1.0" or "2.0"; ``token_type`` "id" or "access" (delegated,
    with ``scp``). ``client_id`` is the audience (and the caller for access
    tokens unless ``appid``/``azp`` is overridden). None in ``overrides``
    removes a claim.
    """
    claims: dict[str, Any] = {
        "iss": entra_issuer(tenant, version),
        "aud": client_id,
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "tid": tenant,
        "ver": version,
        "name": "Abe Lincoln",
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "rh": "I",
    }
    if version == "1.0":
        claims["unique_name"] = "abeli@contoso.example"
        claims["upn"] = "abeli@contoso.example"
    else:
        claims["preferred_username"] = "abeli@contoso.example"
    if token_type == "access":
        claims["scp"] = "access_as_user"
        if version == "1.0":
            claims.update(appid=client_id, appidacr="0")
        else:
            claims.update(azp=client_id, azpacr="0")
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def entra_jwk(key: SigningKey, issuer: str | None = TEMPLATE_V2) -> dict[str, Any]:
    """``key``'s public JWK as Entra publishes it: no ``alg``, ``use: sig``, an ``issuer`` member."""
    jwk = {k: v for k, v in key.public_jwk.items() if k != "alg"}
    jwk["use"] = "sig"
    if issuer is not None:
        jwk["issuer"] = issuer
    return jwk


class KeyServer:
    """Serves JWK Sets at exact URLs through ``httpx.MockTransport``; records every request."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []

    def publish(self, url: str, *jwks: dict[str, Any]) -> None:
        self.documents[url] = {"keys": list(jwks)}

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        document = self.documents.get(url)
        if document is None:
            return httpx.Response(404, text="not found")
        return httpx.Response(200, json=document, headers={"cache-control": "max-age=86400, private"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
