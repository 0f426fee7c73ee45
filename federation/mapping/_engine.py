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
current roles unchanged. Every step adds a :class:`TraceEntry`; the steps are
recorded as they run (mostly references to fixed strings) and the entries built
only when ``result.trace`` is first read. An attribute whose update policy keeps the
user's value (``on_create`` for an existing user, ``if_empty`` while it has one) is not
resolved unless it is ``required``, when everything it reads is in the frame: its entry
("kept", or "missing" and why) is decided from the frame when the trace is built. Role
rules answered together
(:class:`._compile.IndexedRules`: the roles a text brings, looked up for the
value; :class:`._compile.PatternRules`: one RE2 set run over it) record nothing:
the trace asks their checks, on the frame the apply read.

A ``grant_from`` rule whose steps take each text alone records what each text
it met became (``CompiledRule.known``, bounded): a text met before is one
lookup, not the steps again. The record only remembers answers the steps gave
(pure), so an apply's result is the same with it or without it.

Must not: raise on any claim value (absent, mistyped, huge: they are
outcomes), perform I/O, or mutate its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any

from ._compile import MAX_ROLE_LENGTH, CompiledAttribute, CompiledRule, Plan, RolesPlan, valid_role
from ._paths import MISSING, Frame, kind_of
from ._patterns import SetSearch
from ._result import ExistingUser, MappingResult, TraceEntry, recorded
from ._templates import Template
from ._transforms import Unresolved

__all__ = ["MAX_ROLE_LENGTH", "MISSING_ATTRIBUTE", "run"]

#: The deny code of a required attribute that did not resolve.
MISSING_ATTRIBUTE = "missing_attribute"

MAX_DYNAMIC_ROLES = 200
#: What a ``grant_from`` rule records of the texts it met (``CompiledRule.known``): this many
#: (threads recording at once may each add one more), none longer than MAX_KNOWN_TEXT. Tokens
#: choose the texts: a full record stops growing, and texts it does not hold take the steps.
MAX_KNOWN_TEXTS = 2048
MAX_KNOWN_TEXT = 2 * MAX_ROLE_LENGTH
MAX_CACHED_ENTRIES = 32  # per rule: details that carry token values vary, keep the cache small

_NO_ROLES: frozenset[str] = frozenset()
_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})
_GRANTED = object()  # the record of a rule that granted its roles as written
_KEPT_ON_CREATE = ("kept", "update: on_create, and the user exists")
_KEPT_IF_EMPTY = ("kept", "update: if_empty, and the user has a value")
_KEPT = object()  # the record of an attribute its update policy keeps, not resolved by the apply
#: The item types of a list the role index answers: JSON's scalars (hashable, and only an
#: exact str can equal a text; a str subclass or any other object goes to the rules' checks).
_PLAIN = frozenset({str, int, float, bool, type(None)})
_TEXT = frozenset({str})  # exact texts only: a str subclass may compare or hash otherwise


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


def _resolve(attr: CompiledAttribute, frame: Frame) -> tuple[Any, str]:
    """(value, where it came from) or (MISSING, why nothing resolved)."""
    reasons: list[str] = []
    if attr.when is not None:
        reason = attr.when(frame)
        if reason is not None:
            reasons.append(f"when: {reason}")
    if not reasons:
        transform = attr.transform
        for source in attr.sources:
            if source.slot is not None:
                value = frame[source.slot]
                if value is MISSING:
                    reasons.append(source.absent)
                    continue
            elif source.template is not None:
                value, why = source.template.render(frame[0])
                if value is None:
                    reasons.append(f"{source.label}: {why}")
                    continue
            else:
                assert source.path is not None
                value = source.path.resolve(frame[0])
                if value is MISSING:
                    reasons.append(source.absent)
                    continue
            if transform is not None:
                try:
                    value = transform(value)
                except Unresolved as exc:
                    reasons.append(f"{source.label}: {exc.reason}")
                    continue
            if type(value) is str and value:  # the common case of _shape
                return value, source.found
            value, why = _shape(value)
            if value is MISSING:
                reasons.append(f"{source.label} {why}")
                continue
            return value, source.found
    default = attr.default
    if isinstance(default, Template):
        text, why = default.render(frame[0])
        if text:
            return text, "from default"
        reasons.append(f"default: {why or 'renders empty'}")
    elif default is not None:
        return default, "from default"
    return MISSING, "; ".join(reasons) if reasons else "no source"


