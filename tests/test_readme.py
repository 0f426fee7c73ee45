"""The README's promises stay true: its configs validate and its code compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from federation.config import load_config
from federation.mapping import Mapping

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
PLACEHOLDERS = {
    "<tenant-guid>": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "<guid>": "c64a4f7d-3091-4c73-a7f0-4a1a3c2b1d0e",
    "<app-id>": "f2a76e08-93f2-4350-833c-965b4a1c2d3e",
    "0oa...": "0oaoiuhhch8VRtBnC0h7",
}


def _provider_lines() -> list[str]:
    section = README.split("## Providers", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"\| `(\{provider:[^`]*\})` \|", section)


def test_the_provider_table_lists_every_profile() -> None:
    providers = {yaml.safe_load(line)["provider"] for line in _provider_lines()}
    assert providers == {
        "oidc",
        "cognito",
        "azure_ad",
        "azure_ad_b2c",
        "okta",
        "keycloak",
        "google",
        "firebase",
    }


@pytest.mark.parametrize("line", _provider_lines())
def test_each_one_line_config_is_valid(line: str) -> None:
    for placeholder, value in PLACEHOLDERS.items():
        line = line.replace(placeholder, value)
    entry = yaml.safe_load(line)
    config = load_config({"issuers": [entry]})
    assert config.issuers[0].provider == entry["provider"]


def test_the_yaml_and_python_examples_are_valid() -> None:
    blocks = re.findall(r"```(yaml|python)\n(.*?)```", README, re.S)
    assert any(kind == "python" for kind, _ in blocks)
    config: dict[str, object] = {}
    mappings = 0
    for kind, body in blocks:
        head = body.lstrip().split("\n", 1)[0]
        if kind == "python":
            compile(body, "README.md", "exec")
        elif head.startswith("# mapping.yaml"):
            Mapping.from_dict(yaml.safe_load(body))
            mappings += 1
        elif head.startswith("# federation.yaml (continued)"):
            config.update(yaml.safe_load(body))  # the storage and mapping keys join the first block
        elif head.startswith("# federation.yaml") or head.startswith("issuers:"):
            config = yaml.safe_load(body)
            load_config(config)
    assert mappings == 1
    assert load_config(config).storage == "sqlite:///federation.db"
