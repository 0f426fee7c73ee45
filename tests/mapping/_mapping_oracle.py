"""The mapping engine as it was before the performance work (commit f2868af): the oracle.

``_transforms``, ``_conditions``, ``_compile`` and ``_engine`` verbatim but for their
imports, over the library's model, paths, templates, patterns, scopes and result types.
tests/mapping/test_mapping_fast_paths.py applies a mapping both ways and compares every
field of the results, the trace included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from federation.mapping._model import AttributeSpec, Condition, DenyRule, MappingFile, Overlay, RoleRule
from federation.mapping._paths import MISSING, ClaimPath, Context, kind_of, parse_path
from federation.mapping._patterns import MAX_INPUT_LENGTH, TooCostly, compile_pattern
from federation.mapping._result import ExistingUser, MappingResult, TraceEntry
from federation.mapping._scope import IssuerScope
from federation.mapping._templates import Template, is_template, parse_template

# ---- federation/mapping/_transforms.py as of f2868af ------------------------------
#: Steps written as a bare name.
BARE_TRANSFORMS: dict[str, str] = {
    "strip": "remove leading and trailing whitespace",
    "lower": "lower-case",
    "upper": "upper-case",
    "localpart": "the part before the last '@' (an address without '@' does not resolve)",
    "domain": "the part after the last '@' (an address without '@' does not resolve)",
    "first": "the first element of a list (a single value is kept)",
}
#: Steps written as a one-key object, and what their argument is.
VALUE_TRANSFORMS: dict[str, str] = {
    "split": "cut a string at this literal separator; pieces are stripped, empty ones dropped",
    "join": "join a list of strings with this separator",
    "prefix": "put this text before the value",
    "suffix": "put this text after the value",
    "replace": "replace every match of 'pattern' (a regular expression) with the literal text 'with'",
}

#: A normalised step: ("lower",), ("split", ","), ("replace", pattern, replacement) ...
Step = tuple[str, ...]
Transform = Callable[[Any], Any]


class Unresolved(Exception):
    """The value does not resolve; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_step(step: Step) -> str:
    """A step as written, for messages."""
    if len(step) == 1:
        return step[0]
    if step[0] == "replace":
        return f"replace {step[1]!r}"
    return f"{step[0]} {step[1]!r}"


def _textwise(name: str, fn: Callable[[str], str]) -> Transform:
    """Apply ``fn`` to a string or to each string of a list."""

    def apply(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value)
        if isinstance(value, (list, tuple)):
            out = []
            for item in value:
                if not isinstance(item, str):
                    raise Unresolved(f"{name} needs text, and the list holds {kind_of(item)}")
                out.append(fn(item))
            return out
        raise Unresolved(f"{name} needs text, got {kind_of(value)}")

    return apply


def _localpart(text: str) -> str:
    local, at, _ = text.rpartition("@")
    if not at or not local:
        raise Unresolved("localpart: the value has no '@' (or nothing before it)")
    return local


def _domain(text: str) -> str:
    _, at, domain = text.rpartition("@")
    if not at or not domain:
        raise Unresolved("domain: the value has no '@' (or nothing after it)")
    return domain


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if not value:
            raise Unresolved("first: the list is empty")
        return value[0]
    return value


def _split(separator: str) -> Transform:
    def split_one(text: str) -> list[str]:
        return [piece.strip() for piece in text.split(separator) if piece.strip()]

    def apply(value: Any) -> Any:
        if isinstance(value, str):
            return split_one(value)
        if isinstance(value, (list, tuple)):
            out: list[str] = []
            for item in value:
                if not isinstance(item, str):
                    raise Unresolved(f"split needs text, and the list holds {kind_of(item)}")
                out.extend(split_one(item))
            return out
        raise Unresolved(f"split needs text, got {kind_of(value)}")

    return apply


def _join(separator: str) -> Transform:
    def apply(value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)):
            if not all(isinstance(item, str) for item in value):
                raise Unresolved("join needs a list of strings")
            return separator.join(value)
        raise Unresolved(f"join needs a list of strings, got {kind_of(value)}")

    return apply


