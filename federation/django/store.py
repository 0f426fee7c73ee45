"""The storage protocol over ``settings.AUTH_USER_MODEL``: users are Django's users.

Owns: :class:`DjangoStore`, how a federation :class:`~federation.storage.User`
lives in Django (the user model's own columns where it has them, the rest in
:class:`~federation.django.models.FederatedProfile`, roles as Django groups),
the unique Django username a new user gets, and the privilege flags the roles
decide.

A user's fields, in Django:

* ``username`` (the mapped one): the profile. Django's ``USERNAME_FIELD`` is
  set once, at creation, to ``<mapped name or email's local part>-<10 hex>``:
  unique, and never a name an identity provider could squat (``admin``).
* ``email``: the user model's email field (``""`` for none); ``status``:
  ``is_active``; ``created_at``: ``date_joined``; ``last_login_at``: ``last_login``.
* ``email_verified``, ``display_name``, ``attributes``, ``updated_at``: the
  profile. ``email_verified`` holds only for the address it was written for
  (``verified_email``): an address changed in Django (admin, a profile form) reads
  as unverified, so it can never be the verified target of linking by email.
  Attributes named in ``user_fields`` are copied to those columns too (cut to
  the column's length: the whole value stays in ``attributes``).
* ``roles``: the names of the user's groups, created when missing. With
  ``flags`` (``{"is_staff": roles, "is_superuser": roles}``) each listed flag
  is true exactly when the user holds one of its roles; unlisted flags are
  never written.

Locking as the protocol asks: ``SELECT ... FOR UPDATE`` of the user rows on
PostgreSQL, a unique index on (issuer, subject) whose violation is
:class:`~federation.errors.DuplicateIdentity`; on SQLite one transaction at a
time (see :mod:`federation.django._db`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, transaction

from ..errors import CorruptRecord, DuplicateIdentity, StorageConflict, StorageError
from ..storage import ACTIVE, DISABLED, USER_FIELDS, AuditEvent, NewUser, User, UserIdentity, email_key
from . import _db
from .models import AuditRecord, FederatedIdentity, FederatedProfile

if TYPE_CHECKING:
    from collections.abc import Callable

    from .session_store import DjangoSessionStore

__all__ = ["DjangoStore"]

_NAME_CHARACTERS = re.compile(r"[^\w.@+-]", re.ASCII)
GROUP_NAME_MAX = 150  # django.contrib.auth.models.Group.name


def _verified(profile: FederatedProfile, email: str | None) -> bool:
    """``email_verified`` as it holds for the user's current address (none included)."""
    return bool(profile.email_verified) and profile.verified_email == (email or None)


def _profile_of(user: Any) -> FederatedProfile | None:
    try:
        profile = user.federation_profile
    except FederatedProfile.DoesNotExist:
        return None
    return profile if isinstance(profile, FederatedProfile) else None


