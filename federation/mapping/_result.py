"""What applying a mapping returns: the contract between mapping and provisioning.

Owns: :class:`MappingResult` (attributes to write, the final role set and its
changes, the deny code, the trace), :class:`TraceEntry`, and
:class:`ExistingUser` (what mapping needs to know about the local user, if any,
to apply update policies and role sync).

Must not: know how mappings are written or how users are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ExistingUser", "MappingResult", "TraceEntry"]


class ExistingUser(Protocol):
    """The local user a token maps onto, as mapping sees it (read-only)."""

    @property
    def attributes(self) -> Mapping[str, Any]:
        """Current attribute values, including the columns ``username``, ``email``, ``display_name``."""
        ...

    @property
    def roles(self) -> frozenset[str]:
        """Current roles."""
        ...


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One step of applying a mapping: which rule, what it decided, and why."""

    rule: str  # a path in the mapping file, e.g. "roles.rules[1]" or "attributes.email"
    outcome: str  # e.g. "granted", "skipped", "set", "kept", "denied", "no match"
    detail: str = ""  # human-readable reason; never a secret (claim values may appear)


class _Deferred:
    """A trace not built yet: the engine's record of an apply, turned into entries on first read."""

    __slots__ = ("build",)

    def __init__(self, build: Callable[[], tuple[TraceEntry, ...]]) -> None:
        self.build = build


class _TraceField:
    """``MappingResult.trace``: a tuple of entries, built from the engine's record the first
    time it is read (an apply whose trace nobody reads never builds it)."""

    def __get__(self, obj: MappingResult | None, objtype: type | None = None) -> tuple[TraceEntry, ...]:
        if obj is None:
            return ()  # the field's default, as dataclasses asks for it
        value = obj.__dict__["_trace"]
        if type(value) is _Deferred:
            value = value.build()
            obj.__dict__["_trace"] = value  # the same tuple whichever thread builds it first
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: MappingResult, value: tuple[TraceEntry, ...]) -> None:
        obj.__dict__["_trace"] = value


def recorded(
    attributes: Mapping[str, Any],
    roles: frozenset[str],
    granted: frozenset[str],
    revoked: frozenset[str],
    denied: str | None,
    build: Callable[[], tuple[TraceEntry, ...]],
) -> MappingResult:
    """The engine's constructor: ``MappingResult(...)`` with these fields, and a trace that is
    ``build()``, called when it is first read (a pure function of what the apply recorded).

    The same object as through ``__init__`` (a frozen dataclass's ``__init__`` only stores
    the fields), without its per-field ``object.__setattr__`` calls.
    """
    result = object.__new__(MappingResult)
    result.__dict__.update(
        attributes=attributes,
        roles=roles,
        granted=granted,
        revoked=revoked,
        denied=denied,
        _trace=_Deferred(build),
    )
    return result


@dataclass(frozen=True)
class MappingResult:
    """The outcome of applying a mapping to a verified token (and the existing user, if any).

    ``attributes`` holds only the values to *write* (update policies already
    applied: an ``on_create`` attribute of an existing user is absent).
    ``roles`` is the complete role set the user should have afterwards (sync
    policy and protected roles applied); ``granted``/``revoked`` are the
    changes against the existing user's roles. ``denied`` is the deny code
    when a deny rule fired (then nothing should be provisioned).
    """

    attributes: Mapping[str, Any] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()
    granted: frozenset[str] = frozenset()
    revoked: frozenset[str] = frozenset()
    denied: str | None = None
    trace: tuple[TraceEntry, ...] = _TraceField()  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:  # copies and pickles carry the built trace
        state = dict(self.__dict__)
        state["_trace"] = self.trace
        return state

    @property
    def allowed(self) -> bool:
        """True when no deny rule fired."""
        return self.denied is None
