"""The storage conformance suite: run it against your own store implementation.

Every store that provisioning writes through must keep the contract of
:mod:`federation.storage` (round trips, exact identity keys, duplicate
identities refused, rollback, locking, atomic find-or-create). This suite
checks it, against the sync protocol, the native async protocol, or both,
whichever the store offers. Checks use fresh unique values, so they run on a
store that already holds data (a real database) and may share one store.

Subclass the base class in your test suite::

    import pytest
    from federation.testing.storage_conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self):
            store = MyStore(engine)          # your implementation
            yield store

or parametrize over the checks yourself::

    from federation.testing import storage_conformance

    @pytest.mark.parametrize("check", storage_conformance.CHECKS, ids=storage_conformance.check_id)
    def test_my_store(check):
        storage_conformance.run_check(check, MyStore(engine))

A failing check raises :class:`ConformanceError` saying which rule of the
protocol was broken.

Must not: be imported by the library's runtime code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import pytest

from federation.errors import DuplicateIdentity, StorageConflict
from federation.provisioning import DefaultMapping, Provisioner
from federation.spi import Identity, VerifiedToken
from federation.storage import (
    DeleteUser,
    FindIdentity,
    FindUsersByEmail,
    GetUser,
    IdentitiesOf,
    InsertIdentity,
    InsertUser,
    NewUser,
    StoreOp,
    UpdateUser,
    User,
    UserIdentity,
    adrive,
    call,
    drive,
    email_key,
    is_async_store,
)

__all__ = [
    "CHECKS",
    "Check",
    "ConformanceError",
    "Harness",
    "StoreConformance",
    "check_id",
    "modes_of",
    "run_all",
    "run_check",
]

T = TypeVar("T")
Mode = Literal["sync", "async"]
Body = Generator[StoreOp[Any], Any, T]

#: How many concurrent logins (threads, or asyncio tasks) the concurrency checks start.
CONCURRENCY = 20


class ConformanceError(AssertionError):
    """The store broke a rule of the storage protocol."""


class _Sentinel(Exception):
    """Raised inside a transaction to test rollback."""


def _require(condition: bool, rule: str) -> None:
    if not condition:
        raise ConformanceError(rule)


class Harness:
    """Runs transaction bodies (generators of typed store operations, :class:`~federation.storage.StoreOp`)
    on a store, through its sync or its async protocol."""

    def __init__(self, store: Any, mode: Mode) -> None:
        self.store = store
        self.mode = mode
        self.tag = uuid.uuid4().hex[:12]
        self._counter = 0
        base = datetime.now(timezone.utc).replace(microsecond=0)
        self.now = base

    def unique(self, prefix: str) -> str:
        """A value no other check (or run) uses."""
        self._counter += 1
        return f"{prefix}-{self.tag}-{self._counter}"

    async def run(self, body: Body[T]) -> T:
        """Run ``body`` in one transaction; commit."""
        if self.mode == "async":
            async with self.store.atransaction() as tx:
                return await adrive(body, tx)
        # A sync store is called from a thread of its own, as sync callers and ``alogin`` call
        # it: never inside the event loop (Django's ORM, for one, refuses that).
        return await asyncio.to_thread(self._run_sync, body)

    def _run_sync(self, body: Body[T]) -> T:
        with self.store.transaction() as tx:
            return drive(body, tx)

    async def call(self, op: StoreOp[T]) -> T:
        """One operation in its own transaction."""
        result: T = await self.run(_calls(op))
        return result

    async def run_and_fail(self, body: Body[Any]) -> None:
        """Run ``body`` then raise inside the transaction: everything it wrote must vanish."""

        def failing() -> Body[None]:
            yield from body
            raise _Sentinel

        try:
            await self.run(failing())
        except _Sentinel:
            return
        raise ConformanceError("an exception inside a transaction must propagate out of it")

    async def concurrently(
        self, n: int, job: Callable[[], Any], ajob: Callable[[], Awaitable[Any]]
    ) -> list[Any]:
        """``n`` simultaneous calls: threads of ``job`` (sync), tasks of ``ajob`` (async)."""
        if self.mode == "async":
            gate = asyncio.Event()

            async def task() -> Any:
                await gate.wait()
                return await ajob()

            tasks = [asyncio.ensure_future(task()) for _ in range(n)]
            await asyncio.sleep(0)
            gate.set()
            return list(await asyncio.gather(*tasks))
        barrier = threading.Barrier(n)

        def thread() -> Any:
            barrier.wait()
            return job()

        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(await asyncio.gather(*(loop.run_in_executor(pool, thread) for _ in range(n))))

    def new_user(self, **overrides: Any) -> NewUser:
        """A user to insert, with unique username and email."""
        values: dict[str, Any] = {
            "username": self.unique("user"),
            "email": self.unique("mail") + "@example.test",
            "email_verified": True,
            "display_name": "Zoë Conformance",
            "roles": frozenset({"reader", "writer"}),
            "attributes": {"department": "R&D", "level": 3, "tags": ["a", "b"], "nested": {"x": [1, 2.5]}},
            "status": "active",
            "created_at": self.now,
            "updated_at": self.now,
            "last_login_at": None,
        }
        values.update(overrides)
        return NewUser(**values)

    def identity(self, user_id: str, **overrides: Any) -> UserIdentity:
        """An identity with a unique key for ``user_id``."""
        values: dict[str, Any] = {
            "issuer": "https://" + self.unique("issuer") + ".test",
            "subject": self.unique("sub"),
            "provider": "oidc",
            "user_id": user_id,
            "created_at": self.now,
        }
        values.update(overrides)
        return UserIdentity(**values)

    def token(self, issuer: str, subject: str, email: str) -> VerifiedToken:
        """A verified token (as the bridge would hand it to provisioning)."""
        claims = {
            "iss": issuer,
            "sub": subject,
            "email": email,
            "email_verified": True,
            "name": "Con Current",
        }
        return VerifiedToken(
            issuer=issuer,
            subject=subject,
            provider="oidc",
            token_type="id",
            claims=MappingProxyType(claims),
            header=MappingProxyType({"alg": "RS256"}),
            key_id=None,
            algorithm="RS256",
            audience=("conformance",),
            expires_at=self.now + timedelta(minutes=5),
            identity=Identity(key=(issuer, subject), email=email, email_verified=True),
        )


def _calls(*ops: StoreOp[Any]) -> Body[Any]:
    """A body making ``ops`` in order; returns the result (a list when several)."""
    results = []
    for op in ops:
        results.append((yield op))
    return results[0] if len(results) == 1 else results


def _found(value: T | None, what: str) -> T:
    """``value``, or a :class:`ConformanceError` saying that ``what`` found nothing."""
    if value is None:
        raise ConformanceError(f"{what} found nothing")
    return value


def _same_instant(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.tzinfo is not None and abs(a - b) < timedelta(seconds=1)


def _check_user(found: User | None, expected: NewUser, user_id: str, what: str) -> None:
    _require(found is not None, f"{what}: get_user must return the user just inserted")
    assert found is not None
    _require(found.id == user_id, f"{what}: get_user must return the user with the asked id")
    for name in ("username", "email", "email_verified", "display_name", "status"):
        _require(getattr(found, name) == getattr(expected, name), f"{what}: {name} must round-trip")
    _require(found.roles == expected.roles, f"{what}: roles must round-trip as a set")
    _require(
        dict(found.attributes) == dict(expected.attributes), f"{what}: attributes must round-trip (JSON)"
    )
    for name in ("created_at", "updated_at", "last_login_at"):
        _require(
            _same_instant(getattr(found, name), getattr(expected, name)),
            f"{what}: {name} must round-trip as a timezone-aware instant",
        )


# -- the checks ----------------------------------------------------------------------------

Check = Callable[[Harness], Coroutine[Any, Any, None]]


async def check_absent_reads(h: Harness) -> None:
    """Reads of things that do not exist return None or nothing."""
    _require(await h.call(FindIdentity(h.unique("iss"), "x")) is None, "find_identity of an unknown key")
    _require(await h.call(GetUser(h.unique("no-such-id"))) is None, "get_user of an unknown id must be None")
    found = await h.call(FindUsersByEmail(h.unique("nobody") + "@example.test"))
    _require(list(found) == [], "find_users_by_email of an unknown email must be empty")
    _require(list(await h.call(IdentitiesOf(h.unique("no-such-id")))) == [], "identities_of an unknown user")


async def check_user_round_trip(h: Harness) -> None:
    """insert_user returns a new string id; get_user returns every field as inserted."""
    user = h.new_user(last_login_at=h.now)
    user_id = await h.call(InsertUser(user))
    _require(isinstance(user_id, str) and user_id != "", "insert_user must return the new id as a string")
    _check_user(await h.call(GetUser(user_id)), user, user_id, "round trip")
    bare = h.new_user(username=None, email=None, display_name=None, roles=frozenset(), attributes={})
    bare_id = await h.call(InsertUser(bare))
    _require(bare_id != user_id, "insert_user must return a distinct id for each user")
    _check_user(await h.call(GetUser(bare_id)), bare, bare_id, "round trip of empty values")


async def check_update_user(h: Harness) -> None:
    """update_user sets exactly the named fields; attributes and roles are replaced whole."""
    user = h.new_user()
    user_id = await h.call(InsertUser(user))
    later = h.now + timedelta(hours=1)
    changes: dict[str, Any] = {
        "username": h.unique("renamed"),
        "email": h.unique("moved") + "@example.test",
        "email_verified": False,
        "display_name": "Ünïcode Name",
        "roles": frozenset({"admin"}),
        "attributes": {"department": "Ops"},
        "status": "disabled",
        "updated_at": later,
        "last_login_at": later,
    }
    await h.call(UpdateUser(user_id, changes))
    expected = dataclasses.replace(user, **changes)
    _check_user(await h.call(GetUser(user_id)), expected, user_id, "update_user")
    await h.call(UpdateUser(user_id, {"display_name": None}))
    found = _found(await h.call(GetUser(user_id)), "get_user of an updated user")
    _require(found.display_name is None, "update_user must be able to clear a column (None)")
    _require(found.username == changes["username"], "update_user must leave unnamed fields alone")


async def check_identity_round_trip(h: Harness) -> None:
    """insert_identity then find_identity by the exact key; identities_of lists a user's identities."""
    user_id = await h.call(InsertUser(h.new_user()))
    other_id = await h.call(InsertUser(h.new_user()))
    first = h.identity(user_id)
    second = h.identity(user_id, provider="another-provider")
    await h.run(_calls(InsertIdentity(first), InsertIdentity(second)))
    await h.call(InsertIdentity(h.identity(other_id)))
    found = _found(
        await h.call(FindIdentity(first.issuer, first.subject)), "find_identity of an inserted identity"
    )
    _require(
        (found.issuer, found.subject, found.provider, found.user_id)
        == (first.issuer, first.subject, "oidc", user_id),
        "find_identity must return issuer, subject, provider and user_id as inserted",
    )
    _require(_same_instant(found.created_at, first.created_at), "identity created_at must round-trip")
    listed = await h.call(IdentitiesOf(user_id))
    _require(
        sorted(i.key for i in listed) == sorted([first.key, second.key]),
        "identities_of must list exactly the user's identities",
    )


