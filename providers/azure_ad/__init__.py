"""Microsoft Entra ID (Azure AD) and Azure AD B2C profiles.

``provider: azure_ad`` (:class:`AzureAdConfig`) owns the Entra rules: issuers
chosen by the token's ``ver`` (v1 ``https://sts.windows.net/{tid}/``, v2
``https://{authority_host}/{tid}/v2.0``), single-tenant issuers listed
exactly, multi-tenant (``common``/``organizations``) restricted to
``allowed_tenants`` unless ``allow_any_tenant`` is set, ``tid`` bound to
``iss``, the signing key's own ``issuer`` member honoured, Graph tokens
(``nonce`` header) refused before the signature, and the identity keyed on
(``entra:<tid>``, ``oid``) with Entra's email treated as unverified unless
``xms_edov`` is true (nOAuth) and group overage surfaced, never hidden.

``provider: azure_ad_b2c`` (:class:`AzureAdB2CConfig`) owns B2C: the
``b2clogin.com`` (or custom domain) issuers with a trailing slash, default
and ``tfp`` forms, per-policy key endpoint, allowed policies checked against
``tfp`` (or the legacy ``acr``).

They are two models because they share almost nothing: B2C tokens say
``ver: "1.0"`` on ``/v2.0/`` issuers, have no tenant choice (one B2C tenant
per entry) and carry a policy; Entra has versions, tenants and overage.

Must not: perform I/O, fetch anything named in a token (``_claim_sources``),
or trust the unverified token to choose a key URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from federation.errors import InvalidAudience, InvalidClaim, UntrustedIssuer, WrongTokenType
from federation.plugins import DemoSpec, ProviderPlugin
from federation.spi import (
    Identity,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    TokenType,
    as_strict_bool,
    as_string_list,
    audience_values,
    classify_token,
)

if TYPE_CHECKING:
    from federation.testing import MockIdP

__all__ = ["B2C_PLUGIN", "MSA_TENANT_ID", "PLUGIN", "AzureAdB2CConfig", "AzureAdConfig"]

#: The tenant of personal Microsoft accounts (``consumers``).
MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"

#: The placeholder Entra's multi-tenant metadata and keys use for the tenant.
TENANT_TEMPLATE = "{tenantid}"

_PUBLIC_CLOUD_HOST = "login.microsoftonline.com"
_PUBLIC_CLOUD_V1_HOST = "sts.windows.net"
_MULTI_TENANT = ("common", "organizations")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+")
_B2C_TENANT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_POLICY = re.compile(r"[A-Za-z0-9_-]{1,128}")

#: Claims only Entra access tokens carry (calling client and its authentication).
_ACCESS_ONLY_CLAIMS = ("scp", "appid", "appidacr", "azp", "azpacr", "idtyp")

Version = Literal["1.0", "2.0"]


def _guid(value: str, what: str) -> str:
    normalized = value.strip().lower()
    if not _GUID.fullmatch(normalized):
        raise ValueError(f"{what} must be a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47")
    return normalized


def _host(value: str, what: str) -> str:
    normalized = value.strip().lower()
    if not _HOST.fullmatch(normalized):
        raise ValueError(f"{what} must be a host name such as {_PUBLIC_CLOUD_HOST} (no scheme, no path)")
    return normalized


def _non_empty_strings(value: list[str], what: str) -> list[str]:
    if any(not isinstance(v, str) or not v for v in value):
        raise ValueError(f"{what} must be non-empty strings")
    return list(dict.fromkeys(value))


def _is_token_guid(value: object) -> bool:
    """A ``tid`` as Entra writes it: a lowercase GUID string (never a template)."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def _single_tid(claims: Mapping[str, Any]) -> bool:
    """Microsoft.IdentityModel enforces one ``tid`` claim, case-insensitively."""
    return sum(1 for name in claims if name.casefold() == "tid") == 1


def _check_key_issuer(token: TokenContext, tid: str | None, also: str | None = None) -> None:
    """The signing key's own ``issuer`` member, when the key set carries one (Entra v2 keys do).

    A templated key issuer is honoured only for tokens whose ``iss`` equals the
    template with the token's ``tid``; a concrete one only for an exact match.
    ``also`` is the v2 form of a v1 token's issuer: v1 tokens are signed by the
    same keys, whose issuer is the v2 template (as Microsoft.IdentityModel does).
    """
    key_issuer = token.key.issuer
    if key_issuer is None:
        return
    if TENANT_TEMPLATE in key_issuer:
        if tid is None:
            raise UntrustedIssuer(
                "the signing key is a tenant key but the token names no tenant", code="key_issuer_mismatch"
            )
        key_issuer = key_issuer.replace(TENANT_TEMPLATE, tid)
    if key_issuer != token.issuer and (also is None or key_issuer != also):
        raise UntrustedIssuer("the signing key belongs to another issuer", code="key_issuer_mismatch")


