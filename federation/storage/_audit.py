"""Audit events: their stable names and the sinks that receive them.

Owns: the audit event names, :data:`AuditSink` (any callable taking an
:class:`~federation.storage.AuditEvent`), the default sink
(:func:`log_audit`, the ``federation.audit`` logger) and :func:`fan_out`.
The SQL store's audit table is a sink too (``SQLStore.audit_sink()``).

Events never contain the token, its claims or attribute values: identity
keys, user ids, codes, field names and role names only.

Must not: decide what happened (provisioning emits the events).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._records import AuditEvent

__all__ = [
    "AUDIT_EVENTS",
    "IDENTITY_LINKED",
    "LOGIN_FAILED",
    "LOGIN_SUCCEEDED",
    "ROLE_GRANTED",
    "ROLE_REVOKED",
    "USER_CREATED",
    "USER_DELETED",
    "USER_DISABLED",
    "USER_UPDATED",
    "AuditSink",
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
)

AuditSink = Callable[[AuditEvent], None]

audit_logger = logging.getLogger("federation.audit")


def log_audit(event: AuditEvent) -> None:
    """The default sink: one line on the ``federation.audit`` logger (``login_failed`` at WARNING).

    ``record.federation_audit`` holds the event as a dict for structured handlers.
    """
    level = logging.WARNING if event.name == LOGIN_FAILED else logging.INFO
    if audit_logger.isEnabledFor(level):
        details = " ".join(f"{k}={v}" for k, v in event.detail.items())
        audit_logger.log(
            level,
            "audit %s user=%s issuer=%s subject=%s %s",
            event.name,
            event.user_id,
            event.issuer,
            event.subject,
            details,
            extra={"federation_audit": event.as_dict()},
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
        except Exception:
            audit_logger.exception("audit sink failed on %s", event.name)
