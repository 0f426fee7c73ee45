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


STARLETTE_TESTCLIENT = "ignore:Using `httpx` with `starlette.testclient`"  # it announces httpx2


def run_example(pytester: pytest.Pytester, name: str, *warnings: str) -> None:
    """Run examples/<name>'s tests in a fresh directory; every other warning is an error."""
    source = EXAMPLES / name
    for file in ("app.py", "test_app.py"):
        shutil.copy(source / file, pytester.path / file)
    expected = (source / "test_app.py").read_text().count("\ndef test_")
    assert expected >= 5
    options = [arg for warning in warnings for arg in ("-W", warning)]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", *options)
    result.assert_outcomes(passed=expected)


def test_flask_example(pytester: pytest.Pytester) -> None:
    run_example(pytester, "flask_app")


def test_fastapi_example(pytester: pytest.Pytester) -> None:
    run_example(pytester, "fastapi_app", STARLETTE_TESTCLIENT)


def test_starlette_example(pytester: pytest.Pytester) -> None:
    run_example(pytester, "starlette_app", STARLETTE_TESTCLIENT)
