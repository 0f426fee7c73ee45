"""What ``pip install .`` ships: every package folder of the source tree is listed."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_in_the_distribution() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "federation").rglob("__init__.py")
    }
    found |= {
        "federation.providers" + "".join("." + p for p in init.parent.relative_to(ROOT / "providers").parts)
        for init in (ROOT / "providers").rglob("__init__.py")
    }
    found = {name for name in found if "__pycache__" not in name}
    assert found - listed == set(), "package folders pip install . would leave out"
    assert listed - found == set(), "listed packages with no folder"
