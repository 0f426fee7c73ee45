"""The ``federation`` command.

Owns: argument parsing and printing for ``federation demo`` (the whole path
on embedded defaults — mock issuer, verify, map, provision into SQLite, audit;
with ``--verify-only`` an in-process mock issuer of one provider,
``--provider``, mints tokens in that provider's shapes and the bridge,
configured in the profile's own vocabulary, verifies them and rejects an
expired token, one for another app and one that breaks a rule of the
provider), ``federation verify`` (verify a token against a config file),
``federation check-config [--probe]`` (load everything the application will:
the config, its mapping, the storage URL and its driver; with ``--probe``
also reach the store and fetch every issuer's keys), ``federation version``
(and ``--version``), and the mapping (``map``, ``schema``) and store
(``users``, ``audit``, ``db``) commands registered from ``_cli_mapping`` and
``_cli_store``; and turning every failure into one line on stderr with a
stable exit code, never a traceback (``FEDERATION_DEBUG=1`` shows it).

Exit codes: 0 ok, 1 token rejected or login refused, 2 configuration error (also:
standard input or output closed, or output that cannot be written, such as a full disk),
3 issuer keys or storage unavailable, 70 an unexpected error (a bug), 130
interrupted, 141 standard output closed early (``| head``).

Must not: hold any verification logic; it calls the public API only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import yaml

from . import __version__, plugins
from ._cli_mapping import add_commands as add_mapping_commands
from ._cli_serve import add_serve_command
from ._cli_sessions import add_commands as add_session_commands
from ._cli_store import add_commands as add_store_commands
from ._entry import discard_stdout
from ._files import display_path
from .bridge import Bridge
from .config import BridgeConfig, load_config
from .errors import (
    ConfigError,
    CorruptRecord,
    FederationError,
    InvalidToken,
    KeySetUnavailable,
    LoginRefused,
    MalformedToken,
    MissingToken,
    StorageError,
    TokenTooLarge,
)
from .plugins import DemoSpec

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .mapping import Mapping

__all__ = ["main"]

EXIT_OK, EXIT_REJECTED, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: an exception nobody anticipated
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cmd | head` gives for any Unix tool

#: A token read from stdin: past any ``max_token_bytes`` (1 MiB at most), with room for whitespace.
_MAX_STDIN_TOKEN = 2 * 1024 * 1024

# RFC 6750's scheme is case-insensitive; the token itself never contains a space.
_BEARER = re.compile(r"\s*bearer\s", re.IGNORECASE)


def _identity(vt: Any) -> dict[str, Any]:
    return {
        "issuer": vt.issuer,
        "subject": vt.subject,
        "provider": vt.provider,
        "token_type": vt.token_type,
        "algorithm": vt.algorithm,
        "key_id": vt.key_id,
        "audience": list(vt.audience),
        "expires_at": vt.expires_at.isoformat(),
        "identity_key": list(vt.identity_key),
        "email": vt.email,
        "email_verified": vt.email_verified,
        "username": vt.username,
        "groups": list(vt.groups),
        "roles": list(vt.roles),
        "claims": dict(vt.claims),
    }


def _demos() -> dict[str, DemoSpec]:
    """The providers ``federation demo`` offers: every registered plugin with a demo."""
    return {p.name: p.demo for p in plugins.plugins() if p.demo is not None}


def _rejection(bridge: Bridge, label: str, token: str) -> dict[str, Any]:
    try:
        bridge.verify(token)
    except InvalidToken as exc:
        return {"case": label, "code": exc.code}
    return {"case": label, "code": None}  # accepted: the demo would show it


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import MockIdP  # the toolkit is only needed by the demo

    demo = _demos()[args.provider]
    idp = MockIdP.for_provider(args.provider, alg=args.alg, **demo.params)
    config = idp.bridge_config()
    entry = config["issuers"][0]
    allowed = load_config(config).issuers[0].algorithms
    if args.alg not in allowed:
        sys.stderr.write(
            f"configuration error: the {args.provider} profile accepts {', '.join(allowed)} only "
            f"(--alg {args.alg})\n"
        )
        return EXIT_CONFIG
    events: list[Any] = []  # key cache events (Keycloak's enc key is skipped): not the demo's point
    try:
        with idp.bridge(config=config, on_event=events.append) as bridge:
            tokens = {"id": idp.mint(demo.id_claims)}
            if demo.no_access is None:
                tokens["access"] = idp.mint(demo.access_claims, token_type="access")
            verified = {kind: bridge.verify(token) for kind, token in tokens.items()}
            rejected = [
                _rejection(bridge, "expired token", idp.mint(expired=True)),
                _rejection(bridge, "token for another app", idp.mint(aud="someone-else")),
                _rejection(bridge, demo.rule, demo.breaks_rule(idp)),
            ]
    finally:
        idp.close()
    if args.json:
        document = {
            "provider": args.provider,
            "config": config,
            "entry": entry,
            "verified": _identity(verified["id"]),
            "verified_access": _identity(verified["access"]) if "access" in verified else None,
            "rejected": rejected,
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        return EXIT_OK
    fmt = "Google's x509 certificate map" if idp.key_format == "x509_pem_map" else "JWK Set"
    out.write(f"federation demo: an in-process mock {demo.what} (provider {args.provider}), no network\n\n")
    out.write(f"bridge config ({args.provider} profile's own vocabulary)\n")
    dumped = yaml.safe_dump({"issuers": [entry]}, sort_keys=False, width=200)
    out.write("".join(f"  {line}\n" for line in dumped.splitlines()))
    out.write(f"\ntrusted issuer   {idp.issuer}  (audience {idp.audience!r})\n")
    out.write(f"keys from        {idp.jwks_uri}  ({fmt})\n")
    for kind, vt in verified.items():
        token = tokens[kind]
        out.write(f"\nminted {kind} token{' ' * (7 - len(kind))}{token[:24]}... ")
        out.write(f"({len(token)} bytes, {vt.algorithm}, kid {vt.key_id})\n")
        out.write("verified identity\n")
        for name, value in (
            ("issuer", vt.issuer),
            ("subject", vt.subject),
            ("provider", vt.provider),
            ("token_type", vt.token_type),
            ("identity_key", vt.identity_key),
            ("email", f"{vt.email} (email_verified: {vt.email_verified})" if vt.email else "-"),
            ("name", vt.claims.get("name", "-")),
            ("username", vt.username or "-"),
            ("groups", ", ".join(vt.groups) or "-"),
            ("roles", ", ".join(vt.roles) or "-"),
            ("expires_at", vt.expires_at.isoformat()),
        ):
            out.write(f"  {name:<13} {value}\n")
    if demo.no_access is not None:
        out.write(f"\nno access token: {demo.no_access}\n")
    out.write("\nrejected, as they should be\n")
    for item in rejected:
        out.write(f"  {item['case']:<44} -> {item['code']}\n")
    return EXIT_OK


_NO_TOKEN = "no token given: pass it as an argument, or pipe it in (federation verify -c FILE -)"


def _token_from_stdin() -> str:
    """The token piped in, read up to a bound: stdin may be a device or a stream that never ends."""
    if sys.stdin is None:  # started with stdin closed (`<&-`): Python sets it to None
        raise ConfigError("standard input is closed: give the token as an argument")
    if sys.stdin.isatty():  # nothing piped in: reading would wait for a token typed by hand
        raise MissingToken(_NO_TOKEN)
    try:
        text = sys.stdin.read(_MAX_STDIN_TOKEN + 1)
    except UnicodeDecodeError:  # a token is ASCII: this is not one
        raise MalformedToken("the token piped in is not text") from None
    except (OSError, ValueError) as exc:  # a stream that fails to read, or one already closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise ConfigError(f"cannot read the token from standard input ({reason})") from None
    if len(text) > _MAX_STDIN_TOKEN:
        raise TokenTooLarge("token exceeds the size limit")
    if not text.strip():
        raise MissingToken(_NO_TOKEN)
    return text.strip()


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    token = _token_from_stdin() if args.token in (None, "-") else args.token
    if _BEARER.match(token):
        # Refused, not stripped: bridge.verify() refuses it too, and an application that
        # passes the whole Authorization header should learn that here, not in production.
        sys.stderr.write(
            "token rejected (malformed): this is an Authorization header value, not a token: "
            "remove the 'Bearer ' prefix\n"
        )
        return EXIT_REJECTED
    with Bridge.from_file(args.config) as bridge:
        vt = bridge.verify(token)
    json.dump(_identity(vt), out, indent=2, default=str)
    out.write("\n")
    return EXIT_OK


def _check_config(args: argparse.Namespace, out: TextIO) -> int:
    """Load what the application loads: any ConfigError is exit 2 before anything is printed."""
    from ._cli_store import storage_url
    from .mapping import Mapping

    if args.config is None:
        args.config = args.config_option
    config = load_config(args.config)
    mapping = Mapping.from_config(config.mapping, config.base_dir) if config.mapping is not None else None
    url = storage_url(config) if config.storage is not None else None
    with Bridge(config, mapping=mapping, on_event=lambda event: None) as bridge:
        bridge.preflight()  # key files, extras, secrets: what the app would refuse at start-up
        if mapping is not None:
            _refuse_unreachable_sections(config, mapping)
        return _report_config(args, out, config, mapping, url, bridge)


def _refuse_unreachable_sections(config: BridgeConfig, mapping: Mapping) -> None:
    """A section keyed to an issuer no entry trusts (a trailing slash will do) never applies:
    its deny rules fail open. The app runs with it; check-config says so."""
    from .spi import ProviderProfile

    pairs = [(entry.provider, iss) for entry in config.issuers for iss in entry.trusted_issuers]
    open_providers = {
        entry.provider
        for entry in config.issuers
        if type(entry).matches_issuer is not ProviderProfile.matches_issuer
    }
    dead = mapping.unmatched_sections(pairs, open_providers=open_providers)
    if dead:
        one = len(dead) == 1
        raise ConfigError(
            f"the mapping's {', '.join(dead)} {'matches' if one else 'match'} no configured issuer: "
            f"{'its' if one else 'their'} rules, deny rules included, would never apply",
            field="mapping",
        )


def _report_config(
    args: argparse.Namespace,
    out: TextIO,
    config: BridgeConfig,
    mapping: Mapping | None,
    url: URL | None,
    bridge: Bridge,
) -> int:
    """What check-config found, and with ``--probe`` what the bridge it built can reach."""
    from ._cli_store import probe_store
    from ._storage_check import display_url
    from .storage import SUPPORTED_BACKENDS

    issuers = [iss for entry in config.issuers for iss in entry.trusted_issuers]
    out.write(f"{args.config}: ok ({len(issuers)} issuer{'s' if len(issuers) != 1 else ''})\n")
    for iss in issuers:
        out.write(f"  {iss}\n")
    if mapping is not None:
        out.write(f"mapping  {mapping.source or 'inline'}: ok\n")
    if url is not None:
        driver = url.get_dialect().import_dbapi().__name__.split(".")[0]
        out.write(f"storage  {display_url(url)}: ok (driver {driver})\n")
        if url.get_backend_name() not in SUPPORTED_BACKENDS:
            out.write(f"  note: the SQL store is written and tested for {' and '.join(SUPPORTED_BACKENDS)}\n")
    if config.audit != "log":
        out.write(f"audit    {config.audit}\n")
    if config.sessions is not None:
        from ._cli_sessions import describe_sessions

        out.write(f"{describe_sessions(config)}\n")
    if not args.probe:
        return EXIT_OK
    unavailable: list[str] = []
    report = bridge.warm_up()  # the bridge preflight built: its key files read once
    for iss in bridge.issuers:
        if iss in report.failed:
            out.write(f"probe    keys of {iss}: unavailable ({report.failed[iss]})\n")
            unavailable.append(f"keys of {iss} ({report.failed[iss]})")
        else:
            out.write(f"probe    keys of {iss}: fetched\n")
    revocation = config.sessions.revocation if config.sessions is not None else "store"
    if revocation.startswith(("redis://", "rediss://")):
        from ._cli_sessions import display_revocation
        from .storage import RedisSessionStore

        where = display_revocation(revocation)
        redis_store = RedisSessionStore.from_url(revocation)
        try:
            reachable = redis_store.ping()
        finally:
            redis_store.close()
        out.write(f"probe    revocation {where}: {'ok' if reachable else 'unavailable'}\n")
        if not reachable:
            unavailable.append(f"revocation store {where}")
    if url is not None:
        try:
            state = probe_store(url)
        except StorageError as exc:
            out.write(f"probe    storage: unavailable ({exc})\n")
            unavailable.append(f"storage: {exc}")
        else:
            out.write(f"probe    storage: {state}\n")
    if unavailable:
        sys.stderr.write("unavailable: " + "; ".join(unavailable) + "\n")
        return EXIT_UNAVAILABLE
    return EXIT_OK


def _demo_entry(args: argparse.Namespace, out: TextIO) -> int:
    if args.web:
        if args.verify_only or args.alg is not None or args.json or args.provider != "oidc":
            raise ConfigError(
                "--web runs the login service alone: without --verify-only, --alg, --json, --provider"
            )
        from ._cli_demo_web import run_web_demo  # the web extra: only when asked

        return run_web_demo(out, port=args.port)
    if args.verify_only or args.alg is not None:
        args.alg = args.alg or "RS256"
        return _demo(args, out)
    from ._cli_store import run_full_demo  # imports the storage layer only when needed

    return run_full_demo(out, provider=args.provider, as_json=args.json)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="federation", description="Accept tokens from other identity providers."
    )
    parser.add_argument(
        "--version", "-V", action=_VersionAction, help="print the version (as 'federation version')"
    )
    # Not required=True: --version stands alone; main() asks for a command when none is given.
    sub = parser.add_subparsers(dest="command", metavar="command")
    demo = sub.add_parser(
        "demo",
        help="the whole path on embedded defaults: mock issuer, verify, map, provision into SQLite",
    )
    demo.add_argument("--json", action="store_true", help="print machine-readable JSON")
    demo.add_argument(
        "--verify-only",
        action="store_true",
        help="stop after verification: show the verified identity and refusals (implied by --alg)",
    )
    demo.add_argument(
        "--alg",
        default=None,
        choices=["RS256", "PS256", "ES256", "EdDSA"],
        help="sign the demo's tokens with this algorithm (implies --verify-only)",
    )
    demo.add_argument(
        "--provider",
        default="oidc",
        choices=list(_demos()),
        help="mock this provider, with its real token shapes and its profile's rules",
    )
    demo.add_argument(
        "--web",
        action="store_true",
        help="serve the login service against a mock issuer on 127.0.0.1 and print a URL to open",
    )
    demo.add_argument("--port", type=int, default=0, help="with --web: the port (default: any free one)")
    demo.set_defaults(run=_demo_entry)
    add_mapping_commands(sub)
    add_store_commands(sub)
    verify = sub.add_parser("verify", help="verify a token with a config file")
    verify.add_argument("--config", "-c", required=True, help="the bridge config (YAML)")
    verify.add_argument("token", nargs="?", help="the token, or '-' / nothing to read standard input")
    verify.set_defaults(run=_verify)
    check = sub.add_parser(
        "check-config",
        help="validate a config file, its mapping and its storage URL; --probe: reach keys and store",
        description="Load what the application will load: the config, the mapping it names, the "
        "storage URL and its driver. Exit codes: 0 ok, 2 configuration error, 3 (--probe) an "
        "issuer's keys or the store unavailable.",
    )
    # The file as every other command takes it (-c) or, as ever, as the one argument.
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument("config", nargs="?", help="the bridge config (YAML)")
    where.add_argument("--config", "-c", dest="config_option", metavar="CONFIG", help="the same")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also connect to the store (creating nothing) and fetch every issuer's keys",
    )
    check.set_defaults(run=_check_config)
    keys = sub.add_parser("keys", help="the app's own session signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="command", required=True)
    generate = keys_sub.add_parser(
        "generate",
        help="write a new private key (PEM, mode 0600) and print the kid it signs with",
        description="Write a new session signing key for 'sessions.keys'. The file is created "
        "with mode 0600 and never overwritten. Exit codes: 0 written, 2 the file exists or "
        "cannot be written.",
    )
    generate.add_argument("--alg", default="ES256", help="ES256 (default), EdDSA, RS256 or PS256")
    generate.add_argument(
        "--out", required=True, help="the PEM file to create (a missing folder is made, mode 0700)"
    )
    generate.set_defaults(run=_keys_generate)
    add_session_commands(sub)
    add_serve_command(sub)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(run=_version)
    return parser


def _keys_generate(args: argparse.Namespace, out: TextIO) -> int:
    from .sessions import SESSION_ALGORITHMS, SessionKeyRing, generate_private_key_pem  # joserfc: when asked

    if args.alg not in SESSION_ALGORITHMS:  # the flag's own words, not the config field's
        shared = (
            " (HS256 sessions use a shared secret: sessions.secret, no key file)"
            if args.alg == "HS256"
            else ""
        )
        raise ConfigError(f"--alg must be one of {', '.join(SESSION_ALGORITHMS)}{shared}")
    pem = generate_private_key_pem(args.alg)
    kid = SessionKeyRing.from_pems(args.alg, [pem]).signing_key.kid
    if not args.out or args.out.endswith(("/", os.sep)):
        raise ConfigError("--out must name a file")
    path = Path(args.out)
    shown = display_path(path)  # the argument's text: no escape sequence reaches the terminal
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # README's keys/: made for it
    except OSError as exc:  # a file where a folder should be, a read-only place
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot make the folder of {shown} ({reason})") from None
    try:
        # O_EXCL: never replace a key that may still verify live sessions; 0600 from the start.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{shown} exists: not overwritten (choose another file name)") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {shown} ({exc.strerror or type(exc).__name__})") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())  # a key the app will start with: on the disk, whole
    except OSError as exc:  # a full disk, a file size limit: no half key left to block a retry
        path.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {shown} ({exc.strerror or type(exc).__name__})") from None
    out.write(f"wrote {shown} ({args.alg}); kid {kid}\n")
    return EXIT_OK


def _version(args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"federation-bridge {__version__}\n")
    return EXIT_OK


class _VersionAction(argparse.Action):
    """``--version``: the ``version`` command (printed to ``main``'s ``out``, unlike argparse's)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        namespace.run = _version


