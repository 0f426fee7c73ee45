"""Issue 10 §1 (key cache and key sets) and the key-cache "Noise" items.

Each test here failed on the code before its fix. HTTP goes through the mock
issuer (``MockIdP``) only; time moves through the injected ``FrozenClock``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from federation import Bridge
from federation.events import FETCHED, Event
from federation.testing import FrozenClock, MockIdP

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


def jwks_requests(idp: MockIdP) -> int:
    return len(idp.requests_to("jwks"))


# -- on_event sinks that evaluate as false ----------------------------------------------------


class FalsySink(list[Event]):
    """An empty list is falsy: ``on_event or log_event`` used to drop it for the logger."""

    def __call__(self, event: Event) -> None:
        self.append(event)


def test_a_falsy_event_sink_is_still_used(idp: MockIdP) -> None:
    sink = FalsySink()
    assert not sink
    bridge = idp.bridge(on_event=sink)
    bridge.verify(idp.mint())
    assert [e.name for e in sink] == [FETCHED]
    bridge.close()


class ZeroLengthSink:
    def __init__(self) -> None:
        self.names: list[str] = []

    def __len__(self) -> int:
        return 0

    def __call__(self, event: Event) -> None:
        self.names.append(event.name)


def test_a_zero_length_event_sink_is_still_used_async(idp: MockIdP) -> None:
    sink = ZeroLengthSink()
    bridge = idp.bridge(on_event=sink)
    asyncio.run(bridge.averify(idp.mint()))
    assert sink.names == [FETCHED]
    bridge.close()


# -- warm_up fetches each key set once -----------------------------------------------------------


@pytest.mark.parametrize("provider", ["cognito", "google"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_warm_up_fetches_a_shared_key_set_once(provider: str, mode: str, events: list[Event]) -> None:
    idp = MockIdP.for_provider(provider)
    bridge = idp.bridge(on_event=events.append)
    assert len(bridge.issuers) == 2  # two issuer strings, one key set
    report = bridge.warm_up() if mode == "sync" else asyncio.run(bridge.awarm_up())
    assert report.ok
    assert set(report.succeeded) == set(bridge.issuers)  # the report still lists every string
    assert jwks_requests(idp) == 1
    assert [e.name for e in events] == [FETCHED]
    bridge.verify(idp.mint())
    assert jwks_requests(idp) == 1
    bridge.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_warm_up_failure_is_reported_for_every_issuer_string(mode: str) -> None:
    idp = MockIdP.for_provider("google")
    bridge = idp.bridge(on_event=lambda e: None)
    idp.outage(503)
    report = bridge.warm_up() if mode == "sync" else asyncio.run(bridge.awarm_up())
    assert not report.ok
    assert report.succeeded == ()
    assert set(report.failed) == set(bridge.issuers)
    assert set(report.failed.values()) == {"http_503"}
    assert jwks_requests(idp) == 1
    bridge.close()