def _replace(pattern: str, replacement: str) -> Transform:
    compiled = compile_pattern(pattern, allow_lazy=False)

    def one(text: str) -> str:
        if len(text) > MAX_INPUT_LENGTH:
            raise Unresolved(f"replace: the value is longer than {MAX_INPUT_LENGTH} characters")
        try:
            return compiled.sub(replacement, text)
        except TooCostly:
            raise Unresolved("replace: the pattern is too costly for this value") from None

    return _textwise("replace", one)


def _step(step: Step) -> Transform:
    name = step[0]
    if name == "strip":
        return _textwise(name, str.strip)
    if name == "lower":
        return _textwise(name, str.lower)
    if name == "upper":
        return _textwise(name, str.upper)
    if name == "localpart":
        return _textwise(name, _localpart)
    if name == "domain":
        return _textwise(name, _domain)
    if name == "first":
        return _first
    if name == "split":
        return _split(step[1])
    if name == "join":
        return _join(step[1])
    if name == "prefix":
        prefix = step[1]
        return _textwise(name, lambda text: prefix + text)
    if name == "suffix":
        suffix = step[1]
        return _textwise(name, lambda text: text + suffix)
    if name == "replace":
        return _replace(step[1], step[2])
    raise ValueError(f"unknown transform {name!r}")  # the schema refuses these first


def compile_steps(steps: Sequence[Step]) -> Transform | None:
    """One function applying ``steps`` in order (None when there are none)."""
    fns = [_step(step) for step in steps]
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]

    def pipeline(value: Any) -> Any:
        for fn in fns:
            value = fn(value)
        return value

    return pipeline


# ---- federation/mapping/_conditions.py as of f2868af ------------------------------
#: None when the condition holds, else why it does not.
Check = Callable[[Context], str | None]

#: Deepest nesting of not/all/any accepted at load time.
MAX_DEPTH = 16


def value_key(value: Any) -> tuple[str, Any] | None:
    """A hashable, type-tagged key for typed comparison; None for lists and objects."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return None


def _show(value: Any) -> str:
    """A value as written in a mapping: strings quoted (backslashes as they are), lists bracketed."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        text = '"' + "".join(c if c.isprintable() else repr(c)[1:-1] for c in value) + '"'
    else:
        text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _items(value: Any) -> list[Any] | tuple[Any, ...]:
    return value if isinstance(value, (list, tuple)) else [value]


def describe(cond: Condition) -> str:
    """The condition in words, for the trace."""
    op = cond.operator
    if op == "not":
        assert cond.not_ is not None
        return f"not ({describe(cond.not_)})"
    if op in ("all", "any"):
        children = cond.all if op == "all" else cond.any
        assert children is not None
        return f"{op} of ({'; '.join(describe(c) for c in children)})"
    if op in ("provider", "issuer"):
        values = cond.provider if op == "provider" else cond.issuer
        assert values is not None
        return f"{op} in {_show(list(values))}" if len(values) > 1 else f"{op} is {_show(values[0])}"
    arg: Any = {
        "equals": cond.equals,
        "in": cond.in_,
        "contains": cond.contains,
        "contains_any": cond.contains_any,
        "contains_all": cond.contains_all,
        "matches": cond.matches,
        "exists": cond.exists,
    }[op]
    if op == "exists":
        return f"{cond.claim} {'exists' if arg else 'is absent'}"
    return f"{cond.claim} {op.replace('_', ' ')} {_show(arg)}"


