"""Loading ``federation.yaml``: what is accepted, the documented defaults, and
``ConfigError`` pointing at the exact file, line, column and field of each
problem without echoing configured values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation import Bridge, BridgeConfig
from federation.config import load_config
from federation.errors import ConfigError, FederationError

ISSUER = """\
issuers:
  - provider: oidc
    issuer: https://idp.test
    audiences: [my-client]
    jwks_uri: https://idp.test/jwks
"""


def entry(**fields: Any) -> dict[str, Any]:
    """One issuer entry for ``from_dict``/``load_config``."""
    return {"provider": "oidc", "issuer": "https://idp.test", "audiences": ["c"], **fields}


def write(tmp_path: Path, text: str, name: str = "federation.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the ``occurrence``-th line whose content starts with ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" -")
        if stripped.startswith(needle):
            seen += 1
            if seen == occurrence:
                return number, len(line) - len(stripped) + 1
    raise AssertionError(f"{needle!r} not in the test's YAML")


def load_error(tmp_path: Path, text: str) -> tuple[ConfigError, Path]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Bridge.from_file(path)
    err = info.value
    assert err.code == "config_error"
    assert isinstance(err, FederationError)
    return err, path


def assert_points_at(
    err: ConfigError, path: Path, text: str, needle: str, field: str, occurrence: int = 1
) -> None:
    line, column = position(text, needle, occurrence)
    assert err.file == str(path)
    assert err.field == field
    assert (err.line, err.column) == (line, column), f"expected {line}:{column}, got {err.line}:{err.column}"
    assert f"{path}:{line}:{column}" in str(err)
    assert field in str(err)


# -- good files -------------------------------------------------------------------------------------


def test_a_complete_file_loads(tmp_path: Path) -> None:
    text = (
        ISSUER
        + """\
    algorithms: [RS256, ES256]
    token_types: [id]
  - provider: oidc
    issuer: https://other.test
    audiences: [a, b]
keys:
  ttl: 300
  min_ttl: 30
  refresh_cooldown: 10
  allow_loopback_http: false
limits:
  max_audiences: 5
leeway: 15
"""
    )
    bridge = Bridge.from_file(write(tmp_path, text))
    try:
        cfg = bridge.config
        assert bridge.issuers == ("https://idp.test", "https://other.test")
        assert list(cfg.issuers[0].algorithms) == ["RS256", "ES256"]
        assert list(cfg.issuers[0].token_types) == ["id"]
        assert cfg.issuers[1].jwks_uri is None  # OIDC discovery
        assert (cfg.keys.ttl, cfg.keys.min_ttl, cfg.keys.refresh_cooldown) == (300, 30, 10)
        assert cfg.limits.max_audiences == 5
        assert cfg.leeway == 15
    finally:
        bridge.close()


def test_from_file_accepts_a_str_path(tmp_path: Path) -> None:
    bridge = Bridge.from_file(str(write(tmp_path, ISSUER)))
    assert bridge.issuers == ("https://idp.test",)
    bridge.close()


@pytest.mark.parametrize(
    "source", [None, 5, ["issuers"], b"federation.yaml"], ids=["none", "int", "list", "bytes"]
)
def test_a_config_that_is_neither_a_mapping_nor_a_path_is_a_config_error(source: Any) -> None:
    """from_dict(None) raised os.fspath's TypeError, which spoke of a path."""
    for load in (Bridge.from_dict, Bridge.from_file, load_config):
        with pytest.raises(ConfigError, match=f"mapping or a file path, not {type(source).__name__}$"):
            load(source)


def test_documented_defaults() -> None:
    cfg = load_config({"issuers": [entry()]})
    assert isinstance(cfg, BridgeConfig)
    keys = cfg.keys
    assert keys.ttl == 600
    assert keys.min_ttl == 60
    assert keys.max_ttl == 86400
    assert keys.refresh_cooldown == 30
    assert keys.max_stale == 86400
    assert keys.unknown_kid_ttl == 60
    assert keys.timeout == 5
    assert keys.max_response_bytes == 262144
    assert keys.max_keys == 100
    assert keys.allow_loopback_http is False
    limits = cfg.limits
    assert (limits.max_token_bytes, limits.max_header_bytes) == (32768, 4096)
    assert (limits.max_json_depth, limits.max_claims, limits.max_audiences) == (32, 500, 50)
    assert cfg.leeway == 60
    issuer = cfg.issuers[0]
    assert issuer.provider == "oidc"
    assert set(issuer.token_types) == {"id", "access"}
    assert set(issuer.algorithms) == {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519",
    }  # fmt: skip


