"""Hostile mapping input: every refusal is a located :class:`ConfigError`, never an
untyped exception, and never a load whose work grows faster than the document.

* Alias bombs: the YAML reader shares one object per anchor, so a 500-byte file can
  stand for 9**12 values; the mapping loader used to walk that expansion (9x the time
  per anchor level: 397 bytes took 13 s). The work is measured here as a count of
  Python calls under a budget that aborts the load, not as time: the old loader
  exhausts the budget, the new one refuses the file using a tiny fraction of it.
* Character-class ranges that start with a category (``[\\d-z]``) escaped as
  ``re.error``.
* RE2's own messages (bytes) and its stderr log lines leaked through.
* Deep data handed to ``from_dict`` raised RecursionError.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from federation import Bridge
from federation.config import load_config
from federation.errors import ConfigError
from federation.mapping import Mapping

# The loader's bounds (federation.mapping._load), written out so that this file also
# runs, and fails on behaviour, against a loader that does not have them.
MAX_VALUES = 100_000
MAX_NESTING = 64

#: Python calls (generator resumptions included) a load may make. Loading a whole
#: realistic mapping takes far fewer; walking a bomb's expansion takes far more.
CALL_BUDGET = 1_000_000

ISSUER = {
    "provider": "oidc",
    "issuer": "https://idp.example.com",
    "audiences": ["my-client"],
    "jwks_uri": "https://idp.example.com/jwks",
}


class _OverBudget(Exception):
    """Raised inside the load when it has made more calls than the budget allows."""


@contextmanager
def call_budget(limit: int = CALL_BUDGET) -> Iterator[list[int]]:
    """Count Python calls in the block; abort it with :class:`_OverBudget` past ``limit``."""
    count = [0]

    def tracer(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            count[0] += 1
            if count[0] > limit:
                raise _OverBudget(f"more than {limit} calls")
        # None: no per-line tracing inside the frame, only the next call is seen

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield count
    finally:
        sys.settrace(previous)


def list_bomb(levels: int, indent: str = "") -> str:
    """Anchors ``a0..a{levels-1}``, each a list of nine uses of the previous one."""
    lines = [f'{indent}a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"{indent}a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def condition_bomb(levels: int) -> str:
    """A deny rule whose condition is a schema-valid tree of nine-way ``all:`` nodes."""
    refs = [f"&c{i} {{all: [" + ",".join([f"*c{i - 1}"] * 9) + "]}" for i in range(1, levels)]
    return (
        "version: 1\ndeny:\n  - code: c\n"
        '    when: {all: [&c0 {claim: x, matches: "^a+$"}, ' + ", ".join(refs) + "]}\n"
    )


def load_within_budget(load: Callable[[], object]) -> tuple[ConfigError, int]:
    with call_budget() as calls, pytest.raises(ConfigError) as err:
        load()
    return err.value, calls[0]


# -- 1. alias bombs ---------------------------------------------------------------------


def test_alias_bomb_in_a_mapping_file_is_refused_with_bounded_work(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("version: 1\n" + list_bomb(12))  # 537 bytes, 9**12 values expanded
    err, calls = load_within_budget(lambda: Mapping.from_file(path))
    assert f"more than {MAX_VALUES} values once YAML aliases are expanded" in str(err)
    # The smallest anchor too big to expand is blamed, at its line.
    assert str(err).startswith(f"{path}:7:1: a5: ")
    assert (err.file, err.line, err.column, err.field) == (str(path), 7, 1, "a5")
    assert calls < CALL_BUDGET // 10


def test_alias_bomb_in_schema_valid_conditions_is_refused_before_validation() -> None:
    """Nested ``all:`` conditions are validated by pydantic once per reference: the
    bound has to apply before validation, not only to the null check. The bound counts
    expanded values, so a bomb small enough to expand within it still loads."""
    small = Mapping.from_yaml(condition_bomb(4))  # 9**3 leaves
    assert small.apply_claims({"x": "aa"}).denied == "c"
    assert small.apply_claims({"x": "ab"}).denied is None
    err, calls = load_within_budget(lambda: Mapping.from_yaml(condition_bomb(9), file="m.yaml"))
    assert "deny[0].when.all[5].all: more than" in str(err)
    assert err.line == 4
    assert calls < CALL_BUDGET // 10


def test_alias_bomb_inline_in_the_bridge_config_is_refused_with_bounded_work(tmp_path: Path) -> None:
    """What ``federation check-config`` does with an inline ``mapping:``."""
    path = tmp_path / "federation.yaml"
    bomb = list_bomb(12, indent="  ")
    path.write_text(
        "issuers:\n  - provider: oidc\n    issuer: https://idp.example.com\n"
        "    audiences: [my-client]\n    jwks_uri: https://idp.example.com/jwks\n"
        "mapping:\n  version: 1\n" + bomb
    )

    def load() -> None:
        config = load_config(path)
        assert config.mapping is not None
        Mapping.from_config(config.mapping, config.base_dir)

    err, calls = load_within_budget(load)
    assert "a5: more than" in str(err)
    assert calls < CALL_BUDGET // 10


# -- 2. character-class ranges -----------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"[\d-z]", r"[\s-\w]", r"[\W-a]", r"[a\D-z]", r"(?i)[x\S-y]"])
def test_a_range_from_a_category_is_a_located_config_error(pattern: str) -> None:
    text = f"version: 1\ndeny:\n  - when: {{claim: x, matches: '{pattern}'}}\n    code: c\n"
    with pytest.raises(ConfigError) as err:
        Mapping.from_yaml(text, file="m.yaml")
    assert str(err.value).startswith(
        "m.yaml:3:22: deny[0].when.matches: invalid regular expression: bad character range"
    )
    assert (err.value.line, err.value.column, err.value.field) == (3, 22, "deny[0].when.matches")


def test_a_range_from_a_category_in_replace_is_a_config_error() -> None:
    data = {
        "version": 1,
        "attributes": {
            "u": {"from": "sub", "transform": [{"replace": {"pattern": r"[\w-]+[\d-z]", "with": ""}}]}
        },
    }
    with pytest.raises(
        ConfigError, match=r"attributes\.u\.transform\[0\]: replace\.pattern: .*bad character range"
    ):
        Mapping.from_dict(data)


# -- 3. what RE2 says ---------------------------------------------------------------------


def test_re2_refusal_is_text_not_a_bytes_repr() -> None:
    with pytest.raises(ConfigError) as err:
        Mapping.from_dict(
            {"version": 1, "deny": [{"when": {"claim": "x", "matches": r"(\w{100}){10}"}, "code": "c"}]}
        )
    assert "pattern too large to compile (pattern too large - compile failed)" in str(err.value)
    assert "b'" not in str(err.value)


def test_nested_repeats_past_re2s_limit_are_refused_by_us_and_re2_logs_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    text = 'version: 1\ndeny:\n  - when: {claim: x, matches: "((((a{100}){100}){100}){100})"}\n    code: c\n'
    with pytest.raises(ConfigError) as err:
        Mapping.from_yaml(text, file="m.yaml")
    assert "m.yaml:3:22: deny[0].when.matches: invalid regular expression: pattern too large: " in str(
        err.value
    )
    assert "nested repeat counts multiply to more than 1000" in str(err.value)
    assert capfd.readouterr().err == ""  # RE2 writes its errors to fd 2 unless told not to
    # RE2's limit is on the product, and a product of exactly 1000 is within it.
    mapping = Mapping.from_dict(
        {"version": 1, "deny": [{"when": {"claim": "x", "matches": "^((a{10}){10}){10}$"}, "code": "c"}]}
    )
    assert mapping.apply_claims({"x": "a" * 1000}).denied == "c"
    assert mapping.apply_claims({"x": "a" * 999}).denied is None


# -- 4. deep and cyclic data ----------------------------------------------------------------


def nested_dict(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("deep", [nested_dict(3000), nested_list(3000)], ids=["dict", "list"])
def test_deep_data_in_from_dict_is_a_config_error(deep: Any) -> None:
    with pytest.raises(ConfigError) as err:
        Mapping.from_dict({"version": 1, "x": deep})
    assert f"nested more than {MAX_NESTING} levels deep" in str(err.value)
    assert str(err.value).startswith("<dict>: x")


def test_deep_inline_mapping_in_bridge_from_dict_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=f"nested more than {MAX_NESTING} levels deep"):
        Bridge.from_dict({"issuers": [ISSUER], "mapping": {"version": 1, "x": nested_dict(100_000)}})


def test_deep_yaml_gets_the_same_limit() -> None:
    text = "version: 1\ndescription: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(ConfigError) as err:
        Mapping.from_yaml(text, file="m.yaml")
    assert f"nested more than {MAX_NESTING} levels deep" in str(err.value)
    assert err.value.line == 2


def test_cyclic_data_in_from_dict_is_a_config_error() -> None:
    cyclic: dict[str, Any] = {"all": []}
    cyclic["all"].append(cyclic)
    data = {"version": 1, "deny": [{"when": cyclic, "code": "c"}]}
    with pytest.raises(ConfigError, match=r"deny\[0\]\.when\.all\[0\]: the data contains itself"):
        Mapping.from_dict(data)
