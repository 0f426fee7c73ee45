"""Registered-claim rules (RFC 7519 §4.1, OIDC Core §2 and §3.1.3.7, RFC 9068 §4).

Owns: the checks every verified token passes after its signature — ``iss``
exact, ``aud``/``azp``, ``exp``/``nbf``/``iat`` with leeway, ``sub`` — the
token-kind classification (the ``typ`` header first, RFC 8725 §3.11 explicit
typing, then the OAuth claims ``scope``/``scp``/``client_id``), and the claim
readers profiles share (:func:`numeric_date`, :func:`audience_values`). Pure
functions of their arguments (header, claims, policy, now).

Must not: parse tokens, touch keys, or perform I/O. Messages never contain
claim values.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from .errors import (
    InvalidAudience,
    InvalidClaim,
    IssuedInFuture,
    TokenExpired,
    TokenNotYetValid,
    UntrustedIssuer,
    WrongTokenType,
)

__all__ = [
    "ClaimsPolicy",
    "TokenType",
    "audience_values",
    "check_claims",
    "classify_token",
    "later",
    "numeric_date",
]

TokenType = Literal["id", "access"]

# Beyond year 9999 a datetime cannot represent it; far beyond any real token.
_MAX_NUMERIC_DATE = 253402300799


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """What one configured issuer requires of the registered claims."""

    issuer: str
    audiences: frozenset[str] | None  # None: the provider profile binds the audience itself
    leeway: float = 60
    max_audiences: int = 50
    max_subject_length: int = 255
    require_iat: bool = False


def numeric_date(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    """Read a NumericDate claim: a finite JSON number, never a string or boolean."""
    if name not in claims:
        if required:
            raise InvalidClaim(f"required claim '{name}' is missing", claim=name)
        return None
    value = claims[name]
    # bool is an int subclass in Python: exclude it explicitly (CLM-03).
    if type(value) is int:
        number = float(value) if abs(value) <= _MAX_NUMERIC_DATE else math.inf
    elif type(value) is float:
        number = value
    else:
        raise InvalidClaim(f"claim '{name}' is not a number", claim=name)
    if not math.isfinite(number) or not -_MAX_NUMERIC_DATE <= number <= _MAX_NUMERIC_DATE:
        raise InvalidClaim(f"claim '{name}' is out of range", claim=name)
    return number


def later(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus ``seconds``, at most the last instant a ``datetime`` holds: a NumericDate
    may name the last second of 9999, where adding a leeway would overflow."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return datetime.max.replace(tzinfo=timezone.utc)


def classify_token(header: Mapping[str, Any], claims: Mapping[str, Any]) -> TokenType:
    """Tell an id token from an access token, generically.

    RFC 9068 access tokens say ``typ: at+jwt``; others are recognised by their
    OAuth claims (``scope``/``scp``/``client_id``). Any other explicit ``typ``
    than JWT (``logout+jwt``, ``secevent+jwt``, ``dpop+jwt`` ...) is a token of
    another kind and is refused (RFC 8725 §3.11).
    """
    typ = header.get("typ")
    if typ is not None:
        media = typ.lower()
        if media.startswith("application/"):
            media = media[len("application/") :]
        if media == "at+jwt":
            return "access"
        if media != "jwt":
            raise WrongTokenType("the token's 'typ' names a kind of JWT that is not accepted")
    if "scope" in claims or "scp" in claims or "client_id" in claims:
        return "access"
    return "id"


def audience_values(
    claims: Mapping[str, Any], *, max_audiences: int, issuer: str | None = None
) -> tuple[str, ...]:
    """The ``aud`` claim as a tuple (empty when absent), for the engine and for profiles
    that bind the audience themselves. A wrong type or too many values is refused."""
    if "aud" not in claims:
        return ()
    aud = claims["aud"]
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if len(aud) > max_audiences:
            raise InvalidAudience("the token names too many audiences", issuer=issuer)
        return tuple(aud)
    raise InvalidAudience("'aud' is not a string or a non-empty array of strings", issuer=issuer)


def _check_audience(
    claims: Mapping[str, Any], policy: ClaimsPolicy, audiences: frozenset[str], token_type: TokenType
) -> None:
    values: Collection[str] = audience_values(
        claims, max_audiences=policy.max_audiences, issuer=policy.issuer
    )
    if not values:
        raise InvalidAudience("the token has no audience", issuer=policy.issuer)
    if audiences.isdisjoint(values):
        raise InvalidAudience("the token is not intended for a configured audience", issuer=policy.issuer)
    if token_type == "id" and not audiences.issuperset(values):
        # OIDC Core §3.1.3.7 step 3: reject id tokens naming audiences we do not trust.
        raise InvalidAudience("the id token also names audiences that are not trusted", issuer=policy.issuer)
    if "azp" in claims:
        azp = claims["azp"]
        if not isinstance(azp, str):
            raise InvalidClaim("'azp' is not a string", claim="azp", issuer=policy.issuer)
        if (len(values) > 1 or token_type == "id") and azp not in audiences:
            # OIDC Core §3.1.3.7 steps 4-5: with several audiences, and on any id token
            # that names an authorized party, that party must be us.
            raise InvalidAudience("'azp' is not a configured audience", issuer=policy.issuer)


def check_claims(claims: Mapping[str, Any], policy: ClaimsPolicy, token_type: TokenType, now: float) -> float:
    """Check the registered claims; return ``exp`` as a float.

    Call only after the signature has verified (DOS-02: a forged expired token
    must report ``bad_signature``, not ``expired``).
    """
    iss = claims.get("iss")
    if type(iss) is not str or iss != policy.issuer:  # exact code-point equality, no normalisation
        raise UntrustedIssuer("the token's issuer is not the configured issuer", issuer=policy.issuer)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidClaim("'sub' is missing or not a non-empty string", claim="sub", issuer=policy.issuer)
    if len(sub) > policy.max_subject_length or not sub.isprintable():
        raise InvalidClaim("'sub' is too long or has control characters", claim="sub", issuer=policy.issuer)
    leeway = policy.leeway
    # errors name their issuer where the verifier's shell catches them (Bridge.verify).
    # An in-range JSON integer is the common case, read inline; anything else goes
    # through numeric_date, which decides (and refuses) every other shape.
    exp = claims.get("exp")
    if type(exp) is not int or not -_MAX_NUMERIC_DATE <= exp <= _MAX_NUMERIC_DATE:
        exp = numeric_date(claims, "exp", required=True)
        assert exp is not None
    nbf = numeric_date(claims, "nbf", required=False) if "nbf" in claims else None
    iat = claims.get("iat")
    if type(iat) is not int or not -_MAX_NUMERIC_DATE <= iat <= _MAX_NUMERIC_DATE:
        iat = numeric_date(claims, "iat", required=policy.require_iat)
    if now >= exp + leeway:
        raise TokenExpired("the token has expired", issuer=policy.issuer)
    if nbf is not None:
        if nbf > exp:
            raise InvalidClaim("'nbf' is after 'exp'", claim="nbf", issuer=policy.issuer)
        if now + leeway < nbf:
            raise TokenNotYetValid("the token is not valid yet", issuer=policy.issuer)
    if iat is not None:
        if now + leeway < iat:
            raise IssuedInFuture("the token was issued in the future", issuer=policy.issuer)
        if iat > exp:  # issued after it expired: no issuer mints that (as 'nbf' after 'exp')
            raise InvalidClaim("'iat' is after 'exp'", claim="iat", issuer=policy.issuer)
    if "jti" in claims and type(claims["jti"]) is not str:  # RFC 7519 §4.1.7: a string
        raise InvalidClaim("'jti' is not a string", claim="jti", issuer=policy.issuer)
    audiences = policy.audiences
    if audiences is not None:
        aud = claims.get("aud")
        # One trusted audience and no 'azp' passes every rule of _check_audience at once.
        if type(aud) is not str or aud not in audiences or "azp" in claims:
            _check_audience(claims, policy, audiences, token_type)
    elif "aud" in claims and type(claims["aud"]) is not str:
        # A profile that binds the token by another claim (Cognito's client_id) still
        # gets an 'aud' of RFC 7519 §4.1.3's shape, for VerifiedToken.audience.
        audience_values(claims, max_audiences=policy.max_audiences, issuer=policy.issuer)
    return float(exp)
