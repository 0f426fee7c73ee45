"""Session access tokens (RFC 9068, JWT profile for OAuth 2.0 access tokens): issue and verify.

Owns: the claim set of the app's own access tokens (``iss``, ``aud``,
``sub`` = the local user id, ``exp``, ``iat``, ``jti``, ``client_id``,
``roles``, ``sid`` the session, ``gen`` the user's generation), minting it
with the key ring, and verifying it through the same strict core as external
tokens: the compact parser and its limits, the key set and algorithm checks
(RFC 8725: the algorithm is the ring's, never the header's choice), the
registered-claim rules of RFC 7519, then RFC 9068's ``typ``.

Pure: the caller passes the clock's reading; revocation and user status are
decided by the session layer above, not here.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .._rfc7515 import CompactJWS, Limits, parse_compact
from .._rfc7517 import import_jwks
from .._rfc7519 import ClaimsPolicy, check_claims
from ..errors import (
    BadSignature,
    DisallowedAlgorithm,
    InvalidClaim,
    InvalidToken,
    UnknownKey,
    WrongTokenType,
)
from ..frozen import fast_init, record_factory
from ._keyring import SessionKeyRing, SessionSecret

__all__ = ["AccessClaims", "SessionTokens"]

#: RFC 9068 §2.1: the media type, with or without its ``application/`` prefix.
_AT_JWT = frozenset({"at+jwt", "application/at+jwt"})


@fast_init  # built for every first-seen session token
@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified claims of a session access token."""

    user_id: str
    session_id: str
    jti: str
    roles: frozenset[str]
    generation: int
    issued_at: int
    expires_at: int
    claims: Mapping[str, Any]


_make_access_claims = record_factory(AccessClaims)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


class SessionTokens:
    """Mints and verifies the app's access tokens for one issuer and audience.

    ``leeway`` is the clock skew allowed on ``exp`` and ``iat`` (seconds):
    small, since the app's own hosts sign and verify.
    """

    def __init__(
        self,
        ring: SessionKeyRing | SessionSecret,
        *,
        issuer: str,
        audience: str | None = None,
        client_id: str | None = None,
        access_ttl: int = 3600,
        leeway: float = 5,
        limits: Limits | None = None,
    ) -> None:
        if access_ttl <= 0:
            raise ValueError("access_ttl must be positive")
        self.ring = ring
        self.issuer = issuer
        self.audience = audience or issuer
        self.client_id = client_id or self.audience
        self.access_ttl = access_ttl
        self._limits = limits or Limits()
        # Every session token of a key shares one header: decode it once (bounded: a few kids).
        self._headers: dict[str, Any] = {}
        # Asymmetric rings verify through the strict JWK import like any issuer's keys.
        self._keys = (
            None if isinstance(ring, SessionSecret) else import_jwks(ring.jwks(), max_keys=len(ring.keys))[0]
        )
        self._policy = ClaimsPolicy(
            issuer=issuer, audiences=frozenset({self.audience}), leeway=leeway, require_iat=True
        )
        self.leeway = leeway

    def issue(
        self,
        user_id: str,
        *,
        roles: Iterable[str],
        generation: int,
        session_id: str,
        now: float,
        ttl: int | None = None,
    ) -> tuple[str, AccessClaims]:
        """A signed access token for ``user_id``, and its claims."""
        iat = int(now)
        exp = iat + (ttl if ttl is not None else self.access_ttl)
        key = self.ring.signing_key
        header = {"alg": self.ring.algorithm, "kid": key.kid, "typ": "at+jwt"}
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "client_id": self.client_id,
            "iat": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(18),
            "sid": session_id,
            "gen": generation,
            "roles": sorted(roles),
        }
        signing_input = _b64(_json(header)) + b"." + _b64(_json(claims))
        token = (signing_input + b"." + _b64(self.ring.sign(signing_input))).decode("ascii")
        return token, _access_claims(claims)

    def parse(self, token: str | bytes) -> CompactJWS:
        """The compact form parsed under the limits (nothing verified yet)."""
        return parse_compact(token, self._limits, self._headers)

    def verify(self, token: str | bytes, *, now: float, check_time: bool = True) -> AccessClaims:
        """Verify a session access token; raises :class:`~federation.errors.InvalidToken` subclasses.

        ``check_time=False`` skips ``exp``/``iat`` (revoking an expired token is no error).
        """
        return self.verify_parsed(
            parse_compact(token, self._limits, self._headers), now=now, check_time=check_time
        )

    def verify_parsed(self, jws: CompactJWS, *, now: float, check_time: bool = True) -> AccessClaims:
        """:meth:`verify` of a token :meth:`parse` returned."""
        if jws.alg != self.ring.algorithm:
            raise DisallowedAlgorithm(
                "the token's algorithm is not the session algorithm", issuer=self.issuer
            )
        ring = self.ring
        if isinstance(ring, SessionSecret):
            if jws.kid != ring.signing_key.kid:
                raise UnknownKey("the token's key is not a session key", issuer=self.issuer)
            verified = ring.verify(jws.signing_input, jws.signature)
        else:
            # Every session token names its key: the key set's fallback for a token without
            # a kid (some issuers send none) is for issuers' tokens, not this app's own.
            keys = self._keys
            key = keys.find(jws.kid, jws.alg) if keys is not None and jws.kid is not None else None
            if key is None:
                raise UnknownKey("the token's key is not a session key", issuer=self.issuer)
            verified = key.verifier(jws.alg)(jws.signing_input, jws.signature)
        if not verified:
            raise BadSignature("the signature does not verify", issuer=self.issuer)
        typ = jws.header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _AT_JWT:
            raise WrongTokenType("not a session access token (typ is not at+jwt)", issuer=self.issuer)
        claims = jws.claims
        try:
            # Untimed (revocation): judge the token at its own issue time, every other rule as ever.
            iat = claims.get("iat")
            at = now if check_time or type(iat) is not int else float(iat)
            check_claims(claims, self._policy, "access", at)
        except InvalidToken as exc:  # a NumericDate error does not know its issuer
            exc.issuer = exc.issuer or self.issuer
            raise
        if claims.get("client_id") != self.client_id:
            raise InvalidClaim("'client_id' is not this app's", claim="client_id", issuer=self.issuer)
        for name in ("jti", "sid"):
            if type(claims.get(name)) is not str or not claims[name]:
                raise InvalidClaim(f"'{name}' is missing or malformed", claim=name, issuer=self.issuer)
        if type(claims.get("gen")) is not int or claims["gen"] < 0:
            raise InvalidClaim("'gen' is missing or malformed", claim="gen", issuer=self.issuer)
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidClaim("'roles' is not a list of strings", claim="roles", issuer=self.issuer)
        return _access_claims(claims)

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify session tokens (every key of the ring)."""
        return self.ring.jwks()


def _access_claims(claims: Mapping[str, Any]) -> AccessClaims:
    return _make_access_claims(  # positional: user_id, session_id, jti, roles, generation, issued_at, ...
        claims["sub"],
        claims["sid"],
        claims["jti"],
        frozenset(claims["roles"]),
        claims["gen"],
        int(claims["iat"]),
        int(claims["exp"]),
        claims if isinstance(claims, MappingProxyType) else MappingProxyType(claims),
    )
