"""Applying a plan: a pure function of (context, existing user) to a MappingResult.

Owns: the order of evaluation and the policies:

1. deny rules, in order: the first that holds denies with its code;
2. attributes, in order: ``when`` gates the sources; the first source that
   resolves (and survives ``transform``) wins, else ``default``, else the
   attribute is missing: ``required`` then denies with ``missing_attribute``,
   otherwise the user's current value is left alone. A value is written only
   when the update policy allows it (``always``; ``on_create``: new users
   only; ``if_empty``: while the current value is empty) and it differs from
   the current value;
3. roles: ``default`` roles, then every rule that holds (privileged roles only
   from rules with ``allow_privileged``, checked again here), then the sync
   policy (``additive`` keeps every current role; ``authoritative`` keeps only
   granted and protected ones).

When a deny fires, the result carries the code, no attributes, and the
current roles unchanged. Every step adds a :class:`TraceEntry`.

Must not: raise on any claim value (absent, mistyped, huge: they are
outcomes), perform I/O, or mutate its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._compile import CompiledAttribute, CompiledRule, Plan, RolesPlan
from ._paths import MISSING, Context, kind_of
from ._result import ExistingUser, MappingResult, TraceEntry
from ._templates import Template
from ._transforms import Unresolved

__all__ = ["MISSING_ATTRIBUTE", "run"]

#: The deny code of a required attribute that did not resolve.
MISSING_ATTRIBUTE = "missing_attribute"

MAX_ROLE_LENGTH = 128
MAX_DYNAMIC_ROLES = 200
MAX_CACHED_ENTRIES = 32  # per rule: details that carry token values vary, keep the cache small


def _entry(cache: dict[tuple[str, str], TraceEntry], rule: str, outcome: str, detail: str) -> TraceEntry:
    """A trace entry, shared when the same rule reports the same thing again."""
    key = (outcome, detail)
    entry = cache.get(key)
    if entry is None:
        entry = TraceEntry(rule, outcome, detail)
        if len(cache) < MAX_CACHED_ENTRIES:
            cache[key] = entry
    return entry


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and not value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _shape(value: Any) -> tuple[Any, str]:
    """A resolved value as an attribute value, or (MISSING, why not)."""
    if isinstance(value, str):
        return (value, "") if value else (MISSING, "is empty")
    if isinstance(value, (bool, int, float)):
        return value, ""
    if isinstance(value, (list, tuple)):
        if not value:
            return MISSING, "is an empty list"
        for item in value:
            if not isinstance(item, (str, bool, int, float)):
                return MISSING, f"is a list holding {kind_of(item)}"
        return list(value), ""
    return MISSING, f"is {kind_of(value)}"


def _resolve(attr: CompiledAttribute, ctx: Context) -> tuple[Any, str]:
    """(value, where it came from) or (MISSING, why nothing resolved)."""
    reasons: list[str] = []
    if attr.when is not None:
        reason = attr.when(ctx)
        if reason is not None:
            reasons.append(f"when: {reason}")
    if not reasons:
        for source in attr.sources:
            if source.template is not None:
                value, why = source.template.render(ctx)
                if value is None:
                    reasons.append(f"{source.label}: {why}")
                    continue
            else:
                assert source.path is not None
                value = source.path.resolve(ctx)
                if value is MISSING:
                    reasons.append(f"{source.label} is absent")
                    continue
            if attr.transform is not None:
                try:
                    value = attr.transform(value)
                except Unresolved as exc:
                    reasons.append(f"{source.label}: {exc.reason}")
                    continue
            value, why = _shape(value)
            if value is MISSING:
                reasons.append(f"{source.label} {why}")
                continue
            return value, f"from {source.label}"
    default = attr.default
    if isinstance(default, Template):
        text, why = default.render(ctx)
        if text:
            return text, "from default"
        reasons.append(f"default: {why or 'renders empty'}")
    elif default is not None:
        return default, "from default"
    return MISSING, "; ".join(reasons) if reasons else "no source"


def _dynamic_roles(rule: CompiledRule, ctx: Context) -> tuple[list[str], str]:
    """The roles a ``grant_from`` rule takes from the token, and a note on what was dropped."""
    assert rule.grant_from is not None
    value = rule.grant_from.resolve(ctx)
    if value is MISSING:
        return [], f"{rule.grant_from.text} is absent"
    if rule.transform is not None:
        try:
            value = rule.transform(value)
        except Unresolved as exc:
            return [], f"{rule.grant_from.text}: {exc.reason}"
    items = value if isinstance(value, (list, tuple)) else [value]
    roles: list[str] = []
    dropped = 0
    for item in items[: MAX_DYNAMIC_ROLES * 5]:  # a bound on work, whatever the token holds
        if (
            isinstance(item, str)
            and 0 < len(item) <= MAX_ROLE_LENGTH
            and item == item.strip()
            and item.isprintable()
            and (rule.only is None or item in rule.only)
        ):
            roles.append(item)
        else:
            dropped += 1
    dropped += max(0, len(items) - MAX_DYNAMIC_ROLES * 5)
    if len(roles) > MAX_DYNAMIC_ROLES:
        dropped += len(roles) - MAX_DYNAMIC_ROLES
        roles = roles[:MAX_DYNAMIC_ROLES]
    note = f"{dropped} value(s) of {rule.grant_from.text} not used" if dropped else ""
    return roles, note


def _roles(plan: RolesPlan, ctx: Context, current: frozenset[str], trace: list[TraceEntry]) -> frozenset[str]:
    granted: dict[str, None] = {}
    for roles, entry in plan.default:
        granted.update(dict.fromkeys(roles))
        trace.append(entry)
    privileged = plan.privileged
    for rule in plan.rules:
        reason = rule.check(ctx)
        if reason is not None:
            trace.append(_entry(rule.entries, rule.rule, "no match", rule.label + reason))
            continue
        roles = rule.grant
        note = ""
        if rule.grant_from is not None:
            dynamic, note = _dynamic_roles(rule, ctx)
            roles = tuple(dict.fromkeys((*roles, *dynamic)))
        refused: tuple[str, ...] = ()
        if not rule.allow_privileged and not privileged.isdisjoint(roles):  # checked again at run time
            refused = tuple(r for r in roles if r in privileged)
            roles = tuple(r for r in roles if r not in privileged)
        granted.update(dict.fromkeys(roles))
        detail = f"{rule.label}{rule.text} -> {', '.join(roles) if roles else 'no roles'}"
        trace.append(_entry(rule.entries, rule.rule, "granted", detail + (f" ({note})" if note else "")))
        if refused:
            trace.append(
                TraceEntry(
                    rule.rule,
                    "refused",
                    f"{', '.join(refused)}: privileged roles need allow_privileged: true on the rule",
                )
            )
    wanted = frozenset(granted)
    if plan.sync == "additive":
        return current | wanted
    kept = (current & plan.protected) - wanted
    final = wanted | kept
    revoked = current - final
    if revoked:
        trace.append(
            TraceEntry(
                "roles.sync", "revoked", f"{', '.join(sorted(revoked))} (authoritative: not granted now)"
            )
        )
    if kept:
        trace.append(TraceEntry("roles.protected", "kept", ", ".join(sorted(kept))))
    return final


def run(plan: Plan, ctx: Context, existing: ExistingUser | None) -> MappingResult:
    """Apply ``plan`` to ``ctx`` for ``existing`` (None: a new user)."""
    trace: list[TraceEntry] = []
    current_roles = frozenset(existing.roles) if existing is not None else frozenset()

    def denied(code: str) -> MappingResult:
        return MappingResult(roles=current_roles, denied=code, trace=tuple(trace))

    for rule in plan.deny:
        reason = rule.check(ctx)
        label = rule.label
        if reason is None:
            detail = f"{label}{rule.code}: {rule.text}" + (f" ({rule.message})" if rule.message else "")
            trace.append(TraceEntry(rule.rule, "denied", detail))
            return denied(rule.code)
        trace.append(_entry(rule.entries, rule.rule, "no match", label + reason))

    current: Mapping[str, Any] = existing.attributes if existing is not None else {}
    attributes: dict[str, Any] = {}
    for attr in plan.attributes:
        value, detail = _resolve(attr, ctx)
        if value is MISSING:
            if attr.required:
                trace.append(TraceEntry(attr.rule, "denied", f"{MISSING_ATTRIBUTE}: required, and {detail}"))
                return denied(MISSING_ATTRIBUTE)
            trace.append(_entry(attr.entries, attr.rule, "missing", detail))
            continue
        if existing is not None:
            if attr.update == "on_create":
                trace.append(
                    _entry(attr.entries, attr.rule, "kept", "update: on_create, and the user exists")
                )
                continue
            old = current.get(attr.name)
            if attr.update == "if_empty" and not _empty(old):
                trace.append(
                    _entry(attr.entries, attr.rule, "kept", "update: if_empty, and the user has a value")
                )
                continue
            if _same(old, value):
                trace.append(_entry(attr.entries, attr.rule, "unchanged", detail))
                continue
        attributes[attr.name] = value
        trace.append(_entry(attr.entries, attr.rule, "set", detail))

    final = current_roles if plan.roles is None else _roles(plan.roles, ctx, current_roles, trace)
    return MappingResult(
        attributes=MappingProxyType(attributes),
        roles=final,
        granted=final - current_roles,
        revoked=current_roles - final,
        denied=None,
        trace=tuple(trace),
    )
