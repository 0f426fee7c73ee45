"""OpenID Connect Core 1.0 §5.3: what a UserInfo response may add to a verified id token.

Owns: :func:`merge_userinfo`. The response's ``sub`` must be the id token's, exactly
(§5.3.2: otherwise none of its values may be used). It adds the claims the id token
lacks and never replaces one the token carries (those are signed); and it never adds a
claim about the token rather than the user (the registered JWT claims, the protocol's,
and those a provider's identity key is made of), which a UserInfo response has no say
over. Aggregated and distributed claims (§5.6.2) are not followed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidToken

__all__ = ["TOKEN_CLAIMS", "merge_userinfo"]

#: Claims only the id token speaks for: RFC 7519 §4.1, OIDC Core §2 and §3.1.3.6, the
#: session and access-token claims (RFC 9068, RFC 8693, OIDC Back-Channel Logout), Entra's
#: identity key (``tid``, ``oid``), and §5.6.2's claim references.
TOKEN_CLAIMS = frozenset(
    {
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
        "nonce", "azp", "at_hash", "c_hash", "s_hash", "auth_time", "acr", "amr", "sid",
        "cnf", "events", "typ", "client_id", "scope", "scp", "act", "may_act",
        "tid", "oid", "_claim_names", "_claim_sources",
    }
)  # fmt: skip


def merge_userinfo(claims: Mapping[str, Any], userinfo: Mapping[str, Any], max_claims: int) -> dict[str, Any]:
    """The id token's ``claims`` completed by ``userinfo`` (a parsed UserInfo response).

    Raises :class:`InvalidToken` (``userinfo_subject_mismatch``) when the response's
    ``sub`` is not the token's, and (``userinfo_invalid``) when the two together hold
    more than ``max_claims`` claims.
    """
    subject = userinfo.get("sub")
    if not isinstance(subject, str) or subject != claims.get("sub"):
        raise InvalidToken(
            "the UserInfo response is about another user than the id token (sub)",
            code="userinfo_subject_mismatch",
        )
    merged = dict(claims)
    for name, value in userinfo.items():
        if name not in merged and name not in TOKEN_CLAIMS:
            merged[name] = value
    if len(merged) > max_claims:
        raise InvalidToken("the UserInfo response holds too many claims", code="userinfo_invalid")
    return merged
