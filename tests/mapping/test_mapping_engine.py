"""Applying a mapping: attribute sources, defaults, update policies, required
attributes, role defaults and rules, sync policies, protected and privileged
roles, provider and issuer sections, deny rules, and the trace."""

from __future__ import annotations

from typing import Any

import pytest
from _mapping_helpers import User, mapping, outcome, verified
from federation.providers import Identity

from federation.mapping import MISSING_ATTRIBUTE, MappingResult, TraceEntry

ATTRS = """
version: 1
attributes:
  email:        { from: email, transform: [strip, lower], required: true }
  display_name: { from: [name, "{given_name} {family_name}"] }
  username:     { from: preferred_username, transform: lower, default: "{sub}", update: on_create }
  department:   { from: "custom:department", update: always }
  nickname:     { from: nickname, update: if_empty }
  plan:         { default: free }
  verified_email: { from: email, when: { claim: email_verified, equals: true } }
"""


def test_sources_fall_back_in_order_and_defaults_fill_gaps() -> None:
    m = mapping(ATTRS)
    result = m.apply_claims(
        {"sub": "U-1", "email": "  Ada@Example.COM ", "given_name": "Ada", "family_name": "Lovelace"}
    )
    assert result.allowed and result.denied is None
    assert dict(result.attributes) == {
        "email": "ada@example.com",
        "display_name": "Ada Lovelace",
        "username": "U-1",  # the default template, not transformed
        "plan": "free",
    }
    assert outcome(result, "attributes.display_name") == [("set", "from {given_name} {family_name}")]
    assert outcome(result, "attributes.username") == [("set", "from default")]
    assert outcome(result, "attributes.department") == [("missing", "custom:department is absent")]
    assert outcome(result, "attributes.verified_email") == [("missing", "when: email_verified is absent")]


def test_the_first_source_that_resolves_wins() -> None:
    result = mapping(ATTRS).apply_claims(
        {"sub": "u", "email": "a@b.c", "name": "Ada L.", "given_name": "Ada", "email_verified": True}
    )
    assert result.attributes["display_name"] == "Ada L."
    assert result.attributes["verified_email"] == "a@b.c"


def test_empty_values_do_not_resolve() -> None:
    m = mapping("version: 1\nattributes:\n  n: { from: [a, b, c, d] }\n")
    result = m.apply_claims({"a": "", "b": [], "c": "  ", "d": "ok"})
    assert result.attributes == {"n": "  "}  # only empty strings and lists count as empty
    result = m.apply_claims({"a": "", "b": []})
    assert outcome(result, "attributes.n") == [
        ("missing", "a is empty; b is an empty list; c is absent; d is absent")
    ]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("text", "text"),
        (7, 7),
        (2.5, 2.5),
        (False, False),
        (["a", 1, True], ["a", 1, True]),
    ],
)
def test_attribute_values_are_json_scalars_or_lists_of_them(value: Any, written: Any) -> None:
    result = mapping("version: 1\nattributes:\n  v: { from: v }\n").apply_claims({"v": value})
    assert result.attributes == {"v": written}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": 1}, "v is an object"),
        ([{"a": 1}], "v is a list holding an object"),
        ([["x"]], "v is a list holding a list"),
    ],
)
def test_objects_are_never_attribute_values(value: Any, reason: str) -> None:
    result = mapping("version: 1\nattributes:\n  v: { from: v }\n").apply_claims({"v": value})
    assert result.attributes == {}
    assert outcome(result, "attributes.v") == [("missing", reason)]


def test_a_default_template_that_does_not_render() -> None:
    m = mapping("version: 1\nattributes:\n  u: { from: a, default: '{b}' }\n")
    assert outcome(m.apply_claims({}), "attributes.u") == [
        ("missing", "a is absent; default: placeholder {b} is absent")
    ]
    m = mapping("version: 1\nattributes:\n  u: { from: a, default: '{b}' }\n  w: { default: 0 }\n")
    assert m.apply_claims({"b": ""}).attributes == {"w": 0}


