"""What ``Bridge.login`` and ``Bridge.deprovision`` return.

Owns: :class:`LoginResult` and :class:`DeprovisionResult`.

Must not: compute anything; they are records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..frozen import record_factory
from ..mapping import MappingResult
from ..spi import VerifiedToken
from ..storage import AuditEvent, User, UserIdentity

__all__ = ["DeprovisionResult", "LoginResult"]


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A successful login: the local user after provisioning, and how it got there.

    ``created``: the user was created by this login. ``linked``: this identity
    was linked to an existing user by verified email. ``changes``: field ->
    (old, new) for an existing user (``attributes.<name>`` for attributes,
    ``roles`` for the role set; ``last_login_at`` is not listed).
    ``granted``/``revoked``: role changes (a new user's roles are all granted).
    ``mapping``: the mapping result, with its trace. ``token``: the verified token.
    """

    user: User
    identity: UserIdentity
    token: VerifiedToken
    created: bool
    linked: bool = False
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    granted: frozenset[str] = frozenset()
    revoked: frozenset[str] = frozenset()
    mapping: MappingResult = field(default_factory=MappingResult)
    events: tuple[AuditEvent, ...] = ()

    def __repr__(self) -> str:  # the user record is personal data: keep reprs short
        return (
            f"LoginResult(user_id={self.user.id!r}, identity={self.identity.key!r}, "
            f"created={self.created}, linked={self.linked}, changes={sorted(self.changes)})"
        )


make_login_result = record_factory(LoginResult)  # built for every login


@dataclass(frozen=True, slots=True)
class DeprovisionResult:
    """What deprovisioning did: ``action`` is ``disable``, ``delete`` or ``none``
    (the user was disabled already). ``user`` is the user after disabling, or as
    it was before deletion."""

    action: str
    user: User
    identity: UserIdentity | None  # None when deprovisioned by user id
    events: tuple[AuditEvent, ...] = ()

    @property
    def changed(self) -> bool:
        """True when the store was written."""
        return self.action != "none"
