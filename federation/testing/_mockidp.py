"""An in-process OpenID Connect issuer for tests: keys, JWKS, discovery, tokens.

Owns: the mock issuer's keys and their rotation, its key and discovery
documents (a JWK Set, or Google's ``{kid: PEM certificate}`` map with a
self-signed certificate per key), minting tokens signed through joserfc (any
claims, any header, expired, not yet valid, unknown kid, other algorithms,
provider claim shapes), failure simulation (HTTP status, timeouts, garbage), a record of the
requests it served, and plugging into httpx through ``httpx.MockTransport``
(no test dependency) or respx (``with MockIdP():``), or serving over a real
loopback HTTP server (``with idp.serve() as url:``).

Must not: touch the network beyond a loopback server it starts itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from joserfc.util import urlsafe_b64encode

from ._keys import SigningKey, generate_signing_key, sign
from ._server import LoopbackServer
from ._shapes import ProviderShape, TokenKind, merge_headers, provider_shape

if TYPE_CHECKING:
    from federation import Bridge

__all__ = ["KeyFormat", "MockIdP", "mock_transport", "x509_jwk_members"]

#: Where the route a request took is noted (``request.extensions[ROUTE]``).
ROUTE = "federation.testing.route"

#: Said wherever the mock would install into httpx without respx (``with idp:``, the fixture).
RESPX_MISSING = (
    "installing the mock into httpx needs respx, which is not installed: "
    "pip install 'federation-bridge[testing]' (or, without it, use idp.transport() or idp.serve())"
)

# One respx router for every MockIdP inside a ``with`` block, so several mocks nest.
_ACTIVE: list[MockIdP] = []
_ACTIVE_LOCK = threading.Lock()
_ROUTER: Any = None


def _serving(idps: Iterable[MockIdP], request: httpx.Request) -> MockIdP | None:
    """The mock that answers ``request``: one with a document at that exact URL first
    (mocks of different issuers may share a key host, e.g. www.googleapis.com), else
    the first one serving its host."""
    fallback = None
    for idp in idps:
        if idp.handles(request):
            if idp._route(request) is not None:
                return idp
            fallback = fallback or idp
    return fallback


def _dispatch(request: httpx.Request) -> httpx.Response:
    idp = _serving(reversed(_ACTIVE), request)
    if idp is not None:
        return idp.handler(request)
    # Fail loudly: a test that reaches for an unmocked host must not touch the network.
    raise httpx.ConnectError(
        f"no MockIdP serves {request.url.scheme}://{request.url.netloc.decode()} "
        "(the network is off while a MockIdP is installed)",
        request=request,
    )


def _b64(data: bytes) -> str:
    # Encoding only, with joserfc's encoder: the toolkit shares no base64url code with the verifier.
    return urlsafe_b64encode(data).decode("ascii")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _request_origin(request: httpx.Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc.decode()}"


def _instant(value: float | datetime, now: int) -> int:
    """A NumericDate: a datetime (naive means UTC) or seconds relative to ``now``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    return int(now + value)


Route = Literal["jwks", "discovery"]
#: How the key document is served: a JWK Set, or Google's ``{kid: PEM certificate}`` map.
KeyFormat = Literal["jwks", "x509_pem_map"]


def self_signed_certificate(key: SigningKey, common_name: str, now: float) -> x509.Certificate:
    """A self-signed X.509 certificate for ``key``, valid from a day before ``now`` for two weeks."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.fromtimestamp(now, tz=timezone.utc) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=15))
    )
    digest = None if isinstance(key.private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key.private_key, digest)


def x509_jwk_members(cert: x509.Certificate) -> dict[str, Any]:
    """The JWK members naming ``cert`` (RFC 7517 §4.7-4.9): ``x5c``, ``x5t``, ``x5t#S256``."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "x5c": [base64.b64encode(der).decode("ascii")],
        "x5t": _b64(hashlib.sha1(der, usedforsecurity=False).digest()),
        "x5t#S256": _b64(hashlib.sha256(der).digest()),
    }


