"""Compiling a validated mapping into plans: closures built once, merged per scope.

Owns: turning each section of a :class:`MappingFile` (the base, every
``providers.<name>`` and every ``issuers.<iss>`` overlay) into compiled
attributes, role rules and deny rules once at load time, and merging them
into the :class:`Plan` for one (provider, issuer) pair:

* attributes: the base entries, then the provider's, then the issuer's; an
  overlay entry replaces the entry of the same name whole (at its place), a
  new name is added at the end;
* ``roles.default``: the union of the base and overlay defaults;
* role rules and deny rules: the base rules, then the provider's, then the
  issuer's, in file order (an issuer section applies to every spelling of its
  issuer that the token's profile accepts; several matching sections apply in
  file order);
* ``roles.sync``, ``protected`` and ``privileged`` exist only at the top;
* role rules that grant as written and test the same place for texts (``equals``,
  ``contains``, ``in``, ``contains_any``), at least :data:`MIN_INDEXED_RULES` of them, are
  indexed by those texts (:class:`IndexedRules`): a login costs a lookup per item of the
  value rather than a check per rule; those that grant as written and test one place with
  ``matches``, at least :data:`MIN_SET_RULES` of them, are searched together
  (:class:`PatternRules`): one pass of RE2 over the value rather than one per rule.

Every compiled piece carries its path in the file (``roles.rules[1]``,
``providers.cognito.deny[0]``) for the trace, and a small cache of the trace
entries it produced (most details are fixed strings; entries are immutable).

Conditions and sources read their paths from a frame: every distinct path of
the mapping gets one place (:class:`._paths.Slots`, shared by all sections),
and a plan resolves the places its own pieces read, once per apply.

Must not: evaluate rules against a token (:mod:`._engine` does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._conditions import FastCheck, compile_check, describe, text_operands
from ._model import AttributeSpec, DenyRule, MappingFile, Overlay, RoleRule
from ._paths import ClaimPath, Context, Frame, Slots, parse_path
from ._patterns import Pattern, SetSearch, compile_pattern, set_searcher
from ._result import TraceEntry
from ._scope import IssuerScope
from ._templates import Template, is_template, parse_template
from ._transforms import Transform, compile_steps, each_text_alone

__all__ = [
    "CompiledAttribute",
    "CompiledDeny",
    "CompiledRule",
    "CompiledSource",
    "IndexedRules",
    "PatternRules",
    "Plan",
    "Planner",
    "RolesPlan",
    "valid_role",
]

MAX_ROLE_LENGTH = 128


@dataclass(frozen=True, slots=True)
class CompiledSource:
    label: str  # as written in the file
    path: ClaimPath | None
    template: Template | None
    slot: int | None = None  # where the frame holds the path's value (None: resolved when read)
    absent: str = ""  # "<label> is absent"
    found: str = ""  # "from <label>", the detail of a value it gave


@dataclass(frozen=True, slots=True)
class CompiledAttribute:
    name: str
    rule: str
    sources: tuple[CompiledSource, ...]
    transform: Transform | None
    default: Any  # None, a literal value, or a Template
    required: bool
    update: str
    when: FastCheck | None
    uses: frozenset[int] = frozenset()  # the frame places it reads
    #: Without ``when``, and when the first source is a path with a place in the frame: that
    #: place, and the source's "from <label>" (the engine tries it before the general way).
    first: int | None = None
    first_found: str = ""
    #: Everything its resolution reads is a place in the frame (no ``when``, no template, no
    #: path read where it is used): resolving it later gives the answer the apply would have.
    in_frame: bool = False
    entries: dict[tuple[str, str], TraceEntry] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: str
    label: str  # "name: " or "", the prefix of trace details
    check: FastCheck
    text: str  # the condition in words
    grant: tuple[str, ...]
    grant_from: ClaimPath | None
    transform: Transform | None
    only: frozenset[str] | None
    allow_privileged: bool
    grant_from_slot: int | None = None
    #: The members of ``only`` that pass the engine's checks of a role taken from a token
    #: (see _engine._dynamic_roles): an exact str passes all of them iff it is one of these.
    only_valid: frozenset[str] | None = None
    granted_detail: str = ""  # the trace detail when it grants ``grant`` as written
    uses: frozenset[int] = frozenset()
    #: When the condition is one text-membership leaf on a frame place
    #: (:func:`._conditions.text_operands`): that place and the texts.
    membership: tuple[int, frozenset[str]] | None = None
    #: When the condition is one ``matches`` leaf on a frame place: that place and the pattern.
    pattern: tuple[int, Pattern] | None = None
    #: For a ``grant_from`` whose steps take each text alone (:func:`._transforms.each_text_alone`):
    #: what each text of the token became, the role it gives or "" (dropped), filled by the
    #: engine as it meets texts (see _engine._dynamic_roles); None for any other rule.
    known: dict[str, str] | None = field(default=None, compare=False)
    entries: dict[tuple[str, str], TraceEntry] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class CompiledDeny:
    rule: str
    label: str  # "name: " or "", the prefix of trace details
    check: FastCheck
    text: str
    code: str
    message: str | None
    denied_detail: str = ""  # the trace detail when it denies
    uses: frozenset[int] = frozenset()
    entries: dict[tuple[str, str], TraceEntry] = field(default_factory=dict, compare=False)


#: Fewest rules on one frame place that are answered through an index: measured on a list
#: of ten texts, three rules cost the same either way and ten cost 0.8x through the index.
MIN_INDEXED_RULES = 4
#: The index answers a list of at most this many items per indexed rule; a longer one is
#: answered by each rule's check (a C-level scan of the list per rule). Measured: 4 rules on
#: 64 items and 10 rules on 200 still cost less through the index (0.98x and 0.77x).
INDEXED_ITEMS_PER_RULE = 16


@dataclass(frozen=True, slots=True)
class IndexedRules:
    """Role rules that grant as written and test one frame place for text membership,
    answered together: the roles a text brings, looked up for the place's value (a str, or
    each item of a list or tuple) instead of running every rule. ``rules`` (each rule's check
    and roles) answer any other value, exactly as the rules one by one would."""

    slot: int
    index: dict[str, tuple[str, ...]]  # text -> the roles of every rule it satisfies
    rules: tuple[tuple[FastCheck, tuple[str, ...]], ...]
    max_items: int  # longest list the index answers


#: Fewest ``matches`` rules on one frame place that are searched as one set: measured on
#: the role step, three patterns cost 1.02x their three checks on one e-mail address and
#: 0.71x on a list of two (two patterns: 1.19x on one address; four: 0.63x).
MIN_SET_RULES = 3


@dataclass(frozen=True, slots=True)
class PatternRules:
    """Role rules that grant as written and test one frame place with ``matches``, searched
    together: ``search`` gives the positions of the patterns that match a text (see
    :func:`._patterns.set_searcher`), ``roles`` what each position brings (the last, the
    set's always-matching sentinel, brings none). ``rules`` (each rule's check and roles)
    answer a value the set does not, exactly as the rules one by one would."""

    slot: int
    search: SetSearch
    roles: tuple[tuple[str, ...], ...]
    rules: tuple[tuple[FastCheck, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class RolesPlan:
    sync: str
    default: tuple[tuple[tuple[str, ...], TraceEntry], ...]  # per section: its roles, its trace entry
    protected: frozenset[str]
    privileged: frozenset[str]
    rules: tuple[CompiledRule, ...]
    #: Per rule not in ``indexed``: its check, whether it grants its roles as written (no
    #: grant_from, and no privileged role unless it allows them: decided here, once, from the
    #: same frozen sets the engine would test), and the rule.
    steps: tuple[tuple[FastCheck, bool, CompiledRule], ...] = ()
    #: The other rules, by frame place (their roles are a union: order does not change it).
    groups: tuple[IndexedRules, ...] = ()
    patterns: tuple[PatternRules, ...] = ()
    #: The positions in ``rules`` of the rules in ``groups`` and ``patterns`` (the trace
    #: asks their checks).
    indexed: frozenset[int] = frozenset()


Steps = tuple[tuple[FastCheck, bool, CompiledRule], ...]


def _roles_steps(
    rules: tuple[CompiledRule, ...], privileged: frozenset[str]
) -> tuple[Steps, tuple[IndexedRules, ...], tuple[PatternRules, ...], frozenset[int]]:
    """``rules`` as RolesPlan's steps, groups, pattern sets and indexed positions."""
    by_slot: dict[int, list[int]] = {}
    by_pattern_slot: dict[int, list[int]] = {}
    for i, rule in enumerate(rules):
        if not _static_grant(rule, privileged):
            continue
        if rule.membership is not None:
            by_slot.setdefault(rule.membership[0], []).append(i)
        elif rule.pattern is not None:
            by_pattern_slot.setdefault(rule.pattern[0], []).append(i)
    indexed = {i for members in by_slot.values() if len(members) >= MIN_INDEXED_RULES for i in members}
    sets = []
    for slot, members in by_pattern_slot.items():
        if len(members) < MIN_SET_RULES:  # too few: one by one is cheaper
            continue
        search = set_searcher([_pattern_of(rules[i]) for i in members])  # position i: members[i]
        if search is None:  # over RE2's memory budget: one by one
            continue
        indexed.update(members)
        sets.append(
            PatternRules(
                slot=slot,
                search=search,
                roles=(*(rules[i].grant for i in members), ()),
                rules=tuple((rules[i].check, rules[i].grant) for i in members),
            )
        )
    groups = []
    for slot, members in by_slot.items():
        if len(members) < MIN_INDEXED_RULES:
            continue
        brings: dict[str, dict[str, None]] = {}
        for i in members:
            membership = rules[i].membership
            assert membership is not None
            for text in membership[1]:
                brings.setdefault(text, {}).update(dict.fromkeys(rules[i].grant))
        groups.append(
            IndexedRules(
                slot=slot,
                index={text: tuple(roles) for text, roles in brings.items()},
                rules=tuple((rules[i].check, rules[i].grant) for i in members),
                max_items=INDEXED_ITEMS_PER_RULE * len(members),
            )
        )
    steps = tuple((r.check, _static_grant(r, privileged), r) for i, r in enumerate(rules) if i not in indexed)
    return steps, tuple(groups), tuple(sets), frozenset(indexed)


