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
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import httpx

from ._keys import KeySource, StaticKeySet
from ._keys._connect import ConnectPolicy, guarded_async_transport, guarded_transport
from ._keys._source import AsyncClientOption, IssuerKeySource
from ._rfc7515 import Limits
from ._rfc7517 import VerificationKey
from ._verify import Route, VerifiedToken, Verifier
from .config import BridgeConfig, load_config
from .errors import (
    BadSignature,
    ConfigError,
    FederationError,
    InvalidToken,
    KeySetUnavailable,
    WrongTokenType,
)
from .events import EventSink, log_event

if TYPE_CHECKING:
    from ._oidc_logout import LogoutToken
    from ._profile import ProviderProfile
    from ._rfc7515 import CompactJWS
    from ._rfc7519 import TokenType
    from ._sessions._service import Principal, Session, SessionService
    from ._sessions._tokens import SessionTokens
    from .provisioning import DeprovisionMode, DeprovisionResult, LoginResult, Mapper, Provisioner
    from .storage import AsyncStore, AuditSink, SessionRecord, SessionStore, Store, User

__all__ = ["Bridge", "WarmUpReport"]

_Verified = TypeVar("_Verified")

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

    For sessions (``sessions:``, docs/sessions.md): ``session_store`` is where
    sessions and revocations live (default: the SQL store's tables for
    ``revocation: store``, else memory); ``environ`` is where ``{env: NAME}``
    key entries are read (default: ``os.environ``). The keys load here: a
    missing or mismatched key is a :class:`~federation.errors.ConfigError` now.
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
        session_store: SessionStore | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        # ``is None``, not truthiness: a sink that evaluates as false (an empty list
        # subclass with ``__call__``) is still the caller's sink.
        self._emit = on_event if on_event is not None else log_event
        self._own_client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._http_client = http_client
        self._async_http_client = async_http_client
        # The own clients check every address they connect to (after DNS) against this.
        self._connect_policy = ConnectPolicy(
            allow_loopback=config.keys.allow_loopback_http, allow_private=config.keys.allow_private_networks
        )
        limits = _limits(config)
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
        # Sessions: the keys load now (a missing or mismatched key fails at start-up),
        # the session store with the provisioner (on first use).
        self._limits = limits
        self._session_tokens: SessionTokens | None = session_tokens(config, environ)
        self._session_store_option = session_store
        self._sessions_built: SessionService | None = None
        self._own_session_store: Any = None  # one the bridge opened (Redis): closed with it

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
        key = None
        try:
            key = self._profile_sources[id(route.profile)].get_key(jws.kid, jws.alg)  # _source, inline
            return self._verifier.finish(jws, route, key)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer  # every rejection after routing names the issuer
            if key is None or type(exc) is not BadSignature:
                raise
            failure = exc
        return self._renewed(jws, route, key, failure, self._verifier.finish)

    async def averify(self, token: str | bytes) -> VerifiedToken:
        """Async twin of :meth:`verify`: same rules, non-blocking key fetches."""
        jws, route = self._verifier.prepare(token)
        key = None
        try:
            key = await self._source(route).aget_key(jws.kid, jws.alg)
            return self._verifier.finish(jws, route, key)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            if key is None or type(exc) is not BadSignature:
                raise
            failure = exc
        return await self._arenewed(jws, route, key, failure, self._verifier.finish)

    def verify_logout_token(self, token: str | bytes) -> LogoutToken:
        """Verify an OIDC back-channel logout token of a configured issuer (signed by its
        keys, for this client, with the logout event and no nonce); see
        :meth:`backchannel_logout`. Raises as :meth:`verify` does."""
        return self._verify_by(token, self._verifier.finish_logout)

    async def averify_logout_token(self, token: str | bytes) -> LogoutToken:
        """Async twin of :meth:`verify_logout_token`."""
        return await self._averify_by(token, self._verifier.finish_logout)

    def _verify_signed_in(self, id_token: str | bytes, userinfo: Mapping[str, Any]) -> VerifiedToken:
        """The sign-in's id token verified, its claims completed by the UserInfo response the
        sign-in itself fetched from the provider (``login.userinfo``; ``_oidc_userinfo``).
        Not public: no caller hands claims of its own to a verification."""
        return self._verify_by(id_token, self._userinfo_finish(userinfo))

    async def _averify_signed_in(self, id_token: str | bytes, userinfo: Mapping[str, Any]) -> VerifiedToken:
        """Async twin of :meth:`_verify_signed_in`."""
        return await self._averify_by(id_token, self._userinfo_finish(userinfo))

    def _userinfo_finish(
        self, userinfo: Mapping[str, Any]
    ) -> Callable[[CompactJWS, Route, VerificationKey], VerifiedToken]:
        verifier = self._verifier
        return lambda jws, route, key: verifier.finish_with_userinfo(jws, route, key, userinfo)

    def _verify_by(
        self, token: str | bytes, finish: Callable[[CompactJWS, Route, VerificationKey], _Verified]
    ) -> _Verified:
        """:meth:`verify`'s steps, ending in ``finish`` (a logout token's rules, a sign-in's)."""
        jws, route = self._verifier.prepare(token)
        key = None
        try:
            key = self._source(route).get_key(jws.kid, jws.alg)
            return finish(jws, route, key)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            if key is None or type(exc) is not BadSignature:
                raise
            failure = exc
        return self._renewed(jws, route, key, failure, finish)

    async def _averify_by(
        self, token: str | bytes, finish: Callable[[CompactJWS, Route, VerificationKey], _Verified]
    ) -> _Verified:
        """Async twin of :meth:`_verify_by`."""
        jws, route = self._verifier.prepare(token)
        key = None
        try:
            key = await self._source(route).aget_key(jws.kid, jws.alg)
            return finish(jws, route, key)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            if key is None or type(exc) is not BadSignature:
                raise
            failure = exc
        return await self._arenewed(jws, route, key, failure, finish)

    def backchannel_logout(self, token: str | bytes) -> str | None:
        """OIDC Back-Channel Logout 1.0: the identity provider says a user logged out.

        Verifies the logout token, acts on it once (a replay is ``TokenRevoked``, code
        ``logout_token_replayed``), and refuses every session and token of the user whose
        identity is the token's ``sub`` (:meth:`revoke_user`: external tokens issued
        before it too). Returns that user's id, None when no user has the identity. A
        token naming only a ``sid`` is ``InvalidClaim`` (code ``logout_without_sub``):
        sessions here are ended per user. Needs ``sessions:``.
        """
        from ._sessions._service import run

        return run(self.sessions.logout_flow(self.verify_logout_token(token)))

    async def abackchannel_logout(self, token: str | bytes) -> str | None:
        """Async twin of :meth:`backchannel_logout`."""
        from ._sessions._service import arun

        return await arun(self.sessions.logout_flow(await self.averify_logout_token(token)))

    def _source(self, route: Route) -> KeySource:
        return self._profile_sources[id(route.profile)]

    def _renewed(
        self,
        jws: CompactJWS,
        route: Route,
        key: VerificationKey,
        failure: BadSignature,
        finish: Callable[[CompactJWS, Route, VerificationKey], _Verified],
    ) -> _Verified:
        """``key`` failed the signature: once more with the key the source now publishes in its
        place (an issuer that replaced a key under the same kid), if it renews keys and has one."""
        renew = getattr(self._source(route), "renew_key", None)
        try:
            renewed = renew(jws.kid, jws.alg, key) if renew is not None else None
        except FederationError:
            raise
        except Exception:  # an application's source failing: the signature's verdict stands
            renewed = None
        return self._finish_renewed(jws, route, renewed, failure, finish)

    async def _arenewed(
        self,
        jws: CompactJWS,
        route: Route,
        key: VerificationKey,
        failure: BadSignature,
        finish: Callable[[CompactJWS, Route, VerificationKey], _Verified],
    ) -> _Verified:
        """Async twin of :meth:`_renewed`."""
        renew = getattr(self._source(route), "arenew_key", None)
        try:
            renewed = await renew(jws.kid, jws.alg, key) if renew is not None else None
        except FederationError:
            raise
        except Exception:  # an application's source failing: the signature's verdict stands
            renewed = None
        return self._finish_renewed(jws, route, renewed, failure, finish)

    @staticmethod
    def _finish_renewed(
        jws: CompactJWS,
        route: Route,
        renewed: VerificationKey | None,
        failure: BadSignature,
        finish: Callable[[CompactJWS, Route, VerificationKey], _Verified],
    ) -> _Verified:
        if not isinstance(renewed, VerificationKey) or (jws.kid is not None and renewed.kid != jws.kid):
            raise failure  # none, or not a key for this token's kid (an application's source)
        try:
            return finish(jws, route, renewed)
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            raise

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

    def warm_up(self, *, cold_only: bool = False) -> WarmUpReport:
        """Fetch every key set now, once each; report per issuer string (never raises for I/O).

        ``cold_only``: fetch only the key sets that cannot answer from memory (a source's
        optional ``ready``); the others count as succeeded. A health check asks this, so
        that probing it never makes the service fetch from the identity provider.
        """
        sources, warm = self._sources_to_warm(cold_only)
        return self._report({**warm, **{id(source): source.refresh() for source in sources}})

    async def awarm_up(self, *, cold_only: bool = False) -> WarmUpReport:
        """Async twin of :meth:`warm_up`; key sets are fetched concurrently."""
        import asyncio

        sources, warm = self._sources_to_warm(cold_only)
        results = await asyncio.gather(*(source.arefresh() for source in sources))
        return self._report({**warm, **{id(s): ok for s, ok in zip(sources, results, strict=True)}})

    def _sources_to_warm(self, cold_only: bool) -> tuple[list[KeySource], dict[int, bool]]:
        sources = self._unique_sources()
        if not cold_only:
            return sources, {}
        warm = {id(s): True for s in sources if getattr(s, "ready", False) is True}
        return [s for s in sources if id(s) not in warm], warm

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

    def preflight(self, *, environ: Mapping[str, str] | None = None) -> None:
        """Build now, offline, what is otherwise built on first use; raise what it would raise.

        The store and session objects (no connection is opened: a missing driver or extra,
        such as ``redis`` for ``sessions.revocation: redis://`` or the ``async`` extra for
        ``storage_async``), the password hasher of ``local_accounts:`` (argon2-cffi), and the
        secrets of ``web:`` (read from ``environ``, default the process environment, as
        :func:`federation.web.create_app` reads them). Each is a
        :class:`~federation.errors.ConfigError` at start-up instead of at the first login.
        ``federation check-config`` and Django's ``manage.py check`` run it.
        """
        _ = self.sessions  # builds the provisioner (and its store object) first
        if self.config.web is not None:
            from .web import WebSettings

            WebSettings.load(self, environ=environ)

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
        from .provisioning import DefaultMapping, Provisioner, ProvisioningPolicy
        from .storage import SQLStore, check_storage_url, log_audit

        store = self._store_option
        if store is None:
            # A missing driver is a ConfigError saying what to install, not an ImportError.
            url = check_storage_url(self.config.storage or DEFAULT_STORAGE, self.config.base_dir)
            if self.config.storage_async:
                try:
                    from .storage import AsyncSQLStore
                except ImportError as exc:
                    raise ConfigError(str(exc), field="storage_async") from None
                store = self._own_store = AsyncSQLStore(url)
            else:
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

    def login(self, token: str | bytes, *, token_type: TokenType | None = None) -> LoginResult:
        """Verify ``token``, map it and provision the local user; return a
        :class:`~federation.provisioning.LoginResult` (``result.user``, ``.identity``,
        ``.created``, ``.changes``, ``.token``).

        Raises :class:`~federation.errors.InvalidToken` (401),
        :class:`~federation.errors.KeySetUnavailable` (503),
        :class:`~federation.errors.LoginRefused` (403: ``access_denied``,
        ``account_disabled``, ``registration_closed``, ``link_refused``,
        ``invalid_attribute``) or :class:`~federation.errors.StorageError` (503).
        Every outcome is audited. ``token_type``: the kind the caller was told the token
        is (RFC 8693's ``subject_token_type``); a token of another kind is
        :class:`~federation.errors.WrongTokenType`.
        """
        provisioner = self.provisioner
        try:
            vt = _of_kind(self.verify(token), token_type)
        except (InvalidToken, KeySetUnavailable) as exc:
            provisioner.login_failed(exc)
            raise
        return provisioner.login(vt, trust_email=vt.issuer_trusts_email)

    async def alogin(self, token: str | bytes, *, token_type: TokenType | None = None) -> LoginResult:
        """Async twin of :meth:`login`."""
        provisioner = self.provisioner
        try:
            vt = _of_kind(await self.averify(token), token_type)
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
        Every session and token the user holds is refused at once (its generation moves on).
        """
        result = self.provisioner.deprovision(issuer, subject, mode=mode, reason=reason)
        if result is not None:
            from ._sessions._service import run

            run(self.sessions.revoke_user_flow(result.user.id, *self._deprovision_reason(result)))
        return result

    async def adeprovision(
        self,
        *,
        issuer: str,
        subject: str,
        mode: DeprovisionMode = "disable",
        reason: str | None = None,
    ) -> DeprovisionResult | None:
        """Async twin of :meth:`deprovision`."""
        result = await self.provisioner.adeprovision(issuer, subject, mode=mode, reason=reason)
        if result is not None:
            from ._sessions._service import arun

            await arun(self.sessions.revoke_user_flow(result.user.id, *self._deprovision_reason(result)))
        return result

    def deprovision_user(
        self, user_id: str, *, mode: DeprovisionMode = "disable", reason: str | None = None
    ) -> DeprovisionResult | None:
        """Disable (default) or delete the user ``user_id`` (any user: a local account too);
        every session and token of the user is refused at once. None when no such user."""
        result = self.provisioner.deprovision_user(user_id, mode=mode, reason=reason)
        if result is not None:
            from ._sessions._service import run

            run(self.sessions.revoke_user_flow(result.user.id, *self._deprovision_reason(result)))
        return result

    async def adeprovision_user(
        self, user_id: str, *, mode: DeprovisionMode = "disable", reason: str | None = None
    ) -> DeprovisionResult | None:
        """Async twin of :meth:`deprovision_user`."""
        result = await self.provisioner.adeprovision_user(user_id, mode=mode, reason=reason)
        if result is not None:
            from ._sessions._service import arun

            await arun(self.sessions.revoke_user_flow(result.user.id, *self._deprovision_reason(result)))
        return result

    def _deprovision_reason(self, result: DeprovisionResult) -> tuple[str, bool]:
        # Audited as user_sessions_revoked only where sessions exist; the generation moves regardless
        # (authenticate's cached external tokens of the user are refused too). A user disabled
        # already (action "none") has it moved again: the call that disabled it may have failed
        # after the store's commit (revocation storage down), and this repeat finishes it.
        return f"deprovision:{result.action}", self.config.sessions is not None

    # -- the app's own sessions --------------------------------------------------------------

    @property
    def sessions(self) -> SessionService:
        """The session layer (built on first use, with the store)."""
        built = self._sessions_built
        if built is None:
            _ = self.provisioner  # built first: the lock below is not reentrant
            with self._provisioner_lock:
                built = self._sessions_built
                if built is None:
                    built = self._sessions_built = self._build_sessions()
                    # The per-request path one call shorter: from now on ``bridge.authenticate``
                    # is the service's own bound method (what the methods below call).
                    self.__dict__["authenticate"] = built.authenticate
                    self.__dict__["aauthenticate"] = built.aauthenticate
        return built

    def _build_sessions(self) -> SessionService:
        from ._sessions._service import ExternalTokens, SessionPolicy, SessionService
        from .storage import MemorySessionStore

        provisioner = self._provisioner_built
        assert provisioner is not None
        section = self.config.sessions
        store = self._session_store_option
        if store is None and section is not None and section.revocation.startswith(("redis://", "rediss://")):
            from .storage import RedisSessionStore

            store = RedisSessionStore.from_url(section.revocation)
            self._own_session_store = store
        if store is None:
            if section is not None and section.revocation == "store":
                factory = getattr(provisioner.store, "session_store", None)
                if factory is not None:
                    store = cast("SessionStore", factory())
                elif type(provisioner.store).__name__ == "MemoryStore":
                    store = MemorySessionStore()  # a memory user store: its sessions in memory too
                else:
                    raise ConfigError(
                        "sessions.revocation: store needs a store with session tables (SQLStore), "
                        "or pass Bridge(session_store=...)",
                        field="sessions.revocation",
                    )
            else:
                store = MemorySessionStore()
        policy = (
            SessionPolicy()
            if section is None
            else SessionPolicy(
                access_ttl=section.access_ttl,
                refresh_ttl=section.refresh_ttl,
                refresh_reuse_grace=section.refresh_reuse_grace,
                max_lifetime=section.max_lifetime,
                touch_interval=section.touch_interval,
                revoke_previous=section.revoke_previous,
                user_check=section.user_check,
                token_cache_size=section.token_cache_size,
                outage_grace=section.outage_grace,
            )
        )
        external = ExternalTokens(
            self._verify_with_key,
            self._averify_with_key,
            self._key_of,
            self._akey_of,
            lambda token: self._source(self._verifier.routes[token.issuer]),
            lambda token: self.config.leeway,
        )
        passwords = None
        accounts = self.config.local_accounts
        if accounts is not None:
            from ._sessions._passwords import LocalAccountPolicy, Passwords

            passwords = Passwords(
                LocalAccountPolicy(
                    min_password_length=accounts.min_password_length,
                    max_password_length=accounts.max_password_length,
                    max_attempts=accounts.max_attempts,
                    lockout=accounts.lockout,
                    registration=accounts.registration,
                )
            )
        return SessionService(
            self._session_tokens,
            store,
            lambda: provisioner,
            policy,
            clock=self._clock,
            audit=lambda: provisioner.audit,
            external=external,
            limits=self._limits,
            passwords=passwords,
            default_roles=frozenset(getattr(provisioner.mapper, "default_roles", ())),
        )

    def _verify_with_key(self, token: str) -> tuple[VerifiedToken, Any]:
        jws, route = self._verifier.prepare(token)
        key = None
        try:
            key = self._profile_sources[id(route.profile)].get_key(jws.kid, jws.alg)  # _source, inline
            return self._verifier.finish(jws, route, key), key
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            if key is None or type(exc) is not BadSignature:
                raise
            failure = exc
        return self._renewed(jws, route, key, failure, self._finish_with_key)

    async def _averify_with_key(self, token: str) -> tuple[VerifiedToken, Any]:
        jws, route = self._verifier.prepare(token)
        key = None
        try:
            key = await self._source(route).aget_key(jws.kid, jws.alg)
            return self._verifier.finish(jws, route, key), key
        except InvalidToken as exc:
            exc.issuer = exc.issuer or route.issuer
            if key is None or type(exc) is not BadSignature:
                raise
            failure = exc
        return await self._arenewed(jws, route, key, failure, self._finish_with_key)

    def _finish_with_key(
        self, jws: CompactJWS, route: Route, key: VerificationKey
    ) -> tuple[VerifiedToken, Any]:
        return self._verifier.finish(jws, route, key), key

    def _key_of(self, token: VerifiedToken) -> Any:
        route = self._verifier.routes[token.issuer]
        return self._source(route).get_key(token.key_id, token.algorithm)

    async def _akey_of(self, token: VerifiedToken) -> Any:
        route = self._verifier.routes[token.issuer]
        return await self._source(route).aget_key(token.key_id, token.algorithm)

    def exchange(self, token: str | bytes, *, token_type: TokenType | None = None) -> Session:
        """Verify an external token, log its user in and issue the app's own session.

        Raises what :meth:`login` raises (``token_type`` as there); the session is audited
        as ``session_issued``.
        """
        return self.issue_session(self.login(token, token_type=token_type))

    async def aexchange(self, token: str | bytes, *, token_type: TokenType | None = None) -> Session:
        """Async twin of :meth:`exchange`."""
        return await self.aissue_session(await self.alogin(token, token_type=token_type))

    def issue_session(self, subject: User | LoginResult) -> Session:
        """A new session (access and refresh token) for a user or a login's user.

        :class:`~federation.errors.AccountDisabled` for a disabled user.
        """
        from ._sessions._service import run

        return run(self.sessions.issue_flow(subject, _via(subject)))

    async def aissue_session(self, subject: User | LoginResult) -> Session:
        """Async twin of :meth:`issue_session`."""
        from ._sessions._service import arun

        return await arun(self.sessions.issue_flow(subject, _via(subject)))

    def authenticate(self, token: str) -> Principal:
        """Who presents ``token`` (a session token, or an external token: one login per distinct token).

        The per-request path: a repeated token is answered from memory after
        re-checking expiry, its key (external), revocation and the user's
        status (at most ``sessions.user_check`` seconds stale). Raises
        :class:`~federation.errors.InvalidToken` (401; ``TokenRevoked`` for a
        revoked one), :class:`~federation.errors.LoginRefused` (403; a disabled
        user), :class:`~federation.errors.KeySetUnavailable` or
        :class:`~federation.errors.StorageError` (503).
        """
        return (self._sessions_built or self.sessions).authenticate(token)  # the per-request path

    async def aauthenticate(self, token: str) -> Principal:
        """Async twin of :meth:`authenticate`."""
        return await (self._sessions_built or self.sessions).aauthenticate(token)

    def refresh(self, refresh_token: str) -> Session:
        """Rotate a refresh token into a new pair (the user's current roles).

        :class:`~federation.errors.RefreshReused` when it was used before (past
        ``sessions.refresh_reuse_grace``: the whole session is revoked),
        ``TokenRevoked``, ``TokenExpired``, ``AccountDisabled``.
        """
        from ._sessions._service import run

        return run(self.sessions.refresh_flow(refresh_token))

    async def arefresh(self, refresh_token: str) -> Session:
        """Async twin of :meth:`refresh`."""
        from ._sessions._service import arun

        return await arun(self.sessions.refresh_flow(refresh_token))

    def revoke(self, token: str) -> bool:
        """Revoke a session access token (its ``jti``) or refresh token (its whole session).

        Idempotent (RFC 7009): an unknown, invalid or already revoked token is
        no error; returns True when a token of this app was found.
        """
        from ._sessions._service import run

        return run(self.sessions.revoke_flow(token))

    async def arevoke(self, token: str) -> bool:
        """Async twin of :meth:`revoke`."""
        from ._sessions._service import arun

        return await arun(self.sessions.revoke_flow(token))

    def revoke_user(self, user_id: str, *, reason: str | None = None) -> int:
        """Refuse every session and token of the user issued so far, at once; the new generation."""
        from ._sessions._service import run

        return run(self.sessions.revoke_user_flow(user_id, reason))

    async def arevoke_user(self, user_id: str, *, reason: str | None = None) -> int:
        """Async twin of :meth:`revoke_user`."""
        from ._sessions._service import arun

        return await arun(self.sessions.revoke_user_flow(user_id, reason))

    def sessions_of(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions: ``session_id``, ``issued_at``, ``expires_at``, ``refreshed_at``."""
        from ._sessions._service import run

        return run(self.sessions.sessions_flow(user_id))

    async def asessions_of(self, user_id: str) -> list[SessionRecord]:
        """Async twin of :meth:`sessions_of`."""
        from ._sessions._service import arun

        return await arun(self.sessions.sessions_flow(user_id))

    def revoke_session(self, session_id: str, *, reason: str | None = None) -> bool:
        """Revoke one session (a lost phone) at once; False when unknown. ``reason`` is audited."""
        from ._sessions._service import run

        return run(self.sessions.revoke_session_flow(session_id, reason))

    async def arevoke_session(self, session_id: str, *, reason: str | None = None) -> bool:
        """Async twin of :meth:`revoke_session`."""
        from ._sessions._service import arun

        return await arun(self.sessions.revoke_session_flow(session_id, reason))

    def register_local(self, *, username: str, email: str | None = None, password: str) -> User:
        """Create a local password account (``local_accounts:``); the new user.

        :class:`~federation.errors.AccountExists` when the username or email is
        taken, :class:`~federation.errors.InvalidUserData` for a bad username,
        email or password, :class:`~federation.errors.RegistrationClosed`.
        """
        from ._sessions._service import run

        return run(self.sessions.register_flow(username, email, password))

    async def aregister_local(self, *, username: str, email: str | None = None, password: str) -> User:
        """Async twin of :meth:`register_local` (hashing runs in a worker thread)."""
        from ._sessions._service import arun

        return await arun(self.sessions.register_flow(username, email, password))

    def password_login(self, login: str, password: str, client_address: str | None = None) -> Session:
        """Sign in with a username or email and a password; a session.

        Every failure of the pair is :class:`~federation.errors.InvalidCredentials`
        (unknown account and wrong password alike, in similar time);
        :class:`~federation.errors.AccountLocked` after ``max_attempts`` failures
        for the account or the client address.
        """
        from ._sessions._service import run

        return run(self.sessions.password_flow(login, password, client_address))

    async def apassword_login(self, login: str, password: str, client_address: str | None = None) -> Session:
        """Async twin of :meth:`password_login`."""
        from ._sessions._service import arun

        return await arun(self.sessions.password_flow(login, password, client_address))

    def session_jwks(self) -> dict[str, Any]:
        """The public keys of session tokens, for ``/.well-known/jwks.json`` (empty for HS256)."""
        if self._session_tokens is None:
            raise ConfigError("sessions are not configured: add a sessions: section", field="sessions")
        return self._session_tokens.jwks()

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

    def now(self) -> float:
        """The bridge's clock reading (Unix time; the injected ``clock`` in tests)."""
        return self._clock()

    def transport(self, inner: httpx.BaseTransport | None = None) -> httpx.BaseTransport:
        """The sync twin of :meth:`async_transport`: for a sync framework's sign-in flow
        (Django's views), over ``inner``, the injected client's transport or the
        address-checking one, with the same bound."""
        from ._keys._bounded import BoundedTransport

        if inner is None:
            injected = self._http_client
            inner = injected._transport if injected is not None else guarded_transport(self._connect_policy)
        return BoundedTransport(inner, self.config.keys.max_response_bytes)

    def async_transport(self, inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        """The transport for other outbound calls to issuers (the sign-in flow's discovery
        document and token endpoint): over ``inner`` when given, else the injected async
        client's (a mock, a proxy), else a new one that checks every address it connects
        to like the bridge's own key fetches. Either way a response over
        ``keys.max_response_bytes`` is refused as it streams (an ``httpx`` transport
        error), and compressed ones are never asked for."""
        from ._keys._bounded import BoundedAsyncTransport

        if inner is None:
            injected = self._async_http_client
            inner = (
                injected._transport if injected is not None else guarded_async_transport(self._connect_policy)
            )
        return BoundedAsyncTransport(inner, self.config.keys.max_response_bytes)

    def close(self) -> None:
        """Close the HTTP client the bridge created (injected clients are the caller's)."""
        with self._client_lock:
            if self._own_client is not None:
                self._own_client.close()
                self._own_client = None
        if self._own_store is not None:  # a store the bridge built from ``storage:``
            self._own_store.close()
        if self._own_session_store is not None:  # the Redis revocation store of ``sessions:``
            self._own_session_store.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _of_kind(verified: VerifiedToken, token_type: TokenType | None) -> VerifiedToken:
    """``verified``, when it is the kind its presenter said (None: any kind the issuer accepts)."""
    if token_type is not None and verified.token_type != token_type:
        raise WrongTokenType(
            f"the token is an {verified.token_type} token, not the {token_type} token it was presented as",
            issuer=verified.issuer,
        )
    return verified


def _via(subject: object) -> str:
    return "user" if type(subject).__name__ == "User" else "login"


def _limits(config: BridgeConfig) -> Limits:
    return Limits(
        max_token_bytes=config.limits.max_token_bytes,
        max_header_bytes=config.limits.max_header_bytes,
        max_json_depth=config.limits.max_json_depth,
        max_claims=config.limits.max_claims,
        max_audiences=config.limits.max_audiences,
    )


def session_tokens(config: BridgeConfig, environ: Mapping[str, str] | None = None) -> SessionTokens | None:
    """The session token minter of ``sessions:``, its keys loaded (None without the section);
    a :class:`~federation.errors.ConfigError` when a key is missing or does not fit."""
    section = config.sessions
    if section is None:
        return None
    from ._sessions._keyring import SessionKeyRing, SessionSecret
    from ._sessions._tokens import SessionTokens

    ring: SessionKeyRing | SessionSecret
    if section.algorithm == "HS256":
        assert section.secret is not None  # the config model requires it
        ring = SessionSecret.load(section.secret.entry(), base_dir=config.base_dir, environ=environ)
    else:
        entries = [k.entry() for k in section.keys]
        ring = SessionKeyRing.load(section.algorithm, entries, base_dir=config.base_dir, environ=environ)
    return SessionTokens(
        ring,
        issuer=section.issuer,
        audience=section.audience,
        access_ttl=section.access_ttl,
        leeway=section.leeway,
        limits=_limits(config),
    )


def _load_mapping(config: BridgeConfig) -> Mapper | None:
    """The mapping named by ``mapping:`` (a path relative to the config file, or inline)."""
    if config.mapping is None:
        return None
    from .mapping import Mapping

    return Mapping.from_config(config.mapping, config.base_dir)
