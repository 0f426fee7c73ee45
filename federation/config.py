"""Bridge configuration: the typed models and the loaders.

Owns: the schema of ``federation.yaml`` (issuers, key cache knobs, limits,
leeway, storage, audit) as pydantic models with unknown keys refused, and loading
it from a file or a dict into a :class:`BridgeConfig`, raising
:class:`~federation.errors.ConfigError` that names file, line, column and field
(an unknown key gets a "did you mean" from this schema's vocabulary).

Must not: build HTTP clients, fetch keys or verify tokens.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from . import plugins
from ._netaddr import is_canonical_loopback_host, literal_address
from ._profile import Count, KeyRef, Number, ProviderProfile
from ._yaml import (
    Located,
    config_error_from_problems,
    config_error_from_validation,
    format_path,
    read_yaml_file,
)
from .errors import ConfigError

__all__ = [
    "BridgeConfig",
    "IssuerConfig",
    "KeyRef",
    "KeysConfig",
    "LimitsConfig",
    "LocalAccountsConfig",
    "ProvisioningConfig",
    "SessionsConfig",
    "WebConfig",
    "is_fetchable_url",
    "is_loopback_url",
    "load_config",
]


def _issuer_union(models: tuple[type[ProviderProfile], ...]) -> Any:
    """One issuer entry: the profile model named by its ``provider`` field (a tagged union
    even of one model, so that errors are located the same whichever providers are loaded)."""
    return Annotated[Union[models], Field(discriminator="provider")]  # noqa: UP007


def _profile_models() -> tuple[type[ProviderProfile], ...]:
    """Every provider's model (imports them all: for hints on the error path)."""
    return tuple(p.model for p in plugins.plugins())


def _loaded_models() -> tuple[type[ProviderProfile], ...]:
    plugins.get("oidc")  # the default of an entry without provider: is always there
    return tuple(p.model for p in plugins.loaded())


if TYPE_CHECKING:
    from typing_extensions import Self

    IssuerConfig = ProviderProfile
    _LoadedIssuer = ProviderProfile
else:
    # BridgeConfig's issuer entries: the models of the providers loaded so far. Validating
    # a document first loads the providers it names (_sync_providers), then rebuilds this.
    _LoadedIssuer = _issuer_union(_loaded_models())


def __getattr__(name: str) -> Any:
    """``IssuerConfig``: the union of every registered provider's model (imports them all)."""
    if name == "IssuerConfig":
        return _issuer_union(_profile_models())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class KeysConfig(BaseModel):
    """Key cache behaviour, per issuer. All durations are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl: Number = Field(600, gt=0, description="Freshness when the response has no usable Cache-Control.")
    min_ttl: Number = Field(60, ge=0, description="Lower clamp for Cache-Control max-age.")
    max_ttl: Number = Field(86400, gt=0, description="Upper clamp for Cache-Control max-age.")
    refresh_cooldown: Number = Field(
        30, ge=0, description="At most one forced refetch per issuer per cooldown."
    )
    max_stale: Number = Field(
        86400, ge=0, description="How long the last good key set serves during an outage."
    )
    unknown_kid_ttl: Number = Field(60, ge=0, description="How long an unknown kid is remembered as unknown.")
    ttl_jitter: Number = Field(
        0,
        ge=0,
        le=0.5,
        description="Shorten each fetched key set's TTL by a random fraction up to this (0.1: up to "
        "10%), so processes started together refetch apart.",
    )
    timeout: Number = Field(5, gt=0, le=60, description="Connect and read timeout of one fetch.")
    max_response_bytes: Count = Field(
        256 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="The largest response read from an issuer: a key set, a discovery document, "
        "the sign-in flow's token endpoint.",
    )
    max_keys: Count = Field(100, ge=1, le=10000, description="A key set with more entries is refused.")
    allow_loopback_http: bool = Field(
        False, description="Allow plain http:// key and discovery URLs on loopback hosts (tests only)."
    )
    allow_private_networks: bool = Field(
        False,
        description="Allow key and discovery fetches to private-use addresses (10/8, 172.16/12, "
        "192.168/16, 100.64/10, fc00::/7), e.g. an on-prem IdP. Loopback and link-local never.",
    )

    @model_validator(mode="after")
    def _ordered(self, info: ValidationInfo) -> KeysConfig:
        problems = _keys_problems(self, ())
        if problems and not _located(info):
            raise ValueError("; ".join(f"{format_path(p) or 'keys'}: {m}" for p, m in problems))
        return self


class LimitsConfig(BaseModel):
    """Resource bounds, enforced before expensive work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_token_bytes: Count = Field(32 * 1024, ge=256, le=1024 * 1024)
    max_header_bytes: Count = Field(4 * 1024, ge=64, le=64 * 1024)
    max_json_depth: Count = Field(32, ge=2, le=256)
    max_claims: Count = Field(500, ge=1, le=100000)
    max_audiences: Count = Field(50, ge=1, le=10000)


