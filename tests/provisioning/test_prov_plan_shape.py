"""The login plan's shape: mapping rules run before the store transaction opens (never
while it holds locks), a conflict retry re-decides without re-running them unless the
user it reads changed, and store calls are typed operations that strict mypy checks."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _prov_helpers import StubMapping, roles_from_groups

import federation
from federation.errors import StorageConflict
from federation.mapping import ExistingUser, MappingResult
from federation.provisioning import Provisioner
from federation.storage import MemoryStore, is_async_store
from federation.testing import MockIdP

TABLE = {"staff": "member", "admins": "admin"}


class WatchedStore:
    """A store that records whether a transaction is open, can fail updates with a conflict,
    and can run ``after_read`` (another process's change) right after the unlocked read."""

    def __init__(self, inner: Any, *, reads: bool = True) -> None:
        self.inner = inner
        self.open = 0
        self.transactions = 0
        self.conflicts_left = 0
        self.after_read: Any = None
        if reads:
            self.find_login = self._find_login

    def _find_login(self, issuer: str, subject: str) -> Any:
        found = self.inner.find_login(issuer, subject)
        if self.after_read is not None:
            self.after_read()
        return found

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            self.open += 1
            self.transactions += 1
            try:
                yield _Tx(tx, self)
            finally:
                self.open -= 1


class WatchedAsyncStore(WatchedStore):
    """The same over a native async store (``atransaction``)."""

    def __init__(self, inner: Any, *, reads: bool = True) -> None:
        super().__init__(inner, reads=reads)
        if reads:
            self.afind_login = self._afind_login

    async def _afind_login(self, issuer: str, subject: str) -> Any:
        return self._find_login(issuer, subject)

    @contextlib.asynccontextmanager
    async def atransaction(self) -> AsyncIterator[Any]:
        async with self.inner.atransaction() as tx:
            self.open += 1
            self.transactions += 1
            try:
                yield _ATx(tx, self)
            finally:
                self.open -= 1


class _Tx:
    def __init__(self, tx: Any, store: WatchedStore) -> None:
        self._tx, self._store = tx, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def update_user(self, user_id: str, changes: Any) -> None:
        if self._store.conflicts_left:
            self._store.conflicts_left -= 1
            raise StorageConflict("injected")
        self._tx.update_user(user_id, changes)


class _ATx(_Tx):
    async def update_user(self, user_id: str, changes: Any) -> None:  # type: ignore[override]
        if self._store.conflicts_left:
            self._store.conflicts_left -= 1
            raise StorageConflict("injected")
        await self._tx.update_user(user_id, changes)


def _watching_mapping(store: WatchedStore) -> StubMapping:
    """Role sync from groups that records, per call, whether a transaction was open."""
    inner = roles_from_groups(TABLE)

    def fn(token: Any, existing: ExistingUser | None) -> MappingResult:
        opened.append(store.open)
        return inner.fn(token, existing)

    opened: list[int] = []
    mapping = StubMapping(fn)
    mapping.opened = opened  # type: ignore[attr-defined]
    return mapping


def _watched(inner: Any, *, reads: bool = True) -> WatchedStore:
    kind = WatchedAsyncStore if is_async_store(inner) else WatchedStore
    return kind(inner, reads=reads)


class Logins:
    """Logins of ``idp``'s tokens through a provisioner on ``store``, sync or async."""

    def __init__(
        self, bridge: Any, idp: MockIdP, store: WatchedStore, mapping: StubMapping, mode: str
    ) -> None:
        self.bridge, self.idp, self.mode = bridge, idp, mode
        self.provisioner = Provisioner(store, mapping)

    def __call__(self, groups: list[str], sub: str = "u") -> Any:
        verified = self.bridge.verify(self.idp.mint(sub=sub, groups=groups))
        if self.mode == "sync":
            return self.provisioner.login(verified)
        return asyncio.run(self.provisioner.alogin(verified))


@pytest.fixture
def watched(store_kind: str, make_store: Any, idp: MockIdP, login_bridge: Any) -> Any:
    """``watched(mode, reads=True)``: a watched store of each kind, its watching mapping, and logins."""

    def make(mode: str, *, reads: bool = True) -> tuple[WatchedStore, StubMapping, Logins]:
        store = _watched(make_store(store_kind), reads=reads)
        mapping = _watching_mapping(store)
        return store, mapping, Logins(login_bridge(), idp, store, mapping, mode)

    return make


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mapping_never_runs_inside_a_transaction(mode: str, watched: Any) -> None:
    _, mapping, login = watched(mode)
    login(["staff"])  # a new user
    login(["admins"])  # an existing one
    login(["staff"], sub="v")
    assert len(mapping.opened) == 3  # type: ignore[attr-defined]
    assert mapping.opened == [0, 0, 0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_existing_users_login_maps_once_in_one_transaction(mode: str, watched: Any) -> None:
    store, mapping, login = watched(mode)
    login(["staff"])
    before_calls, before_tx = len(mapping.calls), store.transactions
    for groups in (["staff"], ["staff", "admins"], ["admins"]):
        result = login(groups)
    assert result.user.roles == {"admin"} and result.revoked == {"member"}
    # steady state: each login applies the rules once and opens one transaction
    assert len(mapping.calls) - before_calls == 3
    assert store.transactions - before_tx == 3


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_conflict_retry_re_decides_without_re_running_the_rules(mode: str, watched: Any) -> None:
    store, mapping, login = watched(mode)
    first = login(["staff"])
    calls, transactions = len(mapping.calls), store.transactions
    store.conflicts_left = 2
    result = login(["admins"])
    assert result.user.id == first.user.id and result.user.roles == {"admin"}
    assert store.transactions - transactions == 3  # two conflicts, then the commit
    assert len(mapping.calls) - calls == 1  # the rules ran once, before the first transaction


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_user_changed_elsewhere_is_mapped_again_for_what_was_read(mode: str, watched: Any) -> None:
    store, mapping, login = watched(mode)
    inner = store.inner
    first = login(["staff"])

    def another_process_grants_a_role() -> None:  # between the unlocked read and the transaction
        store.after_read = None
        with inner.transaction() as tx:
            tx.update_user(first.user.id, {"roles": frozenset({"member", "auditor"})})

    store.after_read = another_process_grants_a_role
    calls, transactions = len(mapping.calls), store.transactions
    result = login(["staff"])
    # the mapping saw the user before the change: mapped again for the user read under the lock
    assert len(mapping.calls) - calls == 2
    existing = mapping.calls[-1][1]
    assert existing is not None and existing.roles == {"member", "auditor"}
    assert result.revoked == {"auditor"} and result.user.roles == {"member"}
    # Mapped first without a transaction; again inside the one whose lock holds the user
    # read, so that this second mapping cannot go stale in its turn.
    assert mapping.opened[-2:] == [0, 1]  # type: ignore[attr-defined]
    assert store.transactions - transactions == 1  # no rollback and second round


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_user_deleted_after_the_read_is_created_anew(mode: str, watched: Any) -> None:
    store, mapping, login = watched(mode)
    inner = store.inner
    first = login(["staff"])

    def another_process_deletes_the_user() -> None:
        store.after_read = None
        with inner.transaction() as tx:
            tx.delete_user(first.user.id)

    store.after_read = another_process_deletes_the_user
    result = login(["admins"])
    assert result.created and result.user.id != first.user.id and result.user.roles == {"admin"}
    assert mapping.calls[-1][1] is None  # mapped again, as a new user


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_store_without_unlocked_reads_is_read_in_a_short_transaction(mode: str, watched: Any) -> None:
    store, mapping, login = watched(mode, reads=False)
    login(["staff"])
    before = store.transactions
    result = login(["admins"])
    assert result.user.roles == {"admin"} and result.revoked == {"member"}
    assert store.transactions - before == 2  # the read, then the login
    assert mapping.opened == [0, 0]  # type: ignore[attr-defined]


def test_a_user_read_differing_only_in_last_login_keeps_the_mapping(
    store_kind: str, make_store: Any, idp: MockIdP, login_bridge: Any
) -> None:
    """Another process's login of the same user moves ``last_login_at`` only: no re-mapping."""
    inner = make_store(store_kind)
    store = _watched(inner)
    mapping = _watching_mapping(store)
    bridge = login_bridge()
    ours = Logins(bridge, idp, store, mapping, "sync")
    theirs = Logins(bridge, idp, _watched(inner), roles_from_groups(TABLE), "sync")
    mine = ours(["staff"]).user
    moved: list[Any] = []
    store.after_read = lambda: (setattr(store, "after_read", None), moved.append(theirs(["staff"]).user))
    calls, transactions = len(mapping.calls), store.transactions
    ours(["staff"])
    assert moved[0].last_login_at != mine.last_login_at  # the stored user moved on after our read
    assert len(mapping.calls) - calls == 1 and store.transactions - transactions == 1


def test_a_mapping_result_with_only_roles_still_grants_and_revokes(idp: MockIdP, login_bridge: Any) -> None:
    """A Mapper that fills ``roles`` but not ``granted``/``revoked`` gets them derived."""
    mapping = StubMapping(lambda token, existing: MappingResult(roles=frozenset(token.groups)))
    login = Logins(login_bridge(), idp, WatchedStore(MemoryStore()), mapping, "sync")
    login(["a"])
    result = login(["b"])
    assert result.user.roles == {"b"} and result.granted == {"b"} and result.revoked == {"a"}


def test_the_planner_internals_still_import_with_a_deprecation_warning() -> None:
    import federation.provisioning as provisioning

    for name in ("StoreCall", "drive", "adrive", "login_plan", "plan_login", "resolve"):
        with pytest.warns(DeprecationWarning, match=name):
            assert callable(getattr(provisioning, name))
    with pytest.raises(AttributeError):
        provisioning.no_such_name  # noqa: B018


def test_a_string_named_store_call_still_runs_with_a_warning() -> None:
    from federation.storage import FindIdentity, drive

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        store_call = federation.provisioning.StoreCall  # type: ignore[attr-defined]

    def body() -> Any:
        found = yield FindIdentity("https://idp.test", "nobody")
        with pytest.warns(DeprecationWarning, match="typed operations"):
            legacy = store_call("find_identity", ("https://idp.test", "nobody"))
        again = yield legacy
        return found, again

    with MemoryStore().transaction() as tx:
        assert drive(body(), tx) == (None, None)


def test_renaming_a_store_method_fails_type_checking(tmp_path: Path) -> None:
    """Rename ``find_identity`` in the storage protocol of a copy of the package: strict mypy
    must then fail on the typed operations that call it, the sync and the async one."""
    pytest.importorskip("mypy")
    root = Path(federation.__file__).parent
    copy = tmp_path / "federation"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__", "providers"))
    protocol = copy / "storage" / "_protocol.py"
    text = protocol.read_text()
    assert text.count("def find_identity(") == 2  # the sync and the async transaction
    protocol.write_text(text.replace("def find_identity(", "def lookup_identity("))
    config = Path(__file__).resolve().parents[2] / "pyproject.toml"
    command = [
        sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental",
        "--follow-imports", "silent", str(copy / "storage" / "_ops.py"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    for protocol_name in ("StoreTransaction", "AsyncStoreTransaction"):
        assert f'"{protocol_name}" has no attribute "find_identity"' in done.stdout, done.stdout
    assert all("_ops.py" in line for line in done.stdout.splitlines() if ": error:" in line)


def test_an_async_only_store_names_the_async_methods_to_a_sync_caller(
    idp: MockIdP, login_bridge: Any
) -> None:
    class AsyncOnly:
        def __init__(self) -> None:
            self._inner = MemoryStore()

        def atransaction(self) -> Any:
            return self._inner.atransaction()

    mapping = roles_from_groups(TABLE)
    provisioner = Provisioner(AsyncOnly(), mapping)
    verified = login_bridge().verify(idp.mint(sub="u", groups=["staff"]))
    with pytest.raises(TypeError, match="async only"):
        provisioner.login(verified)
    assert asyncio.run(provisioner.alogin(verified)).user.roles == {"member"}
