"""The house rules of the source tree, checked by walking it.

* Nothing imports another package's underscore modules: across packages, only
  public faces (``federation.spi``, ``federation.storage``, ...). A private
  subpackage (``federation._keys``) belongs to its parent package.
* The engine names no provider: the CLI, mapping and testing packages reach
  providers through the registry, never by importing or naming one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN_PROVIDERS = ("azure_ad", "azure_ad_b2c", "cognito", "firebase", "google", "keycloak", "okta")


def _sources() -> Iterator[tuple[list[str], Path]]:
    """Every module of the shipped package, with its dotted name as parts."""
    trees = ((ROOT / "federation", ["federation"]), (ROOT / "providers", ["federation", "providers"]))
    for base, prefix in trees:
        for path in sorted(base.rglob("*.py")):
            parts = prefix + list(path.relative_to(base).with_suffix("").parts)
            yield parts, path


def _owner(parts: list[str]) -> list[str] | None:
    """The package owning a private module: cut at its first underscore component."""
    for i, part in enumerate(parts):
        if i and part.startswith("_") and not part.startswith("__"):
            return parts[:i]
    return None


def _imports(parts: list[str], path: Path) -> Iterator[tuple[list[str], int]]:
    package = parts[:-1]  # a module's package; for an __init__, the package itself
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split("."), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                yield module + [alias.name], node.lineno


def test_the_walk_sees_the_whole_package() -> None:
    names = {".".join(parts) for parts, _ in _sources()}
    assert "federation.spi" in names
    assert "federation.providers.__init__" in names
    assert any(name.startswith("federation._keys.") for name in names)


def test_no_module_imports_another_packages_private_modules() -> None:
    offenders = []
    for parts, path in _sources():
        package = parts[:-1]
        home = _owner(package) or package
        for target, line in _imports(parts, path):
            if target[0] != "federation":
                continue
            owner = _owner(target)
            if owner is not None and owner != home:
                module = ".".join(target[: len(owner) + 1])
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_the_rule_catches_a_cross_package_private_import(tmp_path: Path) -> None:
    # The checker itself must be able to fail: a provisioning module reaching into storage's records.
    module = tmp_path / "m.py"
    module.write_text("from ..storage._records import User\nfrom ._decide import plan\n", encoding="utf-8")
    parts = ["federation", "provisioning", "m"]
    found = [t for t, _ in _imports(parts, module) if _owner(t) not in (None, ["federation", "provisioning"])]
    assert found == [["federation", "storage", "_records", "User"]]


def test_the_engine_names_no_provider() -> None:
    engine = [
        (parts, path)
        for parts, path in _sources()
        if parts[1] in ("cli", "_cli_store", "_cli_mapping", "config", "bridge", "mapping", "testing")
    ]
    assert engine
    offenders = []
    for parts, path in engine:
        for target, line in _imports(parts, path):
            if target[:2] == ["federation", "providers"] and target[2:3] and target[2] in BUILT_IN_PROVIDERS:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {'.'.join(target)}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and node.value in BUILT_IN_PROVIDERS
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} names provider {node.value!r}")
    assert offenders == []