def test_required_attribute_missing_denies_with_missing_attribute() -> None:
    result = mapping(ATTRS).apply_claims({"sub": "u"}, existing=User({"email": "old@x"}, frozenset({"r"})))
    assert result.denied == MISSING_ATTRIBUTE == "missing_attribute"
    assert not result.allowed
    assert dict(result.attributes) == {} and result.roles == {"r"}
    assert result.granted == result.revoked == frozenset()
    assert result.trace[-1] == TraceEntry(
        "attributes.email", "denied", "missing_attribute: required, and email is absent"
    )


def test_update_policies_for_an_existing_user() -> None:
    m = mapping(ATTRS)
    claims = {
        "sub": "u",
        "email": "ada@example.com",
        "preferred_username": "NEW",
        "custom:department": "R&D",
        "nickname": "ada",
        "name": "Ada",
    }
    new = m.apply_claims(claims)
    assert dict(new.attributes) == {
        "email": "ada@example.com",
        "display_name": "Ada",
        "username": "new",
        "department": "R&D",
        "nickname": "ada",
        "plan": "free",
    }
    user = User(
        {"email": "ada@example.com", "username": "old", "department": "Ops", "nickname": "", "plan": "pro"}
    )
    result = m.apply_claims(claims, existing=user)
    # email unchanged: not written; username on_create: kept; department always: written;
    # nickname if_empty and empty: written; plan always: written.
    assert dict(result.attributes) == {
        "display_name": "Ada",
        "department": "R&D",
        "nickname": "ada",
        "plan": "free",
    }
    assert outcome(result, "attributes.email") == [("unchanged", "from email")]
    assert outcome(result, "attributes.username") == [("kept", "update: on_create, and the user exists")]
    assert outcome(result, "attributes.department") == [("set", "from custom:department")]
    user = User({"nickname": "Lady A"})
    result = m.apply_claims(claims, existing=user)
    assert "nickname" not in result.attributes
    assert outcome(result, "attributes.nickname") == [("kept", "update: if_empty, and the user has a value")]


def test_if_empty_treats_missing_null_empty_string_and_empty_list_as_empty() -> None:
    m = mapping("version: 1\nattributes:\n  n: { from: n, update: if_empty }\n")
    for current in ({}, {"n": None}, {"n": ""}, {"n": []}):
        assert m.apply_claims({"n": "x"}, existing=User(current)).attributes == {"n": "x"}
    assert m.apply_claims({"n": "x"}, existing=User({"n": 0})).attributes == {}


def test_unchanged_compares_types_strictly() -> None:
    m = mapping("version: 1\nattributes:\n  n: { from: n }\n")
    assert m.apply_claims({"n": 1}, existing=User({"n": True})).attributes == {"n": 1}
    assert m.apply_claims({"n": ["a"]}, existing=User({"n": ["a"]})).attributes == {}
    assert m.apply_claims({"n": ["a"]}, existing=User({"n": ("a", "b")})).attributes == {"n": ["a"]}


def test_required_is_checked_whatever_the_update_policy() -> None:
    m = mapping("version: 1\nattributes:\n  e: { from: e, required: true, update: on_create }\n")
    assert m.apply_claims({}, existing=User({"e": "x"})).denied == "missing_attribute"
    assert m.apply_claims({"e": "y"}, existing=User({"e": "x"})).allowed


