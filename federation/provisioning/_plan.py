"""The sans-I/O provisioning plans, and the two drivers that run them on a store.

Owns: :func:`login_plan` and :func:`deprovision_plan`, generators that yield
:class:`StoreCall` (a method of the storage protocol and its arguments),
receive the result, and return the outcome; :func:`drive` runs a plan on a
sync transaction, :func:`adrive` on a native async one. The order of reads
and writes lives here once, for both.

Must not: open transactions, retry, emit audit events, or read the clock
(the shells in ``_shell`` do).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..errors import StorageConflict
from ..mapping import ExistingUser, MappingResult
from ..spi import VerifiedToken
from ..storage import (
    USER_COLUMNS,
    AsyncStoreTransaction,
    AuditEvent,
    StoreTransaction,
    User,
    UserIdentity,
    email_key,
)
from ._decide import (
    DeprovisionMode,
    LoginFacts,
    LoginPlan,
    plan_deprovision,
    plan_login,
    resolve,
)
from ._policy import ProvisioningPolicy

__all__ = [
    "DeprovisionOutcome",
    "LoginOutcome",
    "Mapper",
    "StoreCall",
    "adrive",
    "deprovision_plan",
    "drive",
    "login_plan",
]

T = TypeVar("T")


class Mapper(Protocol):
    """Anything that maps a verified token onto a user: ``federation.mapping.Mapping``, or your own."""

    def apply(self, token: VerifiedToken, existing: ExistingUser | None) -> MappingResult: ...


@dataclass(frozen=True, slots=True)
class StoreCall:
    """One storage protocol call the plan wants made."""

    method: str
    args: tuple[Any, ...]


Plan = Generator[StoreCall, Any, T]


class ExistingView:
    """A stored user as mapping sees it (:class:`~federation.mapping.ExistingUser`):
    the columns ``username``, ``email``, ``display_name`` among the attributes."""

    __slots__ = ("_user",)

    def __init__(self, user: User) -> None:
        self._user = user

    @property
    def attributes(self) -> dict[str, Any]:
        values = dict(self._user.attributes)
        values.update({name: getattr(self._user, name) for name in USER_COLUMNS})
        return values

    @property
    def roles(self) -> frozenset[str]:
        return self._user.roles

    @property
    def user(self) -> User:
        """The stored user."""
        return self._user


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """What a committed login plan did."""

    plan: LoginPlan
    user: User
    identity: UserIdentity
    mapping: MappingResult
    events: tuple[AuditEvent, ...]


@dataclass(frozen=True, slots=True)
class DeprovisionOutcome:
    """What a committed deprovision plan did (``action`` ``none``: already disabled)."""

    action: str
    user: User
    identity: UserIdentity
    events: tuple[AuditEvent, ...]


def login_plan(
    facts: LoginFacts,
    token: VerifiedToken,
    mapper: Mapper,
    policy: ProvisioningPolicy,
    now: datetime,
) -> Plan[LoginOutcome]:
    """Read, resolve, map, decide, write: one login, inside one transaction.

    Reads that contradict each other (the identity's user vanished, or the
    identity appeared among the email candidates after it was not found) raise
    :class:`~federation.errors.StorageConflict`: the shell retries the whole
    plan, which then reads a consistent state.
    """
    identity: UserIdentity | None = yield StoreCall("find_identity", (facts.issuer, facts.subject))
    user: User | None = None
    candidates: list[User] = []
    candidate_identities: dict[str, list[UserIdentity]] = {}
    if identity is not None:
        user = yield StoreCall("get_user", (identity.user_id,))
        if user is None:  # deleted between the two reads: start again
            raise StorageConflict("the identity's user vanished during the login")
    elif policy.link_by_email and (key := email_key(facts.email)) is not None:
        candidates = list((yield StoreCall("find_users_by_email", (key,))))
        for candidate in candidates:
            owned = list((yield StoreCall("identities_of", (candidate.id,))))
            if any(i.key == (facts.issuer, facts.subject) for i in owned):
                # A concurrent first login committed this very identity after our first read
                # (READ COMMITTED): not a second identity of the issuer, so start again and find it.
                raise StorageConflict("the identity was provisioned concurrently during the login")
            candidate_identities[candidate.id] = owned
    resolution = resolve(facts, identity, user, candidates, candidate_identities, policy)
    existing = ExistingView(resolution.user) if resolution.user is not None else None
    result = mapper.apply(token, existing)
    plan = plan_login(facts, resolution, result, now)

    if plan.new_user is not None:
        user_id: str = yield StoreCall("insert_user", (plan.new_user,))
        final = plan.new_user.with_id(user_id)
    else:
        assert plan.user is not None
        user_id = plan.user.id
        if plan.changes:
            yield StoreCall("update_user", (user_id, plan.changes))
        final = plan.user.changed(plan.changes)
    if plan.link:
        identity = plan.identity_for(facts, user_id)
        yield StoreCall("insert_identity", (identity,))
    assert identity is not None
    return LoginOutcome(plan, final, identity, result, tuple(plan.events(facts, user_id)))


def deprovision_plan(
    issuer: str, subject: str, mode: DeprovisionMode, now: datetime, reason: str | None
) -> Plan[DeprovisionOutcome | None]:
    """Disable or delete the user of identity (issuer, subject); None when there is none."""
    identity: UserIdentity | None = yield StoreCall("find_identity", (issuer, subject))
    if identity is None:
        return None
    user: User | None = yield StoreCall("get_user", (identity.user_id,))
    if user is None:
        raise StorageConflict("the identity's user vanished during deprovisioning")
    plan = plan_deprovision(identity, user, mode, now, reason)
    if plan.action == "delete":
        yield StoreCall("delete_user", (user.id,))
    elif plan.action == "disable":
        yield StoreCall("update_user", (user.id, plan.changes))
        user = user.changed(plan.changes)
    return DeprovisionOutcome(plan.action, user, identity, plan.events)


def drive(plan: Plan[T], tx: StoreTransaction) -> T:
    """Run ``plan`` on a sync transaction."""
    try:
        call = next(plan)
        while True:
            call = plan.send(getattr(tx, call.method)(*call.args))
    except StopIteration as done:
        result: T = done.value
        return result


async def adrive(plan: Plan[T], tx: AsyncStoreTransaction) -> T:
    """Run ``plan`` on a native async transaction."""
    try:
        call = next(plan)
        while True:
            call = plan.send(await getattr(tx, call.method)(*call.args))
    except StopIteration as done:
        result: T = done.value
        return result
