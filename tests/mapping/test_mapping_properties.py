"""Property tests: whatever a token says, the example mappings give a MappingResult
with documented contents, never an exception; whatever a mapping file says, loading
gives a Mapping or a ConfigError; random patterns agree with Python's re."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _mapping_helpers import EXAMPLES, User
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from federation.errors import ConfigError
from federation.mapping import MISSING_ATTRIBUTE, Mapping, MappingResult
from federation.mapping._model import PROVIDER_NAMES
from federation.mapping._patterns import RegexError, compile_pattern

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
MAPPINGS = {name: Mapping.from_file(EXAMPLES / f"{name}.yaml") for name in EXAMPLE_NAMES}
DENY_CODES = {
    "keycloak": {"unverified_email"},
    "cognito": {"unverified_email"},
    "azure_ad": {"groups_overage", "tenant_not_allowed"},
    "okta": set(),
    "google": {"unverified_email"},
    "firebase": {"anonymous_not_allowed", "unverified_email"},
    "oidc": {"unverified_email"},
}

# Claim names the examples read, and some they do not.
NAMES = [
    "sub",
    "iss",
    "email",
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "nickname",
    "groups",
    "roles",
    "realm_access",
    "resource_access",
    "cognito:groups",
    "cognito:username",
    "custom:department",
    "middle_name",
    "cognito:preferred_role",
    "token_use",
    "username",
    "hd",
    "picture",
    "tid",
    "xms_edov",
    "_claim_names",
    "hasgroups",
    "upn",
    "unique_name",
    "uid",
    "firebase",
    "admin",
    "role",
    "https://example.com/roles",
    "https://example.com/org_id",
    "locale",
    "typ",
    "scope",
    "scp",
    "GroupsClaim",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "admins",
            "Admins",
            "IT",
            "/staff",
            "test-group-a",
            "true",
            "editor",
            "a@example.com",
            "Task.Admin",
            "realm-admin",
            "anonymous",
            "password",
            "user",
            "example.com",
        ]
    ),
    st.text(min_size=1000, max_size=1100),  # around the pattern engine's input bound
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(NAMES + ["x", "roles"]), inner, max_size=4)
    ),
    max_leaves=15,
)
claims_strategy = st.dictionaries(st.sampled_from(NAMES), json_values, max_size=len(NAMES))
existing_strategy = st.one_of(
    st.none(),
    st.builds(
        User,
        attributes=st.dictionaries(
            st.sampled_from(["email", "username", "first_name", "nickname", "x"]), scalars
        ),
        roles=st.frozensets(st.sampled_from(["member", "admin", "owner", "legacy", "staff"])),
    ),
)


def documented(result: Any, name: str) -> None:
    assert isinstance(result, MappingResult)
    assert isinstance(result.roles, frozenset) and all(isinstance(r, str) for r in result.roles)
    assert result.granted <= result.roles and not (result.revoked & result.roles)
    if result.denied is not None:
        assert result.denied in DENY_CODES[name] | {MISSING_ATTRIBUTE}
        assert dict(result.attributes) == {} and not result.granted and not result.revoked
    for value in result.attributes.values():
        items = value if isinstance(value, list) else [value]
        assert items and all(isinstance(v, (str, bool, int, float)) for v in items)
        assert value != ""
    assert all(t.rule and t.outcome for t in result.trace)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    claims=claims_strategy,
    provider=st.sampled_from(PROVIDER_NAMES),
    issuer=st.one_of(st.none(), st.text(max_size=40), st.just("https://partner.example.net/")),
    existing=existing_strategy,
)
def test_any_claims_give_a_documented_result(
    name: str, claims: dict[str, Any], provider: str, issuer: str | None, existing: User | None
) -> None:
    result = MAPPINGS[name].apply_claims(claims, provider=provider, issuer=issuer, existing=existing)
    documented(result, name)


def test_privileged_roles_only_come_from_allowed_rules() -> None:
    # admin is privileged in every example that grants it; no claim value alone can make it appear
    # through a rule without allow_privileged (grant_from rules are limited by their only: lists).
    for name in EXAMPLE_NAMES:
        m = MAPPINGS[name]
        claims = {"role": "admin", "https://example.com/roles": ["admin"], "groups": ["/admin"]}
        result = m.apply_claims(claims, provider="oidc", issuer="https://elsewhere/")
        assert "admin" not in result.roles, name


mapping_like = st.recursive(
    scalars | st.sampled_from(["email", "$email", "{sub}", "lower", "(", "always", "additive"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "attributes",
                    "roles",
                    "deny",
                    "providers",
                    "issuers",
                    "from",
                    "transform",
                    "when",
                    "claim",
                    "equals",
                    "matches",
                    "not",
                    "all",
                    "grant",
                    "sync",
                    "rules",
                    "code",
                    "default",
                    "cognito",
                    "email",
                    "split",
                    "replace",
                    "pattern",
                    "with",
                    "only",
                    "grant_from",
                    "privileged",
                    "allow_privileged",
                    "in",
                    "any",
                    "provider",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(["version", "attributes", "roles", "deny", "providers"]), mapping_like
    )
)
def test_any_document_loads_or_raises_config_error(data: dict[str, Any]) -> None:
    data = {"version": 1, **data} if data.get("version") is None else data
    try:
        m = Mapping.from_dict(data)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("<dict>") for p in exc.problems)
        return
    documented_any(m.apply_claims({"sub": "u", "email": "a@b.c", "groups": ["x"]}))


def documented_any(result: Any) -> None:
    assert isinstance(result, MappingResult)


TOKENS = [
    "a",
    "b",
    ".",
    "[ab]",
    "[^a]",
    "(",
    ")",
    "(?:",
    "|",
    "*",
    "+",
    "?",
    "{1,2}",
    "{2}",
    "^",
    "$",
    r"\d",
    r"\w",
    "x",
]


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8),
    texts=st.lists(st.text(alphabet="abx1 _\n", max_size=8), min_size=1, max_size=5),
)
def test_random_patterns_agree_with_python_re(parts: list[str], texts: list[str]) -> None:
    pattern = "".join(parts)
    try:
        ours = compile_pattern(pattern)
    except RegexError:
        return
    try:
        theirs = re.compile(pattern.replace("$", r"\Z"))
    except re.error:
        assume(False)
        return
    for text in texts:
        assert ours.search(text) is (theirs.search(text) is not None), (pattern, text)