def compile_condition(cond: Condition) -> Check:
    """A closure for ``cond`` (validated by the schema; depth checked by the loader)."""
    op = cond.operator
    if op == "not":
        assert cond.not_ is not None
        inner = compile_condition(cond.not_)
        held = f"not: {describe(cond.not_)} holds"

        def not_(ctx: Context) -> str | None:
            return held if inner(ctx) is None else None

        return not_
    if op == "all":
        assert cond.all is not None
        parts = [compile_condition(c) for c in cond.all]

        def all_(ctx: Context) -> str | None:
            for part in parts:
                reason = part(ctx)
                if reason is not None:
                    return reason
            return None

        return all_
    if op == "any":
        assert cond.any is not None
        options = [compile_condition(c) for c in cond.any]

        def any_(ctx: Context) -> str | None:
            reasons = []
            for option in options:
                reason = option(ctx)
                if reason is None:
                    return None
                reasons.append(reason)
            shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
            return f"none of {len(reasons)} held ({shown})"

        return any_
    if op == "provider":
        assert cond.provider is not None
        providers = frozenset(cond.provider)
        wanted = _show(sorted(providers))

        def provider(ctx: Context) -> str | None:
            actual = ctx.provider
            return None if actual in providers else f"provider is {_show(actual)}, not in {wanted}"

        return provider
    if op == "issuer":
        assert cond.issuer is not None
        scope = IssuerScope(cond.issuer)
        listed = _show(sorted(scope.listed))

        def issuer(ctx: Context) -> str | None:
            # by namespace: every spelling of the listed issuers the token's profile accepts
            actual = ctx.issuer
            if scope.matching(ctx.provider, actual):
                return None
            return f"issuer {_show(actual)} is not in {listed}"

        return issuer
    assert cond.claim is not None
    return _value_check(cond, op, cond.claim)


def _value_check(cond: Condition, op: str, claim: str) -> Check:
    resolve = parse_path(claim).resolve
    absent = f"{claim} is absent"
    if op == "exists":
        want = bool(cond.exists)
        present_reason = f"{claim} is present"

        def exists(ctx: Context) -> str | None:
            here = resolve(ctx) is not MISSING
            if here == want:
                return None
            return present_reason if here else absent

        return exists
    if op == "matches":
        return _matches(cond, claim, resolve, absent)
    test = _value_test(cond, op)
    fail = f"{claim} does not {_verb(op)} {_show(_argument(cond, op))}"

    def check(ctx: Context) -> str | None:
        value = resolve(ctx)
        if value is MISSING:
            return absent
        if test(value):
            return None
        if isinstance(value, dict) or hasattr(value, "keys"):
            return f"{claim} is an object (pick a member with a dotted path)"
        return fail

    return check


def _verb(op: str) -> str:
    return {
        "equals": "equal",
        "in": "have a value in",
        "contains": "contain",
        "contains_any": "contain any of",
        "contains_all": "contain all of",
    }[op]


def _argument(cond: Condition, op: str) -> Any:
    return {
        "equals": cond.equals,
        "in": cond.in_,
        "contains": cond.contains,
        "contains_any": cond.contains_any,
        "contains_all": cond.contains_all,
    }[op]


def _value_test(cond: Condition, op: str) -> Callable[[Any], bool]:
    if op in ("equals", "contains"):
        raw = cond.equals if op == "equals" else cond.contains
        if isinstance(raw, str):  # the common case: a string equals only a string, no tagging needed
            text = raw

            def one_text(value: Any) -> bool:
                if isinstance(value, str):
                    return value == text
                return isinstance(value, (list, tuple)) and text in value

            return one_text
        expected = value_key(raw)

        def one(value: Any) -> bool:
            return any(value_key(item) == expected for item in _items(value))

        return one
    assert op in ("in", "contains_any", "contains_all")
    values = cond.in_ if op == "in" else (cond.contains_any if op == "contains_any" else cond.contains_all)
    assert values is not None
    if op != "contains_all" and all(isinstance(v, str) for v in values):
        texts = frozenset(values)

        def some_text(value: Any) -> bool:
            if isinstance(value, str):
                return value in texts
            if isinstance(value, (list, tuple)):
                return any(isinstance(item, str) and item in texts for item in value)
            return False

        return some_text
    wanted = frozenset(value_key(v) for v in values)
    if op == "contains_all":

        def every(value: Any) -> bool:
            return wanted <= {value_key(item) for item in _items(value)}

        return every

    def some(value: Any) -> bool:
        return any(value_key(item) in wanted for item in _items(value))

    return some