def test_a_value_its_update_policy_keeps_is_resolved_only_for_the_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from federation.mapping import _engine

    resolved: list[str] = []
    resolve = _engine._resolve

    def counted(attr: Any, frame: Any) -> Any:
        resolved.append(attr.name)
        return resolve(attr, frame)

    monkeypatch.setattr(_engine, "_resolve", counted)
    m = mapping(
        "version: 1\nattributes:\n"
        "  nick: { from: [alias, nick], transform: lower, update: on_create }\n"
        "  about: { from: [alias, about], update: if_empty }\n"
        "  gone: { from: [alias, gone], update: on_create }\n"
        '  shown: { from: "{shown}", update: on_create }\n'  # templates read the claims
        '  handle: { from: alias, default: "{who}", update: on_create }\n'
    )
    claims = {"nick": "Ada", "about": "hi", "shown": "x", "who": "w"}
    result = m.apply_claims(claims, existing=User({"nick": "old", "about": "set"}))
    assert dict(result.attributes) == {}
    assert resolved == ["shown", "handle"]  # what reads the claims themselves: by the apply
    del claims["shown"], claims["who"]  # so changing them afterwards changes nothing the trace says
    assert outcome(result, "attributes.nick") == [("kept", "update: on_create, and the user exists")]
    assert outcome(result, "attributes.about") == [("kept", "update: if_empty, and the user has a value")]
    assert outcome(result, "attributes.gone") == [("missing", "alias is absent; gone is absent")]
    assert outcome(result, "attributes.shown") == [("kept", "update: on_create, and the user exists")]
    assert outcome(result, "attributes.handle") == [("kept", "update: on_create, and the user exists")]
    assert resolved == ["shown", "handle", "nick", "about", "gone"]
    # A new user, an empty value under if_empty, and a required attribute: resolved by the apply.
    resolved.clear()
    claims = {"nick": "Ada", "about": "hi", "shown": "x", "who": "w"}
    assert dict(m.apply_claims(claims, existing=User({"about": ""})).attributes) == {"about": "hi"}
    assert resolved == ["about", "shown", "handle"]
    resolved.clear()
    new = {"nick": "ada", "about": "hi", "shown": "x", "handle": "w"}
    assert dict(m.apply_claims(claims).attributes) == new
    assert resolved == ["nick", "about", "gone", "shown", "handle"]
    resolved.clear()
    required = mapping("version: 1\nattributes:\n  e: { from: [a, e], required: true, update: on_create }\n")
    assert required.apply_claims({"e": "y"}, existing=User({"e": "x"})).allowed
    assert resolved == ["e"]


ROLES = """
version: 1
roles:
  default: [member]
  sync: {sync}
  protected: [owner]
  privileged: [admin]
  rules:
    - grant: [admin]
      allow_privileged: true
      when: {{ claim: groups, contains: admins }}
    - grant: [editor, writer]
      when: {{ claim: realm_access.roles, contains_any: [editor, writer] }}
    - name: staff
      grant: [staff]
      when:
        all: [ {{ claim: email, matches: '@example\\.com$' }}, {{ claim: email_verified, equals: true }} ]
"""


def test_roles_from_defaults_and_rules() -> None:
    m = mapping(ROLES.format(sync="additive"))
    result = m.apply_claims(
        {
            "groups": ["admins"],
            "realm_access": {"roles": ["writer"]},
            "email": "a@example.com",
            "email_verified": True,
        }
    )
    assert result.roles == {"member", "admin", "editor", "writer", "staff"}
    assert result.granted == result.roles and result.revoked == frozenset()
    assert outcome(result, "roles.default") == [("granted", "member")]
    assert outcome(result, "roles.rules[0]") == [("granted", 'groups contains "admins" -> admin')]
    assert outcome(result, "roles.rules[2]") == [
        ("granted", 'staff: all of (email matches "@example\\.com$"; email_verified equals true) -> staff')
    ]
    result = m.apply_claims({"email": "a@example.com"})
    assert result.roles == {"member"}
    assert outcome(result, "roles.rules[2]") == [("no match", "staff: email_verified is absent")]


def test_additive_sync_never_removes() -> None:
    m = mapping(ROLES.format(sync="additive"))
    result = m.apply_claims({"groups": []}, existing=User(roles=frozenset({"admin", "legacy"})))
    assert result.roles == {"admin", "legacy", "member"}
    assert result.granted == {"member"} and result.revoked == frozenset()


