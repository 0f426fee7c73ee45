"""The command-line commands that read and prepare the user store, and the full demo.

Owns: ``federation users list``, ``federation audit tail`` and ``federation db
init`` (each reads the SQL store named by ``storage:`` in ``--config``; added
to a parser by :func:`add_commands`), and :func:`run_full_demo`: a mock issuer,
verification, an example mapping and provisioning into embedded SQLite, with
the user and the audit trail printed.

Exit codes follow ``federation.cli``: 0 ok, 2 configuration error (a
``storage:`` URL that is not one, names an unknown database or a driver that is
not installed), 3 the store is unavailable (absent database, unreachable
server, schema from a newer release; the message names the database and what
the driver said). :func:`storage_url` and :func:`probe_store` serve
``federation check-config`` too.

Must not: hold provisioning or storage logic; it calls the public API only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import yaml

from . import plugins
from ._files import printable
from ._storage_check import describe_storage_failure, display_url
from ._yaml import config_error_from_problems, read_yaml_file
from .config import BridgeConfig, load_config
from .errors import ConfigError, CorruptRecord, LoginRefused, StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .storage import AuditEvent, SQLStore, User, UserIdentity

__all__ = ["EXAMPLE_MAPPING", "add_commands", "probe_store", "run_full_demo", "storage_url"]

EXIT_OK, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 2, 3


# -- store commands ------------------------------------------------------------------------


def _count(text: str) -> int:
    """An argparse type: a count of rows, 0 to the database's largest integer (a usage
    error otherwise, exit 2)."""
    from .storage import MAX_ROWS

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_ROWS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_ROWS} (not {text!r})")
    return value


def add_commands(subparsers: Any) -> None:
    """Add ``users``, ``audit`` and ``db`` to the ``federation`` command's subparsers."""
    users = subparsers.add_parser("users", help="the users in the store named by a config file")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    listing = users_sub.add_parser("list", help="list users with their identities and roles")
    _config_option(listing)
    listing.add_argument("--limit", type=_count, default=100, help="at most this many users (default 100)")
    listing.add_argument("--offset", type=_count, default=0, help="skip this many users first")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON")
    listing.set_defaults(run=users_list)

    audit = subparsers.add_parser("audit", help="the audit trail in the store named by a config file")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    tail = audit_sub.add_parser("tail", help="print the latest audit events, oldest first")
    _config_option(tail)
    tail.add_argument("-n", "--lines", type=_count, default=20, help="how many events (default 20)")
    tail.add_argument("--json", action="store_true", help="print one JSON object per line")
    tail.set_defaults(run=audit_tail)

    db = subparsers.add_parser("db", help="manage the store's database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    init = db_sub.add_parser("init", help="create the schema, or upgrade it to this release's version")
    _config_option(init)
    init.set_defaults(run=db_init)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the bridge config (YAML) naming 'storage:'")


def storage_url(config: BridgeConfig) -> URL:
    """The store's URL once it parses and its driver imports; else a :class:`ConfigError`
    at the ``storage:`` line of the config file (exit 2, before any connection)."""
    from .bridge import DEFAULT_STORAGE

    try:
        from .storage import check_storage_url

        return check_storage_url(config.storage or DEFAULT_STORAGE, config.base_dir)
    except ConfigError as exc:
        if config.source_file is None or config.storage is None:
            raise
        located = read_yaml_file(config.source_file)
        message = exc.message.removeprefix("storage: ")
        raise config_error_from_problems([(("storage",), message)], located, "bridge config") from None


def _sqlite_file(url: URL) -> Path | None:
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def open_store(url: URL, *, create: bool) -> SQLStore:
    """The store at ``url``; with ``create=False`` a missing database or schema is a
    :class:`StorageError` saying to run ``federation db init`` (nothing is created)."""
    from .storage import SQLStore

    file = _sqlite_file(url)
    if not create and file is not None and not file.exists():
        raise StorageError(f"no database at {file}: run 'federation db init'")
    return SQLStore(url, create_schema=create)


def probe_store(url: URL) -> str:
    """Connect to the store and read its schema version, creating nothing; the state in
    words. Raises :class:`StorageError` (with the database named) when the application
    could not use it."""
    from .storage import SCHEMA_VERSION, SQLStore

    file = _sqlite_file(url)
    if file is not None and not file.exists():
        if not file.parent.is_dir():
            raise StorageError(
                f"the directory {file.parent} does not exist: SQLite cannot create {file.name}"
            )
        return "no database yet (the first login creates it; or run 'federation db init')"
    options: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
        options["connect_args"] = {"connect_timeout": 10}  # a probe must not hang on a dead host
    try:
        with SQLStore(url, create_schema=False, **options) as store:
            version = store.schema_version()
    except StorageError as exc:
        raise StorageError(describe_storage_failure(exc, url)) from exc
    if version is None:
        return "reachable, no schema yet (the first login creates it; or run 'federation db init')"
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the database schema is version {version}; this release of federation-bridge "
            f"knows versions up to {SCHEMA_VERSION}: upgrade federation-bridge"
        )
    if version < SCHEMA_VERSION:
        return f"reachable, schema version {version} (run 'federation db init' to upgrade it)"
    return f"reachable, schema version {version}"