def _matches(cond: Condition, claim: str, resolve: Callable[[Context], Any], absent: str) -> Check:
    assert cond.matches is not None
    pattern = compile_pattern(cond.matches)
    fail = f"{claim} does not match {_show(cond.matches)}"
    too_long = f"{claim} is longer than {MAX_INPUT_LENGTH} characters: not matched"

    def matches(ctx: Context) -> str | None:
        value = resolve(ctx)
        if value is MISSING:
            return absent
        texts = [v for v in _items(value) if isinstance(v, str)]
        if not texts:
            return f"{claim} is {kind_of(value)}, not text"
        skipped = False
        for text in texts:
            if len(text) > MAX_INPUT_LENGTH:
                skipped = True
            elif pattern.search(text):
                return None
        return too_long if skipped else fail

    return matches


def condition_depth(cond: Condition) -> int:
    """How deeply ``not``/``all``/``any`` nest (a leaf is 1)."""
    if cond.not_ is not None:
        return 1 + condition_depth(cond.not_)
    children = cond.all or cond.any
    if children:
        return 1 + max(condition_depth(c) for c in children)
    return 1


# ---- federation/mapping/_compile.py as of f2868af ------------------------------
@dataclass(frozen=True, slots=True)
class CompiledSource:
    label: str  # as written in the file
    path: ClaimPath | None
    template: Template | None


