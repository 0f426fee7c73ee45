"""The records a user store holds: users, their identities, audit events.

Owns: :class:`User` (a local user as the store returns it), :class:`NewUser`
(what provisioning asks a store to insert), :class:`UserIdentity` (one link
from an external identity key to a local user), :class:`AuditEvent`, the
names of the fields provisioning may change (:data:`USER_FIELDS`), the
canonical form of an email used for lookups (:func:`email_key`), and what a
stored row must hold to become one of these records (:func:`stored_user`,
:func:`stored_reader`).

Must not: talk to a database or decide provisioning policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from itertools import repeat
from types import MappingProxyType, NoneType
from typing import Any, Literal, TypeAlias, TypeVar

from ..errors import CorruptRecord
from ..frozen import record_factory

__all__ = [
    "ACTIVE",
    "DISABLED",
    "USER_COLUMNS",
    "USER_FIELDS",
    "AuditEvent",
    "NewUser",
    "User",
    "UserIdentity",
    "UserStatus",
    "email_key",
]

T = TypeVar("T")

UserStatus = Literal["active", "disabled"]
ACTIVE: UserStatus = "active"
DISABLED: UserStatus = "disabled"

#: Mapping attributes with these names are user columns; every other attribute goes to ``User.attributes``.
USER_COLUMNS: tuple[str, ...] = ("username", "email", "display_name")


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user to insert; the store assigns the id.

    ``attributes`` holds every mapped attribute that is not a column
    (JSON values: strings, numbers, booleans, None, lists and objects).
    """

    username: str | None
    email: str | None
    email_verified: bool
    display_name: str | None
    roles: frozenset[str]
    attributes: Mapping[str, Any]
    status: UserStatus
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "attributes", _frozen(self.attributes))

    def with_id(self, user_id: str) -> User:
        """The stored user this becomes once the store assigned ``user_id``."""
        return User(id=user_id, **{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class User:
    """A local user. ``id`` is the store's key, as a string (convert integer keys).

    ``status`` is ``active`` or ``disabled``; datetimes are timezone-aware UTC.
    ``email_verified`` is True only when an issuer trusted for emails
    (``trust_email: true``) vouched for ``email``; linking by email relies on it.
    Authorise on ``id`` and ``roles``, never on ``username`` or ``email``:
    those are copied from identity providers and may collide or change.
    """

    id: str
    username: str | None
    email: str | None
    email_verified: bool
    display_name: str | None
    roles: frozenset[str]
    attributes: Mapping[str, Any]
    status: UserStatus
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "attributes", _frozen(self.attributes))

    @property
    def active(self) -> bool:
        """True unless the user is disabled."""
        return self.status == ACTIVE

    def changed(self, changes: Mapping[str, Any]) -> User:
        """This user with ``changes`` (field name -> new value) applied."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return User(**values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: roles sorted, datetimes in ISO 8601."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "email_verified": self.email_verified,
            "display_name": self.display_name,
            "roles": sorted(self.roles),
            "attributes": dict(self.attributes),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


make_user = record_factory(User)  # built for every login read

#: The fields of a user that ``update_user`` may be asked to change: every field a new
#: user has but its creation time.
USER_FIELDS: frozenset[str] = frozenset(f.name for f in fields(NewUser)) - {"created_at"}


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """An external identity linked to a local user.

    ``(issuer, subject)`` is the provider's stable identity key
    (``VerifiedToken.identity_key``): the token's issuer and ``sub`` for most
    providers, (``entra:<tid>``, ``oid``) for Entra ID. Never an email.
    ``provider`` is the profile that verified it (``oidc``, ``azure_ad`` ...).
    """

    issuer: str
    subject: str
    provider: str
    user_id: str
    created_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        """``(issuer, subject)``."""
        return (self.issuer, self.subject)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "provider": self.provider,
            "user_id": self.user_id,
            "created_at": self.created_at.isoformat(),
        }


make_user_identity = record_factory(UserIdentity)  # built for every login read


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record: what happened to whom, never the token.

    ``issuer``/``subject`` are the identity key concerned (when known),
    ``user_id`` the local user (when known). ``detail`` holds codes, field
    names and role names: ``reason`` for ``login_failed``, ``fields`` for
    ``user_updated``, ``role`` for ``role_granted``/``role_revoked``.
    """

    name: str
    at: datetime
    user_id: str | None = None
    issuer: str | None = None
    subject: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", _frozen(self.detail))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "name": self.name,
            "at": self.at.isoformat(),
            "user_id": self.user_id,
            "issuer": self.issuer,
            "subject": self.subject,
            "detail": dict(self.detail),
        }


