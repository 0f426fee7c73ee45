"""Bridge configuration: the typed models and the loaders.

Owns: the schema of ``federation.yaml`` (issuers, key cache knobs, limits,
leeway) as pydantic models with unknown keys refused, and loading it from a
file or a dict into a :class:`BridgeConfig`, raising
:class:`~federation.errors.ConfigError` that names file, line, column and field.

Must not: build HTTP clients, fetch keys or verify tokens.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from federation.providers import PROFILE_MODELS, ProviderProfile

from ._yaml import Located, config_error_from_validation, read_yaml_file
from .errors import ConfigError

__all__ = [
    "BridgeConfig",
    "IssuerConfig",
    "KeysConfig",
    "LimitsConfig",
    "is_fetchable_url",
    "is_loopback_url",
    "load_config",
]

if TYPE_CHECKING:
    IssuerConfig = ProviderProfile
elif len(PROFILE_MODELS) == 1:
    IssuerConfig = PROFILE_MODELS[0]
else:
    #: One issuer entry: the profile model named by its ``provider`` field.
    IssuerConfig = Annotated[Union[PROFILE_MODELS], Field(discriminator="provider")]  # noqa: UP007


class KeysConfig(BaseModel):
    """Key cache behaviour, per issuer. All durations are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl: float = Field(600, gt=0, description="Freshness when the response has no usable Cache-Control.")
    min_ttl: float = Field(60, ge=0, description="Lower clamp for Cache-Control max-age.")
    max_ttl: float = Field(86400, gt=0, description="Upper clamp for Cache-Control max-age.")
    refresh_cooldown: float = Field(
        30, ge=0, description="At most one forced refetch per issuer per cooldown."
    )
    max_stale: float = Field(
        86400, ge=0, description="How long the last good key set serves during an outage."
    )
    unknown_kid_ttl: float = Field(60, ge=0, description="How long an unknown kid is remembered as unknown.")
    timeout: float = Field(5, gt=0, le=60, description="Connect and read timeout of one fetch.")
    max_response_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_keys: int = Field(100, ge=1, le=10000, description="A key set with more entries is refused.")
    allow_loopback_http: bool = Field(
        False, description="Allow plain http:// key and discovery URLs on loopback hosts (tests only)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> KeysConfig:
        if not self.min_ttl <= self.ttl <= self.max_ttl:
            raise ValueError("keys: expected min_ttl <= ttl <= max_ttl")
        return self


class LimitsConfig(BaseModel):
    """Resource bounds, enforced before expensive work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_token_bytes: int = Field(32 * 1024, ge=256, le=1024 * 1024)
    max_header_bytes: int = Field(4 * 1024, ge=64, le=64 * 1024)
    max_json_depth: int = Field(32, ge=2, le=256)
    max_claims: int = Field(500, ge=1, le=100000)
    max_audiences: int = Field(50, ge=1, le=10000)


class BridgeConfig(BaseModel):
    """The whole bridge configuration (``federation.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuers: list[IssuerConfig] = Field(min_length=1)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    leeway: float = Field(60, ge=0, le=300, description="Clock skew allowed for exp/nbf/iat, seconds.")

    @model_validator(mode="after")
    def _issuers_unique_and_reachable(self) -> BridgeConfig:
        seen: set[str] = set()
        for entry in self.issuers:
            for iss in entry.trusted_issuers:
                if iss in seen:
                    raise ValueError(f"issuer {iss!r} is configured twice")
                seen.add(iss)
            spec = entry.key_source
            for url in (spec.jwks_uri, spec.discovery_url):
                if url is not None and not is_fetchable_url(url, self.keys.allow_loopback_http):
                    raise ValueError(
                        f"{url!r} must be an https:// URL (plain http only on loopback with "
                        "keys.allow_loopback_http)"
                    )
        return self


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs whose host is localhost or a loopback address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_fetchable_url(url: str, allow_loopback_http: bool) -> bool:
    """True for https URLs, and for loopback http URLs when explicitly allowed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_loopback_http and is_loopback_url(url)


def load_config(source: str | Path | Mapping[str, Any]) -> BridgeConfig:
    """Validate a config file path or a mapping; raise :class:`ConfigError` on any problem."""
    if isinstance(source, Mapping):
        located = Located(dict(source), {}, None)
    else:
        located = read_yaml_file(source)
        if not isinstance(located.data, dict):
            raise ConfigError(
                f"{located.file}: the config must be a mapping at the top level", file=located.file
            )
    try:
        return BridgeConfig.model_validate(located.data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, located, "bridge config") from None
