"""The pure provisioning decision: from what was read and what the mapping said, the writes.

Owns: :class:`LoginFacts` (the identity as provisioning sees it),
:func:`resolve` (which local user a login is about: the linked one, one to
link by email, or a new one; and every refusal: disabled account, refused
link, closed registration), :func:`plan_login` (the writes and audit events of
a login, given the mapping result: creation, update policies already applied
by the mapping, role sync), :func:`stored_email_verified` (the only way the
stored ``email_verified`` is set: by an issuer trusted for emails) and
:func:`plan_deprovision`.

Every function here is pure: no store, no clock, no I/O. The sans-I/O plan
(``_plan``) reads through the store, calls these, and yields the writes.

Must not: touch a store, read the clock, or apply a mapping itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..errors import AccessDenied, AccountDisabled, LinkRefused, LoginRefused, RegistrationClosed
from ..frozen import record_factory
from ..mapping import MappingResult
from ..storage import (
    ACTIVE,
    DISABLED,
    IDENTITY_LINKED,
    LOGIN_SUCCEEDED,
    ROLE_GRANTED,
    ROLE_REVOKED,
    USER_COLUMNS,
    USER_CREATED,
    USER_DELETED,
    USER_DISABLED,
    USER_UPDATED,
    AuditEvent,
    NewUser,
    User,
    UserIdentity,
    email_key,
)
from ._policy import ProvisioningPolicy, check_values

__all__ = [
    "DeprovisionMode",
    "DeprovisionPlan",
    "LoginFacts",
    "LoginPlan",
    "Resolution",
    "login_time_due",
    "plan_deprovision",
    "plan_login",
    "resolve",
    "stored_email_verified",
]

DeprovisionMode = Literal["disable", "delete"]


@dataclass(frozen=True, slots=True)
class LoginFacts:
    """What provisioning needs to know about a verified token.

    ``issuer``/``subject`` are the identity key (``VerifiedToken.identity_key``);
    ``email_verified`` is the provider's word as its profile reads it (False for
    an Entra email without ``xms_edov``); ``trust_email`` is the issuer entry's
    ``trust_email`` switch: only then does that word reach the stored
    ``User.email_verified`` (:func:`stored_email_verified`).
    """

    issuer: str
    subject: str
    provider: str
    email: str | None = None
    email_verified: bool = False
    trust_email: bool = False

    def refusal(
        self, cls: type[LoginRefused], message: str, reason: str | None, user_id: str | None = None
    ) -> LoginRefused:
        """A refusal naming this identity."""
        return cls(message, reason=reason, issuer=self.issuer, subject=self.subject, user_id=user_id)


make_login_facts = record_factory(LoginFacts)  # built for every login


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which local user a login is about.

    ``kind``: ``existing`` (the identity is linked to ``user``), ``link``
    (``user`` matched by verified email; the identity will be linked) or
    ``create`` (no user yet; ``user`` is None).
    """

    kind: Literal["existing", "link", "create"]
    user: User | None = None
    identity: UserIdentity | None = None


make_resolution = record_factory(Resolution)


def resolve(
    facts: LoginFacts,
    identity: UserIdentity | None,
    user: User | None,
    candidates: Sequence[User],
    candidate_identities: Mapping[str, Sequence[UserIdentity]],
    policy: ProvisioningPolicy,
) -> Resolution:
    """Decide whose login this is, or refuse.

    ``identity``/``user``: the identity with this key and its user, if linked.
    ``candidates``: users with the same canonical email (read only when
    ``policy.link_by_email``), with their identities.
    """
    if identity is not None:
        if user is None:  # pragma: no cover - the plan retries instead
            raise ValueError("an identity without its user")
        if user.status != ACTIVE:
            raise facts.refusal(AccountDisabled, "the account is disabled", "disabled", user.id)
        return make_resolution("existing", user, identity)
    if candidates:
        return Resolution("link", _link_target(facts, candidates, candidate_identities, policy))
    if not policy.create_users:
        raise facts.refusal(
            RegistrationClosed, "no account exists for this identity and creation is off", "creation_disabled"
        )
    if policy.allowed_email_domains is not None:
        if not facts.email_verified:
            raise facts.refusal(
                RegistrationClosed,
                "accounts are only created for verified emails of allowed domains",
                "email_not_verified",
            )
        if not policy.domain_allowed(facts.email):
            raise facts.refusal(
                RegistrationClosed, "the email's domain is not allowed", "email_domain_not_allowed"
            )
    return Resolution("create")