async def check_identity_key_is_exact(h: Harness) -> None:
    """Identity keys match exactly: no case folding, no trimming, no URL normalisation."""
    user_id = await h.call(InsertUser(h.new_user()))
    identity = h.identity(user_id, subject=h.unique("Sub"))
    await h.call(InsertIdentity(identity))
    for issuer, subject in (
        (identity.issuer, identity.subject.lower()),
        (identity.issuer, identity.subject.upper()),
        (identity.issuer, identity.subject + " "),
        (identity.issuer + "/", identity.subject),
        (identity.issuer.upper(), identity.subject),
    ):
        _require(
            await h.call(FindIdentity(issuer, subject)) is None,
            "find_identity must compare issuer and subject exactly (case, whitespace, trailing slash)",
        )
    # a second identity differing only in case is a different identity
    upper = h.identity(user_id, issuer=identity.issuer, subject=identity.subject.upper())
    await h.call(InsertIdentity(upper))


async def check_duplicate_identity(h: Harness) -> None:
    """Inserting an existing (issuer, subject) raises DuplicateIdentity, and the rest of that
    transaction is rolled back."""
    user_id = await h.call(InsertUser(h.new_user()))
    identity = h.identity(user_id)
    await h.call(InsertIdentity(identity))
    intruder = h.new_user()
    try:
        await h.run(_calls(InsertUser(intruder), InsertIdentity(identity)))
    except DuplicateIdentity:
        pass
    else:
        raise ConformanceError("insert_identity of an existing key must raise DuplicateIdentity")
    key = email_key(intruder.email)
    assert key is not None
    _require(
        list(await h.call(FindUsersByEmail(key))) == [],
        "a transaction that raised DuplicateIdentity must leave nothing behind",
    )
    found = await h.call(FindIdentity(identity.issuer, identity.subject))
    _require(found is not None and found.user_id == user_id, "the existing identity must be unchanged")


