"""What an existing user's login costs the store, and how it survives a dropped connection.

* ``provisioning.touch_interval``: a login that changes nothing but the login time writes
  nothing while the stored time is younger than the interval: one read, no transaction,
  no lock; the login time, any other change, or a refusal takes the locked path as before.
* PostgreSQL without ``pool_pre_ping``: a connection found dead is ``ConnectionLost``
  (nothing committed) and the login is retried once on a new connection; any other error
  is not retried; a first login broken mid-transaction leaves no half-written user.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pytest
from _prov_helpers import POSTGRES_URL, AuditLog
from sqlalchemy import create_engine, event, text

from federation.config import ProvisioningConfig
from federation.errors import AccountDisabled, ConfigError, ConnectionLost, CorruptRecord, StorageError
from federation.provisioning import ProvisioningPolicy
from federation.storage import AsyncSQLStore, AuditEvent, SQLStore
from federation.testing import FrozenClock, MockIdP

ADA = {"sub": "ada", "email": "ada@example.com", "name": "Ada"}


class Counting:
    """A store wrapper counting transactions (``find_login`` and ``read_user`` pass through)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.transactions = 0
        if hasattr(inner, "find_login"):
            self.find_login = inner.find_login

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        self.transactions += 1
        with self.inner.transaction() as tx:
            yield tx


def _stored_login_time(store: Any, user_id: str) -> datetime | None:
    with store.transaction() as tx:
        user = tx.get_user(user_id)
    return None if user is None else user.last_login_at


@pytest.mark.parametrize("interval", [300, 0])
def test_a_login_within_the_touch_interval_writes_nothing(
    interval: int, store: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock, audit: AuditLog
) -> None:
    counting = Counting(store)
    bridge = login_bridge(counting, provisioning={"touch_interval": interval})
    first = bridge.login(idp.mint(ADA))
    before = counting.transactions
    clock.advance(60)
    second = bridge.login(idp.mint(ADA))
    assert not second.created and second.user.id == first.user.id and second.changes == {}
    assert audit.names()[-1] == "login_succeeded"
    if interval:
        assert counting.transactions == before  # one unlocked read, no transaction
        assert second.user.last_login_at == first.user.last_login_at
        assert _stored_login_time(store, first.user.id) == first.user.last_login_at
    else:  # 0: every login writes its time, as before the setting existed
        assert counting.transactions == before + 1
        now = datetime.fromtimestamp(clock(), tz=timezone.utc)
        assert second.user.last_login_at == now == _stored_login_time(store, first.user.id)


