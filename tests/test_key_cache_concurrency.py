"""Single-flight and thread/task safety of the key cache, sync and async.

The mock issuer's handler is wrapped to answer slowly (50 ms, real sleep) so
that concurrent callers certainly overlap with the fetch in flight; every
assertion is on outcomes and request counts, never on durations.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from federation import Bridge, VerifiedToken
from federation.errors import FederationError
from federation.events import FETCHED, Event
from federation.testing import FrozenClock, MockIdP

DELAY = 0.05
COOLDOWN = 30
MAX_AGE = 300


# Key generation dominates the run time (RSA ~40 ms): every test gets its own
# MockIdP, but the n-th key of an algorithm generated in a test is the same

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


def slow(idp: MockIdP, delay: float = DELAY) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(delay)
        return idp.handler(request)

    return handler


def aslow(idp: MockIdP, delay: float = DELAY) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(delay)
        return idp.handler(request)

    return handler


@pytest.fixture
def slow_bridge(idp: MockIdP, events: list[Event]) -> Iterator[Callable[..., Bridge]]:
    """A bridge whose issuer answers after DELAY, for sync (threads) and async (tasks)."""
    built: list[tuple[Bridge, httpx.Client]] = []

    def factory(
        *, discovery: bool = False, keys: dict[str, Any] | None = None, delay: float = DELAY
    ) -> Bridge:
        client = httpx.Client(transport=httpx.MockTransport(slow(idp, delay)))
        config: dict[str, Any] = {"issuers": [idp.issuer_config(discovery=discovery)]}
        if keys:
            config["keys"] = keys
        bridge = Bridge.from_dict(
            config,
            http_client=client,
            async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(aslow(idp, delay))),
            clock=idp.clock,
            on_event=events.append,
        )
        built.append((bridge, client))
        return bridge

    yield factory
    for bridge, client in built:
        bridge.close()
        client.close()


def in_threads(n: int, work: Callable[[], object]) -> list[object]:
    """Run ``work`` in ``n`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return results


def outcomes(results: list[object]) -> list[str]:
    return sorted(
        "ok" if isinstance(r, VerifiedToken) else r.code if isinstance(r, FederationError) else repr(r)
        for r in results
    )


def jwks_requests(idp: MockIdP) -> int:
    return len(idp.requests_to("jwks"))


# -- single-flight on a cold cache -------------------------------------------------------------


def test_twenty_threads_on_a_cold_cache_make_one_request(
    idp: MockIdP, slow_bridge: Callable[..., Bridge]
) -> None:
    bridge = slow_bridge()
    token = idp.mint()
    results = in_threads(20, lambda: bridge.verify(token))
    assert outcomes(results) == ["ok"] * 20
    assert jwks_requests(idp) == 1
    assert len(idp.requests) == 1


def test_twenty_tasks_on_a_cold_cache_make_one_request(
    idp: MockIdP, slow_bridge: Callable[..., Bridge]
) -> None:
    bridge = slow_bridge()
    token = idp.mint()

    async def main() -> list[VerifiedToken]:
        return await asyncio.gather(*(bridge.averify(token) for _ in range(20)))

    results = asyncio.run(main())
    assert [r.subject for r in results] == ["user-1"] * 20
    assert jwks_requests(idp) == 1
    assert len(idp.requests) == 1


def test_cold_start_with_discovery_makes_one_of_each_request_threads(
    idp: MockIdP, slow_bridge: Callable[..., Bridge]
) -> None:
    bridge = slow_bridge(discovery=True)
    token = idp.mint(alg="ES256")
    results = in_threads(20, lambda: bridge.verify(token))
    assert outcomes(results) == ["ok"] * 20
    assert (len(idp.requests_to("discovery")), jwks_requests(idp)) == (1, 1)
    assert len(idp.requests) == 2


def test_cold_start_with_discovery_makes_one_of_each_request_tasks(
    idp: MockIdP, slow_bridge: Callable[..., Bridge]
) -> None:
    bridge = slow_bridge(discovery=True)
    token = idp.mint()

    async def main() -> list[VerifiedToken]:
        return await asyncio.gather(*(bridge.averify(token) for _ in range(20)))

    assert len(asyncio.run(main())) == 20
    assert (len(idp.requests_to("discovery")), jwks_requests(idp)) == (1, 1)
    assert len(idp.requests) == 2


def test_cold_start_failure_is_shared_by_all_waiters(
    idp: MockIdP, slow_bridge: Callable[..., Bridge]
) -> None:
    bridge = slow_bridge()
    idp.outage(503)
    token = idp.mint()
    results = in_threads(20, lambda: bridge.verify(token))
    assert outcomes(results) == ["keyset_unavailable"] * 20
    assert jwks_requests(idp) == 1

    async def main() -> list[BaseException | VerifiedToken]:
        return await asyncio.gather(*(bridge.averify(token) for _ in range(20)), return_exceptions=True)

    assert outcomes(list(asyncio.run(main()))) == ["keyset_unavailable"] * 20
    assert jwks_requests(idp) == 1  # back-off window: nobody asked again


class Gate:
    """An async handler that holds each request until released (events made inside the loop)."""

    def __init__(self, idp: MockIdP) -> None:
        self.idp = idp
        self.started: asyncio.Event | None = None
        self.release: asyncio.Event | None = None
        self.answered = 0

    def arm(self) -> None:
        self.started, self.release = asyncio.Event(), asyncio.Event()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        assert self.started is not None and self.release is not None
        self.started.set()
        await self.release.wait()
        self.answered += 1
        return self.idp.handler(request)


@pytest.fixture
def gated(idp: MockIdP, events: list[Event]) -> Iterator[tuple[Bridge, Gate]]:
    gate = Gate(idp)
    bridge = Bridge.from_dict(
        idp.bridge_config(),
        http_client=httpx.Client(transport=httpx.MockTransport(idp.handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(gate.handler)),
        clock=idp.clock,
        on_event=events.append,
    )
    yield bridge, gate
    bridge.close()


def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch(
    idp: MockIdP, gated: tuple[Bridge, Gate]
) -> None:
    bridge, gate = gated
    token = idp.mint()

    async def main() -> None:
        gate.arm()
        assert gate.started is not None and gate.release is not None
        tasks = [asyncio.create_task(bridge.averify(token)) for _ in range(5)]
        await gate.started.wait()  # the one fetch is in flight; every task waits on it
        tasks[0].cancel()  # the task that started the fetch
        await asyncio.sleep(0)
        gate.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert [r.subject for r in results[1:] if isinstance(r, VerifiedToken)] == ["user-1"] * 4

    asyncio.run(main())
    assert gate.answered == 1
    assert jwks_requests(idp) == 1


def test_cancelling_every_waiter_still_completes_the_fetch(
    idp: MockIdP, gated: tuple[Bridge, Gate], events: Any
) -> None:
    bridge, gate = gated
    token = idp.mint()

    async def main() -> None:
        gate.arm()
        assert gate.started is not None and gate.release is not None
        tasks = [asyncio.create_task(bridge.averify(token)) for _ in range(3)]
        await gate.started.wait()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        gate.release.set()  # nobody waits any more: the shielded fetch still completes
        for _ in range(5000):  # bounded: a cancelled fetch must fail the test, not hang it
            if FETCHED in events.names():
                break
            await asyncio.sleep(0.001)
        assert events.names() == [FETCHED]
        assert (await bridge.averify(token)).subject == "user-1"

    asyncio.run(main())
    assert (gate.answered, jwks_requests(idp)) == (1, 1)
    assert bridge.verify(token).subject == "user-1"
    assert jwks_requests(idp) == 1


# -- single-flight on refresh (expired set, outage) ---------------------------------------------------


def test_expired_set_is_refreshed_once_under_concurrency(
    idp: MockIdP, slow_bridge: Callable[..., Bridge], clock: FrozenClock
) -> None:
    bridge = slow_bridge()
    bridge.verify(idp.mint())
    clock.advance(MAX_AGE)
    token = idp.mint()
    assert outcomes(in_threads(20, lambda: bridge.verify(token))) == ["ok"] * 20
    assert jwks_requests(idp) == 2

    clock.advance(MAX_AGE)
    token = idp.mint()

    async def main() -> list[VerifiedToken]:
        return await asyncio.gather(*(bridge.averify(token) for _ in range(20)))

    assert len(asyncio.run(main())) == 20
    assert jwks_requests(idp) == 3


class ThreadGate:
    """A sync transport whose key set answers wait until ``release`` (once armed)."""

    def __init__(self, idp: MockIdP) -> None:
        self.idp = idp
        self.armed = False
        self.started, self.release = threading.Event(), threading.Event()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.armed:
            self.started.set()
            assert self.release.wait(30), "the gate was never released"
        return self.idp.handler(request)


def _gated_bridge(idp: MockIdP, gate: Any, keys: dict[str, Any] | None = None) -> Bridge:
    config = idp.bridge_config(**({"keys": keys} if keys else {}))
    if isinstance(gate, ThreadGate):
        return Bridge.from_dict(
            config, http_client=httpx.Client(transport=httpx.MockTransport(gate.handler)), clock=idp.clock
        )
    return Bridge.from_dict(
        config,
        http_client=httpx.Client(transport=httpx.MockTransport(idp.handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(gate.handler)),
        clock=idp.clock,
    )


def test_an_expired_set_answers_the_others_while_one_caller_refreshes_it(
    idp: MockIdP, clock: FrozenClock
) -> None:
    """Stale while revalidating: past the TTL one caller fetches; the others are answered
    at once from the set it replaces, and only a kid that set lacks waits for the new one."""
    gate = ThreadGate(idp)
    bridge = _gated_bridge(idp, gate)
    bridge.verify(idp.mint(sub="warm"))
    clock.advance(MAX_AGE)
    gate.armed = True
    first: list[object] = []
    refresher = threading.Thread(target=lambda: first.append(bridge.verify(idp.mint(sub="first"))))
    refresher.start()
    assert gate.started.wait(10)  # the refresh is in flight, held at the issuer

    answered: list[object] = []
    other = threading.Thread(target=lambda: answered.append(bridge.verify(idp.mint(sub="other"))))
    other.start()
    other.join(10)
    assert not other.is_alive(), "a caller with a known kid waited for the refresh"
    assert [v.subject for v in answered if isinstance(v, VerifiedToken)] == ["other"]

    idp.rotate_keys(keep_old=True)  # a kid the expired set lacks must wait for the new set
    rotated: list[object] = []
    newcomer = threading.Thread(target=lambda: rotated.append(bridge.verify(idp.mint(sub="new-kid"))))
    newcomer.start()
    newcomer.join(0.2)
    assert newcomer.is_alive() and not rotated  # joined the flight: nothing to answer it with yet
    gate.release.set()
    for thread in (refresher, newcomer):
        thread.join(10)
    assert [v.subject for v in first + rotated if isinstance(v, VerifiedToken)] == ["first", "new-kid"]
    assert jwks_requests(idp) == 2  # the warm-up and the one refresh
    bridge.close()


def test_with_max_stale_0_an_expired_set_answers_no_one(idp: MockIdP, clock: FrozenClock) -> None:
    """``keys.max_stale: 0`` means no set past its TTL: every caller waits for the refresh."""
    gate = ThreadGate(idp)
    bridge = _gated_bridge(idp, gate, keys={"max_stale": 0})
    bridge.verify(idp.mint(sub="warm"))
    clock.advance(MAX_AGE)
    gate.armed = True
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda sub=sub: results.append(bridge.verify(idp.mint(sub=sub))))
        for sub in ("first", "other")
    ]
    threads[0].start()
    assert gate.started.wait(10)
    threads[1].start()
    threads[1].join(0.2)
    assert threads[1].is_alive() and not results
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(v.subject for v in results if isinstance(v, VerifiedToken)) == ["first", "other"]
    bridge.close()


def test_an_expired_set_answers_other_tasks_while_one_refreshes_it(idp: MockIdP, clock: FrozenClock) -> None:
    gate = Gate(idp)
    bridge = _gated_bridge(idp, gate)
    bridge.verify(idp.mint(sub="warm"))  # the sync client: warm, ungated
    clock.advance(MAX_AGE)

    async def main() -> None:
        gate.arm()
        assert gate.started is not None and gate.release is not None
        refresh = asyncio.create_task(bridge.averify(idp.mint(sub="first")))
        await gate.started.wait()
        other = await asyncio.wait_for(bridge.averify(idp.mint(sub="other")), timeout=10)
        assert other.subject == "other" and not refresh.done()
        gate.release.set()
        assert (await refresh).subject == "first"

    asyncio.run(main())
    assert gate.answered == 1
    bridge.close()


def test_stale_set_serves_everyone_during_an_outage_with_one_request(
    idp: MockIdP, slow_bridge: Callable[..., Bridge], clock: FrozenClock
) -> None:
    bridge = slow_bridge()
    bridge.verify(idp.mint())
    clock.advance(MAX_AGE)
    idp.outage(timeout=True)
    token = idp.mint()
    assert outcomes(in_threads(20, lambda: bridge.verify(token))) == ["ok"] * 20
    assert jwks_requests(idp) == 2


def test_rotation_under_concurrency_one_refetch_everyone_verifies_threads(
    idp: MockIdP, slow_bridge: Callable[..., Bridge], clock: FrozenClock
) -> None:
    """Requests carrying the new kid that arrive while the forced refetch is in
    flight wait for it. Regression test: before b839d56 they were refused as
    rate limited (401 for valid tokens during every rotation)."""
    bridge = slow_bridge()
    bridge.verify(idp.mint())
    clock.advance(COOLDOWN)
    idp.rotate_keys()
    token = idp.mint()
    assert outcomes(in_threads(20, lambda: bridge.verify(token))) == ["ok"] * 20
    assert jwks_requests(idp) == 2


def test_rotation_under_concurrency_one_refetch_everyone_verifies_tasks(
    idp: MockIdP, slow_bridge: Callable[..., Bridge], clock: FrozenClock
) -> None:
    """Async twin: tasks arriving while the forced refetch is in flight join it."""
    bridge = slow_bridge()
    bridge.verify(idp.mint())
    clock.advance(COOLDOWN)
    idp.rotate_keys()
    token = idp.mint()

    async def one(i: int) -> object:
        await asyncio.sleep(i * DELAY / 10)  # arrivals spread over the fetch in flight
        try:
            return await bridge.averify(token)
        except FederationError as exc:
            return exc

    async def main() -> list[object]:
        return await asyncio.gather(*(one(i) for i in range(8)))

    assert outcomes(asyncio.run(main())) == ["ok"] * 8
    assert jwks_requests(idp) == 2


def test_unknown_kid_flood_from_several_event_loops_and_threads_is_bounded(
    idp: MockIdP, slow_bridge: Callable[..., Bridge], clock: FrozenClock
) -> None:
    """At most one forced refetch per cooldown per issuer, whatever mix of threads
    and event loops the flood comes from (the bridge is shared by all of them).

    LIBRARY BUG (regression of b839d56): ``KeyCacheState.lookup`` answers FORCED
    whenever ``in_flight`` is set, but the sync lock and the per-loop async task
    only join flights of their own kind, so a caller on another event loop (or
    a sync thread while an async fetch runs) starts a new fetch, which keeps
    ``in_flight`` set for the next one: the cooldown is bypassed and a flood
    from two loops costs one fetch per round trip."""
    bridge = slow_bridge(delay=0.01)
    bridge.verify(idp.mint())
    clock.advance(COOLDOWN)
    tokens = [idp.mint(alg="ES256", kid=f"flood-{i}") for i in range(150)]
    parts = [tokens[0:50], tokens[50:100], tokens[100:150]]

    async def async_flood(part: list[str]) -> int:
        rejected = 0
        for token in part:
            try:
                await bridge.averify(token)
            except FederationError:
                rejected += 1
        return rejected

    def sync_flood(part: list[str]) -> int:
        rejected = 0
        for token in part:
            try:
                bridge.verify(token)
            except FederationError:
                rejected += 1
        return rejected

    workers: list[Callable[[], object]] = [
        lambda: asyncio.run(async_flood(parts[0])),
        lambda: asyncio.run(async_flood(parts[1])),
        lambda: sync_flood(parts[2]),
    ]
    counter = iter(range(3))
    lock = threading.Lock()

    def work() -> object:
        with lock:
            i = next(counter)
        return workers[i]()

    assert in_threads(3, work) == [50, 50, 50]  # every flood token rejected
    assert jwks_requests(idp) == 2  # the cold fetch and one forced refetch
    bridge.verify(idp.mint(alg="ES256"))


# -- thread and task safety on a warm cache -------------------------------------------------------------


def test_eight_threads_times_two_hundred_verifications(
    idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    bridge = make_bridge()
    tokens = [idp.mint(sub=f"u{i}", alg="RS256" if i % 2 else "ES256") for i in range(8)]
    bridge.verify(tokens[0])

    def work(i: int) -> list[str]:
        return [bridge.verify(tokens[(i + n) % 8]).subject for n in range(200)]

    barrier = threading.Barrier(8)
    results: dict[int, object] = {}

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == list(range(8))
    for i, subjects in results.items():
        assert subjects == [f"u{(i + n) % 8}" for n in range(200)]
    assert jwks_requests(idp) == 1


def test_two_hundred_concurrent_averify_calls(idp: MockIdP, make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    tokens = [idp.mint(sub=f"u{i}", alg="ES256" if i % 2 else "RS256") for i in range(10)]

    async def main() -> list[VerifiedToken]:
        await bridge.averify(tokens[0])
        return await asyncio.gather(*(bridge.averify(tokens[n % 10]) for n in range(200)))

    results = asyncio.run(main())
    assert [r.subject for r in results] == [f"u{n % 10}" for n in range(200)]
    assert jwks_requests(idp) == 1


def test_event_loops_in_several_threads_share_one_cache(
    idp: MockIdP, slow_bridge: Callable[..., Bridge]
) -> None:
    bridge = slow_bridge()
    bridge.verify(idp.mint())
    token = idp.mint(alg="ES256")

    async def main() -> list[VerifiedToken]:
        return await asyncio.gather(*(bridge.averify(token) for _ in range(20)))

    results = in_threads(4, lambda: asyncio.run(main()))
    assert all(isinstance(r, list) and len(r) == 20 for r in results)
    assert jwks_requests(idp) == 1