def test_authoritative_sync_removes_what_was_not_granted_except_protected() -> None:
    m = mapping(ROLES.format(sync="authoritative"))
    current = frozenset({"admin", "legacy", "owner", "member"})
    result = m.apply_claims({"realm_access": {"roles": ["editor"]}}, existing=User(roles=current))
    assert result.roles == {"member", "editor", "writer", "owner"}
    assert result.granted == {"editor", "writer"}
    assert result.revoked == {"admin", "legacy"}
    assert outcome(result, "roles.sync") == [("revoked", "admin, legacy (authoritative: not granted now)")]
    assert outcome(result, "roles.protected") == [("kept", "owner")]


def test_protected_roles_can_still_be_granted() -> None:
    m = mapping(
        "version: 1\nroles:\n  sync: authoritative\n  protected: [owner]\n  rules:\n"
        "    - { grant: [owner], when: { claim: g, equals: o } }\n"
    )
    assert m.apply_claims({"g": "o"}).roles == {"owner"}
    result = m.apply_claims({}, existing=User(roles=frozenset({"owner"})))
    assert result.roles == {"owner"} and outcome(result, "roles.protected") == [("kept", "owner")]


def test_without_a_roles_section_roles_are_left_alone() -> None:
    m = mapping("version: 1\nattributes:\n  e: { from: e }\n")
    result = m.apply_claims({"e": "x"}, existing=User(roles=frozenset({"a"})))
    assert result.roles == {"a"} and result.granted == result.revoked == frozenset()


GRANT_FROM = """
version: 1
roles:
  sync: authoritative
  privileged: [admin, root]
  rules:
    - name: realm roles
      grant_from: realm_access.roles
      transform: [lower, {{ prefix: "kc-" }}]
      {only}
    - name: trusted copy
      grant_from: trusted
      allow_privileged: true
      only: [admin, reader]
"""


def test_grant_from_takes_roles_from_claim_values() -> None:
    m = mapping(GRANT_FROM.format(only="only: [kc-editor, kc-viewer]"))
    result = m.apply_claims({"realm_access": {"roles": ["Editor", "viewer", "other"]}})
    assert result.roles == {"kc-editor", "kc-viewer"}
    assert outcome(result, "roles.rules[0]") == [
        ("granted", "realm roles: always -> kc-editor, kc-viewer (1 value(s) of realm_access.roles not used)")
    ]
    result = m.apply_claims({"realm_access": {"roles": "Editor"}})  # a single string is a list of one
    assert result.roles == {"kc-editor"}


def test_grant_from_with_odd_values() -> None:
    m = mapping(GRANT_FROM.format(only=""))
    result = m.apply_claims({"realm_access": {"roles": ["ok", " padded", "x" * 200, "tab\tx"]}})
    assert result.roles == {"kc-ok", "kc- padded"}  # prefix first; too long and control characters dropped
    result = m.apply_claims({"realm_access": {"roles": [1, "a"]}})
    assert result.roles == frozenset()
    assert outcome(result, "roles.rules[0]") == [
        (
            "granted",
            "realm roles: always -> no roles "
            "(realm_access.roles: lower needs text, and the list holds a number)",
        )
    ]
    result = m.apply_claims({})
    assert outcome(result, "roles.rules[0]")[0] == (
        "granted",
        "realm roles: always -> no roles (realm_access.roles is absent)",
    )
    result = m.apply_claims({"realm_access": {"roles": [f"r{i}" for i in range(2000)]}})
    assert len(result.roles) == 200
    assert "1800 value(s) of realm_access.roles not used" in outcome(result, "roles.rules[0]")[0][1]


