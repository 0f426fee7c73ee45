"""The session store on Django's ORM: sessions, refresh families and revocations as models.

Owns: :class:`DjangoSessionStore`, the :class:`~federation.storage.SessionStore`
protocol over the ``federation`` app's session tables. Each method is one
transaction (:func:`federation.django._db.atomic`), retried on a conflict
(a deadlock, a serialization failure, SQLite locked), so a caller sees one
atomic step. A rotation locks the token row, then its session row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite runs one writer at a time):
concurrent presentations of one unused refresh token queue, and exactly one
finds it unused. Rows concurrent steps may both create first (generations,
attempts, claims) are created inside a savepoint whose unique violation means
"the other one won".
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from ..errors import StorageConflict, StorageError
from ..storage import (
    AttemptState,
    NewRefreshToken,
    RefreshUse,
    SessionRecord,
    UserSessionState,
    after_failure,
    purge_instant,
    refresh_outcome,
)
from . import _db
from .models import Attempts, Generation, RefreshToken, RevokedToken, Session

__all__ = ["DjangoSessionStore"]

T = TypeVar("T")
_ATTEMPTS = 8
#: A claim_once marker's jti: the prefix and the SHA-256 of the key (fits the 128-character column).
CLAIM_PREFIX = "once:"


def _record(row: Session) -> SessionRecord:
    return SessionRecord(
        session_id=row.session_id,
        user_id=row.user_id,
        issued_at=_aware(row.issued_at),
        expires_at=_aware(row.expires_at),
        refreshed_at=_db.from_db(row.refreshed_at),
        revoked_at=_db.from_db(row.revoked_at),
        generation=int(row.generation),
    )


def _aware(value: datetime) -> datetime:
    converted = _db.from_db(value)
    assert converted is not None  # a NOT NULL column
    return converted


def _attempt(row: Attempts) -> AttemptState:
    return AttemptState(int(row.failures), _db.from_db(row.locked_until), int(row.lockouts))


class DjangoSessionStore:
    """Sessions and revocations in the database ``using`` (``DjangoStore.session_store()``)."""

    def __init__(self, *, using: str = "default") -> None:
        self.using = using

    def __repr__(self) -> str:
        return f"DjangoSessionStore(using={self.using!r})"

    def _atomic(self, step: Callable[[], T]) -> T:
        """Run ``step`` in one transaction; a conflict runs it again (with jitter), up to 8 times."""
        last: StorageConflict | None = None
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))  # noqa: S311 - jitter
            try:
                with _db.atomic(self.using):
                    return step()
            except StorageConflict as exc:
                last = exc
        raise StorageError(
            f"the session store kept conflicting; gave up after {_ATTEMPTS} attempts"
        ) from last

    def _read(self, step: Callable[[], T]) -> T:
        with _db.db_errors(self.using):
            return step()

    def _objects(self, model: Any) -> Any:
        return model.objects.using(self.using)

    def _create_once(self, model: Any, **values: Any) -> bool:
        """Create the row in a savepoint; False when a row with its key exists (a concurrent one)."""
        try:
            with transaction.atomic(using=self.using):
                self._objects(model).create(**values)
        except IntegrityError:
            return False
        return True

    # -- sessions and refresh tokens ------------------------------------------------------

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        """Store a new session and its first refresh token."""

        def step() -> None:
            self._objects(Session).create(
                session_id=session.session_id,
                user_id=session.user_id,
                issued_at=_db.to_db(session.issued_at),
                expires_at=_db.to_db(session.expires_at),
                refreshed_at=_db.to_db(session.refreshed_at),
                revoked_at=_db.to_db(session.revoked_at),
                generation=session.generation,
            )
            if refresh is not None:
                self._insert_refresh(session.session_id, refresh)

        self._atomic(step)

    def _insert_refresh(self, session_id: str, refresh: NewRefreshToken) -> None:
        self._objects(RefreshToken).create(
            token_hash=refresh.token_hash,
            session_id=session_id,
            issued_at=_db.to_db(refresh.issued_at),
            expires_at=_db.to_db(refresh.expires_at),
        )

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        """Present a refresh token (the protocol's rules), locking its row then its session's."""

        def step() -> RefreshUse:
            token = self._objects(RefreshToken).select_for_update().filter(token_hash=token_hash).first()
            if token is None:
                return RefreshUse("unknown")
            row = self._objects(Session).select_for_update().filter(session_id=token.session_id).first()
            if row is None:
                return RefreshUse("unknown")
            session = _record(row)
            used_at = _db.from_db(token.used_at)
            outcome = refresh_outcome(session, _aware(token.expires_at), used_at, now=now, grace=grace)
            if outcome in ("revoked", "expired"):
                return RefreshUse(outcome, session)
            if outcome == "reused":
                self._objects(Session).filter(session_id=row.session_id).update(revoked_at=_db.to_db(now))
                return RefreshUse("reused", _replace(session, revoked_at=now))
            if outcome == "rotated":
                self._objects(RefreshToken).filter(token_hash=token_hash).update(used_at=_db.to_db(now))
            self._insert_refresh(row.session_id, successor)
            ends = max(session.expires_at, successor.expires_at)
            self._objects(Session).filter(session_id=row.session_id).update(
                refreshed_at=_db.to_db(now), expires_at=_db.to_db(ends)
            )
            return RefreshUse(outcome, _replace(session, refreshed_at=now, expires_at=ends))

        return self._atomic(step)

    def find_refresh(self, token_hash: str) -> SessionRecord | None:
        """The session of a refresh token, or None."""
        ids = self._objects(RefreshToken).filter(token_hash=token_hash).values("session_id")
        row = self._read(lambda: self._objects(Session).filter(session_id__in=ids).first())
        return None if row is None else _record(row)

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        row = self._read(lambda: self._objects(Session).filter(session_id=session_id).first())
        return None if row is None else _record(row)

    def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        """Revoke a session; the first ``revoked_at`` stays."""

        def step() -> SessionRecord | None:
            rows = self._objects(Session).filter(session_id=session_id)
            rows.filter(revoked_at__isnull=True).update(revoked_at=_db.to_db(now))
            row = rows.first()
            return None if row is None else _record(row)

        return self._atomic(step)

    # -- revocations and generations --------------------------------------------------------

    def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse an access token until it expires (idempotent; a later expiry wins)."""
        until = _db.to_db(expires_at)

        def step() -> None:
            if not self._create_once(RevokedToken, jti=jti, user_id=user_id, expires_at=until):
                self._objects(RevokedToken).filter(jti=jti, expires_at__lt=until).update(expires_at=until)

        self._atomic(step)

    def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed: one insert a second claim collides with.

        Kept in the revoked-token table under the user id ``""`` (no user has
        it), so ``purge`` forgets it once it expires.
        """
        marker = CLAIM_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        until = _db.to_db(expires_at)
        return self._atomic(lambda: self._create_once(RevokedToken, jti=marker, user_id="", expires_at=until))

    def bump_generation(self, user_id: str) -> int:
        """Increment the user's generation: the row created when missing, then locked by the update."""

        def step() -> int:
            self._create_once(Generation, user_id=user_id, generation=0)
            rows = self._objects(Generation).filter(user_id=user_id)
            rows.update(generation=F("generation") + 1)
            return int(rows.values_list("generation", flat=True).get())

        return self._atomic(step)

    def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        """The user's generation and live revocations."""
        at = _db.to_db(now)

        def step() -> UserSessionState:
            generation = (
                self._objects(Generation).filter(user_id=user_id).values_list("generation", flat=True).first()
            )
            sessions = self._objects(Session).filter(
                user_id=user_id, revoked_at__isnull=False, expires_at__gt=at
            )
            jtis = self._objects(RevokedToken).filter(user_id=user_id, expires_at__gt=at)
            return UserSessionState(
                int(generation or 0),
                frozenset(sessions.values_list("session_id", flat=True)),
                frozenset(jtis.values_list("jti", flat=True)),
            )

        return self._read(step)

    def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        """The user's live sessions, oldest first."""
        rows = self._objects(Session).filter(
            user_id=user_id, revoked_at__isnull=True, expires_at__gt=_db.to_db(now)
        )
        return self._read(lambda: [_record(row) for row in rows.order_by("issued_at", "session_id")])

    # -- attempts -------------------------------------------------------------------------

    def record_failure(self, key: str, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
        """Count a failed attempt; lock when the count reaches ``max_attempts``."""

        def step() -> AttemptState:
            # Make sure the row exists (a racing first failure just finds it), then lock it:
            # concurrent failures under one key queue on the row lock and each counts.
            self._create_once(Attempts, key=key, failures=0, locked_until=None, lockouts=0)
            row = self._objects(Attempts).select_for_update().get(key=key)
            state = after_failure(_attempt(row), now=now, max_attempts=max_attempts, lockout=lockout)
            self._objects(Attempts).filter(key=key).update(
                failures=state.failures, locked_until=_db.to_db(state.locked_until), lockouts=state.lockouts
            )
            return state

        return self._atomic(step)

    def attempts(self, key: str) -> AttemptState:
        """The attempt state under ``key``."""
        row = self._read(lambda: self._objects(Attempts).filter(key=key).first())
        return AttemptState() if row is None else _attempt(row)

    def clear_attempts(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._atomic(lambda: self._objects(Attempts).filter(key=key).delete())

    def purge(self, *, now: datetime) -> int:
        """Delete sessions, refresh tokens and revoked jtis that ended before ``now``."""
        at = _db.to_db(purge_instant(now))

        def step() -> int:
            ended = self._objects(Session).filter(expires_at__lte=at).values("session_id")
            count = (
                self._objects(RefreshToken)
                .filter(Q(expires_at__lte=at) | Q(session_id__in=ended))
                .delete()[0]
            )
            count += self._objects(Session).filter(expires_at__lte=at).delete()[0]
            count += self._objects(RevokedToken).filter(expires_at__lte=at).delete()[0]
            return int(count)

        return self._atomic(step)


def _replace(session: SessionRecord, **changes: Any) -> SessionRecord:
    return dataclasses.replace(session, **changes)
