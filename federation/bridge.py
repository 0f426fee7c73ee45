"""The :class:`Bridge`: the public face of verification.

Owns: building the verifier and one key source per configured issuer from a
:class:`~federation.config.BridgeConfig`, the sync and async entry points
(``verify``/``averify``, ``warm_up``/``awarm_up``), and the lifetime of the
HTTP clients it creates. Every rule lives in the pure core (``_verify``,
``_rfc75xx``, ``_keys._state``); this module only wires and moves bytes.

One bridge is built at start-up and shared: it is safe to use from many
threads and many asyncio tasks (and event loops) at once.

Must not: implement verification rules itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ._keys._source import IssuerKeySource
from ._rfc7515 import Limits
from ._verify import Route, VerifiedToken, Verifier
from .config import BridgeConfig, load_config
from .errors import InvalidToken
from .events import EventSink, log_event

__all__ = ["Bridge", "WarmUpReport"]


@dataclass(frozen=True, slots=True)
class WarmUpReport:
    """The outcome of prefetching every issuer's keys.

    ``failed`` maps each issuer whose keys could not be had to the reason.
    """

    succeeded: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every issuer's keys were fetched."""
        return not self.failed


class Bridge:
    """Verifies tokens from the configured issuers.

    Build it once (``Bridge.from_file(...)``, ``Bridge.from_dict(...)`` or
    ``Bridge(config)``) and share it. ``http_client``/``async_http_client``
    let an application inject its own httpx clients (proxies, a mock
    transport); otherwise the bridge uses its own. ``clock`` returns the
    current Unix time (inject a frozen one in tests); ``on_event`` receives
    key cache events (default: the ``federation`` logger).
    """

    def __init__(
        self,
        config: BridgeConfig,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        on_event: EventSink | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._emit = on_event or log_event
        self._own_client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._http_client = http_client
        limits = Limits(
            max_token_bytes=config.limits.max_token_bytes,
            max_header_bytes=config.limits.max_header_bytes,
            max_json_depth=config.limits.max_json_depth,
            max_claims=config.limits.max_claims,
            max_audiences=config.limits.max_audiences,
        )
        self._verifier = Verifier(list(config.issuers), limits, clock, config.leeway)
        # One key source per profile: every issuer string of a profile shares its keys.
        self._profile_sources: dict[int, IssuerKeySource] = {}
        for profile in config.issuers:
            spec = profile.key_source
            self._profile_sources[id(profile)] = IssuerKeySource(
                spec,
                config=config.keys,
                clock=clock,
                emit=self._emit,
                sync_client=self._sync_client,
                async_client=async_http_client,
            )
        self._sources: dict[str, IssuerKeySource] = {
            iss: self._profile_sources[id(route.profile)] for iss, route in self._verifier.routes.items()
        }

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> Bridge:
        """Build from a YAML file; :class:`~federation.errors.ConfigError` names file, line and field."""
        return cls(load_config(path), **options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **options: Any) -> Bridge:
        """Build from a mapping with the same shape as the YAML file."""
        return cls(load_config(data), **options)

    # -- verification ---------------------------------------------------------------------

    def verify(self, token: str | bytes) -> VerifiedToken:
        """Verify ``token`` (a compact JWS, without any ``Bearer`` prefix).

        Raises :class:`~federation.errors.InvalidToken` (401) or
        :class:`~federation.errors.KeySetUnavailable` (503).
        """
        jws, route = self._verifier.prepare(token)
        try:
            key = self._source(route).get_key(jws.kid, jws.alg)
            return self._verifier.finish(jws, route, key)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer  # every rejection after routing names the issuer
            raise

    async def averify(self, token: str | bytes) -> VerifiedToken:
        """Async twin of :meth:`verify`: same rules, non-blocking key fetches."""
        jws, route = self._verifier.prepare(token)
        try:
            key = await self._source(route).aget_key(jws.kid, jws.alg)
            return self._verifier.finish(jws, route, key)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            raise

    def _source(self, route: Route) -> IssuerKeySource:
        return self._profile_sources[id(route.profile)]

    # -- key prefetch -----------------------------------------------------------------------

    def warm_up(self) -> WarmUpReport:
        """Fetch every issuer's keys now; report which failed (never raises for I/O)."""
        return self._report({iss: source.refresh() for iss, source in self._sources.items()})

    async def awarm_up(self) -> WarmUpReport:
        """Async twin of :meth:`warm_up`; issuers are fetched concurrently."""
        import asyncio

        results = await asyncio.gather(*(source.arefresh() for source in self._sources.values()))
        return self._report(dict(zip(self._sources, results, strict=True)))

    def _report(self, results: Mapping[str, bool]) -> WarmUpReport:
        failed = {
            iss: self._sources[iss].state.last_error or "failed" for iss, ok in results.items() if not ok
        }
        return WarmUpReport(tuple(iss for iss, ok in results.items() if ok), failed)

    @property
    def issuers(self) -> tuple[str, ...]:
        """The exact issuer strings this bridge trusts (dynamic profiles not listed)."""
        return tuple(self._sources)

    # -- HTTP client lifetime ---------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        if self._http_client is not None:
            return self._http_client
        with self._client_lock:
            if self._own_client is None:
                self._own_client = httpx.Client()
            return self._own_client

    def close(self) -> None:
        """Close the HTTP client the bridge created (injected clients are the caller's)."""
        with self._client_lock:
            if self._own_client is not None:
                self._own_client.close()
                self._own_client = None

    def __enter__(self) -> Bridge:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