class _OutputFailed(Exception):
    """Standard output cannot be written (closed, a full disk): not the command's failure."""


class _Output:
    """The stream a command writes to, whose failures are told apart from the command's own:
    one line and exit 2 for them, not "unexpected error" (70), which is kept for bugs."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream  # None: Python's sys.stdout when started with it closed (`>&-`)

    def _call(self, name: str, *args: Any) -> Any:
        if self.stream is None:
            raise _OutputFailed("closed")
        try:
            return getattr(self.stream, name)(*args)
        except BrokenPipeError:  # `| head`: exit 141, as before
            raise
        except OSError as exc:  # /dev/full, EIO
            raise _OutputFailed(exc.strerror or type(exc).__name__) from None
        except ValueError:
            if getattr(self.stream, "closed", False):  # "I/O operation on closed file"
                raise _OutputFailed("closed") from None
            raise  # text the stream cannot encode: the command's own failure

    def write(self, text: str) -> int:
        written: int = self._call("write", text)
        return written

    def flush(self) -> None:
        self._call("flush")

    def __getattr__(self, name: str) -> Any:  # anything else (isatty, encoding): the stream's own
        return getattr(self.stream, name)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit code. Never raises but ``SystemExit`` for
    usage errors (argparse's exit 2); ``FEDERATION_DEBUG=1`` lets unexpected errors through."""
    if sys.stderr is None:  # started with stderr closed: messages are lost, not a crash
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
    target = out or sys.stdout
    stream = cast(TextIO, _Output(target))
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.error("the following arguments are required: command")
    try:
        code = _run(args, stream)
        stream.flush()  # a closed pipe shows here, not in the interpreter's shutdown
    except BrokenPipeError:
        discard_stdout(target)
        return EXIT_BROKEN_PIPE
    except _OutputFailed as exc:
        sys.stderr.write(f"federation: cannot write standard output ({exc})\n")
        discard_stdout(target)  # what could not be written must not fail again at exit
        return EXIT_CONFIG
    return code