async def check_find_users_by_email(h: Harness) -> None:
    """find_users_by_email matches the canonical (lower-cased ASCII) email, and only it."""
    local = h.unique("Mixed.Case")
    email = f"{local}@Example.TEST"
    first = await h.call(InsertUser(h.new_user(email=email)))
    second = await h.call(InsertUser(h.new_user(email=email.lower())))
    await h.call(InsertUser(h.new_user(email=f"{local}x@example.test")))
    key = email_key(email)
    assert key is not None
    found = sorted(u.id for u in await h.call(FindUsersByEmail(key)))
    _require(
        found == sorted([first, second]), "find_users_by_email must match lower(email) exactly, every match"
    )
    await h.call(UpdateUser(second, {"email": h.unique("elsewhere") + "@example.test"}))
    found = [u.id for u in await h.call(FindUsersByEmail(key))]
    _require(found == [first], "find_users_by_email must follow email changes")


async def check_delete_user(h: Harness) -> None:
    """delete_user removes the user and its identities, nothing else."""
    doomed = await h.call(InsertUser(h.new_user()))
    kept = await h.call(InsertUser(h.new_user()))
    doomed_identity, kept_identity = h.identity(doomed), h.identity(kept)
    await h.run(_calls(InsertIdentity(doomed_identity), InsertIdentity(kept_identity)))
    await h.call(DeleteUser(doomed))
    _require(await h.call(GetUser(doomed)) is None, "delete_user must remove the user")
    _require(
        await h.call(FindIdentity(doomed_identity.issuer, doomed_identity.subject)) is None,
        "delete_user must remove the user's identities",
    )
    _require(list(await h.call(IdentitiesOf(doomed))) == [], "delete_user must remove the user's identities")
    _require(await h.call(GetUser(kept)) is not None, "delete_user must not touch other users")
    found = await h.call(FindIdentity(kept_identity.issuer, kept_identity.subject))
    _require(found is not None, "delete_user must not touch other users' identities")