class MockIdP:
    """A mock identity provider.

    >>> idp = MockIdP(issuer="https://idp.test", audience="my-client")
    >>> token = idp.mint(sub="u1", email="a@example.com", groups=["admins"])
    >>> bridge = idp.bridge()          # a Bridge wired to this issuer, no network
    >>> bridge.verify(token).subject
    'u1'

    ``alg`` is the default signing algorithm (RS256: RSA 2048); ``algorithms``
    adds a published key per extra algorithm (``["ES256", "EdDSA"]``). Keys
    are served at ``jwks_uri`` (default: the issuer's origin + ``jwks_path``)
    with ``Cache-Control: max-age=<cache_max_age>`` (None: no header).
    ``key_format="x509_pem_map"`` serves the keys at ``jwks_uri`` as Google's
    ``{kid: PEM certificate}`` map (Firebase) instead of a JWK Set.
    ``clock`` is the Unix time tokens are minted at; give the bridge the same.
    ``provider`` picks the claim shape (see :meth:`for_provider`); an unknown
    name keeps the generic OIDC shape and only labels the configuration.
    """

    def __init__(
        self,
        issuer: str = "https://idp.test",
        audience: str = "my-client",
        *,
        alg: str = "RS256",
        algorithms: tuple[str, ...] | list[str] | None = None,
        jwks_path: str = "/jwks",
        jwks_uri: str | None = None,
        cache_max_age: int | None = 300,
        key_format: KeyFormat = "jwks",
        clock: Callable[[], float] | None = None,
        provider: str | None = None,
        shape: ProviderShape | None = None,
        provider_params: Mapping[str, Any] | None = None,
    ) -> None:
        if shape is None:
            try:
                shape = provider_shape(provider or "oidc")
            except LookupError:
                shape = provider_shape("oidc")
        self.shape = shape
        self.provider = provider or shape.name
        #: The provider vocabulary this mock was built from (``for_provider`` keywords).
        self.provider_params: dict[str, Any] = dict(provider_params or {})
        self.audience = audience
        self.clock: Callable[[], float] = clock or time.time
        self.cache_max_age = cache_max_age
        if key_format not in ("jwks", "x509_pem_map"):
            raise ValueError("key_format must be 'jwks' or 'x509_pem_map'")
        self.key_format: KeyFormat = key_format
        self._certificates: dict[str, tuple[SigningKey, x509.Certificate]] = {}  # kid -> (key, cert)
        self._jwks_path = jwks_path
        self._set_location(issuer, jwks_uri)
        self.default_alg = alg
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []  # published
        self._active: dict[str, SigningKey] = {}  # alg -> key that signs
        for a in dict.fromkeys([alg, *(algorithms or ())]):
            self._add(generate_signing_key(a))
        self._outage: dict[str, Any] | None = None
        self._jwks_override: Any = None
        self._server: LoopbackServer | None = None
        self._clients: list[httpx.Client] = []
        #: Every request the mock answered (or refused during an outage), oldest first.
        self.requests: list[httpx.Request] = []

    @classmethod
    def for_provider(cls, name: str, /, **params: Any) -> MockIdP:
        """A mock issuer whose tokens have provider ``name``'s real claim shapes.

        ``params`` are the provider's own vocabulary (e.g. ``region=``,
        ``user_pool_id=``, ``client_id=`` for Cognito) plus any
        :class:`MockIdP` keyword (``clock=``, ``algorithms=`` ...). Raises
        :class:`LookupError` when no shape is registered for ``name`` (see
        :func:`federation.testing.register_provider`). The built-in shapes and
        their keywords are listed in ``docs/testing.md`` ("Provider shapes").
        """
        shape = provider_shape(name)
        options = shape.setup(**params)
        options.setdefault("provider", name)
        options.setdefault("provider_params", params)
        return cls(shape=shape, **options)

    def _set_location(self, issuer: str, jwks_uri: str | None) -> None:
        self.issuer = issuer
        parts = urlsplit(issuer)
        self._origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "https://idp.test"
        self.jwks_uri = jwks_uri or self._origin + self._jwks_path
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"

    def __repr__(self) -> str:
        return f"MockIdP(issuer={self.issuer!r}, provider={self.provider!r}, keys={len(self._keys)})"

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
        """The JWK Set document the issuer publishes (public members only), in the provider's shape."""
        return self.shape.jwks(self, {"keys": [dict(k.public_jwk) for k in self._keys]})

    def certificate(self, key: SigningKey | None = None) -> x509.Certificate:
        """A self-signed certificate for ``key`` (default: the signing key), made once per key.

        Valid from a day before the mock's clock at first use, for two weeks.
        """
        key = key or self.key_for()
        with self._lock:
            cached = self._certificates.get(key.kid)
        if cached is not None and cached[0] is key:
            return cached[1]
        cert = self_signed_certificate(key, urlsplit(self.issuer).hostname or "mock-idp", self.clock())
        with self._lock:
            self._certificates[key.kid] = (key, cert)
        return cert

    def certificates(self) -> dict[str, str]:
        """Google's ``{kid: PEM certificate}`` map of the published keys (what Firebase serves)."""
        return {
            k.kid: self.certificate(k).public_bytes(serialization.Encoding.PEM).decode("ascii")
            for k in self.keys
        }

    def key_document(self) -> dict[str, Any]:
        """The key document served at :attr:`jwks_uri`: :meth:`jwks` or :meth:`certificates`
        depending on ``key_format`` (:meth:`serve_jwks` overrides either)."""
        return self.certificates() if self.key_format == "x509_pem_map" else self.jwks()

    def discovery_document(self, base_url: str | None = None) -> dict[str, Any]:
        """The OIDC discovery document the issuer publishes.

        ``base_url`` is where the document is being served from (the loopback
        server): its ``jwks_uri`` and endpoints then point there, while
        ``issuer`` stays the issuer tokens carry.
        """
        origin = base_url or self._origin
        jwks_uri = base_url + urlsplit(self.jwks_uri).path if base_url else self.jwks_uri
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "authorization_endpoint": origin + "/authorize",
            "token_endpoint": origin + "/token",
            "response_types_supported": ["code", "id_token"],
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
        not_before: float | datetime | None = None,
        issued_at: float | datetime | None = None,
        token_type: TokenKind = "id",  # noqa: S107 - a token kind, not a secret
        **extra: Any,
    ) -> dict[str, Any]:
        """The claims :meth:`mint` would sign (defaults filled in)."""
        if token_type not in ("id", "access"):
            raise ValueError("token_type must be 'id' or 'access'")
        now = int(self.clock())
        body = self.shape.claims(self, token_type, now)
        iat = now if issued_at is None else _instant(issued_at, now)
        nbf = None if not_before is None else _instant(not_before, now)
        exp = max(iat, nbf if nbf is not None else iat) + lifetime  # valid for ``lifetime`` seconds
        if expired:
            exp = now - 600  # well past any sane leeway
            if issued_at is None:
                iat = exp - lifetime
        body["iat"] = iat
        body["exp"] = exp
        if nbf is not None:
            body["nbf"] = nbf
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
        not_before: float | datetime | None = None,
        issued_at: float | datetime | None = None,
        token_type: TokenKind = "id",  # noqa: S107 - a token kind, not a secret
        alg: str | None = None,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        **extra: Any,
    ) -> str:
        """A signed compact JWS.

        Claims come from the shape's defaults, then ``claims``, then keyword
        arguments (a value of None drops a claim, e.g. ``aud=None``).
        ``expired=True`` makes ``exp`` ten minutes past; ``not_before``/``issued_at``
        set ``nbf``/``iat`` as seconds relative to now (``not_before=120``: valid
        in two minutes) or as a datetime (naive means UTC); ``lifetime`` is how
        long the token is valid from the later of ``iat`` and ``nbf``.
        ``token_type="access"`` mints an access token in the provider's shape
        (generic OIDC: RFC 9068, ``typ: at+jwt``).
        ``alg`` picks the signing key (one is created if needed); ``kid``
        overrides the header kid while the active key still signs
        (``kid="unknown"``); ``headers`` are merged into the header last (None
        drops a member); ``key`` signs with another key (e.g. an attacker's
        from :func:`generate_signing_key`).
        """
        signer = key or self.key_for(alg)
        use_alg = alg or signer.alg
        header: dict[str, Any] = {"alg": use_alg, "kid": kid or signer.kid, "typ": "JWT"}
        merge_headers(header, self.shape.headers(self, token_type))
        merge_headers(header, headers)
        body = self.claims(
            claims,
            expired=expired,
            lifetime=lifetime,
            not_before=not_before,
            issued_at=issued_at,
            token_type=token_type,
            **extra,
        )
        return self.sign_raw(json.dumps(header).encode(), json.dumps(body).encode(), signer, alg=use_alg)

    def sign_raw(
        self, header: bytes, payload: bytes, key: SigningKey | None = None, *, alg: str | None = None
    ) -> str:
        """Sign exact header and payload bytes (for malformed-JSON tests).

        The signature comes from joserfc's JWS algorithm (see :func:`sign`); an
        ``alg`` the key does not fit is signed by hand for negative tests.
        """
        signer = key or self.key_for(alg)
        signing_input = _b64(header) + "." + _b64(payload)
        return signing_input + "." + _b64(sign(signer.private_key, alg or signer.alg, signing_input.encode()))

    # -- failure simulation ---------------------------------------------------------------

    def outage(
        self,
        status: int = 500,
        *,
        timeout: bool = False,
        body: bytes | None = None,
        only: Route | None = None,
    ) -> None:
        """Fail every request from now on: an HTTP ``status``, a timeout, or a garbage ``body`` with 200.

        ``only="jwks"`` or ``only="discovery"`` fails that document alone.
        Requests made during an outage are still recorded.
        """
        if only not in (None, "jwks", "discovery"):
            raise ValueError("only must be 'jwks', 'discovery' or None")
        self._outage = {"status": status, "timeout": timeout, "body": body, "only": only}

    def recover(self) -> None:
        """End an outage."""
        self._outage = None

    @property
    def outage_kind(self) -> Literal["status", "timeout", "body"] | None:
        """What the current outage does (None when there is none)."""
        outage = self._outage
        if outage is None:
            return None
        return "timeout" if outage["timeout"] else "body" if outage["body"] is not None else "status"

    def serve_jwks(self, document: Any) -> None:
        """Serve ``document`` (any JSON value, or raw bytes) as the key document until reset with None."""
        self._jwks_override = document

    # -- HTTP ----------------------------------------------------------------------------------

    def _route(self, request: httpx.Request) -> Route | None:
        origin = _request_origin(request)
        url = origin + request.url.path
        query = request.url.query.decode()
        if url == self.jwks_uri or (query and f"{url}?{query}" == self.jwks_uri):
            return "jwks"
        if url == self.discovery_url:
            return "discovery"
        server = self._server
        if server is not None and origin == server.url:
            if request.url.path == urlsplit(self.jwks_uri).path:
                return "jwks"
            if request.url.path == urlsplit(self.discovery_url).path:
                return "discovery"
        return None

    def handles(self, request: httpx.Request) -> bool:
        """True when ``request`` is for one of this issuer's origins (issuer, JWKS, loopback server)."""
        origin = _request_origin(request)
        server = self._server
        return origin in (self._origin, _origin(self.jwks_uri)) or (
            server is not None and origin == server.url
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the function behind every transport and the loopback server)."""
        route = self._route(request)
        request.extensions[ROUTE] = route
        self.requests.append(request)
        outage = self._outage
        if outage is not None and outage["only"] in (None, route):
            if outage["timeout"]:
                raise httpx.ReadTimeout("mock issuer outage", request=request)
            if outage["body"] is not None:
                return httpx.Response(
                    200, content=outage["body"], headers={"content-type": "application/json"}
                )
            return httpx.Response(outage["status"], text="mock issuer outage")
        headers = {"content-type": "application/json"}
        if self.cache_max_age is not None:
            headers["cache-control"] = f"public, max-age={self.cache_max_age}"
        if route == "discovery":
            server = self._server
            base = server.url if server is not None and _request_origin(request) == server.url else None
            return httpx.Response(200, json=self.discovery_document(base), headers=headers)
        if route == "jwks":
            override = self._jwks_override
            if isinstance(override, bytes):
                return httpx.Response(200, content=override, headers=headers)
            document = self.key_document() if override is None else override
            return httpx.Response(200, json=document, headers=headers)
        return httpx.Response(404, text="not found")

    def transport(self) -> httpx.MockTransport:
        """An httpx transport serving this issuer (works for sync and async clients)."""
        return mock_transport(self)

    def client(self, **options: Any) -> httpx.Client:
        """An ``httpx.Client`` served by this mock (closed by :meth:`close`)."""
        client = httpx.Client(transport=self.transport(), **options)
        self._clients.append(client)
        return client

    def async_client(self, **options: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` served by this mock (it holds no sockets)."""
        return httpx.AsyncClient(transport=self.transport(), **options)

    def requests_to(self, what: Route = "jwks") -> list[httpx.Request]:
        """The requests made for the key document (``"jwks"``, whatever its ``key_format``) or
        the discovery document (``"discovery"``)."""
        if what not in ("jwks", "discovery"):
            raise ValueError("what must be 'jwks' or 'discovery'")
        return [r for r in self.requests if r.extensions.get(ROUTE) == what]

    # -- loopback server ---------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The loopback server's base URL while :meth:`serve` runs, else None."""
        server = self._server
        return server.url if server is not None else None

    @contextmanager
    def serve(self, *, port: int = 0, as_issuer: bool = False) -> Iterator[str]:
        """Serve discovery and JWKS over real HTTP on 127.0.0.1; yields the base URL.

        For code that does not use httpx. Requests go through :meth:`handler`,
        so outages, rotation and :attr:`requests` work the same. The served
        discovery document keeps ``issuer`` and points ``jwks_uri`` at the
        server; :meth:`bridge_config` ``(served=True)`` trusts it.

        ``as_issuer=True`` makes the server *be* the issuer for the block:
        :attr:`issuer` becomes the base URL (plus the issuer's path), so minted
        tokens carry it and OIDC discovery from the issuer URL works
        (``bridge_config(discovery=True, served=True)``).
        """
        if self._server is not None:
            raise RuntimeError(f"this MockIdP is already serving at {self._server.url}")
        server = LoopbackServer(self, port)
        server.start()
        saved = (self.issuer, self.jwks_uri)
        self._server = server
        if as_issuer:
            self._set_location(server.url + urlsplit(self.issuer).path, server.url + self._jwks_path)
        try:
            yield server.url
        finally:
            server.stop()
            self._server = None
            if as_issuer:
                self._set_location(*saved)

    # -- configuration helpers --------------------------------------------------------------

    def issuer_config(
        self, *, discovery: bool = False, served: bool = False, **overrides: Any
    ) -> dict[str, Any]:
        """The bridge's issuer entry for this mock (keys from its JWKS, or discovery).

        ``served=True`` points at the running loopback server (see :meth:`serve`).
        ``overrides`` replace members of the entry last.
        """
        entry: dict[str, Any] = {
            "provider": self.provider,
            "issuer": self.issuer,
            "audiences": [self.audience],
        }
        if served:
            server = self._server
            if server is None:
                raise RuntimeError("served=True needs a running server: use 'with idp.serve():'")
            if discovery and _origin(self.issuer) != server.url:
                raise ValueError(
                    "OIDC discovery starts from the issuer URL: use idp.serve(as_issuer=True) "
                    "to discover over the loopback server"
                )
            if not discovery:
                entry["jwks_uri"] = server.url + urlsplit(self.jwks_uri).path
        elif not discovery:
            entry["jwks_uri"] = self.jwks_uri
        entry = self.shape.issuer_config(self, entry)
        entry.update(overrides)
        return entry

    def bridge_config(self, *, discovery: bool = False, served: bool = False, **top: Any) -> dict[str, Any]:
        """A whole bridge config trusting only this mock issuer.

        ``top`` adds top-level sections (``keys={...}``, ``leeway=...``). When
        the entry names a plain-http loopback URL (``served=True``, or
        ``serve(as_issuer=True)``), ``keys.allow_loopback_http`` is switched on.
        """
        entry = self.issuer_config(discovery=discovery, served=served)
        config: dict[str, Any] = {"issuers": [entry], **top}
        # a provider entry may name no key URL: its profile derives this mock's one
        urls = [entry.get("jwks_uri", None if discovery else self.jwks_uri)]
        urls.append(entry.get("issuer") if discovery else None)
        if any(isinstance(u, str) and u.startswith("http://") for u in urls):
            keys = dict(config.get("keys") or {})
            keys.setdefault("allow_loopback_http", True)
            config["keys"] = keys
        return config

    def bridge(
        self,
        *,
        discovery: bool = False,
        served: bool = False,
        config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Bridge:
        """A :class:`~federation.Bridge` wired to this mock, with the mock's clock.

        In memory by default (mock transports, no network). ``served=True``
        builds a bridge with its own real httpx client that fetches from the
        loopback server. ``options`` go to :class:`~federation.Bridge`
        (``on_event=``, ``clock=``, ``http_client=`` ...).
        """
        from federation import Bridge

        if not served:
            options.setdefault("http_client", self.client())
            options.setdefault("async_http_client", self.async_client())
        options.setdefault("clock", self.clock)
        return Bridge.from_dict(
            dict(config) if config is not None else self.bridge_config(discovery=discovery, served=served),
            **options,
        )

    # -- respx ------------------------------------------------------------------------------

    def __enter__(self) -> MockIdP:
        """Serve this issuer to every httpx client in the block (through respx).

        Several mocks nest (one shared router); a request for any other host
        raises ``httpx.ConnectError`` instead of reaching the network.
        """
        global _ROUTER
        try:
            import respx
        except ImportError:  # respx ships with the testing extra
            raise RuntimeError(RESPX_MISSING) from None
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
                # the innermost entry of this mock (a mock may be entered more than once)
                del _ACTIVE[len(_ACTIVE) - 1 - _ACTIVE[::-1].index(self)]
            if not _ACTIVE and _ROUTER is not None:
                router, _ROUTER = _ROUTER, None
                router.__exit__(None, None, None)

    @property
    def installed_now(self) -> bool:
        """True while this mock is installed through respx (inside ``with idp:``)."""
        with _ACTIVE_LOCK:
            return self in _ACTIVE

    @contextmanager
    def installed(self) -> Iterator[MockIdP]:
        """``with idp.installed():`` — the same as ``with idp:``."""
        with self:
            yield self

    def close(self) -> None:
        """Undo everything: leave respx, stop the loopback server, close the clients it made.

        Safe to call twice; the pytest fixtures call it at teardown.
        """
        while self.installed_now:
            self.__exit__(None, None, None)
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        for client in self._clients:
            client.close()
        self._clients.clear()


def mock_transport(*idps: MockIdP) -> httpx.MockTransport:
    """One transport serving several mock issuers; other hosts get 404."""

    def route(request: httpx.Request) -> httpx.Response:
        idp = _serving(idps, request)
        if idp is not None:
            return idp.handler(request)
        return httpx.Response(404, text="no mock issuer for this host")

    return httpx.MockTransport(route)
