"""Role sync: the mapping's role set is the user's role set afterwards. Authoritative
sync revokes what the groups no longer grant, additive sync never revokes, protected
roles survive both; every change is an audit event."""

from __future__ import annotations

from typing import Any

import pytest
from _prov_helpers import AuditLog, StubMapping, roles_from_groups

from federation.mapping import MappingResult
from federation.storage import MemoryStore
from federation.testing import MockIdP

TABLE = {"staff": "member", "admins": "admin", "finance": "accountant"}


def _role_events(audit: AuditLog) -> list[tuple[str, str]]:
    return [(e.name, e.detail["role"]) for e in audit if e.name in ("role_granted", "role_revoked")]


def test_authoritative_sync_grants_and_revokes(
    login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog
) -> None:
    bridge = login_bridge(store, mapping=roles_from_groups(TABLE))
    first = bridge.login(idp.mint(sub="u", groups=["staff", "admins"]))
    assert first.user.roles == {"member", "admin"} and first.granted == {"member", "admin"}
    second = bridge.login(idp.mint(sub="u", groups=["staff", "finance"]))
    assert second.user.roles == {"member", "accountant"}
    assert second.granted == {"accountant"} and second.revoked == {"admin"}
    assert second.changes["roles"] == (frozenset({"member", "admin"}), frozenset({"member", "accountant"}))
    third = bridge.login(idp.mint(sub="u"))  # no groups at all: every mapped role goes
    assert third.user.roles == frozenset() and third.revoked == {"member", "accountant"}
    assert _role_events(audit) == [
        ("role_granted", "admin"),
        ("role_granted", "member"),
        ("role_granted", "accountant"),
        ("role_revoked", "admin"),
        ("role_revoked", "accountant"),
        ("role_revoked", "member"),
    ]
    assert all(e.user_id == first.user.id for e in audit)


def test_additive_sync_never_revokes(login_bridge: Any, idp: MockIdP, store: Any, audit: AuditLog) -> None:
    bridge = login_bridge(store, mapping=roles_from_groups(TABLE, additive=True))
    bridge.login(idp.mint(sub="u", groups=["admins"]))
    second = bridge.login(idp.mint(sub="u", groups=["staff"]))
    assert second.user.roles == {"admin", "member"} and second.revoked == frozenset()
    third = bridge.login(idp.mint(sub="u"))
    assert third.user.roles == {"admin", "member"} and third.changes == {}
    assert [name for name, _ in _role_events(audit)] == ["role_granted", "role_granted"]


def test_protected_roles_survive_authoritative_sync(login_bridge: Any, idp: MockIdP, audit: AuditLog) -> None:
    """A role granted by the application (here: directly in the store) and protected by the
    mapping is kept although no group maps to it."""
    store = MemoryStore()
    bridge = login_bridge(store, mapping=roles_from_groups(TABLE, protected=frozenset({"owner"})))
    first = bridge.login(idp.mint(sub="u", groups=["staff"]))
    with store.transaction() as tx:
        tx.update_user(first.user.id, {"roles": frozenset({"member", "owner", "stray"})})
    second = bridge.login(idp.mint(sub="u", groups=["admins"]))
    assert second.user.roles == {"owner", "admin"}
    assert second.granted == {"admin"} and second.revoked == {"member", "stray"}
    assert store.users()[0].roles == {"owner", "admin"}


def test_roles_are_written_from_the_final_set_not_the_mappings_deltas(
    login_bridge: Any, idp: MockIdP
) -> None:
    """The stored roles may have changed since the mapping computed its deltas (or a
    mapping may report none): provisioning diffs against what the store holds."""
    store = MemoryStore()
    mapping = StubMapping(lambda token, existing: MappingResult(roles=frozenset({"reader"})))
    bridge = login_bridge(store, mapping=mapping)
    first = bridge.login(idp.mint(sub="u"))
    assert first.granted == {"reader"} and first.user.roles == {"reader"}
    with store.transaction() as tx:
        tx.update_user(first.user.id, {"roles": frozenset({"writer"})})
    second = bridge.login(idp.mint(sub="u"))
    assert (second.granted, second.revoked) == ({"reader"}, {"writer"})


def test_roles_of_one_issuer_do_not_leak_to_another_identity(
    login_bridge: Any, idp: MockIdP, store: Any
) -> None:
    """MAP-09 at the provisioning layer: the same group at another issuer is another user's business."""
    other = MockIdP(issuer="https://other-idp.test", audience="my-client", alg="ES256", clock=idp.clock)

    def scoped(token: Any, existing: Any) -> MappingResult:
        admin = token.issuer == "https://idp.test" and "admins" in token.groups
        return MappingResult(roles=frozenset({"admin"}) if admin else frozenset())

    bridge = login_bridge(store, mapping=StubMapping(scoped), idps=[(other, {})])
    trusted = bridge.login(idp.mint(sub="u", groups=["admins"]))
    stranger = bridge.login(other.mint(sub="u", groups=["admins"]))
    assert trusted.user.roles == {"admin"} and stranger.user.roles == frozenset()
    assert trusted.user.id != stranger.user.id


@pytest.mark.anyio
async def test_async_role_sync(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store, mapping=roles_from_groups(TABLE))
    await bridge.alogin(idp.mint(sub="u", groups=["admins"]))
    second = await bridge.alogin(idp.mint(sub="u", groups=["staff"]))
    assert (second.granted, second.revoked) == ({"member"}, {"admin"})
