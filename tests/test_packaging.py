"""What ``pip install .`` ships: every package folder of the source tree is listed, and a
source checkout imports the same packages."""

from __future__ import annotations

import subprocess
import sys
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


def test_a_source_checkout_finds_its_providers_without_an_editable_install(tmp_path: Path) -> None:
    """After ``pip install .`` (not ``-e``), a script run in the clone's root imports this
    folder, where ``providers/`` is beside the package, not in it: every provider was a
    ModuleNotFoundError. The interpreter runs without ``site`` here, so that no editable
    install's finder can help, with the dependencies' folders added by hand."""
    import sysconfig

    paths = sysconfig.get_paths()
    dependencies = [paths["purelib"], paths["platlib"]]
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}]; sys.path += {dependencies!r}; "
        "import federation.providers.cognito, federation.providers as p; print(p.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(ROOT / "providers" / "__init__.py")
