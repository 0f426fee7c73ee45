"""One issuer's key source: the refresh plan and its sync and async shells.

Owns: the sans-I/O refresh plan (a generator that yields
:class:`FetchRequest` and receives :class:`FetchResponse`: discovery when
needed, then the JWK Set), driven by a sync shell and an async shell that only
move bytes; single-flight across both (``_flight``: N cold callers of any mix
of threads and event loops cause one fetch); and the events of the key cache.

Must not: verify signatures or claims, or decide policy beyond what
``_state`` and ``_documents`` say.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Generator

import httpx

from federation.providers._profile import KeySourceSpec

from .._rfc7517 import VerificationKey
from ..config import KeysConfig
from ..errors import UnknownKey
from ..events import (
    FETCH_FAILED,
    FETCHED,
    KEY_IGNORED,
    KEY_SKIPPED,
    KEY_TOLERATED,
    REFETCH_RATE_LIMITED,
    STALE_SERVED,
    Event,
    EventSink,
)
from ._documents import FetchFailed, display_url, parse_discovery, parse_keys, ttl_from_headers
from ._flight import Claim, SingleFlight
from ._http import FetchRequest, FetchResponse, fetch_async, fetch_sync
from ._state import KeyCacheState, Miss

__all__ = ["IssuerKeySource", "RefreshPlan"]

RefreshPlan = Generator[FetchRequest, FetchResponse, bool]


class IssuerKeySource:
    """Keys of one profile (its issuers), fetched from ``jwks_uri`` or through discovery."""

    def __init__(
        self,
        spec: KeySourceSpec,
        *,
        config: KeysConfig,
        clock: Callable[[], float],
        emit: EventSink,
        sync_client: Callable[[], httpx.Client],
        async_client: httpx.AsyncClient | None,
    ) -> None:
        self.spec = spec
        self.name = self.issuer = spec.name
        self.jwks_uri = spec.jwks_uri
        self.discovery_url = spec.discovery_url
        self.config = config
        self.state = KeyCacheState(spec.name, config, clock)
        self._clock = clock
        self._emit = emit
        self._sync_client = sync_client
        self._async_client = async_client
        self._flight = SingleFlight(lambda: self.state.generation)
        self._noted_version: bytes | None = None  # digest of the last key document whose notes were emitted
        # A waiter gives up after the fetcher's own worst case (discovery + key set).
        self._wait_budget = 4 * config.timeout + 1

    # -- the sans-I/O refresh plan ---------------------------------------------------

    def _event(self, name: str, **detail: object) -> None:
        try:
            self._emit(Event(name, self.issuer, detail))
        except Exception:  # noqa: S110 - a broken sink must never break verification
            pass

    def refresh_plan(self, forced: bool) -> RefreshPlan:
        """Sans-I/O: yields the requests to make, returns True on success.

        The shells send each response back in; the plan judges it, updates the
        cache state and emits the events. It never touches the network itself.
        """
        state = self.state
        now = self._clock()
        state.begin_attempt(now, forced)
        url: str | None = None  # what is being fetched, for errors and events
        try:
            jwks_uri = self.jwks_uri or state.jwks_uri_from_discovery(now)
            if jwks_uri is None:
                assert self.discovery_url is not None
                url = self.discovery_url
                response = yield FetchRequest(url, "discovery", forced)
                jwks_uri = parse_discovery(response, self.spec.discovery_issuer or self.name, self.config)
                state.record_discovery(
                    jwks_uri, ttl_from_headers(response.headers, self.config), self._clock()
                )
            url = jwks_uri
            response = yield FetchRequest(jwks_uri, "jwks", forced)
            keyset, warnings = parse_keys(response, self.config, self.spec.format)
        except FetchFailed as exc:
            now = self._clock()
            shown = display_url(url) if url is not None else None
            stale = state.record_failure(exc.reason, now, shown)
            self._event(FETCH_FAILED, reason=exc.reason, forced=forced, url=shown)
            if stale and now >= state.fresh_until:  # a failed forced refetch of a fresh set is not stale
                self._event(STALE_SERVED, reason=exc.reason, kids=len(state.keyset or ()))
            return False
        # Notes about entries are news once per key-set version, not on every refresh.
        version = hashlib.sha256(response.body).digest()
        if version != self._noted_version:
            self._noted_version = version
            for note in warnings:
                name = {"ignored": KEY_IGNORED, "tolerated": KEY_TOLERATED}.get(note.kind, KEY_SKIPPED)
                self._event(name, reason=str(note), kid=note.kid)
        ttl = ttl_from_headers(response.headers, self.config)
        state.record_success(keyset, ttl, self._clock())
        self._event(FETCHED, keys=len(keyset), ttl=ttl, forced=forced)
        return True

    # -- sync shell -------------------------------------------------------------------

    def _drive_sync(self, forced: bool) -> bool:
        plan = self.refresh_plan(forced)
        try:
            request = next(plan)
            while True:
                response = fetch_sync(
                    self._sync_client(),
                    request,
                    timeout=self.config.timeout,
                    max_bytes=self.config.max_response_bytes,
                )
                request = plan.send(response)
        except StopIteration as done:
            return bool(done.value)

    def _refresh_sync(self, forced: bool, seen_generation: int | None) -> None:
        claim = self._flight.claim(seen_generation)
        if claim is Claim.FETCH:
            try:
                self._drive_sync(forced)
            finally:
                self._flight.release()
        elif claim is Claim.JOIN:
            self._flight.wait(self._wait_budget)

    def get_key(self, kid: str | None, alg: str) -> VerificationKey:
        """The verification key for (kid, alg), fetching when needed (blocking)."""
        generation = self.state.generation  # read before the lookup, so a fetch landing after it counts
        decision = self._lookup(kid, alg, generation)
        if isinstance(decision, VerificationKey):
            return decision
        self._refresh_sync(decision is Miss.FORCED, generation)
        return self._after(kid, alg)

    def refresh(self) -> bool:
        """Fetch now unless a fetch is in flight (then wait for it); True when keys were had."""
        self._refresh_sync(False, None)
        return self.state.keyset is not None and self.state.last_error is None

    # -- async shell ------------------------------------------------------------------

    async def _drive_async(self, forced: bool) -> bool:
        plan = self.refresh_plan(forced)
        try:
            request = next(plan)
            while True:
                response = await fetch_async(
                    self._async_client,
                    request,
                    timeout=self.config.timeout,
                    max_bytes=self.config.max_response_bytes,
                )
                request = plan.send(response)
        except StopIteration as done:
            return bool(done.value)

    async def _fly_async(self, forced: bool) -> None:
        try:
            await self._drive_async(forced)
        finally:
            self._flight.release()

    async def _refresh_async(self, forced: bool, seen_generation: int | None) -> None:
        claim = self._flight.claim(seen_generation)
        if claim is Claim.FETCH:
            task = asyncio.get_running_loop().create_task(self._fly_async(forced))
            # shield: this caller's cancellation must not cancel the fetch others wait on.
            await asyncio.shield(task)
        elif claim is Claim.JOIN:
            await self._flight.await_landing(self._wait_budget)

    async def aget_key(self, kid: str | None, alg: str) -> VerificationKey:
        """Async twin of :meth:`get_key`."""
        generation = self.state.generation
        decision = self._lookup(kid, alg, generation)
        if isinstance(decision, VerificationKey):
            return decision
        await self._refresh_async(decision is Miss.FORCED, generation)
        return self._after(kid, alg)

    async def arefresh(self) -> bool:
        """Async twin of :meth:`refresh`."""
        await self._refresh_async(False, None)
        return self.state.keyset is not None and self.state.last_error is None

    # -- shared -------------------------------------------------------------------------

    def _lookup(self, kid: str | None, alg: str, generation: int) -> VerificationKey | Miss:
        decision = self.state.lookup(kid, alg, self._clock(), in_flight=self._flight.in_flight)
        if decision is Miss.RATE_LIMITED and self.state.generation != generation:
            # A refetch landed between our look at the set and at the flight: use its result.
            return self._after(kid, alg)
        if decision is Miss.RATE_LIMITED:
            self._event(REFETCH_RATE_LIMITED, cooldown=self.config.refresh_cooldown)
            raise UnknownKey(
                "no key of the issuer has the token's kid (refetch rate limited)", issuer=self.issuer
            )
        return decision

    def _after(self, kid: str | None, alg: str) -> VerificationKey:
        return self.state.lookup_after_fetch(kid, alg, self._clock())