class ProvisioningConfig(BaseModel):
    """How verified, mapped tokens become local users (see docs/provisioning.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create_users: bool = Field(True, description="Create a user on first login (just-in-time).")
    allowed_email_domains: list[str] | None = Field(
        None, description="When set, only users whose email domain is listed may be created or linked."
    )
    link_by_email: bool = Field(
        False,
        description="Link a new identity to an existing user by verified email, only from issuers "
        "marked trust_email. Off by default: linking by email is an account-takeover risk.",
    )
    touch_interval: Number = Field(
        0,
        ge=0,
        le=86400,
        description="Seconds: a login that changes nothing but the login time writes last_login_at only "
        "when the stored one is older than this (then the login is one read, no transaction). "
        "0: every login writes it.",
    )


class SessionsConfig(BaseModel):
    """The app's own session tokens (see docs/sessions.md). Absent: no sessions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=1, description="The iss of session tokens; never an external issuer.")
    audience: str | None = Field(
        None, min_length=1, description="The aud of session tokens (default: issuer)."
    )
    algorithm: Literal["ES256", "EdDSA", "RS256", "PS256", "HS256"] = Field(
        "ES256", description="Signing algorithm; HS256 only with 'secret'."
    )
    keys: list[KeyRef] = Field(
        default_factory=list, description="PEM private keys; the first signs, all verify (rotation)."
    )
    secret: KeyRef | None = Field(None, description="HS256 only: a shared secret of at least 32 bytes.")
    access_ttl: Count = Field(3600, gt=0, le=86400, description="Access token lifetime, seconds.")
    refresh_ttl: Count = Field(
        1209600, ge=0, le=31536000, description="Refresh token lifetime; 0: no refresh."
    )
    refresh_reuse_grace: Number = Field(
        10, ge=0, le=300, description="Seconds a used refresh token may be presented again."
    )
    max_lifetime: Count = Field(
        2592000,
        ge=0,
        le=31536000,
        description="A session's absolute lifetime from its sign-in, seconds: a refresh after it "
        "is refused, however active the session (0: none).",
    )
    touch_interval: Number = Field(
        300, ge=0, description="authenticate writes last_login_at at most this often per user."
    )
    revoke_previous: bool = Field(False, description="Issuing a session revokes the user's earlier ones.")
    revocation: str = Field(
        "store",
        description="Where sessions and revocations live: store (the SQL store's tables), memory, "
        "or a Redis URL (redis://host:6379/0, rediss://...) shared by every process.",
    )
    user_check: Number = Field(
        30, ge=0, le=3600, description="Seconds a user's status may be served from memory (0: always read)."
    )
    outage_grace: Number = Field(
        0,
        ge=0,
        le=300,
        description="With a Redis revocation store: seconds memory may still be served after the "
        "revocation messages stopped (0: fail closed, every request reads Redis).",
    )
    token_cache_size: Count = Field(
        10000, ge=0, le=1000000, description="Verified tokens remembered by authenticate (0: none)."
    )
    leeway: Number = Field(5, ge=0, le=60, description="Clock skew allowed on session tokens, seconds.")

    @model_validator(mode="after")
    def _revocation_is_known(self) -> SessionsConfig:
        value = self.revocation
        if value not in ("store", "memory") and not value.startswith(("redis://", "rediss://")):
            raise ValueError("revocation must be store, memory, or a redis:// or rediss:// URL")
        return self


