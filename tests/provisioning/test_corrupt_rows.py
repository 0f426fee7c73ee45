"""A row that no release writes (another program wrote it, or it was damaged) is a
:class:`~federation.errors.CorruptRecord` on every read path of the SQL stores: never a
dependency's exception, never a record that means something else, nothing written."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _prov_helpers import POSTGRES_URL, AuditLog
from sqlalchemy import event, text

from federation.errors import CorruptRecord
from federation.storage import AsyncSQLStore, NewUser, SQLStore
from federation.testing import MockIdP

ADA = {"sub": "ada", "email": "ada@example.com", "email_verified": True, "name": "Ada"}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# (column, what SQLite was left holding, the field the error names)
SQLITE_USERS = [
    ("attributes", "not json", "attributes"),
    ("attributes", '{"k": 1', "attributes"),
    ("attributes", "[1]", "attributes"),
    ("attributes", '"text"', "attributes"),
    ("attributes", 5, "attributes"),
    ("roles", "not json", "roles"),
    ("roles", "5", "roles"),
    ("roles", '"admin"', "roles"),  # a string: never read as the roles a, d, m, i, n
    ("roles", "[1]", "roles"),
    ("roles", '{"admin": true}', "roles"),
    ("created_at", "garbage", "created_at"),
    ("created_at", 5, "created_at"),
    ("updated_at", "2026-13-45 00:00:00", "updated_at"),
    ("last_login_at", "yesterday", "last_login_at"),
    ("email_verified", "false", "email_verified"),  # SQLAlchemy's own processing read it as true
    ("email_verified", 2, "email_verified"),
    ("status", "enabled", "status"),
    ("status", 5, "status"),
    ("username", b"ada", "username"),  # a BLOB: SQLite turns numbers into text in a text column
    ("email", b"ada@example.com", "email"),
]


def _raw(store: SQLStore, sql: str, *params: Any) -> list[Any]:
    """Run ``sql`` on the driver, past SQLAlchemy's types (what another program does)."""
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        rows = list(cursor.fetchall()) if cursor.description else []
        connection.commit()
        return rows
    finally:
        connection.close()


def _users_row(store: SQLStore) -> list[Any]:
    return _raw(store, f"SELECT * FROM {_name(store, store.users_table.name)}")


def _name(store: SQLStore, table: str) -> str:
    return f'"{store.schema}"."{table}"' if store.schema else table


def _refused(read: Callable[[], Any], field: str, stored: Any) -> CorruptRecord:
    with pytest.raises(CorruptRecord) as caught:
        read()
    error = caught.value
    assert error.code == "corrupt_record"
    assert re.search(rf"\b{field}\b", str(error))  # the field, as a word of the message
    assert str(stored) not in str(error)  # the message names the field, never the value
    # nor a parser's error chained to it (json's and datetime's quote the value)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return error


def _on_sqlalchemys_path(store: SQLStore, read: Callable[[], Any]) -> Callable[[], Any]:
    """``read`` with a statement listener attached: the login read then takes SQLAlchemy's path."""

    def listened() -> Any:
        event.listen(store.engine, "before_cursor_execute", listener)
        try:
            return read()
        finally:
            event.remove(store.engine, "before_cursor_execute", listener)

    def listener(*args: Any) -> None:
        pass

    return listened


@pytest.fixture
def ada_store(tmp_path: Path, login_bridge: Any, idp: MockIdP) -> Iterator[tuple[SQLStore, Any]]:
    store = SQLStore(f"sqlite:///{tmp_path}/users.db")
    made = login_bridge(store).login(idp.mint(ADA))
    yield store, made.user
    store.close()