def email_key(email: str | None) -> str | None:
    """The canonical form of an email for lookups, or None when it has none.

    Only plain ASCII addresses have one (lower-cased whole): an address with
    any other character is never matched against another user, so look-alike
    letters, case-folding collisions (``ß``/``ss``, the Kelvin sign) and
    normalisation forms can never merge two accounts. Store implementations
    compare it with ``lower(email)``.
    """
    if not email or not email.isascii() or email.count("@") != 1:
        return None
    return email.lower()


# -- a stored row as a record ----------------------------------------------------------------
# A store reads back what it wrote; another program (or damage) may have written anything.
# Each value is checked for the kind its field holds before a record is made of it, so that a
# wrong one is a CorruptRecord naming the field, never a record that means something else
# (a role string read as its letters) or a TypeError from deep inside.

Kind: TypeAlias = type | tuple[type, ...]
TEXT: Kind = (str, NoneType)
TIME: Kind = (datetime, NoneType)


def _invalid(what: str, names: Sequence[str], kinds: Sequence[Kind], values: Sequence[Any]) -> CorruptRecord:
    if len(values) != len(kinds):
        return CorruptRecord(f"a stored {what} has {len(values)} values, not {len(kinds)}")
    pairs = zip(names, kinds, values, strict=True)
    wrong = next(name for name, kind, value in pairs if not isinstance(value, kind))
    return CorruptRecord(f"a stored {what} holds an invalid value in {wrong}")


def stored_reader(
    make: Callable[..., T], what: str, kinds: Mapping[str, Kind]
) -> Callable[[Sequence[Any]], T]:
    """A function making ``make(*values)`` of a stored row's ``values`` (in the order of
    ``kinds``: field name -> the Python types a driver gives for it), or raising
    :class:`~federation.errors.CorruptRecord` naming the first value not of its kind."""
    names, types = tuple(kinds), tuple(kinds.values())

    def read(values: Sequence[Any]) -> T:
        if len(values) == len(types) and all(map(isinstance, values, types)):
            return make(*values)
        raise _invalid(what, names, types, values)

    return read


#: What each of :class:`User`'s fields is when a store reads it back: ``roles`` a JSON list of
#: strings and ``attributes`` a JSON object (either may be JSON null: none).
_USER_KINDS: dict[str, Kind] = {
    "id": str,
    "username": TEXT,
    "email": TEXT,
    "email_verified": bool,
    "display_name": TEXT,
    "roles": (list, NoneType),
    "attributes": (dict, NoneType),
    "status": str,
    "created_at": datetime,
    "updated_at": datetime,
    "last_login_at": TIME,
}
_STATUSES = frozenset((ACTIVE, DISABLED))
_STRINGS = repeat(str)  # isinstance's second argument for every role


def _checked_user(*values: Any) -> User:
    """The User of values of the right kinds, once its status and roles are ones a release writes."""
    roles, status = values[5], values[7]
    if status not in _STATUSES:
        raise CorruptRecord("a stored user holds an invalid value in status")
    if roles and not all(map(isinstance, roles, _STRINGS)):
        raise CorruptRecord("a stored user holds an invalid value in roles")
    u = list(values)
    u[5], u[6] = frozenset(roles or ()), values[6] or {}
    return make_user(*u)


#: The :class:`User` a stored row holds (values in the order of User's fields), or a
#: CorruptRecord naming the first field that no release writes.
stored_user = stored_reader(_checked_user, "user", _USER_KINDS)


stored_identity = stored_reader(
    make_user_identity,
    "identity",
    {"issuer": str, "subject": str, "provider": str, "user_id": str, "created_at": datetime},
)
stored_audit_event = stored_reader(
    lambda name, at, user_id, issuer, subject, detail: AuditEvent(
        name, at, user_id, issuer, subject, detail or {}
    ),
    "audit event",
    {
        "name": str,
        "at": datetime,
        "user_id": TEXT,
        "issuer": TEXT,
        "subject": TEXT,
        "detail": (dict, NoneType),
    },
)
