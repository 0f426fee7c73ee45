"""Fixtures of the session tests: SQL stores on SQLite and PostgreSQL.

PostgreSQL follows the service rule: ``FEDERATION_TEST_POSTGRES_URL`` (default: the
machine's server); unreachable, the cases skip with the reason, unless
``FEDERATION_REQUIRE_SERVICES=1``, where they fail. Each store gets its own
table prefix; its tables are dropped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _session_services import POSTGRES_URL, REDIS_URL, REQUIRE_SERVICES, postgres_reachable

from federation.storage import SQLStore


@pytest.fixture
def sql_store_factory(tmp_path: Path) -> Iterator[Callable[[str], SQLStore]]:
    """``factory("sqlite" | "postgres")``: a fresh SQL store (PostgreSQL tables dropped afterwards)."""
    opened: list[SQLStore] = []

    def factory(kind: str) -> SQLStore:
        if kind == "sqlite":
            store = SQLStore(f"sqlite:///{tmp_path}/s-{uuid.uuid4().hex[:8]}.db")
        else:
            postgres_reachable()
            store = SQLStore(POSTGRES_URL, table_prefix=f"s{uuid.uuid4().hex[:8]}_")
        opened.append(store)
        return store

    yield factory
    for store in opened:
        if store.engine.dialect.name == "postgresql":
            store.metadata.drop_all(store.engine)
        store.close()




@pytest.fixture
def redis_store() -> Iterator[object]:
    """A Redis session store under a key prefix of its own (its keys deleted afterwards)."""
    redis = pytest.importorskip("redis")
    from federation.storage import RedisSessionStore

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}); set FEDERATION_TEST_REDIS_URL"
        if REQUIRE_SERVICES:
            pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    prefix = f"fedtest:{uuid.uuid4().hex[:10]}:"
    store = RedisSessionStore(REDIS_URL, key_prefix=prefix)
    yield store
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    store.close()
    client.close()