class DjangoStore:
    """Users in ``AUTH_USER_MODEL``, identities and profiles in the ``federation`` app's tables.

    ``using`` is the database alias; ``flags`` maps ``is_staff`` /
    ``is_superuser`` to the roles that grant each; ``user_fields`` names the
    user columns mapped attributes of the same name are copied to.
    """

    def __init__(
        self,
        *,
        using: str = "default",
        flags: Mapping[str, Collection[str]] | None = None,
        user_fields: Sequence[str] = ("first_name", "last_name"),
    ) -> None:
        self.using = using
        self.flags = {name: frozenset(roles) for name, roles in (flags or {}).items()}
        unknown = set(self.flags) - {"is_staff", "is_superuser"}
        if unknown:
            raise ValueError(f"flags may only be is_staff and is_superuser, not {sorted(unknown)}")
        self.user_fields = tuple(user_fields)
        self._sessions: DjangoSessionStore | None = None

    def __repr__(self) -> str:
        return f"DjangoStore(using={self.using!r})"

    # -- the user model ------------------------------------------------------------------

    @property
    def user_model(self) -> Any:
        """``settings.AUTH_USER_MODEL``'s class."""
        return get_user_model()

    def _users(self) -> Any:
        return self.user_model._default_manager.db_manager(self.using)

    def _pk(self, user_id: str) -> Any:
        """The user model's key for ``user_id``, or None when no user can have it."""
        try:
            return self.user_model._meta.pk.to_python(user_id)
        except (ValidationError, ValueError, TypeError):
            return None

    def user_of(self, user_id: str) -> Any:
        """The Django user with this id, or None (no lock)."""
        pk = self._pk(user_id)
        if pk is None:
            return None
        with _db.db_errors(self.using):
            return self._users().filter(pk=pk).first()

    def to_user(self, django_user: Any) -> User:
        """The federation view of a Django user (one query for its groups)."""
        model = self.user_model
        profile = _profile_of(django_user)
        email = getattr(django_user, model.get_email_field_name(), None) or None
        joined = _db.from_db(getattr(django_user, "date_joined", None)) or datetime.now(timezone.utc)
        roles = frozenset(django_user.groups.values_list("name", flat=True))
        if profile is not None:
            display_name = profile.display_name
            updated = _db.from_db(profile.updated_at) or joined
            # what no release writes (JSON that Django hands back as text when it does not parse)
            if not isinstance(profile.attributes, dict):
                raise CorruptRecord("a stored federated profile holds invalid attributes")
            if type(profile.email_verified) is not bool:
                raise CorruptRecord("a stored federated profile holds an invalid email_verified")
        else:  # a Django user the bridge has not written yet
            full_name = getattr(django_user, "get_full_name", None)
            display_name = (full_name() if callable(full_name) else None) or None
            updated = joined
        return User(
            id=str(django_user.pk),
            username=profile.username if profile is not None else django_user.get_username(),
            email=email,
            email_verified=profile is not None and _verified(profile, email),
            display_name=display_name,
            roles=roles,
            attributes=dict(profile.attributes) if profile is not None else {},
            status=ACTIVE if getattr(django_user, "is_active", True) else DISABLED,
            created_at=joined,
            updated_at=updated,
            last_login_at=_db.from_db(getattr(django_user, "last_login", None)),
        )

    # -- the storage protocol ------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[_DjangoTransaction]:
        """One database transaction on ``using`` (see the module docstring for the locking)."""
        try:
            with _db.atomic(self.using):
                yield _DjangoTransaction(self)
        except StorageError as exc:
            if not isinstance(exc, StorageConflict) and isinstance(exc.__cause__, IntegrityError):
                # Foreign keys are checked at commit: a row this login refers to went meanwhile.
                raise StorageConflict("a row this login refers to was removed concurrently") from exc
            raise

    def find_login(self, issuer: str, subject: str) -> tuple[UserIdentity, User | None] | None:
        """The identity and its user, read outside any transaction (provisioning re-reads under lock)."""
        with _db.db_errors(self.using):
            row = (
                FederatedIdentity.objects.using(self.using)
                .select_related("user", "user__federation_profile")
                .filter(issuer=issuer, subject=subject)
                .first()
            )
            if row is None:
                return None
            return _identity(row), self.to_user(row.user)

    def read_user(self, user_id: str) -> User | None:
        """The user, read outside any transaction (the per-request status check)."""
        pk = self._pk(user_id)
        if pk is None:
            return None
        with _db.db_errors(self.using):
            found = self._users().select_related("federation_profile").filter(pk=pk).first()
            return None if found is None else self.to_user(found)

    def session_store(self) -> DjangoSessionStore:
        """The session store on the ``federation`` app's session tables (one per store)."""
        if self._sessions is None:
            from .session_store import DjangoSessionStore

            self._sessions = DjangoSessionStore(using=self.using)
        return self._sessions

    # -- audit ------------------------------------------------------------------------------

    def write_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events to the audit table, in one transaction."""
        if not events:
            return
        rows = [
            AuditRecord(
                at=_db.to_db(e.at),
                name=e.name,
                user_id=e.user_id,
                issuer=e.issuer,
                subject=e.subject,
                detail=dict(e.detail),
            )
            for e in events
        ]
        with _db.atomic(self.using):
            AuditRecord.objects.using(self.using).bulk_create(rows)

    def audit_sink(self) -> Callable[[AuditEvent], None]:
        """A sink writing each event to the audit table (``audit: store``)."""

        def sink(event: AuditEvent) -> None:
            self.write_audit([event])

        return sink

    # -- writing a user's fields -------------------------------------------------------------

    def _username_for(self, user: NewUser) -> str:
        base = user.username or (user.email.partition("@")[0] if user.email else "") or "fed"
        clean = _NAME_CHARACTERS.sub("", base)[:100] or "fed"
        return f"{clean}-{secrets.token_hex(5)}"

    def _copy_attributes(self, django_user: Any, attributes: Mapping[str, Any]) -> list[str]:
        changed = []
        for name in self.user_fields:
            try:
                column = django_user._meta.get_field(name)
            except FieldDoesNotExist:  # a custom user model without it
                continue
            value = attributes.get(name)
            text = "" if value is None else str(value)
            limit = getattr(column, "max_length", None)
            if limit:
                text = text[:limit]
            if getattr(django_user, name, None) != text:
                setattr(django_user, name, text)
                changed.append(name)
        return changed

    def _set_roles(self, django_user: Any, roles: frozenset[str]) -> list[str]:
        """The user's groups become exactly ``roles``; returns the flag columns that changed."""
        long = [r for r in roles if len(r) > GROUP_NAME_MAX]
        if long:
            raise StorageError(f"a role name is longer than a Django group name may be ({GROUP_NAME_MAX})")
        groups = Group.objects.using(self.using)
        if roles:
            groups.bulk_create([Group(name=name) for name in sorted(roles)], ignore_conflicts=True)
        django_user.groups.set(list(groups.filter(name__in=roles)))
        changed = []
        for flag, granting in self.flags.items():
            value = not granting.isdisjoint(roles)
            if getattr(django_user, flag, None) != value:
                setattr(django_user, flag, value)
                changed.append(flag)
        return changed


