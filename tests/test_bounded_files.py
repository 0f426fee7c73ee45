"""Every file a configuration names is read up to a bound, never whole.

A path may name a device that never ends (``/dev/zero``) or a file far larger than a
config, a mapping, a key or a secret can be (a database named by mistake): each must be a
``ConfigError`` (CLI: exit 2; a token piped to ``federation verify``: exit 1,
``token_too_large``), never memory exhausted by reading it whole.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from federation import Bridge
from federation.cli import main
from federation.config import load_config
from federation.errors import ConfigError
from federation.mapping import Mapping
from federation.sessions import generate_private_key_pem
from federation.spi import MAX_SECRET_FILE_BYTES, FileTooLarge, StaticKeySet, read_limited
from federation.testing import MockIdP
from federation.web import create_app

ENDLESS = Path("/dev/zero")
YAML_LIMIT = 4 * 1024 * 1024  # the documented bound of a config or mapping file
needs_endless = pytest.mark.skipif(not ENDLESS.exists(), reason="no /dev/zero on this system")


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk (and no time) to make."""
    with path.open("wb") as file:
        file.truncate(size)
    return path


@pytest.fixture(params=["endless", "oversized"])
def huge(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """``/dev/zero``, then a sparse file past every bound here (16 MiB and a byte)."""
    if request.param == "endless":
        if not ENDLESS.exists():
            pytest.skip("no /dev/zero on this system")
        return ENDLESS
    return _sparse(tmp_path / "huge.bin", 16 * 1024 * 1024 + 1)


def test_read_limited_reads_up_to_its_limit_and_refuses_one_byte_more(tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 100)
    assert read_limited(exact, 100) == b"x" * 100
    with pytest.raises(FileTooLarge) as caught:
        read_limited(exact, 99)
    assert caught.value.limit == 99 and caught.value.strerror == "larger than 99 bytes"
    assert isinstance(caught.value, OSError)  # callers' ``except OSError`` still catches it
    with pytest.raises(FileNotFoundError):
        read_limited(tmp_path / "absent", 100)


@needs_endless
def test_read_limited_stops_on_a_device_that_never_ends() -> None:
    with pytest.raises(FileTooLarge):
        read_limited(ENDLESS, 1024)


def test_a_config_file_past_the_bound(huge: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(huge)
    assert str(caught.value) == f"{huge}: file larger than {YAML_LIMIT} bytes"
    assert caught.value.file == str(huge)


def test_a_config_file_of_exactly_the_bound_is_read(tmp_path: Path) -> None:
    config = "issuers:\n  - {issuer: 'https://idp.test', audiences: [a], jwks_uri: 'https://idp.test/k'}\n"
    path = tmp_path / "federation.yaml"
    path.write_text(config + "#" * (YAML_LIMIT - len(config) - 1) + "\n")
    assert path.stat().st_size == YAML_LIMIT
    assert load_config(path).issuers[0].issuer == "https://idp.test"
    with path.open("a") as file:
        file.write("\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_windows_and_old_mac_line_ends_read_as_before(tmp_path: Path, newline: str) -> None:
    """The bounded read keeps text mode's newlines: the same values, the same line numbers."""
    lines = ["issuers:", "  - issuer: https://idp.test", "    audiences: [a]", "    jwks_uri: https://idp.test/k"]
    path = tmp_path / "federation.yaml"
    path.write_bytes(newline.join(lines).encode())
    assert load_config(path).issuers[0].audiences == ["a"]
    path.write_bytes(newline.join([*lines, "    leewy: 5"]).encode())
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 5


def test_a_mapping_file_past_the_bound(huge: Path) -> None:
    with pytest.raises(ConfigError, match=f"file larger than {YAML_LIMIT} bytes"):
        Mapping.from_file(huge)


def test_a_key_set_file_past_the_bound(huge: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key file is larger than 16777216 bytes"):
        StaticKeySet.from_file(huge)
    config = MockIdP().bridge_config()
    del config["issuers"][0]["jwks_uri"]
    config["issuers"][0]["jwks_file"] = str(huge)
    with pytest.raises(ConfigError, match="larger than"):
        Bridge.from_dict(config)


def _sessions(idp: MockIdP, **section: Any) -> dict[str, Any]:
    return idp.bridge_config(sessions={"issuer": "https://app.test", **section})


def test_a_session_key_file_past_the_bound(huge: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(_sessions(MockIdP(), keys=[{"file": str(huge)}]))
    assert f"larger than {MAX_SECRET_FILE_BYTES} bytes" in str(caught.value)
    assert caught.value.field == "sessions.keys[0]"


def test_a_session_secret_file_past_the_bound(huge: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(_sessions(MockIdP(), algorithm="HS256", secret={"file": str(huge)}))
    assert f"larger than {MAX_SECRET_FILE_BYTES} bytes" in str(caught.value)
    assert caught.value.field == "sessions.secret"


def test_a_web_secret_file_past_the_bound(huge: Path, tmp_path: Path) -> None:
    idp = MockIdP()
    (tmp_path / "session.pem").write_bytes(generate_private_key_pem("ES256"))
    config = _sessions(idp, keys=[{"file": str(tmp_path / "session.pem")}])
    config["web"] = {"public_url": "https://app.test", "registration_key": {"file": str(huge)}}
    with Bridge.from_dict(config) as bridge, pytest.raises(ConfigError) as caught:
        create_app(bridge)
    assert caught.value.field == "web.registration_key"
    assert f"larger than {MAX_SECRET_FILE_BYTES} bytes" in str(caught.value)


def test_the_cli_refuses_a_claims_file_past_the_bound(
    huge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("version: 1\nroles: {sync: additive, default: [member]}\n")
    assert main(["map", "--mapping", str(mapping), "--claims", str(huge)]) == 2
    assert capsys.readouterr().err == f"configuration error: {huge}: claims larger than 1048576 bytes\n"
    assert main(["check-config", str(huge)]) == 2
    assert "larger than" in capsys.readouterr().err


def test_the_cli_reads_a_piped_token_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    idp = MockIdP()
    config = tmp_path / "federation.yaml"
    config.write_text(json.dumps(idp.bridge_config()))  # JSON is YAML
    with idp:
        monkeypatch.setattr("sys.stdin", io.StringIO(idp.mint(sub="piped") + "\n"))
        assert main(["verify", "-c", str(config), "-"]) == 0
        assert json.loads(capsys.readouterr().out)["subject"] == "piped"

        class Endless(io.TextIOBase):
            def read(self, size: int | None = -1) -> str:
                assert size is not None and size > 0, "stdin read whole"
                return "a" * size

        monkeypatch.setattr("sys.stdin", Endless())
        assert main(["verify", "-c", str(config), "-"]) == 1
    assert capsys.readouterr().err == "token rejected (token_too_large): token exceeds the size limit\n"
