"""The SQL store: users, identities and audit in SQLite or PostgreSQL (SQLAlchemy 2 Core).

Owns: :class:`SQLStore` (the storage protocol over four tables), the schema
and its version table (created on first use, upgraded by :meth:`SQLStore.init_schema`
through :data:`MIGRATIONS`), the per-database transaction discipline, the
mapping of driver errors onto :class:`~federation.errors.StorageConflict` /
:class:`~federation.errors.StorageError`, the audit table sink, and URL
resolution (``sqlite:///federation.db`` relative to the config's directory,
``postgresql://`` with psycopg 3).

Atomicity, per database:

* SQLite: every transaction starts with ``BEGIN IMMEDIATE`` (one writer at a
  time, the others wait up to ``busy_timeout``), in WAL mode so readers never
  block. Twenty concurrent first logins run one after the other; the second
  finds the identity the first created.
* PostgreSQL: READ COMMITTED, ``SELECT ... FOR UPDATE`` on the user rows a
  login reads, and a unique primary key on (issuer, subject). Concurrent first
  logins race; the loser's insert waits for the winner's commit and fails with
  a unique violation, surfaced as :class:`~federation.errors.DuplicateIdentity`;
  the whole transaction (its user row included) rolls back and provisioning
  retries, now finding the winner's identity. Each statement sees what was
  committed before it, so a login may find no identity and then, one
  statement later, the winner's user and identity among its email
  candidates: provisioning treats that as a conflict too and retries.
  Serialization failures and deadlocks are retried the same way.

Must not: decide provisioning policy; it stores what it is told.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from ..errors import (
    ConfigError,
    ConnectionLost,
    CorruptRecord,
    DuplicateIdentity,
    StorageConflict,
    StorageError,
)
from ._records import (
    TEXT,
    USER_FIELDS,
    AuditEvent,
    NewUser,
    User,
    UserIdentity,
    email_key,
    stored_audit_event,
    stored_identity,
    stored_reader,
    stored_user,
)
from ._session_protocol import LocalCredential

if TYPE_CHECKING:
    from ._sql_sessions import SQLSessionStore

__all__ = [
    "MAX_ROWS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SUPPORTED_BACKENDS",
    "SQLStore",
    "check_storage_url",
    "resolve_url",
]

T = TypeVar("T")

#: The schema version this release reads and writes (2: the session tables and local credentials).
SCHEMA_VERSION = 2

#: Upgrades: ``MIGRATIONS[n](connection, store)`` takes a version-``n`` schema to ``n + 1``.
#: Each runs inside the upgrade's transaction (PostgreSQL and SQLite both have transactional DDL).
MIGRATIONS: dict[int, Callable[[Connection, SQLStore], None]] = {}


def _add_session_tables(conn: Connection, store: SQLStore) -> None:
    """Version 1 to 2: the session, revocation and credential tables (no existing table changes)."""
    for table in store.session_tables:
        table.create(conn, checkfirst=True)


MIGRATIONS[1] = _add_session_tables

# SQLSTATEs worth a retry: serialization failure, deadlock.
_RETRY_STATES = frozenset({"40001", "40P01"})
_UNIQUE_VIOLATION = "23505"


# datetime.combine(d, d.time(), tz) is d.replace(tzinfo=tz), fold included, in positional
# arguments: profiled, replace's keyword parsing cost 0.7 µs a call, combine 0.1 µs.
_combine = datetime.combine


def _as_utc(value: datetime | None) -> datetime | None:
    """A stored time as aware UTC: a naive one is UTC (SQLite keeps it so), an aware one converted."""
    if value is None:
        return None
    if value.tzinfo is None:
        return _combine(value, value.time(), timezone.utc)
    return value.astimezone(timezone.utc)


class _Checked:
    """A column type whose result processing refuses what no release writes, naming ``field``
    (a :class:`~federation.errors.CorruptRecord`, never the parser's error, which may quote
    the value)."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def corrupt(self, kind: str) -> CorruptRecord:
        return CorruptRecord(f"a stored value in {self.field} is not {kind}")


class _UTCDateTime(_Checked, TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        return _combine(value, value.time()) if dialect.name == "sqlite" else value  # naive UTC

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None]:
        """The driver's value, through the dialect's own processing, then :func:`_as_utc`: one
        call per value instead of TypeDecorator's chain of wrappers (every login reads four).
        A value that is no time (SQLite keeps whatever it is given) is a CorruptRecord."""
        impl = self.impl_instance.result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            try:
                return _as_utc(impl(value) if impl is not None else value)
            except (ValueError, TypeError, AttributeError):
                raise self.corrupt("a valid time") from None

        return process


class _Flag(_Checked, TypeDecorator[bool]):
    """A boolean that reads back only as one: SQLAlchemy's SQLite processing makes any stored
    value true or false (the text ``no`` true), so a value other than 0 or 1 is a CorruptRecord."""

    impl = Boolean
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], bool | None]:
        def process(value: Any) -> bool | None:
            if value is None or value.__class__ is bool:
                return value
            if value.__class__ is int and (value == 0 or value == 1):
                return value == 1
            raise self.corrupt("a boolean")

        return process


