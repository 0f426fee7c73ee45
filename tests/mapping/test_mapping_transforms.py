"""Every transform step: on a string, on a list, and on what it cannot handle (a
reason, never an exception); and the spelling errors of each step in a file."""

from __future__ import annotations

from typing import Any

import pytest
from _mapping_helpers import mapping, outcome

from federation.errors import ConfigError
from federation.mapping._patterns import MAX_INPUT_LENGTH
from federation.mapping._transforms import Unresolved, compile_steps, describe_step


def run(steps: list[tuple[str, ...]], value: Any) -> Any:
    fn = compile_steps(steps)
    assert fn is not None
    return fn(value)


@pytest.mark.parametrize(
    ("steps", "value", "expected"),
    [
        ([("strip",)], "  a b \t", "a b"),
        ([("lower",)], "ÀB", "àb"),
        ([("upper",)], "ab", "AB"),
        ([("localpart",)], "Ada.L@Example.com", "Ada.L"),
        ([("localpart",)], "odd@name@example.com", "odd@name"),  # the last '@' splits
        ([("domain",)], "Ada.L@Example.com", "Example.com"),
        ([("first",)], ["a", "b"], "a"),
        ([("first",)], "only", "only"),
        ([("split", ",")], " a, b ,,c ", ["a", "b", "c"]),
        ([("split", ",")], ["a,b", "c"], ["a", "b", "c"]),
        ([("join", " ")], ["a", "b"], "a b"),
        ([("join", " ")], "a", "a"),
        ([("prefix", "kc-")], "admin", "kc-admin"),
        ([("suffix", "@corp")], "ada", "ada@corp"),
        ([("replace", "^/", "")], "/staff", "staff"),
        ([("replace", "[^a-z0-9]+", "-")], "Sales & Ops", "-ales-ps"),
        ([("lower",), ("replace", "[^a-z0-9]+", "-")], "Sales & Ops", "sales-ops"),
        ([("lower",)], ["A", "B"], ["a", "b"]),  # text steps apply to each element of a list
        ([("prefix", "g-")], ["a", "b"], ["g-a", "g-b"]),
        ([("strip",), ("lower",), ("localpart",)], "  ADA@X.COM ", "ada"),
    ],
)
def test_transforms(steps: list[tuple[str, ...]], value: Any, expected: Any) -> None:
    assert run(steps, value) == expected


@pytest.mark.parametrize(
    ("steps", "value", "reason"),
    [
        ([("lower",)], 42, "lower needs text, got a number"),
        ([("upper",)], True, "upper needs text, got a boolean"),
        ([("strip",)], {"a": 1}, "strip needs text, got an object"),
        ([("lower",)], ["a", 1], "lower needs text, and the list holds a number"),
        ([("localpart",)], "no-at-sign", "localpart: the value has no '@' (or nothing before it)"),
        ([("localpart",)], "@example.com", "localpart: the value has no '@' (or nothing before it)"),
        ([("domain",)], "ada@", "domain: the value has no '@' (or nothing after it)"),
        ([("first",)], [], "first: the list is empty"),
        ([("split", ",")], 3, "split needs text, got a number"),
        ([("split", ",")], ["a", 3], "split needs text, and the list holds a number"),
        ([("join", ",")], ["a", 3], "join needs a list of strings"),
        ([("join", ",")], 3, "join needs a list of strings, got a number"),
        ([("replace", "a", "b")], "a" * (MAX_INPUT_LENGTH + 1), "replace: the value is longer than 1024"),
    ],
)
def test_transforms_that_do_not_fit_say_why(steps: list[tuple[str, ...]], value: Any, reason: str) -> None:
    with pytest.raises(Unresolved) as err:
        run(steps, value)
    assert reason in err.value.reason


def test_describe_and_empty_pipelines() -> None:
    assert compile_steps([]) is None
    assert [describe_step(s) for s in [("lower",), ("prefix", "x"), ("replace", "a+", "b")]] == [
        "lower",
        "prefix 'x'",
        "replace 'a+'",
    ]
    with pytest.raises(ValueError, match="unknown transform"):
        compile_steps([("nope",)])


def test_a_transform_that_does_not_fit_moves_to_the_next_source() -> None:
    m = mapping(
        """
version: 1
attributes:
  username: { from: [upn, preferred_username, "{sub}"], transform: localpart }
"""
    )
    result = m.apply_claims({"sub": "u@1", "upn": "no-at", "preferred_username": 7})
    assert result.attributes == {"username": "u"}
    ((kind, detail),) = outcome(result, "attributes.username")
    assert kind == "set" and detail == "from {sub}"
    result = m.apply_claims({"sub": "nobody", "upn": "no-at"})
    ((kind, detail),) = outcome(result, "attributes.username")
    assert kind == "missing"
    assert "upn: localpart: the value has no '@'" in detail and "preferred_username is absent" in detail


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ("lowr", "unknown transform 'lowr'; known: strip, lower, upper, localpart, domain, first, split"),
        ("split", "transform 'split' needs an argument: write {split: ...}"),
        ("{lower: true}", "transform 'lower' takes no argument: write it as a bare name"),
        ("{splat: ','}", "unknown transform 'splat'"),
        ("{prefix: 1}", "prefix takes a string"),
        ("{split: ''}", "split needs a non-empty separator"),
        ("{prefix: a, suffix: b}", "a transform is a name (lower) or an object with one key"),
        ("[3]", "a transform is a name (lower) or an object with one key"),
        ("{replace: 'a'}", "replace takes {pattern: <regular expression>, with: <text>}"),
        ("{replace: {pattern: a}}", "replace takes {pattern: <regular expression>, with: <text>}"),
        ("{replace: {pattern: a, with: 1}}", "replace.with must be a string"),
        ("{replace: {pattern: '(', with: ''}}", "replace.pattern: invalid regular expression: missing )"),
        (
            "{replace: {pattern: 'a+?', with: ''}}",
            "replace.pattern: invalid regular expression: lazy quantifiers",
        ),
        ("{replace: {pattern: 1, with: ''}}", "replace.pattern: a regular expression must be a string"),
        ("{prefix: '" + "x" * 1025 + "'}", "prefix: longer than 1024 characters"),
    ],
)
def test_transform_spelling_errors(transform: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        mapping(f"version: 1\nattributes:\n  a: {{ from: x, transform: {transform} }}\n")
    assert message in str(err.value)
    assert err.value.field is not None and err.value.field.startswith("attributes.a.transform")
    assert err.value.line == 3
