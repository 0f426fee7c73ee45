"""The sans-I/O provisioning plans.

Owns: :func:`login_plan` and :func:`deprovision_plan`, generators that yield
typed store operations (``_ops``), receive the results, and return the
outcome; the drivers in ``_ops`` run them on a sync or a native async
transaction. The order of reads and writes lives here once, for both.

A login plan receives the mapping already applied (:class:`Mapped`: the
shell read the identity and its user without a lock, and mapped on them).
When the user it reads under the lock differs from the one the mapping saw,
it raises :class:`MappingStale`: the shell rolls back, maps again for the
user read, and runs the plan again.

Must not: open transactions, retry, run mapping rules, emit audit events, or
read the clock (the shells in ``_shell`` do).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from ..errors import LoginRefused, StorageConflict
from ..frozen import record_factory
from ..mapping import ExistingUser, MappingResult
from ..spi import VerifiedToken
from ..storage import (
    USER_COLUMNS,
    AuditEvent,
    DeleteUser,
    FindIdentity,
    FindUsersByEmail,
    GetUser,
    IdentitiesOf,
    InsertIdentity,
    InsertUser,
    Plan,
    UpdateUser,
    User,
    UserIdentity,
    call,
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
    "ExistingView",
    "LoginOutcome",
    "Mapped",
    "Mapper",
    "MappingStale",
    "deprovision_plan",
    "login_plan",
    "read_login",
    "same_for_mapping",
    "unlocked_login",
]

T = TypeVar("T")


class Mapper(Protocol):
    """Anything that maps a verified token onto a user: ``federation.mapping.Mapping``, or your own.

    ``apply`` must be pure: the provisioner calls it outside the store
    transaction, and again only when the stored user changed meanwhile.
    The result's ``granted``/``revoked`` are its ``roles`` against
    ``existing.roles``; a result that fills only ``roles`` has them derived.
    """

    def apply(self, token: VerifiedToken, existing: ExistingUser | None) -> MappingResult: ...


_user_columns = attrgetter(*USER_COLUMNS)  # one C call: every login's mapping reads them


class ExistingView:
    """A stored user as mapping sees it (:class:`~federation.mapping.ExistingUser`):
    the columns ``username``, ``email``, ``display_name`` among the attributes."""

    __slots__ = ("_user",)

    def __init__(self, user: User) -> None:
        self._user = user

    @property
    def attributes(self) -> dict[str, Any]:
        values = dict(self._user.attributes)
        values.update(zip(USER_COLUMNS, _user_columns(self._user), strict=True))
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


make_login_outcome = record_factory(LoginOutcome)  # built for every login


@dataclass(frozen=True, slots=True)
class DeprovisionOutcome:
    """What a committed deprovision plan did (``action`` ``none``: already disabled)."""

    action: str
    user: User
    identity: UserIdentity | None
    events: tuple[AuditEvent, ...]


@dataclass(frozen=True, slots=True)
class Mapped:
    """A mapping result, and the identity and stored user it was computed for (None: unknown, new)."""

    identity: UserIdentity | None
    existing: User | None
    result: MappingResult


make_mapped = record_factory(Mapped)


class MappingStale(Exception):
    """The plan read another user than the mapping saw: map again for ``user``, outside the tx."""

    def __init__(self, identity: UserIdentity | None, user: User | None) -> None:
        super().__init__("the stored user changed since the mapping was applied")
        self.identity = identity
        self.user = user


def same_for_mapping(a: User | None, b: User | None) -> bool:
    """Whether a mapping computed for ``a`` holds for ``b``: the same user, ``last_login_at`` aside.

    A login of the same user elsewhere moves only ``last_login_at``, which
    no mapping reads; anything else (roles, attributes, status) maps anew.
    """
    if a is None or b is None:
        return a is b
    return a == b or dataclasses.replace(a, last_login_at=b.last_login_at) == b


def login_plan(
    facts: LoginFacts,
    mapped: Mapped,
    policy: ProvisioningPolicy,
    now: datetime,
) -> Plan[LoginOutcome]:
    """Read, resolve, decide, write: one login, inside one transaction.

    Reads that contradict each other (the identity's user vanished, or the
    identity appeared among the email candidates after it was not found) raise
    :class:`~federation.errors.StorageConflict`: the shell retries the whole
    plan, which then reads a consistent state. A resolved user other than
    ``mapped.existing`` raises :class:`MappingStale`.
    """
    user: User | None = None
    candidates: list[User] = []
    candidate_identities: dict[str, list[UserIdentity]] = {}
    identity: UserIdentity | None = mapped.identity
    if identity is not None:
        # Read before the transaction; an identity never moves to another user, so only
        # its user is read again, under the lock.
        user = yield from call(GetUser(identity.user_id))
        if user is None:  # deleted since: map again as whatever this identity is now
            raise MappingStale(None, None)
    elif (identity := (yield from call(FindIdentity(facts.issuer, facts.subject)))) is not None:
        user = yield from call(GetUser(identity.user_id))
        if user is None:  # deleted between the two reads: start again
            raise StorageConflict("the identity's user vanished during the login")
    elif policy.link_by_email and (key := email_key(facts.email)) is not None:
        candidates = list((yield from call(FindUsersByEmail(key))))
        for candidate in candidates:
            owned = list((yield from call(IdentitiesOf(candidate.id))))
            if any(i.key == (facts.issuer, facts.subject) for i in owned):
                # A concurrent first login committed this very identity after our first read
                # (READ COMMITTED): not a second identity of the issuer, so start again and find it.
                raise StorageConflict("the identity was provisioned concurrently during the login")
            candidate_identities[candidate.id] = owned
    resolution = resolve(facts, identity, user, candidates, candidate_identities, policy)
    if not same_for_mapping(mapped.existing, resolution.user):
        raise MappingStale(identity, resolution.user)
    result = mapped.result
    plan = plan_login(facts, resolution, result, now, touch_interval=policy.touch_interval)

    if plan.new_user is not None:
        user_id = yield from call(InsertUser(plan.new_user))
        final = plan.new_user.with_id(user_id)
    else:
        assert plan.user is not None
        user_id = plan.user.id
        if plan.changes:
            yield from call(UpdateUser(user_id, plan.changes))
        final = plan.user.changed(plan.changes)
    if plan.link:
        identity = plan.identity_for(facts, user_id)
        yield from call(InsertIdentity(identity))
    assert identity is not None
    return make_login_outcome(plan, final, identity, result, tuple(plan.events(facts, user_id)))


def unlocked_login(
    facts: LoginFacts, mapped: Mapped, policy: ProvisioningPolicy, now: datetime
) -> LoginOutcome | None:
    """The outcome of a login of a linked, active user that writes nothing (its roles and
    attributes as mapped, its login time within ``policy.touch_interval``), decided on the
    unlocked read the mapping ran on: no transaction, no lock. None when the login writes
    or refuses: then :func:`login_plan` runs, under the lock.

    Writing nothing, the login is exactly as if it ran at the instant of that read (a
    committed state: the identity and its user, read in one statement), so no lock is needed.
    """
    identity, user = mapped.identity, mapped.existing
    if policy.touch_interval <= 0 or identity is None or user is None:
        return None
    try:
        resolution = resolve(facts, identity, user, (), {}, policy)
        plan = plan_login(facts, resolution, mapped.result, now, touch_interval=policy.touch_interval)
    except LoginRefused:
        return None  # refused under the lock, with the user read there
    if plan.changes or plan.link or plan.new_user is not None:
        return None
    return make_login_outcome(plan, user, identity, mapped.result, tuple(plan.events(facts, user.id)))


def read_login(issuer: str, subject: str) -> Plan[tuple[UserIdentity, User | None] | None]:
    """The identity and its user, read in a transaction of their own (a store without ``find_login``)."""
    identity = yield from call(FindIdentity(issuer, subject))
    if identity is None:
        return None
    return identity, (yield from call(GetUser(identity.user_id)))


def deprovision_plan(
    issuer: str, subject: str, mode: DeprovisionMode, now: datetime, reason: str | None
) -> Plan[DeprovisionOutcome | None]:
    """Disable or delete the user of identity (issuer, subject); None when there is none."""
    identity = yield from call(FindIdentity(issuer, subject))
    if identity is None:
        return None
    user = yield from call(GetUser(identity.user_id))
    if user is None:
        raise StorageConflict("the identity's user vanished during deprovisioning")
    plan = plan_deprovision(identity, user, mode, now, reason)
    if plan.action == "delete":
        yield from call(DeleteUser(user.id))
    elif plan.action == "disable":
        yield from call(UpdateUser(user.id, plan.changes))
        user = user.changed(plan.changes)
    return DeprovisionOutcome(plan.action, user, identity, plan.events)


def deprovision_user_plan(
    user_id: str, mode: DeprovisionMode, now: datetime, reason: str | None
) -> Plan[DeprovisionOutcome | None]:
    """Disable or delete the user ``user_id`` (a local account, or any user by id); None when absent."""
    user = yield from call(GetUser(user_id))
    if user is None:
        return None
    plan = plan_deprovision(None, user, mode, now, reason)
    if plan.action == "delete":
        yield from call(DeleteUser(user.id))
    elif plan.action == "disable":
        yield from call(UpdateUser(user.id, plan.changes))
        user = user.changed(plan.changes)
    return DeprovisionOutcome(plan.action, user, None, plan.events)
