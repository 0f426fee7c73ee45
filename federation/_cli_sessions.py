"""The command-line commands over the app's own sessions: list, revoke, purge.

Owns: ``federation sessions list --user ID``, ``federation sessions revoke
--user ID [--session SID]`` and ``federation sessions purge`` (each builds
the bridge of ``--config`` and calls its public session API), and the
``sessions`` line of ``federation check-config``.

Exit codes follow ``federation.cli``: 0 ok, 2 configuration error (no
``sessions:`` section, ``revocation: memory``, which no other process can
reach), 3 the store is unavailable, 4 no such session for that user.

Must not: hold session logic; it calls the public API only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from .config import BridgeConfig, load_config
from .errors import ConfigError, CorruptRecord, StorageError

__all__ = ["add_commands", "describe_sessions"]

EXIT_OK, EXIT_CONFIG, EXIT_NOT_FOUND = 0, 2, 4


def add_commands(subparsers: Any) -> None:
    """Add ``sessions`` to the ``federation`` command's subparsers."""
    sessions = subparsers.add_parser("sessions", help="the app's own sessions in the store of a config file")
    sub = sessions.add_subparsers(dest="sessions_command", metavar="command", required=True)
    listing = sub.add_parser("list", help="a user's live sessions: id, issued, expires, last refreshed")
    _common(listing)
    listing.add_argument("--user", required=True, type=_user_id, help="the local user id")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON")
    listing.set_defaults(run=sessions_list)
    revoke = sub.add_parser(
        "revoke",
        help="revoke every session and token of a user, or one session (--session)",
        description="Revoke at once: with --session, that one session (its refresh and access tokens); "
        "without, every session and token the user holds. Exit 4 when the session is not the user's.",
    )
    _common(revoke)
    revoke.add_argument("--user", required=True, type=_user_id, help="the local user id")
    revoke.add_argument("--session", type=_user_id, help="one session id (from 'sessions list')")
    revoke.add_argument("--reason", default="cli", type=_user_id, help="recorded in the audit event")
    revoke.set_defaults(run=sessions_revoke)
    purge = sub.add_parser("purge", help="delete ended sessions, refresh tokens and revocations")
    _common(purge)
    purge.set_defaults(run=sessions_purge)


def _user_id(text: str) -> str:
    """An argparse type: an id is never empty (``--user ""`` would revoke nobody's sessions),
    and is printable text: ids are, and bytes that are no UTF-8 (or a terminal's escape
    sequences) would only reach the store or the screen."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if not text.isprintable() or len(text) > 255:
        raise argparse.ArgumentTypeError("must be printable text of at most 255 characters")
    return text


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the bridge config (YAML) with 'sessions:'")


@contextmanager
def _bridge(path: str) -> Iterator[Any]:
    """The config's bridge, over the store as it is: a database or schema that is missing or
    old is an error (run ``federation db init``), never created here, so a mistyped storage
    URL cannot report a revocation made in a new, empty database."""
    from ._cli_store import open_store, storage_url
    from ._storage_check import describe_storage_failure
    from .bridge import Bridge

    config = load_config(path)
    if config.sessions is None:
        raise ConfigError(f"{path}: no sessions: section", field="sessions")
    if config.sessions.revocation == "memory":
        raise ConfigError(
            "sessions.revocation is memory: each process keeps its own; the command line cannot reach it",
            field="sessions.revocation",
        )
    if config.sessions.revocation != "store":  # Redis: the sessions live there
        with Bridge(config, on_event=lambda event: None, audit=None) as bridge:
            yield bridge
        return
    url = storage_url(config)
    try:
        with open_store(url, create=False) as store, Bridge(
            config, store=store, on_event=lambda event: None, audit=None
        ) as bridge:
            yield bridge
    except CorruptRecord:
        raise
    except StorageError as exc:  # name the database and say what the driver said
        raise StorageError(describe_storage_failure(exc, url)) from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def sessions_list(args: argparse.Namespace, out: TextIO) -> int:
    """``federation sessions list``."""
    with _bridge(args.config) as bridge:
        found = bridge.sessions_of(args.user)
    rows = [
        {
            "session_id": s.session_id,
            "issued_at": _iso(s.issued_at),
            "expires_at": _iso(s.expires_at),
            "refreshed_at": _iso(s.refreshed_at),
        }
        for s in found
    ]
    if args.json:
        json.dump({"user_id": args.user, "sessions": rows}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    out.write(f"{len(rows)} live session{'s' if len(rows) != 1 else ''} of user {args.user}\n")
    for row in rows:
        out.write(
            f"  {row['session_id']}  issued {row['issued_at']}  expires {row['expires_at']}  "
            f"refreshed {row['refreshed_at'] or 'never'}\n"
        )
    return EXIT_OK


def sessions_revoke(args: argparse.Namespace, out: TextIO) -> int:
    """``federation sessions revoke``."""
    with _bridge(args.config) as bridge:
        if args.session is None:
            # A mistyped id in an offboarding script must not report a revocation. The users
            # are visible here when the sessions live in the store; with Redis they may live
            # in a store of the application's own, and a generation is kept for any id.
            if bridge.config.sessions.revocation == "store":
                with bridge.store.transaction() as users:
                    known = users.get_user(args.user) is not None
                if not known:
                    out.write(f"no user {args.user}: nothing revoked\n")
                    return EXIT_NOT_FOUND
            generation = bridge.revoke_user(args.user, reason=args.reason)
            out.write(f"revoked every session and token of user {args.user} (generation {generation})\n")
            return EXIT_OK
        record = bridge.sessions.store.get_session(args.session)
        if record is None or record.user_id != args.user:
            out.write(f"no session {args.session} of user {args.user}\n")
            return EXIT_NOT_FOUND
        bridge.revoke_session(args.session, reason=args.reason)
    out.write(f"revoked session {args.session} of user {args.user}\n")
    return EXIT_OK


def sessions_purge(args: argparse.Namespace, out: TextIO) -> int:
    """``federation sessions purge``."""
    with _bridge(args.config) as bridge:
        removed = bridge.sessions.store.purge(now=datetime.now(timezone.utc))
    out.write(f"purged {removed} ended row{'s' if removed != 1 else ''}\n")
    return EXIT_OK


def describe_sessions(config: BridgeConfig) -> str | None:
    """The ``check-config`` line of ``sessions:`` once its keys load and fit; None without one."""
    from .bridge import session_tokens

    tokens = session_tokens(config)
    if tokens is None or config.sessions is None:
        return None
    ring = tokens.ring
    count = len(ring.keys)
    what = "a shared secret" if ring.algorithm == "HS256" else f"{count} key{'s' if count != 1 else ''}"
    return (
        f"sessions {config.sessions.issuer}: ok ({ring.algorithm}, {what}, "
        f"signing kid {ring.signing_key.kid}, revocation {display_revocation(config.sessions.revocation)})"
    )


def display_revocation(value: str) -> str:
    """``sessions.revocation`` as it may be shown: a Redis URL without its password."""
    if not value.startswith(("redis://", "rediss://")):
        return value
    parts = urlsplit(value)
    if parts.password is None:
        return value
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, ""))
