"""The SQL session store and local credentials on SQLite and PostgreSQL, and the upgrade from schema 1."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select

from federation.errors import DuplicateIdentity
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
    store.set_password_hash(uid, "h2", now=NOW)
    found = store.find_credential("ann")
    assert found is not None and found[0].password_hash == "h2"
    with store.transaction() as tx:
        tx.delete_user(uid)
    assert store.find_credential("ann") is None


@pytest.mark.parametrize("kind", KINDS)
def test_sessions_survive_their_users_deletion_as_refusals(
    kind: str, sql_store_factory: Callable[[str], SQLStore]
) -> None:
    store = sql_store_factory(kind)
    sessions = store.session_store()
    sessions.bump_generation("gone-user")
    sessions.create_session(
        SessionRecord("sid-1", "gone-user", NOW, NOW + timedelta(hours=1), generation=1), None
    )
    assert sessions.user_state("gone-user", now=NOW).generation == 1
    assert sessions.get_session("sid-1") is not None and sessions.get_session("sid-1").generation == 1  # type: ignore[union-attr]


def _v1_schema(store: SQLStore) -> None:
    """Make ``store``'s database a schema-1 database: only the first four tables, version 1."""
    with store.engine.begin() as conn:
        for table in (store.users_table, store.identities_table, store.audit_table, store.version_table):
            table.create(conn, checkfirst=True)
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
            {"admin"},
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
        token = (
            __import__("federation")
            .Bridge.from_dict(idp.bridge_config(), http_client=idp.client())
            .verify(idp.mint(sub="old-sub"))
        )
        assert provisioner.login(token).user.id == "u-1"
        assert upgraded.init_schema() == (2, 2)
    finally:
        upgraded.close()
