"""Audit events: names, order and contents for every outcome; the sinks (logging by
default, the SQL audit table, a callback); a broken sink never breaks a login; and no
event ever carries the token."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import pytest
from _prov_helpers import AuditLog, StubMapping, roles_from_groups

from federation.errors import AccessDenied, InvalidToken, LinkRefused
from federation.mapping import MappingResult
from federation.storage import (
    AUDIT_EVENTS,
    SESSION_AUDIT_EVENTS,
    AuditEvent,
    MemoryStore,
    fan_out,
    log_audit,
)
from federation.testing import FrozenClock, MockIdP


def _dump(events: list[AuditEvent]) -> str:
    return json.dumps([e.as_dict() for e in events])


def test_a_users_life_in_events(login_bridge: Any, idp: MockIdP, clock: FrozenClock, audit: AuditLog) -> None:
    partner = MockIdP(issuer="https://partner-idp.test", audience="my-client", alg="ES256", clock=clock)
    mapping = roles_from_groups({"staff": "member", "admins": "admin"})
    bridge = login_bridge(
        MemoryStore(),
        mapping=mapping,
        provisioning={"link_by_email": True},
        issuer={"trust_email": True},
        idps=[(partner, {"trust_email": True})],
    )
    tokens = [
        idp.mint(sub="u", email="a@corp.example", email_verified=True, groups=["staff"]),
        idp.mint(sub="u", email="b@corp.example", email_verified=True, groups=["admins"]),
        partner.mint(sub="p", email="b@corp.example", email_verified=True, groups=["admins"]),
    ]
    created = bridge.login(tokens[0])
    uid = created.user.id
    bridge.login(tokens[1])
    bridge.login(tokens[2])
    bridge.deprovision(issuer="https://idp.test", subject="u", reason="offboarded")
    with pytest.raises(Exception, match="disabled"):
        bridge.login(tokens[1])
    bridge.deprovision(issuer="https://idp.test", subject="u", mode="delete")

    home, other = ("https://idp.test", "u"), ("https://partner-idp.test", "p")
    assert [(e.name, (e.issuer, e.subject), e.user_id, dict(e.detail)) for e in audit] == [
        ("user_created", home, uid, {"provider": "oidc"}),
        ("role_granted", home, uid, {"role": "member"}),
        ("login_succeeded", home, uid, {"created": True, "linked": False}),
        ("user_updated", home, uid, {"fields": ["email"]}),
        ("role_granted", home, uid, {"role": "admin"}),
        ("role_revoked", home, uid, {"role": "member"}),
        ("login_succeeded", home, uid, {"created": False, "linked": False}),
        ("identity_linked", other, uid, {"via": "email", "provider": "oidc"}),
        ("login_succeeded", other, uid, {"created": False, "linked": True}),
        ("user_disabled", home, uid, {"reason": "offboarded"}),
        ("login_failed", home, uid, {"reason": "account_disabled", "rule": "disabled"}),
        ("user_deleted", home, uid, {}),
    ]
    # the session layer's events are tests/sessions' concern; a user's life in logins makes the rest
    assert {e.name for e in audit} == set(AUDIT_EVENTS) - set(SESSION_AUDIT_EVENTS)
    assert all(e.at == datetime.fromtimestamp(clock(), tz=timezone.utc) for e in audit)
    dumped = _dump(audit)
    for token in tokens:
        for part in token.split("."):
            assert part not in dumped
    assert "corp.example" not in dumped  # attribute values (emails) are not audited


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda idp: idp.mint(sub="u", expired=True), "expired"),
        (lambda idp: idp.mint(sub="u", aud="someone-else"), "invalid_audience"),
        (lambda idp: idp.mint(sub="u", kid="not-published"), "unknown_key"),
        (lambda idp: "not-a-token", "malformed"),
    ],
)
def test_rejected_tokens_are_audited_with_their_code(
    login_bridge: Any, idp: MockIdP, audit: AuditLog, make_token: Any, reason: str
) -> None:
    bridge = login_bridge(MemoryStore())
    token = make_token(idp)
    with pytest.raises(InvalidToken):
        bridge.login(token)
    assert [(e.name, e.detail["reason"], e.user_id, e.subject) for e in audit] == [
        ("login_failed", reason, None, None)
    ]
    if reason != "malformed":
        assert audit[0].issuer == "https://idp.test"
    assert token not in _dump(audit)


@pytest.mark.anyio
async def test_async_rejections_are_audited(login_bridge: Any, idp: MockIdP, audit: AuditLog) -> None:
    bridge = login_bridge(MemoryStore())
    with pytest.raises(InvalidToken):
        await bridge.alogin(idp.mint(sub="u", expired=True))
    assert audit.names() == ["login_failed"] and audit[0].detail["reason"] == "expired"


def test_deny_rules_are_audited_with_the_rules_code(login_bridge: Any, idp: MockIdP, audit: AuditLog) -> None:
    mapping = StubMapping(lambda token, existing: MappingResult(denied="contractor_offboarded"))
    store = MemoryStore()
    bridge = login_bridge(store, mapping=mapping)
    with pytest.raises(AccessDenied) as caught:
        bridge.login(idp.mint(sub="u"))
    exc = caught.value
    assert exc.code == "access_denied" and exc.reason == "contractor_offboarded"
    assert (exc.issuer, exc.subject, exc.user_id) == ("https://idp.test", "u", None)
    assert store.users() == []
    assert [(e.name, dict(e.detail)) for e in audit] == [
        ("login_failed", {"reason": "access_denied", "rule": "contractor_offboarded"})
    ]


def test_deny_rules_apply_to_existing_users_without_writing(
    login_bridge: Any, idp: MockIdP, audit: AuditLog
) -> None:
    store = MemoryStore()
    created = login_bridge(store).login(idp.mint(sub="u", name="Ada"))
    deny = StubMapping(lambda token, existing: MappingResult(attributes={"display_name": "X"}, denied="nope"))
    with pytest.raises(AccessDenied) as caught:
        login_bridge(store, mapping=deny).login(idp.mint(sub="u"))
    assert caught.value.user_id == created.user.id
    assert store.users() == [created.user]


def test_link_refusals_are_audited(
    login_bridge: Any, idp: MockIdP, clock: FrozenClock, audit: AuditLog
) -> None:
    partner = MockIdP(issuer="https://partner-idp.test", audience="my-client", alg="ES256", clock=clock)
    store = MemoryStore()
    login_bridge(store).login(idp.mint(sub="u", email="a@corp.example", email_verified=True))
    audit.clear()
    bridge = login_bridge(store, provisioning={"link_by_email": True}, idps=[(partner, {})])
    with pytest.raises(LinkRefused):
        bridge.login(partner.mint(sub="p", email="a@corp.example", email_verified=True))
    assert [(e.name, e.issuer, e.subject, dict(e.detail)) for e in audit] == [
        (
            "login_failed",
            "https://partner-idp.test",
            "p",
            {"reason": "link_refused", "rule": "issuer_not_trusted"},
        )
    ]


def test_logging_is_the_default_sink(idp: MockIdP, caplog: pytest.LogCaptureFixture) -> None:
    bridge = idp.bridge(store=MemoryStore(), on_event=lambda e: None)
    with caplog.at_level(logging.INFO, logger="federation.audit"):
        result = bridge.login(idp.mint(sub="u"))
        with pytest.raises(InvalidToken):
            bridge.login(idp.mint(sub="u", expired=True))
    records = [r for r in caplog.records if r.name == "federation.audit"]
    assert [r.federation_audit["name"] for r in records] == [
        "user_created",
        "login_succeeded",
        "login_failed",
    ]  # type: ignore[attr-defined]
    assert records[-1].levelno == logging.WARNING and records[0].levelno == logging.INFO
    assert result.user.id in records[0].getMessage()


def test_the_sql_store_keeps_an_audit_table(idp: MockIdP, make_store: Any) -> None:
    store = make_store("sqlite")
    bridge = idp.bridge(store=store, audit="store", on_event=lambda e: None)
    token = idp.mint(sub="u")
    result = bridge.login(token)
    with pytest.raises(InvalidToken):
        bridge.login(idp.mint(sub="u", expired=True))
    tail = store.audit_tail(10)
    assert [e.name for e in tail] == ["user_created", "login_succeeded", "login_failed"]
    assert tail[0].user_id == result.user.id and tail[0].at == result.user.created_at
    assert tail[-1].detail == {"reason": "expired"}
    assert [e.name for e in store.audit_tail(1)] == ["login_failed"]


def test_audit_store_needs_a_store_with_an_audit_table(idp: MockIdP) -> None:
    from federation.errors import ConfigError

    bridge = idp.bridge(store=MemoryStore(), audit="store")
    with pytest.raises(ConfigError, match="audit"):
        bridge.login(idp.mint(sub="u"))


def test_a_broken_sink_never_breaks_a_login(idp: MockIdP, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: AuditEvent) -> None:
        raise RuntimeError("sink down")

    seen: list[AuditEvent] = []
    bridge = idp.bridge(store=MemoryStore(), audit=fan_out(broken, seen.append), on_event=lambda e: None)
    with caplog.at_level(logging.ERROR, logger="federation.audit"):
        assert bridge.login(idp.mint(sub="u")).created
    assert [e.name for e in seen] == ["user_created", "login_succeeded"]
    assert any("audit sink failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_sink_failing_with_a_typed_error_logs_one_line(
    idp: MockIdP, caplog: pytest.LogCaptureFixture
) -> None:
    """A store down under audit: store printed 150 lines of chained driver traceback per event."""
    from federation.errors import StorageError

    def down(event: AuditEvent) -> None:
        raise StorageError("the database failed (OperationalError)") from OSError("disk")

    bridge = idp.bridge(store=MemoryStore(), audit=down, on_event=lambda e: None)
    with caplog.at_level(logging.ERROR, logger="federation.audit"):
        assert bridge.login(idp.mint(sub="u")).created
    failed = [r for r in caplog.records if "audit sink failed" in r.getMessage()]
    assert [r.getMessage() for r in failed] == [
        f"audit sink failed on {name}: the database failed (OperationalError) (storage_error)"
        for name in ("user_created", "login_succeeded")
    ]
    assert all(r.exc_info is None for r in failed)


def test_log_audit_renders_details(caplog: pytest.LogCaptureFixture) -> None:
    event = AuditEvent(
        "role_granted", datetime(2027, 1, 1, tzinfo=timezone.utc), "7", "iss", "sub", {"role": "admin"}
    )
    with caplog.at_level(logging.INFO, logger="federation.audit"):
        log_audit(event)
    assert "role_granted user=7 issuer=iss subject=sub role=admin" in caplog.records[0].getMessage()
