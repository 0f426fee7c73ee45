"""The command line a new user trips on (issue 10 §4): ``check-config`` that checks
what the application will need (the mapping, the storage URL and its driver, and
with ``--probe`` the store and every issuer's keys), and no traceback ever: missing
drivers, ``| head``, a wrong database name, a ``Bearer`` prefix, unexpected errors.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import __version__
from federation.cli import main
from federation.errors import StorageError
from federation.testing import MockIdP

FEDERATION = Path(sys.executable).with_name("federation")
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
POSTGRES_URL = os.environ.get(
    "FEDERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def write_config(tmp_path: Path, idp: MockIdP | None = None, **extra: Any) -> Path:
    entry = (
        idp.issuer_config()
        if idp is not None
        else {"issuer": "https://idp.test", "audiences": ["a"], "jwks_uri": "https://idp.test/jwks"}
    )
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump({"issuers": [entry], **extra}, sort_keys=False))
    return path


def line_of(path: Path, key: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(f"{key}:"))


def postgres_or_skip() -> None:
    from sqlalchemy import create_engine

    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure means: no server here
        if os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# -- check-config loads what the application loads ---------------------------------------------


def test_check_config_loads_the_mapping_it_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mapping.yaml").write_text("version: 1\nattributes:\n  email: {form: $email}\n")
    path = write_config(tmp_path, mapping="mapping.yaml")
    code, out = run("check-config", str(path))
    assert (code, out) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err.split("\n  ")[0] + "\n")
    assert f"{tmp_path / 'mapping.yaml'}:3:" in err and "form" in err


def test_check_config_names_a_missing_mapping_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, mapping="nowhere.yaml")
    assert run("check-config", str(path)) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "nowhere.yaml" in err


def test_check_config_reports_what_it_checked(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text("version: 1\n")
    path = write_config(tmp_path, mapping="mapping.yaml", storage="sqlite:///users.db", audit="store")
    code, out = run("check-config", str(path))
    assert code == 0
    assert out.startswith(f"{path}: ok (1 issuer)\n  https://idp.test\n")
    assert f"mapping  {tmp_path / 'mapping.yaml'}: ok\n" in out
    assert f"storage  sqlite:///{tmp_path / 'users.db'}: ok (driver sqlite3)\n" in out
    assert "audit    store\n" in out
    assert not (tmp_path / "users.db").exists()  # checking never creates a database


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nosuchdb://host/db", ("unknown database 'nosuchdb'", "sqlite and postgresql")),
        ("postgresql+pg8000://app@db/app", ("'pg8000'", "not installed", "pip install pg8000")),
        ("mysql+mysqldb://app@db/app", ("'MySQLdb'", "not installed", "pip install mysqlclient")),
        ("not a url", ("not a database URL",)),
        ("postgresql://u@h:abc/db", ("not a database URL",)),  # a port that is no number
        ("postgresql://postgres@[::1:5432/test", ("not a database URL",)),
        ("sqlite:///%00", ("NUL",)),
    ],
)
def test_check_config_validates_the_storage_url_and_its_driver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, words: tuple[str, ...]
) -> None:
    path = write_config(tmp_path, storage=url)
    assert run("check-config", str(path)) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert f"{path}:{line_of(path, 'storage')}:1: storage: " in err
    for word in words:
        assert word in err


def test_check_config_gives_the_install_hint_of_the_postgres_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    path = write_config(tmp_path, storage="postgresql://app@db/app")
    assert run("check-config", str(path))[0] == 2
    err = capsys.readouterr().err
    assert "'psycopg'" in err and "pip install 'federation-bridge[postgres]'" in err


def test_check_config_in_a_real_process(tmp_path: Path) -> None:
    path = write_config(tmp_path, storage="postgresql+pg8000://app@db/app")
    done = subprocess.run(
        [str(FEDERATION), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (2, "")
    no_traceback(done.stderr)
    assert "pip install pg8000" in done.stderr


def _session_key() -> str:
    from federation.sessions import generate_private_key_pem

    return generate_private_key_pem("ES256").decode()


@pytest.mark.parametrize(
    ("extra", "missing", "words"),
    [
        ({"issuers_jwks_file": "keys/idp.json"}, None, ("jwks_file", "key file not found")),
        (
            {"web": {"public_url": "https://app.test", "registration_key": {"env": "NO_SUCH_VAR_9"}}},
            None,
            ("NO_SUCH_VAR_9", "is not set"),
        ),
        (
            {"sessions": {"revocation": "redis://127.0.0.1:6379/15"}},
            "redis",
            ("pip install 'federation-bridge[redis]'",),
        ),
        ({"local_accounts": {}}, "argon2", ("pip install 'federation-bridge[passwords]'",)),
        (
            {"storage_async": True},
            "federation.storage._sql_async",
            ("pip install 'federation-bridge[async]'",),
        ),
    ],
    ids=["key-file", "web-secret", "redis", "argon2", "async"],
)
def test_check_config_refuses_what_the_bridge_would_refuse_at_start_up(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, Any],
    missing: str | None,
    words: tuple[str, ...],
) -> None:
    """It said ``ok`` for a key file that was not there, an unset secret, and an extra that
    was not installed (Redis was even exit 70, "this is a bug")."""
    monkeypatch.setenv("SESSION_KEY_FOR_TEST", _session_key())
    if missing is not None:
        monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    extra = dict(extra)
    sessions = {"issuer": "https://app.test", "keys": [{"env": "SESSION_KEY_FOR_TEST"}]}
    if "sessions" in extra or "web" in extra or "local_accounts" in extra:
        extra["sessions"] = {**sessions, **extra.get("sessions", {})}
    path = write_config(tmp_path, **{k: v for k, v in extra.items() if k != "issuers_jwks_file"})
    if "issuers_jwks_file" in extra:
        config = yaml.safe_load(path.read_text())
        entry = config["issuers"][0]
        del entry["jwks_uri"]
        entry["jwks_file"] = extra["issuers_jwks_file"]
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert run("check-config", str(path)) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err)
    for word in words:
        assert word in err


@pytest.mark.parametrize("query", ["timeout=abc", "check_same_thread=maybe"])
@pytest.mark.parametrize("command", [("check-config",), ("db", "init", "-c")])
def test_driver_arguments_the_driver_refuses_are_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], query: str, command: tuple[str, ...]
) -> None:
    """They passed check-config, then ``db init`` was exit 70 (the dialect's ValueError)."""
    path = write_config(tmp_path, storage=f"sqlite:///users.db?{query}")
    assert run(*command, str(path)) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "query parameters are not valid for its driver" in err
    assert "abc" not in err and "maybe" not in err


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/abc", "redis://127.0.0.1:6379/15x", "redis://h/0?db=x"]
)
def test_a_redis_database_that_is_no_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """redis-py reads it as database 0, where another application's keys live."""
    monkeypatch.setenv("SESSION_KEY_FOR_TEST", _session_key())
    sessions = {"issuer": "https://app.test", "keys": [{"env": "SESSION_KEY_FOR_TEST"}], "revocation": url}
    path = write_config(tmp_path, sessions=sessions)
    assert run("check-config", str(path)) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "database must be a number" in err


