"""The session layer's parts; the public face is :mod:`federation.sessions`."""

from __future__ import annotations

from ._keyring import SESSION_ALGORITHMS, SessionKey, SessionKeyRing, generate_private_key_pem
from ._tokens import AccessClaims, SessionTokens

__all__ = [
    "SESSION_ALGORITHMS",
    "AccessClaims",
    "SessionKey",
    "SessionKeyRing",
    "SessionTokens",
    "generate_private_key_pem",
]
