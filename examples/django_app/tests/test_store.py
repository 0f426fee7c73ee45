"""The store on Django's ORM keeps the storage and session-store contracts (federation.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import CLIENT_ID, SESSION_KEY, federation_config
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


def test_an_email_changed_in_django_is_no_verified_target_for_linking(
    settings: Any, idp: MockIdP, transactional_db: None
) -> None:
    """Account pre-hijacking: the verified flag was kept in the profile and the address in
    the user model, which Django's admin and forms edit. An address changed there must read
    as unverified, so another issuer's verified login for it is refused, not linked."""
    import httpx

    from federation.django import get_bridge, reset_bridge
    from federation.errors import LoginRefused
    from federation.testing import mock_transport

    other = MockIdP(issuer="https://other.example.test", audience=CLIENT_ID, clock=idp.clock)
    config = federation_config(idp, provisioning={"link_by_email": True})
    config["issuers"][0]["trust_email"] = True
    config["issuers"].append({**other.issuer_config(), "name": "other", "trust_email": True})
    settings.FEDERATION = {
        **settings.FEDERATION,
        "config": config,
        "environ": {"SESSION_KEY": SESSION_KEY},
        "bridge_options": {
            "http_client": httpx.Client(transport=mock_transport(idp, other)),
            "clock": idp.clock,
        },
    }
    bridge = get_bridge()
    try:
        mallory = bridge.login(idp.mint(sub="mallory", email="mallory@example.com", email_verified=True)).user
        assert mallory.email_verified
        account: Any = get_user_model().objects.get(pk=mallory.id)
        account.email = "victim@example.com"  # what a profile form or the admin does
        account.save()
        with pytest.raises(LoginRefused) as refused:
            bridge.login(other.mint(sub="victim", email="victim@example.com", email_verified=True))
        assert refused.value.code == "link_refused"
        assert (
            not get_user_model()
            .objects.get(pk=mallory.id)
            .federated_identities.filter(issuer=other.issuer)
            .exists()
        )
        # The user's own next login verifies the address it brings, and linking to it works.
        again = bridge.login(idp.mint(sub="mallory", email="mallory@example.com", email_verified=True)).user
        assert again.email_verified and again.email == "mallory@example.com"
        linked = bridge.login(other.mint(sub="m2", email="mallory@example.com", email_verified=True))
        assert linked.user.id == mallory.id
    finally:
        reset_bridge()
