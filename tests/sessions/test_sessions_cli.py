"""federation sessions list/revoke/purge and the sessions line of check-config."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import Bridge
from federation.cli import main
from federation.errors import TokenRevoked
from federation.sessions import generate_private_key_pem
from federation.testing import MockIdP


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.fixture
def idp() -> MockIdP:
    return MockIdP("https://idp.test", alg="ES256")


@pytest.fixture
def config_file(tmp_path: Path, idp: MockIdP) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "session.pem").write_bytes(generate_private_key_pem("ES256"))
    config = idp.bridge_config(
        storage="sqlite:///app.db",
        sessions={"issuer": "https://app.test", "keys": [{"file": "keys/session.pem"}]},
    )
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _bridge(config_file: Path, idp: MockIdP) -> Bridge:
    return Bridge.from_file(config_file, http_client=idp.client(), on_event=lambda e: None)


def test_list_revoke_one_then_all(config_file: Path, idp: MockIdP) -> None:
    with _bridge(config_file, idp) as bridge:
        first = bridge.exchange(idp.mint(sub="alice"))
        second = bridge.issue_session(first.user)
    code, text = run("sessions", "list", "--config", str(config_file), "--user", first.user.id, "--json")
    assert code == 0
    listed = json.loads(text)["sessions"]
    assert {s["session_id"] for s in listed} == {first.session_id, second.session_id}
    code, text = run(
        "sessions",
        "revoke",
        "-c",
        str(config_file),
        "--user",
        first.user.id,
        f"--session={second.session_id}",
    )
    assert code == 0 and second.session_id in text
    code, text = run("sessions", "list", "-c", str(config_file), "--user", first.user.id)
    assert code == 0 and text.startswith("1 live session of user") and first.session_id in text
    code, _ = run(
        "sessions",
        "revoke",
        "-c",
        str(config_file),
        "--user",
        "someone-else",
        f"--session={first.session_id}",
    )
    assert code == 4  # not that user's session: nothing revoked
    code, text = run("sessions", "revoke", "-c", str(config_file), "--user", first.user.id)
    assert code == 0 and "generation 1" in text
    with _bridge(config_file, idp) as bridge:
        with pytest.raises(TokenRevoked):
            bridge.authenticate(first.access_token)
        with pytest.raises(TokenRevoked):
            bridge.refresh(first.refresh_token or "")


def test_revoking_a_user_who_does_not_exist_is_not_found(config_file: Path, idp: MockIdP) -> None:
    """A mistyped id in an offboarding script reported 'revoked every session' and exit 0."""
    with _bridge(config_file, idp) as bridge:
        alice = bridge.exchange(idp.mint(sub="alice"))
    code, text = run("sessions", "revoke", "-c", str(config_file), "--user", alice.user.id + "x")
    assert (code, text) == (4, f"no user {alice.user.id}x: nothing revoked\n")
    with _bridge(config_file, idp) as bridge:
        assert bridge.authenticate(alice.access_token).user.id == alice.user.id  # nobody was revoked
        assert bridge.sessions.current_generation(alice.user.id + "x", fresh=True) == 0


@pytest.mark.parametrize("command", ["list", "revoke"])
def test_an_empty_user_id_is_a_usage_error(
    config_file: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run("sessions", command, "-c", str(config_file), "--user", " ")
    assert exited.value.code == 2
    assert "argument --user: must not be empty" in capsys.readouterr().err


def test_purge(config_file: Path, idp: MockIdP) -> None:
    with _bridge(config_file, idp) as bridge:
        bridge.exchange(idp.mint(sub="bob"))
    code, text = run("sessions", "purge", "-c", str(config_file))
    assert code == 0 and text == "purged 0 ended rows\n"  # nothing has ended yet


def test_sessions_commands_need_a_shared_store(tmp_path: Path, idp: MockIdP) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(idp.bridge_config()))
    code, _ = run("sessions", "list", "-c", str(path), "--user", "1")
    assert code == 2
    (tmp_path / "k.pem").write_bytes(generate_private_key_pem("ES256"))
    sessions: dict[str, Any] = {
        "issuer": "https://app.test",
        "keys": [{"file": "k.pem"}],
        "revocation": "memory",
    }
    path.write_text(yaml.safe_dump(idp.bridge_config(sessions=sessions)))
    code, _ = run("sessions", "purge", "-c", str(path))
    assert code == 2


def test_check_config_loads_the_session_keys(
    config_file: Path, tmp_path: Path, idp: MockIdP, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run("check-config", str(config_file))
    assert code == 0 and "sessions https://app.test: ok (ES256, 1 key, signing kid " in text
    for keys, why in (
        ([{"file": "keys/missing.pem"}], "cannot read the key file"),
        ([{"env": "FEDERATION_TEST_NO_SUCH_VARIABLE"}], "is not set"),
    ):
        config = yaml.safe_load(config_file.read_text())
        config["sessions"]["keys"] = keys
        config_file.write_text(yaml.safe_dump(config))
        capsys.readouterr()
        assert run("check-config", str(config_file))[0] == 2
        assert why in capsys.readouterr().err
    eddsa = tmp_path / "keys" / "ed.pem"
    eddsa.write_bytes(generate_private_key_pem("EdDSA"))
    config = yaml.safe_load(config_file.read_text())
    config["sessions"]["keys"] = [{"file": "keys/ed.pem"}]  # an Ed25519 key for ES256
    config_file.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert run("check-config", str(config_file))[0] == 2
    assert "does not fit ES256: it is an Ed25519 key; it signs EdDSA (set sessions.algorithm)" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "argv",
    [("sessions", "revoke", "--user", "u-1"), ("sessions", "list", "--user", "u-1"), ("sessions", "purge")],
)
def test_sessions_commands_never_create_the_store(
    config_file: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """A mistyped storage path made a new, empty database, and 'revoked' the user there."""
    import sqlite3

    database = config_file.parent / "app.db"
    code, text = run(*argv, "-c", str(config_file))
    assert (code, text) == (3, "")
    assert "run 'federation db init'" in capsys.readouterr().err
    assert not database.exists()
    sqlite3.connect(database).close()  # a database without the schema: nothing is added to it
    assert run(*argv, "-c", str(config_file))[0] == 3
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
