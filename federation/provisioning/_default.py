"""The mapping used when a bridge has none configured.

Owns: :class:`DefaultMapping`: the identity's username, email and ``name``
claim become the user's columns (updated on every login while the token
carries them, never cleared), roles are left as they are (a new user has
none). No deny rules.

Must not: grant roles: without a mapping, nothing in a token is privileged.
"""

from __future__ import annotations

from typing import Any

from ..mapping import ExistingUser, MappingResult, TraceEntry
from ..spi import VerifiedToken

__all__ = ["DefaultMapping"]


class DefaultMapping:
    """Copy username, email and display name from the identity; keep roles."""

    def apply(self, token: VerifiedToken, existing: ExistingUser | None) -> MappingResult:
        """The columns the token carries; the existing user's roles unchanged."""
        attributes: dict[str, Any] = {}
        trace: list[TraceEntry] = []
        name = token.claims.get("name")
        for attribute, value in (
            ("username", token.username),
            ("email", token.email),
            ("display_name", name if isinstance(name, str) else None),
        ):
            if value is not None:
                attributes[attribute] = value
                trace.append(TraceEntry(f"default.{attribute}", "set"))
            else:
                trace.append(TraceEntry(f"default.{attribute}", "kept", "absent from the token"))
        roles = existing.roles if existing is not None else frozenset()
        return MappingResult(attributes=attributes, roles=roles, trace=tuple(trace))
