"""Operational events with stable names, for logs, metrics and alerts.

Owns: the :class:`Event` record, the stable event names, and the default sink
(the ``federation`` logger). Pass ``on_event=callable`` to
:class:`~federation.Bridge` to receive events yourself (for metrics); the
default logs them. A sink must be quick and must not raise: exceptions from it
are swallowed so that monitoring can never break verification.

Events never carry token contents: only configured issuer strings, URLs from
configuration or discovery, counts and reasons.

Must not: import the bridge or perform I/O beyond logging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FETCHED",
    "FETCH_FAILED",
    "KEY_IGNORED",
    "KEY_SKIPPED",
    "KEY_TOLERATED",
    "REFETCH_RATE_LIMITED",
    "STALE_SERVED",
    "Event",
    "EventSink",
    "log_event",
]

#: A key set (or discovery document) was fetched and accepted.
FETCHED = "fetched"
#: A fetch failed (network, status, size, JSON, no usable key); ``detail["reason"]`` says which.
FETCH_FAILED = "fetch_failed"
#: A refresh failed and the last good key set keeps serving (bounded by ``keys.max_stale``).
STALE_SERVED = "stale_served"
#: An unknown kid wanted a refetch but the issuer's cooldown had not passed.
REFETCH_RATE_LIMITED = "refetch_rate_limited"
#: One entry of a fetched key set was unusable and skipped; ``detail["reason"]`` says why.
#: Said once per key-set version (when the fetched document changes), not on every fetch.
KEY_SKIPPED = "key_skipped"
#: One entry is not for signatures (``use: enc``; every Keycloak realm has one): expected,
#: so DEBUG, once per key-set version. ``detail["kid"]`` names it.
KEY_IGNORED = "key_ignored"
#: One entry was used although it bends the rules (RSA integers with leading zero octets);
#: ``detail["kid"]`` names it, ``detail["reason"]`` says what. Once per key-set version.
KEY_TOLERATED = "key_tolerated"

_WARNINGS = frozenset({FETCH_FAILED, STALE_SERVED, KEY_SKIPPED, KEY_TOLERATED})
_DEBUG = frozenset({KEY_IGNORED})

logger = logging.getLogger("federation")


@dataclass(frozen=True, slots=True)
class Event:
    """One operational event: a stable ``name``, the configured ``issuer``, details."""

    name: str
    issuer: str
    detail: Mapping[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def log_event(event: Event) -> None:
    """The default sink: one log line on the ``federation`` logger.

    The event name is in ``record.federation_event`` for structured handlers.
    """
    level = (
        logging.WARNING
        if event.name in _WARNINGS
        else logging.DEBUG
        if event.name in _DEBUG
        else logging.INFO
    )
    if logger.isEnabledFor(level):
        details = " ".join(f"{k}={v}" for k, v in event.detail.items())
        logger.log(
            level,
            "federation %s issuer=%s %s",
            event.name,
            event.issuer,
            details,
            extra={"federation_event": event.name, "federation_issuer": event.issuer},
        )