class LocalAccountsConfig(BaseModel):
    """Password registration and login (off unless this section is present)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_password_length: Count = Field(12, ge=8, le=1024)
    max_password_length: Count = Field(1024, ge=64, le=4096, description="Longer passwords are refused.")
    max_attempts: Count = Field(
        5, ge=1, le=1000, description="Failures per account and per address before lockout."
    )
    lockout: Number = Field(300, gt=0, le=86400, description="Lockout seconds, doubling on repeat.")
    registration: bool = Field(True, description="register_local creates accounts (false: closed).")


class WebConfig(BaseModel):
    """The web layer: the login service and the framework integrations (docs/web.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_url: str = Field(
        min_length=1, description="The app's own origin: redirect_uri, Origin checks, cookies."
    )
    home: str = Field("/", min_length=1, description="Where refused or missing redirects go.")
    allowed_redirects: list[str] = Field(
        default_factory=list,
        description="Extra origins redirect_to may name (exact scheme, host and port).",
    )
    cookie_domain: str | None = Field(
        None,
        min_length=1,
        description="Share session cookies across subdomains (e.g. .example.com); then __Secure- names.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Peers (addresses or networks) whose X-Forwarded-* headers count."
    )
    url_token_max_age: Count = Field(
        120, gt=0, le=600, description="How old a /sso URL token may be (seconds since its iat)."
    )
    registration_key: KeyRef | None = Field(
        None, description="The extra key /register requires (X-Registration-Key; at least 32 bytes)."
    )
    admin_key: KeyRef | None = Field(
        None, description="The key DELETE /users/{id} accepts (X-Admin-Key; at least 32 bytes)."
    )
    admin_role: str = Field("admin", min_length=1, description="The role that may delete other users.")
    delete: Literal["disable", "delete"] = Field(
        "disable", description="What DELETE /users/... does to the account (every session is revoked)."
    )
    cookie_secret: KeyRef | None = Field(
        None,
        description="Signs the CSRF and sign-in state cookies (at least 32 bytes); "
        "default: derived from the session keys.",
    )
    insecure_http: bool = Field(
        False,
        description="Development only: cookies without Secure over plain http, and only when "
        "public_url is a loopback address.",
    )


class BridgeConfig(BaseModel):
    """The whole bridge configuration (``federation.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuers: list[_LoadedIssuer] = Field(min_length=1)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    leeway: Number = Field(60, ge=0, le=300, description="Clock skew allowed for exp/nbf/iat, seconds.")
    mapping: str | dict[str, Any] | None = Field(
        None, description="The mapping file (a path, relative to this file) or the mapping inline."
    )
    storage: str | None = Field(
        None, description="Where users live: an SQLAlchemy URL such as sqlite:///federation.db."
    )
    storage_async: bool = Field(
        False,
        description="Async callers (alogin, aauthenticate) run their transactions on SQLAlchemy's "
        "asyncio engine (AsyncSQLStore; the async extra), never in a thread.",
    )
    provisioning: ProvisioningConfig = Field(default_factory=ProvisioningConfig)
    audit: Literal["log", "store"] = Field(
        "log",
        description="Where audit events go when Bridge(audit=...) is not given: 'log' (the "
        "federation.audit logger) or 'store' (the SQL store's audit table, read by 'federation audit tail').",
    )
    sessions: SessionsConfig | None = Field(None, description="The app's own session tokens.")
    local_accounts: LocalAccountsConfig | None = Field(
        None, description="Password accounts (needs sessions: and the passwords extra)."
    )
    web: WebConfig | None = Field(None, description="The login service and web integrations.")
    _source_file: Path | None = PrivateAttr(None)

    @property
    def source_file(self) -> Path | None:
        """The YAML file this config was loaded from, if any."""
        return self._source_file

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the config (``mapping:``, ``sqlite:///x.db``) are resolved."""
        return self._source_file.parent if self._source_file is not None else Path.cwd()

    # Every way to validate a document first loads the providers it names (only those:
    # a config naming one provider never imports the others).
    def __init__(self, /, **data: Any) -> None:
        _sync_providers(data)
        super().__init__(**data)

    # Marked as pydantic marks its own __init__: validation then never calls this one (which
    # would drop model_validate's context); tests/test_config.py's located errors rely on it.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **options: Any) -> Self:
        """Validate ``obj`` (pydantic's own), once the providers it names are loaded."""
        _sync_providers(obj)
        return super().model_validate(obj, *args, **options)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *args: Any, **options: Any) -> Self:
        """Validate a JSON document (pydantic's own), with every provider loaded."""
        _sync_providers(None)
        return super().model_validate_json(json_data, *args, **options)

    @classmethod
    def model_validate_strings(cls, obj: Any, *args: Any, **options: Any) -> Self:
        """Validate string data (pydantic's own), with every provider loaded."""
        _sync_providers(None)
        return super().model_validate_strings(obj, *args, **options)

    @model_validator(mode="before")
    @classmethod
    def _generic_oidc_by_default(cls, data: Any) -> Any:
        # ``provider`` picks the profile; an entry without one is a generic OIDC issuer.
        if isinstance(data, dict) and isinstance(data.get("issuers"), list):
            issuers = [
                {"provider": "oidc", **entry}
                if isinstance(entry, dict) and "provider" not in entry
                else entry
                for entry in data["issuers"]
            ]
            data = {**data, "issuers": issuers}
        return data

    @model_validator(mode="after")
    def _cross_field(self, info: ValidationInfo) -> BridgeConfig:
        # Loaded through load_config, these are reported with their exact file positions.
        problems = config_problems(self)
        if problems and not _located(info):
            raise ValueError("; ".join(f"{format_path(p)}: {m}" for p, m in problems))
        return self


