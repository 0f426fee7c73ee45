"""Helpers shared by the provisioning tests (imported as ``_prov_helpers``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from federation.mapping import ExistingUser, MappingResult
from federation.storage import AuditEvent

#: The test PostgreSQL server (the service rule: see conftest.py).
POSTGRES_URL = os.environ.get(
    "FEDERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class AuditLog(list[AuditEvent]):
    """Collects audit events; ``names()`` lists their names in order."""

    def names(self) -> list[str]:
        return [e.name for e in self]

    def named(self, name: str) -> list[AuditEvent]:
        return [e for e in self if e.name == name]


class StubMapping:
    """A hand-written mapping: ``fn(token, existing) -> MappingResult`` (records its calls)."""

    def __init__(self, fn: Callable[[Any, ExistingUser | None], MappingResult]) -> None:
        self.fn = fn
        self.calls: list[tuple[Any, ExistingUser | None]] = []

    def apply(self, token: Any, existing: ExistingUser | None) -> MappingResult:
        self.calls.append((token, existing))
        return self.fn(token, existing)


def roles_from_groups(
    table: dict[str, str], *, additive: bool = False, protected: frozenset[str] = frozenset()
) -> StubMapping:
    """A stub mapping: role sync from groups, authoritative (default) or additive, with protected roles."""

    def fn(token: Any, existing: ExistingUser | None) -> MappingResult:
        mapped = frozenset(role for group, role in table.items() if group in token.groups)
        current = existing.roles if existing is not None else frozenset()
        roles = mapped | current if additive else mapped | (current & protected)
        return MappingResult(
            attributes={"email": token.email} if token.email else {},
            roles=roles,
            granted=roles - current,
            revoked=current - roles,
        )

    return StubMapping(fn)
