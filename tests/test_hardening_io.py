"""Paths and standard streams that are not what the CLI expects: a named pipe given as any
file, a path no file can have (a NUL, a lone surrogate), an environment variable that is not
UTF-8, standard output or input closed or full, YAML tags on collections, and thousands of
problems in one file. Each is one typed error (the CLI: one line on stderr, exit 2), never a
hang, a traceback or "unexpected error" (70, kept for bugs).

Anything that could block on a FIFO runs in a subprocess with a timeout, or in a thread
joined with a timeout, so that a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import Bridge
from federation._files import NotRegularFile, UnusablePath, read_limited
from federation._yaml import load_yaml
from federation.cli import main
from federation.config import load_config
from federation.errors import ConfigError
from federation.sessions import SessionKeyRing, SessionSecret, generate_private_key_pem
from federation.testing import MockIdP

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
needs_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
FEDERATION = Path(sys.executable).with_name("federation")
TIMEOUT = 30  # seconds: far above a refusal, which is immediate
MAPPING = "version: 1\nroles: {sync: additive, default: [member]}\n"
CLAIMS = '{"iss": "https://idp.test", "sub": "u1"}'


def write_config(tmp_path: Path, **extra: Any) -> Path:
    """A valid config (no network needed to load it), with ``extra`` top-level sections."""
    entry = {"issuer": "https://idp.test", "audiences": ["a"], "jwks_uri": "https://idp.test/jwks"}
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump({"issuers": [entry], **extra}, sort_keys=False))
    return path


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def fifo(tmp_path: Path, name: str = "pipe") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def cli(
    *argv: str, shell: str = "", stdin: str | None = None, **env: Any
) -> subprocess.CompletedProcess[str]:
    """The real ``federation`` command, with a shell redirection (``>&-``) when given."""
    command = ["sh", "-c", f'exec "$@" {shell}', "sh", str(FEDERATION), *argv]
    try:
        return subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, **env},
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"federation {' '.join(argv)} {shell}: still running after {TIMEOUT} s")


def one_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The command failed with ``code`` and one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    no_traceback(result.stderr)
    return result.stderr


def sessions_config(tmp_path: Path, **section: Any) -> Path:
    return write_config(tmp_path, sessions={"issuer": "https://app.test", **section})


# -- a named pipe as any file path ----------------------------------------------------------


def call_or_unblock(pipe: Path, call: Callable[[], Any]) -> BaseException | None:
    """``call()`` in a thread; if it is still blocked after the timeout, open ``pipe`` for
    writing (which releases an ``open()`` waiting for a writer) and fail."""
    caught: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            caught.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(TIMEOUT)
        pytest.fail(f"reading {pipe} blocked waiting for a writer")
    return caught[0] if caught else None


@needs_fifo
def test_read_limited_refuses_a_named_pipe_at_once(tmp_path: Path) -> None:
    pipe = fifo(tmp_path)
    exc = call_or_unblock(pipe, lambda: read_limited(pipe, 1024))
    assert isinstance(exc, NotRegularFile) and isinstance(exc, OSError)  # callers catch OSError
    assert exc.strerror == "not a regular file but a named pipe"


@needs_fifo
def test_load_config_refuses_a_named_pipe(tmp_path: Path) -> None:
    pipe = fifo(tmp_path)
    exc = call_or_unblock(pipe, lambda: load_config(pipe))
    assert isinstance(exc, ConfigError), exc
    assert str(exc) == f"{pipe}: cannot read file: not a regular file but a named pipe"
    assert exc.file == str(pipe)


@needs_fifo
@pytest.mark.parametrize("where", ["config", "mapping", "claims", "existing", "session key", "secret"])
def test_every_path_argument_refuses_a_named_pipe(tmp_path: Path, where: str) -> None:
    pipe = fifo(tmp_path)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "claims.json").write_text(CLAIMS)
    argv: tuple[str, ...]
    if where == "config":
        argv = ("check-config", str(pipe))
    elif where == "mapping":
        argv = ("check-config", str(write_config(tmp_path, mapping=pipe.name)))
    elif where == "claims":
        argv = ("map", "-m", str(tmp_path / "mapping.yaml"), "--claims", str(pipe))
    elif where == "existing":
        argv = ("map", "-m", str(tmp_path / "mapping.yaml"), "--claims", str(tmp_path / "claims.json"))
        argv += ("--existing", str(pipe))
    elif where == "session key":
        argv = ("check-config", str(sessions_config(tmp_path, keys=[{"file": pipe.name}])))
    else:
        argv = ("check-config", str(sessions_config(tmp_path, algorithm="HS256", secret={"file": pipe.name})))
    err = one_line(cli(*argv))
    assert "not a regular file but a named pipe" in err, err


def test_claims_from_standard_input_still_read(tmp_path: Path) -> None:
    """``--claims -`` is stdin, a pipe by design: not refused with the named pipes."""
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    result = cli("map", "-m", str(tmp_path / "mapping.yaml"), "--claims", "-", stdin=CLAIMS)
    assert result.returncode == 0, result.stderr
    assert "allowed" in result.stdout


# -- paths no file can have ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "why"),
    [("a\0b", "the path contains a NUL character"), ("a\ud800b", "the path cannot be encoded")],
    ids=["nul", "surrogate"],
)
def test_read_limited_an_impossible_path_is_an_oserror(tmp_path: Path, path: str, why: str) -> None:
    with pytest.raises(UnusablePath) as caught:
        read_limited(tmp_path / path, 1024)
    assert isinstance(caught.value, OSError) and caught.value.strerror.startswith(why)


@pytest.mark.parametrize("name", ["map\0.yaml", "map\ud800.yaml"], ids=["nul", "surrogate"])
def test_a_mapping_path_no_file_can_have(tmp_path: Path, name: str) -> None:
    path = tmp_path / "federation.yaml"
    # safe_dump escapes both characters, as YAML reads them back.
    path.write_text(yaml.safe_dump({**MockIdP().bridge_config(), "mapping": name}))
    with pytest.raises(ConfigError) as caught:
        Bridge.from_file(path).close()
    message = str(caught.value)
    assert "cannot read file: the path" in message
    assert ascii(str(tmp_path / name)) in message  # escaped: no NUL on the terminal
    assert "\0" not in message and "\ud800" not in message


@pytest.mark.parametrize("name", ["a\0b", "a\ud800b"], ids=["nul", "surrogate"])
def test_key_and_secret_paths_no_file_can_have(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SessionKeyRing.load("ES256", [{"file": name}], base_dir=tmp_path)
    assert caught.value.field == "sessions.keys[0]"
    assert str(caught.value).startswith("sessions.keys[0]: cannot read the key file ")
    assert "(the path c" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        SessionSecret.load({"file": name}, base_dir=tmp_path)
    assert caught.value.field == "sessions.secret" and "(the path c" in str(caught.value)


def test_a_nul_in_key_and_secret_paths_of_a_bridge() -> None:
    """What ``Bridge.from_dict`` and ``from_file`` do (a lone surrogate in these fields
    never gets this far: the config's own validation refuses it as a string)."""
    idp = MockIdP()
    config = idp.bridge_config(sessions={"issuer": "https://app.test", "keys": [{"file": "a\0b"}]})
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(config).close()
    assert caught.value.field == "sessions.keys[0]" and "NUL" in str(caught.value)
    secret = {"issuer": "https://app.test", "algorithm": "HS256", "secret": {"file": "a\0b"}}
    with pytest.raises(ConfigError) as caught:
        Bridge.from_dict(idp.bridge_config(sessions=secret)).close()
    assert caught.value.field == "sessions.secret" and "NUL" in str(caught.value)


def test_the_cli_says_a_nul_in_a_key_path_in_one_line(tmp_path: Path) -> None:
    config = sessions_config(tmp_path, keys=[{"file": "a\0b"}])
    result = cli("check-config", str(config))
    err = one_line(result)
    assert result.stdout == ""  # nothing "ok" before the refusal
    assert "sessions.keys[0]" in err and "NUL" in err


# -- environment variables that are not UTF-8 -------------------------------------------------


GARBAGE = "\udcff\udcfejunk"  # b"\xff\xfejunk" as os.environ decodes it (surrogateescape)


def test_a_session_key_variable_that_is_not_utf8() -> None:
    with pytest.raises(ConfigError) as caught:
        SessionKeyRing.load("ES256", [{"env": "GARB"}], environ={"GARB": GARBAGE})
    assert str(caught.value) == "sessions.keys[0]: the environment variable 'GARB' is not valid UTF-8"
    assert caught.value.field == "sessions.keys[0]"


def test_a_session_secret_variable_that_is_not_utf8() -> None:
    with pytest.raises(ConfigError) as caught:
        SessionSecret.load({"env": "GARB"}, environ={"GARB": GARBAGE})
    assert str(caught.value) == "sessions.secret: the environment variable 'GARB' is not valid UTF-8"


def test_a_web_secret_variable_that_is_not_utf8() -> None:
    """The web: section's secrets (registration, admin and cookie keys) are read the same way."""
    from federation.config import KeyRef
    from federation.web._core import read_secret

    with pytest.raises(ConfigError) as caught:
        read_secret(KeyRef(env="GARB"), field="web.admin_key", base_dir=Path("."), environ={"GARB": GARBAGE})
    assert str(caught.value) == "web.admin_key: the environment variable 'GARB' is not valid UTF-8"


def test_a_variable_name_os_environ_cannot_look_up() -> None:
    with pytest.raises(ConfigError, match="is not set"):
        SessionKeyRing.load("ES256", [{"env": "K\ud800"}])
    with pytest.raises(ConfigError, match="is not set"):
        SessionSecret.load({"env": "K\ud800"})


@pytest.mark.skipif(os.name != "posix", reason="environment bytes: POSIX")
@pytest.mark.parametrize("hs256", [False, True], ids=["key", "secret"])
def test_the_cli_names_the_variable_never_its_value(tmp_path: Path, hs256: bool) -> None:
    section: dict[str, Any] = (
        {"algorithm": "HS256", "secret": {"env": "GARB"}} if hs256 else {"keys": [{"env": "GARB"}]}
    )
    env = {**os.environ, "GARB": os.fsdecode(b"\xff\xfejunk")}
    command = [str(FEDERATION), "check-config", str(sessions_config(tmp_path, **section))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    err = one_line(result)
    assert "'GARB' is not valid UTF-8" in err and "junk" not in err


# -- standard output and input closed or full --------------------------------------------------


@pytest.mark.parametrize("argv", [["version"], ["--version"], ["schema", "mapping"], ["check-config"]])
def test_closed_standard_output(tmp_path: Path, argv: list[str]) -> None:
    if argv == ["check-config"]:
        argv = [*argv, str(write_config(tmp_path))]
    err = one_line(cli(*argv, shell=">&-"))
    assert err == "federation: cannot write standard output (closed)\n"


@needs_full
@pytest.mark.parametrize("argv", [["version"], ["-V"], ["schema", "mapping"], ["check-config"]])
def test_standard_output_on_a_full_disk(tmp_path: Path, argv: list[str]) -> None:
    if argv == ["check-config"]:
        argv = [*argv, str(write_config(tmp_path))]
    err = one_line(cli(*argv, shell=">/dev/full"))
    assert err == "federation: cannot write standard output (No space left on device)\n"


def test_an_output_stream_that_fails_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    assert main(["check-config", str(write_config(tmp_path))], out=Full()) == 2
    assert capsys.readouterr().err == "federation: cannot write standard output (No space left on device)\n"


def test_closed_standard_input_for_a_token(tmp_path: Path) -> None:
    err = one_line(cli("verify", "-c", str(write_config(tmp_path)), shell="<&-"))
    assert err == "configuration error: standard input is closed: give the token as an argument\n"


def test_closed_standard_input_for_claims(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    err = one_line(cli("map", "-m", str(tmp_path / "mapping.yaml"), "--claims", "-", shell="<&-"))
    assert err == "configuration error: -: cannot read claims (standard input is closed)\n"


def test_closed_standard_input_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", None)
    assert main(["verify", "-c", str(write_config(tmp_path)), "-"], out=io.StringIO()) == 2
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    assert main(["map", "-m", str(tmp_path / "mapping.yaml"), "--claims", "-"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "unexpected error" not in err and len(err.splitlines()) == 2, err


def test_claims_from_a_text_only_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replaced ``sys.stdin`` (an embedding app, a test) may have no ``buffer``."""
    monkeypatch.setattr("sys.stdin", io.StringIO(CLAIMS))
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    out = io.StringIO()
    assert main(["map", "-m", str(tmp_path / "mapping.yaml"), "--claims", "-"], out=out) == 0
    assert "allowed" in out.getvalue()


# -- YAML tags on collections ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tag", "kind"),
    [
        (
            "a: !!python/object/apply:os.system [true]\n",
            "tag:yaml.org,2002:python/object/apply:os.system",
            "sequence",
        ),
        ("a: !foo [x]\n", "!foo", "sequence"),
        ("a: !whatever {b: 1}\n", "!whatever", "mapping"),
        ("a: !!set {b, c}\n", "tag:yaml.org,2002:set", "mapping"),
        ("a: !!omap [b: 1]\n", "tag:yaml.org,2002:omap", "sequence"),
        ("!top\nb: 1\n", "!top", "mapping"),
    ],
)
def test_tags_on_collections_are_refused(text: str, tag: str, kind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "f.yaml")
    assert f"invalid YAML: the tag {tag!r} is not supported on a {kind}" in str(caught.value)
    assert (caught.value.file, caught.value.line) == ("f.yaml", 1)


@pytest.mark.parametrize("text", ["a: !!map {b: 1}\n", "a: !!seq [x]\n", "a: ! [x]\n", "a: [x]\n"])
def test_standard_collection_tags_are_read(text: str) -> None:
    assert load_yaml(text).data["a"] in ({"b": 1}, ["x"])


def test_a_code_tag_on_a_list_in_the_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(
        "issuers:\n  - issuer: https://idp.test\n    jwks_uri: https://idp.test/k\n"
        "    audiences: !!python/object/apply:os.system ['true']\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.file, caught.value.line) == (str(path), 4)


# -- thousands of problems --------------------------------------------------------------------

ISSUER_WITH_AUDIENCES = (
    "issuers:\n  - issuer: https://idp.test\n    jwks_uri: https://idp.test/k\n    audiences: [{}]\n"
)


def test_the_message_lists_twenty_problems_and_counts_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(ISSUER_WITH_AUDIENCES.format(", ".join(["1"] * 5000)))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid bridge config (5000 problems):"
    assert len(lines) == 22 and lines[-1] == "  ... and 4980 more problems"
    assert len(caught.value.problems) == 5000  # every one, for a program
    result = cli("check-config", str(path))
    assert result.returncode == 2 and len(result.stderr) < 3000


def test_a_few_problems_are_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(ISSUER_WITH_AUDIENCES.format(", ".join(["1"] * 20)))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(str(caught.value).splitlines()) == 21 and "more problems" not in str(caught.value)


def test_generated_key_files_still_load(tmp_path: Path) -> None:
    """The refusals above leave a regular key file as it was."""
    (tmp_path / "k.pem").write_bytes(generate_private_key_pem("ES256"))
    ring = SessionKeyRing.load("ES256", [{"file": "k.pem"}], base_dir=tmp_path)
    assert ring.signing_key.kid