def _pattern_of(rule: CompiledRule) -> Pattern:
    # Every member of a set has a pattern; dropping one would shift the positions after it.
    assert rule.pattern is not None
    return rule.pattern[1]


def _static_grant(rule: CompiledRule, privileged: frozenset[str]) -> bool:
    return rule.grant_from is None and (rule.allow_privileged or privileged.isdisjoint(rule.grant))


def _always_frame(ctx: Context) -> Any:
    return ctx


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything that applies to tokens of one provider and issuer, in order."""

    deny: tuple[CompiledDeny, ...]
    attributes: tuple[CompiledAttribute, ...]
    roles: RolesPlan | None
    #: What builds the frame the compiled rules read: ``[r(ctx) for r in resolvers]``.
    resolvers: tuple[Callable[[Context], Any], ...] = (_always_frame,)


def valid_role(item: object) -> bool:
    """Whether a value taken from a token (``grant_from``) may be a role name."""
    return (
        isinstance(item, str)
        and 0 < len(item) <= MAX_ROLE_LENGTH
        and item == item.strip()
        and item.isprintable()
    )


def _source(text: str, slots: Slots) -> CompiledSource:
    if is_template(text):
        return CompiledSource(text, None, parse_template(text), None, f"{text} is absent", f"from {text}")
    path = parse_path(text)
    return CompiledSource(text, path, None, slots.slot(path), f"{text} is absent", f"from {text}")


def _attribute(name: str, spec: AttributeSpec, rule: str, slots: Slots) -> CompiledAttribute:
    uses = slots.reading()
    default: Any = spec.default
    if isinstance(default, str) and is_template(default):
        default = parse_template(default)
    sources = tuple(_source(s, slots) for s in spec.from_ or ())
    first = sources[0] if sources and spec.when is None and sources[0].slot is not None else None
    in_frame = (
        spec.when is None and not isinstance(default, Template) and all(s.slot is not None for s in sources)
    )
    return CompiledAttribute(
        name=name,
        rule=rule,
        sources=sources,
        transform=compile_steps(spec.transform),
        default=default,
        required=spec.required,
        update=spec.update,
        when=compile_check(spec.when, slots) if spec.when is not None else None,
        uses=frozenset(uses),
        first=first.slot if first is not None else None,
        first_found=first.found if first is not None else "",
        in_frame=in_frame,
    )


def _always(frame: Frame) -> str | None:
    return None


def _rule(rule: RoleRule, where: str, slots: Slots) -> CompiledRule:
    uses = slots.reading()
    label = f"{rule.name}: " if rule.name else ""
    text = describe(rule.when) if rule.when is not None else "always"
    grant = tuple(dict.fromkeys(rule.grant))
    grant_from = parse_path(rule.grant_from) if rule.grant_from is not None else None
    only = frozenset(rule.only) if rule.only is not None else None
    membership = pattern = None
    when = rule.when
    if when is not None and when.claim is not None:
        texts = text_operands(when)
        slot = slots.slot(parse_path(when.claim))
        if slot is not None and texts is not None:
            membership = (slot, texts)
        elif slot is not None and when.operator == "matches" and when.matches is not None:
            pattern = (slot, compile_pattern(when.matches))  # cached: the check's own program
    return CompiledRule(
        rule=where,
        label=label,
        check=compile_check(rule.when, slots) if rule.when is not None else _always,
        text=text,
        grant=grant,
        grant_from=grant_from,
        transform=compile_steps(rule.transform),
        only=only,
        allow_privileged=rule.allow_privileged,
        grant_from_slot=slots.slot(grant_from) if grant_from is not None else None,
        only_valid=frozenset(r for r in only if valid_role(r)) if only is not None else None,
        granted_detail=f"{label}{text} -> {', '.join(grant) if grant else 'no roles'}",
        uses=frozenset(uses),
        membership=membership,
        pattern=pattern,
        known={} if grant_from is not None and each_text_alone(rule.transform) else None,
    )


def _deny(rule: DenyRule, where: str, slots: Slots) -> CompiledDeny:
    uses = slots.reading()
    label = f"{rule.name}: " if rule.name else ""
    text = describe(rule.when)
    return CompiledDeny(
        rule=where,
        label=label,
        check=compile_check(rule.when, slots),
        text=text,
        code=rule.code,
        message=rule.message,
        denied_detail=f"{label}{rule.code}: {text}" + (f" ({rule.message})" if rule.message else ""),
        uses=frozenset(uses),
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
    slots: Slots,
) -> _Section:
    return _Section(
        attributes={
            name: _attribute(name, spec, f"{prefix}attributes.{name}", slots)
            for name, spec in attributes.items()
        },
        default_path=f"{prefix}roles.default",
        default=tuple(dict.fromkeys(default)),
        rules=tuple(_rule(rule, f"{prefix}roles.rules[{i}]", slots) for i, rule in enumerate(rules)),
        deny=tuple(_deny(rule, f"{prefix}deny[{i}]", slots) for i, rule in enumerate(deny)),
    )


def _overlay(prefix: str, overlay: Overlay, slots: Slots) -> _Section:
    roles = overlay.roles
    return _section(
        prefix,
        overlay.attributes,
        roles.default if roles is not None else [],
        roles.rules if roles is not None else [],
        overlay.deny,
        slots,
    )


def key_text(key: str) -> str:
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
        self._slots = Slots()  # every section's paths, one place each
        self._base = _section(
            "",
            model.attributes,
            roles.default if roles is not None else [],
            roles.rules if roles is not None else [],
            model.deny,
            self._slots,
        )
        self._roles = roles
        self._providers = {
            name: _overlay(f"providers.{name}.", o, self._slots) for name, o in model.providers.items()
        }
        self._issuers = {
            iss: _overlay(f"issuers{key_text(iss)}.", o, self._slots) for iss, o in model.issuers.items()
        }
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
            privileged = frozenset(self._roles.privileged)
            all_rules = tuple(r for s in sections for r in s.rules)
            steps, groups, patterns, indexed = _roles_steps(all_rules, privileged)
            roles_plan = RolesPlan(
                sync=self._roles.sync,
                default=tuple(
                    (roles, TraceEntry(where, "granted", ", ".join(roles)))
                    for where, roles in ((s.default_path, s.default) for s in sections)
                    if roles
                ),
                protected=frozenset(self._roles.protected),
                privileged=privileged,
                rules=all_rules,
                steps=steps,
                groups=groups,
                patterns=patterns,
                indexed=indexed,
            )
        deny = tuple(d for s in sections for d in s.deny)
        rules = roles_plan.rules if roles_plan is not None else ()
        used: set[int] = set()
        for uses in (
            *(d.uses for d in deny),
            *(a.uses for a in attributes.values()),
            *(r.uses for r in rules),
        ):
            used |= uses
        return Plan(
            deny=deny,
            attributes=tuple(attributes.values()),
            roles=roles_plan,
            resolvers=self._slots.resolvers(frozenset(used)),
        )
