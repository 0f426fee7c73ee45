"""The examples under examples/ run as their users would run them.

Each example's tests are copied into a fresh directory and run by pytest in a
subprocess: no conftest from this repository, the toolkit's fixtures come from
the installed ``pytest11`` entry point, exactly as in an application's suite.
"""

from __future__ import annotations

pytest_plugins = ["pytester"]

import os  # noqa: E402 - pytest_plugins must come first
import shutil  # noqa: E402
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


REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
DJANGO_POSTGRES_URL = os.environ.get(
    "FEDERATION_TEST_DJANGO_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # any failure to reach or use the server
        return type(exc).__name__
    return None


def _expected_django_tests(source: Path) -> int:
    """The example's test functions, with the conformance suites' checks counted one by one."""
    from federation.testing import session_conformance, storage_conformance

    count = sum(p.read_text().count("\ndef test_") for p in (source / "tests").glob("test_*.py"))
    return count + len(storage_conformance.CHECKS) + len(session_conformance.SESSION_CHECKS)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_django_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, database: str) -> None:
    """examples/django_app's own pytest-django suite, on SQLite and on PostgreSQL."""
    if database == "postgresql":
        problem = _postgres_reachable(DJANGO_POSTGRES_URL)
        if problem is not None:
            message = f"PostgreSQL not reachable at {DJANGO_POSTGRES_URL} ({problem})"
            if REQUIRE_SERVICES:
                pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
            pytest.skip(message + "; set FEDERATION_TEST_DJANGO_POSTGRES_URL")
        monkeypatch.setenv("DATABASE_URL", DJANGO_POSTGRES_URL)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    source = EXAMPLES / "django_app"
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite3")
    shutil.copytree(source, pytester.path, dirs_exist_ok=True, ignore=ignore)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", "-W", "ignore:.*httpx2.*")
    result.assert_outcomes(passed=_expected_django_tests(source))