Problem = tuple[tuple[str | int, ...], str]


def _located(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("located"))


def _keys_problems(keys: KeysConfig, prefix: tuple[str | int, ...]) -> list[Problem]:
    problems: list[Problem] = []
    if keys.min_ttl > keys.ttl:
        problems.append(((*prefix, "min_ttl"), "must not be greater than ttl"))
    if keys.ttl > keys.max_ttl:
        problems.append(((*prefix, "ttl"), "must not be greater than max_ttl"))
    return problems


MAX_ISSUER_LENGTH = 1024
"""The longest issuer string: the SQL store's identity and audit columns hold no more."""


def config_problems(config: BridgeConfig) -> list[Problem]:
    """The checks that span several fields, each with the exact path to blame."""
    problems = _keys_problems(config.keys, ("keys",))
    seen: dict[str, int] = {}
    for index, entry in enumerate(config.issuers):
        fields = type(entry).model_fields
        for iss in entry.trusted_issuers:
            if len(iss) > MAX_ISSUER_LENGTH:
                where = ("issuers", index, "issuer") if "issuer" in fields else ("issuers", index)
                # Stored with every identity and audit row: PostgreSQL's column refuses a
                # longer one at each login (SQLite's would not), a failure no retry mends.
                problems.append((where, f"an issuer is at most {MAX_ISSUER_LENGTH} characters"))
                continue
            if iss in seen:
                where = ("issuers", index, "issuer") if "issuer" in fields else ("issuers", index)
                problems.append((where, f"issuer {iss!r} is already configured by issuers[{seen[iss]}]"))
            seen.setdefault(iss, index)
        spec = entry.key_source
        for url, field in ((spec.jwks_uri, "jwks_uri"), (spec.discovery_url, "issuer")):
            where = ("issuers", index, field) if getattr(entry, field, None) else ("issuers", index)
            if url is not None and _odd_ip_spelling(url):
                # The resolver reads 2130706433 or 127.1 as 127.0.0.1: no URL check may be
                # fooled by a spelling, so only the standard one is accepted.
                problems.append((where, "write the IP address in its standard form (such as 10.0.0.5)"))
            elif url is not None and not url_is_well_formed(url):
                problems.append((where, "is not a well-formed URL (whitespace, a bad port or host)"))
            elif url is not None and not is_fetchable_url(url, config.keys.allow_loopback_http):
                problems.append(
                    (
                        where,
                        "must be an https:// URL (plain http only on loopback with keys.allow_loopback_http)",
                    )
                )
    problems.extend(_sessions_problems(config, seen))
    problems.extend(_web_problems(config))
    return problems


def _web_problems(config: BridgeConfig) -> list[Problem]:
    web = config.web
    if web is None:
        return []
    from .web import RedirectPolicy, origin_of

    problems: list[Problem] = []
    if config.sessions is None:
        problems.append((("web",), "needs a sessions: section (a sign-in ends in a session cookie)"))
    origin = origin_of(web.public_url)
    if origin is None or web.public_url.rstrip("/") != origin:
        problems.append((("web", "public_url"), "must be an origin such as https://app.example.com"))
    elif origin.startswith("http://"):
        if not web.insecure_http:
            problems.append((("web", "public_url"), "must be https:// (http: insecure_http, on loopback)"))
        elif not is_loopback_url(origin):
            problems.append((("web", "insecure_http"), "plain http is for a loopback public_url only"))
    for index, entry in enumerate(web.allowed_redirects):
        try:
            RedirectPolicy(allowed_origins=[entry])
        except ValueError:
            problems.append((("web", "allowed_redirects", index), "must be an origin (scheme://host[:port])"))
    try:
        RedirectPolicy(home=web.home)
    except ValueError:
        problems.append((("web", "home"), "must be a relative path starting with one /"))
    domain = web.cookie_domain
    if domain is not None:
        host = urlsplit(web.public_url).hostname or ""
        bare = domain.lstrip(".").lower()
        if not bare or "." not in bare or not (host == bare or host.endswith("." + bare)):
            problems.append((("web", "cookie_domain"), "must be a parent domain of public_url's host"))
    for index, peer in enumerate(web.trusted_proxies):
        try:
            ip_network(peer, strict=False)
        except ValueError:
            problems.append((("web", "trusted_proxies", index), "must be an IP address or network"))
    return problems


