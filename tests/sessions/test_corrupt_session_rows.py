"""A session row that no release writes (another program, or damage) is a
:class:`~federation.errors.CorruptRecord` in the SQL and the Redis session stores, never the
parser's exception (whose message may quote the value)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from federation.errors import CorruptRecord
from federation.storage import SQLStore
from federation.storage._session_protocol import SessionRecord

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _refused(read: Callable[[], Any], stored: str) -> CorruptRecord:
    with pytest.raises(CorruptRecord) as caught:
        read()
    assert caught.value.code == "corrupt_record"
    assert stored not in str(caught.value)
    assert caught.value.__cause__ is None
    return caught.value


def _raw(store: SQLStore, sql: str, *params: Any) -> None:
    connection = store.engine.raw_connection()
    try:
        connection.cursor().execute(sql, params)
        connection.commit()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("table", "column", "stored"),
    [
        ("sessions", "issued_at", "garbage"),
        ("sessions", "refreshed_at", "soon"),
        ("sessions", "generation", "many"),
        ("generations", "generation", "many"),
        ("attempts", "failures", "some"),
        ("attempts", "locked_until", "later"),
    ],
)
def test_a_damaged_sqlite_session_row_is_a_corrupt_record(
    sql_store_factory: Callable[[str], SQLStore], table: str, column: str, stored: str
) -> None:
    store = sql_store_factory("sqlite")
    sessions = store.session_store()
    sessions.create_session(SessionRecord("sid-1", "u-1", NOW, NOW + timedelta(hours=1)), None)
    sessions.bump_generation("u-1")
    sessions.record_failure("k", now=NOW, max_attempts=5, lockout=60)
    _raw(store, f"UPDATE {store.table_prefix}{table} SET {column} = ?", stored)
    reads = {
        "sessions": [lambda: sessions.get_session("sid-1"), lambda: sessions.sessions_of("u-1", now=NOW)],
        "generations": [lambda: sessions.user_state("u-1", now=NOW)],  # a bump overwrites it: SQL's + 1
        "attempts": [
            lambda: sessions.attempts("k"),
            lambda: sessions.record_failure("k", now=NOW, max_attempts=5, lockout=60),
        ],
    }[table]
    for read in reads:
        assert column in str(_refused(read, stored))  # the field it names


@pytest.mark.parametrize(
    ("key", "field", "stored"),
    [
        ("session:s-1", "issued_at", "garbage"),
        ("session:s-1", "expires_at", ""),
        ("session:s-1", "generation", "many"),
        ("gen:u-1", None, "many"),
        ("attempts:k", "failures", "some"),
        ("attempts:k", "locked_until", "inf"),
    ],
)
def test_a_damaged_redis_session_value_is_a_corrupt_record(
    redis_store: Any, key: str, field: str | None, stored: str
) -> None:
    store = redis_store
    now = datetime.now(timezone.utc)
    store.create_session(SessionRecord("s-1", "u-1", now, now + timedelta(hours=1)), None)
    store.bump_generation("u-1")
    store.record_failure("k", now=now, max_attempts=5, lockout=60)
    name = store.key_prefix + key
    if field is None:
        store.client.set(name, stored, keepttl=True)
    else:
        store.client.hset(name, field, stored)
    read: Callable[[], Any] = {
        "session:s-1": lambda: store.get_session("s-1"),
        "gen:u-1": lambda: store.user_state("u-1", now=now),
        "attempts:k": lambda: store.attempts("k"),
    }[key]
    error = _refused(read, stored or "\0")
    assert "Redis" in str(error)


@pytest.mark.parametrize("stored", ["nan", "-nan", "garbage"])
def test_a_redis_refresh_token_with_a_damaged_expiry_never_rotates(redis_store: Any, stored: str) -> None:
    """Lua read "nan" as a number no time is past: the refresh token never expired."""
    from federation.storage import NewRefreshToken

    store = redis_store
    now = datetime.now(timezone.utc)
    first = NewRefreshToken("a" * 64, now, now + timedelta(hours=1))
    store.create_session(SessionRecord("s-1", "u-1", now, now + timedelta(hours=1)), first)
    store.client.hset(store.key_prefix + "refresh:" + "a" * 64, "expires_at", stored)
    successor = NewRefreshToken("b" * 64, now, now + timedelta(hours=2))
    assert store.use_refresh("a" * 64, successor, now=now, grace=0).outcome == "expired"
