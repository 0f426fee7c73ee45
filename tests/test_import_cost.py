"""``import federation`` and ``federation --version`` load nothing heavy (a cold start pays for use).

Checked by what a fresh interpreter has loaded, not by timing (benchmarks/startup.py times it).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("httpx", "httpcore", "pydantic", "cryptography", "joserfc", "sqlalchemy", "yaml", "re2")


def _loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert _loaded_after("import federation")[-1] == "[]"


def test_the_version_answers_without_the_engine() -> None:
    lines = _loaded_after(
        "import sys\nsys.argv = ['federation', '--version']\nfrom federation._entry import main\nmain()"
    )
    assert lines == ["federation-bridge 0.1.0", "[]"]


def test_the_public_names_load_on_first_use() -> None:
    import federation
    from federation.bridge import Bridge

    assert federation.Bridge is Bridge
    assert {"Bridge", "BridgeConfig", "Event", "VerifiedToken", "WarmUpReport"} <= set(dir(federation))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        federation.Nope  # noqa: B018


def test_other_commands_go_through_the_whole_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from federation import _entry

    sys_argv = sys.argv
    try:
        sys.argv = ["federation", "check-config", "/nonexistent/federation.yaml"]
        assert _entry.main() == 2
    finally:
        sys.argv = sys_argv
    assert "configuration error" in capsys.readouterr().err
