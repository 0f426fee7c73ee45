"""An in-process OpenID Connect issuer for tests: keys, JWKS, discovery, tokens.

Owns: the mock issuer's keys and their rotation, its JWKS and discovery
documents, minting signed tokens (any claims, any header, expired, unknown
kid, other algorithms), failure simulation (HTTP status, timeouts, garbage),
a record of the requests it served, and plugging into httpx through
``httpx.MockTransport`` (no test dependency) or respx (``with MockIdP():``).

Must not: touch the network. Everything is served in memory.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._keys import SigningKey, generate_signing_key, sign

__all__ = ["MockIdP", "mock_transport"]

# One respx router for every MockIdP inside a ``with`` block, so several mocks nest.
_ACTIVE: list[MockIdP] = []
_ACTIVE_LOCK = threading.Lock()
_ROUTER: Any = None


def _dispatch(request: httpx.Request) -> httpx.Response:
    for idp in reversed(_ACTIVE):
        if idp.handles(request):
            return idp.handler(request)
    # Fail loudly: a test that reaches for an unmocked host must not touch the network.
    raise httpx.ConnectError("no MockIdP serves this host (network is off in tests)", request=request)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class MockIdP:
    """A mock identity provider.

    >>> idp = MockIdP(issuer="https://idp.test", audience="my-client")
    >>> token = idp.mint(sub="u1", email="a@example.com", groups=["admins"])
    >>> bridge = idp.bridge()          # a Bridge wired to this issuer, no network
    >>> bridge.verify(token).subject
    'u1'
    """

    def __init__(
        self,
        issuer: str = "https://idp.test",
        audience: str = "my-client",
        *,
        alg: str = "RS256",
        algorithms: tuple[str, ...] | list[str] | None = None,
        jwks_path: str = "/jwks",
        cache_max_age: int | None = 300,
        clock: Callable[[], float] | None = None,
        provider: str = "oidc",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.provider = provider
        self.clock: Callable[[], float] = clock or time.time
        self.cache_max_age = cache_max_age
        parts = urlsplit(issuer)
        self._origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "https://idp.test"
        self.jwks_uri = self._origin + jwks_path
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.default_alg = alg
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []  # published
        self._active: dict[str, SigningKey] = {}  # alg -> key that signs
        for a in dict.fromkeys([alg, *(algorithms or ())]):
            self._add(generate_signing_key(a))
        self._outage: dict[str, Any] | None = None
        self._jwks_override: Any = None
        #: Every request the mock answered (or refused during an outage), oldest first.
        self.requests: list[httpx.Request] = []

    # -- keys ---------------------------------------------------------------------------

    def _add(self, key: SigningKey) -> SigningKey:
        with self._lock:
            self._keys.append(key)
            self._active[key.alg] = key
        return key

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The published signing keys."""
        return tuple(self._keys)

    def key_for(self, alg: str | None = None) -> SigningKey:
        """The key that signs ``alg`` (one is created and published if needed)."""
        alg = alg or self.default_alg
        key = self._active.get(alg)
        return key if key is not None else self._add(generate_signing_key(alg))

    def rotate_keys(self, *, keep_old: bool = True, alg: str | None = None) -> SigningKey:
        """Publish a new key for ``alg`` and sign with it from now on.

        With ``keep_old=False`` the previous key disappears from the JWKS.
        """
        alg = alg or self.default_alg
        new = generate_signing_key(alg)
        with self._lock:
            if not keep_old:
                self._keys = [k for k in self._keys if k.alg != alg]
            self._keys.append(new)
            self._active[alg] = new
        return new

    def remove_key(self, kid: str) -> None:
        """Stop publishing the key ``kid`` (it may still sign if active)."""
        with self._lock:
            self._keys = [k for k in self._keys if k.kid != kid]

    def jwks(self) -> dict[str, Any]:
        """The JWK Set document the issuer publishes."""
        return {"keys": [dict(k.public_jwk) for k in self._keys]}

    def discovery_document(self) -> dict[str, Any]:
        """The OIDC discovery document the issuer publishes."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self._origin + "/authorize",
            "token_endpoint": self._origin + "/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self._keys}),
        }

    # -- tokens -------------------------------------------------------------------------

    def claims(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        expired: bool = False,
        lifetime: int = 300,
        **extra: Any,
    ) -> dict[str, Any]:
        """The claims :meth:`mint` would sign (defaults filled in)."""
        now = int(self.clock())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        if expired:
            body["iat"] = now - lifetime - 600
            body["exp"] = now - 600  # well past any sane leeway
        body.update(claims or {})
        body.update(extra)
        return {k: v for k, v in body.items() if v is not None}

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        /,
        *,
        expired: bool = False,
        lifetime: int = 300,
        alg: str | None = None,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        **extra: Any,
    ) -> str:
        """A signed compact JWS.

        Claims come from ``claims`` and keyword arguments (a value of None
        drops a default claim, e.g. ``aud=None``). ``kid`` overrides the header
        kid while the active key still signs (``kid="unknown"``); ``headers``
        are merged into the header last (None drops a member); ``key`` signs
        with another key (e.g. an attacker's from ``generate_signing_key``).
        """
        signer = key or self.key_for(alg)
        use_alg = alg or signer.alg
        header: dict[str, Any] = {"alg": use_alg, "kid": kid or signer.kid, "typ": "JWT"}
        for name, value in (headers or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        body = self.claims(claims, expired=expired, lifetime=lifetime, **extra)
        return self.sign_raw(json.dumps(header).encode(), json.dumps(body).encode(), signer, alg=use_alg)

    def sign_raw(
        self, header: bytes, payload: bytes, key: SigningKey | None = None, *, alg: str | None = None
    ) -> str:
        """Sign exact header and payload bytes (for malformed-JSON tests)."""
        signer = key or self.key_for(alg)
        signing_input = _b64(header) + "." + _b64(payload)
        return signing_input + "." + _b64(sign(signer.private_key, alg or signer.alg, signing_input.encode()))

    # -- failure simulation ---------------------------------------------------------------

    def outage(self, status: int = 500, *, timeout: bool = False, body: bytes | None = None) -> None:
        """Fail every request from now on: an HTTP ``status``, a timeout, or a garbage ``body`` with 200."""
        self._outage = {"status": status, "timeout": timeout, "body": body}

    def recover(self) -> None:
        """End an outage."""
        self._outage = None

    def serve_jwks(self, document: Any) -> None:
        """Serve ``document`` (any JSON value, or raw bytes) as the JWKS until reset with None."""
        self._jwks_override = document

    # -- HTTP ----------------------------------------------------------------------------------

    def handles(self, request: httpx.Request) -> bool:
        """True when ``request`` is for this issuer's origin."""
        return f"{request.url.scheme}://{request.url.netloc.decode()}" == self._origin

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the function behind the transports)."""
        self.requests.append(request)
        outage = self._outage
        if outage is not None:
            if outage["timeout"]:
                raise httpx.ReadTimeout("mock issuer outage", request=request)
            if outage["body"] is not None:
                return httpx.Response(
                    200, content=outage["body"], headers={"content-type": "application/json"}
                )
            return httpx.Response(outage["status"], text="mock issuer outage")
        url = str(request.url).split("?")[0]
        headers = {"content-type": "application/json"}
        if self.cache_max_age is not None:
            headers["cache-control"] = f"public, max-age={self.cache_max_age}"
        if url == self.discovery_url:
            return httpx.Response(200, json=self.discovery_document(), headers=headers)
        if url == self.jwks_uri:
            override = self._jwks_override
            if isinstance(override, bytes):
                return httpx.Response(200, content=override, headers=headers)
            return httpx.Response(200, json=self.jwks() if override is None else override, headers=headers)
        return httpx.Response(404, text="not found")

    def transport(self) -> httpx.MockTransport:
        """An httpx transport serving this issuer (works for sync and async clients)."""
        return mock_transport(self)

    def requests_to(self, what: str = "jwks") -> list[httpx.Request]:
        """The requests made to the JWKS (``"jwks"``) or discovery (``"discovery"``) URL."""
        url = self.jwks_uri if what == "jwks" else self.discovery_url
        return [r for r in self.requests if str(r.url).split("?")[0] == url]

    # -- configuration helpers --------------------------------------------------------------

    def issuer_config(self, *, discovery: bool = False, **overrides: Any) -> dict[str, Any]:
        """The bridge's issuer entry for this mock (keys from its JWKS, or discovery)."""
        entry: dict[str, Any] = {
            "provider": self.provider,
            "issuer": self.issuer,
            "audiences": [self.audience],
        }
        if not discovery:
            entry["jwks_uri"] = self.jwks_uri
        entry.update(overrides)
        return entry

    def bridge_config(self, *, discovery: bool = False, **top: Any) -> dict[str, Any]:
        """A whole bridge config trusting only this mock issuer."""
        return {"issuers": [self.issuer_config(discovery=discovery)], **top}

    def bridge(
        self, *, discovery: bool = False, config: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """A :class:`~federation.Bridge` wired to this mock: no network, the mock's clock."""
        from federation import Bridge

        options.setdefault("http_client", httpx.Client(transport=self.transport()))
        options.setdefault("async_http_client", httpx.AsyncClient(transport=self.transport()))
        options.setdefault("clock", self.clock)
        return Bridge.from_dict(
            dict(config) if config is not None else self.bridge_config(discovery=discovery), **options
        )

    # -- respx ------------------------------------------------------------------------------

    def __enter__(self) -> MockIdP:
        """Serve this issuer to every httpx client in the block (through respx)."""
        global _ROUTER
        try:
            import respx
        except ImportError:  # pragma: no cover - respx ships with the test extra
            raise RuntimeError("'with MockIdP()' needs respx; use idp.transport() without it") from None
        with _ACTIVE_LOCK:
            if _ROUTER is None:
                router = respx.mock(assert_all_called=False, assert_all_mocked=True)
                router.route().mock(side_effect=_dispatch)
                router.__enter__()
                _ROUTER = router
            _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        global _ROUTER
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            if not _ACTIVE and _ROUTER is not None:
                router, _ROUTER = _ROUTER, None
                router.__exit__(None, None, None)

    @contextmanager
    def installed(self) -> Iterator[MockIdP]:
        """``with idp.installed():`` — the same as ``with idp:``."""
        with self:
            yield self


def mock_transport(*idps: MockIdP) -> httpx.MockTransport:
    """One transport serving several mock issuers; other hosts get 404."""

    def route(request: httpx.Request) -> httpx.Response:
        for idp in idps:
            if idp.handles(request):
                return idp.handler(request)
        return httpx.Response(404, text="no mock issuer for this host")

    return httpx.MockTransport(route)
