"""The app's own sessions: its signing keys and its access tokens (RFC 9068).

::

    from federation.sessions import SessionKeyRing, SessionTokens

    ring = SessionKeyRing.load("ES256", [{"file": "keys/session.pem"}], base_dir=config_dir)
    tokens = SessionTokens(ring, issuer="https://app.example.com")
    token, claims = tokens.issue(user.id, roles=user.roles, generation=0, session_id=sid, now=time.time())
    tokens.verify(token, now=time.time()).user_id

The first key of the ring signs, every key verifies (rotation); ``jwks()``
publishes the public halves. Most applications never build these by hand:
a ``sessions:`` section gives the bridge its ring, and ``Bridge.exchange``,
``authenticate``, ``refresh`` and ``revoke`` return and take the records
below (:class:`Session`, :class:`Principal`). See docs/sessions.md.
"""

from __future__ import annotations

from ._sessions._keyring import (
    SESSION_ALGORITHMS,
    SessionKey,
    SessionKeyRing,
    SessionSecret,
    generate_private_key_pem,
)
from ._sessions._service import Principal, Session, SessionPolicy, SessionService, refresh_hash
from ._sessions._tokens import AccessClaims, SessionTokens

__all__ = [
    "SESSION_ALGORITHMS",
    "AccessClaims",
    "Principal",
    "Session",
    "SessionKey",
    "SessionKeyRing",
    "SessionPolicy",
    "SessionSecret",
    "SessionService",
    "SessionTokens",
    "generate_private_key_pem",
    "refresh_hash",
]
