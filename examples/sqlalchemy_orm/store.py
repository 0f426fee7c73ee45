"""federation-bridge's storage protocol over the application's own ORM model.

Eight methods inside a transaction; each translates between the protocol's records
(``User``, ``UserIdentity``, ``NewUser``) and the application's ``Account``:

    protocol field   Account column
    --------------   --------------------------------
    id (str)         id (int)
    display_name     full_name
    status           is_active ("active" / "disabled")
    roles            the account_roles rows
    attributes       profile (JSON)

Check it with ``federation.testing.storage_conformance`` (see test_store.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from models import Account, AccountRole, FederatedIdentity
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from federation.errors import DuplicateIdentity, StorageConflict
from federation.storage import NewUser, User, UserIdentity


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were written as UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _user(account: Account) -> User:
    return User(
        id=str(account.id),
        username=account.username,
        email=account.email,
        email_verified=account.email_verified,
        display_name=account.full_name,
        roles=frozenset(role.name for role in account.roles),
        attributes=dict(account.profile or {}),
        status="active" if account.is_active else "disabled",
        created_at=_utc(account.created_at),  # type: ignore[arg-type]
        updated_at=_utc(account.updated_at),  # type: ignore[arg-type]
        last_login_at=_utc(account.last_login_at),
    )


def _identity(row: FederatedIdentity) -> UserIdentity:
    return UserIdentity(row.issuer, row.subject, row.provider, str(row.account_id), _utc(row.created_at))  # type: ignore[arg-type]


def _account_id(user_id: str) -> int | None:
    return int(user_id) if user_id.isdigit() else None  # ids from elsewhere simply do not exist


class OrmTransaction:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find_identity(self, issuer: str, subject: str) -> UserIdentity | None:
        row = self.session.get(FederatedIdentity, (issuer, subject))
        return None if row is None else _identity(row)

    def _account(self, user_id: str) -> Account | None:
        account_id = _account_id(user_id)
        if account_id is None:
            return None
        return self.session.get(Account, account_id, with_for_update=True)

    def get_user(self, user_id: str) -> User | None:
        account = self._account(user_id)
        return None if account is None else _user(account)

    def find_users_by_email(self, email_key: str) -> Sequence[User]:
        query = (
            select(Account)
            .where(func.lower(Account.email) == email_key)
            .order_by(Account.id)
            .with_for_update()
        )
        return [_user(a) for a in self.session.scalars(query)]

    def identities_of(self, user_id: str) -> Sequence[UserIdentity]:
        account_id = _account_id(user_id)
        query = (
            select(FederatedIdentity)
            .where(FederatedIdentity.account_id == account_id)
            .order_by(FederatedIdentity.issuer, FederatedIdentity.subject)
        )
        return [_identity(row) for row in self.session.scalars(query)]

    def insert_user(self, user: NewUser) -> str:
        account = Account(
            username=user.username,
            email=user.email,
            email_verified=user.email_verified,
            full_name=user.display_name,
            is_active=user.status == "active",
            profile=dict(user.attributes),
            created_at=user.created_at,
            updated_at=user.updated_at,
            last_login_at=user.last_login_at,
            roles=[AccountRole(name=name) for name in sorted(user.roles)],
        )
        self.session.add(account)
        self.session.flush()  # assigns the id
        return str(account.id)

    def update_user(self, user_id: str, changes: Mapping[str, Any]) -> None:
        account = self._account(user_id)
        if account is None:
            raise LookupError("no such user")
        columns = {"display_name": "full_name", "attributes": "profile"}
        for name, value in changes.items():
            if name == "roles":
                account.roles = [AccountRole(name=role) for role in sorted(value)]
            elif name == "status":
                account.is_active = value == "active"
            elif name == "attributes":
                account.profile = dict(value)
            else:
                setattr(account, columns.get(name, name), value)
        self.session.flush()

    def insert_identity(self, identity: UserIdentity) -> None:
        self.session.add(
            FederatedIdentity(
                issuer=identity.issuer,
                subject=identity.subject,
                provider=identity.provider,
                account_id=int(identity.user_id),
                created_at=identity.created_at,
            )
        )
        try:
            self.session.flush()
        except IntegrityError as exc:  # the primary key: a concurrent first login won
            raise DuplicateIdentity("identity already linked") from exc

    def delete_user(self, user_id: str) -> None:
        account = self._account(user_id)
        if account is not None:
            self.session.delete(account)  # cascades to roles and identities
            self.session.flush()


class OrmStore:
    """The storage protocol over ``Account``; pass the application's sessionmaker."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @contextmanager
    def transaction(self) -> Iterator[OrmTransaction]:
        try:
            with self.sessions.begin() as session:  # commit at the end, rollback on error
                yield OrmTransaction(session)
        except OperationalError as exc:
            if "locked" in str(exc.orig):  # SQLite waited busy_timeout in vain
                raise StorageConflict("database locked") from exc
            raise
