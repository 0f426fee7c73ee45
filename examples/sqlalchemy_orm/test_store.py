"""The ORM store passes federation's storage conformance suite, and logins land in the
application's own ``accounts`` table. Run with ``pytest`` in this directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from models import Account, Base, FederatedIdentity, make_engine
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from store import OrmStore

from federation.errors import AccountDisabled
from federation.testing.pytest_plugin import MockIdPFactory
from federation.testing.storage_conformance import StoreConformance


@pytest.fixture
def orm_store(tmp_path: Path) -> Iterator[OrmStore]:
    engine = make_engine(f"sqlite:///{tmp_path}/app.db")
    Base.metadata.create_all(engine)
    yield OrmStore(sessionmaker(engine, expire_on_commit=False))
    engine.dispose()


class TestOrmStore(StoreConformance):
    """Every check of the storage protocol, against the application's tables."""

    @pytest.fixture
    def store(self, orm_store: OrmStore) -> OrmStore:
        return orm_store


def test_logins_land_in_the_applications_tables(mock_idp: MockIdPFactory, orm_store: OrmStore) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-app")
    bridge = idp.bridge(store=orm_store)
    first = bridge.login(idp.mint(sub="ada", email="ada@example.com", email_verified=True, name="Ada"))
    again = bridge.login(idp.mint(sub="ada", email="ada@example.com", email_verified=True, name="Ada King"))
    assert first.created and not again.created
    assert again.changes == {"display_name": ("Ada", "Ada King")}
    with orm_store.sessions() as session:
        account = session.scalars(select(Account)).one()
        assert (account.id, account.full_name, account.is_active) == (int(first.user.id), "Ada King", True)
        link = session.scalars(select(FederatedIdentity)).one()
        assert (link.issuer, link.subject, link.account_id) == (
            "https://login.example.test",
            "ada",
            account.id,
        )


def test_deprovisioning_flips_the_applications_active_flag(
    mock_idp: MockIdPFactory, orm_store: OrmStore
) -> None:
    idp = mock_idp(issuer="https://login.example.test", audience="my-app")
    bridge = idp.bridge(store=orm_store)
    bridge.login(idp.mint(sub="ada"))
    bridge.deprovision(issuer="https://login.example.test", subject="ada")
    with orm_store.sessions() as session:
        assert session.scalars(select(Account.is_active)).one() is False
    with pytest.raises(AccountDisabled):
        bridge.login(idp.mint(sub="ada"))
