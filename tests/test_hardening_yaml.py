"""YAML merge keys (issue 10 §3): ``<<`` is refused in the bridge config and in mapping
files, before PyYAML expands anything.

PyYAML expands merges (``flatten_mapping``) before our node budget sees a node, and a
merge of a merge of a merge grows exponentially: a 495-byte config took 64 s and 249 MB
on PyYAML 6.0.3. The bombs below are loaded in a subprocess with a timeout so that a
regression fails instead of hanging the suite; what is asserted is the refusal itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from federation._yaml import load_yaml
from federation.config import load_config
from federation.errors import ConfigError
from federation.mapping import Mapping


def merge_bomb(levels: int = 13, fan: int = 4) -> str:
    """A chain of anchors, each merging the previous one ``fan`` times, merged into the
    document itself (about 500 bytes; 2 * fan ** (levels - 1) key pairs once expanded)."""
    lines = ["x0: &x0 {a: 1, b: 2}"]
    for i in range(1, levels):
        refs = ", ".join([f"*x{i - 1}"] * fan)
        lines.append(f"x{i}: &x{i} {{<<: [{refs}]}}")
    lines.append(f"<<: *x{levels - 1}")
    return "\n".join(lines) + "\n"


# PyYAML up to 6.0.3 copies every merged pair (6.0.4 drops repeated keys while merging):
# the runner can put that expansion back, so the refusal is shown for every version the
# project allows (PyYAML>=6.0), whichever one is installed.
_LEGACY_FLATTEN = """
def flatten_mapping(self, node):
    merge = []
    index = 0
    while index < len(node.value):
        key_node, value_node = node.value[index]
        if key_node.tag == "tag:yaml.org,2002:merge":
            del node.value[index]
            if isinstance(value_node, yaml.MappingNode):
                self.flatten_mapping(value_node)
                merge.extend(value_node.value)
            elif isinstance(value_node, yaml.SequenceNode):
                submerge = []
                for subnode in value_node.value:
                    self.flatten_mapping(subnode)
                    submerge.append(subnode.value)
                submerge.reverse()
                for value in submerge:
                    merge.extend(value)
        elif key_node.tag == "tag:yaml.org,2002:value":
            key_node.tag = "tag:yaml.org,2002:str"
            index += 1
        else:
            index += 1
    if merge:
        node.value = merge + node.value
yaml.SafeLoader.flatten_mapping = flatten_mapping
"""

_RUNNER = textwrap.dedent(
    """
    import json, sys
    import yaml
    from federation.errors import ConfigError
    kind, path, legacy = sys.argv[1], sys.argv[2], sys.argv[3]
    if legacy == "1":
        exec(sys.argv[4])
    try:
        if kind == "config":
            from federation.config import load_config
            load_config(path)
        else:
            from federation.mapping import Mapping
            Mapping.from_file(path)
    except ConfigError as exc:
        print(json.dumps({"message": str(exc), "line": exc.line, "file": exc.file}))
    else:
        print(json.dumps({"message": None}))
    """
)


def _load_in_subprocess(kind: str, path: Path, legacy: bool) -> dict[str, object]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, kind, str(path), "1" if legacy else "0", _LEGACY_FLATTEN],
            capture_output=True,
            text=True,
            timeout=60,  # a bound on a regression, not a speed assertion
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the merge-key bomb was expanded instead of refused (load did not finish)")
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("legacy", [False, True], ids=["installed-pyyaml", "pyyaml-6.0.3-merging"])
@pytest.mark.parametrize("kind", ["config", "mapping"])
def test_a_merge_key_bomb_is_refused_naming_the_merge_key(tmp_path: Path, kind: str, legacy: bool) -> None:
    text = merge_bomb()
    assert len(text.encode()) < 600
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text, encoding="utf-8")
    result = _load_in_subprocess(kind, path, legacy)
    message = result["message"]
    assert isinstance(message, str), result
    assert "'<<'" in message and "merge key" in message
    assert result["file"] == str(path) and result["line"] == 14  # the document's own merge
    assert message.startswith(f"{path}:14:")


def test_no_merge_is_expanded_before_the_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: PyYAML's merge expansion is never handed a mapping with a merge key."""
    seen: list[int] = []
    original = yaml.SafeLoader.flatten_mapping

    def watching(self: yaml.SafeLoader, node: yaml.MappingNode) -> None:
        if any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value):
            seen.append(node.start_mark.line + 1)
        original(self, node)

    monkeypatch.setattr(yaml.SafeLoader, "flatten_mapping", watching)
    with pytest.raises(ConfigError, match="merge key"):
        load_yaml(merge_bomb(levels=4, fan=2), "bomb.yaml")
    assert seen == []


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("base: &b {provider: oidc}\nissuers:\n  - <<: *b\n    issuer: https://x\n", 3),
        ("a: {x: 1}\nb:\n  c:\n    <<: [{y: 2}]\n", 4),
        ("<<: {issuers: []}\n", 1),
    ],
)
def test_any_merge_key_is_refused_with_file_and_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(text, "federation.yaml")
    exc = info.value
    assert exc.file == "federation.yaml" and exc.line == line
    assert str(exc).startswith(f"federation.yaml:{line}:")
    assert "'<<'" in str(exc) and "write the keys out" in str(exc)