def _sessions_problems(config: BridgeConfig, external: Mapping[str, int]) -> list[Problem]:
    sessions = config.sessions
    if sessions is None:
        if config.local_accounts is not None:
            return [(("local_accounts",), "needs a sessions: section (password logins end in a session)")]
        return []
    problems: list[Problem] = []
    for name in ("issuer", "audience"):
        value = getattr(sessions, name)
        if value in external:
            problems.append(
                (
                    ("sessions", name),
                    f"must not be an external issuer (issuers[{external[value]}] is {value!r})",
                )
            )
    if sessions.algorithm == "HS256":
        if sessions.secret is None:
            problems.append((("sessions", "secret"), "HS256 needs a secret"))
        if sessions.keys:
            problems.append((("sessions", "keys"), "HS256 signs with 'secret', not with keys"))
    else:
        if not sessions.keys:
            problems.append((("sessions", "keys"), f"{sessions.algorithm} needs at least one private key"))
        if sessions.secret is not None:
            problems.append((("sessions", "secret"), "a secret is for HS256 only"))
    if 0 < sessions.refresh_ttl < sessions.access_ttl:
        problems.append((("sessions", "refresh_ttl"), "must be 0 or at least access_ttl"))
    return problems


def _odd_ip_spelling(url: str) -> bool:
    """True when the URL's host is an IP address written other than the standard way."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    address = literal_address(host)
    return address is not None and str(address) != host


def is_loopback_url(url: str) -> bool:
    """True for URLs whose host is ``localhost`` or a loopback address in its standard
    spelling (``127.0.0.1``, ``[::1]``): ``127.1`` or ``2130706433`` never count."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return is_canonical_loopback_host(host)


def _well_formed(url: str) -> SplitResult | None:
    """The parts of ``url`` when it has no whitespace or control character (``urlsplit``
    strips some that the fetch would send), a port that is a number and a host (if any) of
    DNS name or IP address characters; else None."""
    if not url.isprintable() or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    host = parts.hostname or ""
    allowed = "-._:%" if ":" in host else "-._"  # an IPv6 literal may carry a zone (fe80::1%eth0)
    return parts if all(c.isalnum() or c in allowed for c in host) else None


def url_is_well_formed(url: str) -> bool:
    """See :func:`_well_formed` (a URL without a host is is_fetchable_url's to refuse)."""
    return _well_formed(url) is not None


def is_fetchable_url(url: str, allow_loopback_http: bool) -> bool:
    """True for well-formed https URLs, and for loopback http URLs when explicitly allowed."""
    parts = _well_formed(url)
    if parts is None or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_loopback_http and is_loopback_url(url)


_SECTIONS: dict[str, type[BaseModel]] = {
    "keys": KeysConfig,
    "limits": LimitsConfig,
    "provisioning": ProvisioningConfig,
    "sessions": SessionsConfig,
    "local_accounts": LocalAccountsConfig,
    "web": WebConfig,
}


def _keys_of(model: type[BaseModel]) -> list[str]:
    """Every key a model accepts in a file: field names and their aliases."""
    names: list[str] = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
        choices = getattr(info.validation_alias, "choices", ())
        names.extend(c for c in choices if isinstance(c, str))
    return list(dict.fromkeys(names))


def _profile_model(entry: Any) -> type[ProviderProfile] | None:
    provider = entry.get("provider", "oidc") if isinstance(entry, dict) else None
    return next((m for m in _profile_models() if _provider_name(m) == provider), None)


