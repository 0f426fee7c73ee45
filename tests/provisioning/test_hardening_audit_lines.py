"""Issue 10 §3: claim-derived values cannot forge audit lines or fields."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

import pytest

from federation._cli_store import _audit_line
from federation.storage import AuditEvent, audit_value, log_audit

SPOOF = "admin granted_by=system\nfederation login_succeeded user=root"
AT = datetime(2027, 1, 1, tzinfo=timezone.utc)

# A parser for the documented scheme: key=bare | key="json string" | key=[json array].
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\[[^\n]*?\](?=\s|$)|[^\s"\[]+)')


def _parse(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, raw in _PAIR.findall(text):
        out[key] = json.loads(raw) if raw[0] in '"[' else raw
    return out


def _logged(event: AuditEvent, caplog: pytest.LogCaptureFixture) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="federation.audit"):
        log_audit(event)
    (record,) = caplog.records
    return record.getMessage()


@pytest.mark.parametrize(
    "value",
    [
        SPOOF,
        "a b",
        "k=v",
        'quote"inside',
        "line\rbreak",
        "nel\u0085x",
        "ls\u2028ps\u2029",
        "\x1b[31mred\x1b[0m",
        "tab\there",
        "",
        "résumé",
    ],
)
def test_a_crafted_role_name_is_one_field_of_one_line(value: str, caplog: pytest.LogCaptureFixture) -> None:
    event = AuditEvent("role_granted", AT, "7", "https://iss", "sub", {"role": value})
    message = _logged(event, caplog)
    assert message.isascii() and message.isprintable(), message
    parsed = _parse(message)
    assert parsed["role"] == value
    assert parsed["user"] == "7" and "granted_by" not in parsed


def test_claim_derived_subject_and_reason_are_quoted(caplog: pytest.LogCaptureFixture) -> None:
    event = AuditEvent("login_failed", AT, None, "https://iss", "x user=0", {"reason": "access_denied",
                                                                              "rule": "no\nway"})
    message = _logged(event, caplog)
    parsed = _parse(message)
    assert parsed["subject"] == "x user=0" and parsed["rule"] == "no\nway" and parsed["user"] == "-"
    assert "\n" not in message


def test_lists_stay_readable_and_parse_back() -> None:
    assert audit_value(["email", "display_name"]) == "email,display_name"
    crafted = ["a,b", "c d"]
    assert json.loads(audit_value(crafted)) == crafted


def test_plain_values_are_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    event = AuditEvent("role_granted", AT, "7", "iss", "sub", {"role": "admin"})
    assert "role_granted user=7 issuer=iss subject=sub role=admin" in _logged(event, caplog)


def test_audit_tail_lines_are_quoted_too() -> None:
    event = AuditEvent("role_granted", AT, "7", "https://iss", "sub", {"role": SPOOF})
    line = _audit_line(event)
    assert "\n" not in line and line.isascii()
    assert _parse(line)["role"] == SPOOF