@pytest.mark.parametrize("option", ["--limit", "--offset"])
def test_a_row_count_past_the_databases_integers_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    path = write_config(tmp_path, storage="sqlite:///users.db")
    assert run("db", "init", "-c", str(path))[0] == 0
    with pytest.raises(SystemExit) as done:
        run("users", "list", "-c", str(path), option, str(2**64))
    assert done.value.code == 2
    assert "from 0 to 9223372036854775807" in capsys.readouterr().err
    from federation.storage import SQLStore

    with SQLStore("sqlite:///users.db", base_dir=tmp_path) as store, pytest.raises(ValueError):
        store.list_users(limit=2**64)


def test_db_init_refuses_a_table_of_another_program_and_a_version_no_release_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It stamped version 2 over another program's ``federation_users`` (every login then
    failed on a missing column), and a version of 0 was a KeyError (exit 70)."""
    import sqlite3

    path = write_config(tmp_path, storage="sqlite:///users.db")
    with sqlite3.connect(tmp_path / "users.db") as db:
        db.execute("CREATE TABLE federation_users (name TEXT)")
    assert run("db", "init", "-c", str(path)) == (3, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "table 'federation_users' that is not this library's" in err
    with sqlite3.connect(tmp_path / "users.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"federation_users"}  # nothing created beside it, nothing stamped

    (tmp_path / "users.db").unlink()
    assert run("db", "init", "-c", str(path))[0] == 0
    with sqlite3.connect(tmp_path / "users.db") as db:
        db.execute("UPDATE federation_schema_version SET version = 0")
    assert run("db", "init", "-c", str(path)) == (3, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "which no release of federation-bridge wrote" in err


def test_users_list_never_prints_control_characters_of_a_stored_row(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from federation.storage import NewUser, SQLStore

    path = write_config(tmp_path, storage="sqlite:///users.db")
    now = datetime(2027, 1, 15, tzinfo=timezone.utc)
    with SQLStore("sqlite:///users.db", base_dir=tmp_path) as store, store.transaction() as tx:
        tx.insert_user(
            NewUser(
                "x\x1b[2J\x1b[31mROOT", None, False, "two\nlines", frozenset(), {}, "active", now, now, None
            )
        )
    code, out = run("users", "list", "-c", str(path))
    assert code == 0
    assert "\x1b" not in out and "two\nlines" not in out
    assert "x\\x1b[2J\\x1b[31mROOT" in out and "two\\nlines" in out


def test_users_list_quotes_a_role_or_subject_that_would_read_as_more(tmp_path: Path) -> None:
    """Roles were joined with ", ": a role named "viewer, admin" showed as an admin."""
    from datetime import datetime, timezone

    from federation.storage import NewUser, SQLStore, UserIdentity

    path = write_config(tmp_path, storage="sqlite:///users.db")
    now = datetime(2027, 1, 15, tzinfo=timezone.utc)
    with SQLStore("sqlite:///users.db", base_dir=tmp_path) as store, store.transaction() as tx:
        user = tx.insert_user(
            NewUser(
                "mallory",
                None,
                False,
                None,
                frozenset({"member", "viewer, admin"}),
                {},
                "active",
                now,
                now,
                None,
            )
        )
        tx.insert_identity(UserIdentity("https://idp.test", "mallory) (oidc)  role=admin", "oidc", user, now))
    code, out = run("users", "list", "-c", str(path))
    assert code == 0
    assert 'roles          member, "viewer, admin"\n' in out
    assert '| "mallory) (oidc)  role=admin" (oidc)\n' in out


# -- check-config --probe ---------------------------------------------------------------------


def test_probe_fetches_every_issuers_keys_and_opens_the_store(tmp_path: Path) -> None:
    idp = MockIdP(issuer="https://probe.test", audience="app")
    path = write_config(tmp_path, idp, storage="sqlite:///users.db")
    assert run("db", "init", "-c", str(path))[0] == 0
    with idp:
        code, out = run("check-config", "--probe", str(path))
    assert code == 0, out
    assert "probe    keys of https://probe.test: fetched\n" in out
    assert "probe    storage: reachable, schema version 2\n" in out
    assert idp.requests_to("jwks")
    idp.close()


def test_probe_exits_3_naming_the_issuer_without_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idp = MockIdP(issuer="https://down.test", audience="app")
    idp.outage(status=503)
    path = write_config(tmp_path, idp)
    with idp:
        code, out = run("check-config", "--probe", str(path))
    assert code == 3
    assert "probe    keys of https://down.test: unavailable (" in out
    err = capsys.readouterr().err
    no_traceback(err)
    assert err.startswith("unavailable: keys of https://down.test")
    idp.close()


def test_probe_exits_3_naming_a_database_directory_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idp = MockIdP(issuer="https://probe.test", audience="app")
    path = write_config(tmp_path, idp, storage="sqlite:///no/such/dir/users.db")
    with idp:
        code, _ = run("check-config", "--probe", str(path))
    assert code == 3
    assert "no/such/dir" in capsys.readouterr().err
    idp.close()


def test_probe_of_a_postgres_database_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres_or_skip()
    idp = MockIdP(issuer="https://probe.test", audience="app")
    nope = POSTGRES_URL.rsplit("/", 1)[0] + "/nope"
    path = write_config(tmp_path, idp, storage=nope)
    with idp:
        code, _ = run("check-config", "--probe", str(path))
    assert code == 3
    err = capsys.readouterr().err
    no_traceback(err)
    assert "database 'nope'" in err and "does not exist" in err
    idp.close()


def test_probe_of_a_reachable_postgres(tmp_path: Path) -> None:
    postgres_or_skip()
    idp = MockIdP(issuer="https://probe.test", audience="app")
    path = write_config(tmp_path, idp, storage=POSTGRES_URL)
    with idp:
        code, out = run("check-config", "--probe", str(path))
    assert code == 0, out
    assert "probe    storage: reachable" in out
    idp.close()


# -- no tracebacks --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("users", "list"), ("audit", "tail"), ("db", "init")])
def test_store_commands_with_a_driver_that_is_not_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    path = write_config(tmp_path, storage="mysql+mysqldb://app@db/app")
    assert run(*command, "-c", str(path)) == (2, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "'MySQLdb'" in err and "pip install mysqlclient" in err


def test_login_with_a_driver_that_is_not_installed_is_a_config_error(idp: MockIdP, tmp_path: Path) -> None:
    from federation import Bridge
    from federation.errors import ConfigError

    path = write_config(tmp_path, idp, storage="postgresql+pg8000://app@db/app")
    with (
        Bridge.from_file(path, http_client=idp.client(), clock=idp.clock) as bridge,
        pytest.raises(ConfigError, match="pip install pg8000") as info,
    ):
        bridge.login(idp.mint())
    assert info.value.field == "storage"


@pytest.mark.parametrize("command", [("users", "list"), ("audit", "tail")])
def test_a_postgres_database_that_does_not_exist_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    postgres_or_skip()
    path = write_config(tmp_path, storage=POSTGRES_URL.rsplit("/", 1)[0] + "/nope")
    assert run(*command, "-c", str(path)) == (3, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "database 'nope'" in err and 'database "nope" does not exist' in err


def test_users_list_into_head_exits_cleanly(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from federation.storage import NewUser, SQLStore

    path = write_config(tmp_path, storage="sqlite:///users.db")
    now = datetime(2027, 1, 15, tzinfo=timezone.utc)
    with SQLStore("sqlite:///users.db", base_dir=tmp_path) as store, store.transaction() as tx:
        for i in range(400):  # far more output than a pipe holds
            tx.insert_user(
                NewUser(f"user{i}", f"u{i}@example.com", True, f"User {i}", frozenset({"member"}), {},
                        "active", now, now, None)
            )  # fmt: skip
    process = subprocess.Popen(
        [str(FEDERATION), "users", "list", "-c", str(path), "--limit", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does after its line
    err = process.stderr.read().decode()
    code = process.wait(timeout=60)
    assert first.startswith(b"400 users in sqlite:///")
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err == "" and code == 141


def test_head_in_a_shell_pipeline(tmp_path: Path) -> None:
    done = subprocess.run(
        f"'{FEDERATION}' schema mapping | head -c 10; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr and done.returncode in (0, 141)


def test_a_bearer_prefix_is_named_not_stripped(
    idp: MockIdP, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, idp)
    token = idp.mint()
    for given in (f"Bearer {token}", f"bearer {token}"):
        assert run("verify", "-c", str(path), given) == (1, "")
        err = capsys.readouterr().err
        no_traceback(err)
        assert "remove the 'Bearer ' prefix" in err and token not in err
    monkeypatch.setattr("sys.stdin", io.StringIO(f"Bearer {token}\n"))
    assert run("verify", "-c", str(path), "-")[0] == 1
    assert "remove the 'Bearer ' prefix" in capsys.readouterr().err


def test_version_both_ways() -> None:
    assert run("--version") == (0, f"federation-bridge {__version__}\n")
    assert run("version") == (0, f"federation-bridge {__version__}\n")
    assert run("-V")[0] == 0


def test_the_readme_lists_version_and_probe() -> None:
    table = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert "`federation version`" in table and "`federation --version`" in table
    assert "--probe" in table


def test_audit_tail_of_an_empty_store_says_so(tmp_path: Path) -> None:
    path = write_config(tmp_path, storage="sqlite:///users.db")
    assert run("db", "init", "-c", str(path))[0] == 0
    code, out = run("audit", "tail", "-c", str(path))
    assert code == 0
    assert out.startswith("no audit events in sqlite:///")
    assert "audit: log" in out  # why: this config sends its audit events to the log
    assert run("audit", "tail", "-c", str(path), "--json") == (0, "")  # JSON lines: none


def test_an_unexpected_error_is_one_line_without_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import federation.cli

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("eyJhbGciOi-something-secret")

    monkeypatch.setattr(federation.cli, "load_config", boom)
    path = write_config(tmp_path)
    monkeypatch.delenv("FEDERATION_DEBUG", raising=False)
    assert run("check-config", str(path)) == (70, "")
    err = capsys.readouterr().err
    no_traceback(err)
    assert "RuntimeError" in err and "FEDERATION_DEBUG=1" in err and "secret" not in err
    monkeypatch.setenv("FEDERATION_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run("check-config", str(path))


def test_an_interrupt_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import federation.cli

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(federation.cli, "load_config", interrupted)
    assert run("check-config", str(write_config(tmp_path))) == (130, "")
    no_traceback(capsys.readouterr().err)


# -- the testing extra -------------------------------------------------------------------------


def test_the_testing_extra_is_slim_and_inside_the_test_extra() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    names = {req.split(">")[0].split("[")[0].split("=")[0] for req in extras["testing"]}
    assert names == {"pytest", "respx"}
    assert set(extras["testing"]) <= set(extras["test"])


pytest_plugins = ["pytester"]


def test_without_respx_pytest_runs_and_mock_idp_says_which_extra(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['respx'] = None  # as if respx were not installed\n")
    pytester.makepyfile(
        """
        def test_other_tests_still_run(federation_clock):
            assert federation_clock() == 1_800_000_000

        def test_not_installed_mock_works(mock_idp):
            idp = mock_idp(install=False)
            assert idp.transport() is not None

        def test_installed_mock_needs_the_extra(mock_idp):
            mock_idp()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:respx", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "pip install 'federation-bridge[testing]'" in output
    assert "Traceback" not in output and "During handling" not in output