def test_the_login_time_is_written_once_the_interval_passed(
    store: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = login_bridge(store, provisioning={"touch_interval": 300})
    first = bridge.login(idp.mint(ADA))
    clock.advance(299)
    assert bridge.login(idp.mint(ADA)).user.last_login_at == first.user.last_login_at
    clock.advance(1)  # 300 s old: due
    later = bridge.login(idp.mint(ADA))
    now = datetime.fromtimestamp(clock(), tz=timezone.utc)
    assert later.user.last_login_at == now == _stored_login_time(store, first.user.id)
    assert later.user.updated_at == first.user.updated_at  # the login time is not an update


def test_a_change_within_the_interval_writes_it_and_the_login_time(
    store: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock, audit: AuditLog
) -> None:
    counting = Counting(store)
    bridge = login_bridge(counting, provisioning={"touch_interval": 300})
    first = bridge.login(idp.mint(ADA))
    clock.advance(10)
    before = counting.transactions
    renamed = bridge.login(idp.mint({**ADA, "name": "Ada L."}))
    now = datetime.fromtimestamp(clock(), tz=timezone.utc)
    assert counting.transactions == before + 1
    assert renamed.changes == {"display_name": ("Ada", "Ada L.")}
    assert renamed.user.last_login_at == renamed.user.updated_at == now
    assert _stored_login_time(store, first.user.id) == now
    assert "user_updated" in audit.names()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_disabled_user_is_refused_within_the_interval(
    mode: str, store: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock, audit: AuditLog
) -> None:
    bridge = login_bridge(store, provisioning={"touch_interval": 300})
    first = bridge.login(idp.mint(ADA))
    bridge.deprovision(issuer=idp.issuer, subject="ada")
    clock.advance(5)
    with pytest.raises(AccountDisabled):
        if mode == "sync":
            bridge.login(idp.mint(ADA))
        else:
            asyncio.run(bridge.alogin(idp.mint(ADA)))
    assert audit.names()[-1] == "login_failed"
    assert _stored_login_time(store, first.user.id) == first.user.last_login_at


def test_an_async_login_within_the_interval_writes_nothing(
    login_bridge: Any, idp: MockIdP, clock: FrozenClock, tmp_path: Any
) -> None:
    store = AsyncSQLStore(f"sqlite:///{tmp_path}/touch.db")
    try:
        bridge = login_bridge(store, provisioning={"touch_interval": 300})
        first = asyncio.run(bridge.alogin(idp.mint(ADA)))
        clock.advance(60)
        second = asyncio.run(bridge.alogin(idp.mint(ADA)))
        assert second.user.last_login_at == first.user.last_login_at
        clock.advance(300)
        third = asyncio.run(bridge.alogin(idp.mint(ADA)))
        assert third.user.last_login_at == datetime.fromtimestamp(clock(), tz=timezone.utc)
    finally:
        store.close()


def test_the_touch_interval_setting() -> None:
    assert ProvisioningConfig().touch_interval == 0  # every login writes unless asked otherwise
    assert ProvisioningPolicy.from_config(ProvisioningConfig(touch_interval=300)).touch_interval == 300
    with pytest.raises(ValueError):
        ProvisioningConfig(touch_interval=-1)


def test_a_negative_touch_interval_is_a_config_error(idp: MockIdP) -> None:
    with pytest.raises(ConfigError):
        idp.bridge(config=idp.bridge_config(provisioning={"touch_interval": -5}))


# -- PostgreSQL: no pre-ping, one retry on a lost connection ------------------------------


@pytest.fixture
def pg_store(postgres_schema: str) -> Iterator[SQLStore]:
    name = f"fedtest-{uuid.uuid4().hex[:10]}"
    store = SQLStore(
        POSTGRES_URL,
        schema=postgres_schema,
        table_prefix=f"c{uuid.uuid4().hex[:6]}_",
        connect_args={"application_name": name},
    )
    store.application_name = name  # type: ignore[attr-defined]
    yield store
    store.close()


@pytest.fixture
def admin() -> Iterator[Any]:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _terminate(admin: Any, application_name: str) -> int:
    """End every backend of ``application_name`` (this test's store only), waiting for each."""
    with admin.connect() as conn:
        return len(
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": application_name},
            ).all()
        )


def _disconnects(store_or_engine: Any) -> list[bool]:
    """One entry per connection the engine's pool invalidates from now on (a disconnect seen by a
    statement, on SQLAlchemy's path or the driver's). A pool event: it leaves the store's reads
    on the driver's path (cursor and error listeners would send them through SQLAlchemy's)."""
    seen: list[bool] = []

    @event.listens_for(getattr(store_or_engine, "engine", store_or_engine), "invalidate")
    def _on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
        seen.append(exception is not None)

    return seen


def test_the_postgres_engine_does_not_pre_ping(pg_store: SQLStore) -> None:
    assert pg_store.engine.pool._pre_ping is False  # a round trip per checkout, saved


@pytest.mark.parametrize("interval", [0, 300])
def test_a_terminated_backend_costs_one_retry(
    interval: int, pg_store: SQLStore, admin: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock
) -> None:
    bridge = login_bridge(pg_store, provisioning={"touch_interval": interval})
    first = bridge.login(idp.mint(ADA))
    clock.advance(600 if interval == 0 else 10)
    errors = _disconnects(pg_store)
    assert _terminate(admin, pg_store.application_name) >= 1  # type: ignore[attr-defined]
    second = bridge.login(idp.mint(ADA))
    assert second.user.id == first.user.id and not second.created
    assert errors == [True]  # the dead connection, once; the retry ran on a new one
    assert pg_store.count_users() == 1