def _fail(exc: StorageError, url: URL) -> int:
    what = "stored data unreadable" if isinstance(exc, CorruptRecord) else "store unavailable"
    sys.stderr.write(f"{what}: {describe_storage_failure(exc, url)}\n")
    return EXIT_UNAVAILABLE


def users_list(args: argparse.Namespace, out: TextIO) -> int:
    """``federation users list``: users, oldest first, with identities and roles."""
    config = load_config(args.config)
    url = storage_url(config)
    try:
        with open_store(url, create=False) as store:
            users = store.list_users(limit=args.limit, offset=args.offset)
            identities = store.identities([u.id for u in users])
            total = store.count_users()
    except StorageError as exc:
        return _fail(exc, url)
    if args.json:
        document = [{**u.as_dict(), "identities": [i.as_dict() for i in identities[u.id]]} for u in users]
        try:
            text = _strict_json({"total": total, "users": document}, indent=2)
        except CorruptRecord as exc:
            return _fail(exc, url)
        out.write(text + "\n")
        return EXIT_OK
    out.write(f"{total} user{'s' if total != 1 else ''} in {display_url(url)}\n")
    for user in users:
        out.write("\n")
        _write_user(out, user, identities[user.id])
    return EXIT_OK


def _write_user(out: TextIO, user: User, identities: list[UserIdentity], indent: str = "") -> None:
    last = user.last_login_at.isoformat() if user.last_login_at else "never"
    rows: list[tuple[str, Any]] = [
        ("id", user.id),
        ("username", user.username),
        (
            "email",
            f"{user.email} ({'verified' if user.email_verified else 'unverified'})" if user.email else None,
        ),
        ("display_name", user.display_name),
        ("status", user.status),
        ("roles", ", ".join(_one(role) for role in sorted(user.roles)) or "-"),
        ("attributes", json.dumps(dict(user.attributes), sort_keys=True) if user.attributes else "-"),
        ("created_at", user.created_at.isoformat()),
        ("last_login_at", last),
    ]
    for name, value in rows:
        out.write(f"{indent}  {name:<14} {_printable(value) if value is not None else '-'}\n")
    for identity in identities:
        issuer, subject, provider = map(_one, (identity.issuer, identity.subject, identity.provider))
        out.write(f"{indent}  {'identity':<14} {issuer} | {subject} ({provider})\n")


#: What a role, an issuer or a subject may hold and still be shown bare in a list.
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+=~-]+")


def _one(value: str) -> str:
    """One item of a list, unmistakable: quoted (JSON) unless plain, so that a role named
    ``viewer, admin`` is not read as two roles, nor a subject as more text of the line."""
    return _printable(value if _PLAIN.fullmatch(value) else json.dumps(value, ensure_ascii=False))


