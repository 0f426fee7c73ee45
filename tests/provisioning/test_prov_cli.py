"""The store commands (``db init``, ``users list``, ``audit tail``) through a parser built
here with ``add_commands``, and the full demo (``run_full_demo``) for every provider."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import Bridge
from federation._cli_store import add_commands, run_full_demo
from federation.testing import MockIdP


def _run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="federation")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    code = args.run(args, out)
    return code, out.getvalue()


@pytest.fixture
def config_file(tmp_path: Path, idp: MockIdP) -> Path:
    path = tmp_path / "federation.yaml"
    path.write_text(
        yaml.safe_dump({"issuers": [idp.issuer_config(trust_email=True)], "storage": "sqlite:///users.db"})
    )
    return path


def _login_some_users(config_file: Path, idp: MockIdP) -> list[Any]:
    with Bridge.from_file(
        config_file, http_client=idp.client(), clock=idp.clock, on_event=lambda e: None, audit="store"
    ) as bridge:
        results = [bridge.login(idp.mint(sub="u1", email="ada@example.com", email_verified=True, name="Ada"))]
        idp.clock.advance(1)  # type: ignore[attr-defined]  # users list oldest first
        results.append(bridge.login(idp.mint(sub="u2", preferred_username="grace")))
        bridge.deprovision(issuer="https://idp.test", subject="u2")
    return results


def test_db_init_creates_then_reports_up_to_date(config_file: Path) -> None:
    code, text = _run("db", "init", "--config", str(config_file))
    assert code == 0 and "created the federation schema (version 2)" in text
    assert (config_file.parent / "users.db").exists()
    code, text = _run("db", "init", "-c", str(config_file))
    assert code == 0 and "up to date (version 2)" in text


def test_users_list(config_file: Path, idp: MockIdP) -> None:
    ada, grace = _login_some_users(config_file, idp)
    code, text = _run("users", "list", "--config", str(config_file))
    assert code == 0
    assert text.startswith("2 users in sqlite:///")
    assert ada.user.id in text and grace.user.id in text
    assert "ada@example.com (verified)" in text and "disabled" in text
    assert "https://idp.test | u1 (oidc)" in text
    code, text = _run("users", "list", "-c", str(config_file), "--json", "--limit", "1", "--offset", "1")
    document = json.loads(text)
    assert document["total"] == 2
    assert [u["id"] for u in document["users"]] == [grace.user.id]
    assert document["users"][0]["identities"][0]["subject"] == "u2"
    assert document["users"][0]["status"] == "disabled"


@pytest.mark.parametrize(
    "argv",
    [
        ("users", "list", "--limit", "-1"),
        ("users", "list", "--offset", "-3"),
        ("users", "list", "--limit", "ten"),
        ("audit", "tail", "-n", "-5"),
    ],
)
def test_a_count_below_zero_or_not_a_number_is_a_usage_error(
    config_file: Path, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _run(*argv, "-c", str(config_file))
    assert exited.value.code == 2
    assert "must be a whole number from 0 to" in capsys.readouterr().err


def test_audit_tail(config_file: Path, idp: MockIdP) -> None:
    ada, _ = _login_some_users(config_file, idp)
    code, text = _run("audit", "tail", "--config", str(config_file))
    lines = text.splitlines()
    assert code == 0 and len(lines) == 5
    assert "user_created" in lines[0] and f"user={ada.user.id}" in lines[0]
    assert "identity=https://idp.test|u1" in lines[0]
    assert "user_disabled" in lines[-1]
    code, text = _run("audit", "tail", "-c", str(config_file), "-n", "2", "--json")
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["name"] for e in events] == ["login_succeeded", "user_disabled"]


def test_reading_a_store_that_does_not_exist_fails_cleanly(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (("users", "list"), ("audit", "tail")):
        code, text = _run(*argv, "--config", str(config_file))
        assert code == 3 and text == ""
        assert "federation db init" in capsys.readouterr().err
    assert not (config_file.parent / "users.db").exists()  # reading never creates a database


def test_a_schema_from_a_newer_release_fails_cleanly(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from federation.storage import _sql

    _run("db", "init", "--config", str(config_file))
    monkeypatch.setattr(_sql, "SCHEMA_VERSION", 0)
    code, _ = _run("db", "init", "--config", str(config_file))
    assert code == 3 and "upgrade federation-bridge" in capsys.readouterr().err


def test_a_damaged_row_is_a_typed_error_not_a_traceback(
    config_file: Path, idp: MockIdP, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from federation.cli import main

    _login_some_users(config_file, idp)
    with sqlite3.connect(config_file.parent / "users.db") as db:  # as another program writes
        db.execute("UPDATE federation_users SET roles = 'admin'")
    code = main(["users", "list", "--config", str(config_file)], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("stored data unreadable: database ") and err.count("\n") == 1
    assert err.endswith(": a stored value in roles is not a JSON document\n")


def test_bad_config_is_a_config_error(tmp_path: Path) -> None:
    from federation.errors import ConfigError

    bad = tmp_path / "federation.yaml"
    bad.write_text("issuers: []\n")
    with pytest.raises(ConfigError):  # federation.cli.main turns it into exit code 2
        _run("users", "list", "--config", str(bad))


def test_full_demo_creates_a_user_in_sqlite() -> None:
    out = io.StringIO()
    assert run_full_demo(out) == 0
    text = out.getvalue()
    assert "storage          sqlite:///federation.db" in text
    assert "first login                  created user" in text
    assert "login while suspended        refused: access_denied (account_suspended)" in text
    assert "login after deprovisioning   refused: account_disabled" in text
    for event in ("user_created", "role_granted", "user_updated", "user_disabled", "login_failed"):
        assert event in text
    assert "  username       ada" in text and "  status         disabled" in text


@pytest.mark.parametrize(
    "provider", ["oidc", "cognito", "azure_ad", "azure_ad_b2c", "okta", "keycloak", "google", "firebase"]
)
def test_full_demo_json_for_every_provider(provider: str) -> None:
    out = io.StringIO()
    assert run_full_demo(out, provider=provider, as_json=True) == 0
    document = json.loads(out.getvalue())
    steps = document["steps"]
    assert steps[0]["created"] and not steps[1]["created"]
    assert steps[0]["user_id"] == steps[1]["user_id"] == document["user"]["id"]
    assert steps[2] == {
        "step": "login while suspended",
        "refused": "access_denied",
        "reason": "account_suspended",
    }
    assert steps[3] == {"step": "deprovision", "action": "disable"}
    assert steps[4]["refused"] == "account_disabled"
    assert document["user"]["status"] == "disabled" and "member" in document["user"]["roles"]
    assert document["user"]["identities"][0]["provider"] == provider
    names = [e["name"] for e in document["audit"]]
    assert names[0] == "user_created" and names[-1] == "login_failed"


def test_full_demo_refuses_an_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_full_demo(io.StringIO(), provider="nope") == 2
    assert "unknown provider" in capsys.readouterr().err
