"""How the Django stores talk to the database: one transaction discipline, errors typed, times in UTC.

Owns: :func:`atomic` (a transaction on the store's alias; on SQLite one at a
time per process, since Django's deferred ``BEGIN`` lets two readers
deadlock on their first write; across processes SQLite reports that as
"database is locked", a conflict worth retrying), the mapping of Django's
database errors onto :class:`~federation.errors.StorageConflict` /
:class:`~federation.errors.StorageError` (never echoing SQL parameters), and
the conversion of datetimes between the protocol's aware UTC and what the
database keeps under ``USE_TZ``, and closing the connection after each
operation in a thread Django does not manage (an async caller's worker
thread, an application's pool): Django closes connections at request
boundaries only, and asks code using the ORM elsewhere to close its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from django.conf import settings
from django.core.signals import request_started
from django.db import DatabaseError, IntegrityError, OperationalError, connections, transaction
from django.utils import timezone as django_timezone

from ..errors import StorageConflict, StorageError

__all__ = ["atomic", "db_errors", "from_db", "to_db"]

# SQLSTATEs worth a retry: serialization failure, deadlock.
_RETRY_STATES = frozenset({"40001", "40P01"})
_locks: dict[str, threading.RLock] = {}
_locks_lock = threading.Lock()
_request_thread = threading.local()  # set in threads that have served a Django request


def _mark_request_thread(**kwargs: object) -> None:
    _request_thread.seen = True


request_started.connect(_mark_request_thread, dispatch_uid="federation.django.request_thread")


def _unmanaged_thread() -> bool:
    return threading.current_thread() is not threading.main_thread() and not getattr(
        _request_thread, "seen", False
    )


@contextmanager
def _closing(using: str) -> Iterator[None]:
    """After the outermost operation in an unmanaged thread, close its connection."""
    try:
        yield
    finally:
        connection = connections[using]
        if not connection.in_atomic_block and _unmanaged_thread():
            connection.close()


def _serial_lock(using: str) -> threading.RLock | None:
    if connections[using].vendor != "sqlite":
        return None
    with _locks_lock:
        return _locks.setdefault(using, threading.RLock())


def _sqlstate(exc: DatabaseError) -> str | None:
    cause = exc.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return state if isinstance(state, str) else None


def typed(exc: DatabaseError) -> StorageError:
    """The typed error for a database failure (a conflict when a retry can succeed)."""
    state = _sqlstate(exc)
    if state in _RETRY_STATES:
        return StorageConflict(f"the database reported a conflict ({state}); retry")
    if isinstance(exc, OperationalError) and "locked" in str(exc):
        return StorageConflict("the SQLite database stayed locked; retry")
    if isinstance(exc, IntegrityError):
        return StorageError("the database refused a row (a unique or foreign key)")
    return StorageError(f"the database failed ({type(exc).__name__})")


@contextmanager
def db_errors(using: str) -> Iterator[None]:
    """Django's database errors raised in the block become typed storage errors (one operation
    on ``using``: a read outside any transaction, or a step inside one)."""
    with _closing(using):
        try:
            yield
        except DatabaseError as exc:
            raise typed(exc) from exc


@contextmanager
def atomic(using: str) -> Iterator[None]:
    """One transaction on ``using``: committed when the block ends, rolled back when it raises."""
    lock = _serial_lock(using)
    if lock is not None:
        lock.acquire()
    try:
        with db_errors(using), transaction.atomic(using=using):
            yield
    finally:
        if lock is not None:
            lock.release()


def to_db(value: datetime | None) -> datetime | None:
    """An aware UTC datetime as the database field takes it (naive local time without ``USE_TZ``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware UTC")
    if settings.USE_TZ:
        return value.astimezone(timezone.utc)
    naive: datetime = django_timezone.make_naive(value, django_timezone.get_default_timezone())
    return naive


def from_db(value: datetime | None) -> datetime | None:
    """A datetime read from the database as aware UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = django_timezone.make_aware(value, django_timezone.get_default_timezone())
    return value.astimezone(timezone.utc)
