"""The store on Django's ORM keeps the storage and session-store contracts (federation.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from federation import Bridge
from federation.django.session_store import DjangoSessionStore
from federation.django.store import DjangoStore
from federation.testing import MockIdP
from federation.testing.session_conformance import SessionStoreConformance
from federation.testing.storage_conformance import StoreConformance

pytestmark = pytest.mark.django_db(transaction=True)


class TestDjangoStore(StoreConformance):
    @pytest.fixture
    def store(self, bridge: Bridge) -> Iterator[DjangoStore]:
        yield DjangoStore()


class TestDjangoSessionStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self, bridge: Bridge) -> Iterator[DjangoSessionStore]:
        yield DjangoSessionStore()


def test_twenty_concurrent_first_logins_make_one_user(bridge: Bridge, idp: MockIdP) -> None:
    token = idp.mint(sub="concurrent", email="c@example.com", email_verified=True)

    def login(_: int) -> str:
        try:
            return bridge.login(token).user.id
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = set(pool.map(login, range(20)))
    assert len(ids) == 1
    user: Any = get_user_model().objects.get(pk=ids.pop())
    assert user.federated_identities.count() == 1
    assert user.email == "c@example.com"
    assert not user.has_usable_password()


def test_an_async_caller_logs_in_through_worker_threads(bridge: Bridge, idp: MockIdP) -> None:
    from asgiref.sync import async_to_sync

    result = async_to_sync(bridge.alogin)(idp.mint(sub="async-ada", email="async@example.com"))
    again = async_to_sync(bridge.alogin)(idp.mint(sub="async-ada", email="async@example.com"))
    assert result.created and not again.created and result.user.id == again.user.id
    assert get_user_model().objects.filter(pk=result.user.id, email="async@example.com").exists()


def test_a_profile_another_program_damaged_is_a_typed_error(bridge: Bridge, idp: MockIdP) -> None:
    from federation.django.models import FederatedProfile
    from federation.errors import CorruptRecord

    token = idp.mint(sub="damaged", email="d@example.com")
    bridge.login(token)
    table = connections["default"].ops.quote_name(FederatedProfile._meta.db_table)
    for stored in ("[1]", '"text"'):  # JSON, but not the object the attributes are
        with connections["default"].cursor() as cursor:  # past the ORM, as another program writes
            cursor.execute(f"UPDATE {table} SET attributes = %s", [stored])
        with pytest.raises(CorruptRecord) as caught:
            bridge.login(token)
        assert caught.value.code == "corrupt_record" and "attributes" in str(caught.value)