def test_config_is_immutable() -> None:
    cfg = load_config({"issuers": [entry()]})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        cfg.leeway = 0  # type: ignore[misc]
    with pytest.raises(Exception):  # noqa: B017
        cfg.keys.ttl = 1  # type: ignore[misc]


# -- located errors ---------------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = ISSUER + "leeway: 30\nbogus: 1\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "bogus:", "bogus")
    assert "unknown key" in str(err)


def test_unknown_key_inside_an_issuer(tmp_path: Path) -> None:
    text = ISSUER + "    algorithmz: [RS256]\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "algorithmz:", "issuers[0].algorithmz")
    assert "unknown key" in str(err)


def test_unknown_key_inside_the_second_issuer(tmp_path: Path) -> None:
    text = ISSUER + "  - provider: oidc\n    issuer: https://b.test\n    audiences: [x]\n"
    text += "    jwks_url: https://b.test/jwks\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "jwks_url:", "issuers[1].jwks_url")


def test_unknown_key_inside_keys(tmp_path: Path) -> None:
    text = ISSUER + "keys:\n  ttl: 60\n  tll: 60\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "tll:", "keys.tll")


def test_a_secret_written_into_the_config_says_where_it_goes(tmp_path: Path) -> None:
    text = ISSUER + "    login:\n      client_id: app\n      client_secret: s3cr3t-value\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "client_secret:", "issuers[0].login.client_secret")
    assert "{env: VARIABLE} or {file: path}" in str(err)
    assert "s3cr3t-value" not in str(err)


def test_wrong_type(tmp_path: Path) -> None:
    text = ISSUER + "leeway: abc\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "leeway:", "leeway")
    assert "abc" not in str(err)


def test_wrong_type_nested(tmp_path: Path) -> None:
    text = ISSUER + "keys:\n  ttl: 600\n  timeout: soon\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "timeout:", "keys.timeout")


def test_out_of_range_leeway(tmp_path: Path) -> None:
    text = ISSUER + "leeway: 301\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "leeway:", "leeway")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "none", "None", "NONE"])
def test_symmetric_and_none_algorithms_are_refused(tmp_path: Path, alg: str) -> None:
    text = ISSUER + f"    algorithms: [RS256, {alg}]\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "algorithms:", "issuers[0].algorithms")


def test_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    text = ISSUER + "    algorithms: [RS256, ES256K]\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "algorithms:", "issuers[0].algorithms")


@pytest.mark.parametrize(
    "value", ["[]", '[""]', "[my-client, '']"], ids=["empty", "empty-string", "one-empty"]
)
def test_empty_audiences_are_refused(tmp_path: Path, value: str) -> None:
    text = ISSUER.replace("[my-client]", value)
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "audiences:", "issuers[0].audiences")


def test_missing_audiences_names_the_field(tmp_path: Path) -> None:
    text = ISSUER.replace("    audiences: [my-client]\n", "")
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert err.field == "issuers[0].audiences"
    assert err.line is not None and 2 <= err.line <= 4  # the issuer entry that lacks it


def test_empty_issuer_list_is_refused(tmp_path: Path) -> None:
    text = "issuers: []\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "issuers:", "issuers")


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    text = ISSUER + "leeway: 10\nleeway: 300\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "leeway:", "leeway", occurrence=2)
    assert "duplicate" in str(err)


def test_duplicate_key_inside_an_issuer(tmp_path: Path) -> None:
    text = ISSUER + "    jwks_uri: https://evil.test/jwks\n"
    err, path = load_error(tmp_path, text)
    assert "duplicate" in str(err)
    assert "evil.test" not in str(err)
    # Same field notation as every other error: the full path, not the bare key.
    assert_points_at(err, path, text, "jwks_uri:", "issuers[0].jwks_uri", occurrence=2)


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    text = ISSUER + "leeway: @60\n"
    err, path = load_error(tmp_path, text)
    line, _ = position(text, "leeway:")
    assert err.file == str(path)
    assert err.line == line
    assert err.column == len("leeway: ") + 1  # the '@'
    assert f"{path}:{line}:" in str(err)
    assert "invalid YAML" in str(err)


