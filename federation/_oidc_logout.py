"""OpenID Connect Back-Channel Logout 1.0: the logout token's rules (§2.4 and §2.6).

Owns: :class:`LogoutToken` and :func:`check_logout_token`, what a verified
logout token must hold beyond its signature: the issuer's ``iss`` and the
client's ``aud`` (the id token rules, §2.6 step 3), ``iat``, ``exp``, a ``jti``,
``events`` with the back-channel logout member holding a JSON object, ``sub``
and/or ``sid``, no ``nonce`` (so that it can never pass for an id token, nor an
id token for it), and an explicit ``typ`` of ``logout+jwt`` when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._rfc7519 import ClaimsPolicy, check_claims, numeric_date
from .errors import InvalidAudience, InvalidClaim, WrongTokenType

__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "LogoutToken", "check_logout_token"]

#: The member of ``events`` that makes a token a back-channel logout token (§2.4).
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass(frozen=True, slots=True)
class LogoutToken:
    """A verified back-channel logout token: the provider says this user, or this provider
    session, has logged out.

    ``subject``: the ``sub`` (None when the token names only a ``sid``);
    ``identity_key``: the local identity it belongs to (the key a login with the same
    ``sub`` would have; None without ``sub``); ``provider_session``: the provider's ``sid``.
    """

    issuer: str
    provider: str
    subject: str | None
    identity_key: tuple[str, str] | None
    provider_session: str | None
    jti: str
    issued_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:  # never the claims
        return f"LogoutToken(issuer={self.issuer!r}, subject={self.subject!r}, jti={self.jti!r})"


def check_logout_token(
    header: Mapping[str, Any], claims: Mapping[str, Any], policy: ClaimsPolicy, now: float
) -> float:
    """Raise what a logout token breaks (§2.6); return its ``exp``."""
    typ = header.get("typ")
    if typ is not None:
        media = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
        if media not in ("logout+jwt", "jwt"):
            raise WrongTokenType("the token's 'typ' is not logout+jwt")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise WrongTokenType("the token carries no back-channel logout event (events)")
    if "nonce" in claims:  # §2.4: so that a logout token is never an id token
        raise InvalidClaim("a logout token must not carry a nonce", claim="nonce")
    for name in ("sub", "sid"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidClaim(f"'{name}' is not a non-empty string", claim=name)
    if claims.get("sub") is None and claims.get("sid") is None:
        raise InvalidClaim("a logout token names a sub or a sid", claim="sub")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidClaim("a logout token must carry a jti", claim="jti")
    if policy.audiences is None:  # the profile binds audiences itself: none to hold this one to
        raise InvalidAudience("this issuer's tokens name no audience to check a logout token by")
    numeric_date(claims, "iat", required=True)
    # The id token rules: iss, aud, exp, iat (sub is checked above, sid may stand for it).
    subjectless = dict(claims, sub="-") if "sub" not in claims else claims
    return check_claims(subjectless, policy, "id", now)