class _Document(_Checked, TypeDecorator[Any]):
    """A JSON document (PostgreSQL: JSONB). A stored text that is not one is a CorruptRecord
    (the message without json's, which quotes the text)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """SQLAlchemy's processing (none where the driver decodes: psycopg); for a document that
        SQLite keeps as text, the same answer in one call (profiled: SQLAlchemy's two wrappers
        around ``json.loads`` and its two whitespace scans cost more than the scan itself)."""
        default = self.impl_instance.result_processor(dialect, coltype)
        if default is None:
            return None
        fast = dialect.name == "sqlite" and getattr(dialect, "_json_deserializer", None) is None

        def process(value: Any) -> Any:
            if fast and type(value) is str:
                try:
                    document, end = _SCAN_JSON(value, 0)
                except (StopIteration, ValueError, RecursionError):
                    pass  # not a document at 0 (whitespace, a mark, an error): json.loads decides
                else:
                    if end == len(value):  # nothing after it: what json.loads returns
                        return document
            try:
                return default(value)
            except (ValueError, TypeError, RecursionError):  # deeper than any release writes
                raise self.corrupt("a JSON document") from None

        return process


# json.loads' own scanner (its default decoder's settings); set by JSONDecoder.__init__
_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def resolve_url(url: str | URL, base_dir: str | Path | None = None) -> URL:
    """An SQLAlchemy URL with the bridge's conventions applied.

    ``sqlite:///relative.db`` is relative to ``base_dir`` (the config file's
    directory), not to the working directory; ``postgresql://`` (no driver)
    means psycopg 3.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError("storage: not a database URL", field="storage") from None
    if "\x00" in (parsed.database or ""):
        raise ConfigError("storage: the database name holds a NUL character", field="storage")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.is_absolute():
                path = Path(base_dir or Path.cwd()) / path
            parsed = parsed.set(database=str(path))
    elif parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


#: The databases the SQL store's transaction discipline is written and tested for.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")

# How to install each driver SQLAlchemy can name; the default psycopg 3 comes with our extra.
_INSTALL = {
    "postgresql+psycopg": "pip install 'federation-bridge[postgres]'",
    "postgresql+psycopg2": "pip install psycopg2-binary",
    "postgresql+pg8000": "pip install pg8000",
    "postgresql+asyncpg": "pip install asyncpg",
    "mysql+mysqldb": "pip install mysqlclient",
    "mysql+pymysql": "pip install pymysql",
    "mysql+mysqlconnector": "pip install mysql-connector-python",
    "mssql+pyodbc": "pip install pyodbc",
    "oracle+oracledb": "pip install oracledb",
}


def check_storage_url(url: str | URL, base_dir: str | Path | None = None) -> URL:
    """The resolved URL, once its dialect is known and its driver importable.

    Raises :class:`ConfigError` (``field="storage"``) for a string that is not
    a database URL, a dialect SQLAlchemy does not know, or a driver module that
    is not installed (the message names the module and how to install it).
    """
    return _check_driver(resolve_url(url, base_dir))  # ConfigError for a string that is not a URL


