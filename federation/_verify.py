"""The pure verification core: routing, algorithm policy, signature, claims.

Owns: the order of checks on one token, split around the only I/O step (key
lookup) so that the sync and async shells share every rule:

1. :meth:`Verifier.prepare` — parse (size first), route the unverified ``iss``
   by exact dict lookup to a configured issuer, else to a profile that matches
   issuers it cannot list (any Entra tenant); unknown issuers are rejected
   before any I/O. Apply the issuer's algorithm allow-list and the profile's
   checks of the unverified token.
2. the shell obtains the key for (kid, alg) from the issuer's key source.
3. :meth:`Verifier.finish` — verify the signature, then the claims (so a
   forged expired token reports ``bad_signature``), classify the token kind
   and apply the issuer's token-type allow-list.

State: no configuration changes after construction, but a :class:`Verifier`
keeps two bounded caches — parsed headers by their segment (64 entries) and
routes built for issuers matched by a dynamic profile (256) — both pure
memos of their keys, cleared when full.

Must not: perform I/O, fetch keys, or read the clock except through the
injected callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from ._oidc_logout import LogoutToken, check_logout_token
from ._oidc_userinfo import merge_userinfo
from ._profile import Identity, ProviderProfile, make_token_context
from ._rfc7515 import CompactJWS, Limits, parse_compact
from ._rfc7517 import VerificationKey
from ._rfc7519 import ClaimsPolicy, TokenType, check_claims, classify_token
from .errors import (
    BadSignature,
    DisallowedAlgorithm,
    InvalidClaim,
    InvalidToken,
    UntrustedIssuer,
    WrongTokenType,
)
from .frozen import fast_init, record_factory

__all__ = ["Route", "VerifiedToken", "Verifier", "make_route"]

_DYNAMIC_ROUTES = 256  # routes kept for issuers matched by a profile rather than listed
_from_timestamp = datetime.fromtimestamp


@fast_init
@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims have been verified.

    ``claims`` and ``header`` are read-only views. ``issuer`` is the configured
    issuer string the token matched; ``provider`` the profile that verified it.
    ``issuer_trusts_email`` is that issuer entry's ``trust_email`` setting,
    decided when the token was routed and carried to provisioning.
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
    identity: Identity
    issuer_trusts_email: bool = False

    @property
    def identity_key(self) -> tuple[str, str]:
        """The stable (namespace, id) key of the user; never an email."""
        return self.identity.key

    @property
    def email(self) -> str | None:
        """The email address, if the token has one (see :attr:`email_verified`)."""
        return self.identity.email

    @property
    def email_verified(self) -> bool:
        """True only when the provider vouches for the email as it documents."""
        return self.identity.email_verified

    @property
    def username(self) -> str | None:
        """The provider's username claim, normalised (mutable: never a key)."""
        return self.identity.username

    @property
    def groups(self) -> tuple[str, ...]:
        """Group names or ids from the provider's group claim."""
        return self.identity.groups

    @property
    def roles(self) -> tuple[str, ...]:
        """Role names from the provider's role claims."""
        return self.identity.roles

    def __repr__(self) -> str:  # claims may be personal data: keep reprs short
        return (
            f"VerifiedToken(issuer={self.issuer!r}, subject={self.subject!r}, provider={self.provider!r}, "
            f"token_type={self.token_type!r}, expires_at={self.expires_at.isoformat()})"
        )


_make_verified = record_factory(VerifiedToken)


@dataclass(frozen=True, slots=True)
class Route:
    """Everything the core needs to know about one trusted issuer string."""

    issuer: str
    profile: ProviderProfile
    algorithms: frozenset[str]
    token_types: frozenset[str]
    policies: Mapping[str, ClaimsPolicy]  # per token kind
    # False when the profile keeps the base class's no-op hooks: nothing to call per token.
    checks_unverified: bool = True
    # The profile's classify, or the generic rule itself when the profile keeps it.
    classify: Callable[[Mapping[str, Any], Mapping[str, Any]], TokenType] = classify_token


