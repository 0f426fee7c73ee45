"""The :class:`Bridge`: the public face of verification.

Owns: building the verifier and one key source per configured issuer from a
:class:`~federation.config.BridgeConfig`, the sync and async entry points
(``verify``/``averify``, ``warm_up``/``awarm_up``), and the lifetime of the
HTTP clients it creates. Logging in (``login``/``alogin``, ``deprovision``/
``adeprovision``) wires verification to :mod:`federation.provisioning`: the
store (``storage:`` or ``store=``), the mapping (``mapping:`` or ``mapping=``)
and the audit sink. Every rule lives in the pure core (``_verify``,
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
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ._keys import KeySource, StaticKeySet
from ._keys._connect import ConnectPolicy, guarded_async_transport, guarded_transport
from ._keys._source import AsyncClientOption, IssuerKeySource
from ._rfc7515 import Limits
from ._verify import Route, VerifiedToken, Verifier
from .config import BridgeConfig, load_config
from .errors import ConfigError, InvalidToken, KeySetUnavailable
from .events import EventSink, log_event

if TYPE_CHECKING:
    from ._profile import ProviderProfile
    from .provisioning import DeprovisionMode, DeprovisionResult, LoginResult, Mapper, Provisioner
    from .storage import AsyncStore, AuditSink, Store

__all__ = ["Bridge", "WarmUpReport"]

#: The store used when the config names none: embedded SQLite beside the config file.
DEFAULT_STORAGE = "sqlite:///federation.db"


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
    key cache events (default: the ``federation`` logger). ``key_sources``
    maps an issuer string to a :class:`~federation.spi.KeySource` of your own
    used for that issuer's entry instead of fetching (an issuer entry with
    ``jwks_file:`` uses a :class:`~federation.spi.StaticKeySet`).

    For :meth:`login`: ``store`` is where users live (default: the SQL store
    named by ``storage:``, else ``sqlite:///federation.db`` beside the config
    file); ``mapping`` maps tokens onto users (default: ``mapping:``, else
    :class:`~federation.provisioning.DefaultMapping`); ``audit`` receives audit
    events: ``"log"`` (the ``federation.audit`` logger), ``"store"`` (the SQL
    store's audit table) or any callable; default: ``audit:`` of the config,
    itself ``"log"`` unless set.
    """

    def __init__(
        self,
        config: BridgeConfig,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        on_event: EventSink | None = None,
        store: Store | AsyncStore | None = None,
        mapping: Mapper | None = None,
        audit: AuditSink | Literal["log", "store"] | None = None,
        key_sources: Mapping[str, KeySource] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        # ``is None``, not truthiness: a sink that evaluates as false (an empty list
        # subclass with ``__call__``) is still the caller's sink.
        self._emit = on_event if on_event is not None else log_event
        self._own_client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._http_client = http_client
        # The own clients check every address they connect to (after DNS) against this.
        self._connect_policy = ConnectPolicy(
            allow_loopback=config.keys.allow_loopback_http, allow_private=config.keys.allow_private_networks
        )
        limits = Limits(
            max_token_bytes=config.limits.max_token_bytes,
            max_header_bytes=config.limits.max_header_bytes,
            max_json_depth=config.limits.max_json_depth,
            max_claims=config.limits.max_claims,
            max_audiences=config.limits.max_audiences,
        )
        self._verifier = Verifier(list(config.issuers), limits, clock, config.leeway)
        # One key source per profile: every issuer string of a profile shares its keys.
        self._profile_sources: dict[int, KeySource] = self._injected_sources(key_sources or {})
        # Async fetches use the injected async client; else the injected sync client in a
        # worker thread (never bypass what the application injected: mocks, proxies); else
        # the bridge's own short-lived async clients.
        async_option: AsyncClientOption = async_http_client
        if async_option is None and http_client is None:
            async_option = self._new_async_client
        for index, profile in enumerate(config.issuers):
            if id(profile) in self._profile_sources:
                continue  # injected: never fetched
            if profile.jwks_file is not None:
                self._profile_sources[id(profile)] = self._static_source(index, profile, profile.jwks_file)
                continue
            spec = profile.key_source
            self._profile_sources[id(profile)] = IssuerKeySource(
                spec,
                config=config.keys,
                clock=clock,
                emit=self._emit,
                sync_client=self._sync_client,
                async_client=async_option,
            )
        self._sources: dict[str, KeySource] = {
            iss: self._profile_sources[id(route.profile)] for iss, route in self._verifier.routes.items()
        }
        # Provisioning: the mapping is loaded now (a bad mapping fails at start-up), the
        # store on first login (no database is touched, nor SQLAlchemy imported, before).
        self._store_option = store
        self._mapping: Mapper | None = mapping if mapping is not None else _load_mapping(config)
        self._audit_option = audit
        self._provisioner_lock = threading.Lock()
        self._provisioner_built: Provisioner | None = None
        self._own_store: Any = None

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

    def _source(self, route: Route) -> KeySource:
        return self._profile_sources[id(route.profile)]

    def _injected_sources(self, given: Mapping[str, KeySource]) -> dict[int, KeySource]:
        """The application's key sources, by profile; each issuer must be configured."""
        chosen: dict[int, KeySource] = {}
        for iss, source in given.items():
            route = self._verifier.routes.get(iss)
            if route is None:
                raise ConfigError(f"key_sources: issuer {iss!r} is not configured", field="key_sources")
            previous = chosen.setdefault(id(route.profile), source)
            if previous is not source:
                # Every issuer string of one entry shares one key set.
                raise ConfigError(
                    f"key_sources: issuer {iss!r} shares its entry's keys with another issuer "
                    "string given a different key source",
                    field="key_sources",
                )
            if getattr(source, "on_event", None) is None:
                source.on_event = self._emit
        return chosen

    def _static_source(self, index: int, profile: ProviderProfile, jwks_file: str) -> StaticKeySet:
        """The ``jwks_file:`` of ``issuers[index]``, resolved beside the config file."""
        path = Path(jwks_file)
        if not path.is_absolute():
            path = self.config.base_dir / path
        try:
            source = StaticKeySet.from_file(
                path,
                format=profile.key_source.format,
                issuer=profile.key_source.name,
                max_keys=self.config.keys.max_keys,
            )
        except ConfigError as exc:
            where = f"issuers[{index}].jwks_file"
            raise ConfigError(
                f"{where}: {exc}",
                file=exc.file,
                field=where,
                problems=(f"{where}: {exc}",),
            ) from None
        source.on_event = self._emit
        return source

    # -- key prefetch -----------------------------------------------------------------------

    def warm_up(self) -> WarmUpReport:
        """Fetch every key set now, once each; report per issuer string (never raises for I/O)."""
        sources = self._unique_sources()
        return self._report({id(source): source.refresh() for source in sources})

    async def awarm_up(self) -> WarmUpReport:
        """Async twin of :meth:`warm_up`; key sets are fetched concurrently."""
        import asyncio

        sources = self._unique_sources()
        results = await asyncio.gather(*(source.arefresh() for source in sources))
        return self._report({id(s): ok for s, ok in zip(sources, results, strict=True)})

    def _unique_sources(self) -> list[KeySource]:
        # A profile with several issuer strings (Cognito, Google) has one key source: fetch it once.
        return list({id(source): source for source in self._sources.values()}.values())

    def _report(self, results: Mapping[int, bool]) -> WarmUpReport:
        """Spread each key source's outcome over every issuer string it serves."""
        succeeded = tuple(iss for iss, source in self._sources.items() if results[id(source)])
        failed = {
            iss: getattr(source, "last_error", None) or "failed"
            for iss, source in self._sources.items()
            if not results[id(source)]
        }
        return WarmUpReport(succeeded, failed)

    @property
    def issuers(self) -> tuple[str, ...]:
        """The exact issuer strings this bridge trusts (dynamic profiles not listed)."""
        return tuple(self._sources)

    # -- login: verify, map, provision ------------------------------------------------------

    @property
    def provisioner(self) -> Provisioner:
        """The provisioning engine (built on first use)."""
        built = self._provisioner_built
        if built is None:
            with self._provisioner_lock:
                built = self._provisioner_built
                if built is None:
                    built = self._provisioner_built = self._build_provisioner()
        return built

    @property
    def store(self) -> Store | AsyncStore:
        """Where users live (built on first use)."""
        return self.provisioner.store

    def _build_provisioner(self) -> Provisioner:
        from ._storage_check import check_storage_url
        from .provisioning import DefaultMapping, Provisioner, ProvisioningPolicy
        from .storage import SQLStore, log_audit

        store = self._store_option
        if store is None:
            # A missing driver is a ConfigError saying what to install, not an ImportError.
            url = check_storage_url(self.config.storage or DEFAULT_STORAGE, self.config.base_dir)
            store = self._own_store = SQLStore(url)
        # The audit= argument wins; else the config's audit: ("log" unless set).
        audit = self._audit_option if self._audit_option is not None else self.config.audit
        sink: AuditSink
        if audit is None or audit == "log":
            sink = log_audit
        elif audit == "store":
            audit_sink = getattr(store, "audit_sink", None)
            if audit_sink is None:
                raise ConfigError("audit='store' needs a store with an audit table (SQLStore)")
            sink = audit_sink()
        elif callable(audit):
            sink = audit
        else:
            raise ConfigError("audit must be 'log', 'store' or a callable")
        return Provisioner(
            store,
            self._mapping or DefaultMapping(),
            ProvisioningPolicy.from_config(self.config.provisioning),
            audit=sink,
            clock=self._clock,
        )

    def login(self, token: str | bytes) -> LoginResult:
        """Verify ``token``, map it and provision the local user; return a
        :class:`~federation.provisioning.LoginResult` (``result.user``, ``.identity``,
        ``.created``, ``.changes``, ``.token``).

        Raises :class:`~federation.errors.InvalidToken` (401),
        :class:`~federation.errors.KeySetUnavailable` (503),
        :class:`~federation.errors.LoginRefused` (403: ``access_denied``,
        ``account_disabled``, ``registration_closed``, ``link_refused``,
        ``invalid_attribute``) or :class:`~federation.errors.StorageError` (503).
        Every outcome is audited.
        """
        provisioner = self.provisioner
        try:
            vt = self.verify(token)
        except (InvalidToken, KeySetUnavailable) as exc:
            provisioner.login_failed(exc)
            raise
        return provisioner.login(vt, trust_email=vt.issuer_trusts_email)

    async def alogin(self, token: str | bytes) -> LoginResult:
        """Async twin of :meth:`login`."""
        provisioner = self.provisioner
        try:
            vt = await self.averify(token)
        except (InvalidToken, KeySetUnavailable) as exc:
            provisioner.login_failed(exc)
            raise
        return await provisioner.alogin(vt, trust_email=vt.issuer_trusts_email)

    def provision(self, token: VerifiedToken) -> LoginResult:
        """Map and provision a token this bridge has verified already (:meth:`login` without verify)."""
        return self.provisioner.login(token, trust_email=token.issuer_trusts_email)

    async def aprovision(self, token: VerifiedToken) -> LoginResult:
        """Async twin of :meth:`provision`."""
        return await self.provisioner.alogin(token, trust_email=token.issuer_trusts_email)

    def deprovision(
        self,
        *,
        issuer: str,
        subject: str,
        mode: DeprovisionMode = "disable",
        reason: str | None = None,
    ) -> DeprovisionResult | None:
        """Disable (default) or delete the local user of identity (``issuer``, ``subject``).

        ``issuer``/``subject`` are the identity key (``VerifiedToken.identity_key``,
        ``LoginResult.identity``). A disabled user's logins are refused with
        ``account_disabled``; a deleted user's identity is gone, so its next
        login creates a new user (when creation is on). Returns None when no
        such identity exists (idempotent). ``reason`` goes to the audit event.
        """
        return self.provisioner.deprovision(issuer, subject, mode=mode, reason=reason)

    async def adeprovision(
        self,
        *,
        issuer: str,
        subject: str,
        mode: DeprovisionMode = "disable",
        reason: str | None = None,
    ) -> DeprovisionResult | None:
        """Async twin of :meth:`deprovision`."""
        return await self.provisioner.adeprovision(issuer, subject, mode=mode, reason=reason)

    # -- HTTP client lifetime ---------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        if self._http_client is not None:
            return self._http_client
        with self._client_lock:
            if self._own_client is None:
                self._own_client = httpx.Client(transport=guarded_transport(self._connect_policy))
            return self._own_client

    def _new_async_client(self) -> httpx.AsyncClient:
        """A short-lived async client of the bridge's own (one per fetch: fetches are rare,
        and an event-loop-bound pool must not outlive its loop)."""
        return httpx.AsyncClient(transport=guarded_async_transport(self._connect_policy))

    def close(self) -> None:
        """Close the HTTP client the bridge created (injected clients are the caller's)."""
        with self._client_lock:
            if self._own_client is not None:
                self._own_client.close()
                self._own_client = None
        if self._own_store is not None:  # a store the bridge built from ``storage:``
            self._own_store.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _load_mapping(config: BridgeConfig) -> Mapper | None:
    """The mapping named by ``mapping:`` (a path relative to the config file, or inline)."""
    if config.mapping is None:
        return None
    from .mapping import Mapping

    return Mapping.from_config(config.mapping, config.base_dir)
