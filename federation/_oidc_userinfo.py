"""OpenID Connect Core 1.0 §5.3: what a UserInfo response may add to a verified id token.

Owns: :func:`merge_userinfo`. The response's ``sub`` must be the id token's, exactly
(§5.3.2: otherwise none of its values may be used). It may add only the standard claims
of §5.1 (names, profile, email, phone, address: :data:`USERINFO_CLAIMS`), never a claim
the token carries (those are signed), never a provider's own claim (a hosted domain, a
tenant, groups or roles, an "email verified by the domain owner" flag), which a provider
profile may read as vouching for something. A claim and the one that vouches for it are
taken together, from one source: an ``email_verified`` of the response never qualifies
an ``email`` of the token. Aggregated and distributed claims (§5.6.2) are not followed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidToken

__all__ = ["USERINFO_CLAIMS", "merge_userinfo"]

#: OIDC Core §5.1, the standard claims a UserInfo response may supply (``sub`` aside).
USERINFO_CLAIMS = frozenset(
    {
        "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
        "profile", "picture", "website", "email", "email_verified", "gender", "birthdate",
        "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
    }
)  # fmt: skip

#: Claims taken together or not at all: a value and the claim that says it was verified.
_UNITS = (frozenset({"email", "email_verified"}), frozenset({"phone_number", "phone_number_verified"}))


def merge_userinfo(claims: Mapping[str, Any], userinfo: Mapping[str, Any]) -> dict[str, Any]:
    """The id token's ``claims`` completed by ``userinfo`` (a parsed UserInfo response).

    Raises :class:`InvalidToken` (``userinfo_subject_mismatch``) when the response's
    ``sub`` is not the token's.
    """
    subject = userinfo.get("sub")
    if not isinstance(subject, str) or subject != claims.get("sub"):
        raise InvalidToken(
            "the UserInfo response is about another user than the id token (sub)",
            code="userinfo_subject_mismatch",
        )
    taken = {name for name in USERINFO_CLAIMS if name in userinfo and name not in claims}
    for unit in _UNITS:
        if unit & claims.keys():  # the token speaks for this unit: none of it from the response
            taken -= unit
    merged = dict(claims)
    for name in sorted(taken):
        merged[name] = userinfo[name]
    return merged