def _unknown_key_hint(path: tuple[str | int, ...], data: Any) -> str | None:
    """The "did you mean" of an unknown key: a close match in its own section, else the
    section (or provider) where the key does belong."""
    parent, key = path[:-1], str(path[-1])
    entry: Any = None
    if parent == ():
        known = _keys_of(BridgeConfig)
    elif len(parent) == 1 and parent[0] in _SECTIONS:
        known = _keys_of(_SECTIONS[str(parent[0])])
    elif len(parent) == 2 and parent[0] == "issuers" and isinstance(parent[1], int):
        entry = data["issuers"][parent[1]]
        profile = _profile_model(entry)
        known = _keys_of(profile) if profile is not None else []
    else:
        return None
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)  # 'tll' -> 'ttl' is 0.67
    if close:
        return f"did you mean {close[0]!r}?"
    sections = [name for name, model in _SECTIONS.items() if key in _keys_of(model)]
    if parent == ():
        if sections:
            return f"{key} belongs in the {sections[0]}: section"
        if any(key in _keys_of(m) for m in _profile_models()):
            return f"{key} is a key of an issuer entry, under issuers:"
        return None
    if entry is None:
        return None
    others = [_provider_name(m) for m in _profile_models() if key in _keys_of(m)]
    if others:
        add = f"'provider: {others[0]}'" if len(others) == 1 else "its provider:"
        tail = "" if "provider" in entry else f"; this entry names no provider, so it is oidc: add {add}"
        names = others[0] if len(others) == 1 else ", ".join(others[:-1]) + f" or {others[-1]}"
        return f"a key of provider {names}{tail}"
    if key in _keys_of(BridgeConfig):  # before the sections: sessions.leeway is another leeway
        return f"{key} is a top-level setting, for every issuer"
    if sections:
        return f"{key} is set for every issuer, in the top-level {sections[0]}: section"
    return None


def _provider_name(model: type[ProviderProfile]) -> str:
    args = getattr(model.model_fields["provider"].annotation, "__args__", ())
    return str(args[0]) if args else str(model.model_fields["provider"].default)


_SCHEMA_GENERATION = plugins.generation()  # the registry state the issuer union was built from
_SCHEMA_LOCK = threading.Lock()


def _load_named_providers(data: Any) -> bool:
    """Load the providers a config document's issuer entries name; False when one names no
    known provider or is not an entry at all (the caller then loads every provider, so that
    the error, if any, is the one a full registry gives)."""
    issuers = data.get("issuers") if isinstance(data, Mapping) else None
    if not isinstance(issuers, list):
        return False
    for entry in issuers:
        if isinstance(entry, Mapping):
            name = entry.get("provider", "oidc")
        elif isinstance(entry, ProviderProfile):
            name = entry.provider
        else:
            return False
        if not isinstance(name, str) or plugins.get(name) is None:  # get() imports a built-in
            return False
    return True


def _sync_providers(data: Any) -> None:
    """Load the providers ``data`` names (every provider when it is None or names an unknown
    one), and rebuild the issuer union when the registry changed since it was built."""
    global _SCHEMA_GENERATION
    if not _load_named_providers(data):
        plugins.plugins()
    if plugins.generation() == _SCHEMA_GENERATION:
        return
    with _SCHEMA_LOCK:
        current = plugins.generation()
        if current == _SCHEMA_GENERATION:
            return
        BridgeConfig.model_fields["issuers"].annotation = list[_issuer_union(_loaded_models())]  # type: ignore[misc,assignment]
        BridgeConfig.model_rebuild(force=True)
        _SCHEMA_GENERATION = current


def load_config(source: str | Path | Mapping[str, Any]) -> BridgeConfig:
    """Validate a config file path or a mapping; raise :class:`ConfigError` on any problem."""
    if isinstance(source, Mapping):
        located = Located(dict(source), {}, None)
    elif not isinstance(source, (str, os.PathLike)):  # None, a list, a parsed model: no path to read
        raise ConfigError(f"the config must be a mapping or a file path, not {type(source).__name__}")
    else:
        located = read_yaml_file(source)
        if not isinstance(located.data, dict):
            raise ConfigError(
                f"{located.file}: the config must be a mapping at the top level", file=located.file
            )
    refused: ConfigError | None = None
    try:
        config = BridgeConfig.model_validate(located.data, context={"located": True})
    except ValidationError as exc:
        refused = config_error_from_validation(exc, located, "bridge config", _unknown_key_hint)
    if refused is not None:
        # Raised outside the except: pydantic's error (kept as __context__ otherwise) quotes
        # the input values, and a config holds secrets.
        raise refused
    problems = config_problems(config)
    if problems:
        raise config_error_from_problems(problems, located, "bridge config")
    if not isinstance(source, Mapping):
        config._source_file = Path(source).resolve()
    return config
