"""The provisioning shells: transactions, retries and audit around the sans-I/O plans.

Owns: :class:`Provisioner`: for each login (or deprovisioning), open one
transaction on the store, drive the plan, commit; on a
:class:`~federation.errors.StorageConflict` roll back and run the whole plan
again (a concurrent first login won: the retry finds its identity); after
commit, hand the audit events to the sink; on failure, a ``login_failed``
event with the reason code.

Async callers: a store with ``atransaction`` (native async) has the plan
driven with ``await``; any other store serves ``alogin`` by running the whole
sync transaction in a worker thread, one hop per login, so a blocking
database driver never stalls the event loop and the logic exists once.

Mapping runs before the transaction opens, on the identity and user read
without a lock (the store's optional ``find_login``; else a short read
transaction). The plan re-reads the user under the lock and compares; on a
mismatch (:class:`~._plan.MappingStale`, raised before any write) the shell
maps for the user read and runs the plan again in the same transaction, where
that user's row is still locked: the new mapping cannot go stale, so logins of
one user with changing claims all make progress, however many run at once
(rolling back instead let each lose the race again: 24 at once gave up after 8
rounds). Rules run under the lock only then; a conflict retry re-decides
without re-running them.

Must not: decide anything (``_decide``) or know the order of store calls (``_plan``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar, cast

from ..errors import ConnectionLost, FederationError, LoginRefused, StorageConflict, StorageError
from ..spi import VerifiedToken
from ..storage import (
    LOGIN_FAILED,
    AsyncStore,
    AuditEvent,
    AuditSink,
    FindIdentity,
    GetUser,
    Plan,
    Store,
    UpdateUser,
    User,
    UserIdentity,
    adrive,
    call,
    deliver,
    drive,
    is_async_store,
    log_audit,
    run_to_the_end,
)
from ._decide import DeprovisionMode, LoginFacts, make_login_facts
from ._plan import (
    DeprovisionOutcome,
    ExistingView,
    LoginOutcome,
    Mapped,
    Mapper,
    MappingStale,
    deprovision_plan,
    deprovision_user_plan,
    login_plan,
    make_mapped,
    read_login,
    unlocked_login,
)
from ._policy import ProvisioningPolicy
from ._result import DeprovisionResult, LoginResult, make_login_result

__all__ = ["Provisioner"]

T = TypeVar("T")


class Provisioner:
    """Turns verified tokens into local users in ``store``, through ``mapper`` and ``policy``.

    ``audit`` receives every audit event after commit (default: the
    ``federation.audit`` logger); ``clock`` gives Unix time for timestamps;
    ``max_attempts`` bounds the retries of a conflicting transaction.
    Thread-safe and shareable between event loops when the store is.
    """

    def __init__(
        self,
        store: Store | AsyncStore,
        mapper: Mapper,
        policy: ProvisioningPolicy | None = None,
        *,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 8,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.store = store
        self.mapper = mapper
        self.policy = policy or ProvisioningPolicy()
        self.audit: AuditSink = audit or log_audit
        self._clock = clock
        self.max_attempts = max_attempts

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=timezone.utc)

    @staticmethod
    def facts(token: VerifiedToken, *, trust_email: bool = False) -> LoginFacts:
        """What provisioning reads from a verified token."""
        issuer, subject = token.identity_key
        email, verified = token.email, token.email_verified
        return make_login_facts(issuer, subject, token.provider, email, verified, trust_email)

    # -- login ------------------------------------------------------------------------

    def login(self, token: VerifiedToken, *, trust_email: bool = False) -> LoginResult:
        """Provision the user of ``token`` (already verified); see ``Bridge.login``."""
        facts = self.facts(token, trust_email=trust_email)
        try:
            mapped = self._map(token, facts)
            outcome = unlocked_login(facts, mapped, self.policy, self._now())
            if outcome is None:
                outcome = self._locked_login(token, facts, mapped)
        except Exception as exc:
            self.login_failed(exc, facts.issuer, facts.subject)
            raise
        return self._committed(token, outcome)

    async def alogin(self, token: VerifiedToken, *, trust_email: bool = False) -> LoginResult:
        """Async twin of :meth:`login`."""
        if not is_async_store(self.store):
            return await asyncio.to_thread(self.login, token, trust_email=trust_email)
        facts = self.facts(token, trust_email=trust_email)
        try:
            mapped = await self._amap(token, facts)
            outcome = unlocked_login(facts, mapped, self.policy, self._now())
            if outcome is None:
                outcome = await self._arun(self._login_plan(token, facts, mapped))
        except Exception as exc:
            self.login_failed(exc, facts.issuer, facts.subject)
            raise
        return self._committed(token, outcome)

    def _locked_login(self, token: VerifiedToken, facts: LoginFacts, mapped: Mapped) -> LoginOutcome:
        """The login plan in a transaction (see :meth:`_fresh_login`)."""
        return self._run(self._login_plan(token, facts, mapped))

    def _login_plan(
        self, token: VerifiedToken, facts: LoginFacts, mapped: Mapped
    ) -> Callable[[], Plan[LoginOutcome]]:
        """A fresh login plan per transaction attempt."""
        return lambda: self._fresh_login(token, facts, mapped)

    def _fresh_login(self, token: VerifiedToken, facts: LoginFacts, mapped: Mapped) -> Plan[LoginOutcome]:
        """The login plan, mapped again for the user it read under the lock when that user moved
        since the unlocked read; each run of the plan reads the clock when it starts."""
        for _ in range(self.max_attempts):
            try:
                return (yield from login_plan(facts, mapped, self.policy, self._now()))
            except MappingStale as stale:  # nothing written yet; the user's row stays locked
                mapped = self._remap(token, stale.identity, stale.user)
        raise _gave_up(self.max_attempts)

    def _map(self, token: VerifiedToken, facts: LoginFacts) -> Mapped:
        """Read the identity and its user without a lock, and apply the mapping for them."""
        found: tuple[UserIdentity, User | None] | None
        find = getattr(self.store, "find_login", None)
        if find is not None:
            found = find(facts.issuer, facts.subject)
        else:
            if not hasattr(self.store, "transaction"):
                raise TypeError("this store is async only: use the async methods (alogin, adeprovision)")
            with cast(Store, self.store).transaction() as tx:
                found = drive(read_login(facts.issuer, facts.subject), tx)
        return self._remap(token, *(found or (None, None)))

    async def _amap(self, token: VerifiedToken, facts: LoginFacts) -> Mapped:
        """Async twin of :meth:`_map`."""
        found: tuple[UserIdentity, User | None] | None
        find = getattr(self.store, "afind_login", None)
        if find is not None:
            found = await find(facts.issuer, facts.subject)
        else:
            store = cast(AsyncStore, self.store)
            reads = lambda: read_login(facts.issuer, facts.subject)  # noqa: E731
            found = await run_to_the_end(lambda: _atransact(store, reads))
        return self._remap(token, *(found or (None, None)))

    def _remap(self, token: VerifiedToken, identity: UserIdentity | None, user: User | None) -> Mapped:
        """Apply the mapping for ``user`` (None: a new user)."""
        existing = ExistingView(user) if user is not None else None
        return make_mapped(identity if user is not None else None, user, self.mapper.apply(token, existing))

    def _committed(self, token: VerifiedToken, outcome: LoginOutcome) -> LoginResult:
        deliver(self.audit, list(outcome.events))
        return self._result(token, outcome)

    @staticmethod
    def _result(token: VerifiedToken, outcome: LoginOutcome) -> LoginResult:
        plan = outcome.plan
        kind = plan.resolution.kind
        return make_login_result(  # positional: user, identity, token, created, linked, changes, ...
            outcome.user,
            outcome.identity,
            token,
            kind == "create",
            kind == "link",
            dict(plan.field_changes),
            plan.granted,
            plan.revoked,
            outcome.mapping,
            outcome.events,
        )

    def login_failed(
        self,
        exc: BaseException,
        issuer: str | None = None,
        subject: str | None = None,
    ) -> None:
        """Audit a failed login: ``detail.reason`` is the error code, ``detail.rule`` a refusal's reason."""
        code = exc.code if isinstance(exc, FederationError) else "internal_error"
        detail: dict[str, object] = {"reason": code}
        user_id = None
        if isinstance(exc, LoginRefused):
            if exc.reason is not None:
                detail["rule"] = exc.reason
            user_id = exc.user_id
            issuer, subject = exc.issuer or issuer, exc.subject or subject
        elif issuer is None:
            issuer = getattr(exc, "issuer", None)
        event = AuditEvent(LOGIN_FAILED, self._now(), user_id, issuer, subject, detail)
        deliver(self.audit, [event])

    # -- deprovisioning -----------------------------------------------------------------

    def deprovision(
        self, issuer: str, subject: str, *, mode: DeprovisionMode = "disable", reason: str | None = None
    ) -> DeprovisionResult | None:
        """Disable or delete the user of identity (issuer, subject); None when no such identity."""
        _check_mode(mode)
        outcome = self._run(lambda: deprovision_plan(issuer, subject, mode, self._now(), reason))
        if outcome is None:
            return None
        deliver(self.audit, list(outcome.events))
        return DeprovisionResult(outcome.action, outcome.user, outcome.identity, outcome.events)

    async def adeprovision(
        self, issuer: str, subject: str, *, mode: DeprovisionMode = "disable", reason: str | None = None
    ) -> DeprovisionResult | None:
        """Async twin of :meth:`deprovision`."""
        _check_mode(mode)
        if not is_async_store(self.store):
            return await asyncio.to_thread(self.deprovision, issuer, subject, mode=mode, reason=reason)
        outcome = await self._arun(lambda: deprovision_plan(issuer, subject, mode, self._now(), reason))
        if outcome is None:
            return None
        deliver(self.audit, list(outcome.events))
        return DeprovisionResult(outcome.action, outcome.user, outcome.identity, outcome.events)

    def deprovision_user(
        self, user_id: str, *, mode: DeprovisionMode = "disable", reason: str | None = None
    ) -> DeprovisionResult | None:
        """Disable or delete the user ``user_id``; None when there is no such user."""
        _check_mode(mode)
        outcome = self._run(lambda: deprovision_user_plan(user_id, mode, self._now(), reason))
        return self._deprovisioned(outcome)

    async def adeprovision_user(
        self, user_id: str, *, mode: DeprovisionMode = "disable", reason: str | None = None
    ) -> DeprovisionResult | None:
        """Async twin of :meth:`deprovision_user`."""
        _check_mode(mode)
        if not is_async_store(self.store):
            return await asyncio.to_thread(self.deprovision_user, user_id, mode=mode, reason=reason)
        outcome = await self._arun(lambda: deprovision_user_plan(user_id, mode, self._now(), reason))
        return self._deprovisioned(outcome)

    def _deprovisioned(self, outcome: DeprovisionOutcome | None) -> DeprovisionResult | None:
        if outcome is None:
            return None
        deliver(self.audit, list(outcome.events))
        return DeprovisionResult(outcome.action, outcome.user, outcome.identity, outcome.events)

    # -- reads and touches for the session layer ----------------------------------------

    def read_user(self, user_id: str) -> User | None:
        """The user, read without holding a lock past the read (``read_user`` of the store
        when it has one, else a short transaction)."""
        reader = getattr(self.store, "read_user", None)
        if reader is not None:
            return cast("User | None", reader(user_id))
        return self._run(lambda: _get_user(user_id))

    async def aread_user(self, user_id: str) -> User | None:
        """Async twin of :meth:`read_user`."""
        if not is_async_store(self.store):
            return await asyncio.to_thread(self.read_user, user_id)
        reader = getattr(self.store, "aread_user", None)
        if reader is not None:
            return cast("User | None", await reader(user_id))
        return await self._arun(lambda: _get_user(user_id))

    def identity_of(self, issuer: str, subject: str) -> UserIdentity | None:
        """The identity (``issuer``, ``subject``): its user and when it was linked; None when unknown."""
        return self._run(lambda: _find_identity(issuer, subject))

    async def aidentity_of(self, issuer: str, subject: str) -> UserIdentity | None:
        """Async twin of :meth:`identity_of`."""
        if not is_async_store(self.store):
            return await asyncio.to_thread(self.identity_of, issuer, subject)
        return await self._arun(lambda: _find_identity(issuer, subject))

    def touch(self, user_id: str) -> User | None:
        """Set the user's ``last_login_at`` to now (no audit event); the user after, or None."""
        return self._run(lambda: _touch_plan(user_id, self._now()))

    async def atouch(self, user_id: str) -> User | None:
        """Async twin of :meth:`touch`."""
        if not is_async_store(self.store):
            return await asyncio.to_thread(self.touch, user_id)
        return await self._arun(lambda: _touch_plan(user_id, self._now()))

    # -- transactions and retries -------------------------------------------------------

    def _run(self, make_plan: Callable[[], Plan[T]]) -> T:
        store = self.store
        if not hasattr(store, "transaction"):
            raise TypeError("this store is async only: use the async methods (alogin, adeprovision)")
        store = cast(Store, store)
        conflicts, lost = 0, False
        while True:
            try:
                with store.transaction() as tx:
                    return drive(make_plan(), tx)
            except ConnectionLost:  # nothing was written: once more, at once, on a new connection
                if lost:
                    raise
                lost = True
            except StorageConflict as exc:
                conflicts += 1
                if conflicts >= self.max_attempts:
                    raise _gave_up(self.max_attempts) from exc
                time.sleep(_backoff(conflicts))

    async def _arun(self, make_plan: Callable[[], Plan[T]]) -> T:
        store = self.store
        assert isinstance(store, AsyncStore)
        conflicts, lost = 0, False
        while True:
            try:
                return await run_to_the_end(lambda: _atransact(store, make_plan))
            except ConnectionLost:  # nothing was written: once more, at once, on a new connection
                if lost:
                    raise
                lost = True
            except StorageConflict as exc:
                conflicts += 1
                if conflicts >= self.max_attempts:
                    raise _gave_up(self.max_attempts) from exc
                await asyncio.sleep(_backoff(conflicts))


