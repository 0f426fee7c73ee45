"""examples/sqlalchemy_orm runs as its users would run it: its files copied into a fresh
directory, pytest in a subprocess, the toolkit's fixtures and the conformance suite
coming from the installed package."""

from __future__ import annotations

pytest_plugins = ["pytester"]

import shutil  # noqa: E402 - pytest_plugins must come first
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from federation.testing.storage_conformance import CHECKS  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sqlalchemy_orm"


def test_sqlalchemy_orm_example(pytester: pytest.Pytester) -> None:
    for name in ("models.py", "store.py", "test_store.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    own_tests = (EXAMPLE / "test_store.py").read_text().count("\ndef test_")
    assert own_tests >= 2
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=own_tests + len(CHECKS))