def _dynamic_roles(rule: CompiledRule, frame: Frame) -> tuple[list[str], str]:
    """The roles a ``grant_from`` rule takes from the token, and a note on what was dropped."""
    path = rule.grant_from
    assert path is not None
    value = frame[rule.grant_from_slot] if rule.grant_from_slot is not None else path.resolve(frame[0])
    if value is MISSING:
        return [], f"{path.text} is absent"
    known = rule.known
    roles: list[str] | None = None
    texts = False  # a str, or a list of exact texts within the bound: what the record answers
    if known is not None:  # texts met before: what each became, one lookup each (in C for a list)
        kind = type(value)
        if kind is str:
            texts = True
            role = known.get(value)
            if role is not None:
                roles, dropped = ([role], 0) if role else ([], 1)
        elif (
            (kind is list or kind is tuple)
            and len(value) <= MAX_DYNAMIC_ROLES * 5
            and _TEXT.issuperset(map(type, value))
        ):
            texts = True
            try:
                roles = list(filter(None, map(known.__getitem__, value)))
            except KeyError:  # a text not met yet: the steps below run, and record what it gives
                roles = None
            else:
                dropped = len(value) - len(roles)
    if roles is None:
        source = value
        if rule.transform is not None:
            try:
                value = rule.transform(value)
            except Unresolved as exc:
                return [], f"{path.text}: {exc.reason}"
        roles, dropped = _usable(rule, value)
        if known is not None and texts:
            _remember(known, source, value, roles)
    if len(roles) > MAX_DYNAMIC_ROLES:
        dropped += len(roles) - MAX_DYNAMIC_ROLES
        roles = roles[:MAX_DYNAMIC_ROLES]
    note = f"{dropped} value(s) of {path.text} not used" if dropped else ""
    return roles, note


def _usable(rule: CompiledRule, value: Any) -> tuple[list[str], int]:
    """The items of a transformed ``grant_from`` value that may be roles, and how many may not."""
    items = value if isinstance(value, (list, tuple)) else [value]
    only, only_valid = rule.only, rule.only_valid
    if only_valid is not None and len(items) <= MAX_DYNAMIC_ROLES * 5 and _PLAIN.issuperset(map(type, items)):
        # The loop below as one comprehension: an exact str is usable iff it is in only_valid,
        # and a JSON number, boolean or null is never usable (nor equal to any text).
        roles = [item for item in items if item in only_valid]
        return roles, len(items) - len(roles)
    roles = []
    dropped = 0
    for item in items[: MAX_DYNAMIC_ROLES * 5]:  # a bound on work, whatever the token holds
        if only_valid is not None and type(item) is str:
            usable = item in only_valid  # the same as the checks below, decided at load time
        else:
            usable = valid_role(item) and (only is None or item in only)
        if usable:
            roles.append(item)
        else:
            dropped += 1
    dropped += max(0, len(items) - MAX_DYNAMIC_ROLES * 5)
    return roles, dropped


def _remember(known: dict[str, str], source: str | Sequence[str], value: Any, roles: list[str]) -> None:
    """Record in ``known`` what each text of ``source`` became: its item of ``value`` (the
    same texts transformed, in order) when :func:`_usable` kept it among ``roles``, else ""."""
    if len(known) >= MAX_KNOWN_TEXTS:
        return
    if type(source) is str:
        pairs: Any = ((source, value),)
    elif type(value) in (list, tuple) and len(value) == len(source):
        pairs = zip(source, value, strict=True)
    else:
        return
    usable = set(roles)
    for text, role in pairs:
        if len(known) >= MAX_KNOWN_TEXTS:
            return
        if type(role) is str and len(text) <= MAX_KNOWN_TEXT:
            known[text] = role if role in usable else ""


