"""Every load-time error: it names the file, the line and column, the field path,
and says what is wrong; all problems are listed at once, in file order."""

# ruff: noqa: E501 - the table below holds whole files and whole messages, one per line

from __future__ import annotations

from pathlib import Path

import pytest
from _mapping_helpers import mapping

from federation.errors import ConfigError
from federation.mapping import Mapping

BASE = "version: 1\n"


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        mapping(text)
    return err.value


CASES = [
    # (the file, the first error line exactly as printed)
    (
        "version: 2\n",
        "mapping.yaml:1:1: version: unsupported mapping version 2: this release reads version 1",
    ),
    ("version: true\n", "mapping.yaml:1:1: version: the mapping version must be the number 1, not True"),
    ("version: 1.0\n", "mapping.yaml:1:1: version: the mapping version must be the number 1, not 1.0"),
    ('version: "1"\n', "mapping.yaml:1:1: version: the mapping version must be the number 1, not '1'"),
    (
        BASE + "deny:\n  - when: { claim: country, equals: NO }\n",
        "mapping.yaml:3:37: the plain value 'NO' reads as a YAML 1.1 boolean: write true or false, or quote it",
    ),
    ("attributes: {}\n", "mapping.yaml:1:1: version: required field missing"),
    (BASE + "atributes: {}\n", "mapping.yaml:2:1: atributes: unknown key (did you mean 'attributes'?)"),
    (BASE + "frobnicate: 1\n", "mapping.yaml:2:1: frobnicate: unknown key"),
    (
        BASE + "description:\n",
        "mapping.yaml:2:1: description: null is not allowed here (give a value or leave the key out)",
    ),
    (BASE + "deny: [~]\n", "mapping.yaml:2:8: deny[0]: null is not allowed here"),
    (
        BASE + "attributes:\n  email: { form: email }\n",
        "mapping.yaml:3:12: attributes.email.form: unknown key (did you mean 'from'?)",
    ),
    (
        BASE + "attributes:\n  email: { from: 5 }\n",
        "mapping.yaml:3:12: attributes.email.from: a source must be a claim path or a template string",
    ),
    (
        BASE + "attributes:\n  e: { from: [a, 'b..c'] }\n",
        "mapping.yaml:3:18: attributes.e.from[1]: invalid claim path: empty key in path",
    ),
    (
        BASE + "attributes:\n  e: { from: '{a' }\n",
        "mapping.yaml:3:8: attributes.e.from: invalid template: unclosed '{' at position 0",
    ),
    (
        BASE + "attributes:\n  e: { from: [a,b,c,d,e,f,g,h,i,j,k] }\n",
        "mapping.yaml:3:8: attributes.e.from: Value should have at most 10 items",
    ),
    (
        BASE
        + "attributes:\n  e: { from: a, transform: [lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower,lower] }\n",
        "mapping.yaml:3:17: attributes.e.transform: Value should have at most 20 items",
    ),
    (
        BASE + "attributes:\n  e: { default: '{x' }\n",
        "mapping.yaml:3:8: attributes.e.default: invalid template: unclosed '{'",
    ),
    (
        BASE + "attributes:\n  e: { default: [a] }\n",
        "mapping.yaml:3:8: attributes.e.default: must be a string, number or boolean",
    ),
    (
        BASE + "attributes:\n  e: { required: true }\n",
        "mapping.yaml:3:3: attributes.e: an attribute needs 'from' (where its value comes from) or a 'default'",
    ),
    (
        BASE + "attributes:\n  e: { default: x, transform: lower }\n",
        "mapping.yaml:3:3: attributes.e: 'transform' applies to 'from' values; a default is used as written",
    ),
    (
        BASE + "attributes:\n  e: { from: a, update: sometimes }\n",
        "mapping.yaml:3:17: attributes.e.update: Input should be 'always', 'on_create' or 'if_empty'",
    ),
    (
        BASE + "attributes:\n  e: { from: a, required: 'yes' }\n",
        "mapping.yaml:3:17: attributes.e.required: Input should be a valid boolean",
    ),
    (
        BASE + "attributes:\n  2fa: { from: a }\n",
        "mapping.yaml:3:3: attributes.2fa: invalid key: invalid attribute name '2fa'",
    ),
    (
        BASE + "attributes:\n  " + "a" * 65 + ": { from: a }\n",
        "attributes." + "a" * 65 + ": invalid key: an attribute name has 1 to 64 characters",
    ),
    (BASE + "attributes: []\n", "mapping.yaml:2:1: attributes: Input should be a valid dictionary"),
    (BASE + "roles: { default: [a] }\n", "mapping.yaml:2:1: roles.sync: required field missing"),
    (
        BASE + "roles: { sync: mirror }\n",
        "mapping.yaml:2:10: roles.sync: Input should be 'additive' or 'authoritative'",
    ),
    (
        BASE + "roles: { sync: additive, default: [''] }\n",
        "mapping.yaml:2:36: roles.default[0]: a role name has 1 to 128 characters",
    ),
    (
        BASE + "roles: { sync: additive, default: [' a'] }\n",
        "mapping.yaml:2:36: roles.default[0]: a role name may not have control characters or surrounding spaces",
    ),
    (
        BASE + "roles: { sync: additive, default: member }\n",
        "mapping.yaml:2:26: roles.default: Input should be a valid list",
    ),
    (
        BASE + "roles:\n  sync: additive\n  rules:\n    - { when: { claim: a, exists: true } }\n",
        "mapping.yaml:5:7: roles.rules[0]: a role rule needs 'grant' (roles) or 'grant_from' (a claim whose values are roles)",
    ),
    (
        BASE + "roles:\n  sync: additive\n  rules:\n    - { grant: [a], only: [a] }\n",
        "mapping.yaml:5:7: roles.rules[0]: 'transform' and 'only' apply to 'grant_from' values",
    ),
    (
        BASE + "roles:\n  sync: additive\n  rules:\n    - { grant: [a], when: { claim: a, matches: '(' } }\n",
        "mapping.yaml:5:39: roles.rules[0].when.matches: invalid regular expression: missing ), unterminated subpattern (at position 0)",
    ),
    (
        BASE
        + "roles:\n  sync: additive\n  rules:\n    - grant: [a]\n      when: { claim: email, matches: '(a+)+\\1' }\n",
        "mapping.yaml:6:29: roles.rules[0].when.matches: invalid regular expression: backreferences and octal escapes are not supported",
    ),
    (
        BASE + "roles:\n  sync: additive\n  rules:\n    - { grant: [a], when: { claim: a, contians: b } }\n",
        "mapping.yaml:5:39: roles.rules[0].when.contians: unknown key (did you mean 'contains'?)",
    ),
    (
        BASE + "roles:\n  sync: additive\n  rules:\n    - { grant: [a], when: { claim: a } }\n",
        "mapping.yaml:5:21: roles.rules[0].when: a condition needs an operator",
    ),
    (
        BASE + "roles:\n  sync: additive\n  privileged: [admin]\n  default: [admin]\n",
        "mapping.yaml:5:13: roles.default[0]: role 'admin' is privileged (roles.privileged): privileged roles are granted only by rules with allow_privileged: true, never by default",
    ),
    (
        BASE
        + "roles:\n  sync: additive\n  privileged: [admin]\n  rules:\n    - { grant: [x, admin], when: { claim: g, exists: true } }\n",
        "mapping.yaml:6:20: roles.rules[0].grant[1]: role 'admin' is privileged (roles.privileged): the rule needs allow_privileged: true",
    ),
    (
        BASE
        + "roles:\n  sync: additive\n  privileged: [admin]\n  rules:\n    - { grant_from: g, only: [admin] }\n",
        "mapping.yaml:6:31: roles.rules[0].only[0]: role 'admin' is privileged (roles.privileged): the rule needs allow_privileged: true",
    ),
    (
        BASE + "roles:\n  sync: additive\n  rules:\n    - { grant_from: g, allow_privileged: true }\n",
        "mapping.yaml:5:7: roles.rules[0].only: a grant_from rule with allow_privileged must list the roles it may grant in 'only'",
    ),
    (
        BASE + "deny:\n  - { when: { claim: a, exists: true } }\n",
        "mapping.yaml:3:5: deny[0].code: required field missing",
    ),
    (BASE + "deny:\n  - { code: x }\n", "mapping.yaml:3:5: deny[0].when: required field missing"),
    (
        BASE + "deny:\n  - { code: Bad-Code, when: { claim: a, exists: true } }\n",
        "mapping.yaml:3:7: deny[0].code: a deny code is 1 to 64 characters: a lower-case letter, then lower-case letters, digits and '_'",
    ),
    (
        BASE + "deny:\n  - { code: 9lives, when: { claim: a, exists: true } }\n",
        "mapping.yaml:3:7: deny[0].code: a deny code is 1 to 64 characters",
    ),
    (
        BASE + "providers:\n  cogntio: {}\n",
        "mapping.yaml:3:3: providers.cogntio: invalid key: unknown provider 'cogntio'; known: oidc, azure_ad, azure_ad_b2c, keycloak, google, firebase, cognito, okta",
    ),
    (
        BASE + "providers:\n  okta: { roles: { sync: additive } }\n",
        "mapping.yaml:3:20: providers.okta.roles.sync: unknown key: sync is set once, in the top-level roles section",
    ),
    (
        BASE + "providers:\n  okta: { roles: { privileged: [a] } }\n",
        "providers.okta.roles.privileged: unknown key: privileged is set once, in the top-level roles section",
    ),
    (
        BASE + "providers:\n  okta: { roles: { default: [a] } }\n",
        "mapping.yaml:3:11: providers.okta.roles: role additions need a top-level roles section (it chooses sync and lists protected and privileged roles)",
    ),
    (
        BASE
        + "roles: { sync: additive, privileged: [admin] }\nproviders:\n  okta: { roles: { default: [admin] } }\n",
        "mapping.yaml:4:30: providers.okta.roles.default[0]: role 'admin' is privileged",
    ),
    (
        BASE
        + "roles: { sync: additive, privileged: [admin] }\nissuers:\n  'https://x': { roles: { rules: [ { grant: [admin] } ] } }\n",
        "mapping.yaml:4:46: issuers.https://x.roles.rules[0].grant[0]: role 'admin' is privileged",
    ),
    (BASE + "issuers:\n  '': {}\n", "mapping.yaml:3:3: issuers.: invalid key: must be a non-empty string"),
    (
        BASE
        + "deny:\n  - code: deep\n    when: "
        + "{ not: " * 17
        + "{ claim: a, exists: true }"
        + " }" * 17
        + "\n",
        "mapping.yaml:4:5: deny[0].when: conditions nested deeper than 16 levels",
    ),
    (
        BASE
        + "attributes:\n  e: { from: a, when: "
        + "{ not: " * 17
        + "{ claim: a, exists: true }"
        + " }" * 17
        + " }\n",
        "mapping.yaml:3:17: attributes.e.when: conditions nested deeper than 16 levels",
    ),
    (
        BASE
        + "roles: { sync: additive, rules: [ { grant: [a], when: "
        + "{ not: " * 17
        + "{ claim: a, exists: true }"
        + " }" * 17
        + " } ] }\n",
        "roles.rules[0].when: conditions nested deeper than 16 levels",
    ),
    (
        BASE
        + "providers:\n  okta: { deny: [ { code: c, when: "
        + "{ not: " * 17
        + "{ claim: a, exists: true }"
        + " }" * 17
        + " } ] }\n",
        "providers.okta.deny[0].when: conditions nested deeper than 16 levels",
    ),
    (
        BASE + "attributes:\n  e: { from: a }\n  e: { from: b }\n",
        "mapping.yaml:4:3: attributes.e: duplicate key",
    ),
    (BASE + "attributes: [\n", "mapping.yaml:3:1: invalid YAML"),
    ("- a\n- b\n", "mapping.yaml: a mapping must be a YAML mapping at the top level"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_error_names_file_line_column_field_and_reason(text: str, expected: str) -> None:
    err = error(text)
    first = err.problems[0]
    assert expected in first, first
    if expected.startswith("mapping.yaml:") and expected.count(":") >= 3 and "invalid YAML" not in expected:
        line, column = (int(x) for x in expected.split(":")[1:3])
        assert (err.line, err.column) == (line, column)
        assert err.file == "mapping.yaml"
    assert err.code == "config_error"


def test_every_problem_is_listed_in_file_order() -> None:
    err = error(
        """version: 1
attributes:
  email: { from: email, transform: [strip, lowr], requird: true }
  name: { frm: name }
roles:
  sync: authoritative
  rules:
    - grant: [staff]
      when:
        claim: email
        matches: '(@example\\.com$'
deny:
  - { when: { claim: a, exists: true }, code: Unverified }
providers:
  cogntio: {}
"""
    )
    assert str(err).splitlines()[0] == "invalid mapping (6 problems):"
    assert [p.split(": ")[0] for p in err.problems] == [
        "mapping.yaml:3:44",
        "mapping.yaml:3:51",
        "mapping.yaml:4:11",
        "mapping.yaml:11:9",
        "mapping.yaml:13:41",
        "mapping.yaml:15:3",
    ]
    assert err.problems[3] == (
        "mapping.yaml:11:9: roles.rules[0].when.matches: invalid regular expression: "
        "missing ), unterminated subpattern (at position 0)"
    )
    assert (err.line, err.column, err.field) == (3, 44, "attributes.email.transform[1]")


def test_explicit_nulls_inside_models_are_refused_too() -> None:
    from pydantic import ValidationError

    from federation.mapping._model import AttributeSpec

    with pytest.raises(ValidationError, match="from: null is not allowed"):
        AttributeSpec.model_validate({"from": None})


def test_from_dict_errors_name_the_field_without_positions() -> None:
    with pytest.raises(ConfigError) as err:
        Mapping.from_dict({"version": 1, "roles": {"sync": "additive", "rules": [{"grant": []}]}})
    assert str(err.value) == (
        "<dict>: roles.rules[0]: a role rule needs 'grant' (roles) or 'grant_from' (a claim whose values are roles)"
    )
    assert err.value.line is None and err.value.field == "roles.rules[0]"
    with pytest.raises(ConfigError, match="a mapping must be a dict at the top level"):
        Mapping.from_dict(["x"])  # type: ignore[arg-type]


def test_files_and_config_values(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mapping.yaml").write_text("version: 1\nroles: { sync: additive, default: [m] }\n")
    m = Mapping.from_config("mapping.yaml", tmp_path / "conf")
    assert m.source == str(tmp_path / "conf" / "mapping.yaml")
    assert m.apply_claims({}).roles == {"m"}
    assert Mapping.from_config(tmp_path / "conf" / "mapping.yaml", "/elsewhere").apply_claims({}).roles == {
        "m"
    }
    inline = Mapping.from_config({"version": 1, "roles": {"sync": "additive", "default": ["i"]}}, tmp_path)
    assert inline.source is None and inline.apply_claims({}).roles == {"i"}
    assert inline.position("roles.default") is None
    assert repr(inline) == "Mapping(source=None)"
    with pytest.raises(ConfigError, match="cannot read file"):
        Mapping.from_config("missing.yaml", tmp_path)
    with pytest.raises(ConfigError, match="mapping: must be a file path or the mapping itself"):
        Mapping.from_config(3, tmp_path)  # type: ignore[arg-type]
    (tmp_path / "bad.yaml").write_text("version: 1\nroles: { sync: sometimes }\n")
    with pytest.raises(ConfigError) as err:
        Mapping.from_file(tmp_path / "bad.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'bad.yaml'}:2:10: roles.sync: Input should be")


def test_positions_of_trace_rules() -> None:
    m = mapping(BASE + "roles:\n  sync: additive\n  rules:\n    - { grant: [a] }\n    - { grant: [b] }\n")
    assert m.position("roles.rules[1]") == (6, 7)
    assert m.position("roles.rules[1].grant") == (6, 9)
    assert m.position("nowhere") is None
    assert m.source == "mapping.yaml"


@pytest.mark.parametrize("given", [None, 5, ["version: 1"], Path("mapping.yaml")], ids=repr)
def test_from_yaml_of_something_that_is_no_text_is_a_config_error(given: object) -> None:
    """None or a Path reached PyYAML as AttributeError ('has no attribute read')."""
    with pytest.raises(ConfigError, match=f"^mapping YAML is text, not {type(given).__name__}"):
        Mapping.from_yaml(given)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [None, 5, b"mapping.yaml", ["mapping.yaml"]], ids=repr)
def test_from_file_of_something_that_is_no_path_is_a_config_error(given: object) -> None:
    with pytest.raises(ConfigError, match=f"^a mapping file is named by a path, not {type(given).__name__}$"):
        Mapping.from_file(given)  # type: ignore[arg-type]