def _printable(value: object) -> str:
    """``value`` for a terminal: a stored row written by another program (or a provider's
    claim) may hold escape sequences or line breaks that would rewrite what is shown."""
    return printable(str(value))


def audit_tail(args: argparse.Namespace, out: TextIO) -> int:
    """``federation audit tail``: the latest audit events."""
    config = load_config(args.config)
    url = storage_url(config)
    try:
        with open_store(url, create=False) as store:
            events = store.audit_tail(args.lines)
    except StorageError as exc:
        return _fail(exc, url)
    if not events and not args.json:  # JSON lines: none is an empty stream
        why = (
            "this config sends audit events to the log (audit: log); set 'audit: store' to keep them here"
            if config.audit == "log"
            else "no login has been audited yet"
        )
        out.write(f"no audit events in {display_url(url)}: {why}\n")
        return EXIT_OK
    try:
        lines = [
            _strict_json(event.as_dict(), sort_keys=True) if args.json else _audit_line(event)
            for event in events
        ]
    except CorruptRecord as exc:
        return _fail(exc, url)
    for line in lines:
        out.write(line + "\n")
    return EXIT_OK


def _strict_json(value: Any, **options: Any) -> str:
    """JSON a strict parser reads: a stored NaN or infinity (which no release writes, and
    Python's json would print as a bare literal) is a :class:`CorruptRecord`."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:
        raise CorruptRecord("a stored value is not a finite number") from None


def _audit_line(event: AuditEvent) -> str:
    from .storage import audit_fields, audit_value

    # Values go through the audit line's own quoting: claim-derived text cannot forge a line.
    pairs: list[tuple[str, Any]] = []
    if event.user_id:
        pairs.append(("user", event.user_id))
    if event.issuer:
        pairs.append(("identity", f"{event.issuer}|{event.subject}"))
    pairs.extend(sorted((_one(str(key)), value) for key, value in event.detail.items()))  # keys stored too
    return "  ".join([event.at.isoformat(), f"{audit_value(event.name):<16}", audit_fields(pairs)])


def db_init(args: argparse.Namespace, out: TextIO) -> int:
    """``federation db init``: create the schema, or upgrade it."""
    config = load_config(args.config)
    url = storage_url(config)
    try:
        with open_store(url, create=True) as store:
            before, after = store.init_schema()
            where = display_url(url)
    except StorageError as exc:
        return _fail(exc, url)
    if before is None:
        out.write(f"created the federation schema (version {after}) in {where}\n")
    elif before == after:
        out.write(f"the federation schema in {where} is up to date (version {after})\n")
    else:
        out.write(f"upgraded the federation schema in {where} from version {before} to {after}\n")
    return EXIT_OK


# -- the full demo -------------------------------------------------------------------------

#: The demo's mapping file (``mapping.yaml`` beside ``federation.yaml``); docs/provisioning.md explains it.
EXAMPLE_MAPPING = """\
version: 1
attributes:
  username:
    from: [$username, $email]
    transform: [localpart, lower]
    update: on_create            # chosen once; the user may rename it locally
  email:
    from: $email                 # updated at every login (update: always)
  display_name:
    from: name
  department:
    from: department
roles:
  sync: authoritative            # roles the rules no longer grant are revoked...
  protected: [owner]             # ...except these, granted by the application
  default: [member]
  rules:
    - when: {claim: $groups, contains: staff}
      grant: [staff]
    - when: {claim: $groups, contains: admins}
      grant: [admin]
deny:
  - when: {claim: account_status, equals: suspended}
    code: account_suspended