def _non_empty_string(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _first_string(claims: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


class AzureAdConfig(ProviderProfile):
    """Microsoft Entra ID (Azure AD): one app registration's view of one or more tenants."""

    provider: Literal["azure_ad"] = "azure_ad"
    tenant: str = Field(
        description="The tenant GUID (single tenant), or common / organizations (multi-tenant), "
        "or consumers (personal Microsoft accounts only)."
    )
    # Before audiences, which are checked against the versions they must match.
    versions: list[Version] = Field(
        default_factory=lambda: ["2.0"],  # type: ignore[arg-type]
        min_length=1,
        description="Accepted token versions ('ver'): 2.0 by default; add 1.0 for v1 tokens.",
    )
    audiences: list[str] = Field(
        min_length=1,
        description="Accepted 'aud' values: the application (client) id GUID, which every v2 token "
        "and every id token carries, and/or App ID URIs (api://...), which only v1 access tokens carry.",
    )
    allowed_tenants: list[str] | None = Field(
        default=None, description="Multi-tenant only: the tenant GUIDs whose users are accepted."
    )
    allow_any_tenant: bool = Field(
        default=False, description="Multi-tenant only: accept every tenant (you authorise per tenant)."
    )
    authority_host: str = Field(
        default=_PUBLIC_CLOUD_HOST,
        description="Login host of the cloud, e.g. login.microsoftonline.us; v2 issuers and keys use it.",
    )
    v1_issuer_host: str | None = Field(
        default=None,
        description="Host of v1 issuers (https://<host>/<tid>/); sts.windows.net in the public cloud, "
        "required for version 1.0 in other clouds.",
    )
    app_id: str | None = Field(
        default=None, description="Application id whose own signing keys are used (?appid=)."
    )
    allowed_clients: list[str] | None = Field(
        default=None, description="Access tokens only: accepted calling clients (appid / azp)."
    )
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"], min_length=1)

    # -- validation -------------------------------------------------------------------

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        lowered = value.strip().lower()
        if lowered in (*_MULTI_TENANT, "consumers"):
            return lowered
        if _GUID.fullmatch(lowered):
            return lowered
        raise ValueError(
            "tenant must be a tenant GUID or one of common, organizations, consumers "
            "(a domain name cannot be used: Entra issuers name the tenant GUID)"
        )

    @field_validator("audiences")
    @classmethod
    def _audiences(cls, value: list[str], info: ValidationInfo) -> list[str]:
        value = _non_empty_strings(value, "audiences")
        versions = info.data.get("versions")  # absent when versions itself is invalid
        v2_only = versions is not None and "1.0" not in versions
        if v2_only and not any(_GUID.fullmatch(a.lower()) for a in value):
            # Entra v2 tokens always carry the client id GUID as aud (an App ID URI such as
            # api://my-api only ever appears in v1 access tokens): such an entry refuses
            # every real token, while a mock minting what the config says would pass.
            raise ValueError(
                "version 2.0 tokens always carry the application (client) id GUID as 'aud', never an "
                "App ID URI (api://...): add the client id GUID to audiences (or add '1.0' to versions "
                "if your API receives v1 access tokens, which may carry the App ID URI)"
            )
        return value

    @field_validator("allowed_clients")
    @classmethod
    def _clients(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("allowed_clients must not be empty (omit it to accept any client)")
        return _non_empty_strings(value, "allowed_clients")

    @field_validator("allowed_tenants")
    @classmethod
    def _tenants(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("allowed_tenants must not be empty")
        return list(dict.fromkeys(_guid(v, "each allowed tenant") for v in value))

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: list[Version]) -> list[Version]:
        return list(dict.fromkeys(value))

    @field_validator("authority_host")
    @classmethod
    def _authority_host(cls, value: str) -> str:
        return _host(value, "authority_host")

    @field_validator("v1_issuer_host")
    @classmethod
    def _v1_host(cls, value: str | None) -> str | None:
        return None if value is None else _host(value, "v1_issuer_host")

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value, "app_id")

    @model_validator(mode="after")
    def _tenancy(self) -> AzureAdConfig:
        if self.tenant in _MULTI_TENANT:
            if self.allowed_tenants is None and not self.allow_any_tenant:
                raise ValueError(
                    f"tenant {self.tenant!r} is multi-tenant: list allowed_tenants, or set "
                    "allow_any_tenant: true and authorise each tenant yourself"
                )
            if self.allowed_tenants is not None and self.allow_any_tenant:
                raise ValueError("allowed_tenants and allow_any_tenant exclude each other")
            if self.tenant == "organizations" and MSA_TENANT_ID in (self.allowed_tenants or ()):
                raise ValueError(
                    "organizations serves work and school accounts only: use tenant common to "
                    "also accept the personal-account tenant"
                )
        elif self.allowed_tenants is not None or self.allow_any_tenant:
            raise ValueError("allowed_tenants and allow_any_tenant apply to common/organizations only")
        if "1.0" in self.versions and self.v1_host is None:
            raise ValueError(
                "version 1.0 outside the public cloud needs v1_issuer_host (the host of the v1 "
                "'issuer' in your cloud's v1 metadata, .../.well-known/openid-configuration)"
            )
        return self

    # -- derived ------------------------------------------------------------------------

    @property
    def v1_host(self) -> str | None:
        """The v1 issuer host: configured, or ``sts.windows.net`` in the public cloud."""
        if self.v1_issuer_host is not None:
            return self.v1_issuer_host
        return _PUBLIC_CLOUD_V1_HOST if self.authority_host == _PUBLIC_CLOUD_HOST else None

    @property
    def tenant_ids(self) -> tuple[str, ...] | None:
        """The accepted tenant GUIDs; None when any tenant is accepted."""
        if self.tenant == "consumers":
            return (MSA_TENANT_ID,)
        if self.tenant in _MULTI_TENANT:
            return None if self.allow_any_tenant else tuple(self.allowed_tenants or ())
        return (self.tenant,)

    def issuer_for(self, version: str, tid: str) -> str | None:
        """The exact issuer of a ``version`` token of tenant ``tid`` (None: v1 host unknown)."""
        if version == "2.0":
            return f"https://{self.authority_host}/{tid}/v2.0"
        if version == "1.0" and self.v1_host is not None:
            return f"https://{self.v1_host}/{tid}/"
        return None

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        tenants = self.tenant_ids or ()
        issuers = (self.issuer_for(v, t) for t in tenants for v in self.versions)
        return tuple(i for i in issuers if i is not None)

    @classmethod
    def namespace_of(cls, issuer: str) -> str | None:
        """``entra:<tid>`` for a v1 (``https://{host}/{tid}/``) or v2 (``.../{tid}/v2.0``)
        issuer: both versions of a tenant are one namespace, as in the identity key."""
        scheme, _, rest = issuer.partition("://")
        host, _, path = rest.partition("/")
        tid, slash, version = path.partition("/")
        tid = tid.lower()
        if scheme != "https" or not slash or version not in ("", "v2.0"):
            return None
        return f"entra:{tid}" if _HOST.fullmatch(host.lower()) and _GUID.fullmatch(tid) else None

    def matches_issuer(self, iss: str, claims: Mapping[str, Any]) -> bool:
        """An Entra issuer (v1 or v2 form) of the token's own ``tid``, for this entry's audience.

        Routes any tenant with ``allow_any_tenant``; otherwise the tenants and
        versions that are not listed reach :meth:`check`, which rejects them with
        a precise code (``tenant_not_allowed``, ``version_not_allowed``) after the
        signature. The (unverified) ``aud`` must name this entry, so that several
        Entra entries (one per application) do not capture each other's tokens.
        Never a ``{tenantid}`` template, never an ``iss`` that is not ``tid``'s.
        """
        tid = claims.get("tid")
        if not _is_token_guid(tid):
            return False
        assert isinstance(tid, str)
        if iss not in (self.issuer_for("2.0", tid), self.issuer_for("1.0", tid)):
            return False
        return not set(self.audiences).isdisjoint(as_string_list(claims.get("aud")))

    @property
    def key_source(self) -> KeySourceSpec:
        # The v2 key set of the configured tenant segment serves v1 tokens too: the same keys,
        # and only v2 keys carry the 'issuer' member that check() enforces.
        tenant = self.tenant
        uri = f"https://{self.authority_host}/{tenant}/discovery/v2.0/keys"
        if self.app_id is not None:
            uri += f"?appid={self.app_id}"
        return KeySourceSpec(name=f"https://{self.authority_host}/{tenant}/v2.0", jwks_uri=uri)

    # -- token rules --------------------------------------------------------------------

    def check_header(self, header: Mapping[str, Any]) -> None:
        if "nonce" in header:
            # Microsoft Graph / SharePoint tokens: signed over a transformed nonce, for Graph only.
            raise WrongTokenType(
                "the token is for a Microsoft API (Graph) and cannot be verified by other services",
                code="graph_token",
            )

    def classify(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
        kind = classify_token(header, claims)  # refuses explicit typ of other kinds
        if kind == "access" or any(name in claims for name in _ACCESS_ONLY_CLAIMS):
            return "access"
        return "id"

    def audiences_for(self, token_type: TokenType) -> frozenset[str]:
        return frozenset(self.audiences)

    def require_iat(self, token_type: TokenType) -> bool:
        return True  # Entra stamps iat on every token

    def check(self, token: TokenContext) -> None:
        claims = token.claims
        tid = claims.get("tid")
        if not _is_token_guid(tid) or not _single_tid(claims):
            raise InvalidClaim(
                "'tid' is missing, not a tenant GUID, or repeated", claim="tid", code="invalid_tenant_id"
            )
        assert isinstance(tid, str)
        ver = claims.get("ver")
        if ver not in ("1.0", "2.0"):
            raise InvalidClaim("'ver' is not 1.0 or 2.0", claim="ver", code="invalid_version")
        other = "2.0" if ver == "1.0" else "1.0"
        if token.issuer != self.issuer_for(ver, tid):
            if token.issuer == self.issuer_for(other, tid):
                raise UntrustedIssuer(
                    f"the issuer is a version {other} issuer but the token says version {ver}",
                    code="issuer_version_mismatch",
                )
            raise UntrustedIssuer(
                "the issuer does not name the token's tenant ('tid')", code="tenant_mismatch"
            )
        if ver not in self.versions:
            raise WrongTokenType(
                f"version {ver} tokens are not accepted by this entry", code="version_not_allowed"
            )
        tenants = self.tenant_ids
        if tenants is None:
            if self.tenant == "organizations" and tid == MSA_TENANT_ID:
                raise UntrustedIssuer(
                    "personal Microsoft accounts are not accepted", code="tenant_not_allowed"
                )
        elif tid not in tenants:
            raise UntrustedIssuer("the token's tenant is not allowed", code="tenant_not_allowed")
        _check_key_issuer(token, tid, self.issuer_for("2.0", tid) if ver == "1.0" else None)
        if not (token.token_type == "access" and ver == "1.0"):
            # Only a v1 access token names its API by App ID URI; v2 tokens and id tokens
            # carry the client id, so an App ID URI there is a token meant for someone else.
            trusted = [
                a for a in audience_values(claims, max_audiences=token.max_audiences) if a in self.audiences
            ]
            if trusted and not any(_GUID.fullmatch(a.lower()) for a in trusted):
                raise InvalidAudience(
                    "an App ID URI audience is accepted only in v1 access tokens", issuer=token.issuer
                )
        if token.token_type == "access":
            self._check_client(claims, "appid" if ver == "1.0" else "azp")
        if not _non_empty_string(claims.get("oid")):
            # Users are keyed on (tenant, oid). v2 id tokens omit oid without the 'profile'
            # scope; falling back to the pairwise sub would make a known (perhaps disabled)
            # user a new account in another namespace.
            raise InvalidClaim(
                "the token has no 'oid' (request the 'profile' scope for v2 id tokens)",
                claim="oid",
                issuer=token.issuer,
            )

    def _check_client(self, claims: Mapping[str, Any], name: str) -> None:
        client = claims.get(name)
        if not isinstance(client, str) or not client:
            raise InvalidClaim(
                f"the access token does not name its client ('{name}')", claim=name, code="missing_client"
            )
        if self.allowed_clients is not None and client not in self.allowed_clients:
            raise InvalidClaim("the calling client is not allowed", claim=name, code="client_not_allowed")

    def identity(self, token: TokenContext) -> Identity:
        claims = token.claims
        # Keyed on the directory object, never on a (mutable, unverified) name or email;
        # check() has refused tokens without a tenant GUID or an oid.
        key = (f"entra:{claims['tid']}", str(claims["oid"]))
        email = claims.get("email")
        email = email if isinstance(email, str) and email else None
        names = claims.get("_claim_names")
        overage = (isinstance(names, dict) and "groups" in names) or as_strict_bool(claims.get("hasgroups"))
        return Identity(
            key=key,
            email=email,
            # nOAuth: Entra's email is not verified unless the domain owner is (xms_edov).
            email_verified=email is not None and as_strict_bool(claims.get("xms_edov")),
            username=_first_string(claims, "preferred_username", "upn", "unique_name"),
            groups=() if overage else as_string_list(claims.get("groups")),
            roles=as_string_list(claims.get("roles")),
            groups_overage=overage,
        )


def _b2c_object_id(claims: Mapping[str, Any]) -> str | None:
    """The B2C user's object id: ``oid`` (the user flow's "User's Object ID" claim), else
    ``sub`` when it is a GUID, which B2C makes it by default (user flows' subject claim
    "ObjectID", the custom-policy starter pack's ``objectId`` as ``sub``). A ``sub`` of
    another kind ("Not supported currently. Use oid claim.", an email) is no object id."""
    oid = claims.get("oid")
    if _non_empty_string(oid):
        return str(oid)
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and _GUID.fullmatch(sub) else None


class AzureAdB2CConfig(ProviderProfile):
    """Azure AD B2C: one B2C tenant, its user flows / custom policies, one application."""

    provider: Literal["azure_ad_b2c"] = "azure_ad_b2c"
    tenant_name: str = Field(description="The B2C tenant name: 'contoso' for contoso.onmicrosoft.com.")
    tenant_id: str = Field(description="The B2C tenant GUID (it appears in the issuer).")
    policies: list[str] = Field(min_length=1, description="Accepted user flows / custom policies (tfp).")
    audiences: list[str] = Field(min_length=1, description="Accepted 'aud' values (application ids).")
    domain: str | None = Field(
        default=None, description="Login host: <tenant_name>.b2clogin.com by default, or a custom domain."
    )
    issuer_forms: list[Literal["default", "tfp"]] = Field(
        default_factory=lambda: ["default"],  # type: ignore[arg-type]
        min_length=1,
        description="Issuer claim forms: default https://<domain>/<tenant_id>/v2.0/ and/or "
        "tfp https://<domain>/tfp/<tenant_id>/<policy>/v2.0/.",
    )
    key_policy: str | None = Field(
        default=None, description="Policy whose key endpoint is used (default: the first policy)."
    )
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"], min_length=1)

    @field_validator("tenant_name")
    @classmethod
    def _tenant_name(cls, value: str) -> str:
        lowered = value.strip().lower().removesuffix(".onmicrosoft.com")
        if not _B2C_TENANT_NAME.fullmatch(lowered):
            raise ValueError("tenant_name must be the B2C tenant name, e.g. contoso")
        return lowered

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        return _guid(value, "tenant_id")

    @field_validator("policies")
    @classmethod
    def _policies(cls, value: list[str]) -> list[str]:
        for policy in value:
            if not isinstance(policy, str) or not _POLICY.fullmatch(policy):
                raise ValueError("each policy must be a policy id such as B2C_1_signupsignin1")
        return list(dict.fromkeys(value))

    @field_validator("audiences")
    @classmethod
    def _audiences(cls, value: list[str]) -> list[str]:
        return _non_empty_strings(value, "audiences")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else _host(value, "domain")

    @model_validator(mode="after")
    def _key_policy_known(self) -> AzureAdB2CConfig:
        if self.key_policy is not None and self.key_policy not in self.policies:
            raise ValueError("key_policy must be one of policies")
        return self

    @property
    def host(self) -> str:
        """The login host of the tenant."""
        return self.domain or f"{self.tenant_name}.b2clogin.com"

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        issuers: list[str] = []
        if "default" in self.issuer_forms:
            issuers.append(f"https://{self.host}/{self.tenant_id}/v2.0/")
        if "tfp" in self.issuer_forms:
            issuers.extend(f"https://{self.host}/tfp/{self.tenant_id}/{p}/v2.0/" for p in self.policies)
        return tuple(issuers)

    @property
    def key_source(self) -> KeySourceSpec:
        policy = self.key_policy or self.policies[0]
        uri = f"https://{self.host}/{self.tenant_name}.onmicrosoft.com/{policy}/discovery/v2.0/keys"
        return KeySourceSpec(name=f"https://{self.host}/{self.tenant_id}/v2.0/", jwks_uri=uri)

    def audiences_for(self, token_type: TokenType) -> frozenset[str]:
        return frozenset(self.audiences)

    def require_iat(self, token_type: TokenType) -> bool:
        return True

    def check(self, token: TokenContext) -> None:
        claims = token.claims
        name = "tfp" if "tfp" in claims else "acr"
        policy = claims.get(name)
        if not isinstance(policy, str) or not policy:
            raise InvalidClaim(
                "the token names no B2C policy ('tfp' or 'acr')", claim="tfp", code="policy_not_allowed"
            )
        allowed = {p.casefold() for p in self.policies}
        if policy.casefold() not in allowed:
            raise InvalidClaim("the token's B2C policy is not allowed", claim=name, code="policy_not_allowed")
        tfp_prefix = f"https://{self.host}/tfp/{self.tenant_id}/"
        if token.issuer.startswith(tfp_prefix):
            issuer_policy = token.issuer[len(tfp_prefix) :].removesuffix("/v2.0/")
            if issuer_policy.casefold() != policy.casefold():
                raise UntrustedIssuer(
                    "the issuer names another policy than the token", code="policy_mismatch"
                )
        tid = claims.get("tid")
        if tid is not None and tid != self.tenant_id:
            raise UntrustedIssuer("the token's 'tid' is not the B2C tenant", code="tenant_mismatch")
        _check_key_issuer(token, self.tenant_id)
        if _b2c_object_id(claims) is None:
            raise InvalidClaim(
                "the token has no 'oid' and its 'sub' is not an object id (return the user's "
                "object id claim from the user flow or policy)",
                claim="oid",
                issuer=token.issuer,
            )

    def identity(self, token: TokenContext) -> Identity:
        claims = token.claims
        # One namespace whichever claim carried the object id (check() refused neither).
        key = (f"entra:{self.tenant_id}", str(_b2c_object_id(claims)))
        emails = as_string_list(claims.get("emails"))
        email = _first_string(claims, "email") or (emails[0] if emails else None)
        return Identity(
            key=key,
            email=email,
            email_verified=False,  # B2C vouches for no address in the token
            username=_first_string(claims, "preferred_username"),
            groups=as_string_list(claims.get("groups")),
            roles=as_string_list(claims.get("roles")),
        )


# -- the plugin: this provider's entry in the registry (federation.plugins) --------------

_OTHER_TENANT = "99998888-7777-6666-5555-444433332222"


def _breaks_tenant(idp: MockIdP) -> str:
    return idp.mint(tid=_OTHER_TENANT, iss=f"https://login.microsoftonline.com/{_OTHER_TENANT}/v2.0")


def _breaks_flow(idp: MockIdP) -> str:
    return idp.mint(tfp="B2C_1_passwordreset")


def _b2c_stand_in(claims: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    tid = claims.get("tid")
    return {"tenant_id": tid if isinstance(tid, str) else "dry-run"}


def _tenant(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    tid = claims.get("tid")
    return {"tenant": tid} if isinstance(tid, str) else {}


PLUGIN = ProviderPlugin(
    name="azure_ad",
    model=AzureAdConfig,
    shape="federation.providers.azure_ad.shape:AZURE_AD",
    demo=DemoSpec(
        "Microsoft Entra ID tenant",
        {
            "tenant": "aaaabbbb-0000-cccc-1111-dddd2222eeee",
            "client_id": "00001111-aaaa-2222-bbbb-3333cccc4444",
        },
        "token from another tenant",
        _breaks_tenant,
    ),
    vocabulary={"tenant": "the Entra tenant id the token was issued in (tid, string)"},
    values=_tenant,
)

B2C_PLUGIN = ProviderPlugin(
    name="azure_ad_b2c",
    model=AzureAdB2CConfig,
    shape="federation.providers.azure_ad.shape_b2c:AZURE_AD_B2C",
    demo=DemoSpec(
        "Azure AD B2C tenant",
        {"tenant_name": "contoso", "policy": "B2C_1_signupsignin1"},
        "token of another user flow (tfp)",
        _breaks_flow,
    ),
    stand_in=_b2c_stand_in,
)
