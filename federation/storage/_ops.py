"""Typed store operations: what a sans-I/O plan asks of a store transaction.

Owns: one frozen dataclass per method of the storage protocol
(:class:`~federation.storage.StoreTransaction` and its async twin), each
calling its method with ``run`` (sync) or ``arun`` (async), so strict mypy
checks every call against the protocol: renaming a store method fails type
checking here. :func:`call` yields one operation and hands back its typed
result; :func:`drive` and :func:`adrive` run a plan (a generator of
operations, such as provisioning's login plan or a conformance check's
body) on a transaction.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ._protocol import AsyncStoreTransaction, StoreTransaction
from ._records import NewUser, User, UserIdentity

__all__ = [
    "DeleteUser",
    "FindIdentity",
    "FindUsersByEmail",
    "GetUser",
    "IdentitiesOf",
    "InsertIdentity",
    "InsertUser",
    "Plan",
    "StoreCall",
    "StoreOp",
    "UpdateUser",
    "adrive",
    "call",
    "drive",
]

R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")
T = TypeVar("T")


class StoreOp(Protocol[R_co]):
    """One store operation: run on a sync or an async transaction, giving ``R_co``."""

    def run(self, tx: StoreTransaction) -> R_co:
        """Make the call on a sync transaction."""
        ...

    def arun(self, tx: AsyncStoreTransaction) -> Awaitable[R_co]:
        """Make the call on an async transaction."""
        ...


#: A plan: yields store operations, receives each result, returns ``T``.
Plan = Generator[StoreOp[Any], Any, T]


def call(op: StoreOp[R]) -> Generator[StoreOp[Any], Any, R]:
    """Yield ``op`` to the driver and return its result, typed: ``x = yield from call(GetUser(id))``."""
    result: R = yield op
    return result


@dataclass(frozen=True, slots=True)
class FindIdentity:
    """``find_identity(issuer, subject)``."""

    issuer: str
    subject: str

    def run(self, tx: StoreTransaction) -> UserIdentity | None:
        """Make the call on a sync transaction."""
        return tx.find_identity(self.issuer, self.subject)

    async def arun(self, tx: AsyncStoreTransaction) -> UserIdentity | None:
        """Make the call on an async transaction."""
        return await tx.find_identity(self.issuer, self.subject)


@dataclass(frozen=True, slots=True)
class GetUser:
    """``get_user(user_id)``."""

    user_id: str

    def run(self, tx: StoreTransaction) -> User | None:
        """Make the call on a sync transaction."""
        return tx.get_user(self.user_id)

    async def arun(self, tx: AsyncStoreTransaction) -> User | None:
        """Make the call on an async transaction."""
        return await tx.get_user(self.user_id)


@dataclass(frozen=True, slots=True)
class FindUsersByEmail:
    """``find_users_by_email(email_key)``."""

    email_key: str

    def run(self, tx: StoreTransaction) -> Sequence[User]:
        """Make the call on a sync transaction."""
        return tx.find_users_by_email(self.email_key)

    async def arun(self, tx: AsyncStoreTransaction) -> Sequence[User]:
        """Make the call on an async transaction."""
        return await tx.find_users_by_email(self.email_key)


@dataclass(frozen=True, slots=True)
class IdentitiesOf:
    """``identities_of(user_id)``."""

    user_id: str

    def run(self, tx: StoreTransaction) -> Sequence[UserIdentity]:
        """Make the call on a sync transaction."""
        return tx.identities_of(self.user_id)

    async def arun(self, tx: AsyncStoreTransaction) -> Sequence[UserIdentity]:
        """Make the call on an async transaction."""
        return await tx.identities_of(self.user_id)


@dataclass(frozen=True, slots=True)
class InsertUser:
    """``insert_user(user)``: gives the new user's id."""

    user: NewUser

    def run(self, tx: StoreTransaction) -> str:
        """Make the call on a sync transaction."""
        return tx.insert_user(self.user)

    async def arun(self, tx: AsyncStoreTransaction) -> str:
        """Make the call on an async transaction."""
        return await tx.insert_user(self.user)


