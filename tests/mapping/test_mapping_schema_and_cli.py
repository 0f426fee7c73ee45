"""The JSON Schema for editors (checked against every example and a few typos),
and the ``federation map`` / ``federation schema mapping`` commands."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from _mapping_helpers import EXAMPLES

from federation._cli_mapping import EXIT_ALLOWED, EXIT_DENIED, add_commands
from federation.errors import ConfigError
from federation.mapping import Mapping

# -- a small JSON Schema checker for the keywords the mapping schema uses -----------------


def problems(schema: dict[str, Any], value: Any, root: dict[str, Any], where: str = "$") -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        merged = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return problems(merged, value, root, where)
    found: list[str] = []
    if "anyOf" in schema and all(problems(option, value, root, where) for option in schema["anyOf"]):
        found.append(f"{where}: matches no alternative")
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: not one of {schema['enum']}")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        checks = {
            "string": lambda v: isinstance(v, str),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "array": lambda v: isinstance(v, list),
            "object": lambda v: isinstance(v, dict),
            "null": lambda v: v is None,
        }
        if not any(checks[k](value) for k in kinds):
            return [*found, f"{where}: not of type {kinds}"]
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        found.append(f"{where}: too short")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 10**9):
            found.append(f"{where}: wrong number of items")
        for i, item in enumerate(value):
            if "items" in schema:
                found += problems(schema["items"], item, root, f"{where}[{i}]")
    if isinstance(value, dict):
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", 10**9):
            found.append(f"{where}: wrong number of members")
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}.{key}: required")
        props = schema.get("properties", {})
        for key, item in value.items():
            if "propertyNames" in schema:
                found += problems(schema["propertyNames"], key, root, f"{where}.{key} (name)")
            if key in props:
                found += problems(props[key], item, root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{where}.{key}: unknown key")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += problems(schema["additionalProperties"], item, root, f"{where}.{key}")
    return found


SCHEMA = Mapping.json_schema()
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_the_schema_is_draft_2020_12_with_closed_objects() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["required"] == ["version"]
    assert set(SCHEMA["properties"]) == {
        "version",
        "description",
        "attributes",
        "roles",
        "deny",
        "providers",
        "issuers",
    }
    for name, definition in SCHEMA["$defs"].items():
        assert definition.get("additionalProperties") is False, name
    condition = SCHEMA["$defs"]["Condition"]["properties"]
    assert {"in", "not", "all", "any", "matches", "contains_any"} <= set(condition)
    assert '"null"' not in json.dumps(SCHEMA)  # a mapping never writes null
    assert SCHEMA["properties"]["providers"]["propertyNames"]["enum"][0] == "oidc"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_validates_against_the_schema(path: Path) -> None:
    assert problems(SCHEMA, yaml.safe_load(path.read_text()), SCHEMA) == []


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"version": 2}, "$.version: not 1"),
        ({"version": 1, "atributes": {}}, "$.atributes: unknown key"),
        ({"version": 1, "roles": {"sync": "mirror"}}, "$.roles.sync: not one of"),
        (
            {"version": 1, "attributes": {"e": {"from": "e", "transform": "lowr"}}},
            "$.attributes.e.transform: matches no",
        ),
        (
            {"version": 1, "deny": [{"code": "x", "when": {"claim": "a", "contians": 1}}]},
            "$.deny[0].when.contians: unknown",
        ),
        ({"version": 1, "providers": {"cogntio": {}}}, "$.providers.cogntio (name): not one of"),
        ({"version": 1, "attributes": {"e": {"from": None}}}, "$.attributes.e.from: matches no alternative"),
    ],
)
def test_the_schema_catches_typos(document: dict[str, Any], problem: str) -> None:
    assert any(p.startswith(problem) for p in problems(SCHEMA, document, SCHEMA)), problems(
        SCHEMA, document, SCHEMA
    )


# -- the commands --------------------------------------------------------------------------


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="federation")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.run(args, out)
    return code, out.getvalue()


def test_schema_command_prints_the_schema_and_the_committed_copy_is_current() -> None:
    code, text = run("schema", "mapping")
    assert code == 0
    assert json.loads(text) == SCHEMA
    committed = json.loads((EXAMPLES / "mapping.schema.json").read_text())
    assert committed == SCHEMA, (
        "regenerate: federation schema mapping > examples/mappings/mapping.schema.json"
    )


KEYCLOAK_CLAIMS = {
    "iss": "http://localhost:8085/realms/OSSS",
    "sub": "8befeac4-8963-49da-a9ac-f310e8d922d8",
    "typ": "Bearer",
    "azp": "osss-client",
    "realm_access": {"roles": ["uma_authorization"]},
    "resource_access": {"osss-client": {"roles": ["user"]}, "account": {"roles": ["view-profile"]}},
    "email_verified": True,
    "preferred_username": "teacher@example.org",
    "given_name": "Pat",
    "family_name": "Teacher",
    "email": "teacher@example.org",
    "groups": ["/staff"],
}


@pytest.fixture
def claims_file(tmp_path: Path) -> Path:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(KEYCLOAK_CLAIMS))
    return path


def test_map_prints_the_result_and_the_trace(claims_file: Path) -> None:
    code, text = run(
        "map",
        "--mapping",
        str(EXAMPLES / "keycloak.yaml"),
        "--claims",
        str(claims_file),
        "--provider",
        "keycloak",
    )
    assert code == EXIT_ALLOWED == 0
    lines = text.splitlines()
    assert lines[0] == f"{EXAMPLES / 'keycloak.yaml'}: allowed"
    assert '  email         "teacher@example.org"' in lines
    assert "  final    member, staff, teacher" in lines
    assert "  revoked  -" in lines
    assert any(
        line.startswith("  keycloak.yaml:")
        and "roles.rules[1]" in line
        and "granted" in line
        and "-> teacher" in line
        for line in lines
    )
    assert any("attributes.username" in line and "from $username" in line for line in lines)


def test_map_exits_1_on_deny(claims_file: Path, tmp_path: Path) -> None:
    claims_file.write_text(json.dumps({**KEYCLOAK_CLAIMS, "email_verified": False}))
    code, text = run(
        "map", "-m", str(EXAMPLES / "keycloak.yaml"), "--claims", str(claims_file), "--provider", "keycloak"
    )
    assert code == EXIT_DENIED == 1
    assert text.splitlines()[0].endswith(": DENIED (unverified_email)")
    assert "attributes to write" not in text
    assert "deny[0]" in text and "denied" in text


def test_map_json_with_an_existing_user(claims_file: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.json"
    user.write_text(
        json.dumps({"attributes": {"username": "pat", "first_name": "Patricia"}, "roles": ["owner", "old"]})
    )
    code, text = run(
        "map",
        "-m",
        str(EXAMPLES / "keycloak.yaml"),
        "--claims",
        str(claims_file),
        "--provider",
        "keycloak",
        "--existing",
        str(user),
        "--json",
    )
    assert code == 0
    data = json.loads(text)
    assert data["allowed"] is True and data["denied"] is None
    assert data["attributes"] == {
        "email": "teacher@example.org",
        "display_name": "Pat Teacher",
        "last_name": "Teacher",
    }  # username on_create, first_name if_empty: both kept
    assert data["roles"] == ["member", "owner", "staff", "teacher"]
    assert data["granted"] == ["member", "staff", "teacher"] and data["revoked"] == ["old"]
    rules = {t["rule"]: t for t in data["trace"]}
    assert rules["attributes.username"]["outcome"] == "kept"
    assert rules["roles.rules[0]"]["line"] == 23
    assert rules["roles.sync"]["line"] == 18


def test_map_reads_claims_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(KEYCLOAK_CLAIMS).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, text = run(
        "map", "-m", str(EXAMPLES / "keycloak.yaml"), "--claims", "-", "--provider", "keycloak", "--json"
    )
    assert code == 0 and "teacher" in json.loads(text)["roles"]


def test_map_with_the_bridge_config_uses_the_configured_profile(tmp_path: Path) -> None:
    config = tmp_path / "federation.yaml"
    config.write_text(
        "issuers:\n  - provider: okta\n    domain: dev-123.okta.com\n    authorization_server: default\n"
        "    client_ids: [0oaipnnzumvqt5tiu1d6]\n    audiences: [api://default]\n"
        "    groups_claim: GroupsClaim\n"
    )
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                "ver": 1,
                "iss": "https://dev-123.okta.com/oauth2/default",
                "aud": "api://default",
                "cid": "0oaipnnzumvqt5tiu1d6",
                "uid": "00uixa271s6x7qt8I0h7",
                "scp": ["openid"],
                "sub": "joe.user@example.com",
                "GroupsClaim": ["Midwest Sales", "Everyone"],
            }
        )
    )
    code, text = run(
        "map", "-m", str(EXAMPLES / "okta.yaml"), "--claims", str(claims), "--config", str(config), "--json"
    )
    data = json.loads(text)
    assert code == 0
    assert data["roles"] == ["member", "sales"]  # $groups read the configured GroupsClaim
    assert data["attributes"]["username"] == "joe.user@example.com"
    assert data["attributes"]["okta_user_id"] == "00uixa271s6x7qt8I0h7"
    # without the config, the stand-in Okta profile reads the default "groups" claim
    code, text = run(
        "map", "-m", str(EXAMPLES / "okta.yaml"), "--claims", str(claims), "--provider", "okta", "--json"
    )
    assert json.loads(text)["roles"] == ["member"]
    with pytest.raises(ConfigError, match="disagrees with the configured issuer entry"):
        run(
            "map",
            "-m",
            str(EXAMPLES / "okta.yaml"),
            "--claims",
            str(claims),
            "-c",
            str(config),
            "--provider",
            "google",
        )
    with pytest.raises(
        ConfigError, match='no configured issuer matches the claims\' iss \\("https://other"\\)'
    ):
        run(
            "map",
            "-m",
            str(EXAMPLES / "okta.yaml"),
            "--claims",
            str(claims),
            "-c",
            str(config),
            "--issuer",
            "https://other",
        )


def test_map_input_errors_are_config_errors(claims_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroles: { sync: sometimes }\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2:10: roles.sync"):
        run("map", "-m", str(bad), "--claims", str(claims_file))
    mapping_file = str(EXAMPLES / "oidc.yaml")
    for content, message in (
        ("{not json", "claims must be a JSON object"),
        ("[1, 2]", "claims must be a JSON object"),
        ('{"a": 1, "a": 2}', "claims must be a JSON object \\(duplicate member name\\)"),
        ("x" * (1024 * 1024 + 1), "claims larger than 1048576 bytes"),
    ):
        claims_file.write_text(content)
        with pytest.raises(ConfigError, match=message):
            run("map", "-m", mapping_file, "--claims", str(claims_file))
    with pytest.raises(ConfigError, match="cannot read claims"):
        run("map", "-m", mapping_file, "--claims", str(tmp_path / "missing.json"))
    claims_file.write_text("{}")
    user = tmp_path / "user.json"
    for content in ('{"roles": "admin"}', '{"attributes": [], "roles": []}', '{"name": 1}', '{"roles": [1]}'):
        user.write_text(content)
        with pytest.raises(ConfigError, match=r"user\.json: "):
            run("map", "-m", mapping_file, "--claims", str(claims_file), "--existing", str(user))


def test_map_refuses_unknown_providers() -> None:
    with pytest.raises(SystemExit) as exit_:
        run("map", "-m", "x.yaml", "--claims", "c.json", "--provider", "cogntio")
    assert exit_.value.code == 2


def test_the_main_cli_turns_config_errors_into_exit_2(tmp_path: Path, claims_file: Path) -> None:
    # How the main CLI is meant to wire these commands: run(args, out), ConfigError -> 2.
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroles: { sync: sometimes }\n")
    parser = argparse.ArgumentParser(prog="federation")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["map", "-m", str(bad), "--claims", str(claims_file)])
    try:
        code = args.run(args, io.StringIO())
    except ConfigError:
        code = 2
    assert code == 2