@dataclass(frozen=True, slots=True)
class CompiledAttribute:
    name: str
    rule: str
    sources: tuple[CompiledSource, ...]
    transform: Transform | None
    default: Any  # None, a literal value, or a Template
    required: bool
    update: str
    when: Check | None
    entries: dict[tuple[str, str], TraceEntry] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: str
    label: str  # "name: " or "", the prefix of trace details
    check: Check
    text: str  # the condition in words
    grant: tuple[str, ...]
    grant_from: ClaimPath | None
    transform: Transform | None
    only: frozenset[str] | None
    allow_privileged: bool
    entries: dict[tuple[str, str], TraceEntry] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledDeny:
    rule: str
    label: str  # "name: " or "", the prefix of trace details
    check: Check
    text: str
    code: str
    message: str | None
    entries: dict[tuple[str, str], TraceEntry] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class RolesPlan:
    sync: str
    default: tuple[tuple[tuple[str, ...], TraceEntry], ...]  # per section: its roles, its trace entry
    protected: frozenset[str]
    privileged: frozenset[str]
    rules: tuple[CompiledRule, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything that applies to tokens of one provider and issuer, in order."""

    deny: tuple[CompiledDeny, ...]
    attributes: tuple[CompiledAttribute, ...]
    roles: RolesPlan | None


def _source(text: str) -> CompiledSource:
    if is_template(text):
        return CompiledSource(text, None, parse_template(text))
    return CompiledSource(text, parse_path(text), None)


def _attribute(name: str, spec: AttributeSpec, rule: str) -> CompiledAttribute:
    default: Any = spec.default
    if isinstance(default, str) and is_template(default):
        default = parse_template(default)
    return CompiledAttribute(
        name=name,
        rule=rule,
        sources=tuple(_source(s) for s in spec.from_ or ()),
        transform=compile_steps(spec.transform),
        default=default,
        required=spec.required,
        update=spec.update,
        when=compile_condition(spec.when) if spec.when is not None else None,
    )


def _always(ctx: Context) -> str | None:
    return None


def _rule(rule: RoleRule, where: str) -> CompiledRule:
    return CompiledRule(
        rule=where,
        label=f"{rule.name}: " if rule.name else "",
        check=compile_condition(rule.when) if rule.when is not None else _always,
        text=describe(rule.when) if rule.when is not None else "always",
        grant=tuple(dict.fromkeys(rule.grant)),
        grant_from=parse_path(rule.grant_from) if rule.grant_from is not None else None,
        transform=compile_steps(rule.transform),
        only=frozenset(rule.only) if rule.only is not None else None,
        allow_privileged=rule.allow_privileged,
    )


def _deny(rule: DenyRule, where: str) -> CompiledDeny:
    return CompiledDeny(
        rule=where,
        label=f"{rule.name}: " if rule.name else "",
        check=compile_condition(rule.when),
        text=describe(rule.when),
        code=rule.code,
        message=rule.message,
    )


@dataclass(frozen=True, slots=True)
class _Section:
    attributes: dict[str, CompiledAttribute]
    default_path: str
    default: tuple[str, ...]
    rules: tuple[CompiledRule, ...]
    deny: tuple[CompiledDeny, ...]


def _section(
    prefix: str,
    attributes: dict[str, AttributeSpec],
    default: list[str],
    rules: list[RoleRule],
    deny: list[DenyRule],
) -> _Section:
    return _Section(
        attributes={
            name: _attribute(name, spec, f"{prefix}attributes.{name}") for name, spec in attributes.items()
        },
        default_path=f"{prefix}roles.default",
        default=tuple(dict.fromkeys(default)),
        rules=tuple(_rule(rule, f"{prefix}roles.rules[{i}]") for i, rule in enumerate(rules)),
        deny=tuple(_deny(rule, f"{prefix}deny[{i}]") for i, rule in enumerate(deny)),
    )


def _overlay(prefix: str, overlay: Overlay) -> _Section:
    roles = overlay.roles
    return _section(
        prefix,
        overlay.attributes,
        roles.default if roles is not None else [],
        roles.rules if roles is not None else [],
        overlay.deny,
    )


def _key_text(key: str) -> str:
    """An overlay key as it reads in a path (issuers contain dots: quote them)."""
    return f".{key}" if key.isidentifier() else f"[{key!r}]"


class Planner:
    """The compiled mapping: every section compiled once, plans merged and cached per scope.

    The cache is bounded: plans are keyed by provider name and by the
    ``issuers`` sections that match the token's issuer (every spelling of a
    listed issuer: :mod:`._scope`), so arbitrary issuer strings (Entra
    multi-tenant, dry runs) share one plan per provider and set of sections.
    """

    def __init__(self, model: MappingFile) -> None:
        roles = model.roles
        self._base = _section(
            "",
            model.attributes,
            roles.default if roles is not None else [],
            roles.rules if roles is not None else [],
            model.deny,
        )
        self._roles = roles
        self._providers = {name: _overlay(f"providers.{name}.", o) for name, o in model.providers.items()}
        self._issuers = {iss: _overlay(f"issuers{_key_text(iss)}.", o) for iss, o in model.issuers.items()}
        self._scope = IssuerScope(model.issuers)
        self._plans: dict[tuple[str, tuple[str, ...]], Plan] = {}
        self._lock = threading.Lock()

    def plan(self, provider: str, issuer: str) -> Plan:
        key = (provider, self._scope.matching(provider, issuer))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._merge(*key)
            with self._lock:
                plan = self._plans.setdefault(key, plan)
        return plan

    def _merge(self, provider: str, issuers: tuple[str, ...]) -> Plan:
        sections = [self._base]
        if provider in self._providers:
            sections.append(self._providers[provider])
        sections.extend(self._issuers[iss] for iss in issuers)  # every matching spelling, file order
        attributes: dict[str, CompiledAttribute] = {}
        for section in sections:
            attributes.update(section.attributes)
        roles_plan = None
        if self._roles is not None:
            roles_plan = RolesPlan(
                sync=self._roles.sync,
                default=tuple(
                    (roles, TraceEntry(where, "granted", ", ".join(roles)))
                    for where, roles in ((s.default_path, s.default) for s in sections)
                    if roles
                ),
                protected=frozenset(self._roles.protected),
                privileged=frozenset(self._roles.privileged),
                rules=tuple(r for s in sections for r in s.rules),
            )
        return Plan(
            deny=tuple(d for s in sections for d in s.deny),
            attributes=tuple(attributes.values()),
            roles=roles_plan,
        )


# ---- federation/mapping/_engine.py as of f2868af ------------------------------
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


# ---- the driver ------------------------------------------------------------------------


_PLANNERS: dict[int, tuple[Any, Planner]] = {}


def oracle_run(mapping: Any, ctx: Context, existing: ExistingUser | None) -> MappingResult:
    """What the engine before the performance work returned for ``ctx`` under ``mapping``
    (a :class:`federation.mapping.Mapping`: its validated model, planned the old way)."""
    held = _PLANNERS.get(id(mapping))
    if held is None or held[0] is not mapping:
        held = _PLANNERS[id(mapping)] = (mapping, Planner(mapping._model))
    return run(held[1].plan(ctx.provider, ctx.issuer), ctx, existing)