@pytest.mark.parametrize(
    ("detail", "json_too"),
    [
        ("[" * 100_000 + "]" * 100_000, False),
        ('{"a":' * 5000 + "1" + "}" * 5000, False),
        ('{"n": 1e400}', True),
    ],
    ids=["deep-list", "deep-object", "infinity"],
)
def test_audit_tail_of_a_stored_value_no_release_writes_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], detail: str, json_too: bool
) -> None:
    """Deep nesting was a RecursionError (exit 70); an infinity printed JSON no parser reads."""
    import sqlite3

    path = write_config(tmp_path, storage="sqlite:///audit.db", audit="store")
    assert run("db", "init", "-c", str(path))[0] == 0
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute(
            "INSERT INTO federation_audit (at, name, detail) VALUES ('2027-01-15 08:00:00', 'x', ?)",
            (detail,),
        )
    for argv in (["--json"], [] if not json_too else ["--json"]):
        assert run("audit", "tail", "-c", str(path), *argv) == (3, "")
        assert "stored data unreadable" in capsys.readouterr().err


def test_audit_tail_escapes_stored_detail_keys(tmp_path: Path) -> None:
    import sqlite3

    path = write_config(tmp_path, storage="sqlite:///audit.db", audit="store")
    assert run("db", "init", "-c", str(path))[0] == 0
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute(
            "INSERT INTO federation_audit (at, name, detail) VALUES ('2027-01-15 08:00:00', 'x', ?)",
            ('{"k\\u001b[1m": "v"}',),
        )
    code, out = run("audit", "tail", "-c", str(path))
    assert code == 0 and "\x1b" not in out and '"k\\u001b[1m"=v' in out