def _positions(search: SetSearch, value: Any) -> Sequence[int] | None:
    """The positions of a pattern set that match ``value`` (a list: any of its texts), or
    None where the set does not answer it and each rule must run its own check."""
    kind = type(value)
    if kind is str:
        return search(value)
    if kind is not list and kind is not tuple:
        return None
    found: list[int] = []
    for item in value:
        hits = search(item) if type(item) is str else None
        if hits is None:  # not a plain text, or one the set does not answer
            return None
        found.extend(hits)
    return found


def _roles(plan: RolesPlan, frame: Frame, current: frozenset[str], log: list[Any]) -> frozenset[str]:
    granted: set[str] = set()
    for roles, _ in plan.default:
        granted.update(roles)
    privileged = plan.privileged
    record = log.append
    grant = granted.update
    for group in plan.groups:  # nothing recorded: the trace asks their checks (pure)
        value = frame[group.slot]
        kind = type(value)
        if kind is str:
            found = group.index.get(value)
            if found is not None:
                grant(found)
            continue
        if (
            (kind is list or kind is tuple)
            and len(value) <= group.max_items
            and _PLAIN.issuperset(map(type, value))
        ):
            index = group.index
            for text in index.keys() & value:  # C: no item but an exact str can equal a text
                grant(index[text])
            continue
        for check, roles in group.rules:  # any other value: each rule as it is written
            if check(frame) is None:
                grant(roles)
    for patterns in plan.patterns:
        positions = _positions(patterns.search, frame[patterns.slot])
        if positions is None:  # each rule as it is written
            for check, roles in patterns.rules:
                if check(frame) is None:
                    grant(roles)
            continue
        brings = patterns.roles
        for position in positions:
            grant(brings[position])
    for check, as_written, rule in plan.steps:
        reason = check(frame)
        if reason is not None:
            record(reason)
            continue
        roles = rule.grant
        if as_written:  # what follows would grant exactly these, and refuse none
            grant(roles)
            record(_GRANTED)
            continue
        note = ""
        if rule.grant_from is not None:
            dynamic, note = _dynamic_roles(rule, frame)
            roles = tuple(dict.fromkeys((*roles, *dynamic) if roles else dynamic))
        refused: tuple[str, ...] = ()
        if not rule.allow_privileged and not privileged.isdisjoint(roles):  # checked again at run time
            refused = tuple(r for r in roles if r in privileged)
            roles = tuple(r for r in roles if r not in privileged)
        granted.update(roles)
        log.append(_GRANTED if rule.grant_from is None and not refused else (roles, note, refused))
    wanted = frozenset(granted)
    if plan.sync == "additive":
        return current | wanted
    kept = (current & plan.protected) - wanted
    final = wanted | kept
    log.append((current - final, kept))
    return final


def _trace(plan: Plan, log: list[Any], frame: Frame) -> tuple[TraceEntry, ...]:
    """The trace of an apply from what it recorded: one record per rule it ran, in order.

    Deny rules: the reason a rule did not hold, or None for the one that denied. Attributes:
    (outcome, detail). Role rules: the reason, or _GRANTED (its roles as written), or
    (roles, note, refused); an indexed rule records nothing, and its check is asked here,
    on the same frame. Then, under authoritative sync, (revoked, kept).
    """
    trace: list[TraceEntry] = []
    records = iter(log)
    for rule in plan.deny:
        item = next(records)
        if item is None:
            trace.append(TraceEntry(rule.rule, "denied", rule.denied_detail))
            return tuple(trace)
        trace.append(_entry(rule.entries, rule.rule, "no match", rule.label + item))
    for attr in plan.attributes:
        item = next(records)
        if item is _KEPT:  # kept by its update policy: what the trace says depends on the value
            value, why = _resolve(attr, frame)
            if value is MISSING:
                item = ("missing", why)
            else:
                item = _KEPT_ON_CREATE if attr.update == "on_create" else _KEPT_IF_EMPTY
        outcome, detail = item
        if outcome == "denied":
            trace.append(TraceEntry(attr.rule, "denied", f"{MISSING_ATTRIBUTE}: required, and {detail}"))
            return tuple(trace)
        trace.append(_entry(attr.entries, attr.rule, outcome, detail))
    roles = plan.roles
    if roles is None:
        return tuple(trace)
    trace.extend(entry for _, entry in roles.default)
    indexed = roles.indexed
    for position, grant in enumerate(roles.rules):
        if position in indexed:
            reason = grant.check(frame)
            item = _GRANTED if reason is None else reason
        else:
            item = next(records)
        if type(item) is str:
            trace.append(_entry(grant.entries, grant.rule, "no match", grant.label + item))
        elif item is _GRANTED:
            trace.append(_entry(grant.entries, grant.rule, "granted", grant.granted_detail))
        else:
            given, note, refused = item
            detail = f"{grant.label}{grant.text} -> {', '.join(given) if given else 'no roles'}"
            trace.append(
                _entry(grant.entries, grant.rule, "granted", detail + (f" ({note})" if note else ""))
            )
            if refused:
                trace.append(
                    TraceEntry(
                        grant.rule,
                        "refused",
                        f"{', '.join(refused)}: privileged roles need allow_privileged: true on the rule",
                    )
                )
    if roles.sync != "additive":
        revoked, kept = next(records)
        if revoked:
            trace.append(
                TraceEntry(
                    "roles.sync", "revoked", f"{', '.join(sorted(revoked))} (authoritative: not granted now)"
                )
            )
        if kept:
            trace.append(TraceEntry("roles.protected", "kept", ", ".join(sorted(kept))))
    return tuple(trace)


