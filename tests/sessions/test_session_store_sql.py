"""The SQL session store and local credentials on SQLite and PostgreSQL, and the upgrade from schema 1."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _session_services import POSTGRES_URL, postgres_reachable
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
)

from federation import Bridge
from federation.errors import DuplicateIdentity, StorageError, TokenRevoked
from federation.provisioning import DefaultMapping, Provisioner
from federation.storage import NewRefreshToken, NewUser, SessionRecord, SQLStore
from federation.testing import MockIdP
from federation.testing.session_conformance import SESSION_CHECKS, check_id

KINDS = ["sqlite", "postgres"]
NOW = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("check", SESSION_CHECKS, ids=check_id)
def test_session_store_conformance(
    kind: str, check: Any, sql_store_factory: Callable[[str], SQLStore]
) -> None:
    check(sql_store_factory(kind).session_store())


def _new_user(name: str) -> NewUser:
    return NewUser(name, f"{name}@example.test", False, None, frozenset(), {}, "active", NOW, NOW, None)


@pytest.mark.parametrize("kind", KINDS)
def test_local_credentials(kind: str, sql_store_factory: Callable[[str], SQLStore]) -> None:
    store = sql_store_factory(kind)
    uid = store.insert_local_user(
        _new_user("ann"), username_key="ann", email_key="ann@example.test", password_hash="h1"
    )
    by_name = store.find_credential("ann")
    by_mail = store.find_credential("ann@example.test")
    assert by_name is not None and by_mail is not None
    assert (
        by_name[0].user_id == by_mail[0].user_id == uid
        and by_name[1] is not None
        and by_name[1].username == "ann"
    )
    assert store.find_credential("nobody") is None
    for username_key, email_key in (("ann", None), ("other", "ann@example.test")):
        with pytest.raises(DuplicateIdentity):
            store.insert_local_user(
                _new_user("x"), username_key=username_key, email_key=email_key, password_hash="h"
            )
    assert store.count_users() == 1  # a refused registration writes nothing
    later = NOW + timedelta(hours=1)
    store.set_password_hash(uid, "h2", now=later)
    found = store.find_credential("ann")
    assert found is not None and (found[0].password_hash, found[0].updated_at) == ("h2", later)
    with store.transaction() as tx:
        tx.delete_user(uid)
    assert store.find_credential("ann") is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_deleted_users_sessions_and_generation_stay(
    kind: str, sql_store_factory: Callable[[str], SQLStore]
) -> None:
    store = sql_store_factory(kind)
    uid = store.insert_local_user(_new_user("bob"), username_key="bob", email_key=None, password_hash="h")
    sessions = store.session_store()
    sessions.create_session(SessionRecord("sid-1", uid, NOW, NOW + timedelta(hours=1)), None)
    assert sessions.bump_generation(uid) == 1
    sessions.revoke_session("sid-1", now=NOW)
    with store.transaction() as tx:
        tx.delete_user(uid)
    assert store.read_user(uid) is None
    # No foreign key to users: the refusals outlive the user row.
    state = sessions.user_state(uid, now=NOW)
    assert (state.generation, state.revoked_sessions) == (1, frozenset({"sid-1"}))


@pytest.mark.parametrize("kind", KINDS)
def test_a_duplicate_session_id_fails_at_once(
    kind: str, sql_store_factory: Callable[[str], SQLStore]
) -> None:
    sessions = sql_store_factory(kind).session_store()
    first = SessionRecord("sid-dup", "u", NOW, NOW + timedelta(hours=1))
    sessions.create_session(first, None)
    with pytest.raises(StorageError) as caught:
        sessions.create_session(SessionRecord("sid-dup", "other", NOW, NOW + timedelta(days=1)), None)
    assert "kept conflicting" not in str(caught.value)  # no race to retry: not retried
    assert sessions.get_session("sid-dup") == first


def _v1_schema(store: SQLStore) -> None:
    """Make ``store``'s database a schema-1 database, with the tables as release 1 defined them.

    Frozen here rather than taken from ``store``: a later change to the current tables must
    not turn this into a test of an upgrade from a schema that never shipped.
    """
    p, dt, js = store.table_prefix, DateTime(timezone=True), JSON()
    v1 = MetaData()
    users = Table(
        f"{p}users",
        v1,
        Column("id", String(36), primary_key=True),
        Column("username", String(255)),
        Column("email", String(254)),
        Column("email_key", String(254)),
        Column("email_verified", Boolean, nullable=False),
        Column("display_name", String(256)),
        Column("roles", js, nullable=False),
        Column("attributes", js, nullable=False),
        Column("status", String(16), nullable=False),
        Column("created_at", dt, nullable=False),
        Column("updated_at", dt, nullable=False),
        Column("last_login_at", dt),
        Index(f"{p}users_email_key", "email_key"),
        Index(f"{p}users_username", "username"),
    )
    Table(
        f"{p}identities",
        v1,
        Column("issuer", String(1024), primary_key=True),
        Column("subject", String(1024), primary_key=True),
        Column("provider", String(64), nullable=False),
        Column("user_id", String(36), ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
        Column("created_at", dt, nullable=False),
        Index(f"{p}identities_user_id", "user_id"),
    )
    Table(
        f"{p}audit",
        v1,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("at", dt, nullable=False),
        Column("name", String(64), nullable=False),
        Column("user_id", String(36)),
        Column("issuer", String(1024)),
        Column("subject", String(1024)),
        Column("detail", js, nullable=False),
        Index(f"{p}audit_user_id", "user_id"),
    )
    Table(
        f"{p}schema_version",
        v1,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", dt, nullable=False),
    )
    v1.create_all(store.engine)
    with store.engine.begin() as conn:
        conn.execute(insert(store.version_table).values(version=1, applied_at=NOW))


@pytest.mark.parametrize("kind", KINDS)
def test_a_version_1_database_with_data_upgrades_on_first_use(
    kind: str, sql_store_factory: Callable[[str], SQLStore]
) -> None:
    old = sql_store_factory(kind)
    _v1_schema(old)
    with old.engine.begin() as conn:
        conn.execute(
            insert(old.users_table).values(
                id="u-1",
                username="olduser",
                email="old@example.test",
                email_key="old@example.test",
                email_verified=True,
                display_name="Old",
                roles=["admin"],
                attributes={"dept": "x"},
                status="active",
                created_at=NOW,
                updated_at=NOW,
                last_login_at=NOW,
            )
        )
        conn.execute(
            insert(old.identities_table).values(
                issuer="https://idp.test", subject="old-sub", provider="oidc", user_id="u-1", created_at=NOW
            )
        )
        conn.execute(insert(old.audit_table).values(at=NOW, name="user_created", user_id="u-1", detail={}))
    with old.engine.connect() as conn:
        assert not inspect(conn).has_table(old.sessions_table.name)
    upgraded = SQLStore(old.url, table_prefix=old.table_prefix)
    try:
        found = upgraded.find_login("https://idp.test", "old-sub")  # first use: the upgrade runs
        assert upgraded.schema_version() == 2
        assert found is not None and found[1] is not None
        user = found[1]
        assert (user.id, user.username, user.roles, dict(user.attributes)) == (
            "u-1",
            "olduser",
            frozenset({"admin"}),
            {"dept": "x"},
        )
        assert [e.name for e in upgraded.audit_tail()] == ["user_created"]
        with upgraded.engine.connect() as conn:
            versions = list(conn.execute(select(upgraded.version_table.c.version)).scalars())
            assert sorted(versions) == [1, 2]
        sessions = upgraded.session_store()
        refresh = NewRefreshToken("a" * 64, NOW, NOW + timedelta(days=1))
        sessions.create_session(SessionRecord("sid", "u-1", NOW, NOW + timedelta(days=1)), refresh)
        assert sessions.find_refresh("a" * 64) is not None
        idp = MockIdP("https://idp.test", alg="ES256")
        provisioner = Provisioner(upgraded, DefaultMapping(), audit=lambda e: None)
        bridge = Bridge.from_dict(idp.bridge_config(), http_client=idp.client())
        assert provisioner.login(bridge.verify(idp.mint(sub="old-sub"))).user.id == "u-1"
        assert upgraded.init_schema() == (2, 2)
        with upgraded.engine.connect() as conn:
            assert (
                conn.execute(select(upgraded.identities_table.c.subject)).scalars().all()
                == ["old-sub"]  # the login found the old identity: no duplicate user or identity
            )
            assert conn.execute(select(upgraded.users_table.c.id)).scalars().all() == ["u-1"]
    finally:
        upgraded.close()


@pytest.fixture(params=KINDS)
def async_sql_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    from federation.storage import AsyncSQLStore

    if request.param == "sqlite":
        store = AsyncSQLStore(f"sqlite:///{tmp_path}/async-sessions.db")
    else:
        postgres_reachable()
        store = AsyncSQLStore(POSTGRES_URL, table_prefix=f"as{uuid.uuid4().hex[:8]}_")
    yield store
    if store.engine.dialect.name == "postgresql":
        store.metadata.drop_all(store.engine)
    store.close()


@pytest.mark.parametrize("check", SESSION_CHECKS, ids=check_id)
def test_the_asyncio_twin_keeps_the_protocol(async_sql_store: Any, check: Any) -> None:
    from _session_services import OnALoop

    twin = async_sql_store.session_store().aio
    assert twin is not None
    adapter = OnALoop(twin)
    try:
        check(adapter)
    finally:
        adapter.close()


def test_a_sync_sql_store_has_no_asyncio_twin(sql_store_factory: Callable[[str], SQLStore]) -> None:
    assert sql_store_factory("sqlite").session_store().aio is None


def test_an_asgi_app_on_the_async_store_never_hops_to_a_thread(
    async_sql_store: Any, idp: MockIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    from federation.sessions import generate_private_key_pem

    config = idp.bridge_config(sessions={"issuer": "https://app.test", "keys": [{"env": "K"}]})
    bridge = idp.bridge(
        config=config, store=async_sql_store, environ={"K": generate_private_key_pem("ES256").decode()}
    )
    async_sql_store.init_schema()

    def no_threads(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a step went to a worker thread")

    monkeypatch.setattr("federation.provisioning._shell.asyncio.to_thread", no_threads)
    monkeypatch.setattr("federation._sessions._service.asyncio.to_thread", no_threads)

    async def scenario() -> tuple[str, str, str, bool]:
        session = await bridge.aexchange(idp.mint(sub="ada"))
        assert session.refresh_token is not None
        renewed = await bridge.arefresh(session.refresh_token)
        principal = await bridge.aauthenticate(renewed.access_token)
        revoked = await bridge.arevoke(renewed.access_token)
        return session.user.id, principal.user.id, renewed.access_token, revoked

    first, second, token, revoked = asyncio.run(scenario())
    assert first == second and revoked
    monkeypatch.undo()
    with pytest.raises(TokenRevoked):
        bridge.authenticate(token)  # the sync face reads what the async one wrote


@pytest.mark.parametrize("now", [1_800_000_000.0, datetime(2027, 1, 15, 8, 0)], ids=["unix-time", "naive"])
def test_purge_wants_an_aware_datetime(tmp_path: Any, now: Any) -> None:
    """A Unix time, what the rest of the API's clocks give, was a StorageError on SQL (which
    reads like a database outage) and an AttributeError in memory and on Redis."""
    from federation.storage import MemorySessionStore

    sql = SQLStore(f"sqlite:///{tmp_path}/purge.db")
    try:
        for store in (MemorySessionStore(), sql.session_store()):
            with pytest.raises(TypeError, match="timezone-aware datetime"):
                store.purge(now=now)
            assert store.purge(now=NOW) == 0
    finally:
        sql.close()