def _check_driver(parsed: URL) -> URL:
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"storage: unknown database {parsed.drivername!r} (SQLAlchemy has no such dialect); "
            f"the SQL store supports {' and '.join(SUPPORTED_BACKENDS)}, "
            "e.g. sqlite:///federation.db or postgresql+psycopg://user@host/db",
            field="storage",
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = exc.name or str(exc)
        name = f"{parsed.get_backend_name()}+{parsed.get_driver_name()}"
        install = _INSTALL.get(name, f"pip install {module}")
        raise ConfigError(
            f"storage: the {name} driver needs the Python module {module!r}, which is not "
            f"installed: {install}",
            field="storage",
        ) from None
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (
        not url.database or url.database == ":memory:" or "mode=memory" in url.database
    )


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def _storage_error(exc: SQLAlchemyError, *, committing: bool = False) -> StorageError:
    """A typed error for a driver failure; the message never carries SQL parameters.

    A broken connection (SQLAlchemy saw a disconnect and invalidated it, and the pool's
    older connections with it) is :class:`~federation.errors.ConnectionLost` (nothing
    committed: worth one retry on a new connection), unless it broke while ``committing``:
    then the outcome is unknown and it is a plain ``StorageError``.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            if committing:
                return StorageError("the database connection was lost at commit; the outcome is unknown")
            return ConnectionLost("the database connection was lost; nothing was written")
        state = _sqlstate(exc)
        if state in _RETRY_STATES:
            return StorageConflict(f"the database reported a conflict ({state}); retry")
        if "database is locked" in str(exc.orig):
            return StorageConflict("the SQLite database stayed locked beyond busy_timeout")
        return StorageError(f"the database failed ({type(exc.orig).__name__}){_hint(state, exc.orig)}")
    return StorageError(f"the database failed ({type(exc).__name__})")


def _hint(state: str | None, orig: BaseException | None) -> str:
    """What to do about the two failures a new deployment meets first (never a value)."""
    if state == "3F000":  # PostgreSQL invalid_schema_name (schema= or the URL's search_path)
        return ": the schema does not exist; create it first, CREATE SCHEMA <name>"
    if "unable to open database file" in str(orig):  # SQLite: the file's folder is missing or read-only
        return ": the SQLite file cannot be opened; does its directory exist, and may this process write?"
    return ""


Parsed = Callable[[Any], Any]


class _Statements:
    """Each storage-protocol operation as a statement and what its result means.

    Written once for the sync transaction (:class:`_SQLTransaction`) and the
    native async one (``AsyncSQLStore``): a shell only executes.
    """

    def __init__(self, store: SQLStore) -> None:
        self.users = store.users_table
        self.identities = store.identities_table
        self.credentials = store.credentials_table
        self._email_namespace = (
            f"federation-email:{store.schema}:{store.table_prefix}:"
            if store.url.get_backend_name() == "postgresql"
            else None  # SQLite: BEGIN IMMEDIATE makes logins take turns already
        )

    def email_lock(self, email_key: str) -> Any:
        """PostgreSQL: a transaction lock on the address, before the users holding it are read.

        Two first logins of one verified address at two issuers (``link_by_email``) both
        read no user under READ COMMITTED and both created one: an address nobody holds
        yet has no row to lock. The second now waits for the first's commit and links.
        """
        if self._email_namespace is None:
            return None
        key = _advisory_key(self._email_namespace + email_key)
        return select(func.pg_advisory_xact_lock(bindparam("key", key, type_=BigInteger)))

    def find_identity(self, issuer: str, subject: str) -> tuple[Any, Parsed]:
        t = self.identities
        query = select(t).where(t.c.issuer == issuer, t.c.subject == subject)
        return query, lambda result: _maybe(result.first(), _identity)

    def get_user(self, user_id: str) -> tuple[Any, Parsed]:
        t = self.users
        return select(t).where(t.c.id == user_id).with_for_update(), lambda r: _maybe(r.first(), _user)

    def find_users_by_email(self, email_key: str) -> tuple[Any, Parsed]:
        t = self.users
        query = select(t).where(t.c.email_key == email_key).order_by(t.c.created_at, t.c.id)
        return query.with_for_update(), lambda result: [_user(row) for row in result]

    def identities_of(self, user_id: str) -> tuple[Any, Parsed]:
        t = self.identities
        query = select(t).where(t.c.user_id == user_id).order_by(t.c.issuer, t.c.subject)
        return query, lambda result: [_identity(row) for row in result]

    def insert_user(self, user: NewUser) -> tuple[Any, str]:
        user_id = str(uuid.uuid4())
        values = {f.name: getattr(user, f.name) for f in dataclasses.fields(user)}
        return insert(self.users).values(id=user_id, **_user_columns(values)), user_id

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> Any:
        """The UPDATE, or None when there is nothing to change."""
        unknown = set(changes) - USER_FIELDS
        if unknown:
            raise ValueError(f"not user fields: {sorted(unknown)}")
        if not changes:
            return None
        t = self.users
        return update(t).where(t.c.id == user_id).values(**_user_columns(changes))

    def insert_identity(self, identity: UserIdentity) -> Any:
        return insert(self.identities).values(
            issuer=identity.issuer,
            subject=identity.subject,
            provider=identity.provider,
            user_id=identity.user_id,
            created_at=identity.created_at,
        )

    def delete_user(self, user_id: str) -> tuple[Any, ...]:
        return (
            delete(self.credentials).where(self.credentials.c.user_id == user_id),
            delete(self.identities).where(self.identities.c.user_id == user_id),
            delete(self.users).where(self.users.c.id == user_id),
        )


class _DriverRead:
    """A SELECT compiled once for a dialect, to run on the DBAPI cursor: its SQL, how its
    parameters are passed, and each column's result processing (SQLAlchemy's own, so the
    values are what ``Connection.execute`` would give)."""

    def __init__(self, query: Select[Any], dialect: Dialect) -> None:
        compiled = query.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = compiled.positiontup  # parameter names in order (qmark), or None (named)
        self.psycopg = dialect.driver in ("psycopg", "psycopg_async")
        columns = list(query.selected_columns)
        self.index = {str(c.key): i for i, c in enumerate(columns)}  # column (or label) -> position
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self.processing = tuple((i, p) for i, p in enumerate(processors) if p is not None)

    def params(self, values: Mapping[str, Any]) -> Any:
        """The parameters as the driver takes them (the values are strings: no bind processing)."""
        return values if self.positional is None else tuple(values[name] for name in self.positional)

    def values(self, raw: Sequence[Any]) -> list[Any]:
        """A fetched row's values, processed, in column order."""
        values = list(raw)
        for i, process in self.processing:
            values[i] = process(values[i])
        return values


class _LoginRead(_DriverRead):
    """:meth:`SQLStore.login_query` on the driver, and its row as records (by position)."""

    def __init__(self, query: Select[Any], dialect: Dialect) -> None:
        super().__init__(query, dialect)
        ix = self.index
        self.identity = itemgetter(*(ix[name] for name in _IDENTITY_COLUMNS))
        self.user = itemgetter(*(ix[name] for name in _JOINED_USER_COLUMNS))
        self.user_id = ix["u_id"]

    def login(self, values: list[Any]) -> tuple[UserIdentity, User | None]:
        """What :meth:`SQLStore.login_of` makes of the same row."""
        identity = stored_identity(self.identity(values))
        if values[self.user_id] is None:
            return identity, None
        return identity, stored_user(self.user(values))


#: The largest row count or offset a query takes (SQL's BIGINT; SQLite's integers are 64-bit).
MAX_ROWS = 2**63 - 1


def _count_argument(name: str, value: int) -> None:
    """A row count or offset given by a caller: a non-negative int (not a bool) that fits
    the database's 64-bit integer (larger ones overflowed in the driver)."""
    if type(value) is not int or not 0 <= value <= MAX_ROWS:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_ROWS}")


