"""The in-memory store, for tests and demos.

Owns: :class:`MemoryStore`, a complete implementation of both the sync and the
native async storage protocols over dicts. Transactions run one at a time (a
process-wide lock, like SQLite's ``BEGIN IMMEDIATE``) and keep an undo log, so
a transaction that raises leaves nothing behind.

Must not: decide provisioning policy; it stores what it is told.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

from ..errors import DuplicateIdentity
from ._records import USER_FIELDS, NewUser, User, UserIdentity, email_key
from ._session_protocol import LocalCredential

__all__ = ["MemoryStore"]


class _MemoryTransaction:
    """The operations of one transaction; every change pushes its inverse on the undo log."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._undo: list[Callable[[], None]] = []

    # reads

    def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        return self._store._identities.get((issuer, subject))

    def get_user(self, user_id: str) -> User | None:
        return self._store._users.get(user_id)

    def find_users_by_email(self, email_key: str) -> Sequence[User]:
        ids = sorted(self._store._by_email.get(email_key, ()))
        return [self._store._users[i] for i in ids]

    def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        keys = sorted(self._store._by_user.get(user_id, ()))
        return [self._store._identities[k] for k in keys]

    # writes

    def insert_user(self, user: NewUser) -> str:
        user_id = self._store._next_id()
        self._put_user(user.with_id(user_id), None)
        return user_id

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        unknown = set(changes) - USER_FIELDS
        if unknown:
            raise ValueError(f"not user fields: {sorted(unknown)}")
        old = self._store._users.get(user_id)
        if old is None:
            raise LookupError("no such user")
        self._put_user(old.changed(changes), old)

    def insert_identity(self, identity: UserIdentity) -> None:
        store = self._store
        if identity.key in store._identities:
            raise DuplicateIdentity("the identity is already linked")
        if identity.user_id not in store._users:
            raise LookupError("no such user")
        store._identities[identity.key] = identity
        store._by_user.setdefault(identity.user_id, set()).add(identity.key)
        self._undo.append(lambda: self._drop_identity(identity))

    def delete_user(self, user_id: str) -> None:
        store = self._store
        user = store._users.get(user_id)
        if user is None:
            return
        for key in list(store._by_user.get(user_id, ())):
            identity = store._identities[key]
            self._drop_identity(identity)
            self._undo.append(functools.partial(self._restore_identity, identity))
        credential = store._credentials.get(user_id)
        if credential is not None:
            store._put_credential(None, credential)
            self._undo.append(functools.partial(store._put_credential, credential, None))
        self._put_user(None, user)

    # bookkeeping

    def _put_user(self, new: User | None, old: User | None) -> None:
        store = self._store
        if old is not None:
            self._index_email(old, remove=True)
            del store._users[old.id]
        if new is not None:
            store._users[new.id] = new
            self._index_email(new, remove=False)
        self._undo.append(lambda: self._swap_back(new, old))

    def _swap_back(self, new: User | None, old: User | None) -> None:
        store = self._store
        if new is not None:
            self._index_email(new, remove=True)
            del store._users[new.id]
        if old is not None:
            store._users[old.id] = old
            self._index_email(old, remove=False)

    def _index_email(self, user: User, *, remove: bool) -> None:
        key = email_key(user.email)
        if key is None:
            return
        ids = self._store._by_email.setdefault(key, set())
        if remove:
            ids.discard(user.id)
            if not ids:
                del self._store._by_email[key]
        else:
            ids.add(user.id)

    def _drop_identity(self, identity: UserIdentity) -> None:
        store = self._store
        del store._identities[identity.key]
        keys = store._by_user[identity.user_id]
        keys.discard(identity.key)
        if not keys:
            del store._by_user[identity.user_id]

    def _restore_identity(self, identity: UserIdentity) -> None:
        self._store._identities[identity.key] = identity
        self._store._by_user.setdefault(identity.user_id, set()).add(identity.key)

    def _rollback(self) -> None:
        while self._undo:
            self._undo.pop()()


class _AsyncMemoryTransaction:
    """The same operations as coroutines (they never suspend)."""

    def __init__(self, tx: _MemoryTransaction) -> None:
        self._tx = tx

    async def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        return self._tx.find_identity(issuer, subject)

    async def get_user(self, user_id: str) -> User | None:
        return self._tx.get_user(user_id)

    async def find_users_by_email(self, email_key: str) -> Sequence[User]:
        return self._tx.find_users_by_email(email_key)

    async def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        return self._tx.identities_of(user_id)

    async def insert_user(self, user: NewUser) -> str:
        return self._tx.insert_user(user)

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        self._tx.update_user(user_id, changes)

    async def insert_identity(self, identity: UserIdentity) -> None:
        self._tx.insert_identity(identity)

    async def delete_user(self, user_id: str) -> None:
        self._tx.delete_user(user_id)