def _run(args: argparse.Namespace, out: TextIO) -> int:
    """Run one command; every failure becomes one line on stderr and its exit code."""
    try:
        code: int = args.run(args, out)
    except (BrokenPipeError, _OutputFailed):  # main() answers for the output stream
        raise
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return EXIT_CONFIG
    except InvalidToken as exc:
        sys.stderr.write(f"token rejected ({exc.code}): {exc}\n")
        return EXIT_REJECTED
    except LoginRefused as exc:
        sys.stderr.write(f"login refused ({exc.code}): {exc}\n")
        return EXIT_REJECTED
    except CorruptRecord as exc:
        sys.stderr.write(f"stored data unreadable ({exc.code}): {exc}\n")
        return EXIT_UNAVAILABLE
    except StorageError as exc:
        sys.stderr.write(f"storage unavailable ({exc.code}): {exc}\n")
        return EXIT_UNAVAILABLE
    except KeySetUnavailable as exc:
        sys.stderr.write(f"issuer keys unavailable ({exc.reason or 'unknown'}): {exc}\n")
        return EXIT_UNAVAILABLE
    except FederationError as exc:  # a typed error without a family above: its words are ours
        sys.stderr.write(f"error ({exc.code}): {exc}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("FEDERATION_DEBUG") == "1":
            raise
        # Only the type: a dependency's message may quote its input (a token, a secret).
        sys.stderr.write(
            f"federation: unexpected error ({type(exc).__name__}); this is a bug, please report it "
            "(FEDERATION_DEBUG=1 shows the traceback)\n"
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
