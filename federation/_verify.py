"""The pure verification core: routing, algorithm policy, signature, claims.

Owns: the order of checks on one token, split around the only I/O step (key
lookup) so that the sync and async shells share every rule:

1. :meth:`Verifier.prepare` — parse (size first), route the unverified ``iss``
   by exact dict lookup to a configured issuer (unknown issuers are rejected
   before any I/O), apply the issuer's algorithm allow-list.
2. the shell obtains the key for (kid, alg) from the issuer's key source.
3. :meth:`Verifier.finish` — verify the signature, then the claims (so a
   forged expired token reports ``bad_signature``), classify the token kind
   and apply the issuer's token-type allow-list.

Must not: perform I/O, fetch keys, or read the clock except through the
injected callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from federation.providers.oidc import OidcIssuerConfig

from ._rfc7515 import CompactJWS, Limits, parse_compact
from ._rfc7517 import VerificationKey
from ._rfc7519 import ClaimsPolicy, TokenType, check_claims
from .errors import BadSignature, DisallowedAlgorithm, UntrustedIssuer, WrongTokenType

__all__ = ["Route", "VerifiedToken", "Verifier"]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims have been verified.

    ``claims`` and ``header`` are read-only views. ``issuer`` is the configured
    issuer string the token matched; ``provider`` the profile that verified it.
    """

    issuer: str
    subject: str
    provider: str
    token_type: TokenType
    claims: Mapping[str, Any]
    header: Mapping[str, Any]
    key_id: str | None
    algorithm: str
    audience: tuple[str, ...]
    expires_at: datetime

    def __repr__(self) -> str:  # claims may be personal data: keep reprs short
        return (
            f"VerifiedToken(issuer={self.issuer!r}, subject={self.subject!r}, provider={self.provider!r}, "
            f"token_type={self.token_type!r}, expires_at={self.expires_at.isoformat()})"
        )


@dataclass(frozen=True, slots=True)
class Route:
    """Everything the core needs to know about one trusted issuer."""

    issuer: str
    profile: OidcIssuerConfig
    algorithms: frozenset[str]
    token_types: frozenset[str]
    policy: ClaimsPolicy


class Verifier:
    """The rules of verification, free of I/O. Thread-safe: it holds no mutable state."""

    def __init__(self, routes: Mapping[str, Route], limits: Limits, clock: Callable[[], float]) -> None:
        self._routes = dict(routes)
        self._limits = limits
        self._clock = clock

    def prepare(self, token: object) -> tuple[CompactJWS, Route]:
        """Parse and route; everything that can be decided before key lookup."""
        jws = parse_compact(token, self._limits)
        iss = jws.claims.get("iss")
        # Exact, type-checked dict lookup: never normalised, never fetched (FETCH-01).
        route = self._routes.get(iss) if type(iss) is str else None
        if route is None:
            raise UntrustedIssuer("the token's issuer is not a configured issuer")
        if jws.alg not in route.algorithms:
            raise DisallowedAlgorithm(
                "the token's algorithm is not allowed for its issuer", issuer=route.issuer
            )
        return jws, route

    def finish(self, jws: CompactJWS, route: Route, key: VerificationKey) -> VerifiedToken:
        """Verify signature then claims; build the result."""
        if not key.verifier(jws.alg)(jws.signing_input, jws.signature):
            raise BadSignature("the signature does not verify", issuer=route.issuer)
        claims = jws.claims
        token_type = route.profile.classify(jws.header, claims)
        if token_type not in route.token_types:
            raise WrongTokenType(
                f"{token_type} tokens are not accepted from this issuer", issuer=route.issuer
            )
        exp = check_claims(claims, route.policy, token_type, self._clock())
        aud = claims["aud"]
        return VerifiedToken(
            issuer=route.issuer,
            subject=claims["sub"],
            provider=route.profile.provider,
            token_type=token_type,
            claims=MappingProxyType(claims),
            header=MappingProxyType(jws.header),
            key_id=jws.kid,
            algorithm=jws.alg,
            audience=(aud,) if isinstance(aud, str) else tuple(aud),
            expires_at=datetime.fromtimestamp(exp, tz=timezone.utc),
        )


def build_routes(issuers: list[OidcIssuerConfig], leeway: float, max_audiences: int) -> dict[str, Route]:
    """One route per exact issuer string of every configured profile."""
    routes: dict[str, Route] = {}
    for profile in issuers:
        for iss in profile.trusted_issuers:
            routes[iss] = Route(
                issuer=iss,
                profile=profile,
                algorithms=frozenset(profile.algorithms),
                token_types=frozenset(profile.token_types),
                policy=ClaimsPolicy(
                    issuer=iss,
                    audiences=frozenset(profile.audiences),
                    leeway=leeway,
                    max_audiences=max_audiences,
                ),
            )
    return routes
