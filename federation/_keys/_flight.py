"""Single-flight for one key source, shared by threads and by every event loop.

Owns: the one question "who fetches?". A caller that needs keys *claims* the
flight: it either becomes the one fetcher (and gets a :class:`Ticket`), or
learns that a fetch is already in flight (and waits for it), or that one
completed since it looked (and uses its result). Sync waiters block on a
condition; async waiters get a future of their own loop, resolved
thread-safely when the flight lands. So N concurrent callers, of any mix of
threads and event loops, cause one fetch.

A flight is a lease: it has an owner (the ticket) and a deadline (claim time
plus the fetcher's own worst case). A fetcher whose event loop stopped running
(a caller timed out around ``run_until_complete``, the loop was closed with the
fetch pending) never releases; so waiters wake at the deadline and claim
again, and a claim after the deadline takes the flight over. A late
``release`` by the stale owner is ignored.

Must not: fetch, decide policy, or hold its lock while anything slow runs.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["Claim", "SingleFlight", "Ticket"]


class Claim(enum.Enum):
    """The answer to :meth:`SingleFlight.claim`."""

    FETCH = "fetch"  # you fetch, then call release(ticket)
    JOIN = "join"  # a fetch is in flight: wait for it
    DONE = "done"  # a fetch completed since you looked: use its result


class Ticket:
    """Proof of owning one flight; compared by identity."""

    __slots__ = ()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SingleFlight:
    """At most one live fetch; everyone else waits for it, or takes over an abandoned one.

    ``lease`` is how long a flight may take before it counts as abandoned.
    ``clock`` is monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        generation: Callable[[], int],
        *,
        lease: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._generation = generation  # bumped by the cache after every completed attempt
        self._lease = lease
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._owner: Ticket | None = None
        self._deadline = 0.0
        self._flights = 0  # counts claims, so a waiter knows when *its* flight is over
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def in_flight(self) -> bool:
        """True while a fetch is claimed. Read on every cache lookup, so it reads no
        clock: whether the flight is past its lease is :meth:`claim`'s to decide."""
        return self._owner is not None

    def claim(self, seen_generation: int | None) -> tuple[Claim, Ticket | None]:
        """Become the fetcher (with a ticket), or learn whom to wait for.

        ``None``: fetch unless one is in flight. A flight past its deadline is
        taken over: its owner is presumed gone.
        """
        with self._cond:
            now = self._clock()
            if self._owner is not None and now < self._deadline:
                return Claim.JOIN, None
            if seen_generation is not None and self._generation() != seen_generation:
                return Claim.DONE, None
            ticket = self._owner = Ticket()
            self._deadline = now + self._lease
            self._flights += 1
            return Claim.FETCH, ticket

    def owns(self, ticket: Ticket) -> bool:
        """True while ``ticket`` still owns the flight (not released, not taken over)."""
        return self._owner is ticket

    def release(self, ticket: Ticket) -> None:
        """The fetcher is done (whatever the outcome): wake every waiter.

        A stale owner's release (its flight was taken over) is ignored.
        """
        with self._cond:
            if self._owner is not ticket:
                return
            self._owner = None
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed; nobody is waiting there any more
                pass

    def _landed(self, flight: int) -> bool:
        return self._owner is None or self._flights != flight

    def wait(self, timeout: float) -> bool:
        """Block until the flight in progress lands, its deadline passes, or ``timeout``.

        True when it landed; False when the caller should claim again (an
        abandoned flight may then be taken over).
        """
        with self._cond:
            flight = self._flights
            remaining = min(timeout, self._deadline - self._clock())
            return self._cond.wait_for(lambda: self._landed(flight), max(remaining, 0.0))

    async def await_landing(self, timeout: float) -> bool:
        """Async twin of :meth:`wait`; never blocks the event loop."""
        import asyncio  # here: only async callers need it, and they have it loaded

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._owner is None:
                return True
            remaining = min(timeout, self._deadline - self._clock())
            self._async_waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, max(remaining, 0.0))
        except asyncio.TimeoutError:
            with self._cond:
                return self._owner is None
        return True