def _link_target(
    facts: LoginFacts,
    candidates: Sequence[User],
    candidate_identities: Mapping[str, Sequence[UserIdentity]],
    policy: ProvisioningPolicy,
) -> User:
    def refuse(reason: str, message: str, user_id: str | None = None) -> LoginRefused:
        return facts.refusal(LinkRefused, message, reason, user_id)

    # The token's side: only a verified email, from an issuer trusted for emails, in an allowed domain.
    if not facts.email_verified:
        raise refuse("email_not_verified", "an account with this email exists; the email is not verified")
    if not facts.trust_email:
        raise refuse("issuer_not_trusted", "an account with this email exists; the issuer is not trusted")
    if not policy.domain_allowed(facts.email):
        raise refuse("email_domain_not_allowed", "the email's domain is not allowed")
    if len(candidates) != 1:
        raise refuse("ambiguous_email", "several accounts have this email")
    target = candidates[0]
    # The account's side: its own email verified (no pre-hijacked accounts: only an issuer trusted
    # for emails ever sets the stored flag, see stored_email_verified), no identity from this issuer.
    if not target.email_verified:
        raise refuse("target_email_not_verified", "the existing account's email is not verified", target.id)
    if any(i.issuer == facts.issuer for i in candidate_identities.get(target.id, ())):
        raise refuse(
            "issuer_already_linked", "the existing account already has an identity of this issuer", target.id
        )
    if target.status != ACTIVE:
        raise facts.refusal(AccountDisabled, "the account is disabled", "disabled", target.id)
    return target


@dataclass(frozen=True, slots=True)
class LoginPlan:
    """The writes of one login, in order, and what they mean.

    Exactly one of ``new_user`` (create) and ``user`` (existing or link) is
    set. ``link`` asks for the identity to be inserted (create and link).
    ``changes`` is what ``update_user`` gets; ``field_changes`` the
    (old, new) pairs reported to the caller (``last_login_at`` excluded).
    """

    resolution: Resolution
    new_user: NewUser | None
    user: User | None
    link: bool
    changes: Mapping[str, Any]
    field_changes: Mapping[str, tuple[Any, Any]]
    granted: frozenset[str]
    revoked: frozenset[str]
    provider: str
    now: datetime

    def identity_for(self, facts: LoginFacts, user_id: str) -> UserIdentity:
        """The identity row to insert once ``user_id`` is known."""
        return UserIdentity(facts.issuer, facts.subject, facts.provider, user_id, self.now)

    def events(self, facts: LoginFacts, user_id: str) -> list[AuditEvent]:
        """The audit events of this plan, once it is committed."""

        def ev(name: str, **detail: Any) -> AuditEvent:
            return make_audit_event(name, self.now, user_id, facts.issuer, facts.subject, detail)

        events: list[AuditEvent] = []
        kind = self.resolution.kind
        if kind == "create":
            events.append(ev(USER_CREATED, provider=facts.provider))
        elif kind == "link":
            events.append(ev(IDENTITY_LINKED, via="email", provider=facts.provider))
        if self.field_changes:  # most logins change nothing: no sorting, no generators
            fields = sorted(name for name in self.field_changes if name != "roles")
            if fields:
                events.append(ev(USER_UPDATED, fields=fields))
        if self.granted:
            events.extend(ev(ROLE_GRANTED, role=role) for role in sorted(self.granted))
        if self.revoked:
            events.extend(ev(ROLE_REVOKED, role=role) for role in sorted(self.revoked))
        events.append(ev(LOGIN_SUCCEEDED, created=kind == "create", linked=kind == "link"))
        return events


make_login_plan = record_factory(LoginPlan)
make_audit_event = record_factory(AuditEvent)  # a login's events