def _reads(store: SQLStore, user: Any, idp: MockIdP) -> dict[str, Callable[[], Any]]:
    def in_transaction(operation: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with store.transaction() as tx:
                return operation(tx)

        return run

    login = lambda: store.find_login(idp.issuer, "ada")  # noqa: E731
    return {
        "find_login on the driver": login,
        "find_login through SQLAlchemy": _on_sqlalchemys_path(store, login),
        "read_user": lambda: store.read_user(user.id),
        "list_users": store.list_users,
        "get_user": in_transaction(lambda tx: tx.get_user(user.id)),
        "find_users_by_email": in_transaction(lambda tx: tx.find_users_by_email("ada@example.com")),
    }


@pytest.mark.parametrize(("column", "stored", "field"), SQLITE_USERS)
def test_every_read_of_a_damaged_sqlite_user_is_a_corrupt_record(
    ada_store: tuple[SQLStore, Any], idp: MockIdP, column: str, stored: Any, field: str
) -> None:
    store, user = ada_store
    _raw(store, f"UPDATE {store.users_table.name} SET {column} = ?", stored)
    for read in _reads(store, user, idp).values():
        _refused(read, field, stored)


@pytest.mark.parametrize(("column", "stored", "field"), SQLITE_USERS[:12:3])
def test_the_async_store_refuses_the_same_rows(
    ada_store: tuple[SQLStore, Any], idp: MockIdP, column: str, stored: Any, field: str
) -> None:
    store, user = ada_store
    _raw(store, f"UPDATE {store.users_table.name} SET {column} = ?", stored)
    astore = AsyncSQLStore(str(store.engine.url))

    async def reads() -> None:
        try:
            for read in (lambda: astore.afind_login(idp.issuer, "ada"), lambda: astore.aread_user(user.id)):
                with pytest.raises(CorruptRecord) as caught:
                    await read()
                assert field in str(caught.value)
        finally:
            await astore.aclose()

    asyncio.run(reads())


@pytest.mark.parametrize(("column", "stored", "field"), SQLITE_USERS)
def test_a_login_of_a_damaged_user_is_refused_audited_and_writes_nothing(
    ada_store: tuple[SQLStore, Any],
    login_bridge: Any,
    idp: MockIdP,
    audit: AuditLog,
    column: str,
    stored: Any,
    field: str,
) -> None:
    store, _ = ada_store
    _raw(store, f"UPDATE {store.users_table.name} SET {column} = ?", stored)
    before = _users_row(store)
    bridge = login_bridge(store, provisioning={"touch_interval": 0})  # a login that would write
    audit.clear()
    error = _refused(lambda: bridge.login(idp.mint({**ADA, "name": "Ada L."})), field, stored)
    assert _users_row(store) == before
    assert [(e.name, e.detail.get("reason")) for e in audit] == [("login_failed", error.code)]


def test_a_damaged_identity_is_a_corrupt_record(ada_store: tuple[SQLStore, Any], idp: MockIdP) -> None:
    store, user = ada_store
    _raw(store, f"UPDATE {store.identities_table.name} SET created_at = ?", "garbage")
    reads = _reads(store, user, idp)
    for read in (
        reads["find_login on the driver"],
        reads["find_login through SQLAlchemy"],
        lambda: store.identities([user.id]),
    ):
        _refused(read, "created_at", "garbage")
    with store.transaction() as tx:
        _refused(lambda: tx.find_identity(idp.issuer, "ada"), "created_at", "garbage")
    with store.transaction() as tx:
        _refused(lambda: tx.identities_of(user.id), "created_at", "garbage")


@pytest.mark.parametrize(("stored", "field"), [("not json", "detail"), ("[1]", "detail"), ("never", "at")])
def test_a_damaged_audit_event_is_a_corrupt_record(
    ada_store: tuple[SQLStore, Any], stored: str, field: str
) -> None:
    store, _ = ada_store
    store.write_audit([store_event(NOW)])
    _raw(store, f"UPDATE {store.audit_table.name} SET {field} = ?", stored)
    _refused(lambda: store.audit_tail(5), field, stored)


def store_event(at: datetime) -> Any:
    from federation.storage import AuditEvent

    return AuditEvent("user_updated", at, user_id="u-1", detail={"fields": ["email"]})


@pytest.mark.parametrize(
    ("column", "stored"),
    [("updated_at", "garbage"), ("password_hash", b"x"), ("email_key", b"g@example.com")],
)
def test_a_damaged_credential_is_a_corrupt_record(tmp_path: Path, column: str, stored: Any) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/local.db")
    user = NewUser("grace", "g@example.com", False, None, frozenset(), {}, "active", NOW, NOW, None)
    store.insert_local_user(
        user, username_key="grace", email_key="g@example.com", password_hash="$argon2id$x"
    )
    assert store.find_credential("grace") is not None
    _raw(store, f"UPDATE {store.credentials_table.name} SET {column} = ?", stored)
    _refused(lambda: store.find_credential("grace"), column, stored)
    store.close()


# -- PostgreSQL: its types hold only valid values, but JSONB holds any JSON ------------------


@pytest.fixture
def pg_ada(postgres_schema: str, login_bridge: Any, idp: MockIdP) -> Iterator[tuple[SQLStore, Any]]:
    store = SQLStore(POSTGRES_URL, schema=postgres_schema, table_prefix=f"k{uuid.uuid4().hex[:6]}_")
    made = login_bridge(store).login(idp.mint(ADA))
    yield store, made.user
    store.close()


@pytest.mark.parametrize(
    ("column", "document"),
    [
        ("roles", '"admin"'),
        ("roles", "[1]"),
        ("roles", '{"admin": true}'),
        ("attributes", "[1]"),
        ("attributes", '"text"'),
    ],
)
def test_postgres_json_of_the_wrong_shape_is_a_corrupt_record(
    pg_ada: tuple[SQLStore, Any], idp: MockIdP, login_bridge: Any, column: str, document: str
) -> None:
    store, user = pg_ada
    with store.engine.begin() as conn:
        users = _name(store, store.users_table.name)
        conn.execute(text(f"UPDATE {users} SET {column} = CAST(:doc AS JSONB)"), {"doc": document})
    for read in _reads(store, user, idp).values():
        _refused(read, column, document)
    _refused(lambda: login_bridge(store).login(idp.mint(ADA)), column, document)


def test_postgres_status_outside_the_two_is_a_corrupt_record(
    pg_ada: tuple[SQLStore, Any], idp: MockIdP
) -> None:
    store, user = pg_ada
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE {_name(store, store.users_table.name)} SET status = 'enabled'"))
    for read in _reads(store, user, idp).values():
        _refused(read, "status", "enabled")
