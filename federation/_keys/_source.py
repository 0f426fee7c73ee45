"""One issuer's key source: the refresh plan and its sync and async shells.

Owns: the sans-I/O refresh plan (a generator that yields
:class:`FetchRequest` and receives :class:`FetchResponse`: discovery when
needed, then the JWK Set), driven by a sync shell and an async shell that only
move bytes; single-flight across both (``_flight``: N cold callers of any mix
of threads and event loops cause one fetch; a flight whose owner's event loop
stopped is taken over at the end of its lease, and a stale owner stops driving
its plan); which client an async fetch uses (the injected async client, else
the injected sync client in a worker thread, else the bridge's own); and the
events of the key cache.

Must not: verify signatures or claims, or decide policy beyond what
``_state`` and ``_documents`` say.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator

import httpx

from .._profile import KeySourceSpec
from .._rfc7517 import VerificationKey
from ..config import KeysConfig
from ..errors import UnknownKey
from ..events import (
    FETCH_FAILED,
    FETCHED,
    REFETCH_RATE_LIMITED,
    STALE_SERVED,
    Event,
    EventSink,
)
from ._documents import (
    FetchFailed,
    display_url,
    keep_out_of_logs,
    parse_discovery,
    parse_keys,
    ttl_from_headers,
)
from ._flight import Claim, SingleFlight, Ticket
from ._http import FetchRequest, FetchResponse, fetch_async, fetch_sync
from ._import import note_event
from ._layers import TtlCache
from ._state import CacheTimings, KeyCacheState, Miss

__all__ = ["IssuerKeySource", "RefreshPlan"]

RefreshPlan = Generator[FetchRequest, FetchResponse, bool]

#: How async fetches move bytes: an injected ``httpx.AsyncClient``; a factory of the
#: bridge's own short-lived clients; or None: the (injected) sync client in a worker
#: thread, so an application that injected only a sync client is never bypassed.
AsyncClientOption = httpx.AsyncClient | Callable[[], httpx.AsyncClient] | None


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
        async_client: AsyncClientOption,
    ) -> None:
        self.spec = spec
        self.name = self.issuer = spec.name
        self.jwks_uri = spec.jwks_uri
        self.discovery_url = spec.discovery_url
        self.config = config
        # The pure layers take plain numbers: convert the config once, here.
        timings = CacheTimings(
            refresh_cooldown=config.refresh_cooldown,
            max_stale=config.max_stale,
            unknown_kid_ttl=config.unknown_kid_ttl,
            ttl_jitter=config.ttl_jitter,
        )
        self.state = KeyCacheState(spec.name, timings, clock)
        # The one cache object the state keeps: its ``keyset`` is the current set (a refetch
        # replaces it whole) and ``fresh_until`` the end of its freshness. A repeat of a token
        # verified with that very set, still fresh, needs no key lookup; read on every
        # repeated token, so the sessions layer holds this object and reads both in place.
        self.keyset_cache: TtlCache = self.state.cache
        self._clock = clock
        self.on_event: EventSink | None = emit  # the KeySource events hook
        self._sync_client = sync_client
        self._async_client = async_client
        # A flight's lease is the fetcher's own worst case (discovery + key set, each with
        # a total budget of twice the timeout); past it, the flight counts as abandoned.
        self._lease = 4 * config.timeout + 1
        self._flight = SingleFlight(lambda: self.state.generation, lease=self._lease)
        self._in_flight = lambda: self._flight.in_flight
        self._noted_version: bytes | None = None  # digest of the last key document whose notes were emitted
        # A waiter waits out one lease, then may take over and fetch itself.
        self._wait_budget = 2 * self._lease

    # -- the sans-I/O refresh plan ---------------------------------------------------

    def _event(self, name: str, **detail: object) -> None:
        try:
            if self.on_event is not None:
                self.on_event(Event(name, self.issuer, detail))
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
                self._event(note_event(note), reason=str(note), kid=note.kid)
        ttl = ttl_from_headers(response.headers, self.config)
        state.record_success(keyset, ttl, self._clock())
        self._event(FETCHED, keys=len(keyset), ttl=ttl, forced=forced)
        return True

    # -- sync shell -------------------------------------------------------------------

    def _fetch_sync(self, request: FetchRequest) -> FetchResponse:
        keep_out_of_logs(request.url)
        return fetch_sync(
            self._sync_client(),
            request,
            timeout=self.config.timeout,
            max_bytes=self.config.max_response_bytes,
        )

    def _drive_sync(self, forced: bool, ticket: Ticket) -> bool:
        plan = self.refresh_plan(forced)
        try:
            request = next(plan)
            while True:
                response = self._fetch_sync(request)
                if not self._flight.owns(ticket):
                    plan.close()  # taken over meanwhile: the new owner writes the state
                    return False
                request = plan.send(response)
        except StopIteration as done:
            return bool(done.value)

    def _refresh_sync(self, forced: bool, seen_generation: int | None) -> None:
        give_up = time.monotonic() + self._wait_budget
        while True:
            claim, ticket = self._flight.claim(seen_generation)
            if claim is Claim.FETCH:
                assert ticket is not None
                try:
                    self._drive_sync(forced, ticket)
                finally:
                    self._flight.release(ticket)
                return
            if claim is Claim.DONE:
                return
            # JOIN: wait for it to land; at its deadline claim again (taking an abandoned one over).
            remaining = give_up - time.monotonic()
            if remaining <= 0 or self._flight.wait(remaining):
                return

    def get_key(self, kid: str | None, alg: str) -> VerificationKey:
        """The verification key for (kid, alg), fetching when needed (blocking)."""
        state = self.state
        generation = state.generation  # read before the lookup, so a fetch landing after it counts
        decision = state.lookup(kid, alg, self._clock(), self._in_flight)
        if isinstance(decision, VerificationKey):
            return decision
        decision = self._settle_miss(decision, kid, alg, generation)
        if isinstance(decision, VerificationKey):
            return decision
        self._refresh_sync(decision is Miss.FORCED, generation)
        return self._after(kid, alg)

    def renew_key(self, kid: str | None, alg: str, rejected: VerificationKey) -> VerificationKey | None:
        """After ``rejected`` failed a token's signature: the different key the issuer now
        publishes for (kid, alg), refetching within the cooldown's bounds; None when there is
        none (the failure stands)."""
        answer, generation = self._renewal(kid, alg, rejected)
        if generation is None:
            return answer
        self._refresh_sync(True, generation)
        return self.state.renewed_after_fetch(kid, alg, rejected)

    def refresh(self) -> bool:
        """Fetch now unless a fetch is in flight (then wait for it); True when keys were had."""
        self._refresh_sync(False, None)
        return self.state.keyset is not None and self.state.last_error is None

    # -- async shell ------------------------------------------------------------------

    async def _fetch_async(self, request: FetchRequest) -> FetchResponse:
        keep_out_of_logs(request.url)
        option = self._async_client
        timeout, max_bytes = self.config.timeout, self.config.max_response_bytes
        if option is None:
            # Only a sync client was injected: use it, in a worker thread (never a client
            # the application did not ask for).
            import asyncio  # here, as in _refresh_async: a sync-only process never loads it

            return await asyncio.to_thread(self._fetch_sync, request)
        if isinstance(option, httpx.AsyncClient):
            return await fetch_async(option, request, timeout=timeout, max_bytes=max_bytes)
        # The bridge's own: short-lived, as an event-loop-bound pool must not outlive its loop.
        try:
            own = option()
        except Exception as exc:  # reported as data, like every transport failure
            return FetchResponse(error=f"transport_error:{type(exc).__name__}")
        async with own:
            return await fetch_async(own, request, timeout=timeout, max_bytes=max_bytes)

    async def _drive_async(self, forced: bool, ticket: Ticket) -> bool:
        plan = self.refresh_plan(forced)
        try:
            request = next(plan)
            while True:
                response = await self._fetch_async(request)
                if not self._flight.owns(ticket):
                    plan.close()  # taken over meanwhile: the new owner writes the state
                    return False
                request = plan.send(response)
        except StopIteration as done:
            return bool(done.value)

    async def _fly_async(self, forced: bool, ticket: Ticket) -> None:
        try:
            await self._drive_async(forced, ticket)
        finally:
            self._flight.release(ticket)

    async def _refresh_async(self, forced: bool, seen_generation: int | None) -> None:
        import asyncio  # here: only async callers need it, and they have it loaded

        give_up = time.monotonic() + self._wait_budget
        while True:
            claim, ticket = self._flight.claim(seen_generation)
            if claim is Claim.FETCH:
                assert ticket is not None
                task = asyncio.get_running_loop().create_task(self._fly_async(forced, ticket))
                # shield: this caller's cancellation must not cancel the fetch others wait on.
                await asyncio.shield(task)
                return
            if claim is Claim.DONE:
                return
            remaining = give_up - time.monotonic()
            if remaining <= 0 or await self._flight.await_landing(remaining):
                return

    async def aget_key(self, kid: str | None, alg: str) -> VerificationKey:
        """Async twin of :meth:`get_key`."""
        state = self.state
        generation = state.generation
        decision = state.lookup(kid, alg, self._clock(), self._in_flight)
        if isinstance(decision, VerificationKey):
            return decision
        decision = self._settle_miss(decision, kid, alg, generation)
        if isinstance(decision, VerificationKey):
            return decision
        await self._refresh_async(decision is Miss.FORCED, generation)
        return self._after(kid, alg)

    async def arenew_key(
        self, kid: str | None, alg: str, rejected: VerificationKey
    ) -> VerificationKey | None:
        """Async twin of :meth:`renew_key`."""
        answer, generation = self._renewal(kid, alg, rejected)
        if generation is None:
            return answer
        await self._refresh_async(True, generation)
        return self.state.renewed_after_fetch(kid, alg, rejected)

    async def arefresh(self) -> bool:
        """Async twin of :meth:`refresh`."""
        await self._refresh_async(False, None)
        return self.state.keyset is not None and self.state.last_error is None

    @property
    def last_error(self) -> str | None:
        """Why the last fetch failed (None after a success), for warm-up reports."""
        return self.state.last_error

    @property
    def ready(self) -> bool:
        """Whether a verification can be answered from memory now: a key set within its TTL,
        or past it by less than ``max_stale`` (what stale-if-error serves)."""
        state = self.state
        return state.keyset is not None and self._clock() < state.fresh_until + self.config.max_stale

    # -- shared -------------------------------------------------------------------------

    def _settle_miss(
        self, decision: Miss, kid: str | None, alg: str, generation: int
    ) -> VerificationKey | Miss:
        """After the cache could not answer: a rate-limited miss is refused, unless a
        refetch landed since ``generation`` was read (then its set answers)."""
        if decision is Miss.RATE_LIMITED and self.state.generation != generation:
            # A refetch landed between our look at the set and at the flight: use its result.
            return self._after(kid, alg)
        if decision is Miss.RATE_LIMITED:
            self._event(REFETCH_RATE_LIMITED, cooldown=self.config.refresh_cooldown, cause="unknown_kid")
            if self.state.last_error is not None:  # the last fetch failed: nothing is proven
                raise self.state.unavailable()
            raise UnknownKey(
                "no key of the issuer has the token's kid (refetch rate limited)", issuer=self.issuer
            )
        return decision

    def _renewal(
        self, kid: str | None, alg: str, rejected: VerificationKey
    ) -> tuple[VerificationKey | None, int | None]:
        """(the answer, None) when no fetch is needed, else (None, the generation to fetch past)."""
        state = self.state
        generation = state.generation  # read before the lookup, as in get_key
        decision = state.renewal(kid, alg, rejected, self._clock(), self._in_flight)
        if isinstance(decision, VerificationKey):
            return decision, None
        if decision is Miss.FORCED:
            return None, generation
        if state.generation != generation:  # a refetch landed meanwhile: its set answers
            return state.renewed_after_fetch(kid, alg, rejected), None
        self._event(REFETCH_RATE_LIMITED, cooldown=self.config.refresh_cooldown, cause="bad_signature")
        return None, None

    def _after(self, kid: str | None, alg: str) -> VerificationKey:
        return self.state.lookup_after_fetch(kid, alg, self._clock())