def test_invalid_yaml_indentation(tmp_path: Path) -> None:
    text = ISSUER + "keys:\n  ttl: 60\n   min_ttl: 30\n"
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert err.line == position(text, "min_ttl:")[0]


def test_yaml_tags_that_build_objects_are_refused(tmp_path: Path) -> None:
    text = ISSUER + "leeway: !!python/object/apply:os.system ['true']\n"
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert err.line == position(text, "leeway:")[0]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"], ids=["empty", "list", "scalar"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert "mapping" in str(err)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        Bridge.from_file(path)
    err = info.value
    assert err.file == str(path)
    assert (err.line, err.column) == (None, None)
    assert str(path) in str(err)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Bridge.from_file(tmp_path)
    assert info.value.file == str(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(ISSUER.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        Bridge.from_file(path)
    assert info.value.file == str(path)


# -- URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://idp.test/jwks", False),
        ("http://idp.test/jwks", True),  # the flag is for loopback hosts only
        ("http://127.0.0.1:8080/jwks", False),  # loopback, but the flag is off
        ("http://localhost/jwks", False),
        ("http://10.0.0.5/jwks", True),  # private is not loopback
        ("http://127.0.0.1.nip.io/jwks", True),  # a name that resolves to loopback is not loopback
        ("ftp://idp.test/jwks", True),
        ("file:///etc/jwks.json", True),
        ("https:///jwks", False),  # no host
        ("idp.test/jwks", False),  # no scheme
    ],
)
def test_jwks_uri_must_be_https(tmp_path: Path, url: str, allow: bool) -> None:
    text = (
        ISSUER.replace("https://idp.test/jwks", url) + f"keys:\n  allow_loopback_http: {str(allow).lower()}\n"
    )
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert "https" in str(err)


@pytest.mark.parametrize(
    "url",
    [
        "https://exa mple.test/jwks",  # a space in the host
        " https://idp.test/jwks",  # urlsplit strips it; the fetch would not
        "https://idp.test/jw\tks",
        "https://idp.test:abc/jwks",  # a port that is not a number
        "https://idp.test:99999/jwks",  # past the last port
        "https://id<p>.test/jwks",
    ],
)
def test_a_jwks_uri_that_is_not_well_formed_is_refused_at_load(tmp_path: Path, url: str) -> None:
    """They loaded, and failed only at the first fetch as a transport error."""
    err, path = load_error(tmp_path, ISSUER.replace("https://idp.test/jwks", json.dumps(url)))
    assert err.file == str(path)
    assert "not a well-formed URL" in str(err)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/jwks",
        "http://localhost:8080/jwks",
        "http://[::1]:8080/jwks",
        "http://127.9.9.9/",
    ],
)
def test_loopback_http_is_allowed_with_the_flag(tmp_path: Path, url: str) -> None:
    text = ISSUER.replace("https://idp.test/jwks", url) + "keys:\n  allow_loopback_http: true\n"
    bridge = Bridge.from_file(write(tmp_path, text))
    assert bridge.config.issuers[0].jwks_uri == url
    bridge.close()


