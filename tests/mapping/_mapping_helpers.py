"""Helpers shared by the mapping tests: building verified tokens through the real
provider profiles (so ``$``-names are what verification would produce), and a
small existing-user stand-in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from federation.providers import ProviderProfile, TokenContext

from federation import VerifiedToken
from federation._rfc7517 import VerificationKey
from federation.config import load_config
from federation.mapping import Mapping as MappingRules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "mappings"


@dataclass
class User:
    """An ExistingUser: the local user as mapping sees it."""

    attributes: Mapping[str, Any] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()


def profile(entry: dict[str, Any]) -> ProviderProfile:
    """The provider profile federation.yaml would build from ``entry`` (validated)."""
    return load_config({"issuers": [entry]}).issuers[0]


def verified(entry: dict[str, Any], claims: dict[str, Any], *, issuer: str | None = None) -> VerifiedToken:
    """A VerifiedToken as the bridge builds it after the signature and claims checks:
    the profile classifies the token and derives the identity from the claims."""
    prof = profile(entry)
    iss = issuer or claims["iss"]
    kind = prof.classify({}, claims)
    context = TokenContext(iss, {}, claims, kind, cast(VerificationKey, None), 0.0, 60.0, 50)
    return VerifiedToken(
        issuer=iss,
        subject=claims["sub"],
        provider=prof.provider,
        token_type=kind,
        claims=MappingProxyType(claims),
        header=MappingProxyType({"alg": "RS256", "typ": "JWT"}),
        key_id="k1",
        algorithm="RS256",
        audience=(),
        expires_at=datetime(2027, 1, 15, tzinfo=timezone.utc),
        identity=prof.identity(context),
    )


def example(name: str) -> MappingRules:
    return MappingRules.from_file(EXAMPLES / f"{name}.yaml")


def mapping(yaml_text: str) -> MappingRules:
    """A mapping from YAML text (errors name '<test>')."""
    return MappingRules.from_yaml(yaml_text, file="mapping.yaml")


def outcome(result: Any, rule: str) -> list[tuple[str, str]]:
    """The (outcome, detail) trace entries of ``rule``."""
    return [(t.outcome, t.detail) for t in result.trace if t.rule == rule]
