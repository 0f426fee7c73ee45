"""The key cache state machine of one issuer: the layers of ``_layers`` composed. Pure:
the clock is passed in, the durations come as plain numbers (:class:`CacheTimings`).

Owns the order in which the layers are asked:

* **fresh** (:class:`TtlCache`): a key set younger than its TTL answers lookups directly.
* **unknown kid** in a fresh set: a kid in the :class:`NegativeCache` is refused at
  once; otherwise, when the :class:`Cooldown` allows (the first one after any fetch,
  then one per ``refresh_cooldown``), or a fetch is already in flight to join, the
  caller refetches, so a rotation verifies at once; else it is refused (rate limited).
  A kid still unknown after a successful refetch enters the negative cache, so a flood
  of random kids costs at most one forced refetch per cooldown (plus one after each
  scheduled refresh).
* **expired** set: refresh. While the refresh is in flight, the expired set answers the
  other callers for the keys it holds (never past ``max_stale``): one caller waits for
  the issuer, not every one. While failing (:class:`StaleIfError`), attempts are retried
  at most once per cooldown and the last good set keeps serving for up to
  ``max_stale`` past its TTL.
* **bad signature** under a known kid: answered as an unknown kid is (the issuer may
  have replaced the key under the same kid), and the token is checked once more only
  against a different key the refetched set holds for it.
* **success** replaces the set whole: a key the issuer dropped stops verifying at once.
* the discovered ``jwks_uri``, reused while its document is fresh.
* ``ttl_jitter``: each stored set's TTL is shortened by a random fraction of at most
  that much, so a fleet started together does not refetch in lockstep.

Must not: perform I/O, emit events, or block. State changes happen only inside the
single flight (``_flight``: one fetcher at a time); the negative cache, which every
caller may write, has its own small lock.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable

from .._rfc7517 import KeySet, VerificationKey
from ..errors import InvalidToken, KeySetUnavailable, UnknownKey
from ._layers import CacheTimings, Cooldown, NegativeCache, StaleIfError, TtlCache

__all__ = ["CacheTimings", "KeyCacheState", "Miss"]


class Miss(enum.Enum):
    """Why a lookup could not be answered from the cache."""

    REFRESH = "refresh"  # no set yet, or the set is past its TTL: fetch
    FORCED = "forced"  # the set is fresh but lacks the kid, maybe a rotation: fetch
    RATE_LIMITED = "rate_limited"  # it lacks the kid and the cooldown forbids a fetch: reject


class KeyCacheState:
    """Everything the cache knows about one issuer's keys."""

    def __init__(
        self,
        issuer: str,
        timings: CacheTimings,
        clock: Callable[[], float],
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.issuer = issuer
        self.timings = timings
        self._draw = draw  # uniform in [0, 1): the TTL jitter's (a test passes its own)
        self.cache = TtlCache()  # kept for life (the source hands out its bound current())
        self.cooldown = Cooldown(timings.refresh_cooldown)
        self.unknown_kids = NegativeCache(timings.unknown_kid_ttl, clock)
        self.stale = StaleIfError(timings.refresh_cooldown, timings.max_stale)
        self.discovered_jwks_uri: str | None = None
        self.discovered_until = -math.inf
        self.generation = 0  # bumped after every completed attempt, for single-flight

    # -- the layers' state, read by the shell and by tests --------------------------------

    @property
    def keyset(self) -> KeySet | None:
        """The last good key set (None before the first success)."""
        return self.cache.keyset

    @property
    def fresh_until(self) -> float:
        """When the key set stops being fresh."""
        return self.cache.fresh_until

    @property
    def last_error(self) -> str | None:
        """Why the last attempt failed (None after a success)."""
        return self.stale.last_error

    # -- lookups -----------------------------------------------------------------

    def lookup(
        self, kid: str | None, alg: str, now: float, in_flight: Callable[[], bool] = lambda: False
    ) -> VerificationKey | Miss:
        """Answer from the cache, or say why it cannot.

        ``in_flight`` tells whether a fetch is under way; it is asked only on a miss.

        Raises :class:`UnknownKey` for a kid recently found unknown, and
        :class:`KeySetUnavailable` while failing with no usable set.
        """
        cache = self.cache  # the hot path: attribute reads and one find()
        keyset = cache.keyset
        if keyset is not None and now < cache.fresh_until:
            key = keyset.find(kid, alg)
            if key is not None:
                return key
            if kid is not None and kid in self.unknown_kids:
                raise UnknownKey("no key of the issuer has the token's kid", issuer=self.issuer)
            if in_flight() or self.cooldown.allowed(now):
                # A fetch already in flight may bring the key: join it (single-flight) rather
                # than refuse; joining never adds a request.
                return Miss.FORCED
            return Miss.RATE_LIMITED
        if self.stale.backing_off(now):
            # Failing recently: do not hammer the issuer; serve stale or give up now.
            return self._stale_or_unavailable(kid, alg, now)
        if keyset is not None and self.stale.may_serve(now) and in_flight():
            # Stale while revalidating: the set being refreshed answers for the keys it
            # holds, so one caller waits for the issuer, not all of them (a kid it lacks
            # waits for the new set).
            key = keyset.find(kid, alg)
            if key is not None:
                return key
        return Miss.REFRESH

    def forced_refetch_allowed(self, now: float) -> bool:
        """True for the first unknown kid after a fetch, else once the cooldown has passed."""
        return self.cooldown.allowed(now)

    def unavailable(self) -> KeySetUnavailable:
        """The error for "no usable keys", naming the URL that failed (never a token)."""
        reason, url = self.stale.last_error, self.stale.last_error_url
        where = f"{url}: {reason}" if url and reason else (url or reason)
        message = "the issuer's keys are unavailable" + (f" ({where})" if where else "")
        return KeySetUnavailable(message, issuer=self.issuer, reason=reason, url=url)

    def lookup_after_fetch(self, kid: str | None, alg: str, now: float) -> VerificationKey:
        """Answer after a fetch attempt (ours or a concurrent one); never asks to fetch."""
        keyset = self.cache.keyset
        if keyset is None or (now >= self.cache.fresh_until and not self.stale.may_serve(now)):
            raise self.unavailable()
        key = keyset.find(kid, alg)
        if key is None:
            if self.stale.last_error is not None:
                # Only a successful refetch proves the kid unknown. After a failed one the
                # token may carry the issuer's new key (a rotation during the outage): the
                # keys are unavailable, not the token bad (503, not 401).
                raise self.unavailable()
            if kid is not None:
                self.unknown_kids.add(kid)
            raise UnknownKey("no key of the issuer has the token's kid", issuer=self.issuer)
        return key

    def renewal(
        self,
        kid: str | None,
        alg: str,
        rejected: VerificationKey,
        now: float,
        in_flight: Callable[[], bool] = lambda: False,
    ) -> VerificationKey | Miss:
        """After ``rejected`` failed a token's signature: the key the set now holds in its place
        (a refetch landed meanwhile), else whether a refetch may bring one.

        An issuer may replace a key under the same ``kid`` (a development IdP restarted without
        its keys, a hand-made rotation): the cached key then fails every new token until its
        TTL. Such a failure is answered like an unknown kid: ``FORCED`` when the cooldown allows
        a refetch (and the issuer is not failing within its window) or one is in flight to
        join, else ``RATE_LIMITED``, so forged signatures under a known kid cost at most one
        refetch per cooldown as random kids do.
        """
        key = self._replacement(kid, alg, rejected)
        if key is not None:
            return key
        if in_flight():
            return Miss.FORCED
        if self.stale.backing_off(now) or not self.cooldown.allowed(now):
            # A failing issuer is retried once per cooldown whatever asks, as in lookup(): a
            # forged signature must not buy a second attempt in the same window.
            return Miss.RATE_LIMITED
        return Miss.FORCED

    def renewed_after_fetch(
        self, kid: str | None, alg: str, rejected: VerificationKey
    ) -> VerificationKey | None:
        """After a refetch for ``renewal``: the other key now held for (kid, alg), or None (the
        refetch failed, or brought the same key, none, or one that does not fit ``alg``)."""
        if self.stale.last_error is not None:
            return None
        return self._replacement(kid, alg, rejected)

    def _replacement(self, kid: str | None, alg: str, rejected: VerificationKey) -> VerificationKey | None:
        keyset = self.cache.keyset
        if keyset is None:
            return None
        try:
            key = keyset.find(kid, alg)
        except InvalidToken:  # the kid now names a key of another type, or several fit: no retry
            return None
        if key is None or key is rejected or key.same_key_as(rejected):
            return None
        return key

    def _stale_or_unavailable(self, kid: str | None, alg: str, now: float) -> VerificationKey:
        keyset = self.cache.keyset
        if keyset is not None and self.stale.may_serve(now):
            key = keyset.find(kid, alg)
            if key is None:
                raise self.unavailable()  # a set kept through an outage cannot prove a kid unknown
            return key
        raise self.unavailable()

    @property
    def serving_stale(self) -> bool:
        """True when the set in use is past its TTL (kept only by stale-if-error)."""
        return self.cache.keyset is not None and self.cache.fresh_until < self.stale.last_failure

    # -- transitions -------------------------------------------------------------

    def begin_attempt(self, now: float, forced: bool = False) -> None:
        """A fetch starts now. A forced one opens the cooldown window; any other one
        lets the next unknown kid force a refetch at once (a rotation may follow it)."""
        self.cooldown.begin(now, forced)

    def record_success(self, keyset: KeySet, ttl: float, now: float) -> None:
        """Replace the set whole (dropped keys stop verifying at once). With ``ttl_jitter`` the
        TTL is cut by a random part of it, so processes that fetched together expire apart."""
        jitter = self.timings.ttl_jitter
        if jitter > 0:
            ttl *= 1 - jitter * self._draw()
        self.cache.store(keyset, ttl, now)
        self.stale.succeeded(self.cache.fresh_until)
        self.unknown_kids.clear()
        self.generation += 1

    def record_failure(self, reason: str, now: float, url: str | None = None) -> bool:
        """Note a failed attempt (``url``: what failed); return True when a stale set keeps serving."""
        self.stale.failed(reason, now, url)
        self.discovered_jwks_uri = None  # re-discover next time: the URL may have moved
        self.generation += 1
        return self.cache.keyset is not None and self.stale.may_serve(now)

    def jwks_uri_from_discovery(self, now: float) -> str | None:
        """The discovered key set URL while it is fresh."""
        return self.discovered_jwks_uri if now < self.discovered_until else None

    def record_discovery(self, jwks_uri: str, ttl: float, now: float) -> None:
        """Remember the discovered key set URL for ``ttl`` seconds."""
        self.discovered_jwks_uri = jwks_uri
        self.discovered_until = now + ttl