async def check_find_login(h: Harness) -> None:
    """The optional unlocked read (``find_login`` / ``afind_login``) agrees with the transaction's reads."""
    name = "afind_login" if h.mode == "async" else "find_login"
    find = getattr(h.store, name, None)
    if find is None:
        return  # optional: provisioning reads such a store in a short transaction instead

    async def read(issuer: str, subject: str) -> Any:
        if h.mode == "async":
            return await find(issuer, subject)
        return await asyncio.to_thread(find, issuer, subject)

    user_id = await h.call(InsertUser(h.new_user(attributes={"team": "blue"})))
    identity = h.identity(user_id)
    _require(await read(identity.issuer, identity.subject) is None, f"{name} of an unknown identity")
    await h.call(InsertIdentity(identity))
    found = await read(identity.issuer, identity.subject)
    _require(found is not None, f"{name} must find an inserted identity")
    got_identity, got_user = found
    stored = await h.call(GetUser(user_id))
    _require(got_identity.key == identity.key and got_identity.user_id == user_id, f"{name}: the identity")
    _require(got_user == stored, f"{name} must return the user exactly as get_user does")
    await h.call(DeleteUser(user_id))
    _require(await read(identity.issuer, identity.subject) is None, f"{name} after delete_user")


async def check_rollback(h: Harness) -> None:
    """A transaction that raises leaves nothing half-written."""
    user = h.new_user()
    user_id = await h.call(InsertUser(user))
    linked = h.identity(user_id)
    await h.call(InsertIdentity(linked))
    ghost = h.new_user()
    ghost_identity = h.identity("placeholder")

    def body() -> Body[None]:
        ghost_id = yield from call(InsertUser(ghost))
        yield from call(InsertIdentity(dataclasses.replace(ghost_identity, user_id=ghost_id)))
        yield from call(UpdateUser(user_id, {"display_name": "changed", "roles": frozenset({"admin"})}))
        yield from call(DeleteUser(user_id))

    await h.run_and_fail(body())
    key = email_key(ghost.email)
    assert key is not None
    _require(list(await h.call(FindUsersByEmail(key))) == [], "rollback must undo insert_user")
    _require(
        await h.call(FindIdentity(ghost_identity.issuer, ghost_identity.subject)) is None,
        "rollback must undo insert_identity",
    )
    _check_user(
        await h.call(GetUser(user_id)), user, user_id, "rollback must undo update_user and delete_user"
    )
    _require(
        await h.call(FindIdentity(linked.issuer, linked.subject)) is not None,
        "rollback must undo delete_user's removal of identities",
    )