def test_a_merge_key_in_a_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(
        "defaults: &d\n  provider: oidc\n  audiences: [app]\n"
        "issuers:\n  - <<: *d\n    issuer: https://idp.example.com\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"federation\.yaml:5:.*merge key"):
        load_config(path)


def test_a_merge_key_in_a_mapping_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("base: &b {x: 1}\nattributes:\n  <<: *b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mapping\.yaml:3:.*merge key"):
        Mapping.from_file(path)


def test_a_quoted_double_angle_key_is_an_ordinary_key() -> None:
    """Only the plain ``<<`` is YAML's merge key; a quoted one is just a string."""
    assert load_yaml("'<<': 1\nb: 2\n").data == {"<<": 1, "b": 2}


def test_aliases_without_merges_still_work() -> None:
    located = load_yaml("a: &x [1, 2]\nb: *x\n")
    assert located.data == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize(
    "plain", ["NO", "no", "Yes", "on", "OFF", "017", "-017", "00", "1_000", "1:30", "0b101", "1e5", "007.5"]
)
def test_a_plain_value_yaml_11_and_12_read_differently_is_refused_where_it_stands(plain: str) -> None:
    """PyYAML reads YAML 1.1: 'NO' is false (a deny rule on a country code never fires),
    '017' is 15, '1:30' is 90, while '1e5' stays a string that YAML 1.2 reads as a number."""
    with pytest.raises(ConfigError) as caught:
        load_yaml(f"a: 1\nb: {plain}\n", "f.yaml")
    assert (caught.value.line, caught.value.column) == (2, 4)
    assert repr(plain) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("False", False),
        ("0", 0),
        ("17", 17),
        ("-0.5", -0.5),
        ("1.0e+5", 1.0e5),
        ("'NO'", "NO"),
        ('"017"', "017"),
        ("y", "y"),
        ("0x1F", 31),
    ],
)
def test_plain_values_both_yamls_agree_on_are_read(text: str, value: object) -> None:
    assert load_yaml(f"b: {text}\n").data == {"b": value}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("b: 1" + "0" * 5000, "a number with too many digits"),  # past sys.get_int_max_str_digits
        ("? 1" + "0" * 5000 + "\n: 1", "a number with too many digits"),
        ("b: -1" + "0" * 5000, "a number with too many digits"),
        ("b: 2026-02-30", "a date that does not exist"),
        ("b: 2026-13-01 10:00:00", "a date that does not exist"),
    ],
    ids=["long-int", "long-int-key", "long-negative", "february-30", "month-13"],
)
def test_a_scalar_python_cannot_construct_is_a_config_error_where_it_stands(text: str, why: str) -> None:
    """PyYAML's ValueError escaped: the command line's 'unexpected error (ValueError)', exit 70."""
    for source in (
        lambda: load_yaml(f"a: 1\n{text}\n", "f.yaml"),
        lambda: Mapping.from_yaml(f"version: 1\n{text}\n"),
    ):
        with pytest.raises(ConfigError) as caught:
            source()
        assert caught.value.line == 2 and why in str(caught.value)


def test_a_document_of_too_many_nodes_is_refused_where_the_budget_ran_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node budget was counted after PyYAML's pure-Python parser had read the whole
    document (about a minute for a megabyte-long flow list); it now stops the parse there."""
    from federation import _yaml

    monkeypatch.setattr(_yaml, "_MAX_NODES", 1000)  # the same rule at a size a test can afford
    items = _yaml._MAX_NODES * 3
    with pytest.raises(ConfigError, match="the document has too many nodes") as caught:
        load_yaml("x:\n" + "- 1\n" * items, "big.yaml")
    assert caught.value.line is not None and caught.value.line <= _yaml._MAX_NODES + 1  # not the end
    flow = "x: [" + "1," * items + "1]\n"
    with pytest.raises(ConfigError, match="the document has too many nodes") as caught:
        load_yaml(flow, "big.yaml")
    assert caught.value.column is not None and caught.value.column < len(flow) // 2
    assert load_yaml("x: [" + "1," * 990 + "1]\n").data == {"x": [1] * 991}