def test_privileged_roles_are_refused_at_run_time_without_allow_privileged() -> None:
    m = mapping(GRANT_FROM.format(only=""))
    result = m.apply_claims({"realm_access": {"roles": ["x"]}, "trusted": ["admin", "reader", "root"]})
    # The first rule's values get the kc- prefix; the trusted rule may grant admin (its only: list).
    assert result.roles == {"kc-x", "admin", "reader"}
    m = mapping(
        "version: 1\nroles:\n  sync: additive\n  privileged: [admin]\n  rules:\n"
        "    - { grant_from: groups }\n"
    )
    result = m.apply_claims({"groups": ["admin", "dev"]})
    assert result.roles == {"dev"}
    assert outcome(result, "roles.rules[0]") == [
        ("granted", "always -> dev"),
        ("refused", "admin: privileged roles need allow_privileged: true on the rule"),
    ]


def test_deny_rules_come_first_and_the_first_that_holds_wins() -> None:
    m = mapping(
        """
version: 1
attributes:
  email: { from: email, required: true }
roles: { sync: additive, default: [member] }
deny:
  - name: unverified
    when: { not: { claim: email_verified, equals: true } }
    code: unverified_email
    message: verify your address first
  - when: { claim: blocked, equals: true }
    code: blocked
"""
    )
    result = m.apply_claims({"email_verified": False, "blocked": True}, existing=User(roles=frozenset({"x"})))
    assert result.denied == "unverified_email"
    assert result.roles == {"x"} and dict(result.attributes) == {}
    assert result.trace == (
        TraceEntry(
            "deny[0]",
            "denied",
            "unverified: unverified_email: not (email_verified equals true) (verify your address first)",
        ),
    )
    result = m.apply_claims({"email_verified": True, "blocked": True})
    assert result.denied == "blocked"
    assert outcome(result, "deny[0]") == [("no match", "unverified: not: email_verified equals true holds")]
    result = m.apply_claims({"email_verified": True, "email": "a@b"})
    assert result.allowed and result.roles == {"member"}


OVERLAYS = """
version: 1
attributes:
  email:    { from: email }
  username: { from: preferred_username }
roles:
  sync: additive
  default: [member]
  privileged: [admin]
  rules:
    - { grant: [base], when: { claim: g, contains: base } }
deny:
  - { when: { claim: banned, equals: true }, code: banned }
providers:
  cognito:
    attributes:
      username: { from: "cognito:username" }
      pool:     { default: main }
    roles:
      default: [aws]
      rules:
        - { grant: [admin], allow_privileged: true, when: { claim: "cognito:groups", contains: Admins } }
    deny:
      - { when: { claim: token_use, equals: access }, code: id_token_required }
issuers:
  "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc":
    attributes:
      pool: { default: europe }
    roles:
      rules:
        - { grant: [eu], when: { claim: g, contains: base } }
"""


def test_provider_and_issuer_sections_add_and_override() -> None:
    m = mapping(OVERLAYS)
    claims = {
        "email": "e",
        "preferred_username": "p",
        "cognito:username": "c",
        "g": ["base"],
        "cognito:groups": ["Admins"],
    }
    plain = m.apply_claims(claims, provider="oidc", issuer="https://x")
    assert dict(plain.attributes) == {"email": "e", "username": "p"}
    assert plain.roles == {"member", "base"}
    pool = m.apply_claims(
        claims, provider="cognito", issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X"
    )
    assert list(pool.attributes.items()) == [
        ("email", "e"),
        ("username", "c"),
        ("pool", "main"),
    ]  # replaced in place
    assert pool.roles == {"member", "aws", "base", "admin"}
    assert [t.rule for t in pool.trace if t.rule.startswith("providers")] == [
        "providers.cognito.deny[0]",
        "providers.cognito.attributes.username",
        "providers.cognito.attributes.pool",
        "providers.cognito.roles.default",
        "providers.cognito.roles.rules[0]",
    ]
    eu = m.apply_claims(
        claims, provider="cognito", issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc"
    )
    assert eu.attributes["pool"] == "europe"
    assert eu.roles == {"member", "aws", "base", "admin", "eu"}
    rules = [t.rule for t in eu.trace if "rules" in t.rule]
    assert rules == [
        "roles.rules[0]",
        "providers.cognito.roles.rules[0]",
        "issuers['https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc'].roles.rules[0]",
    ]
    assert m.position(rules[-1]) == (31, 11)
    denied = m.apply_claims({**claims, "token_use": "access"}, provider="cognito")
    assert denied.denied == "id_token_required"
    assert m.apply_claims({**claims, "banned": True}, provider="cognito").denied == "banned"


