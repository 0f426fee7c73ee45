"""The storage conformance suite passes on every shipped store (both protocols where a
store has both), and fails on stores that break the rules it checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from _prov_helpers import POSTGRES_URL

from federation.storage import MemoryStore, User
from federation.testing import storage_conformance
from federation.testing.storage_conformance import CHECKS, ConformanceError, StoreConformance, check_id


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


class TestMemoryStoreAsyncOnly(StoreConformance):
    modes = ("async",)

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, make_store: Any) -> Any:
        return make_store("sqlite")


class TestSQLiteInMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self, make_store: Any) -> Any:
        return make_store("sqlite-memory")


@pytest.fixture(scope="module")
def shared_postgres_store(postgres_schema: str) -> Iterator[Any]:
    """One store for every check: checks use unique values, as on a real database."""
    from federation.storage import SQLStore

    store = SQLStore(POSTGRES_URL, schema=postgres_schema, table_prefix="conformance_")
    yield store
    store.close()


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, shared_postgres_store: Any) -> Any:
        return shared_postgres_store


def test_every_check_has_a_docstring_and_an_id() -> None:
    assert len(CHECKS) >= 10
    assert len({check_id(c) for c in CHECKS}) == len(CHECKS)
    assert all(c.__doc__ for c in CHECKS)


@pytest.mark.parametrize("check", CHECKS, ids=check_id)
def test_the_function_form_runs_each_check(check: Any) -> None:
    storage_conformance.run_check(check, MemoryStore())


def test_run_all() -> None:
    storage_conformance.run_all(MemoryStore(), modes=["sync"])


def test_a_store_without_any_protocol_is_rejected() -> None:
    with pytest.raises(ConformanceError, match="transaction"):
        storage_conformance.modes_of(object())


# -- broken stores: the suite must catch each ---------------------------------------------


class _Broken:
    """A MemoryStore whose transactions are altered by ``patch(tx)``, sync protocol only."""

    def __init__(self, **overrides: Any) -> None:
        self.inner = MemoryStore()
        self.overrides = overrides

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            yield _Patched(tx, self.overrides)


class _Patched:
    def __init__(self, tx: Any, overrides: dict[str, Any]) -> None:
        self._tx = tx
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return lambda *args: self._overrides[name](self._tx, *args)
        return getattr(self._tx, name)


def _overwriting_insert(tx: Any, identity: Any) -> None:
    store = tx._store
    store._identities[identity.key] = identity  # no duplicate check
    store._by_user.setdefault(identity.user_id, set()).add(identity.key)


def _case_folding_find(tx: Any, issuer: str, subject: str) -> Any:
    for (iss, sub), identity in tx._store._identities.items():
        if iss.lower() == issuer.lower() and sub.lower() == subject.lower():
            return identity
    return None


def _exact_email(tx: Any, key: str) -> Sequence[User]:
    return [u for u in tx._store._users.values() if u.email == key]


class _NoRollback(MemoryStore):
    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            yield _NoUndo(self)


class _NoUndo:
    def __init__(self, store: MemoryStore) -> None:
        from federation.storage._memory import _MemoryTransaction

        self._tx = _MemoryTransaction(store)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class _Unlocked:
    """Transactions that neither lock nor serialise (a read-modify-write race)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        import time

        from federation.storage._memory import _MemoryTransaction

        tx = _MemoryTransaction(self.inner)

        class Slow:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(tx, name)
                if name != "get_user":
                    return attr

                def get_user(user_id: str) -> Any:
                    user = attr(user_id)
                    time.sleep(0.002)  # widen the window between read and write
                    return user

                return get_user

        yield Slow()


@pytest.mark.parametrize(
    ("store", "check", "message"),
    [
        (_Broken(insert_identity=_overwriting_insert), "duplicate_identity", "DuplicateIdentity"),
        (_Broken(find_identity=_case_folding_find), "identity_key_is_exact", "exactly"),
        (_Broken(find_users_by_email=_exact_email), "find_users_by_email", "lower"),
        (_Broken(identities_of=lambda tx, user_id: []), "identity_round_trip", "identities_of"),
        (_Broken(delete_user=lambda tx, user_id: None), "delete_user", "remove"),
        (_NoRollback(), "rollback", "rollback must undo"),
        (_Unlocked(), "no_lost_updates", "concurrent increments"),
    ],
    ids=[
        "no-duplicate-check",
        "case-folding",
        "no-email-canonical-form",
        "no-identities",
        "no-delete",
        "no-rollback",
        "no-locking",
    ],
)
def test_the_suite_catches_broken_stores(store: Any, check: str, message: str) -> None:
    (found,) = [c for c in CHECKS if check_id(c) == check]
    with pytest.raises(ConformanceError, match=message):
        storage_conformance.run_check(found, store)
