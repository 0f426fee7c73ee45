"""A frozen, manually advanced clock for deterministic tests.

Owns: :class:`FrozenClock`, a callable returning Unix time that only moves
when told to. Pass it as ``clock=`` to :class:`~federation.Bridge` and
:class:`~federation.testing.MockIdP` so tokens, caches and cooldowns agree.

Must not: patch global time.
"""

from __future__ import annotations

import threading

__all__ = ["FrozenClock"]


class FrozenClock:
    """``clock()`` returns a fixed time; ``clock.advance(s)`` moves it forward."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self._now = float(now)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        """The current frozen time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (may be negative); return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now``."""
        with self._lock:
            self._now = float(now)
