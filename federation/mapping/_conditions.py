"""Conditions: validated ``when:`` trees compiled into small closures.

Owns: the meaning of every operator, decided once at load time and run as a
closure per node:

* ``equals``/``in``/``matches`` test a single value, and a list when *any*
  element passes; ``contains``/``contains_any``/``contains_all`` test a list,
  and a single value as a list of one. Comparison is typed: a boolean equals
  only a boolean (``true`` is not ``"true"`` and not ``1``), numbers compare
  by value (``1`` equals ``1.0``), strings exactly (no case folding: use
  ``matches: '(?i)...'``).
* ``matches`` searches with the linear-time engine of :mod:`._patterns` (RE2); a value
  longer than its input bound never matches (the reason says so).
* ``exists: true`` holds when the path resolves to a non-null value;
  ``exists: false`` when it does not.
* ``not``, ``all``, ``any``; ``provider`` and ``issuer`` scope by the token's
  profile name and issuer (any spelling of a listed issuer: :mod:`._scope`).

A compiled check returns None when the condition holds, else a short reason
("groups does not contain \"admins\"", "email is absent"). It never raises:
absent claims and wrong types are reasons, not errors. Checks read the values of
their paths from a frame resolved once per apply (:class:`._paths.Slots`); the
commonest leaves (a text operand against a str or a list) are one closure each.

Must not: know about attributes, roles or deny rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._model import Condition
from ._paths import MISSING, Context, Frame, Slots, kind_of, parse_path
from ._patterns import MAX_INPUT_LENGTH, compile_pattern
from ._scope import IssuerScope

__all__ = [
    "MAX_DEPTH",
    "Check",
    "FastCheck",
    "compile_check",
    "compile_condition",
    "condition_depth",
    "describe",
    "text_operands",
    "value_key",
]

#: None when the condition holds, else why it does not.
Check = Callable[[Context], str | None]
#: The same over a frame (:data:`._paths.Frame`): what compiled mappings run.
FastCheck = Callable[[Frame], str | None]

#: Deepest nesting of not/all/any accepted at load time.
MAX_DEPTH = 16
#: How many distinct reasons an ``any`` keeps formatted (reasons may quote token values).
MAX_SAID = 16


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
    """A closure for ``cond`` over a context (validated by the schema; depth checked by the
    loader): :func:`compile_check` with a frame of its own."""
    slots = Slots()
    fast = compile_check(cond, slots)
    resolvers = slots.resolvers()

    def check(ctx: Context) -> str | None:
        return fast([resolve(ctx) for resolve in resolvers])

    return check


def compile_check(cond: Condition, slots: Slots) -> FastCheck:
    """A closure for ``cond`` over a frame whose paths ``slots`` placed."""
    op = cond.operator
    if op == "not":
        assert cond.not_ is not None
        inner = compile_check(cond.not_, slots)
        held = f"not: {describe(cond.not_)} holds"

        def not_(frame: Frame) -> str | None:
            return held if inner(frame) is None else None

        return not_
    if op == "all":
        assert cond.all is not None
        parts = tuple(compile_check(c, slots) for c in cond.all)

        def all_(frame: Frame) -> str | None:
            for part in parts:  # the first that does not hold says why; the rest do not run
                reason = part(frame)
                if reason is not None:
                    return reason
            return None

        return all_
    if op == "any":
        assert cond.any is not None
        options = tuple(compile_check(c, slots) for c in cond.any)

        said: dict[tuple[str, ...], str] = {}  # the options' reasons are mostly fixed strings

        def any_(frame: Frame) -> str | None:
            reasons = []
            for option in options:
                reason = option(frame)
                if reason is None:
                    return None
                reasons.append(reason)
            key = tuple(reasons)
            text = said.get(key)
            if text is None:
                shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
                text = f"none of {len(reasons)} held ({shown})"
                if len(said) < MAX_SAID and len(text) <= 512:
                    said[key] = text
            return text

        return any_
    if op == "provider":
        assert cond.provider is not None
        providers = frozenset(cond.provider)
        wanted = _show(sorted(providers))

        def provider(frame: Frame) -> str | None:
            actual = frame[0].provider
            return None if actual in providers else f"provider is {_show(actual)}, not in {wanted}"

        return provider
    if op == "issuer":
        assert cond.issuer is not None
        scope = IssuerScope(cond.issuer)
        listed = _show(sorted(scope.listed))

        def issuer(frame: Frame) -> str | None:
            # by namespace: every spelling of the listed issuers the token's profile accepts
            ctx = frame[0]
            actual = ctx.issuer
            if scope.matching(ctx.provider, actual):
                return None
            return f"issuer {_show(actual)} is not in {listed}"

        return issuer
    assert cond.claim is not None
    path = parse_path(cond.claim)
    test = _leaf(cond, op, cond.claim)
    index = slots.slot(path)
    if index is None:  # a provider plugin's $ name: resolved here, when the rule runs
        resolve = path.resolve

        def resolved_here(frame: Frame) -> str | None:
            return test(resolve(frame[0]))

        return resolved_here
    return _inline(cond, op, cond.claim, index, test) or _at(index, test)


def _at(index: int, test: Callable[[Any], str | None]) -> FastCheck:
    def leaf(frame: Frame) -> str | None:
        return test(frame[index])

    return leaf


def _leaf(cond: Condition, op: str, claim: str) -> Callable[[Any], str | None]:
    """What a leaf condition says of a resolved value (or MISSING): None when it holds."""
    absent = f"{claim} is absent"
    if op == "exists":
        want = bool(cond.exists)
        present_reason = f"{claim} is present"

        def exists(value: Any) -> str | None:
            here = value is not MISSING
            if here == want:
                return None
            return present_reason if here else absent

        return exists
    if op == "matches":
        return _matches(cond, claim, absent)
    test = _value_test(cond, op)
    fail = f"{claim} does not {_verb(op)} {_show(_argument(cond, op))}"
    not_member = f"{claim} is an object (pick a member with a dotted path)"

    def check(value: Any) -> str | None:
        if value is MISSING:
            return absent
        if test(value):
            return None
        if isinstance(value, dict) or hasattr(value, "keys"):
            return not_member
        return fail

    return check


def text_operands(cond: Condition) -> frozenset[str] | None:
    """The texts of a leaf that is a text-membership test, else None.

    Such a leaf is ``equals``/``contains`` with a text operand, or ``in``/``contains_any``
    whose operands are all texts. On a str value it holds exactly when the value is one of
    these texts; on a list or tuple, exactly when one of its str items is (the typed
    comparison: no other item ever equals a text). Any other value is decided by the leaf's
    general test. The role rules' index (:mod:`._compile`) relies on exactly this.
    """
    op = cond.operator
    if op in ("equals", "contains"):
        raw = cond.equals if op == "equals" else cond.contains
        return frozenset((raw,)) if isinstance(raw, str) else None
    if op in ("in", "contains_any"):
        values = cond.in_ if op == "in" else cond.contains_any
        if values is not None and all(isinstance(v, str) for v in values):
            return frozenset(values)
    return None


def _inline(
    cond: Condition, op: str, claim: str, index: int, general: Callable[[Any], str | None]
) -> FastCheck | None:
    """The commonest leaves as one closure: a text operand, and a value that is exactly a
    str, a list or a tuple. They answer what ``general`` answers (none of them has ``keys``,
    so ``fail`` is the only reason left); any other value goes to ``general``."""
    texts = text_operands(cond)
    if op in ("equals", "contains"):
        raw = cond.equals if op == "equals" else cond.contains
        if isinstance(raw, bool):
            flag = raw
            fail = f"{claim} does not {_verb(op)} {_show(raw)}"

            def one_flag(frame: Frame) -> str | None:
                value = frame[index]
                if type(value) is bool:  # a boolean equals only a boolean
                    return None if value is flag else fail
                return general(value)

            return one_flag
        if texts is None:
            return None
        (text,) = texts
        fail = f"{claim} does not {_verb(op)} {_show(raw)}"

        def one_text(frame: Frame) -> str | None:
            value = frame[index]
            kind = type(value)
            if kind is str:
                return None if value == text else fail
            if kind is list or kind is tuple:
                return None if text in value else fail
            return general(value)

        return one_text
    if op in ("in", "contains_any"):
        values = cond.in_ if op == "in" else cond.contains_any
        if texts is None:
            return None
        members = texts
        fail = f"{claim} does not {_verb(op)} {_show(values)}"

        def some_text(frame: Frame) -> str | None:
            value = frame[index]
            kind = type(value)
            if kind is str:
                return None if value in members else fail
            if kind is list or kind is tuple:
                for item in value:
                    if (type(item) is str or isinstance(item, str)) and item in members:
                        return None
                return fail
            return general(value)

        return some_text
    if op == "matches":
        assert cond.matches is not None
        search = compile_pattern(cond.matches).searcher()
        fail = f"{claim} does not match {_show(cond.matches)}"
        too_long = f"{claim} is longer than {MAX_INPUT_LENGTH} characters: not matched"

        def matches_text(frame: Frame) -> str | None:
            value = frame[index]
            if type(value) is str:
                if len(value) > MAX_INPUT_LENGTH:
                    return too_long
                return None if search(value) else fail
            return general(value)

        return matches_text
    if op == "exists" and cond.exists:
        absent = f"{claim} is absent"

        def exists(frame: Frame) -> str | None:
            return absent if frame[index] is MISSING else None

        return exists
    return None


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


def _matches(cond: Condition, claim: str, absent: str) -> Callable[[Any], str | None]:
    assert cond.matches is not None
    search = compile_pattern(cond.matches).searcher()
    fail = f"{claim} does not match {_show(cond.matches)}"
    too_long = f"{claim} is longer than {MAX_INPUT_LENGTH} characters: not matched"

    def matches(value: Any) -> str | None:
        if value is MISSING:
            return absent
        texts = [v for v in _items(value) if isinstance(v, str)]
        if not texts:
            return f"{claim} is {kind_of(value)}, not text"
        skipped = False
        for text in texts:
            if len(text) > MAX_INPUT_LENGTH:
                skipped = True
            elif search(text):
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