def _again_if_lost(read: Callable[[], T]) -> T:
    """``read()``, and once more when its connection was lost (a read wrote nothing; the
    pool hands out a new connection)."""
    try:
        return read()
    except ConnectionLost:
        return read()


def _maybe(row: Row[Any] | None, parse: Callable[[Row[Any]], T]) -> T | None:
    return None if row is None else parse(row)


def identity_conflict(exc: IntegrityError) -> StorageConflict:
    """What a failed identity insert means: the key is taken (a concurrent first login
    committed it), or the user went meanwhile."""
    if _sqlstate(exc) in (None, _UNIQUE_VIOLATION) and "FOREIGN KEY" not in str(exc.orig):
        return DuplicateIdentity("the identity is already linked")
    return StorageConflict("the user was removed concurrently")


def sqlite_discipline(engine: Engine, busy_timeout: float, *, memory: bool = False) -> None:
    """SQLite's transaction rules on ``engine`` (an async engine's ``sync_engine`` too): WAL,
    foreign keys, ``busy_timeout``, and ``BEGIN IMMEDIATE`` for every transaction but a lone read."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take transaction control from the sqlite3 module: we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("federation_unlocked_read"):
            return  # a lone read (find_login): autocommit, no write lock
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # one writer at a time: no lost updates


class _SQLTransaction:
    """The storage protocol's operations on one open connection."""

    def __init__(self, store: SQLStore, conn: Connection) -> None:
        self._q = store.statements
        self._conn = conn

    def _read(self, planned: tuple[Any, Parsed]) -> Any:
        statement, parse = planned
        return parse(self._conn.execute(statement))

    def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        found: UserIdentity | None = self._read(self._q.find_identity(issuer, subject))
        return found

    def get_user(self, user_id: str) -> User | None:
        found: User | None = self._read(self._q.get_user(user_id))
        return found

    def find_users_by_email(self, email_key: str) -> Sequence[User]:
        lock = self._q.email_lock(email_key)
        if lock is not None:
            self._conn.execute(lock)
        found: list[User] = self._read(self._q.find_users_by_email(email_key))
        return found

    def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        found: list[UserIdentity] = self._read(self._q.identities_of(user_id))
        return found

    def insert_user(self, user: NewUser) -> str:
        statement, user_id = self._q.insert_user(user)
        self._conn.execute(statement)
        return user_id

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        statement = self._q.update_user(user_id, changes)
        if statement is not None:
            self._conn.execute(statement)

    def insert_identity(self, identity: UserIdentity) -> None:
        try:
            self._conn.execute(self._q.insert_identity(identity))
        except IntegrityError as exc:
            raise identity_conflict(exc) from exc

    def delete_user(self, user_id: str) -> None:
        for statement in self._q.delete_user(user_id):
            self._conn.execute(statement)


def _user_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    columns = dict(values)
    if "roles" in columns:
        columns["roles"] = sorted(columns["roles"])
    if "attributes" in columns:
        columns["attributes"] = dict(columns["attributes"])
    if "email" in columns:
        columns["email_key"] = email_key(columns["email"])
    return columns


_USER_COLUMNS = tuple(f.name for f in dataclasses.fields(User))  # a users row's columns in User's order
_JOINED_USER_COLUMNS = tuple(f"u_{name}" for name in _USER_COLUMNS)  # the same, labelled in a join
_IDENTITY_COLUMNS = tuple(f.name for f in dataclasses.fields(UserIdentity))
_AUDIT_COLUMNS = ("name", "at", "user_id", "issuer", "subject", "detail")
_CREDENTIAL_COLUMNS = tuple(f.name for f in dataclasses.fields(LocalCredential))
_stored_credential = stored_reader(
    LocalCredential,
    "credential",
    {"user_id": str, "username_key": str, "email_key": TEXT, "password_hash": str, "updated_at": datetime},
)


def _user(row: Row[Any]) -> User:
    m = row._mapping
    return stored_user([m[name] for name in _USER_COLUMNS])


def _joined_user(m: Mapping[Any, Any]) -> User | None:
    """The user of a row that joined its ``u_``-labelled columns (none: no such user)."""
    return None if m["u_id"] is None else stored_user([m[name] for name in _JOINED_USER_COLUMNS])


def _identity(row: Row[Any]) -> UserIdentity:
    m = row._mapping
    return stored_identity([m[name] for name in _IDENTITY_COLUMNS])


def _audit(row: Row[Any]) -> AuditEvent:
    m = row._mapping
    return stored_audit_event([m[name] for name in _AUDIT_COLUMNS])


