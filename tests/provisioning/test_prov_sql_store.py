"""The SQL store: schema creation on first use, the version table and upgrades, URL
conventions (SQLite beside the config file, PostgreSQL through psycopg 3), indexes
behind every login query, and errors that never echo user data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event, inspect, select, text

from federation import Bridge
from federation.errors import ConfigError, StorageError
from federation.storage import SQLStore, resolve_url
from federation.storage import _sql as sql_module
from federation.testing import MockIdP


def test_the_schema_is_created_on_first_use(make_store: Any, store_kind: str) -> None:
    if store_kind == "memory":
        store_kind = "sqlite-memory"
    store = make_store(store_kind)
    assert store.schema_version() is None
    assert store.count_users() == 0  # first use
    assert store.schema_version() == sql_module.SCHEMA_VERSION
    with store.engine.connect() as conn:
        names = set(inspect(conn).get_table_names(schema=store.schema))
    prefix = store.table_prefix
    assert {f"{prefix}users", f"{prefix}identities", f"{prefix}audit", f"{prefix}schema_version"} <= names


def test_init_schema_is_idempotent(make_store: Any) -> None:
    store = make_store("sqlite")
    assert store.init_schema() == (None, sql_module.SCHEMA_VERSION)
    assert store.init_schema() == (sql_module.SCHEMA_VERSION, sql_module.SCHEMA_VERSION)


def test_without_create_schema_an_absent_schema_is_an_error(make_store: Any) -> None:
    store = make_store("sqlite", create_schema=False)
    with pytest.raises(StorageError, match="federation db init"), store.transaction():
        pass
    store.init_schema()
    with store.transaction() as tx:
        assert tx.get_user("x") is None


def test_a_schema_from_a_newer_release_is_refused(make_store: Any, tmp_path: Path) -> None:
    store = make_store("sqlite")
    store.init_schema()
    with store.engine.begin() as conn:
        conn.execute(store.version_table.insert().values(version=99, applied_at=_now()))
    fresh = SQLStore(store.url)
    with pytest.raises(StorageError, match="version 99"):
        fresh.list_users()
    fresh.close()


def _now() -> Any:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def test_upgrades_run_the_migrations_in_order(make_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store("sqlite")
    store.init_schema()
    ran: list[int] = []

    def add_column(conn: Any, s: SQLStore) -> None:
        ran.append(1)
        conn.execute(text(f"ALTER TABLE {s.users_table.name} ADD COLUMN locale VARCHAR(16)"))

    current = sql_module.SCHEMA_VERSION
    monkeypatch.setattr(sql_module, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(sql_module.MIGRATIONS, current, add_column)
    upgraded = SQLStore(store.url)
    assert upgraded.init_schema() == (current, current + 1)
    assert upgraded.init_schema() == (current + 1, current + 1)
    assert ran == [1]
    with upgraded.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns(upgraded.users_table.name)}
        versions = list(conn.execute(select(upgraded.version_table.c.version)).scalars())
    assert "locale" in columns and versions == [current, current + 1]
    upgraded.close()


def test_sqlite_paths_are_relative_to_the_config_file(tmp_path: Path, idp: MockIdP) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "federation.yaml").write_text(
        yaml.safe_dump({"issuers": [idp.issuer_config()], "storage": "sqlite:///data/users.db"})
    )
    (config_dir / "data").mkdir()
    with Bridge.from_file(
        config_dir / "federation.yaml", http_client=idp.client(), clock=idp.clock, on_event=lambda e: None
    ) as bridge:
        bridge.login(idp.mint(sub="u"))
        assert isinstance(bridge.store, SQLStore)
    assert (config_dir / "data" / "users.db").exists()


def test_without_storage_the_default_is_sqlite_beside_the_config(tmp_path: Path, idp: MockIdP) -> None:
    (tmp_path / "federation.yaml").write_text(yaml.safe_dump({"issuers": [idp.issuer_config()]}))
    with Bridge.from_file(
        tmp_path / "federation.yaml", http_client=idp.client(), clock=idp.clock, on_event=lambda e: None
    ) as bridge:
        assert bridge.login(idp.mint(sub="u")).created
    assert (tmp_path / "federation.db").exists()


def test_one_url_moves_the_same_code_to_postgres(tmp_path: Path, idp: MockIdP, postgres_schema: str) -> None:
    """The same config, the same calls: only ``storage:`` changes."""
    from _prov_helpers import POSTGRES_URL

    for storage in ("sqlite:///federation.db", POSTGRES_URL):
        (tmp_path / "federation.yaml").write_text(
            yaml.safe_dump({"issuers": [idp.issuer_config()], "storage": storage})
        )
        bridge = Bridge.from_file(
            tmp_path / "federation.yaml", http_client=idp.client(), clock=idp.clock, on_event=lambda e: None
        )
        if storage == POSTGRES_URL:  # keep this run's tables inside its own schema
            bridge = Bridge(
                bridge.config,
                http_client=idp.client(),
                clock=idp.clock,
                on_event=lambda e: None,
                store=SQLStore(storage, schema=postgres_schema, table_prefix="one_url_"),
            )
        with bridge:
            first = bridge.login(idp.mint(sub="u", name="Ada"))
            second = bridge.login(idp.mint(sub="u", name="Ada King"))
            assert first.created and second.changes == {"display_name": ("Ada", "Ada King")}
            assert second.user.created_at.tzinfo is not None
            store = bridge.store
            assert isinstance(store, SQLStore)
            assert store.url.get_backend_name() == (
                "sqlite" if storage.startswith("sqlite") else "postgresql"
            )
            if storage == POSTGRES_URL:
                store.close()


def test_resolve_url() -> None:
    assert resolve_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("sqlite:///x.db", "/srv/app").database == str(Path("/srv/app/x.db"))
    assert resolve_url("sqlite:////abs/x.db", "/srv/app").database == "/abs/x.db"
    assert resolve_url("sqlite://").database in (None, "")
    with pytest.raises(ConfigError, match="storage"):
        resolve_url("not a url")
    assert "secret" not in repr(SQLStore("postgresql://user:secret@127.0.0.1:1/db"))


def test_every_login_query_uses_an_index(idp: MockIdP, make_store: Any) -> None:
    """The cost of a login must not grow with the number of users: SQLite's query plan
    for every statement of a login (new user, returning user, link by email) searches
    an index, never scans a table."""
    store = make_store("sqlite")
    statements: list[tuple[str, Any]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            statements.append((statement, parameters))

    bridge = idp.bridge(
        config={"issuers": [idp.issuer_config(trust_email=True)]}, store=store, on_event=lambda e: None
    )
    bridge.login(idp.mint(sub="u", email="a@example.com", email_verified=True))
    bridge.login(idp.mint(sub="u", name="changed"))
    linker = Bridge.from_dict(
        {"issuers": [idp.issuer_config(trust_email=True)], "provisioning": {"link_by_email": True}},
        http_client=idp.client(),
        clock=idp.clock,
        on_event=lambda e: None,
        store=store,
    )
    with pytest.raises(Exception, match="identity of this issuer"):
        linker.login(idp.mint(sub="u2", email="a@example.com", email_verified=True))
    bridge.deprovision(issuer="https://idp.test", subject="u", mode="delete")
    login_statements = [s for s in statements if "sqlite_master" not in s[0] and "max(" not in s[0]]
    assert len(login_statements) >= 6
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in login_statements:
            plan = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            details = [row[-1] for row in plan]
            assert not any(d.startswith("SCAN") for d in details), (statement, details)
    finally:
        raw.close()


def test_driver_errors_never_echo_user_data(make_store: Any) -> None:
    store = make_store("sqlite")
    store.init_schema()
    with store.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {store.identities_table.name}"))
    with pytest.raises(StorageError) as caught, store.transaction() as tx:
        tx.find_identity("https://idp.test", "secret-subject@example.com")
    assert "OperationalError" in str(caught.value)
    assert "secret-subject" not in str(caught.value)
    assert "secret-subject" not in str(caught.value.__cause__)


def test_an_applications_engine_can_be_shared(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path}/app.db")
    store = SQLStore(engine=engine, table_prefix="auth_")
    store.init_schema()
    with engine.connect() as conn:
        assert "auth_users" in inspect(conn).get_table_names()
    assert store.url == engine.url
    engine.dispose()


def test_tables_can_carry_extra_columns_of_the_application(make_store: Any) -> None:
    """Apps may add columns (with defaults) to the users table; the store ignores them."""
    store = make_store("sqlite")
    store.init_schema()
    with store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {store.users_table.name} ADD COLUMN plan VARCHAR(16) DEFAULT 'free'"))
    from federation.testing.storage_conformance import CHECKS, run_check

    for check in CHECKS[:3]:
        run_check(check, store)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_negative_count_or_offset_is_refused_before_the_database(make_store: Any, kind: str) -> None:
    """SQLite reads LIMIT -1 as no limit and PostgreSQL refuses it: both would be wrong answers."""
    store = make_store(kind)
    for call in (
        lambda: store.list_users(limit=-1),
        lambda: store.list_users(offset=-1),
        lambda: store.list_users(limit=True),
        lambda: store.audit_tail(-1),
    ):
        with pytest.raises(ValueError, match="must be an integer from 0 to"):
            call()
    assert store.list_users(limit=0) == [] and store.audit_tail(0) == []


def test_a_database_that_stops_answering_is_a_storage_error_on_every_login_path() -> None:
    """The login read takes a connection from the pool itself, which let the driver's own
    connect error through: a first-seen token's login raised psycopg's OperationalError
    (a 500 on the web), where every other path said StorageError (503)."""
    import asyncio

    pytest.importorskip("psycopg")
    store = SQLStore("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")
    store._schema_ready = True  # the schema was there; then the server went away
    idp = MockIdP(issuer="https://idp.test", alg="ES256")
    with idp.bridge(store=store) as bridge:
        for attempt in (
            lambda: bridge.login(idp.mint(sub="u1")),
            lambda: asyncio.run(bridge.alogin(idp.mint())),
        ):
            with pytest.raises(StorageError) as caught:
                attempt()
            assert caught.value.code == "storage_error"
    store.close()


@pytest.mark.parametrize(
    ("url", "install"),
    [
        ("postgresql+pg8000://app@127.0.0.1:1/app", "pip install pg8000"),
        ("mssql+pyodbc://app@127.0.0.1:1/app", "pip install pyodbc"),
    ],
)
def test_a_store_whose_driver_is_not_installed_says_what_to_install(url: str, install: str) -> None:
    """SQLStore built directly (not through a config) raised the driver's ModuleNotFoundError."""
    with pytest.raises(ConfigError) as caught:
        SQLStore(url)
    assert caught.value.field == "storage"
    assert caught.value.message.endswith(f"which is not installed: {install}")
    with pytest.raises(ConfigError, match="unknown database 'nosuchdb'"):
        SQLStore("nosuchdb://app@127.0.0.1/app")


def test_an_sqlite_file_in_a_missing_directory_says_so(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/no-such-directory/app.db")
    with pytest.raises(StorageError) as caught:
        store.init_schema()
    assert "does its directory exist" in str(caught.value)
    assert not (tmp_path / "no-such-directory").exists()
