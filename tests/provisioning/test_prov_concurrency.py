"""Concurrency and atomicity: twenty simultaneous first logins of one new identity make
exactly one user and one identity (threads and asyncio tasks; in memory, SQLite and
PostgreSQL: MAP-11), a forced race goes through the duplicate-identity retry, and a
failure in the middle of provisioning leaves nothing half-written."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from _prov_helpers import AuditLog

from federation import Bridge
from federation.errors import DuplicateIdentity, StorageConflict, StorageError
from federation.testing import MockIdP

N = 20
CLAIMS = {"sub": "newcomer", "email": "new@example.com", "email_verified": True, "name": "New Comer"}


def _census(store: Any) -> tuple[list[Any], list[Any]]:
    """(users with the newcomer's email, identities of the newcomer), read through the protocol."""
    with store.transaction() as tx:
        users = list(tx.find_users_by_email("new@example.com"))
        identity = tx.find_identity("https://idp.test", "newcomer")
        identities = list(tx.identities_of(identity.user_id)) if identity else []
    return users, identities


def _threads(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)

    def run() -> Any:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result() for f in [pool.submit(run) for _ in range(n)]]


def _assert_one(results: list[Any], store: Any) -> None:
    assert len({r.user.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    users, identities = _census(store)
    assert [u.id for u in users] == [results[0].user.id]
    assert [i.key for i in identities] == [("https://idp.test", "newcomer")]


def test_twenty_threads_make_one_user(login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog) -> None:
    bridge = login_bridge(store)
    bridge.warm_up()
    token = idp.mint(CLAIMS)
    results = _threads(N, lambda: bridge.login(token))
    _assert_one(results, store)
    assert audit.names().count("user_created") == 1
    assert audit.names().count("login_succeeded") == N


@pytest.mark.anyio
async def test_twenty_tasks_make_one_user(
    login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog
) -> None:
    bridge = login_bridge(store)
    await bridge.awarm_up()
    token = idp.mint(CLAIMS)
    results = await asyncio.gather(*(bridge.alogin(token) for _ in range(N)))
    _assert_one(list(results), store)
    assert audit.names().count("user_created") == 1


def test_threads_and_tasks_together_make_one_user(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store)
    bridge.warm_up()
    token = idp.mint(CLAIMS)

    async def tasks() -> list[Any]:
        return list(await asyncio.gather(*(bridge.alogin(token) for _ in range(N // 2))))

    with ThreadPoolExecutor(max_workers=N // 2 + 1) as pool:
        loop_result = pool.submit(asyncio.run, tasks())
        thread_results = [pool.submit(bridge.login, token) for _ in range(N // 2)]
        results = loop_result.result() + [f.result() for f in thread_results]
    _assert_one(results, store)


class _Interleaving:
    """A store proxy whose first ``parties`` transactions all read the identity before any
    of them writes: the race of two first logins, forced instead of hoped for."""

    def __init__(self, store: Any, parties: int) -> None:
        self.store = store
        self.barrier = threading.Barrier(parties, timeout=20)
        self.waiting = parties
        self.lock = threading.Lock()
        self.duplicates = 0

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.store.transaction() as tx:
            yield _InterleavedTx(tx, self)


class _InterleavedTx:
    def __init__(self, tx: Any, owner: _Interleaving) -> None:
        self._tx = tx
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def find_identity(self, issuer: str, subject: str) -> Any:
        found = self._tx.find_identity(issuer, subject)
        owner = self._owner
        with owner.lock:
            wait = owner.waiting > 0
            owner.waiting -= 1
        if wait:
            owner.barrier.wait()
        return found

    def insert_identity(self, identity: Any) -> None:
        try:
            self._tx.insert_identity(identity)
        except DuplicateIdentity:
            with self._owner.lock:
                self._owner.duplicates += 1
            raise


def test_a_forced_race_on_postgres_goes_through_the_retry(
    login_bridge: Any, idp: MockIdP, make_store: Any, audit: AuditLog
) -> None:
    """PostgreSQL does not serialise writers: both racers insert a user; the unique key
    refuses the loser's identity, its transaction (user row included) rolls back and the
    retry finds the winner's identity."""
    store = make_store("postgres")
    racing = _Interleaving(store, parties=2)
    bridge = login_bridge(racing)
    bridge.warm_up()
    token = idp.mint(CLAIMS)
    results = _threads(2, lambda: bridge.login(token))
    assert racing.duplicates == 1
    _assert_one(results, store)
    assert audit.names().count("user_created") == 1


def test_sqlite_serialises_writers_so_racers_never_collide(
    login_bridge: Any, idp: MockIdP, make_store: Any
) -> None:
    """SQLite's BEGIN IMMEDIATE: the second transaction starts only after the first
    committed, so it reads the identity and never reaches the unique key."""
    store = make_store("sqlite")

    racing = _Interleaving(store, parties=1)  # no barrier across transactions: it would deadlock by design
    bridge = login_bridge(racing)
    bridge.warm_up()
    token = idp.mint(CLAIMS)
    results = _threads(N, lambda: bridge.login(token))
    assert racing.duplicates == 0
    _assert_one(results, store)


class _Faulty:
    """A store proxy that raises once, at the ``nth`` call of ``method``, inside the transaction."""

    def __init__(self, store: Any, method: str, nth: int = 1, exc: Exception | None = None) -> None:
        self.store = store
        self.method = method
        self.remaining = nth
        self.exc = exc or RuntimeError("injected failure")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.store.transaction() as tx:
            yield _FaultyTx(tx, self)


class _FaultyTx:
    def __init__(self, tx: Any, owner: _Faulty) -> None:
        self._tx = tx
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._tx, name)
        owner = self._owner
        if name != owner.method:
            return attr

        def call(*args: Any) -> Any:
            owner.remaining -= 1
            if owner.remaining == 0:
                raise owner.exc
            return attr(*args)

        return call


def test_a_failure_between_user_and_identity_leaves_nothing(
    login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog
) -> None:
    faulty = _Faulty(store, "insert_identity")
    bridge = login_bridge(faulty)
    with pytest.raises(RuntimeError, match="injected"):
        bridge.login(idp.mint(CLAIMS))
    assert _census(store) == ([], [])
    assert audit.names() == ["login_failed"] and audit[0].detail["reason"] == "internal_error"
    # the next attempt works, once
    result = bridge.login(idp.mint(CLAIMS))
    assert result.created
    _assert_one([result], store)


def test_a_failure_in_a_link_leaves_the_user_untouched(
    login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog
) -> None:
    partner = MockIdP(issuer="https://partner-idp.test", audience="my-client", alg="ES256", clock=idp.clock)
    home = login_bridge(store, issuer={"trust_email": True}).login(idp.mint(CLAIMS))
    faulty = _Faulty(store, "insert_identity")
    bridge = login_bridge(
        faulty, provisioning={"link_by_email": True}, idps=[(partner, {"trust_email": True})]
    )
    with pytest.raises(RuntimeError, match="injected"):
        bridge.login(partner.mint(sub="p", email="new@example.com", email_verified=True, name="Other Name"))
    with store.transaction() as tx:
        user = tx.get_user(home.user.id)
        assert tx.find_identity("https://partner-idp.test", "p") is None
    assert user.display_name == "New Comer" and user.last_login_at == home.user.last_login_at


@pytest.mark.anyio
async def test_a_failure_in_async_provisioning_leaves_nothing(
    login_bridge: Any, idp: MockIdP, store: Any
) -> None:
    bridge = login_bridge(_Faulty(store, "insert_identity"))
    with pytest.raises(RuntimeError, match="injected"):
        await bridge.alogin(idp.mint(CLAIMS))
    assert _census(store) == ([], [])


def test_a_store_that_keeps_conflicting_gives_up_cleanly(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    class Always(_Faulty):
        @contextmanager
        def transaction(self) -> Iterator[Any]:
            self.remaining = 1  # every attempt fails
            with super().transaction() as tx:
                yield tx

    bridge = login_bridge(Always(store, "insert_identity", exc=StorageConflict("always")))
    with pytest.raises(StorageError, match="gave up") as caught:
        bridge.login(idp.mint(CLAIMS))
    assert isinstance(caught.value.__cause__, StorageConflict)
    assert _census(store) == ([], [])


def test_concurrent_logins_of_an_existing_user_lose_no_role_change(
    login_bridge: Any, idp: MockIdP, store: Any
) -> None:
    """Role sync is a read-modify-write: concurrent logins with the same groups agree."""
    from _prov_helpers import roles_from_groups

    bridge: Bridge = login_bridge(store, mapping=roles_from_groups({"staff": "member", "admins": "admin"}))
    bridge.login(idp.mint(CLAIMS, groups=["staff"]))
    token = idp.mint(CLAIMS, groups=["staff", "admins"])
    results = _threads(N, lambda: bridge.login(token))
    assert sum(bool(r.granted) for r in results) == 1  # exactly one login saw the change
    assert all(r.user.roles == {"member", "admin"} for r in results)


class _Overtaken:
    """A store proxy on which another login of the user commits a change just before each
    transaction of this one opens: the race a busy user's login loses, lost every time."""

    def __init__(self, store: Any, user_id: str) -> None:
        self.store = store
        self.user_id = user_id
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        self.transactions += 1
        with self.store.transaction() as other:
            other.update_user(self.user_id, {"display_name": f"renamed elsewhere {self.transactions}"})
        with self.store.transaction() as tx:
            yield tx


def test_a_login_overtaken_before_every_transaction_still_completes(
    login_bridge: Any, idp: MockIdP, store: Any
) -> None:
    """The mapping ran on the user read without a lock; when the user read under the lock had
    moved, the shell rolled back and tried again, and lost again: 24 concurrent logins of one
    user with different groups gave up after 8 rounds. It now maps again inside the
    transaction, where the row stays locked, so one transaction is enough."""
    user_id = login_bridge(store).login(idp.mint(CLAIMS)).user.id
    overtaken = _Overtaken(store, user_id)
    result = login_bridge(overtaken).login(idp.mint(CLAIMS, name="New Name"))
    assert result.user.display_name == "New Name"
    assert overtaken.transactions == 1
    with store.transaction() as tx:
        assert tx.get_user(user_id).display_name == "New Name"