def test_http_discovery_is_refused(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: oidc\n    issuer: http://idp.test\n    audiences: [my-client]\n"
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert "https" in str(err)


def test_loopback_http_discovery_is_allowed_with_the_flag(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: oidc\n    issuer: http://127.0.0.1:9000\n    audiences: [c]\n"
    text += "keys:\n  allow_loopback_http: true\n"
    bridge = Bridge.from_file(write(tmp_path, text))
    assert bridge.issuers == ("http://127.0.0.1:9000",)
    bridge.close()


def test_refused_jwks_uri_error_points_at_the_jwks_uri(tmp_path: Path) -> None:
    text = ISSUER.replace("https://idp.test/jwks", "http://idp.test/jwks")
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "jwks_uri:", "issuers[0].jwks_uri")


def test_refused_jwks_uri_of_the_second_issuer_points_at_it(tmp_path: Path) -> None:
    text = ISSUER + "  - provider: oidc\n    issuer: https://b.test\n    audiences: [x]\n"
    text += "    jwks_uri: http://b.test/jwks\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "jwks_uri:", "issuers[1].jwks_uri", occurrence=2)


def test_discovery_issuer_must_be_a_url_without_jwks_uri(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: oidc\n    issuer: my-idp\n    audiences: [c]\n"
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert err.field is not None and err.field.startswith("issuers[0]")


# -- relations between fields -----------------------------------------------------------------------


def test_issuer_configured_twice_is_refused(tmp_path: Path) -> None:
    text = ISSUER + "  - provider: oidc\n    issuer: https://idp.test\n    audiences: [other]\n"
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert "twice" in str(err)


def test_issuer_configured_twice_points_at_the_second_entry(tmp_path: Path) -> None:
    text = ISSUER + "  - provider: oidc\n    issuer: https://idp.test\n    audiences: [other]\n"
    err, path = load_error(tmp_path, text)
    assert_points_at(err, path, text, "issuer:", "issuers[1].issuer", occurrence=2)


def test_min_ttl_above_ttl_is_refused(tmp_path: Path) -> None:
    text = ISSUER + "keys:\n  ttl: 30\n  min_ttl: 60\n"
    err, path = load_error(tmp_path, text)
    assert err.file == str(path)
    assert err.field is not None and err.field.startswith("keys")
    assert "min_ttl" in str(err)


def test_min_ttl_above_ttl_points_at_the_offending_line(tmp_path: Path) -> None:
    text = ISSUER + "keys:\n  ttl: 30\n  min_ttl: 60\n"
    err, path = load_error(tmp_path, text)
    assert err.field in ("keys.min_ttl", "keys.ttl")
    name = err.field.split(".")[-1] + ":"
    assert_points_at(err, path, text, name, err.field)


def test_ttl_above_max_ttl_is_refused(tmp_path: Path) -> None:
    err, _ = load_error(tmp_path, ISSUER + "keys:\n  ttl: 90000\n")
    assert err.field is not None and err.field.startswith("keys")


# -- several problems, dicts, secrets ---------------------------------------------------------------


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = ISSUER + "    algorithms: [HS256]\nleeway: abc\nbogus: 1\n"
    err, path = load_error(tmp_path, text)
    assert len(err.problems) == 3
    for needle, field in (
        ("algorithms:", "issuers[0].algorithms"),
        ("leeway:", "leeway"),
        ("bogus:", "bogus"),
    ):
        line, column = position(text, needle)
        located = [p for p in err.problems if f"{path}:{line}:{column}: {field}:" in p]
        assert len(located) == 1, (field, err.problems)
        assert located[0] in str(err)
    # The first problem in file order is the one the attributes point at.
    assert (err.field, err.line) == ("issuers[0].algorithms", position(text, "algorithms:")[0])


def test_from_dict_errors_name_the_field() -> None:
    data: dict[str, Any] = {"issuers": [entry(audiences=[])], "leeway": 30}
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict(data)
    err = info.value
    assert err.field == "issuers[0].audiences"
    assert err.file is None
    assert (err.line, err.column) == (None, None)
    assert "issuers[0].audiences" in str(err)


def test_from_dict_unknown_key_and_wrong_type() -> None:
    data: dict[str, Any] = {
        "issuers": [entry(audience="c")],
        "keys": {"ttl": "ten minutes"},
    }
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict(data)
    fields = " ".join(info.value.problems)
    assert "issuers[0].audience" in fields
    assert "keys.ttl" in fields
    assert len(info.value.problems) == 2


def test_from_dict_requires_issuers() -> None:
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict({})
    assert info.value.field == "issuers"


SECRET = "s3cr3t-Xq7-value"


@pytest.mark.parametrize(
    "extra",
    [
        f"leeway: {SECRET}\n",
        f"keys:\n  timeout: {SECRET}\n",
        f"keys:\n  allow_loopback_http: {SECRET}\n",
        f"limits:\n  max_claims: {SECRET}\n",
        f"client_secret: {SECRET}\n",
        f"keys:\n  client_secret: {SECRET}\n",
    ],
    ids=["leeway", "keys.timeout", "keys.bool", "limits", "unknown-top", "unknown-nested"],
)
def test_values_are_never_echoed(tmp_path: Path, extra: str) -> None:
    err, _ = load_error(tmp_path, ISSUER + extra)
    assert SECRET not in str(err)
    assert all(SECRET not in p for p in err.problems)
    assert SECRET not in repr(err)


def test_values_are_never_echoed_from_dicts() -> None:
    data = {
        "issuers": [entry(client_secret=SECRET)],
        "leeway": SECRET,
    }
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict(data)
    assert SECRET not in str(info.value)
    assert len(info.value.problems) == 2