"""


def run_full_demo(out: TextIO, *, provider: str = "oidc", as_json: bool = False) -> int:
    """The whole path on embedded defaults: mock issuer, verify, map, provision into SQLite.

    Four logins of one person (created; updated with a new group and name;
    refused by a deny rule while suspended; refused once deprovisioned), then
    the user and the audit trail as the store holds them. No network; the database
    lives in a temporary directory.
    """
    from .bridge import Bridge
    from .testing import FrozenClock, MockIdP

    demos = {p.name: p.demo for p in plugins.plugins() if p.demo is not None}
    demo = demos.get(provider)
    if demo is None:
        sys.stderr.write(f"unknown provider {provider!r}; one of {', '.join(demos)}\n")
        return EXIT_CONFIG
    clock = FrozenClock(float(int(time.time())))
    idp = MockIdP.for_provider(provider, **demo.params, clock=clock)
    person: dict[str, Any] = dict(demo.person)
    returning = {**person, **demo.returning}  # the later logins: changed by the identity provider
    suspended = {**returning, "account_status": "suspended"}
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="federation-demo-") as tmp:
        base = Path(tmp)
        config = {
            # the demo's own issuer vouches for its emails: stored as verified only then
            "issuers": [idp.issuer_config(trust_email=True)],
            "mapping": "mapping.yaml",
            "storage": "sqlite:///federation.db",
        }
        (base / "federation.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (base / "mapping.yaml").write_text(EXAMPLE_MAPPING)
        bridge = Bridge.from_file(
            base / "federation.yaml",
            http_client=idp.client(),
            async_http_client=idp.async_client(),
            clock=clock,
            on_event=lambda event: None,
            audit="store",
        )
        with bridge:
            first = bridge.login(idp.mint(person))
            steps.append(_step("first login", first))
            clock.advance(3600)  # an hour later
            second = bridge.login(idp.mint(returning))
            steps.append(_step("second login", second))
            steps.append(_refusal(bridge, "login while suspended", idp.mint(suspended)))
            issuer, subject = second.identity.key
            gone = bridge.deprovision(issuer=issuer, subject=subject, reason="left the company")
            steps.append({"step": "deprovision", "action": gone.action if gone else None})
            steps.append(_refusal(bridge, "login after deprovisioning", idp.mint(returning)))
            store = cast("SQLStore", bridge.store)
            user = store.list_users(limit=1)[0]
            identities = store.identities([user.id])[user.id]
            trail = store.audit_tail(50)
            url = "sqlite:///federation.db (in a temporary directory, removed after the run)"
    if as_json:
        document = {
            "provider": provider,
            "storage": url,
            "steps": steps,
            "user": {**user.as_dict(), "identities": [i.as_dict() for i in identities]},
            "audit": [e.as_dict() for e in trail],
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        return EXIT_OK
    out.write(f"federation demo: verify, map and provision, with a mock {provider} issuer, no network\n")
    out.write(f"storage          {url}\n")
    out.write("mapping          mapping.yaml (beside it: the example of docs/provisioning.md)\n\n")
    for step in steps:
        out.write(f"{step['step']:<28} {_describe(step)}\n")
    out.write("\nthe user in the store\n")
    _write_user(out, user, identities)
    out.write("\naudit trail\n")
    for event in trail:
        out.write(f"  {_audit_line(event)}\n")
    return EXIT_OK


def _step(label: str, result: Any) -> dict[str, Any]:
    return {
        "step": label,
        "user_id": result.user.id,
        "created": result.created,
        "changes": sorted(result.changes),
        "granted": sorted(result.granted),
        "revoked": sorted(result.revoked),
    }


def _refusal(bridge: Any, label: str, token: str) -> dict[str, Any]:
    try:
        bridge.login(token)
    except LoginRefused as exc:
        return {"step": label, "refused": exc.code, "reason": exc.reason}
    return {"step": label, "refused": None}


def _describe(step: Mapping[str, Any]) -> str:
    if "action" in step:
        return f"user {step['action']}d"
    if "refused" in step:
        reason = f" ({step['reason']})" if step.get("reason") else ""
        return f"refused: {step['refused']}{reason}"
    if step["created"]:
        return f"created user {step['user_id']}, roles granted: {', '.join(step['granted']) or '-'}"
    changed = ", ".join(step["changes"]) or "nothing"
    extra = f"; granted {', '.join(step['granted'])}" if step["granted"] else ""
    extra += f"; revoked {', '.join(step['revoked'])}" if step["revoked"] else ""
    return f"updated: {changed}{extra}"