class MemoryStore:
    """Users and identities in dicts: for tests, demos and prototypes.

    Thread-safe and usable from asyncio (``atransaction``): one transaction at
    a time. Ids are ``"1"``, ``"2"`` ... in insertion order. Nothing persists.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._users: dict[str, User] = {}
        self._identities: dict[tuple[str, str], UserIdentity] = {}
        self._by_user: dict[str, set[tuple[str, str]]] = {}
        self._by_email: dict[str, set[str]] = {}
        self._credentials: dict[str, LocalCredential] = {}
        self._by_login: dict[str, str] = {}
        self._ids = itertools.count(1)

    def _next_id(self) -> str:
        return str(next(self._ids))

    def find_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """The identity (issuer, subject) and its user; None when unknown.

        Unlocked (two atomic dict reads): an async transaction holds the store's
        lock across awaits, so waiting for it here could stall its own loop.
        """
        identity = self._identities.get((issuer, subject))
        return None if identity is None else (identity, self._users.get(identity.user_id))

    def read_user(self, user_id: str) -> User | None:
        """The user (one dict read, no lock)."""
        return self._users.get(user_id)

    async def afind_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """The async twin of :meth:`find_login` (a dict read: it never waits)."""
        return self.find_login(issuer, subject)

    # -- local accounts (CredentialStore) ------------------------------------------------

    def insert_local_user(
        self, user: NewUser, *, username_key: str, email_key: str | None, password_hash: str
    ) -> str:
        """Insert a local account's user and credential; DuplicateIdentity when a key is taken."""
        with self.transaction() as tx:
            if username_key in self._by_login or (email_key is not None and email_key in self._by_login):
                raise DuplicateIdentity("the username or email is taken")
            user_id = tx.insert_user(user)
            self._put_credential(
                LocalCredential(user_id, username_key, email_key, password_hash, user.created_at), None
            )
            return user_id

    def find_credential(self, login_key: str) -> tuple[LocalCredential, User | None] | None:
        """The credential signing in with ``login_key`` (username or email key), and its user."""
        with self._lock:
            user_id = self._by_login.get(login_key)
            if user_id is None:
                return None
            return self._credentials[user_id], self._users.get(user_id)

    def set_password_hash(self, user_id: str, password_hash: str, *, now: datetime) -> None:
        """Replace the user's password hash."""
        with self._lock:
            old = self._credentials.get(user_id)
            if old is not None:
                self._credentials[user_id] = dataclasses.replace(
                    old, password_hash=password_hash, updated_at=now
                )

    def _put_credential(self, new: LocalCredential | None, old: LocalCredential | None) -> None:
        if old is not None:
            self._credentials.pop(old.user_id, None)
            for key in (old.username_key, old.email_key):
                if key is not None:
                    self._by_login.pop(key, None)
        if new is not None:
            self._credentials[new.user_id] = new
            for key in (new.username_key, new.email_key):
                if key is not None:
                    self._by_login[key] = new.user_id

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTransaction]:
        """A serialised transaction: committed when the block ends, undone when it raises."""
        with self._lock:
            tx = _MemoryTransaction(self)
            try:
                yield tx
            except BaseException:
                tx._rollback()
                raise

    @asynccontextmanager
    async def atransaction(self) -> AsyncIterator[_AsyncMemoryTransaction]:
        """The async twin of :meth:`transaction` (tasks of one loop queue without blocking it)."""
        loop = asyncio.get_running_loop()
        with self._lock_guard():
            loop_lock = self._loop_locks.get(loop)
            if loop_lock is None:
                loop_lock = self._loop_locks[loop] = asyncio.Lock()
        async with loop_lock, self._sync_lock_held():
            tx = _MemoryTransaction(self)
            try:
                yield _AsyncMemoryTransaction(tx)
            except BaseException:
                tx._rollback()
                raise

    @asynccontextmanager
    async def _sync_lock_held(self) -> AsyncIterator[None]:
        # Held only while a transaction runs; memory transactions never suspend, so
        # another thread or loop waits microseconds at most.
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    _guard = threading.Lock()

    @contextmanager
    def _lock_guard(self) -> Iterator[None]:
        with MemoryStore._guard:
            yield

    # -- reading outside provisioning (tests, tools) ---------------------------------------

    def users(self) -> list[User]:
        """Every user, oldest first."""
        with self._lock:
            return sorted(self._users.values(), key=lambda u: int(u.id))

    def identities(self) -> list[UserIdentity]:
        """Every identity, by key."""
        with self._lock:
            return [self._identities[k] for k in sorted(self._identities)]