def run(plan: Plan, ctx: Any, existing: ExistingUser | None) -> MappingResult:
    """Apply ``plan`` to ``ctx`` for ``existing`` (None: a new user).

    The trace is recorded, not built: :func:`_trace` builds it when it is first read.
    """
    frame = [resolve(ctx) for resolve in plan.resolvers]  # every path the plan reads, once
    log: list[Any] = []
    current_roles = frozenset(existing.roles) if existing is not None else _NO_ROLES

    record = log.append
    for rule in plan.deny:
        reason = rule.check(frame)
        if reason is None:
            record(None)
            return recorded(
                {}, current_roles, _NO_ROLES, _NO_ROLES, rule.code, partial(_trace, plan, log, frame)
            )
        record(reason)

    current: Mapping[str, Any] = existing.attributes if existing is not None else _NO_ATTRIBUTES
    attributes: dict[str, Any] = {}
    for attr in plan.attributes:
        update = attr.update
        if (
            existing is not None
            and update != "always"
            and not attr.required
            and attr.in_frame
            and (update == "on_create" or not _empty(current.get(attr.name)))
        ):  # kept whatever the token holds: resolved from the frame if the trace is read
            record(_KEPT)
            continue
        value = MISSING
        if attr.first is not None:  # the common case of _resolve: the first source gives text
            value = frame[attr.first]
            if value is not MISSING and attr.transform is not None:
                try:
                    value = attr.transform(value)
                except Unresolved:
                    value = MISSING
            if type(value) is str and value:
                detail = attr.first_found
            else:
                value = MISSING
        if value is MISSING:  # anything else: the whole resolution (pure: the same answer again)
            value, detail = _resolve(attr, frame)
        if value is MISSING:
            if attr.required:
                record(("denied", detail))
                return recorded(
                    {},
                    current_roles,
                    _NO_ROLES,
                    _NO_ROLES,
                    MISSING_ATTRIBUTE,
                    partial(_trace, plan, log, frame),
                )
            record(("missing", detail))
            continue
        if existing is not None:
            if update == "on_create":
                record(_KEPT_ON_CREATE)
                continue
            old = current.get(attr.name)
            if update == "if_empty" and not _empty(old):
                record(_KEPT_IF_EMPTY)
                continue
            kind = type(value)
            if kind is str or kind is int or kind is float or kind is bool:  # _same, for a scalar
                same = type(old) is kind and old == value
            else:
                same = _same(old, value)
            if same:
                record(("unchanged", detail))
                continue
        attributes[attr.name] = value
        record(("set", detail))

    final = current_roles if plan.roles is None else _roles(plan.roles, frame, current_roles, log)
    return recorded(
        MappingProxyType(attributes),
        final,
        final - current_roles,
        current_roles - final,
        None,
        partial(_trace, plan, log, frame),
    )
