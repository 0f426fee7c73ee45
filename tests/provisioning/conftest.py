"""Fixtures of the provisioning tests: stores of every shipped kind, and login bridges.

PostgreSQL follows the service rule of ``tests/conftest.py``: the URL comes from
``FEDERATION_TEST_POSTGRES_URL`` (default: the machine's server); when it is
unreachable the PostgreSQL cases skip with the reason, unless
``FEDERATION_REQUIRE_SERVICES=1``, where they fail. Each test run works in its
own schema (``fedtest_<random>``), dropped at the end; each store gets its own
table prefix inside it.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _prov_helpers import POSTGRES_URL, AuditLog

from federation import Bridge
from federation.storage import MemoryStore, SQLStore
from federation.testing import FrozenClock, MockIdP, mock_transport

REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
STORE_KINDS = ("memory", "sqlite", "postgres")

_prefixes = itertools.count(1)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL not reachable at {POSTGRES_URL} ({reason}); set FEDERATION_TEST_POSTGRES_URL"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of its own for this test run on the test PostgreSQL server (dropped afterwards)."""
    from sqlalchemy import create_engine, text

    schema = f"fedtest_{uuid.uuid4().hex[:12]}"
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any failure to reach or use the server
        _unreachable(type(exc).__name__)
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


class StoreFactory:
    """Makes fresh stores of a kind; closes them at teardown."""

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self._tmp = tmp_path
        self._request = request
        self._opened: list[SQLStore] = []

    def __call__(self, kind: str, **options: Any) -> Any:
        if kind == "memory":
            return MemoryStore()
        if kind == "sqlite":
            store = SQLStore(f"sqlite:///{self._tmp}/users-{next(_prefixes)}.db", **options)
        elif kind == "sqlite-memory":
            store = SQLStore("sqlite://", **options)
        elif kind == "postgres":
            schema = self._request.getfixturevalue("postgres_schema")
            options.setdefault("table_prefix", f"t{next(_prefixes)}_")
            store = SQLStore(POSTGRES_URL, schema=schema, **options)
        else:  # pragma: no cover
            raise ValueError(kind)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture
def make_store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    factory = StoreFactory(tmp_path, request)
    yield factory
    factory.close()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each shipped store: in memory, SQLite, PostgreSQL."""
    return str(request.param)


@pytest.fixture
def store(store_kind: str, make_store: StoreFactory) -> Any:
    return make_store(store_kind)


@pytest.fixture
def idp(clock: FrozenClock) -> MockIdP:
    """The generic OIDC mock issuer of these tests: ES256 only (RSA key generation would
    dominate the suite's time; verification is not what is tested here)."""
    return MockIdP(issuer="https://idp.test", audience="my-client", alg="ES256", clock=clock)


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def login_bridge(idp: MockIdP, audit: AuditLog) -> Iterator[Callable[..., Bridge]]:
    """``login_bridge(store, mapping=None, provisioning={...}, issuer={...}, idps=[...])``:
    a bridge trusting ``idp`` (and ``idps``), provisioning into ``store``, auditing into ``audit``."""
    built: list[Bridge] = []

    def factory(
        store: Any = None,
        *,
        mapping: Any = None,
        provisioning: dict[str, Any] | None = None,
        issuer: dict[str, Any] | None = None,
        idps: list[tuple[MockIdP, dict[str, Any]]] | None = None,
        **options: Any,
    ) -> Bridge:
        entries = [idp.issuer_config(**(issuer or {}))]
        clients = [idp]
        for other, overrides in idps or []:
            entries.append(other.issuer_config(**overrides))
            clients.append(other)
        config: dict[str, Any] = {"issuers": entries}
        if provisioning is not None:
            config["provisioning"] = provisioning
        options.setdefault("audit", audit.append)
        bridge = Bridge.from_dict(
            config,
            http_client=httpx.Client(transport=mock_transport(*clients)),
            async_http_client=httpx.AsyncClient(transport=mock_transport(*clients)),
            clock=idp.clock,
            on_event=lambda event: None,
            store=store if store is not None else MemoryStore(),
            mapping=mapping,
            **options,
        )
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()