def test_an_audit_write_on_a_terminated_backend_is_retried_once(pg_store: SQLStore, admin: Any) -> None:
    """A revocation kept in Redis writes only its audit row here: on a dead connection the
    event was lost (logged as a sink failure) while every other statement retried."""
    pg_store.init_schema()
    sink = pg_store.audit_sink()
    sink(AuditEvent("user_sessions_revoked", datetime.now(timezone.utc), user_id="u-1"))
    errors = _disconnects(pg_store)
    assert _terminate(admin, pg_store.application_name) >= 1  # type: ignore[attr-defined]
    sink(AuditEvent("session_revoked", datetime.now(timezone.utc), user_id="u-1"))
    assert errors == [True]
    assert [e.name for e in pg_store.audit_tail()] == ["user_sessions_revoked", "session_revoked"]


def test_a_backend_lost_mid_transaction_leaves_no_half_written_user(
    postgres_schema: str, admin: Any, login_bridge: Any, idp: MockIdP
) -> None:
    name = f"fedtest-{uuid.uuid4().hex[:10]}"

    class DropsOnce(SQLStore):
        drops = 1

        @contextmanager
        def transaction(self) -> Iterator[Any]:
            with super().transaction() as tx:
                real_insert = tx.insert_user

                def insert_user(user: Any) -> str:
                    user_id = real_insert(user)
                    if self.drops:  # the user row is written, the identity not yet: drop the line
                        self.drops -= 1
                        _terminate(admin, name)
                    return user_id

                tx.insert_user = insert_user
                yield tx

    store = DropsOnce(
        POSTGRES_URL,
        schema=postgres_schema,
        table_prefix=f"h{uuid.uuid4().hex[:6]}_",
        connect_args={"application_name": name},
    )
    try:
        store.init_schema()
        errors = _disconnects(store)
        result = login_bridge(store).login(idp.mint(ADA))
        assert result.created and errors == [True]
        assert store.count_users() == 1  # the first attempt's user rolled back with it
        assert list(store.identities([result.user.id]).values()) == [[result.identity]]
    finally:
        store.close()


def test_an_error_that_is_not_a_disconnect_is_not_retried(
    pg_store: SQLStore, admin: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock, audit: AuditLog
) -> None:
    bridge = login_bridge(pg_store)
    first = bridge.login(idp.mint(ADA))
    users = f'"{pg_store.schema}"."{pg_store.users_table.name}"'
    function = f'"{pg_store.schema}"."{pg_store.users_table.name}_refuse"'
    with admin.connect() as conn:
        conn.execute(
            text(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$"
            )
        )
        conn.execute(
            text(f"CREATE TRIGGER refuse BEFORE UPDATE ON {users} FOR EACH ROW EXECUTE FUNCTION {function}()")
        )
    errors: list[bool] = []
    event.listen(pg_store.engine, "handle_error", lambda context: errors.append(context.is_disconnect))
    clock.advance(60)
    with pytest.raises(StorageError) as raised:
        bridge.login(idp.mint(ADA))
    assert not isinstance(raised.value, ConnectionLost)
    assert errors == [False]  # one attempt: an error that is not a disconnect is not retried
    assert audit.names()[-1] == "login_failed"
    assert _stored_login_time(pg_store, first.user.id) == first.user.last_login_at


