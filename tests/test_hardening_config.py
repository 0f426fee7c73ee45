"""Config ergonomics (issue 10 §4): typos in ``federation.yaml`` get "did you mean",
located at file:line:col and naming the field, in our words rather than pydantic's;
and ``audit:`` is a config key that ``Bridge`` honours (an ``audit=`` argument wins).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from federation import Bridge
from federation.config import load_config
from federation.errors import ConfigError
from federation.testing import MockIdP

# What pydantic says in its own words: none of it may reach a user.
PYDANTIC_PHRASES = (
    "Extra inputs are not permitted",
    "Input should be",
    "valid dictionary",
    "instance of",
    "union_tag_invalid",
    "Input tag",
    "does not match any of the expected tags",
    "Field required",
    "Value error,",
    "List should have",
    "object to extract fields from",
)

ISSUER = """\
issuers:
  - provider: oidc
    issuer: https://idp.test
    audiences: [my-client]
    jwks_uri: https://idp.test/jwks
"""


def located_error(tmp_path: Path, text: str) -> tuple[ConfigError, Path]:
    path = tmp_path / "federation.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for phrase in PYDANTIC_PHRASES:
        assert phrase not in message, (phrase, message)
    return info.value, path


def where(text: str, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the first line whose content starts with ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" -")
        if stripped.startswith(needle):
            return number, len(line) - len(stripped) + 1
    raise AssertionError(needle)


def assert_at(err: ConfigError, path: Path, text: str, needle: str, field: str) -> None:
    line, col = where(text, needle)
    assert (err.line, err.column, err.field) == (line, col, field)
    # the first problem (the whole message when it is the only one)
    assert err.problems[0].startswith(f"{path}:{line}:{col}: {field}: "), str(err)
    assert len(err.problems) > 1 or str(err) == err.problems[0]


# -- did you mean ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "needle", "field", "suggestion"),
    [
        ("leway: 30\n", "leway:", "leway", "did you mean 'leeway'?"),
        ("provisoning:\n  create_users: false\n", "provisoning:", "provisoning", "'provisioning'"),
        ("keys:\n  tll: 60\n", "tll:", "keys.tll", "did you mean 'ttl'?"),
        ("keys:\n  refresh_cooldwn: 5\n", "refresh_cooldwn:", "keys.refresh_cooldwn", "'refresh_cooldown'"),
        ("limits:\n  max_token_byte: 4\n", "max_token_byte:", "limits.max_token_byte", "'max_token_bytes'"),
        (
            "provisioning:\n  link_by_emails: true\n",
            "link_by_emails:",
            "provisioning.link_by_emails",
            "did you mean 'link_by_email'?",
        ),
    ],
)
def test_a_misspelt_key_gets_a_suggestion(
    tmp_path: Path, extra: str, needle: str, field: str, suggestion: str
) -> None:
    text = ISSUER + extra
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, needle, field)
    assert "unknown key" in str(err) and suggestion in str(err)


def test_a_misspelt_issuer_key_gets_a_suggestion_and_no_missing_field_noise(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: oidc\n    issuer: https://idp.test\n    audience: [my-client]\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "audience:", "issuers[0].audience")
    assert "did you mean 'audiences'?" in str(err)
    # the typo explains the missing 'audiences': one problem, not two
    assert len(err.problems) == 1


def test_a_misspelt_key_of_a_provider_profile(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: cognito\n    user_pool_id: eu-west-1_AbCdEf123\n    client_id: [abc]\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "client_id:", "issuers[0].client_id")
    assert "did you mean 'client_ids'?" in str(err)


def test_a_key_of_another_provider_names_that_provider(tmp_path: Path) -> None:
    text = "issuers:\n  - user_pool_id: eu-west-1_AbCdEf123\n    client_ids: [abc]\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "user_pool_id:", "issuers[0].user_pool_id")
    assert "provider cognito" in str(err) and "provider: cognito" in str(err)


def test_a_key_cache_setting_inside_an_issuer_points_to_the_keys_section(tmp_path: Path) -> None:
    text = ISSUER + "    ttl: 60\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "ttl:", "issuers[0].ttl")
    assert "keys:" in str(err)


def test_a_top_level_setting_inside_an_issuer_points_to_the_top_level(tmp_path: Path) -> None:
    """``leeway`` is also a key of ``sessions:`` (the session tokens' own): an issuer's
    leeway is the top-level one."""
    text = ISSUER + "    leeway: 30\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "leeway:", "issuers[0].leeway")
    assert "leeway is a top-level setting, for every issuer" in str(err)
    assert "sessions" not in str(err)


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "true"])
def test_a_yaml_boolean_is_never_a_number(tmp_path: Path, word: str) -> None:
    """YAML reads yes/no/on/off as booleans, and pydantic would take them as 1 or 0."""
    for text, field in (
        (ISSUER + f"leeway: {word}\n", "leeway"),
        (ISSUER + f"keys:\n  max_keys: {word}\n", "keys.max_keys"),
        (ISSUER + f"provisioning:\n  touch_interval: {word}\n", "provisioning.touch_interval"),
    ):
        path = tmp_path / "federation.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        if word == "true":
            assert f"{field}: must be a number, not true or false" in str(caught.value)
        else:  # YAML 1.1 only: refused as written, wherever it stands (Norway's NO)
            assert f"the plain value {word!r} reads as a YAML 1.1 boolean" in str(caught.value)
            assert caught.value.line == text.count("\n")


def test_a_number_too_large_for_an_integer_is_in_our_words(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(ISSUER + "limits:\n  max_token_bytes: 1.0e+308\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "limits.max_token_bytes: must be a smaller whole number" in str(caught.value)
    assert not any(phrase in str(caught.value) for phrase in (*PYDANTIC_PHRASES, "Unable to parse"))


def test_numbers_as_numbers_and_as_text_still_load(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(ISSUER + "leeway: 30\nkeys:\n  max_keys: '7'\n  timeout: 2.5\n")
    config = load_config(path)
    assert (config.leeway, config.keys.max_keys, config.keys.timeout) == (30, 7, 2.5)


def test_an_unknown_provider_gets_a_suggestion_and_the_known_ones(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: cognitoo\n    user_pool_id: eu-west-1_AbCdEf123\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "provider:", "issuers[0].provider")
    message = str(err)
    assert "unknown provider 'cognitoo'; did you mean 'cognito'? known: " in message
    for name in ("oidc", "azure_ad", "azure_ad_b2c", "okta", "keycloak", "google", "firebase"):
        assert name in message.split("known: ", 1)[1]


def test_an_unknown_provider_far_from_any_says_which_are_known(tmp_path: Path) -> None:
    text = "issuers:\n  - provider: auth0\n    domain: x.auth0.com\n"
    err, _ = located_error(tmp_path, text)
    assert "unknown provider 'auth0'; known: " in str(err) and "did you mean" not in str(err)


@pytest.mark.parametrize(
    ("extra", "needle", "field", "words"),
    [
        ("keys: 3\n", "keys:", "keys", "must be a mapping"),
        ("leeway: abc\n", "leeway:", "leeway", "must be a number"),
        ("keys:\n  ttl: -1\n", "ttl:", "keys.ttl", "must be greater than 0"),
        ("keys:\n  timeout: 100\n", "timeout:", "keys.timeout", "must be at most 60"),
        ("mapping: 3\n", "mapping:", "mapping", "must be a string or a mapping"),
        ("storage: [a]\n", "storage:", "storage", "must be a string"),
    ],
)
def test_value_errors_are_in_our_words(
    tmp_path: Path, extra: str, needle: str, field: str, words: str
) -> None:
    text = ISSUER + extra
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, needle, field)
    assert words in str(err)


def test_wrong_shapes_of_issuers_are_in_our_words(tmp_path: Path) -> None:
    err, _ = located_error(tmp_path, "issuers: []\n")
    assert "issuers: must have at least 1 item" in str(err)
    err, _ = located_error(tmp_path, "issuers:\n  - 3\n")
    assert "issuers[0]: must be a mapping" in str(err)


def test_a_literal_value_typo_gets_a_suggestion_without_echoing_the_value(tmp_path: Path) -> None:
    text = ISSUER + "    token_types: [idd]\n"
    err, _ = located_error(tmp_path, text)
    assert "issuers[0].token_types[0]: must be 'id' or 'access' (did you mean 'id'?)" in str(err)
    assert "idd" not in str(err)


# -- audit: ---------------------------------------------------------------------------------


def test_audit_is_a_config_key(tmp_path: Path) -> None:
    assert load_config({"issuers": [{"issuer": "https://a.test", "audiences": ["x"]}]}).audit == "log"
    text = ISSUER + "audit: stor\n"
    err, path = located_error(tmp_path, text)
    assert_at(err, path, text, "audit:", "audit")
    assert "must be 'log' or 'store' (did you mean 'store'?)" in str(err)


def _config(idp: MockIdP, tmp_path: Path, audit: str | None) -> Path:
    import yaml

    data: dict[str, object] = {"issuers": [idp.issuer_config()], "storage": "sqlite:///users.db"}
    if audit is not None:
        data["audit"] = audit
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_audit_store_in_the_config_writes_the_store_audit_table(idp: MockIdP, tmp_path: Path) -> None:
    path = _config(idp, tmp_path, "store")
    with Bridge.from_file(path, http_client=idp.client(), clock=idp.clock, on_event=lambda e: None) as bridge:
        bridge.login(idp.mint(sub="u1"))
        names = [e.name for e in bridge.store.audit_tail(10)]  # type: ignore[union-attr]
    assert names == ["user_created", "login_succeeded"]


@pytest.mark.anyio
async def test_audit_store_in_the_config_async(idp: MockIdP, tmp_path: Path) -> None:
    path = _config(idp, tmp_path, "store")
    with Bridge.from_file(
        path, http_client=idp.client(), async_http_client=idp.async_client(), clock=idp.clock,
        on_event=lambda e: None,
    ) as bridge:  # fmt: skip
        await bridge.alogin(idp.mint(sub="u1"))
        names = [e.name for e in bridge.store.audit_tail(10)]  # type: ignore[union-attr]
    assert names == ["user_created", "login_succeeded"]


def test_the_audit_argument_wins_over_the_config(
    idp: MockIdP, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _config(idp, tmp_path, "store")
    with (
        caplog.at_level(logging.INFO, logger="federation.audit"),
        Bridge.from_file(
            path, http_client=idp.client(), clock=idp.clock, on_event=lambda e: None, audit="log"
        ) as bridge,
    ):
        bridge.login(idp.mint(sub="u1"))
        assert bridge.store.audit_tail(10) == []  # type: ignore[union-attr]
    assert any(getattr(r, "federation_audit", None) for r in caplog.records)


def test_audit_defaults_to_the_log(idp: MockIdP, tmp_path: Path) -> None:
    path = _config(idp, tmp_path, None)
    with Bridge.from_file(path, http_client=idp.client(), clock=idp.clock, on_event=lambda e: None) as bridge:
        bridge.login(idp.mint(sub="u1"))
        assert bridge.store.audit_tail(10) == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "entry",
    [
        {"provider": "oidc", "issuer": "https://idp.example.com/" + "r" * 1001, "audiences": ["a"]},
        {
            "provider": "keycloak",
            "base_url": "https://kc.example.com",
            "realm": "r" * 1001,
            "client_ids": ["a"],
        },
    ],
    ids=["oidc", "keycloak"],
)
def test_an_issuer_longer_than_the_store_holds_is_refused_at_load(entry: dict[str, object]) -> None:
    """1025 characters passed on SQLite and failed every login on PostgreSQL (its identity
    column), as a storage error no retry mends, with no audit row either."""
    with pytest.raises(ConfigError, match="an issuer is at most 1024 characters"):
        load_config({"issuers": [entry]})
    fitting = {**entry}
    key = "issuer" if "issuer" in entry else "realm"
    fitting[key] = str(entry[key])[:900]
    assert load_config({"issuers": [fitting]}).issuers


def _chain(exc: BaseException) -> str:
    """Everything an error handler could format: the error and what it was raised from or in."""
    seen, parts, todo = set(), [], [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        parts.append(f"{item!s} {item!r} {item.args!r}")
        todo += [item.__cause__, item.__context__]  # type: ignore[list-item]
    return "\n".join(parts)


SECRET = "MKR-secret-0123456789abcdef0123456789"


@pytest.mark.parametrize(
    "text",
    [
        ISSUER + f"web:\n  admin_key: *{SECRET}\n",  # an undefined alias: PyYAML quoted its name
        ISSUER + f'sessions:\n  secret: "{SECRET}\n',  # unterminated: PyYAML's snippet showed the line
        ISSUER + f"sessions:\n  issuer: https://app.test\n  secret: {SECRET}\n",  # pydantic quoted it
        ISSUER + f"web:\n  public_url: https://app.test\n  registration_kee: {SECRET}\n",
    ],
    ids=["alias", "syntax", "literal-secret", "misspelt-key"],
)
def test_a_config_error_holds_no_secret_anywhere_in_its_chain(tmp_path: Path, text: str) -> None:
    """The message was clean, but __context__ (raise ... from None keeps it) held pydantic's or
    PyYAML's error, which quotes input values: any handler formatting it printed the secret."""
    path = tmp_path / "federation.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert SECRET not in _chain(caught.value)
    assert SECRET[:12] not in _chain(caught.value)