def test_plans_are_cached_per_provider_and_named_issuer_only() -> None:
    m = mapping(OVERLAYS)
    for i in range(50):  # e.g. Entra multi-tenant issuers: one plan for all of them
        m.apply_claims({}, provider="azure_ad", issuer=f"https://login.microsoftonline.com/{i}/v2.0")
    m.apply_claims({}, provider="cognito", issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc")
    assert set(m._planner._plans) == {
        ("azure_ad", ()),  # keyed by the matching issuers sections (issue 10: by namespace)
        ("cognito", ("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",)),
    }


def test_scoping_conditions_by_provider_and_issuer() -> None:
    m = mapping(
        """
version: 1
roles:
  sync: additive
  rules:
    - { grant: [okta-user], when: { provider: okta } }
    - { grant: [partner], when: { issuer: "https://partner.test" } }
    - { grant: [access], when: { claim: $token_type, equals: access } }
"""
    )
    assert m.apply_claims({}, provider="okta", issuer="https://x", token_type="id").roles == {"okta-user"}
    assert m.apply_claims({"iss": "https://partner.test"}).roles == {"partner"}
    assert m.apply_claims({"scope": "openid"}).roles == {"access"}  # classified as an access token


def test_apply_reads_the_verified_token_and_its_identity() -> None:
    m = mapping(
        """
version: 1
attributes:
  email:    { from: $email }
  verified: { from: $email_verified }
  user:     { from: $username }
  groups:   { from: $groups }
  who:      { from: "{$provider}|{$issuer}|{$subject}|{$token_type}" }
roles:
  sync: additive
  rules:
    - { grant: [admins], when: { claim: $groups, contains: Admins } }
"""
    )
    claims = {
        "sub": "abc",
        "iss": "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example",
        "token_use": "id",
        "cognito:username": "ada",
        "email": "a@b.c",
        "email_verified": "true",
        "cognito:groups": ["Admins"],
        "aud": "client",
        "exp": 1,
        "iat": 1,
    }
    token = verified(
        {"provider": "cognito", "user_pool_id": "us-west-2_example", "client_ids": ["client"]}, claims
    )
    result = m.apply(token)
    assert dict(result.attributes) == {
        "email": "a@b.c",
        "verified": True,  # Cognito's string "true", normalised by the profile
        "user": "ada",
        "groups": ["Admins"],
        "who": "cognito|https://cognito-idp.us-west-2.amazonaws.com/us-west-2_example|abc|id",
    }
    assert result.roles == {"admins"}


def test_apply_claims_with_an_explicit_identity_and_errors() -> None:
    m = mapping("version: 1\nattributes:\n  e: { from: $email }\n  v: { from: $email_verified }\n")
    ident = Identity(key=("i", "s"), email="x@y", email_verified=True)
    assert m.apply_claims({"email": "other"}, identity=ident).attributes == {"e": "x@y", "v": True}
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        m.apply_claims({}, provider="nope")
    with pytest.raises(TypeError, match="claims must be a mapping"):
        m.apply_claims(["x"])  # type: ignore[arg-type]


def test_results_are_immutable_and_inputs_untouched() -> None:
    m = mapping(ATTRS)
    claims = {"sub": "u", "email": " A@B.C ", "groups": ["x"]}
    snapshot = repr(claims)
    result = m.apply_claims(claims)
    assert repr(claims) == snapshot
    assert isinstance(result, MappingResult)
    with pytest.raises(TypeError):
        result.attributes["email"] = "x"  # type: ignore[index]
    assert m.apply_claims(claims) == result  # a pure function: same input, same result
