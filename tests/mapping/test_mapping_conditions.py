"""Every condition operator, with typed comparison, single values and lists both
ways, absent and mistyped claims (a reason, never an exception), and scoping by
provider and issuer."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from federation.mapping._conditions import compile_condition, describe, value_key
from federation.mapping._model import Condition
from federation.mapping._paths import NORMALISED_NAMES, Context

CLAIMS: dict[str, Any] = {
    "groups": ["admins", "staff"],
    "group": "admins",
    "aud": "api",
    "auds": ["api", "web"],
    "email": "ada@example.com",
    "email_verified": True,
    "email_verified_str": "true",
    "level": 3,
    "ratio": 1.0,
    "flags": [True, 1, "1"],
    "profile": {"dept": "R&D"},
    "long": "a" * 2000,
    "mixed": ["x" * 2000, "short@example.com"],
    "nums": [1, 2],
}
NORMALISED = {name: None for name in NORMALISED_NAMES} | {
    "provider": "cognito",
    "issuer": "https://idp.test",
    "email_verified": True,
    "groups": ("admins",),
}
CTX = Context(CLAIMS, NORMALISED)


def check(cond: str | dict[str, Any]) -> str | None:
    data = yaml.safe_load(cond) if isinstance(cond, str) else cond
    return compile_condition(Condition.model_validate(data))(CTX)


HOLDS = [
    "{claim: group, equals: admins}",
    "{claim: groups, equals: admins}",  # a list: any element
    "{claim: email_verified, equals: true}",
    "{claim: level, equals: 3}",
    "{claim: level, equals: 3.0}",  # numbers by value
    "{claim: ratio, equals: 1}",
    "{claim: flags, equals: '1'}",
    "{claim: group, in: [admins, ops]}",
    "{claim: groups, in: [ops, staff]}",
    "{claim: level, in: [1, 2, 3]}",
    "{claim: groups, contains: staff}",
    "{claim: group, contains: admins}",  # a single value is a list of one
    "{claim: nums, contains: 2}",
    "{claim: groups, contains_any: [x, staff]}",
    "{claim: group, contains_any: [admins]}",
    "{claim: groups, contains_all: [staff, admins]}",
    "{claim: auds, contains_all: [api]}",
    "{claim: email, matches: '@example\\.com$'}",
    "{claim: groups, matches: '^st'}",
    "{claim: mixed, matches: '@example\\.com$'}",  # a long element is skipped, another matches
    "{claim: email, matches: '(?i)ADA'}",
    "{claim: email, exists: true}",
    "{claim: nothing, exists: false}",
    "{claim: profile.dept, equals: 'R&D'}",
    "{claim: $email_verified, equals: true}",
    "{claim: $groups, contains: admins}",
    "{not: {claim: group, equals: staff}}",
    "{all: [{claim: group, equals: admins}, {claim: level, equals: 3}]}",
    "{any: [{claim: group, equals: x}, {claim: level, equals: 3}]}",
    "{provider: cognito}",
    "{provider: [okta, cognito]}",
    "{issuer: 'https://idp.test'}",
    "{issuer: ['https://other.test', 'https://idp.test']}",
]


@pytest.mark.parametrize("cond", HOLDS)
def test_conditions_that_hold(cond: str) -> None:
    assert check(cond) is None


FAILS = [
    ("{claim: group, equals: staff}", 'group does not equal "staff"'),
    ("{claim: email_verified_str, equals: true}", "email_verified_str does not equal true"),  # 'true' != true
    ("{claim: email_verified, equals: 'true'}", 'email_verified does not equal "true"'),
    ("{claim: email_verified, equals: 1}", "email_verified does not equal 1"),  # true is not 1
    ("{claim: level, equals: true}", "level does not equal true"),
    ("{claim: group, equals: ADMINS}", 'group does not equal "ADMINS"'),  # exact case
    ("{claim: group, in: [ops]}", 'group does not have a value in ["ops"]'),
    ("{claim: groups, contains: ops}", 'groups does not contain "ops"'),
    ("{claim: group, contains: admin}", 'group does not contain "admin"'),  # not a substring test
    ("{claim: groups, contains_any: [a, b]}", 'groups does not contain any of ["a", "b"]'),
    ("{claim: groups, contains_all: [admins, ops]}", 'groups does not contain all of ["admins", "ops"]'),
    ("{claim: email, matches: '@corp\\.com$'}", 'email does not match "@corp\\.com$"'),
    ("{claim: level, matches: '3'}", "level is a number, not text"),
    ("{claim: nums, matches: '1'}", "nums is a list, not text"),
    ("{claim: long, matches: 'a'}", "long is longer than 1024 characters: not matched"),
    ("{claim: missing, equals: x}", "missing is absent"),
    ("{claim: missing, matches: x}", "missing is absent"),
    ("{claim: missing, exists: true}", "missing is absent"),
    ("{claim: email, exists: false}", "email is present"),
    ("{claim: profile, equals: x}", "profile is an object (pick a member with a dotted path)"),
    ("{claim: $username, equals: x}", "$username is absent"),
    ("{not: {claim: group, equals: admins}}", 'not: group equals "admins" holds'),
    ("{all: [{claim: group, equals: admins}, {claim: level, equals: 4}]}", "level does not equal 4"),
    (
        "{any: [{claim: group, equals: x}, {claim: level, equals: 4}]}",
        'none of 2 held (group does not equal "x"; level does not equal 4)',
    ),
    (
        "{any: [{claim: a, exists: true}, {claim: b, exists: true},"
        " {claim: c, exists: true}, {claim: d, exists: true}]}",
        "none of 4 held (a is absent; b is absent; c is absent; ...)",
    ),
    ("{provider: okta}", 'provider is "cognito", not in ["okta"]'),
    ("{issuer: 'https://other.test'}", 'issuer "https://idp.test" is not in ["https://other.test"]'),
]


@pytest.mark.parametrize(("cond", "reason"), FAILS)
def test_conditions_that_fail_say_why(cond: str, reason: str) -> None:
    assert check(cond) == reason


@pytest.mark.parametrize(
    ("cond", "text"),
    [
        ("{claim: g, equals: a}", 'g equals "a"'),
        ("{claim: g, in: [a, 1]}", 'g in ["a", 1]'),
        ("{claim: g, contains_any: [a]}", 'g contains any ["a"]'),
        ("{claim: g, exists: true}", "g exists"),
        ("{claim: g, exists: false}", "g is absent"),
        ("{not: {claim: g, equals: true}}", "not (g equals true)"),
        ("{all: [{claim: g, equals: 1}, {provider: okta}]}", 'all of (g equals 1; provider is "okta")'),
        ("{any: [{issuer: [a, b]}]}", 'any of (issuer in ["a", "b"])'),
        ('{claim: g, equals: "line\\nbreak"}', 'g equals "line\\nbreak"'),
        ("{claim: g, equals: '" + "x" * 100 + "'}", 'g equals "' + "x" * 76 + "..."),
    ],
)
def test_conditions_in_words(cond: str, text: str) -> None:
    assert describe(Condition.model_validate(yaml.safe_load(cond))) == text


def test_value_keys_are_typed() -> None:
    assert value_key(True) != value_key(1) and value_key(1) == value_key(1.0)
    assert value_key("1") != value_key(1) and value_key([1]) is None and value_key(None) is None


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"claim": "g"}, "a condition needs an operator"),
        ({}, "a condition needs an operator"),
        ({"claim": "g", "equals": 1, "contains": 1}, "exactly one operator, found contains and equals"),
        ({"equals": 1}, "'equals' needs 'claim'"),
        ({"claim": "g", "not": {"claim": "g", "exists": True}}, "'not' does not take 'claim'"),
        ({"claim": "g", "provider": "okta"}, "'provider' does not take 'claim'"),
        ({"claim": "g", "equals": [1]}, "must be a string, number or boolean"),
        ({"claim": "g", "in": []}, "at least 1 item"),
        ({"claim": "g", "in": "a"}, "Input should be a valid list"),
        ({"claim": "g", "exists": "yes"}, "Input should be a valid boolean"),
        ({"claim": "g", "matches": "(?=x)"}, "invalid regular expression: lookaround assertions"),
        ({"claim": "g", "matches": 5}, "a regular expression must be a string"),
        ({"claim": "$nope", "equals": 1}, "invalid claim path: unknown normalised name '$nope'"),
        ({"claim": 5, "equals": 1}, "a claim path must be a string"),
        ({"provider": "cogntio"}, "unknown provider 'cogntio'; known: oidc, azure_ad"),
        ({"issuer": ""}, "must be a non-empty string"),
        ({"all": []}, "at least 1 item"),
        ({"claim": "g", "equals": "x" * 1025}, "longer than 1024 characters"),
        ({"claim": "g", "equals": None}, "null is not allowed"),
        ({"claim": "g", "equal": 1}, "Extra inputs are not permitted"),
    ],
)
def test_condition_schema_errors(cond: dict[str, Any], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        Condition.model_validate(cond)
    assert message in str(err.value)