async def check_no_lost_updates(h: Harness) -> None:
    """Concurrent read-modify-write transactions on one user lose no update (get_user locks the row)."""
    user_id = await h.call(InsertUser(h.new_user(attributes={"counter": 0})))

    def body() -> Body[None]:
        user = yield from call(GetUser(user_id))
        assert user is not None
        yield from call(UpdateUser(user_id, {"attributes": {"counter": user.attributes["counter"] + 1}}))

    def job() -> None:
        for _ in range(50):
            try:
                with h.store.transaction() as tx:
                    drive(body(), tx)
                return
            except StorageConflict:
                continue
        raise ConformanceError("a transaction kept conflicting")

    async def ajob() -> None:
        for _ in range(50):
            try:
                async with h.store.atransaction() as tx:
                    await adrive(body(), tx)
                return
            except StorageConflict:
                continue
        raise ConformanceError("a transaction kept conflicting")

    await h.concurrently(CONCURRENCY, job, ajob)
    found = _found(await h.call(GetUser(user_id)), "get_user after concurrent increments")
    _require(
        found.attributes["counter"] == CONCURRENCY,
        f"{CONCURRENCY} concurrent increments must all count (got {found.attributes['counter']}): "
        "get_user must lock the row (SELECT ... FOR UPDATE) or transactions must be serialised",
    )


async def check_concurrent_first_login(h: Harness) -> None:
    """Simultaneous first logins of one new identity produce exactly one user and one identity."""
    issuer, subject = "https://" + h.unique("race") + ".test", h.unique("sub")
    email = h.unique("race") + "@example.test"
    token = h.token(issuer, subject, email)
    provisioner = Provisioner(h.store, DefaultMapping(), audit=lambda event: None)
    results = await h.concurrently(
        CONCURRENCY, lambda: provisioner.login(token), lambda: provisioner.alogin(token)
    )
    ids = {r.user.id for r in results}
    _require(len(ids) == 1, f"concurrent first logins must end on one user, got {len(ids)}")
    _require(sum(r.created for r in results) == 1, "exactly one concurrent first login may create the user")
    (user_id,) = ids
    key = email_key(email)
    assert key is not None
    users = await h.call(FindUsersByEmail(key))
    _require([u.id for u in users] == [user_id], f"exactly one user must exist, found {len(users)}")
    identities = await h.call(IdentitiesOf(user_id))
    _require([i.key for i in identities] == [(issuer, subject)], "exactly one identity must exist")


#: Every check, in a sensible order.
CHECKS: tuple[Check, ...] = (
    check_absent_reads,
    check_user_round_trip,
    check_update_user,
    check_identity_round_trip,
    check_identity_key_is_exact,
    check_duplicate_identity,
    check_find_users_by_email,
    check_delete_user,
    check_find_login,
    check_rollback,
    check_no_lost_updates,
    check_concurrent_first_login,
)


def check_id(check: Check) -> str:
    """A readable test id for a check (for ``pytest.mark.parametrize(ids=...)``)."""
    return getattr(check, "__name__", "check").removeprefix("check_")


def modes_of(store: Any) -> tuple[Mode, ...]:
    """The protocols ``store`` offers: ``sync`` (``transaction``), ``async`` (``atransaction``)."""
    modes: list[Mode] = []
    if callable(getattr(store, "transaction", None)):
        modes.append("sync")
    if is_async_store(store):
        modes.append("async")
    if not modes:
        raise ConformanceError("a store must offer transaction() or atransaction()")
    return tuple(modes)


def run_check(check: Check, store: Any, *, modes: Sequence[Mode] | None = None) -> None:
    """Run one check against ``store`` in each of ``modes`` (default: every protocol it offers)."""
    for mode in modes or modes_of(store):
        asyncio.run(check(Harness(store, mode)))


def run_all(store: Any, *, modes: Sequence[Mode] | None = None) -> None:
    """Run every check against ``store``."""
    for check in CHECKS:
        run_check(check, store, modes=modes)


class StoreConformance:
    """Base class: subclass it in a ``Test...`` class and provide a ``store`` fixture.

    ``modes`` restricts which protocols are checked (default: every one the store offers).
    """

    modes: tuple[Mode, ...] | None = None

    @pytest.fixture
    def store(self) -> Any:
        """Your store; override this fixture."""
        raise NotImplementedError("provide a 'store' fixture returning your store")

    @pytest.mark.parametrize("check", CHECKS, ids=check_id)
    def test_storage_conformance(self, store: Any, check: Check) -> None:
        """One check of the protocol, in every mode."""
        run_check(check, store, modes=self.modes)
