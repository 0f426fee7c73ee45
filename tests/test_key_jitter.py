"""keys.ttl_jitter: processes that fetched an issuer's keys together expire them apart."""

from __future__ import annotations

from typing import Any

from federation._keys._state import CacheTimings, KeyCacheState
from federation.testing import FrozenClock, MockIdP


def _state(jitter: float, draw: Any) -> KeyCacheState:
    return KeyCacheState("https://idp.test", CacheTimings(ttl_jitter=jitter), lambda: 0.0, draw)


def test_no_jitter_keeps_the_ttl() -> None:
    state = _state(0, lambda: 0.99)
    state.record_success(object(), 600, now=1000)  # type: ignore[arg-type]
    assert state.fresh_until == 1600


def test_the_ttl_is_cut_by_at_most_the_jitter() -> None:
    for draw, expected in ((0.0, 1600.0), (0.5, 1570.0), (0.999999, 1540.00006)):
        state = _state(0.1, lambda d=draw: d)
        state.record_success(object(), 600, now=1000)  # type: ignore[arg-type]
        assert abs(state.fresh_until - expected) < 1e-3


def test_a_fleet_spreads_its_refetches(clock: FrozenClock) -> None:
    idp = MockIdP(issuer="https://idp.test", audience="a", alg="ES256", clock=clock, cache_max_age=600)
    ends = set()
    for _ in range(8):  # eight processes starting at the same instant
        bridge = idp.bridge(config=idp.bridge_config(keys={"ttl_jitter": 0.2}))
        assert bridge.warm_up().ok
        (source,) = bridge._profile_sources.values()
        ends.add(source.state.fresh_until)  # type: ignore[attr-defined]
        bridge.close()
    assert len(ends) > 1
    assert all(clock() + 600 * 0.8 <= end <= clock() + 600 for end in ends)
