"""Transforms: small, deterministic steps applied to a resolved value.

Owns: the transform vocabulary and its semantics. A step is written as a bare
name (``strip``, ``lower``, ``upper``, ``localpart``, ``domain``, ``first``)
or as a one-key object (``{split: ","}``, ``{join: " "}``, ``{prefix: "x-"}``,
``{suffix: "-x"}``, ``{replace: {pattern: "...", with: "..."}}``).

* Text steps (strip, lower, upper, localpart, domain, prefix, suffix,
  replace) apply to a string, or to each element of a list of strings.
* ``localpart``/``domain`` split at the last ``@``; a value without one (or
  with nothing on that side) does not resolve.
* ``split`` cuts a string at a literal separator, strips the pieces and drops
  empty ones (a list is split element by element and flattened); ``join``
  makes one string of a list of strings; ``first`` takes a list's first
  element.
* ``replace`` replaces every leftmost-longest match of a pattern (the linear
  engine of :mod:`._patterns` (RE2)) with literal text.

A step that does not fit the value (``lower`` on a number, ``localpart`` of a
value without ``@``) raises :class:`Unresolved` with the reason: the engine
turns that into "this source did not resolve", never into an error.

Must not: read claims (sources do that) or know about attributes and roles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._paths import kind_of
from ._patterns import MAX_INPUT_LENGTH, TooCostly, compile_pattern

__all__ = [
    "BARE_TRANSFORMS",
    "VALUE_TRANSFORMS",
    "Step",
    "Unresolved",
    "compile_steps",
    "describe_step",
    "each_text_alone",
]

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


def _too_long() -> Unresolved:
    return Unresolved(f"replace: the value is longer than {MAX_INPUT_LENGTH} characters")


def _replace(pattern: str, replacement: str) -> Callable[[str], str]:
    compiled = compile_pattern(pattern, allow_lazy=False)
    cut = compiled.replacer(replacement, _too_long)  # a prefix to cut: one closure
    if cut is not None:
        return cut

    def one(text: str) -> str:
        if len(text) > MAX_INPUT_LENGTH:
            raise _too_long()
        try:
            return compiled.sub(replacement, text)
        except TooCostly:
            raise Unresolved("replace: the pattern is too costly for this value") from None

    return one


_TEXT_STEPS = frozenset({"strip", "lower", "upper", "localpart", "domain", "prefix", "suffix", "replace"})


def each_text_alone(steps: Sequence[Step]) -> bool:
    """Whether ``steps`` (none at all included) map each text of a list on its own: then a
    list of texts transforms into the list of its texts' results, in order, and fails
    exactly when one of those texts fails alone (text steps only; no split, join or first)."""
    return all(step[0] in _TEXT_STEPS for step in steps)


def _text_step(step: Step) -> Callable[[str], str] | None:
    """What a text step does to one string (None for first, split and join)."""
    name = step[0]
    if name == "strip":
        return str.strip
    if name == "lower":
        return str.lower
    if name == "upper":
        return str.upper
    if name == "localpart":
        return _localpart
    if name == "domain":
        return _domain
    if name == "prefix":
        prefix = step[1]
        return lambda text: prefix + text
    if name == "suffix":
        suffix = step[1]
        return lambda text: text + suffix
    if name == "replace":
        return _replace(step[1], step[2])
    return None


def _step(step: Step) -> Transform:
    name = step[0]
    fn = _text_step(step)
    if fn is not None:
        return _textwise(name, fn)
    if name == "first":
        return _first
    if name == "split":
        return _split(step[1])
    if name == "join":
        return _join(step[1])
    raise ValueError(f"unknown transform {name!r}")  # the schema refuses these first


def _in_order(fns: Sequence[Transform]) -> Transform:
    if len(fns) == 1:
        return fns[0]

    def pipeline(value: Any) -> Any:
        for fn in fns:
            value = fn(value)
        return value

    return pipeline


def _over_list(step: Step, fn: Callable[[str], str]) -> Callable[[Sequence[str]], list[str]]:
    """``fn``, what the text step ``step`` does to one string, as one pass over a sequence:
    the list ``[fn(text) for text in texts]``, raising where ``fn`` would."""
    name = step[0]
    if name == "prefix":
        prefix = step[1]
        return lambda texts: [prefix + text for text in texts]
    if name == "suffix":
        suffix = step[1]
        return lambda texts: [text + suffix for text in texts]
    if name == "replace":
        cut = compile_pattern(step[1], allow_lazy=False).list_replacer(step[2], _too_long)
        if cut is not None:
            return cut
    return lambda texts: list(map(fn, texts))  # a C loop over a C method, or one closure


def _text_run(steps: Sequence[Step]) -> Transform:
    """Consecutive text steps as one pass: a string goes through every step in turn, a
    list of strings goes through each step as one pass over the list.

    The steps are pure, so the values are those of running them one after another over
    the whole list; only which failure is reported could differ (the first step fails on
    a later element before the second fails on an earlier one). So a list that holds a
    non-string, or an element that some step refuses, is run step after step instead,
    and reports exactly what it did before.
    """
    fns = tuple(fn for fn in map(_text_step, steps) if fn is not None)
    assert len(fns) == len(steps) >= 2
    passes = tuple(map(_over_list, steps, fns))
    stepwise = _in_order([_step(step) for step in steps])

    def run(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            for fn in fns:
                value = fn(value)
            return value
        if kind is list or kind is tuple:
            for item in value:
                if type(item) is not str:
                    return stepwise(value)
            try:
                items = value
                for each in passes:
                    items = each(items)
                return items
            except Unresolved:
                return stepwise(value)
        return stepwise(value)

    return run


def compile_steps(steps: Sequence[Step]) -> Transform | None:
    """One function applying ``steps`` in order (None when there are none); runs of text
    steps are fused (:func:`_text_run`)."""
    parts: list[Transform] = []
    run: list[Step] = []
    for step in (*steps, ("",)):  # a sentinel that ends the last run
        if step[0] in _TEXT_STEPS:
            run.append(step)
            continue
        if len(run) >= 2:
            parts.append(_text_run(run))
        else:
            parts.extend(_step(s) for s in run)
        run = []
        if step[0]:
            parts.append(_step(step))
    if not parts:
        return None
    return _in_order(parts)
