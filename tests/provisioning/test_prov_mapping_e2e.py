"""End to end with the real mapping engine: ``federation.yaml`` names a mapping file
(relative to itself) and a store; ``Bridge.login`` verifies, maps and provisions.
Update policies, authoritative and additive role sync, protected roles and deny rules
as a mapping file states them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from _prov_helpers import AuditLog

from federation import Bridge
from federation.errors import AccessDenied, ConfigError
from federation.mapping import Mapping
from federation.storage import MemoryStore
from federation.testing import MockIdP

MAPPING = """\
version: 1
attributes:
  username:
    from: [$username, $email]
    transform: [localpart, lower]
    update: on_create
  email:
    from: $email
  display_name:
    from: name
  nickname:
    from: nickname
    update: if_empty
  department:
    from: department
roles:
  sync: {sync}
  protected: [owner]
  default: [member]
  rules:
    - when: {{claim: $groups, contains: staff}}
      grant: [staff]
    - when: {{claim: $groups, contains: admins}}
      grant: [admin]
deny:
  - when: {{claim: account_status, equals: suspended}}
    code: account_suspended
"""


@pytest.fixture
def make_bridge_from_files(tmp_path: Path, idp: MockIdP, audit: AuditLog) -> Any:
    built: list[Bridge] = []

    def factory(store: Any, sync: str = "authoritative") -> Bridge:
        (tmp_path / "maps").mkdir(exist_ok=True)
        (tmp_path / "maps" / "users.yaml").write_text(MAPPING.format(sync=sync))
        (tmp_path / "federation.yaml").write_text(
            yaml.safe_dump({"issuers": [idp.issuer_config(trust_email=True)], "mapping": "maps/users.yaml"})
        )
        bridge = Bridge.from_file(
            tmp_path / "federation.yaml",
            http_client=idp.client(),
            async_http_client=idp.async_client(),
            clock=idp.clock,
            on_event=lambda e: None,
            store=store,
            audit=audit.append,
        )
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


def test_login_maps_through_the_configured_mapping_file(
    make_bridge_from_files: Any, idp: MockIdP, store: Any
) -> None:
    bridge = make_bridge_from_files(store)
    first = bridge.login(
        idp.mint(
            sub="u",
            email="Ada.Lovelace@Example.com",
            email_verified=True,
            name="Ada",
            nickname="ada",
            department="R&D",
            groups=["staff"],
        )
    )
    user = first.user
    assert first.created
    assert (user.username, user.email, user.display_name) == (
        "ada.lovelace",
        "Ada.Lovelace@Example.com",
        "Ada",
    )
    assert user.email_verified
    assert dict(user.attributes) == {"nickname": "ada", "department": "R&D"}
    assert user.roles == {"member", "staff"}
    assert any(entry.rule == "roles.rules[0]" for entry in first.mapping.trace)

    second = bridge.login(
        idp.mint(
            sub="u",
            email="ada@example.com",
            preferred_username="someone-else",
            name="Ada King",
            nickname="countess",
            department="Computing",
            groups=["admins"],
        )
    )
    assert second.user.username == "ada.lovelace"  # on_create
    assert second.user.attributes["nickname"] == "ada"  # if_empty: not empty
    assert second.changes == {
        "email": ("Ada.Lovelace@Example.com", "ada@example.com"),
        "email_verified": (True, False),
        "display_name": ("Ada", "Ada King"),
        "attributes.department": ("R&D", "Computing"),
        "roles": (frozenset({"member", "staff"}), frozenset({"member", "admin"})),
    }
    assert (second.granted, second.revoked) == ({"admin"}, {"staff"})


def test_protected_roles_survive_authoritative_sync(make_bridge_from_files: Any, idp: MockIdP) -> None:
    store = MemoryStore()
    bridge = make_bridge_from_files(store)
    first = bridge.login(idp.mint(sub="u", groups=["staff"]))
    with store.transaction() as tx:  # the application makes this user an owner
        tx.update_user(first.user.id, {"roles": first.user.roles | {"owner", "legacy"}})
    second = bridge.login(idp.mint(sub="u", groups=[]))
    assert second.user.roles == {"member", "owner"}
    assert second.revoked == {"staff", "legacy"}


def test_additive_sync_never_revokes(make_bridge_from_files: Any, idp: MockIdP, store: Any) -> None:
    bridge = make_bridge_from_files(store, sync="additive")
    bridge.login(idp.mint(sub="u", groups=["admins"]))
    second = bridge.login(idp.mint(sub="u", groups=["staff"]))
    assert second.user.roles == {"member", "admin", "staff"} and second.revoked == frozenset()


def test_deny_rules_refuse_with_their_code(
    make_bridge_from_files: Any, idp: MockIdP, audit: AuditLog
) -> None:
    store = MemoryStore()
    bridge = make_bridge_from_files(store)
    with pytest.raises(AccessDenied) as caught:
        bridge.login(idp.mint(sub="u", account_status="suspended"))
    assert caught.value.code == "access_denied" and caught.value.reason == "account_suspended"
    assert store.users() == []
    assert audit[-1].detail == {"reason": "access_denied", "rule": "account_suspended"}


@pytest.mark.anyio
async def test_alogin_maps_the_same(make_bridge_from_files: Any, idp: MockIdP, store: Any) -> None:
    bridge = make_bridge_from_files(store)
    first = await bridge.alogin(idp.mint(sub="u", groups=["staff", "admins"]))
    assert first.user.roles == {"member", "staff", "admin"}


def test_a_broken_mapping_fails_at_start_up(tmp_path: Path, idp: MockIdP) -> None:
    (tmp_path / "mapping.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        roles:
          sink: additive
    """)
    )
    (tmp_path / "federation.yaml").write_text(
        yaml.safe_dump({"issuers": [idp.issuer_config()], "mapping": "mapping.yaml"})
    )
    with pytest.raises(ConfigError) as caught:
        Bridge.from_file(tmp_path / "federation.yaml", http_client=idp.client())
    assert "mapping.yaml" in str(caught.value)


def test_a_mapping_object_can_be_passed_in(idp: MockIdP) -> None:
    mapping = Mapping.from_yaml(MAPPING.format(sync="authoritative"))
    bridge = idp.bridge(store=MemoryStore(), mapping=mapping, on_event=lambda e: None)
    assert bridge.login(idp.mint(sub="u", groups=["admins"])).user.roles == {"member", "admin"}
