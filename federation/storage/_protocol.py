"""The storage protocol: what provisioning needs from a user store.

Owns: :class:`Store` / :class:`StoreTransaction` (sync) and
:class:`AsyncStore` / :class:`AsyncStoreTransaction` (native async), the
contract each method must keep, and :func:`is_async_store`.

A store is eight small methods inside a transaction. Provisioning opens one
transaction per login, reads, decides, writes, and commits; when the store
signals a conflict (:class:`~federation.errors.StorageConflict`, its subclass
:class:`~federation.errors.DuplicateIdentity`) the whole transaction is rolled
back and retried. That is what makes "find or create the user for (issuer,
subject)" atomic: a unique index on (issuer, subject) plus retry, or a store
that serialises its transactions.

Must not: hold provisioning rules or import a database driver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from ._records import NewUser, User, UserIdentity

__all__ = ["AsyncStore", "AsyncStoreTransaction", "Store", "StoreTransaction", "is_async_store"]


class StoreTransaction(Protocol):
    """One atomic unit of work. Every write becomes visible at commit, or never.

    Rows returned by :meth:`get_user` and :meth:`find_users_by_email` must stay
    locked against other writers until the transaction ends (``SELECT ... FOR
    UPDATE``), or the store must run its transactions one at a time (SQLite's
    ``BEGIN IMMEDIATE``, a lock). Either way a concurrent login cannot lose an
    update.
    """

    def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        """The identity with exactly this key (no case folding), or None."""
        ...

    def get_user(self, user_id: str) -> User | None:
        """The user with this id (locked for update), or None."""
        ...

    def find_users_by_email(self, email_key: str) -> Sequence[User]:
        """Users whose email's canonical form equals ``email_key`` (locked for update).

        ``email_key`` is :func:`~federation.storage.email_key` of an address:
        compare it with ``lower(email)`` of plain-ASCII stored emails. Only
        called when ``provisioning.link_by_email`` is on.
        """
        ...

    def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        """Every identity linked to this user."""
        ...

    def insert_user(self, user: NewUser) -> str:
        """Insert a user; return its new id as a string."""
        ...

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        """Set the named fields (a subset of :data:`~federation.storage.USER_FIELDS`).

        ``roles`` is the complete new role set; ``attributes`` the complete new
        attribute mapping (it replaces the old one).
        """
        ...

    def insert_identity(self, identity: UserIdentity) -> None:
        """Link an identity. Raise :class:`~federation.errors.DuplicateIdentity`
        when (issuer, subject) exists (after a concurrent insert committed)."""
        ...

    def delete_user(self, user_id: str) -> None:
        """Delete the user and every identity linked to it."""
        ...


class Store(Protocol):
    """A sync user store: provisioning calls :meth:`transaction` once per login."""

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """Begin a transaction; commit when the block ends, roll back when it raises.

        Raise :class:`~federation.errors.StorageConflict` (from inside the
        block or at commit) for a conflict worth retrying.
        """
        ...


class AsyncStoreTransaction(Protocol):
    """The async twin of :class:`StoreTransaction`: the same methods, awaited."""

    async def find_identity(self, issuer: str, subject: str) -> UserIdentity | None: ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_users_by_email(self, email_key: str) -> Sequence[User]: ...

    async def identities_of(self, user_id: str) -> Sequence[UserIdentity]: ...

    async def insert_user(self, user: NewUser) -> str: ...

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None: ...

    async def insert_identity(self, identity: UserIdentity) -> None: ...

    async def delete_user(self, user_id: str) -> None: ...


@runtime_checkable
class AsyncStore(Protocol):
    """A natively async store (an async ORM session, asyncpg ...).

    Optional: a sync :class:`Store` serves async callers too (``alogin`` runs
    its whole transaction in a worker thread). Implement this only when your
    data layer is async already.
    """

    def atransaction(self) -> AbstractAsyncContextManager[AsyncStoreTransaction]:
        """Begin a transaction (``async with store.atransaction() as tx``)."""
        ...


class LoginReads(Protocol):
    """Optional on a :class:`Store`: one unlocked read of an identity and its user.

    Provisioning calls it before the transaction, maps on what it returns,
    then re-reads the user under the transaction's lock and compares (an
    identity never moves to another user: it goes only with its user). A
    store without it is read in a short transaction instead.
    """

    def find_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """The identity (issuer, subject) and its user (None if it vanished); None when unknown."""
        ...


class AsyncLoginReads(Protocol):
    """Optional on an :class:`AsyncStore`: the async twin of :class:`LoginReads`."""

    async def afind_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """The identity (issuer, subject) and its user (None if it vanished); None when unknown."""
        ...


def is_async_store(store: object) -> bool:
    """True when ``store`` offers :meth:`AsyncStore.atransaction`."""
    return callable(getattr(store, "atransaction", None))