class Verifier:
    """The rules of verification, free of I/O.

    Thread-safe: its configuration is fixed at construction; its only mutable
    state are the two bounded memo caches (headers, dynamic routes), whose
    entries are pure functions of their keys, so a race costs a recomputation,
    never a wrong answer.
    """

    def __init__(
        self,
        profiles: list[ProviderProfile],
        limits: Limits,
        clock: Callable[[], float],
        leeway: float,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._header_cache: dict[str, Any] = {}
        self._leeway = leeway
        self.routes: dict[str, Route] = {}
        for profile in profiles:
            for iss in profile.trusted_issuers:
                self.routes[iss] = make_route(iss, profile, leeway, limits.max_audiences)
        # Profiles whose issuers cannot be listed (any Entra tenant) are asked after the dict misses.
        self._dynamic = [p for p in profiles if type(p).matches_issuer is not ProviderProfile.matches_issuer]
        self._dynamic_routes: dict[tuple[str, int], Route] = {}

    def route_for(self, iss: object, claims: Mapping[str, Any]) -> Route | None:
        """The route of an unverified ``iss``: exact dict lookup, then dynamic profiles."""
        if type(iss) is not str:
            return None
        route = self.routes.get(iss)
        if route is None:
            for profile in self._dynamic:
                if profile.matches_issuer(iss, claims):
                    # A route is a pure function of (iss, profile): keep recent ones, bounded.
                    key = (iss, id(profile))
                    route = self._dynamic_routes.get(key)
                    if route is None:
                        if len(self._dynamic_routes) >= _DYNAMIC_ROUTES:
                            self._dynamic_routes.clear()
                        route = make_route(iss, profile, self._leeway, self._limits.max_audiences)
                        self._dynamic_routes[key] = route
                    return route
        return route

    def prepare(self, token: object) -> tuple[CompactJWS, Route]:
        """Parse and route; everything that can be decided before key lookup."""
        jws = parse_compact(token, self._limits, self._header_cache)
        # Exact, type-checked lookup: never normalised, never fetched (FETCH-01).
        iss = jws.claims.get("iss")
        route = self.routes.get(iss) if type(iss) is str else None  # route_for's first step, inline
        if route is None:
            route = self.route_for(iss, jws.claims)
            if route is None:
                raise UntrustedIssuer("the token's issuer is not a configured issuer")
        if jws.alg not in route.algorithms:
            raise DisallowedAlgorithm(
                "the token's algorithm is not allowed for its issuer", issuer=route.issuer
            )
        if route.checks_unverified:
            try:
                route.profile.check_unverified(jws.header, jws.claims)
            except InvalidToken as exc:
                exc.issuer = exc.issuer or route.issuer
                raise
        return jws, route

    def finish(self, jws: CompactJWS, route: Route, key: VerificationKey) -> VerifiedToken:
        """Verify signature then claims; build the result."""
        if not key.verifier(jws.alg)(jws.signing_input, jws.signature):
            raise BadSignature("the signature does not verify", issuer=route.issuer)
        claims = jws.claims
        header = jws.header
        profile = route.profile
        if "events" in claims:
            # A security event token (RFC 8417), such as an OIDC back-channel logout token: its
            # other claims can be an id token's (sub, aud, iat, exp), so its kind is told by this.
            raise WrongTokenType(
                "a security event token (events) is not an id or access token", issuer=route.issuer
            )
        token_type = route.classify(header, claims)
        if token_type not in route.token_types:
            raise WrongTokenType(
                f"{token_type} tokens are not accepted from this issuer", issuer=route.issuer
            )
        now = self._clock()
        exp = check_claims(claims, route.policies[token_type], token_type, now)
        # Positional construction throughout: these records are built for every token.
        context = make_token_context(
            route.issuer, header, claims, token_type, key, now, self._leeway, self._limits.max_audiences
        )
        profile.check(context)
        aud = claims.get("aud")
        return _make_verified(
            route.issuer,
            claims["sub"],
            profile.provider,
            token_type,
            MappingProxyType(claims),
            MappingProxyType(header),
            jws.kid,
            jws.alg,
            (aud,) if type(aud) is str else tuple(aud or ()),  # its shape checked by check_claims
            _from_timestamp(exp, timezone.utc),  # positional: a keyword doubles this call's cost
            profile.identity(context),
            profile.trust_email,
        )

    def finish_with_userinfo(
        self, jws: CompactJWS, route: Route, key: VerificationKey, userinfo: Mapping[str, Any]
    ) -> VerifiedToken:
        """:meth:`finish`, then the claims completed by the provider's UserInfo response
        (``_oidc_userinfo``): every rule and the profile's checks judge the token's own
        claims; the identity and :attr:`VerifiedToken.claims` are read from both, and the
        identity key stays the token's."""
        verified = self.finish(jws, route, key)
        claims = merge_userinfo(verified.claims, userinfo)
        context = make_token_context(
            route.issuer,
            jws.header,
            claims,
            verified.token_type,
            key,
            self._clock(),
            self._leeway,
            self._limits.max_audiences,
        )
        identity = route.profile.identity(context)
        if identity.key != verified.identity.key:  # a profile reading a standard claim into its key
            raise InvalidToken(
                "the UserInfo response would change which user this is", code="userinfo_invalid"
            )
        return replace(verified, claims=MappingProxyType(claims), identity=identity)

    def finish_logout(self, jws: CompactJWS, route: Route, key: VerificationKey) -> LogoutToken:
        """Verify a back-channel logout token's signature, then its rules (``_oidc_logout``)."""
        if not key.verifier(jws.alg)(jws.signing_input, jws.signature):
            raise BadSignature("the signature does not verify", issuer=route.issuer)
        now = self._clock()
        claims, header = jws.claims, jws.header
        exp = check_logout_token(header, claims, route.policies["id"], now)
        subject = claims.get("sub")
        identity_key: tuple[str, str] | None = None
        if subject is not None:
            context = make_token_context(
                route.issuer, header, claims, "id", key, now, self._leeway, self._limits.max_audiences
            )
            # §2.6: validated as an id token is, the provider's own rules included (Entra binds
            # the tenant of iss, tid and the key here): the identity below is read from them.
            route.profile.check(context)
            try:  # the key a login of this sub has
                identity_key = route.profile.identity(context).key
            except (KeyError, TypeError, ValueError):
                raise InvalidClaim(
                    "the logout token does not name its user as this provider's tokens do",
                    claim="sub",
                    code="logout_without_identity",
                ) from None
        iat = claims["iat"]
        return LogoutToken(
            route.issuer,
            route.profile.provider,
            subject,
            identity_key,
            claims.get("sid"),
            claims["jti"],
            _from_timestamp(float(iat), timezone.utc),
            _from_timestamp(exp, timezone.utc),
        )


def make_route(iss: str, profile: ProviderProfile, leeway: float, max_audiences: int) -> Route:
    """The route for one exact issuer string of ``profile``."""
    policies = {
        kind: ClaimsPolicy(
            issuer=iss,
            audiences=profile.audiences_for(kind),
            leeway=leeway,
            max_audiences=max_audiences,
            max_subject_length=profile.max_subject_length,
            require_iat=profile.require_iat(kind),
        )
        for kind in ("id", "access")
    }
    return Route(
        issuer=iss,
        profile=profile,
        algorithms=frozenset(profile.algorithms),
        token_types=frozenset(profile.token_types),
        policies=policies,
        classify=(classify_token if type(profile).classify is ProviderProfile.classify else profile.classify),
        checks_unverified=(
            type(profile).check_unverified is not ProviderProfile.check_unverified
            or type(profile).check_header is not ProviderProfile.check_header
        ),
    )