def _same_email(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return a == b or (email_key(a) is not None and email_key(a) == email_key(b))


def _stored_as(old: Any, new: Any) -> bool:
    """Whether ``old`` is how a store hands back the JSON value ``new``: PostgreSQL's JSONB
    keeps a number as a decimal, so a large float comes back an int (1.5e308 as 15 and 307
    zeros), unequal to the float; every login then rewrote the attribute."""
    if type(new) is float and type(old) is int:
        try:
            return float(old) == new
        except OverflowError:
            return False
    if type(new) is list and type(old) is list:
        return len(old) == len(new) and all(o == n or _stored_as(o, n) for o, n in zip(old, new, strict=True))
    if type(new) is dict and type(old) is dict:
        return old.keys() == new.keys() and all(old[k] == v or _stored_as(old[k], v) for k, v in new.items())
    return False


def stored_email_verified(facts: LoginFacts, email: str | None, user: User | None) -> bool:
    """The stored ``email_verified`` once ``email`` is written by this login.

    True only when an issuer trusted for emails vouched for this address: the
    token's issuer, when it is trusted and ``email`` is the token's own email;
    otherwise the flag an earlier trusted issuer set survives for the unchanged
    address, and is never raised. Linking trusts this flag (``_link_target``),
    so an issuer not trusted for emails must not be able to set it: that is
    account pre-hijacking (sign up with the victim's address, wait for the
    victim's trusted login to be linked in).
    """
    if facts.trust_email and _same_email(email, facts.email):
        return facts.email_verified
    return user is not None and user.email_verified and _same_email(email, user.email)


def login_time_due(last_login_at: datetime | None, now: datetime, touch_interval: float) -> bool:
    """Whether a login that changes nothing else writes its time: always when ``touch_interval``
    is 0, else when the stored time is older than that many seconds (or absent, or ahead of ``now``)."""
    if touch_interval <= 0 or last_login_at is None:
        return True
    age = (now - last_login_at).total_seconds()
    return not 0 <= age < touch_interval


def plan_login(
    facts: LoginFacts,
    resolution: Resolution,
    result: MappingResult,
    now: datetime,
    *,
    touch_interval: float = 0,
) -> LoginPlan:
    """The writes for a login the mapping allowed, or :class:`~federation.errors.AccessDenied`.

    Columns (``username``, ``email``, ``display_name``) come from the
    mapping's attributes of the same names; every other attribute goes to
    ``User.attributes`` (None removes it). The mapping's ``roles`` is the
    complete new role set. ``email_verified`` is recomputed whenever the
    mapping writes ``email`` (:func:`stored_email_verified`). ``last_login_at``
    is written with any other change, on a link, and otherwise when
    :func:`login_time_due` (``touch_interval``, 0: always): a login changing
    nothing within it writes nothing.
    """
    user = resolution.user
    if result.denied is not None:
        raise facts.refusal(
            AccessDenied, "a mapping rule denies access", result.denied, user.id if user else None
        )
    columns = {k: v for k, v in result.attributes.items() if k in USER_COLUMNS}
    extra = {k: v for k, v in result.attributes.items() if k not in USER_COLUMNS}
    try:
        check_values(columns, extra)
    except LoginRefused as exc:
        exc.issuer, exc.subject, exc.user_id = facts.issuer, facts.subject, user.id if user else None
        raise
    roles = frozenset(result.roles)

    if user is None:
        email = columns.get("email")
        new_user = NewUser(
            username=columns.get("username"),
            email=email,
            email_verified=stored_email_verified(facts, email, None),
            display_name=columns.get("display_name"),
            roles=roles,
            attributes={k: v for k, v in extra.items() if v is not None},
            status=ACTIVE,
            created_at=now,
            updated_at=now,
            last_login_at=now,
        )
        return LoginPlan(resolution, new_user, None, True, {}, {}, roles, frozenset(), facts.provider, now)

    field_changes: dict[str, tuple[Any, Any]] = {}
    changes: dict[str, Any] = {}
    for name, value in columns.items():
        if getattr(user, name) != value:
            field_changes[name] = (getattr(user, name), value)
            changes[name] = value
    if "email" in columns:
        verified = stored_email_verified(facts, columns["email"], user)
        if verified != user.email_verified:
            field_changes["email_verified"] = (user.email_verified, verified)
            changes["email_verified"] = verified
    if extra:  # else the stored attributes stand as they are
        attributes = dict(user.attributes)
        for name, value in extra.items():
            old = attributes.get(name)
            changed = old != value
            if value is None:
                attributes.pop(name, None)
            elif changed and _stored_as(old, value):
                continue  # the store's own rendering of this value: nothing changed
            else:
                attributes[name] = value
            if changed:
                field_changes[f"attributes.{name}"] = (old, value)
        if attributes != dict(user.attributes):
            changes["attributes"] = attributes
    granted, revoked = result.granted, result.revoked
    if (user.roles - revoked) | granted != roles:  # a Mapper that filled only ``roles``
        granted, revoked = roles - user.roles, user.roles - roles
    if granted or revoked:
        field_changes["roles"] = (user.roles, roles)
        changes["roles"] = roles
    if changes:
        changes["updated_at"] = now
    if changes or resolution.kind == "link" or login_time_due(user.last_login_at, now, touch_interval):
        changes["last_login_at"] = now
    return make_login_plan(
        resolution,
        None,
        user,
        resolution.kind == "link",
        changes,
        field_changes,
        granted,
        revoked,
        facts.provider,
        now,
    )


@dataclass(frozen=True, slots=True)
class DeprovisionPlan:
    """What deprovisioning one identity does: ``delete`` the user, ``disable`` it, or nothing."""

    action: Literal["delete", "disable", "none"]
    changes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[AuditEvent, ...] = ()


def plan_deprovision(
    identity: UserIdentity | None,
    user: User,
    mode: DeprovisionMode,
    now: datetime,
    reason: str | None = None,
) -> DeprovisionPlan:
    """Disable (idempotent) or delete the user an identity belongs to (or a user by id: no identity)."""
    detail: dict[str, Any] = {"reason": reason} if reason else {}
    issuer = identity.issuer if identity is not None else None
    subject = identity.subject if identity is not None else None

    def ev(name: str) -> AuditEvent:
        return AuditEvent(name, now, user.id, issuer, subject, detail)

    if mode == "delete":
        return DeprovisionPlan("delete", events=(ev(USER_DELETED),))
    if mode != "disable":
        raise ValueError("mode must be 'disable' or 'delete'")
    if user.status == DISABLED:
        return DeprovisionPlan("none")
    return DeprovisionPlan("disable", {"status": DISABLED, "updated_at": now}, events=(ev(USER_DISABLED),))
