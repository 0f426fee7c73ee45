"""An application's own user model (SQLAlchemy 2 ORM), as it existed before federation.

Nothing here knows about federation-bridge except ``FederatedIdentity``, the one table
an application adds: the link from an external identity (issuer, subject) to an account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, create_engine, event, func
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Account(Base):
    """The application's users: integer ids, a full name, an active flag, a JSON profile."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str | None] = mapped_column(String(255), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(default=False)
    full_name: Mapped[str | None] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(default=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    roles: Mapped[list[AccountRole]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )
    identities: Mapped[list[FederatedIdentity]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )


# Linking by email looks accounts up by lower(email): index exactly that expression.
Index("ix_accounts_email_lower", func.lower(Account.email))


class AccountRole(Base):
    __tablename__ = "account_roles"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    account: Mapped[Account] = relationship(back_populates="roles")


class FederatedIdentity(Base):
    """The table federation needs: (issuer, subject) is the primary key, so a second
    insert of the same identity fails; that is what makes first logins atomic."""

    __tablename__ = "federated_identities"

    issuer: Mapped[str] = mapped_column(String(1024), primary_key=True)
    subject: Mapped[str] = mapped_column(String(1024), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    account: Mapped[Account] = relationship(back_populates="identities")


def make_engine(url: str) -> Engine:
    """The application's engine. For SQLite, the SQLAlchemy recipe that lets it lock:
    the driver's own transaction handling is turned off and every transaction begins
    with BEGIN IMMEDIATE (one writer at a time). PostgreSQL needs nothing: the store
    locks rows with SELECT ... FOR UPDATE."""
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