class _DjangoTransaction:
    """The storage protocol's operations inside one :func:`~federation.django._db.atomic` block."""

    def __init__(self, store: DjangoStore) -> None:
        self._store = store
        self._using = store.using

    def _locked(self, **where: Any) -> list[Any]:
        """The users matching ``where``, locked, then read with their profiles.

        Two statements: ``FOR UPDATE`` of the user rows alone waits for other
        writers; the read after it sees what they committed (READ COMMITTED
        takes a new snapshot per statement), profile included. One joined
        ``SELECT ... FOR UPDATE`` would re-check only the locked user row and
        hand back the profile as it was before the wait: a lost update.
        """
        users = self._store._users()
        keys = list(users.select_for_update().filter(**where).values_list("pk", flat=True))
        if not keys:
            return []
        return list(users.select_related("federation_profile").filter(pk__in=keys))

    def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        row = FederatedIdentity.objects.using(self._using).filter(issuer=issuer, subject=subject).first()
        return None if row is None else _identity(row)

    def get_user(self, user_id: str) -> User | None:
        pk = self._store._pk(user_id)
        found = [] if pk is None else self._locked(pk=pk)
        return self._store.to_user(found[0]) if found else None

    def find_users_by_email(self, email_key_: str) -> Sequence[User]:
        model = self._store.user_model
        email_field = model.get_email_field_name()
        order = ["date_joined", "pk"] if _has_field(model, "date_joined") else ["pk"]
        # iexact finds every ASCII spelling (and maybe more); the exact canonical key decides.
        candidates = sorted(
            self._locked(**{f"{email_field}__iexact": email_key_}),
            key=lambda u: tuple(getattr(u, name) for name in order),
        )
        return [
            self._store.to_user(u)
            for u in candidates
            if email_key(getattr(u, email_field, None)) == email_key_
        ]

    def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        pk = self._store._pk(user_id)
        if pk is None:
            return []
        rows = FederatedIdentity.objects.using(self._using).filter(user_id=pk).order_by("issuer", "subject")
        return [_identity(row) for row in rows]

    def insert_user(self, user: NewUser) -> str:
        store = self._store
        model = store.user_model
        django_user = model(**{model.USERNAME_FIELD: store._username_for(user)})
        email_field = model.get_email_field_name()
        if email_field != model.USERNAME_FIELD:
            setattr(django_user, email_field, user.email or "")
        django_user.is_active = user.status == ACTIVE
        if _has_field(model, "date_joined"):
            django_user.date_joined = _db.to_db(user.created_at)
        django_user.last_login = _db.to_db(user.last_login_at)
        django_user.set_unusable_password()
        store._copy_attributes(django_user, user.attributes)
        for flag, granting in store.flags.items():
            setattr(django_user, flag, not granting.isdisjoint(user.roles))
        django_user.save(using=self._using)
        FederatedProfile.objects.using(self._using).create(
            user=django_user,
            username=user.username,
            email_verified=user.email_verified,
            verified_email=(user.email or None) if user.email_verified else None,
            display_name=user.display_name,
            attributes=dict(user.attributes),
            updated_at=_db.to_db(user.updated_at),
        )
        store._set_roles(django_user, user.roles)
        return str(django_user.pk)

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        unknown = set(changes) - USER_FIELDS
        if unknown:
            raise ValueError(f"not user fields: {sorted(unknown)}")
        if not changes:
            return
        store = self._store
        pk = store._pk(user_id)
        found = [] if pk is None else self._locked(pk=pk)
        if not found:
            return
        django_user = found[0]
        profile = _profile_of(django_user)
        if profile is None:  # a Django user linked by email: its profile starts now
            profile = FederatedProfile(user=django_user, updated_at=_db.to_db(datetime.now(timezone.utc)))
        columns: list[str] = []
        email_field = store.user_model.get_email_field_name()
        if "email" in changes or "email_verified" in changes:
            # Provisioning compared with what to_user read (the flag of the current address).
            current = getattr(django_user, email_field, None) or None
            email = changes.get("email", current)
            verified = changes.get("email_verified", _verified(profile, current))
            profile.email_verified = bool(verified)
            profile.verified_email = (email or None) if verified else None
        for name, value in changes.items():
            if name in ("username", "email_verified", "display_name"):
                setattr(profile, name, value)
            elif name == "attributes":
                profile.attributes = dict(value)
                columns += store._copy_attributes(django_user, value)
            elif name == "updated_at":
                profile.updated_at = _db.to_db(value)
            elif name == "email":
                setattr(django_user, email_field, value or "")
                columns.append(email_field)
            elif name == "status":
                django_user.is_active = value == ACTIVE
                columns.append("is_active")
            elif name == "last_login_at":
                django_user.last_login = _db.to_db(value)
                columns.append("last_login")
            elif name == "roles":
                columns += store._set_roles(django_user, frozenset(value))
        if columns:
            django_user.save(using=self._using, update_fields=sorted(set(columns)))
        profile.save(using=self._using)

    def insert_identity(self, identity: UserIdentity) -> None:
        pk = self._store._pk(identity.user_id)
        try:
            with transaction.atomic(using=self._using):  # a savepoint: the caller's rows stay
                FederatedIdentity.objects.using(self._using).create(
                    issuer=identity.issuer,
                    subject=identity.subject,
                    provider=identity.provider,
                    user_id=pk,
                    created_at=_db.to_db(identity.created_at),
                )
        except IntegrityError as exc:
            # Foreign keys are deferred to commit in Django's schema: here it is the unique key.
            raise DuplicateIdentity("the identity is already linked") from exc

    def delete_user(self, user_id: str) -> None:
        pk = self._store._pk(user_id)
        if pk is not None:
            self._store._users().filter(pk=pk).delete()  # identities and profile cascade


def _has_field(model: Any, name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def _identity(row: FederatedIdentity) -> UserIdentity:
    return UserIdentity(
        issuer=row.issuer,
        subject=row.subject,
        provider=row.provider,
        user_id=str(row.user_id),
        created_at=_db.from_db(row.created_at) or datetime.now(timezone.utc),
    )