def test_a_connection_lost_twice_is_an_error(
    pg_store: SQLStore, admin: Any, login_bridge: Any, idp: MockIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = login_bridge(pg_store)
    bridge.login(idp.mint(ADA))
    real = pg_store.transaction
    attempts: list[int] = []

    @contextmanager
    def always_lost() -> Iterator[Any]:
        attempts.append(1)
        with real() as tx:
            _terminate(admin, pg_store.application_name)  # type: ignore[attr-defined]
            yield tx

    monkeypatch.setattr(pg_store, "transaction", always_lost)
    with pytest.raises(ConnectionLost):
        bridge.login(idp.mint(ADA))
    assert len(attempts) == 2  # the login and its one retry


def test_an_async_store_retries_a_terminated_backend_once(
    postgres_schema: str, admin: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock
) -> None:
    name = f"fedtest-{uuid.uuid4().hex[:10]}"
    store = AsyncSQLStore(
        POSTGRES_URL,
        schema=postgres_schema,
        table_prefix=f"y{uuid.uuid4().hex[:6]}_",
        connect_args={"application_name": name},
    )
    bridge = login_bridge(store)

    async def scenario() -> tuple[Any, Any]:
        first = await bridge.alogin(idp.mint(ADA))
        engine = await store.aengine()
        errors = _disconnects(engine.sync_engine)
        clock.advance(60)
        await asyncio.to_thread(_terminate, admin, name)
        second = await bridge.alogin(idp.mint(ADA))
        assert errors == [True]
        await store.aclose()
        return first, second

    try:
        first, second = asyncio.run(scenario())
        assert first.user.id == second.user.id
    finally:
        store.close()


def test_a_session_read_retries_a_terminated_backend_once(pg_store: SQLStore, admin: Any) -> None:
    sessions = pg_store.session_store()
    now = datetime.now(timezone.utc)
    assert sessions.get_session("nope") is None
    errors = _disconnects(pg_store)
    _terminate(admin, pg_store.application_name)  # type: ignore[attr-defined]
    assert sessions.user_state("someone", now=now).generation == 0
    assert errors == [True]


# -- the login read on the driver: the same answers as SQLAlchemy's ---------------------------


def _on_both_paths(store: SQLStore, read: Callable[[], Any]) -> list[Any]:
    """``read()`` with the login read on the driver's path, then on SQLAlchemy's (a listener
    sends it there, and is told the login's statement: proof that it took that path)."""
    by_driver = read()
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        by_sqlalchemy = read()
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    assert any("JOIN" in statement for statement in seen)
    return [by_driver, by_sqlalchemy]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_driver_read_gives_what_sqlalchemy_gives(
    kind: str, make_store: Any, login_bridge: Any, idp: MockIdP, clock: FrozenClock
) -> None:
    store = make_store(kind)
    bridge = login_bridge(store, mapping=None)
    made = bridge.login(idp.mint({**ADA, "groups": ["a"]}))
    with store.transaction() as tx:
        tx.update_user(made.user.id, {"roles": {"x", "y"}, "attributes": {"k": [1, {"n": None}]}})
    by_driver, by_sqlalchemy = _on_both_paths(store, lambda: store.find_login(idp.issuer, "ada"))
    assert by_driver == by_sqlalchemy
    assert by_driver is not None and by_driver[1] is not None
    user = by_driver[1]
    assert user.roles == {"x", "y"} and user.attributes == {"k": [1, {"n": None}]}
    assert user.created_at.tzinfo is not None and user.last_login_at == made.user.last_login_at
    assert store.find_login(idp.issuer, "nobody") is None


def test_the_driver_read_leaves_postgres_connections_transactional(pg_store: SQLStore) -> None:
    pg_store.init_schema()
    for _ in range(3):
        assert pg_store.find_login("https://idp.test", "nobody") is None
    with pg_store.engine.connect() as conn:  # the pooled connection the reads used
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]


def test_a_sqlite_login_read_searches_an_index(make_store: Any) -> None:
    store = make_store("sqlite")
    store.init_schema()
    sql = str(store.login_query().compile(dialect=store.engine.dialect))
    raw = store.engine.raw_connection()
    try:
        plan = raw.cursor().execute("EXPLAIN QUERY PLAN " + sql, ("https://idp.test", "u")).fetchall()
    finally:
        raw.close()
    assert not any(row[-1].startswith("SCAN") for row in plan), plan


