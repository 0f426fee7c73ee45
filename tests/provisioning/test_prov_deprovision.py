"""Disabled users and deprovisioning: a valid token does not make a disabled user
active (MAP-12); deleting removes the user and every identity."""

from __future__ import annotations

from typing import Any

import pytest
from _prov_helpers import AuditLog, roles_from_groups

from federation.errors import AccountDisabled, LoginRefused
from federation.provisioning import DeprovisionResult
from federation.testing import FrozenClock, MockIdP


def test_disabled_user_is_refused_and_nothing_is_written(
    login_bridge: Any, idp: MockIdP, store: Any, clock: FrozenClock, audit: AuditLog
) -> None:
    bridge = login_bridge(store, mapping=roles_from_groups({"admins": "admin"}))
    first = bridge.login(idp.mint(sub="u", email="a@example.com", groups=["admins"]))
    result = bridge.deprovision(issuer="https://idp.test", subject="u", reason="left")
    assert isinstance(result, DeprovisionResult)
    assert result.action == "disable" and result.changed
    assert result.user.status == "disabled" and not result.user.active
    assert result.identity.key == ("https://idp.test", "u")
    clock.advance(60)
    audit.clear()
    with pytest.raises(AccountDisabled) as caught:
        bridge.login(idp.mint(sub="u", email="changed@example.com", groups=[]))
    exc = caught.value
    assert isinstance(exc, LoginRefused) and exc.code == "account_disabled"
    assert exc.user_id == first.user.id and (exc.issuer, exc.subject) == ("https://idp.test", "u")
    with store.transaction() as tx:
        user = tx.get_user(first.user.id)
    assert user.email == "a@example.com" and user.roles == {"admin"}  # no update, no role sync
    assert user.last_login_at == first.user.last_login_at
    assert audit.names() == ["login_failed"]
    assert audit[0].detail == {"reason": "account_disabled", "rule": "disabled"}


def test_disabling_is_idempotent(login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog) -> None:
    bridge = login_bridge(store)
    bridge.login(idp.mint(sub="u"))
    assert bridge.deprovision(issuer="https://idp.test", subject="u").action == "disable"
    again = bridge.deprovision(issuer="https://idp.test", subject="u")
    assert again is not None and again.action == "none" and not again.changed
    assert audit.names().count("user_disabled") == 1


def test_disabling_one_identity_disables_the_user_for_all(
    login_bridge: Any, idp: MockIdP, store: Any, clock: FrozenClock
) -> None:
    partner = MockIdP(issuer="https://partner-idp.test", audience="my-client", alg="ES256", clock=clock)
    bridge = login_bridge(
        store,
        provisioning={"link_by_email": True},
        issuer={"trust_email": True},
        idps=[(partner, {"trust_email": True})],
    )
    bridge.login(idp.mint(sub="u", email="a@corp.example", email_verified=True))
    linked = bridge.login(partner.mint(sub="p", email="a@corp.example", email_verified=True))
    assert linked.linked
    bridge.deprovision(issuer="https://partner-idp.test", subject="p")
    with pytest.raises(AccountDisabled):
        bridge.login(idp.mint(sub="u"))


def test_delete_removes_the_user_and_every_identity(
    login_bridge: Any, idp: MockIdP, store: Any, clock: FrozenClock, audit: AuditLog
) -> None:
    partner = MockIdP(issuer="https://partner-idp.test", audience="my-client", alg="ES256", clock=clock)
    bridge = login_bridge(
        store,
        provisioning={"link_by_email": True},
        issuer={"trust_email": True},
        idps=[(partner, {"trust_email": True})],
    )
    first = bridge.login(idp.mint(sub="u", email="a@corp.example", email_verified=True))
    bridge.login(partner.mint(sub="p", email="a@corp.example", email_verified=True))
    keeper = bridge.login(idp.mint(sub="other"))
    audit.clear()
    result = bridge.deprovision(issuer="https://idp.test", subject="u", mode="delete", reason="gdpr")
    assert result is not None and result.action == "delete" and result.user.id == first.user.id
    assert [(e.name, e.user_id, e.detail.get("reason")) for e in audit] == [
        ("user_deleted", first.user.id, "gdpr")
    ]
    with store.transaction() as tx:
        assert tx.get_user(first.user.id) is None
        assert tx.find_identity("https://idp.test", "u") is None
        assert tx.find_identity("https://partner-idp.test", "p") is None
        assert tx.get_user(keeper.user.id) is not None
    # the identity is gone: a later login is a stranger's first login
    again = bridge.login(idp.mint(sub="u"))
    assert again.created and again.user.id != first.user.id


def test_unknown_identity_is_not_an_error(login_bridge: Any, store: Any, audit: AuditLog) -> None:
    bridge = login_bridge(store)
    assert bridge.deprovision(issuer="https://idp.test", subject="nobody") is None
    assert bridge.deprovision(issuer="https://idp.test", subject="nobody", mode="delete") is None
    assert audit == []


def test_unknown_mode_is_refused(login_bridge: Any, store: Any) -> None:
    bridge = login_bridge(store)
    with pytest.raises(ValueError, match="mode"):
        bridge.deprovision(issuer="https://idp.test", subject="u", mode="archive")


@pytest.mark.anyio
async def test_async_deprovisioning(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store)
    created = await bridge.alogin(idp.mint(sub="u"))
    disabled = await bridge.adeprovision(issuer="https://idp.test", subject="u")
    assert disabled is not None and disabled.action == "disable"
    with pytest.raises(AccountDisabled):
        await bridge.alogin(idp.mint(sub="u"))
    deleted = await bridge.adeprovision(issuer="https://idp.test", subject="u", mode="delete")
    assert deleted is not None and deleted.user.id == created.user.id
    assert await bridge.adeprovision(issuer="https://idp.test", subject="u") is None
    with pytest.raises(ValueError, match="mode"):
        await bridge.adeprovision(issuer="https://idp.test", subject="u", mode="archive")
