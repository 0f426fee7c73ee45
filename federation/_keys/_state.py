"""The key cache state machine of one issuer. Pure: the clock is passed in.

Owns the decisions:

* **fresh**: a key set younger than its TTL answers lookups directly.
* **unknown kid** in a fresh set: the first one after any fetch (the cold
  one, a scheduled TTL refresh) triggers one forced refetch at once, or joins
  the fetch already in flight, so a rotation verifies at once; after a forced
  refetch, the next one waits for ``refresh_cooldown``. A kid still unknown
  after a refetch is remembered as unknown for ``unknown_kid_ttl`` (a bounded
  negative cache), so a flood of random kids costs at most one forced
  refetch per cooldown (plus one after each scheduled refresh).
* **expired** set: refresh. If the refresh fails, the last good set keeps
  serving for up to ``max_stale`` past its TTL (stale-if-error); failed
  attempts are retried at most once per cooldown.
* **success** replaces the set whole: a key the issuer dropped stops verifying
  at once.

Must not: perform I/O, emit events, or block. State changes happen only inside
the single flight (``_flight``: one fetcher at a time); the negative cache,
which every caller may write, has its own small lock.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable

from cachetools import TTLCache

from .._rfc7517 import KeySet, VerificationKey
from ..config import KeysConfig
from ..errors import KeySetUnavailable, UnknownKey

__all__ = ["KeyCacheState", "Miss"]

_NEGATIVE_CACHE_SIZE = 1024


class Miss(enum.Enum):
    """Why a lookup could not be answered from the cache."""

    REFRESH = "refresh"  # no set yet, or the set is past its TTL: fetch
    FORCED = "forced"  # the set is fresh but lacks the kid, maybe a rotation: fetch
    RATE_LIMITED = "rate_limited"  # it lacks the kid and the cooldown forbids a fetch: reject


class KeyCacheState:
    """Everything the cache knows about one issuer's keys."""

    def __init__(self, issuer: str, config: KeysConfig, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self.config = config
        self.keyset: KeySet | None = None
        self.fresh_until = -math.inf
        self.stale_until = -math.inf  # fresh_until + max_stale
        self.last_attempt = -math.inf
        self.last_forced = -math.inf  # start of the last forced refetch: the cooldown runs from it
        self.forced_since_fetch = False  # a forced refetch followed the last other fetch
        self.last_failure = -math.inf
        self.last_error: str | None = None
        self.last_error_url: str | None = None  # the URL (config or discovery) that failed
        self.discovered_jwks_uri: str | None = None
        self.discovered_until = -math.inf
        self.generation = 0  # bumped after every completed attempt, for single-flight
        self._negative_lock = threading.Lock()  # cachetools caches are not thread-safe
        self._unknown_kids: TTLCache[str, bool] = TTLCache(
            maxsize=_NEGATIVE_CACHE_SIZE, ttl=max(config.unknown_kid_ttl, 1e-9), timer=clock
        )

    # -- lookups -----------------------------------------------------------------

    def lookup(
        self, kid: str | None, alg: str, now: float, in_flight: bool = False
    ) -> VerificationKey | Miss:
        """Answer from the cache, or say why it cannot.

        Raises :class:`UnknownKey` for a kid recently found unknown, and
        :class:`KeySetUnavailable` while failing with no usable set.
        """
        keyset = self.keyset
        if keyset is not None and now < self.fresh_until:
            key = keyset.find(kid, alg)
            if key is not None:
                return key
            if kid is not None and self._known_unknown(kid):
                raise UnknownKey("no key of the issuer has the token's kid", issuer=self.issuer)
            if in_flight or self.forced_refetch_allowed(now):
                # A fetch already in flight may bring the key: join it (single-flight) rather
                # than refuse; joining never adds a request.
                return Miss.FORCED
            return Miss.RATE_LIMITED
        if now - self.last_failure < self.config.refresh_cooldown:
            # Failing recently: do not hammer the issuer; serve stale or give up now.
            return self._stale_or_unavailable(kid, alg, now)
        return Miss.REFRESH

    def _known_unknown(self, kid: str) -> bool:
        with self._negative_lock:
            return kid in self._unknown_kids

    def forced_refetch_allowed(self, now: float) -> bool:
        """True for the first unknown kid after a fetch, else once the cooldown has passed."""
        return not self.forced_since_fetch or now - self.last_forced >= self.config.refresh_cooldown

    def unavailable(self) -> KeySetUnavailable:
        """The error for "no usable keys", naming the URL that failed (never a token)."""
        reason, url = self.last_error, self.last_error_url
        where = f"{url}: {reason}" if url and reason else (url or reason)
        message = "the issuer's keys are unavailable" + (f" ({where})" if where else "")
        return KeySetUnavailable(message, issuer=self.issuer, reason=reason, url=url)

    def lookup_after_fetch(self, kid: str | None, alg: str, now: float) -> VerificationKey:
        """Answer after a fetch attempt (ours or a concurrent one); never asks to fetch."""
        if self.keyset is None or (now >= self.fresh_until and now >= self.stale_until):
            raise self.unavailable()
        key = self.keyset.find(kid, alg)
        if key is None:
            if kid is not None and self.last_error is None:
                # Only a successful refetch proves the kid unknown; after a failed one a
                # real rotation must stay possible at the next attempt.
                with self._negative_lock:
                    self._unknown_kids[kid] = True
            raise UnknownKey("no key of the issuer has the token's kid", issuer=self.issuer)
        return key

    def _stale_or_unavailable(self, kid: str | None, alg: str, now: float) -> VerificationKey:
        if self.keyset is not None and now < self.stale_until:
            key = self.keyset.find(kid, alg)
            if key is None:
                raise UnknownKey("no key of the issuer has the token's kid", issuer=self.issuer)
            return key
        raise self.unavailable()

    @property
    def serving_stale(self) -> bool:
        """True when the set in use is past its TTL (kept only by stale-if-error)."""
        return self.keyset is not None and self.fresh_until < self.last_failure

    # -- transitions -------------------------------------------------------------

    def begin_attempt(self, now: float, forced: bool = False) -> None:
        """A fetch starts now. A forced one opens the cooldown window; any other one
        lets the next unknown kid force a refetch at once (a rotation may follow it)."""
        self.last_attempt = now
        if forced:
            self.last_forced = now
        self.forced_since_fetch = forced

    def record_success(self, keyset: KeySet, ttl: float, now: float) -> None:
        """Replace the set whole (dropped keys stop verifying at once)."""
        self.keyset = keyset
        self.fresh_until = now + ttl
        self.stale_until = self.fresh_until + self.config.max_stale
        self.last_error = None
        self.last_error_url = None
        with self._negative_lock:
            self._unknown_kids.clear()
        self.generation += 1

    def record_failure(self, reason: str, now: float, url: str | None = None) -> bool:
        """Note a failed attempt (``url``: what failed); return True when a stale set keeps serving."""
        self.last_failure = now
        self.last_error = reason
        self.last_error_url = url
        self.discovered_jwks_uri = None  # re-discover next time: the URL may have moved
        self.generation += 1
        return self.keyset is not None and now < self.stale_until

    def jwks_uri_from_discovery(self, now: float) -> str | None:
        """The discovered key set URL while it is fresh."""
        return self.discovered_jwks_uri if now < self.discovered_until else None

    def record_discovery(self, jwks_uri: str, ttl: float, now: float) -> None:
        """Remember the discovered key set URL for ``ttl`` seconds."""
        self.discovered_jwks_uri = jwks_uri
        self.discovered_until = now + ttl
