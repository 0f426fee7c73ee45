"""Claim paths (literal name first, dotted paths, escapes, indexes, the $ names)
and templates (placeholders, escapes, what renders and what does not)."""

from __future__ import annotations

from typing import Any

import pytest

from federation.mapping import NORMALISED_NAMES
from federation.mapping._paths import MISSING, Context, PathError, parse_path
from federation.mapping._templates import TemplateError, is_template, parse_template, scalar_text

CLAIMS: dict[str, Any] = {
    "sub": "u1",
    "email": "a@example.com",
    "https://example.com/roles": ["editor"],
    "cognito:groups": ["Admins"],
    "realm_access": {"roles": ["admin", "user"]},
    "resource_access": {"my.app": {"roles": ["viewer"]}, "plain": {"roles": ["x"]}},
    "a.b": "literal",
    "a": {"b": "nested"},
    "addresses": [{"country": "NZ"}, {"country": "FR"}],
    "$odd": "dollar",
    "back\\slash": 1,
    "nothing": None,
    "list": [None, 1],
    "br[acket": "yes",
}
NORMALISED = {name: None for name in NORMALISED_NAMES} | {
    "email": "A@Example.com",
    "email_verified": True,
    "groups": ("g1",),
    "provider": "oidc",
    "issuer": "https://idp.test",
}
CTX = Context(CLAIMS, NORMALISED)


def resolve(path: str) -> Any:
    return parse_path(path).resolve(CTX)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("sub", "u1"),
        ("https://example.com/roles", ["editor"]),  # literal first: a dotted name works as written
        ("cognito:groups", ["Admins"]),
        ("realm_access.roles", ["admin", "user"]),
        (r"resource_access.my\.app.roles", ["viewer"]),
        ("resource_access.plain.roles", ["x"]),
        ("a.b", "literal"),  # the literal top-level name wins over the nested path
        ("addresses[1].country", "FR"),
        ("addresses[0]", {"country": "NZ"}),
        (r"\$odd", "dollar"),
        ("back\\\\slash", 1),
        (r"br\[acket", "yes"),
        ("list[1]", 1),
        ("$email", "A@Example.com"),
        ("$email_verified", True),
        ("$groups", ("g1",)),
        ("$provider", "oidc"),
    ],
)
def test_paths_resolve(path: str, expected: Any) -> None:
    assert resolve(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "missing",
        "realm_access.missing",
        "realm_access.roles.deeper",  # a list has no keys
        "sub.x",  # a string has no keys
        "addresses[5].country",
        "realm_access[0]",  # an object is not a list
        "nothing",  # null is absent
        "list[0]",
        "$username",  # the normalised value is None
        r"resource_access.my.app.roles",  # unescaped: three keys, none exists
        "https://example.com/roles[0]",  # the literal rule is for the whole path
    ],
)
def test_paths_that_lead_nowhere_are_missing(path: str) -> None:
    assert resolve(path) is MISSING
    assert not MISSING and repr(MISSING) == "MISSING"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "a claim path must be a non-empty string"),
        ("a" * 257, "at most 256 characters"),
        ("$emial", "unknown normalised name '$emial'"),
        ("$", "unknown normalised name '$'"),
        ("a..b", "empty key in path"),
        (".a", "empty key in path"),
        ("a.", "empty key in path"),
        ("a\\x", r"a backslash must escape '.', '\', '$', '[' or ']'"),
        ("a[x]", "'[' must start a list index such as [0]"),
        ("a[1", "'[' must start a list index such as [0]"),
        ("[0]", "empty key in path"),
        ("a]", "unbalanced ']'"),
        ("a[0]b", "a list index must be followed by '.', '[' or the end of the path"),
        (".".join(["k"] * 33), "path deeper than 32 levels"),
    ],
)
def test_bad_paths_say_why(path: str, message: str) -> None:
    with pytest.raises(PathError) as err:
        parse_path(path)
    assert message in str(err.value)


def test_the_normalised_names_are_documented_and_reserved() -> None:
    assert set(NORMALISED_NAMES) == {
        "email",
        "email_verified",
        "username",
        "groups",
        "roles",
        "groups_overage",
        "provider",
        "issuer",
        "subject",
        "token_type",
    }
    assert parse_path("$email").normalised == "email"
    assert parse_path(r"\$email").normalised is None


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{sub}", "u1"),
        ("{sub}@{realm_access.roles[0]}", "u1@admin"),
        ("{ sub }", "u1"),  # spaces around a path are ignored
        ("{$email}", "A@Example.com"),
        ("{$email_verified}", "true"),
        ("{back\\\\slash}", "1"),
        ("{https://example\\.com/roles[0]}", "editor"),  # indexing a dotted name: escape its dots
        ("{{literal}} {sub}", "{literal} u1"),
        ("}}{{", "}{"),
        ("no placeholders", "no placeholders"),
    ],
)
def test_templates_render(template: str, expected: str) -> None:
    assert parse_template(template).render(CTX) == (expected, "")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{missing}", "placeholder {missing} is absent"),
        ("{given} {sub}", "placeholder {given} is absent"),
        ("{realm_access.roles}", "placeholder {realm_access.roles} is a list, not a single value"),
        ("{realm_access}", "placeholder {realm_access} is an object, not a single value"),
    ],
)
def test_templates_that_do_not_render_say_why(template: str, reason: str) -> None:
    assert parse_template(template).render(CTX) == (None, reason)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{sub", "unclosed '{' at position 0"),
        ("a}", "single '}' at position 1"),
        ("{a{b}}", "'{' inside a placeholder"),
        ("{$nope}", "placeholder {$nope}: unknown normalised name"),
        ("{}", "placeholder {}: a claim path must be a non-empty string"),
        ("{a}" * 21, "more than 20 placeholders"),
    ],
)
def test_bad_templates_say_why(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        parse_template(template)
    assert message in str(err.value)


def test_templates_reach_nothing_but_claims() -> None:
    # str.format would evaluate attribute access and indexing on Python objects.
    for template in ("{sub.__class__}", "{sub.__class__.__mro__}", "{email!r}", "{email:>10}"):
        text, _ = parse_template(template).render(CTX)
        assert text is None


def test_scalar_text() -> None:
    assert [scalar_text(v) for v in ("x", True, False, 3, 1.5)] == ["x", "true", "false", "3", "1.5"]
    assert scalar_text([1]) is None and scalar_text({}) is None and scalar_text(None) is None
    # A claim of 1e999 parses to infinity, which has no JSON form to render.
    assert scalar_text(float("inf")) is None and scalar_text(float("-inf")) is None
    try:
        huge: str | None = str(10**5000)
    except ValueError:  # Python's int-to-text limit (3.10.7+): not a single value, no exception
        huge = None
    assert scalar_text(10**5000) == huge
    assert is_template("{a}") and is_template("a}") and not is_template("cognito:groups")