async def _atransact(store: AsyncStore, make_plan: Callable[[], Plan[T]]) -> T:
    """One transaction of ``make_plan``'s plan (run by :func:`run_to_the_end`: a cancelled
    caller's transaction still ends, never pooled half-way)."""
    async with store.atransaction() as tx:
        return await adrive(make_plan(), tx)


def _get_user(user_id: str) -> Plan[User | None]:
    return (yield from call(GetUser(user_id)))


def _find_identity(issuer: str, subject: str) -> Plan[UserIdentity | None]:
    return (yield from call(FindIdentity(issuer, subject)))


def _touch_plan(user_id: str, now: datetime) -> Plan[User | None]:
    user = yield from call(GetUser(user_id))
    if user is None:
        return None
    yield from call(UpdateUser(user_id, {"last_login_at": now}))
    return user.changed({"last_login_at": now})


def _gave_up(attempts: int) -> StorageError:
    return StorageError(f"the store kept conflicting; gave up after {attempts} attempts")


def _backoff(attempt: int) -> float:
    """A short, jittered pause before retry ``attempt`` (so racing writers spread out)."""
    return random.uniform(0, min(0.05, 0.002 * 2**attempt))  # noqa: S311 - jitter, not security


def _check_mode(mode: str) -> None:
    if mode not in ("disable", "delete"):
        raise ValueError("mode must be 'disable' or 'delete'")
