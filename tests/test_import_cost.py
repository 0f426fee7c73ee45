"""``import federation`` and ``federation --version`` load nothing heavy (a cold start pays for use).

Checked by what a fresh interpreter has loaded, not by timing (benchmarks/startup.py times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_verifying_against_a_key_set_without_certificates_loads_no_x509_or_joserfc(tmp_path: Path) -> None:
    """The cold start's key import builds keys with cryptography alone: joserfc (and the X.509
    module it imports) load only for certificates (``x5c``, Firebase's map) or sessions; anyio's
    thread pool only for an async key fetch."""
    from federation.testing import MockIdP

    idp = MockIdP(issuer="https://idp.cold.test", audience="cold", alg="ES256", algorithms=["RS256", "ES256"])
    (tmp_path / "jwks.json").write_text(json.dumps(idp.jwks()))
    tokens = [idp.mint(alg=alg, sub=f"u-{alg}") for alg in ("RS256", "ES256")]
    issuer = {
        "issuer": "https://idp.cold.test",
        "audiences": ["cold"],
        "algorithms": ["RS256", "ES256"],
        "jwks_file": str(tmp_path / "jwks.json"),
    }
    code = (
        "import sys\nfrom federation import Bridge\n"
        f"bridge = Bridge.from_dict({{'issuers': [{issuer!r}]}})\n"
        f"print([bridge.verify(t).subject for t in {tokens!r}])\n"
        "print(sorted(m for m in ('joserfc', 'cryptography.x509', 'anyio.to_thread') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines() == ["['u-RS256', 'u-ES256']", "[]"]
