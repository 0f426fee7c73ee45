"""Updating users on later logins: what the mapping writes is written, what it leaves
out is kept, None clears; changes are reported with old and new values."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from _prov_helpers import AuditLog, StubMapping

from federation.mapping import ExistingUser, MappingResult
from federation.storage import MemoryStore
from federation.testing import FrozenClock, MockIdP


def claim_mapping(*on_create: str) -> StubMapping:
    """Attributes from same-named claims; ``on_create`` ones only for a new user (the
    mapping applies update policies: an on_create attribute of an existing user is absent)."""

    def fn(token: Any, existing: ExistingUser | None) -> MappingResult:
        attributes: dict[str, Any] = {}
        for name in ("username", "email", "display_name", "department", "title", "manager"):
            if name in token.claims and (existing is None or name not in on_create):
                attributes[name] = token.claims[name]
        return MappingResult(attributes=attributes)

    return StubMapping(fn)


def test_every_login_writes_what_the_mapping_says(
    login_bridge: Any, idp: MockIdP, store: Any, clock: FrozenClock, audit: AuditLog
) -> None:
    bridge = login_bridge(store, mapping=claim_mapping())
    first = bridge.login(idp.mint(sub="u", display_name="Ada", department="R&D", title="Engineer"))
    clock.advance(120)
    second = bridge.login(idp.mint(sub="u", display_name="Ada King", department="Research", title="Engineer"))
    assert second.user.id == first.user.id and not second.created
    assert second.changes == {
        "display_name": ("Ada", "Ada King"),
        "attributes.department": ("R&D", "Research"),
    }
    assert second.user.display_name == "Ada King"
    assert dict(second.user.attributes) == {"department": "Research", "title": "Engineer"}
    later = datetime.fromtimestamp(clock(), tz=timezone.utc)
    assert second.user.updated_at == later and second.user.last_login_at == later
    assert second.user.created_at == first.user.created_at
    updated = audit.named("user_updated")
    assert len(updated) == 1
    assert updated[0].detail["fields"] == ["attributes.department", "display_name"]
    # what the store holds is what the result says
    again = bridge.login(idp.mint(sub="u", display_name="Ada King", department="Research", title="Engineer"))
    assert again.changes == {}
    assert (again.user.display_name, dict(again.user.attributes)) == (
        "Ada King",
        {"department": "Research", "title": "Engineer"},
    )


def _numbers(token: Any, existing: ExistingUser | None) -> MappingResult:
    return MappingResult(attributes={"big": token.claims["big"], "list": token.claims["list"]})


def test_a_number_the_store_gives_back_in_another_form_is_no_change(
    login_bridge: Any, idp: MockIdP, store: Any, clock: FrozenClock
) -> None:
    """PostgreSQL's JSONB keeps a number as a decimal: a large float came back as an int,
    unequal to the float, and every login rewrote the attribute (and audited it)."""
    bridge = login_bridge(store, mapping=StubMapping(_numbers))
    claims = {"sub": "u", "big": 1.5e308, "list": [1e300, {"x": 2.5e200}]}
    first = bridge.login(idp.mint(claims))
    clock.advance(600)  # past touch_interval: a login that changed nothing writes only its time
    again = bridge.login(idp.mint(claims))
    assert again.changes == {}

    # The same, with the stored values in the form JSONB hands back, whatever the store.
    def decimal(value: float) -> int:  # JSONB's digits of the float's shortest repr
        return int(Decimal(repr(value)))

    as_ints = {"big": decimal(1.5e308), "list": [decimal(1e300), {"x": decimal(2.5e200)}]}
    assert as_ints["big"] != 1.5e308  # unequal to the float, as PostgreSQL hands it back
    with store.transaction() as tx:
        tx.update_user(first.user.id, {"attributes": as_ints})
    clock.advance(600)
    assert bridge.login(idp.mint(claims)).changes == {}
    changed = bridge.login(idp.mint({**claims, "big": 1.25e308}))
    assert set(changed.changes) == {"attributes.big"}


def test_absent_attributes_are_kept(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store, mapping=claim_mapping())
    bridge.login(idp.mint(sub="u", display_name="Ada", department="R&D"))
    second = bridge.login(idp.mint(sub="u"))
    assert second.changes == {}
    assert second.user.display_name == "Ada" and dict(second.user.attributes) == {"department": "R&D"}


def test_none_clears_a_column_and_removes_an_attribute(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store, mapping=claim_mapping())
    bridge.login(idp.mint(sub="u", display_name="Ada", department="R&D", manager="grace"))
    second = bridge.login(idp.mint(sub="u", display_name=None, department="R&D", manager=None))
    # MockIdP drops None claims: send explicit nulls through a mapping instead
    assert second.changes == {}
    clearing = login_bridge(
        store,
        mapping=StubMapping(
            lambda token, existing: MappingResult(attributes={"display_name": None, "manager": None})
        ),
    )
    third = clearing.login(idp.mint(sub="u"))
    assert third.changes == {"display_name": ("Ada", None), "attributes.manager": ("grace", None)}
    assert third.user.display_name is None and dict(third.user.attributes) == {"department": "R&D"}
    fourth = clearing.login(idp.mint(sub="u"))
    assert fourth.changes == {} and fourth.user.display_name is None


def test_on_create_attributes_are_never_overwritten(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store, mapping=claim_mapping("username", "title"))
    first = bridge.login(idp.mint(sub="u", username="ada", title="Engineer", department="R&D"))
    assert first.user.username == "ada"
    second = bridge.login(idp.mint(sub="u", username="ada-renamed", title="CEO", department="Research"))
    assert second.user.username == "ada"
    assert dict(second.user.attributes) == {"title": "Engineer", "department": "Research"}
    assert set(second.changes) == {"attributes.department"}


def test_email_change_recomputes_email_verified(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    # the default mapping copies the token's email; the issuer is trusted to vouch for it
    bridge = login_bridge(store, issuer={"trust_email": True})
    first = bridge.login(idp.mint(sub="u", email="a@example.com", email_verified=True))
    assert first.user.email_verified
    second = bridge.login(idp.mint(sub="u", email="b@example.com", email_verified=False))
    assert second.changes == {
        "email": ("a@example.com", "b@example.com"),
        "email_verified": (True, False),
    }
    third = bridge.login(idp.mint(sub="u", email="b@example.com", email_verified=True))
    assert third.changes == {"email_verified": (False, True)} and third.user.email_verified


def test_no_change_touches_only_the_login_time(
    login_bridge: Any, idp: MockIdP, store: Any, clock: FrozenClock, audit: AuditLog
) -> None:
    bridge = login_bridge(store, mapping=claim_mapping())
    first = bridge.login(idp.mint(sub="u", display_name="Ada"))
    clock.advance(3600)
    second = bridge.login(idp.mint(sub="u", display_name="Ada"))
    assert second.changes == {}
    assert second.user.updated_at == first.user.updated_at
    assert second.user.last_login_at == datetime.fromtimestamp(clock(), tz=timezone.utc)
    assert audit.names() == ["user_created", "login_succeeded", "login_succeeded"]


@pytest.mark.anyio
async def test_async_updates_match_sync_updates(login_bridge: Any, idp: MockIdP, store: Any) -> None:
    bridge = login_bridge(store, mapping=claim_mapping())
    await bridge.alogin(idp.mint(sub="u", display_name="Ada", department="R&D"))
    second = await bridge.alogin(idp.mint(sub="u", display_name="Ada King", department="R&D"))
    assert second.changes == {"display_name": ("Ada", "Ada King")}
    assert bridge.login(idp.mint(sub="u")).user.display_name == "Ada King"


def test_results_are_what_the_store_holds(login_bridge: Any, idp: MockIdP) -> None:
    store = MemoryStore()
    bridge = login_bridge(store, mapping=claim_mapping())
    result = bridge.login(idp.mint(sub="u", display_name="Ada", department="R&D"))
    assert store.users() == [result.user]
    result = bridge.login(idp.mint(sub="u", display_name="Ada King", department="Ops"))
    assert store.users() == [result.user]
