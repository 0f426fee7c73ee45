"""The key cache's rules, one small class per behaviour. Pure: the clock is passed in.

* :class:`CacheTimings`  the durations the layers need, as plain numbers (the shell
                         converts ``KeysConfig`` once, so this module needs no config).
* :class:`TtlCache`      cache with TTL: the last good key set and until when it is fresh.
* :class:`Cooldown`      forced-refetch rate limit: the first forced refetch after any
                         other fetch is free, the next waits for ``refresh_cooldown``.
* :class:`NegativeCache` unknown kids: a kid a successful refetch did not bring is
                         refused at once for ``unknown_kid_ttl`` (bounded, thread-safe).
* :class:`StaleIfError`  failures: the last failure (back-off for a cooldown) and how
                         long past its TTL the last good set keeps serving (``max_stale``).

Fetching (``_http``, ``_documents``, the refresh plan in ``_source``) and single-flight
(``_flight``) are the other layers; ``_state.KeyCacheState`` composes these four.

Must not: perform I/O, emit events, block (beyond the negative cache's own small lock),
or know about each other.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from .._rfc7517 import KeySet

__all__ = ["CacheTimings", "Cooldown", "NegativeCache", "StaleIfError", "TtlCache"]

_NEGATIVE_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class CacheTimings:
    """The key cache's durations, in seconds (``keys:`` of the config)."""

    refresh_cooldown: float = 30
    max_stale: float = 86400
    unknown_kid_ttl: float = 60
    ttl_jitter: float = 0  # each fetch's TTL is cut by up to this fraction, at random


class TtlCache:
    """The last good key set and the end of its freshness (``-inf``: none yet). The set is
    fresh while ``now < fresh_until``; the key lookup and the sessions layer's repeats read
    both attributes in place (they run per token)."""

    __slots__ = ("fresh_until", "keyset")

    def __init__(self) -> None:
        self.keyset: KeySet | None = None
        self.fresh_until = -math.inf

    def store(self, keyset: KeySet, ttl: float, now: float) -> None:
        """Replace the set whole (a key the issuer dropped stops verifying at once)."""
        self.keyset = keyset
        self.fresh_until = now + ttl


class Cooldown:
    """At most one forced refetch per cooldown, except the first after any other fetch
    (a rotation may follow a scheduled refresh: that one kid gets its refetch at once)."""

    __slots__ = ("cooldown", "forced_since_fetch", "last_forced")

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.last_forced = -math.inf  # start of the last forced refetch: the window runs from it
        self.forced_since_fetch = False  # a forced refetch followed the last other fetch

    def begin(self, now: float, forced: bool) -> None:
        """A fetch starts: a forced one opens the window; any other one resets the allowance."""
        if forced:
            self.last_forced = now
        self.forced_since_fetch = forced

    def allowed(self, now: float) -> bool:
        """May an unknown kid force a refetch now?"""
        return not self.forced_since_fetch or now - self.last_forced >= self.cooldown


class NegativeCache:
    """Kids proven unknown by a successful refetch, remembered for ``ttl`` seconds.

    Bounded (the oldest go first), so a flood of random kids cannot grow it. Every
    caller may write it, so it has its own lock (cachetools caches are not thread-safe).
    """

    __slots__ = ("_kids", "_lock")

    def __init__(self, ttl: float, clock: Callable[[], float], maxsize: int = _NEGATIVE_CACHE_SIZE) -> None:
        self._lock = threading.Lock()
        self._kids: TTLCache[str, bool] = TTLCache(maxsize=maxsize, ttl=max(ttl, 1e-9), timer=clock)

    def __contains__(self, kid: str) -> bool:
        with self._lock:
            return kid in self._kids

    def add(self, kid: str) -> None:
        """Remember ``kid`` as unknown."""
        with self._lock:
            self._kids[kid] = True

    def clear(self) -> None:
        """Forget every kid (a new set may hold any of them)."""
        with self._lock:
            self._kids.clear()


class StaleIfError:
    """Failures: back off for a cooldown after one, and keep serving the last good set
    for ``max_stale`` past its TTL while the issuer fails."""

    __slots__ = ("cooldown", "last_error", "last_error_url", "last_failure", "max_stale", "stale_until")

    def __init__(self, cooldown: float, max_stale: float) -> None:
        self.cooldown = cooldown
        self.max_stale = max_stale
        self.stale_until = -math.inf  # fresh_until + max_stale of the last good set
        self.last_failure = -math.inf
        self.last_error: str | None = None
        self.last_error_url: str | None = None  # the URL (config or discovery) that failed

    def succeeded(self, fresh_until: float) -> None:
        """A good set fresh until ``fresh_until`` arrived: it may serve stale until ``max_stale`` later."""
        self.stale_until = fresh_until + self.max_stale
        self.last_error = None
        self.last_error_url = None

    def failed(self, reason: str, now: float, url: str | None) -> None:
        """An attempt failed now (``url``: what failed)."""
        self.last_failure = now
        self.last_error = reason
        self.last_error_url = url

    def backing_off(self, now: float) -> bool:
        """True within a cooldown of the last failure: do not hammer the issuer."""
        return now - self.last_failure < self.cooldown

    def may_serve(self, now: float) -> bool:
        """True while the last good set may still serve past its TTL."""
        return now < self.stale_until
