"""The examples under examples/ run as their users would run them.

Each example's tests are copied into a fresh directory and run by pytest in a
subprocess: no conftest from this repository, the toolkit's fixtures come from
the installed ``pytest11`` entry point, exactly as in an application's suite.
"""

from __future__ import annotations

pytest_plugins = ["pytester"]

import shutil  # noqa: E402 - pytest_plugins must come first
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_flask_example(pytester: pytest.Pytester) -> None:
    source = EXAMPLES / "flask_app"
    for name in ("app.py", "test_app.py"):
        shutil.copy(source / name, pytester.path / name)
    expected = (source / "test_app.py").read_text().count("\ndef test_")
    assert expected >= 5
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=expected)


def test_fastapi_example(pytester: pytest.Pytester) -> None:
    source = EXAMPLES / "fastapi_app"
    for name in ("app.py", "test_app.py"):
        shutil.copy(source / name, pytester.path / name)
    expected = (source / "test_app.py").read_text().count("\ndef test_")
    assert expected >= 5
    # Starlette's test client announces httpx2; every other warning is an error.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", "-W", "ignore:Using `httpx` with `starlette.testclient`"
    )
    result.assert_outcomes(passed=expected)