class SQLStore:
    """Users, identities and an audit table in one SQL database.

    ``url`` is an SQLAlchemy URL: ``sqlite:///federation.db`` (relative to
    ``base_dir``), ``sqlite://`` (in memory, one connection) or
    ``postgresql+psycopg://user@host/db``. Tables are named
    ``{table_prefix}users``, ``...identities``, ``...audit`` and
    ``...schema_version``, in ``schema`` when given (PostgreSQL). The schema
    is created on first use unless ``create_schema=False`` (then run
    ``federation db init``). ``busy_timeout`` is how long an SQLite writer
    waits for the lock, in seconds. ``engine`` lets an application share its
    own engine (its pool, its event hooks); the SQLite transaction discipline
    above is then the application's to configure.
    """

    def __init__(
        self,
        url: str | URL = "sqlite:///federation.db",
        *,
        base_dir: str | Path | None = None,
        table_prefix: str = "federation_",
        schema: str | None = None,
        create_schema: bool = True,
        busy_timeout: float = 30.0,
        engine: Engine | None = None,
        **engine_options: Any,
    ) -> None:
        self.url = engine.url if engine is not None else resolve_url(url, base_dir)
        self.table_prefix = table_prefix
        self.schema = schema
        self.create_schema = create_schema
        self._memory_lock: threading.Lock | None = None
        self._schema_lock = threading.RLock()
        self._schema_ready = False
        if engine is None:
            _check_driver(self.url)  # a driver not installed: ConfigError naming its pip install
            engine = self._create_engine(busy_timeout, engine_options)
        self.engine = engine
        self._login_query: Select[Any] | None = None
        self._login_read: _LoginRead | None = None
        self._sessions: SQLSessionStore | None = None
        # find_login's read: SQLite skips our BEGIN IMMEDIATE (the sqlite3 module is in autocommit
        # mode); other databases run it in autocommit (one round trip, no BEGIN/ROLLBACK).
        self._unlocked_read: dict[str, Any] = (
            {"federation_unlocked_read": True}
            if self.engine.dialect.name == "sqlite"
            else {"isolation_level": "AUTOCOMMIT"}
        )
        self.metadata = MetaData(schema=schema)
        p = table_prefix
        self.users_table = Table(
            f"{p}users",
            self.metadata,
            Column("id", String(36), primary_key=True),
            Column("username", String(255)),
            Column("email", String(254)),
            Column("email_key", String(254)),
            Column("email_verified", _Flag("email_verified"), nullable=False),
            Column("display_name", String(256)),
            Column("roles", _Document("roles"), nullable=False),
            Column("attributes", _Document("attributes"), nullable=False),
            Column("status", String(16), nullable=False),
            Column("created_at", _UTCDateTime("created_at"), nullable=False),
            Column("updated_at", _UTCDateTime("updated_at"), nullable=False),
            Column("last_login_at", _UTCDateTime("last_login_at")),
            Index(f"{p}users_email_key", "email_key"),
            Index(f"{p}users_username", "username"),
        )
        self.identities_table = Table(
            f"{p}identities",
            self.metadata,
            Column("issuer", String(1024), primary_key=True),
            Column("subject", String(1024), primary_key=True),
            Column("provider", String(64), nullable=False),
            Column(
                "user_id",
                String(36),
                ForeignKey(self.users_table.c.id, ondelete="CASCADE"),
                nullable=False,
            ),
            Column("created_at", _UTCDateTime("created_at"), nullable=False),
            Index(f"{p}identities_user_id", "user_id"),
        )
        self.audit_table = Table(
            f"{p}audit",
            self.metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
            Column("at", _UTCDateTime("at"), nullable=False),
            Column("name", String(64), nullable=False),
            Column("user_id", String(36)),
            Column("issuer", String(1024)),
            Column("subject", String(1024)),
            Column("detail", _Document("detail"), nullable=False),
            Index(f"{p}audit_user_id", "user_id"),
        )
        # -- version 2: the app's own sessions (see federation.storage.SessionStore) and local
        # credentials. Session rows carry no foreign key to users: a user's generation and
        # revocations must outlive the user row (a deleted user's tokens stay refused).
        self.sessions_table = Table(
            f"{p}sessions",
            self.metadata,
            Column("session_id", String(64), primary_key=True),
            Column("user_id", String(36), nullable=False),
            Column("issued_at", _UTCDateTime("issued_at"), nullable=False),
            Column("expires_at", _UTCDateTime("expires_at"), nullable=False),
            Column("refreshed_at", _UTCDateTime("refreshed_at")),
            Column("revoked_at", _UTCDateTime("revoked_at")),
            Column("generation", Integer, nullable=False),
            Index(f"{p}sessions_user_id", "user_id"),
            Index(f"{p}sessions_expires_at", "expires_at"),
        )
        self.refresh_table = Table(
            f"{p}refresh_tokens",
            self.metadata,
            Column("token_hash", String(64), primary_key=True),
            Column("session_id", String(64), nullable=False),
            Column("issued_at", _UTCDateTime("issued_at"), nullable=False),
            Column("expires_at", _UTCDateTime("expires_at"), nullable=False),
            Column("used_at", _UTCDateTime("used_at")),
            Index(f"{p}refresh_tokens_session_id", "session_id"),
        )
        self.revoked_table = Table(
            f"{p}revoked_tokens",
            self.metadata,
            Column("jti", String(128), primary_key=True),
            Column("user_id", String(36), nullable=False),
            Column("expires_at", _UTCDateTime("expires_at"), nullable=False),
            Index(f"{p}revoked_tokens_user_id", "user_id"),
        )
        self.generations_table = Table(
            f"{p}generations",
            self.metadata,
            Column("user_id", String(36), primary_key=True),
            Column("generation", Integer, nullable=False),
        )
        self.attempts_table = Table(
            f"{p}attempts",
            self.metadata,
            Column("key", String(512), primary_key=True),
            Column("failures", Integer, nullable=False),
            Column("locked_until", _UTCDateTime("locked_until")),
            Column("lockouts", Integer, nullable=False),
        )
        self.credentials_table = Table(
            f"{p}credentials",
            self.metadata,
            Column(
                "user_id",
                String(36),
                ForeignKey(self.users_table.c.id, ondelete="CASCADE"),
                primary_key=True,
            ),
            Column("username_key", String(255), nullable=False, unique=True),
            Column("email_key", String(254), unique=True),
            Column("password_hash", String(512), nullable=False),
            Column("updated_at", _UTCDateTime("updated_at"), nullable=False),
        )
        self.version_table = Table(
            f"{p}schema_version",
            self.metadata,
            Column("version", Integer, primary_key=True, autoincrement=False),
            Column("applied_at", _UTCDateTime("applied_at"), nullable=False),
        )
        self.statements = _Statements(self)

    @property
    def session_tables(self) -> tuple[Table, ...]:
        """The tables schema version 2 added."""
        return (
            self.sessions_table,
            self.refresh_table,
            self.revoked_table,
            self.generations_table,
            self.attempts_table,
            self.credentials_table,
        )

    def __repr__(self) -> str:
        return f"SQLStore({self.url.render_as_string(hide_password=True)!r})"

    # -- engine -------------------------------------------------------------------------

    def _create_engine(self, busy_timeout: float, options: dict[str, Any]) -> Engine:
        try:
            return self._engine_for(busy_timeout, options)
        except (ValueError, TypeError) as exc:  # the dialect read a query parameter it refuses
            raise ConfigError(
                f"storage: the URL's query parameters are not valid for its driver ({type(exc).__name__})",
                field="storage",
            ) from None

    def _engine_for(self, busy_timeout: float, options: dict[str, Any]) -> Engine:
        options.setdefault("hide_parameters", True)  # driver errors never echo user data
        url = self.url
        if url.get_backend_name() != "sqlite":
            # No pre-ping: it is a round trip per checkout. A connection found dead by a
            # statement is ConnectionLost, and the callers retry once on a new one.
            return create_engine(url, **options)
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("timeout", busy_timeout)
        connect_args.setdefault("check_same_thread", False)
        memory = _is_memory_sqlite(url)
        if memory:
            options.setdefault("poolclass", StaticPool)  # one connection: the data lives in it
            self._memory_lock = threading.Lock()
        engine = create_engine(url, connect_args=connect_args, **options)
        sqlite_discipline(engine, busy_timeout, memory=memory)
        return engine

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connection(self, *, unlocked_read: bool = False) -> Iterator[Connection]:
        """A connection inside a transaction: committed on success, rolled back on any error
        (``unlocked_read``: a connection for one read outside any transaction)."""
        lock = self._memory_lock
        if lock is not None:
            lock.acquire()
        committing = False
        try:
            try:
                connection: AbstractContextManager[Connection] = (
                    self.engine.connect().execution_options(**self._unlocked_read)
                    if unlocked_read
                    else self.engine.begin()
                )
                with connection as conn:
                    yield conn
                    committing = True  # the block ended: leaving the with commits
            except SQLAlchemyError as exc:
                raise _storage_error(exc, committing=committing and not unlocked_read) from exc
        finally:
            if lock is not None:
                lock.release()

    # -- schema -------------------------------------------------------------------------

    def schema_version(self) -> int | None:
        """The version recorded in the database, or None when the schema is absent."""
        with self._connection() as conn:
            return self._read_version(conn)

    def _read_version(self, conn: Connection) -> int | None:
        if not inspect(conn).has_table(self.version_table.name, schema=self.schema):
            return None
        version = conn.execute(select(func.max(self.version_table.c.version))).scalar()
        return int(version) if version is not None else None

    def init_schema(self) -> tuple[int | None, int]:
        """Create the schema, or upgrade it to :data:`SCHEMA_VERSION`; return (before, after).

        Safe to run concurrently (PostgreSQL: an advisory lock; SQLite: the
        write lock) and repeatedly. Raises :class:`~federation.errors.StorageError`
        when the database was written by a newer release.
        """
        with self._connection() as conn:
            if conn.dialect.name == "postgresql":
                key = _advisory_key(f"federation-schema:{self.schema}:{self.table_prefix}")
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            before = self._read_version(conn)
            now = datetime.now(timezone.utc)
            if before is None:
                self._refuse_foreign_tables(conn)
                self.metadata.create_all(conn, checkfirst=True)
                conn.execute(insert(self.version_table).values(version=SCHEMA_VERSION, applied_at=now))
            elif before > SCHEMA_VERSION:
                raise StorageError(
                    f"the database schema is version {before}; this release of federation-bridge "
                    f"knows versions up to {SCHEMA_VERSION}: upgrade federation-bridge"
                )
            elif before not in MIGRATIONS and before != SCHEMA_VERSION:
                raise StorageError(
                    f"the database's schema version table says {before}, which no release of "
                    "federation-bridge wrote: the table is not this library's"
                )
            else:
                for version in range(before, SCHEMA_VERSION):
                    MIGRATIONS[version](conn, self)
                    conn.execute(insert(self.version_table).values(version=version + 1, applied_at=now))
        self._schema_ready = True
        return before, SCHEMA_VERSION

    def _refuse_foreign_tables(self, conn: Connection) -> None:
        """A table of ours that exists before the schema does must have our columns:
        ``create_all(checkfirst=True)`` would keep another program's table of that name,
        stamp the version, and every login would then fail on a missing column."""
        found = inspect(conn)
        for table in self.metadata.sorted_tables:
            if not found.has_table(table.name, schema=self.schema):
                continue
            columns = {column["name"] for column in found.get_columns(table.name, schema=self.schema)}
            missing = sorted(set(table.columns.keys()) - columns)
            if missing:
                raise StorageError(
                    f"the database already has a table {table.name!r} that is not this library's "
                    f"(no column {missing[0]!r}): use another table_prefix or schema"
                )

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            with self._schema_lock:  # one thread of this process prepares, the others wait
                self._prepare_schema()

    def _prepare_schema(self) -> None:
        if self._schema_ready:
            return
        if self.create_schema:
            self.init_schema()
            return
        version = self.schema_version()
        if version is not None and version > SCHEMA_VERSION:
            raise StorageError(
                f"the federation schema is at version {version}; this release knows versions up to "
                f"{SCHEMA_VERSION}: upgrade federation-bridge"
            )
        if version != SCHEMA_VERSION:
            state = "absent" if version is None else f"at version {version}"
            raise StorageError(
                f"the federation schema is {state}, not {SCHEMA_VERSION}: run 'federation db init'"
            )
        self._schema_ready = True

    # -- the storage protocol -----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[_SQLTransaction]:
        """One database transaction (see the module docstring for the locking discipline)."""
        self._ensure_schema()
        with self._connection() as conn:
            yield _SQLTransaction(self, conn)

    def find_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """The identity (issuer, subject) and its user in one read outside any transaction
        (no lock: provisioning maps on it, then re-reads under the lock); None when unknown."""
        self._ensure_schema()
        values = {"issuer": issuer, "subject": subject}
        if self._watched():
            query = self.login_query()
            return self.login_of(self._read_row(lambda conn: conn.execute(query, values).first()))
        read = self._login_read
        if read is None:
            read = self._login_read = _LoginRead(self.login_query(), self.engine.dialect)
        row = _again_if_lost(lambda: self._driver_read(read, values))
        return None if row is None else read.login(row)

    def _driver_read(self, read: _DriverRead, values: Mapping[str, Any]) -> list[Any] | None:
        """``read``'s first row, on a pooled DBAPI connection outside any transaction.

        The statement is compiled once and runs on the driver itself (PostgreSQL: a
        server-side prepared statement, in autocommit: one round trip): profiled, SQLAlchemy's
        execution and result layers cost more than the round trip. Errors are what
        :meth:`_connection` makes of them (a disconnect invalidates the pool's older
        connections too, as SQLAlchemy does, and is :class:`~federation.errors.ConnectionLost`).
        No SQLAlchemy cursor events fire for it (the pool's do): with listeners on those,
        :meth:`find_login` takes SQLAlchemy's path instead (:meth:`_watched`).
        """
        lock = self._memory_lock
        if lock is not None:
            lock.acquire()
        try:
            dialect = self.engine.dialect
            try:
                pooled = self.engine.raw_connection()
            except SQLAlchemyError as exc:
                raise _storage_error(exc) from exc
            except dialect.loaded_dbapi.Error as exc:  # the pool lets a failed connect through raw
                wrapped = DBAPIError.instance(
                    None, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
                )
                raise _storage_error(wrapped) from exc
            dbapi: Any = pooled.dbapi_connection  # the driver's own connection (psycopg, sqlite3)
            cursor: Any = None
            try:
                try:
                    if read.psycopg:
                        dbapi.autocommit = True  # no BEGIN: the read is one round trip
                    try:
                        cursor = dbapi.cursor()
                        if read.psycopg:
                            cursor.execute(read.sql, read.params(values), prepare=True)
                        else:
                            cursor.execute(read.sql, read.params(values))
                        found = cursor.fetchone()
                    finally:
                        if read.psycopg:
                            self._transactions_again(pooled)
                except dialect.loaded_dbapi.Error as exc:
                    lost = bool(dialect.is_disconnect(exc, dbapi, cursor))
                    if lost:
                        self.engine.pool._invalidate(pooled, exc)
                    wrapped = DBAPIError.instance(
                        read.sql,
                        None,
                        exc,
                        dialect.loaded_dbapi.Error,
                        hide_parameters=True,
                        connection_invalidated=lost,
                        dialect=dialect,
                    )
                    raise _storage_error(wrapped) from exc
            finally:
                if cursor is not None:
                    cursor.close()
                pooled.close()  # back to the pool
        finally:
            if lock is not None:
                lock.release()
        return None if found is None else read.values(found)

    def _watched(self) -> bool:
        """Whether anything listens to the engine's statements or errors (tracing, a test): then
        the hot reads take SQLAlchemy's path, which tells them, instead of the driver's."""
        dispatch = self.engine.dispatch
        watched = dispatch.before_cursor_execute or dispatch.after_cursor_execute
        return bool(watched or self.engine.dialect.dispatch.handle_error)

    @staticmethod
    def _transactions_again(pooled: Any) -> None:
        """Take a psycopg connection out of autocommit before the pool has it back; a connection
        that cannot be is invalidated, never returned in autocommit."""
        try:
            pooled.dbapi_connection.autocommit = False
        except Exception as exc:
            pooled.invalidate(exc)

    def _read_row(self, read: Callable[[Connection], T]) -> T:
        """One read outside any transaction; a lost connection is read again once, on a new one."""

        def once() -> T:
            with self._connection(unlocked_read=True) as conn:
                return read(conn)

        return _again_if_lost(once)

    def login_query(self) -> Select[Any]:
        """The one statement of :meth:`find_login` (built once: building costs more than running)."""
        query = self._login_query
        if query is None:
            ids, users = self.identities_table, self.users_table
            query = self._login_query = (
                select(ids, *[c.label(f"u_{c.name}") for c in users.c])
                .outerjoin(users, users.c.id == ids.c.user_id)
                .where(ids.c.issuer == bindparam("issuer"), ids.c.subject == bindparam("subject"))
            )
        return query

    def login_of(self, row: Row[Any] | None) -> tuple[UserIdentity, User | None] | None:
        """What a row of :meth:`login_query` means."""
        if row is None:
            return None
        return _identity(row), _joined_user(row._mapping)

    def read_user(self, user_id: str) -> User | None:
        """The user, in one read outside any transaction (no lock)."""
        self._ensure_schema()
        t = self.users_table
        row = self._read_row(lambda conn: conn.execute(select(t).where(t.c.id == user_id)).first())
        return None if row is None else _user(row)

    def session_store(self) -> SQLSessionStore:
        """The session store on this database's session tables (one per store)."""
        with self._schema_lock:
            if self._sessions is None:
                from ._sql_sessions import SQLSessionStore

                self._sessions = SQLSessionStore(self)
            return self._sessions

    # -- local credentials (CredentialStore) ---------------------------------------------

    def insert_local_user(
        self, user: NewUser, *, username_key: str, email_key: str | None, password_hash: str
    ) -> str:
        """Insert a local account's user and credential in one transaction."""
        self._ensure_schema()
        try:
            with self._connection() as conn:
                user_id = _SQLTransaction(self, conn).insert_user(user)
                conn.execute(
                    insert(self.credentials_table).values(
                        user_id=user_id,
                        username_key=username_key,
                        email_key=email_key,
                        password_hash=password_hash,
                        updated_at=user.created_at,
                    )
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DuplicateIdentity("the username or email is taken") from None
            raise
        return user_id

    def find_credential(self, login_key: str) -> tuple[LocalCredential, User | None] | None:
        """The credential signing in with ``login_key``, and its user (one read)."""
        self._ensure_schema()
        creds, users = self.credentials_table, self.users_table
        query = (
            select(creds, *[c.label(f"u_{c.name}") for c in users.c])
            .outerjoin(users, users.c.id == creds.c.user_id)
            .where((creds.c.username_key == login_key) | (creds.c.email_key == login_key))
            .order_by(creds.c.username_key != login_key)  # a username match before an email match
        )
        with self._connection(unlocked_read=True) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return _stored_credential([m[name] for name in _CREDENTIAL_COLUMNS]), _joined_user(m)

    def set_password_hash(self, user_id: str, password_hash: str, *, now: datetime) -> None:
        """Replace the user's password hash."""
        self._ensure_schema()
        t = self.credentials_table
        with self._connection() as conn:
            conn.execute(
                update(t).where(t.c.user_id == user_id).values(password_hash=password_hash, updated_at=now)
            )

    # -- reading for tools ----------------------------------------------------------------

    def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Users, oldest first; ``ValueError`` for a negative ``limit`` or ``offset`` (SQLite
        would read -1 as no limit, PostgreSQL refuses it)."""
        _count_argument("limit", limit)
        _count_argument("offset", offset)
        self._ensure_schema()
        t = self.users_table
        query = select(t).order_by(t.c.created_at, t.c.id).limit(limit).offset(offset)
        with self._connection() as conn:
            return [_user(row) for row in conn.execute(query)]

    def count_users(self) -> int:
        """How many users the store holds."""
        self._ensure_schema()
        with self._connection() as conn:
            return int(conn.execute(select(func.count()).select_from(self.users_table)).scalar() or 0)

    def identities(self, user_ids: Sequence[str]) -> dict[str, list[UserIdentity]]:
        """The identities of each of ``user_ids``."""
        self._ensure_schema()
        t = self.identities_table
        found: dict[str, list[UserIdentity]] = {uid: [] for uid in user_ids}
        if not user_ids:
            return found
        query = select(t).where(t.c.user_id.in_(list(user_ids))).order_by(t.c.issuer, t.c.subject)
        with self._connection() as conn:
            for row in conn.execute(query):
                found[row._mapping["user_id"]].append(_identity(row))
        return found

    def audit_tail(self, limit: int = 20) -> list[AuditEvent]:
        """The latest ``limit`` audit events, oldest first (``ValueError`` for a negative one)."""
        _count_argument("limit", limit)
        self._ensure_schema()
        t = self.audit_table
        with self._connection() as conn:
            rows = list(conn.execute(select(t).order_by(t.c.id.desc()).limit(limit)))
        return [_audit(row) for row in reversed(rows)]

    # -- audit ----------------------------------------------------------------------------

    def write_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events to the audit table, in one transaction."""
        if not events:
            return
        self._ensure_schema()
        rows = [
            {
                "at": e.at,
                "name": e.name,
                "user_id": e.user_id,
                "issuer": e.issuer,
                "subject": e.subject,
                "detail": dict(e.detail),
            }
            for e in events
        ]

        def append() -> None:
            with self._connection() as conn:
                conn.execute(insert(self.audit_table), rows)

        # Once more on a new connection when this one was found dead (nothing was written):
        # for a revocation kept in Redis this insert is its only statement here, and no
        # other step of it would have retried.
        _again_if_lost(append)

    def audit_sink(self) -> Callable[[AuditEvent], None]:
        """A sink writing each event to this store's audit table."""

        def sink(event: AuditEvent) -> None:
            self.write_audit([event])

        return sink
