"""Audit events: their stable names and the sinks that receive them.

Owns: the audit event names, :data:`AuditSink` (any callable taking an
:class:`~federation.storage.AuditEvent`), the default sink
(:func:`log_audit`, the ``federation.audit`` logger) and :func:`fan_out`.
The SQL store's audit table is a sink too (``SQLStore.audit_sink()``).

Events never contain the token, its claims or attribute values: identity
keys, user ids, codes, field names and role names only. Some of those come
from claims (role names, subjects, deny reasons), so the plain-text line writes
every value with :func:`audit_value`: a value made only of safe characters
as it is, anything else as a JSON string (``role="a b\\nc"``), so a crafted
value can neither add a ``key=value`` pair nor start a new line.

Must not: decide what happened (provisioning emits the events).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from ..errors import FederationError
from ._records import AuditEvent

__all__ = [
    "ACCOUNT_LOCKED",
    "AUDIT_EVENTS",
    "IDENTITY_LINKED",
    "LOGIN_FAILED",
    "LOGIN_SUCCEEDED",
    "PASSWORD_LOGIN_FAILED",
    "REFRESH_REUSED",
    "ROLE_GRANTED",
    "ROLE_REVOKED",
    "SESSION_AUDIT_EVENTS",
    "SESSION_ISSUED",
    "SESSION_REFRESHED",
    "SESSION_REVOKED",
    "USER_CREATED",
    "USER_DELETED",
    "USER_DISABLED",
    "USER_SESSIONS_REVOKED",
    "USER_UPDATED",
    "AuditSink",
    "audit_fields",
    "audit_value",
    "deliver",
    "fan_out",
    "log_audit",
]

LOGIN_SUCCEEDED = "login_succeeded"
#: ``detail["reason"]``: the error code (``access_denied``, ``expired`` ...); ``detail["rule"]``: its reason.
LOGIN_FAILED = "login_failed"
USER_CREATED = "user_created"
#: ``detail["fields"]``: the names of the changed fields (never their values).
USER_UPDATED = "user_updated"
#: ``detail["via"]``: ``email`` (linked by verified email).
IDENTITY_LINKED = "identity_linked"
ROLE_GRANTED = "role_granted"
ROLE_REVOKED = "role_revoked"
USER_DISABLED = "user_disabled"
USER_DELETED = "user_deleted"
#: ``detail["session_id"]``, ``detail["via"]`` (``login``, ``password``, ``user``).
SESSION_ISSUED = "session_issued"
SESSION_REFRESHED = "session_refreshed"
#: ``detail["session_id"]`` (a family) or ``detail["jti"]`` (one access token).
SESSION_REVOKED = "session_revoked"
#: ``detail["reason"]``, ``detail["generation"]``: every earlier token of the user is refused.
USER_SESSIONS_REVOKED = "user_sessions_revoked"
REFRESH_REUSED = "refresh_reused"
PASSWORD_LOGIN_FAILED = "password_login_failed"
ACCOUNT_LOCKED = "account_locked"

#: The session layer's events (``Bridge.issue_session``, ``refresh``, ``revoke`` ..., password logins).
SESSION_AUDIT_EVENTS: tuple[str, ...] = (
    SESSION_ISSUED,
    SESSION_REFRESHED,
    SESSION_REVOKED,
    USER_SESSIONS_REVOKED,
    REFRESH_REUSED,
    PASSWORD_LOGIN_FAILED,
    ACCOUNT_LOCKED,
)

AUDIT_EVENTS: tuple[str, ...] = (
    LOGIN_SUCCEEDED,
    LOGIN_FAILED,
    USER_CREATED,
    USER_UPDATED,
    IDENTITY_LINKED,
    ROLE_GRANTED,
    ROLE_REVOKED,
    USER_DISABLED,
    USER_DELETED,
    *SESSION_AUDIT_EVENTS,
)

AuditSink = Callable[[AuditEvent], None]

audit_logger = logging.getLogger("federation.audit")

# Written bare: nothing here can end a value, start a pair or a line, or fool a terminal.
_BARE = re.compile(r"[A-Za-z0-9._:/@+|-]+")


def audit_value(value: Any) -> str:
    """One value as the plain-text audit line writes it; parse it back with ``json.loads``
    when it starts with ``"`` or ``[``.

    Safe characters only: bare. Anything else (spaces, ``=``, quotes, control and
    non-ASCII characters, U+2028, ANSI escapes): a JSON string with every
    non-ASCII character escaped. Lists: comma-joined when every item is bare,
    else a compact JSON array. ``None``: ``-``.
    """
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
        if items and all(_BARE.fullmatch(i) for i in items):
            return ",".join(items)
        return json.dumps(items, ensure_ascii=True, separators=(",", ":"))
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=True)


def audit_fields(pairs: Any) -> str:
    """``key=value`` pairs joined by one space, every value through :func:`audit_value`."""
    return " ".join(f"{key}={audit_value(value)}" for key, value in pairs)


def log_audit(event: AuditEvent) -> None:
    """The default sink: one line on the ``federation.audit`` logger (``login_failed`` at WARNING).

    ``record.federation_audit`` holds the event as a dict for structured handlers.
    """
    level = logging.WARNING if event.name == LOGIN_FAILED else logging.INFO
    if audit_logger.isEnabledFor(level):
        fields = audit_fields(
            [("user", event.user_id), ("issuer", event.issuer), ("subject", event.subject)]
            + list(event.detail.items())
        )
        audit_logger.log(
            level, "audit %s %s", audit_value(event.name), fields, extra={"federation_audit": event.as_dict()}
        )


def fan_out(*sinks: AuditSink) -> AuditSink:
    """One sink that delivers every event to each of ``sinks`` in turn."""

    def sink(event: AuditEvent) -> None:
        for each in sinks:
            deliver(each, [event])

    return sink


def deliver(sink: AuditSink, events: list[AuditEvent]) -> None:
    """Give ``events`` to ``sink``; a sink that raises is logged, never propagated.

    Audit must not turn a committed login into a failure.
    """
    for event in events:
        try:
            sink(event)
        except FederationError as exc:  # typed (the audit table's store down): one line says it
            audit_logger.error("audit sink failed on %s: %s (%s)", event.name, exc.message, exc.code)
        except Exception:  # a sink's own bug: the traceback is what finds it
            audit_logger.exception("audit sink failed on %s", event.name)