def test_the_printable_ascii_shortcut_agrees_with_the_character_scan() -> None:
    """Every ASCII character, alone and inside a name, is judged as the full scan judges it."""
    import unicodedata

    from federation.provisioning._policy import _bad_char

    for code in range(128):
        ch = chr(code)
        scanned = unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn", "Cf")
        for value in (ch, f"Ada{ch}Lovelace"):
            assert _bad_char(value, format_chars=True) is scanned, repr(value)
            assert _bad_char(value, format_chars=False) is scanned, repr(value)
    assert _bad_char("Ada\u202eecalevol", format_chars=False)  # a bidi override, past the shortcut
    assert not _bad_char("Zoë", format_chars=True)


def _store_raw(store: SQLStore, column: str, value: Any, user_id: str) -> None:
    """Write one column on the driver, past SQLAlchemy's types (what another tool may have stored)."""
    raw = store.engine.raw_connection()
    try:
        sql = f"UPDATE {store.users_table.name} SET {column} = ? WHERE id = ?"
        raw.cursor().execute(sql, (value, user_id))
        raw.commit()
    finally:
        raw.close()


def _stored_user(store: SQLStore, idp: MockIdP) -> Any:
    found = store.find_login(idp.issuer, "ada")
    assert found is not None and found[1] is not None
    return found[1]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-01-02 03:04:05.000006", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)),
        ("2026-01-02 03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        # an offset another writer kept: converted to UTC, as the type always did
        ("2026-01-02T03:04:05+02:00", datetime(2026, 1, 2, 1, 4, 5, tzinfo=timezone.utc)),
        (None, None),
    ],
)
def test_a_stored_sqlite_time_reads_as_utc_on_both_paths(
    stored: str | None, expected: datetime | None, make_store: Any, login_bridge: Any, idp: MockIdP
) -> None:
    store = make_store("sqlite")
    made = login_bridge(store, mapping=None).login(idp.mint(ADA))
    _store_raw(store, "last_login_at", stored, made.user.id)
    for read in _on_both_paths(store, lambda: _stored_user(store, idp).last_login_at):
        assert read == expected
        assert read is None or read.tzinfo is timezone.utc  # the UTC singleton, not an equal offset


@pytest.mark.parametrize(
    "attributes",
    [
        '{"k": [1, {"n": null}], "s": "\\u00e9"}',
        ' {"k": 1}',  # whitespace first: json.loads skips it
        '{"k": 1}\n',  # and after
        '{"k": NaN}',  # a constant json.loads accepts
        "\ufeff{}",  # a byte-order mark: json.loads refuses it
        '{"k": 1} {"k": 2}',  # a second document after the first: refused
        '{"k": 1',  # cut short
    ],
)
def test_the_driver_read_decodes_sqlite_json_as_sqlalchemy_does(
    attributes: str, make_store: Any, login_bridge: Any, idp: MockIdP
) -> None:
    store = make_store("sqlite")
    made = login_bridge(store, mapping=None).login(idp.mint(ADA))
    _store_raw(store, "attributes", attributes, made.user.id)

    def outcome() -> tuple[str, str]:
        try:
            return "value", repr(_stored_user(store, idp).attributes)  # repr: NaN is not equal to itself
        except CorruptRecord as exc:
            return "error", exc.code

    by_driver, by_sqlalchemy = _on_both_paths(store, outcome)
    assert by_driver == by_sqlalchemy


def test_a_postgres_time_reads_as_the_utc_singleton(
    pg_store: SQLStore, login_bridge: Any, idp: MockIdP
) -> None:
    made = login_bridge(pg_store, mapping=None).login(idp.mint(ADA))
    for created in _on_both_paths(pg_store, lambda: _stored_user(pg_store, idp).created_at):
        assert created == made.user.created_at
        assert created.tzinfo is timezone.utc
