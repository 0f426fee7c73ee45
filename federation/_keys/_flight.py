"""Single-flight for one key source, shared by threads and by every event loop.

Owns: the one question "who fetches?". A caller that needs keys *claims* the
flight: it either becomes the one fetcher, or learns that a fetch is already in
flight (and waits for it), or that one completed since it looked (and uses its
result). Sync waiters block on a condition; async waiters get a future of
their own loop, resolved thread-safely when the flight lands. So N concurrent
callers, of any mix of threads and event loops, cause one fetch.

Must not: fetch, decide policy, or hold its lock while anything slow runs.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable

__all__ = ["Claim", "SingleFlight"]


class Claim(enum.Enum):
    """The answer to :meth:`SingleFlight.claim`."""

    FETCH = "fetch"  # you fetch, then call release()
    JOIN = "join"  # a fetch is in flight: wait for it
    DONE = "done"  # a fetch completed since you looked: use its result


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SingleFlight:
    """At most one fetch in flight; everyone else waits for it."""

    def __init__(self, generation: Callable[[], int]) -> None:
        self._generation = generation  # bumped by the cache after every completed attempt
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = False
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def in_flight(self) -> bool:
        """True while a fetch is running."""
        return self._in_flight

    def claim(self, seen_generation: int | None) -> Claim:
        """Become the fetcher, or learn whom to wait for. ``None``: fetch unless one is in flight."""
        with self._cond:
            if self._in_flight:
                return Claim.JOIN
            if seen_generation is not None and self._generation() != seen_generation:
                return Claim.DONE
            self._in_flight = True
            return Claim.FETCH

    def release(self) -> None:
        """The fetcher is done (whatever the outcome): wake every waiter."""
        with self._cond:
            self._in_flight = False
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed; nobody is waiting there any more
                pass

    def wait(self, timeout: float) -> None:
        """Block until the flight in progress lands (or ``timeout`` passes)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._in_flight, timeout)

    async def await_landing(self, timeout: float) -> None:
        """Async twin of :meth:`wait`; never blocks the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if not self._in_flight:
                return
            self._async_waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