@dataclass(frozen=True, slots=True)
class UpdateUser:
    """``update_user(user_id, changes)``."""

    user_id: str
    changes: Mapping[str, Any]

    def run(self, tx: StoreTransaction) -> None:
        """Make the call on a sync transaction."""
        tx.update_user(self.user_id, self.changes)

    async def arun(self, tx: AsyncStoreTransaction) -> None:
        """Make the call on an async transaction."""
        await tx.update_user(self.user_id, self.changes)


@dataclass(frozen=True, slots=True)
class InsertIdentity:
    """``insert_identity(identity)``."""

    identity: UserIdentity

    def run(self, tx: StoreTransaction) -> None:
        """Make the call on a sync transaction."""
        tx.insert_identity(self.identity)

    async def arun(self, tx: AsyncStoreTransaction) -> None:
        """Make the call on an async transaction."""
        await tx.insert_identity(self.identity)


@dataclass(frozen=True, slots=True)
class DeleteUser:
    """``delete_user(user_id)``."""

    user_id: str

    def run(self, tx: StoreTransaction) -> None:
        """Make the call on a sync transaction."""
        tx.delete_user(self.user_id)

    async def arun(self, tx: AsyncStoreTransaction) -> None:
        """Make the call on an async transaction."""
        await tx.delete_user(self.user_id)


@dataclass(frozen=True, slots=True)
class StoreCall:
    """Deprecated: a store call named by a string, which mypy cannot check; use the typed operations."""

    method: str
    args: tuple[Any, ...]

    def __post_init__(self) -> None:
        warnings.warn(
            "StoreCall is deprecated: yield the typed operations of federation.storage "
            "(FindIdentity, GetUser, UpdateUser, ...) instead",
            DeprecationWarning,
            stacklevel=3,
        )

    def run(self, tx: StoreTransaction) -> Any:
        """Make the call on a sync transaction, by name."""
        return getattr(tx, self.method)(*self.args)

    def arun(self, tx: AsyncStoreTransaction) -> Awaitable[Any]:
        """Make the call on an async transaction, by name."""
        result: Awaitable[Any] = getattr(tx, self.method)(*self.args)
        return result


def drive(plan: Plan[T], tx: StoreTransaction) -> T:
    """Run ``plan`` on a sync transaction."""
    try:
        op = next(plan)
        while True:
            op = plan.send(op.run(tx))
    except StopIteration as done:
        result: T = done.value
        return result


async def adrive(plan: Plan[T], tx: AsyncStoreTransaction) -> T:
    """Run ``plan`` on a native async transaction."""
    try:
        op = next(plan)
        while True:
            op = plan.send(await op.arun(tx))
    except StopIteration as done:
        result: T = done.value
        return result


_log = logging.getLogger("federation.storage")
_FINISHING: set[asyncio.Future[Any]] = set()  # transactions whose callers were cancelled


def _retrieved(task: asyncio.Future[Any]) -> None:
    _FINISHING.discard(task)
    failure = None if task.cancelled() else task.exception()
    if failure is not None:  # its caller is gone: the log is the only one left to tell
        _log.warning(
            "a storage step whose caller was cancelled failed as it finished (%s)", type(failure).__name__
        )


async def run_to_the_end(work: Callable[[], Awaitable[T]]) -> T:
    """Await ``work()`` in a task of its own, which the caller's cancellation does not reach.

    A transaction that a request timeout or a client gone interrupts still commits or rolls
    back before its connection goes back to the pool: cancelled mid-statement, aiosqlite
    finished the statement in its thread after the caller stopped waiting, and the
    connection was pooled with SQLite's write lock held, so every writer then waited out
    ``busy_timeout``. The caller is cancelled as asked; the work ends on its own.
    """
    task = asyncio.ensure_future(work())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _FINISHING.add(task)  # referenced until done: a task nobody holds may be collected
            task.add_done_callback(_retrieved)
        raise