@pytest.mark.parametrize(
    "argv",
    [
        ("sessions", "list", "-c", "f.yaml", "--user", "ab\x1b[31mRED"),
        ("sessions", "list", "-c", "f.yaml", "--user", "a\udcffb"),  # a byte that is no UTF-8
        ("sessions", "revoke", "-c", "f.yaml", "--user", "u", "--session", "x\ny"),
        ("serve", "-c", "f.yaml", "--host", "\udcff"),
    ],
)
def test_ids_and_hosts_that_are_no_printable_text_are_usage_errors(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """They reached the store (UnicodeEncodeError, exit 70), uvicorn (a traceback) or the terminal."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv), out=io.StringIO())
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# -- what reaches a terminal -------------------------------------------------------------

HOSTILE = "\u202eevil\x1b[2J\x9b31m"  # a bidi override, an escape sequence, a C1 CSI


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if not c.isprintable() and c != "\n"]


def test_map_escapes_claims_in_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "version: 1\nattributes:\n  display_name: { from: name }\n"
        "roles:\n  sync: authoritative\n  rules:\n    - grant_from: groups\n"
    )
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"sub": "a", "name": HOSTILE, "groups": [HOSTILE]}))
    for extra in ((), ("--json",)):
        code, out = run("map", "--mapping", str(mapping), "--claims", str(claims), *extra)
        assert code == 0
        assert _raw_controls(out) == [], extra
        assert "evil" in out


def test_config_errors_escape_the_keys_they_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text() + '"top\\e[5mkey": 1\n')  # YAML's own escape for ESC
    assert run("check-config", str(path))[0] == 2
    err = capsys.readouterr().err
    assert "top\\x1b[5mkey: unknown key" in err and _raw_controls(err) == []


def test_keys_generate_escapes_its_path_and_names_the_real_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("keys", "generate", "--out", str(tmp_path / "k\x1b[31m.pem"))
    assert code == 0 and _raw_controls(out) == [] and "\\x1b[31m" in out
    (tmp_path / "file").write_text("x")
    assert run("keys", "generate", "--out", str(tmp_path / "file" / "k.pem"))[0] == 2
    assert "not overwritten" not in capsys.readouterr().err  # said of a path whose folder is a file
    assert run("keys", "generate", "--out", "")[0] == 2
    assert "--out must name a file" in capsys.readouterr().err


def test_db_init_in_a_schema_that_does_not_exist_says_to_create_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres_or_skip()
    url = POSTGRES_URL + "?options=-csearch_path%3Dno_such_schema_here"
    path = write_config(tmp_path, storage=url)
    assert run("db", "init", "-c", str(path))[0] == 3
    err = capsys.readouterr().err
    no_traceback(err)
    assert "InvalidSchemaName" in err and "CREATE SCHEMA" in err


def test_a_store_in_a_schema_that_does_not_exist_says_to_create_it() -> None:
    """The Python API's error says what the command line's says (it said InvalidSchemaName alone)."""
    postgres_or_skip()
    from federation.storage import SQLStore

    for store in (
        SQLStore(POSTGRES_URL + "?options=-csearch_path%3Dno_such_schema_here"),
        SQLStore(POSTGRES_URL, schema="no_such_schema_here"),
    ):
        with pytest.raises(StorageError, match=r"InvalidSchemaName\): the schema does not exist.*SCHEMA"):
            store.init_schema()
        store.close()
