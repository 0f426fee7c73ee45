"""An in-process OpenID Connect issuer for tests: keys, JWKS, discovery, tokens.

Owns: the mock issuer's keys and their rotation, its key and discovery
documents (a JWK Set, or Google's ``{kid: PEM certificate}`` map with a
self-signed certificate per key), minting tokens signed through joserfc (any
claims, any header, expired, not yet valid, unknown kid, other algorithms,
provider claim shapes), failure simulation (HTTP status, timeouts, garbage), an
OIDC authorization endpoint and token endpoint (the authorization-code flow
with PKCE S256, for registered clients, auto-approving a configured user or
denying), a record of the requests it served, and plugging into httpx through
``httpx.MockTransport``
(no test dependency) or respx (``with MockIdP():``), or serving over a real
loopback HTTP server (``with idp.serve() as url:``).

Must not: touch the network beyond a loopback server it starts itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

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


def _later_routers() -> bool:
    """Whether a respx router other than the mocks' own one is started (``with respx.mock:``)."""
    try:
        from respx.mocks import Mocker
    except ImportError:  # pragma: no cover - respx is there whenever the router is
        return False
    # respx keeps the started routers per mocker (httpcore, httpx), trying them in order.
    for mocker in getattr(Mocker, "registry", {}).values():
        routers = list(getattr(mocker, "routers", ()))
        if _ROUTER in routers:
            return routers.index(_ROUTER) < len(routers) - 1
    return False


def _dispatch(request: httpx.Request) -> httpx.Response:
    idp = _serving(reversed(_ACTIVE), request)
    if idp is not None:
        return idp.handler(request)
    where = f"{request.url.scheme}://{request.url.netloc.decode()}"
    if _later_routers():
        # respx tries its started routers in order and moves on after this error: a
        # router the test started after the mock then gets the request.
        from respx.models import AllMockedAssertionError

        raise AllMockedAssertionError(f"no MockIdP serves {where}")
    # Fail loudly: a test that reaches for an unmocked host must not touch the network.
    raise httpx.ConnectError(
        f"no MockIdP serves {where} (the network is off while a MockIdP is installed; "
        "to mock other hosts too, use the respx_mock fixture or a 'with respx.mock:' router)",
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


#: Every route a request may take (``request.extensions[ROUTE]``; None: no route).
Route = Literal["jwks", "discovery", "authorize", "token", "userinfo"]
_ROUTES = ("jwks", "discovery", "authorize", "token", "userinfo")
#: Claims about the id token itself, which the UserInfo endpoint does not repeat.
_ID_TOKEN_ONLY = frozenset(
    {"iss", "aud", "azp", "exp", "iat", "nbf", "jti", "nonce", "auth_time", "at_hash", "c_hash"}
    | {"sid", "acr", "amr"}
)
#: How the key document is served: a JWK Set, or Google's ``{kid: PEM certificate}`` map.
KeyFormat = Literal["jwks", "x509_pem_map"]

#: How long an authorization code may be redeemed, in seconds.
CODE_LIFETIME = 60
#: ``expires_in`` of the access tokens the token endpoint issues, in seconds.
ACCESS_TOKEN_LIFETIME = 300
#: What the mock advertises for the token endpoint (``"none"``: a public client).
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # BASE64URL(SHA-256), no padding
_MAX_FORM = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Client:
    client_id: str
    secret: str | None
    redirect_uris: frozenset[str]


@dataclass(slots=True)
class _Grant:
    """What one authorization code was issued for."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    scope: str
    sub: str
    claims: dict[str, Any]
    auth_time: int
    expires_at: float
    userinfo: dict[str, Any] = field(default_factory=dict)  # claims the UserInfo endpoint adds
    redeemed: bool = False
    tokens: list[str] = field(default_factory=list)  # jti of the tokens issued from it


class _OAuthError(Exception):
    """An RFC 6749 §5.2 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _form(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Parameters by name; empty ones count as absent, repeated ones are refused (RFC 6749 §3.1)."""
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise _OAuthError("invalid_request", f"parameter {name!r} is repeated")
        if value:
            form[name] = value
    return form


def _with_query(url: str, params: Mapping[str, str | None]) -> str:
    """``url`` with ``params`` (None values left out) added to its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _hash_half(alg: str, token: str) -> str:
    """OIDC's ``at_hash``: the left half of the token's hash for ``alg``, base64url."""
    name = (
        "sha512" if alg == "EdDSA" or alg.endswith("512") else "sha384" if alg.endswith("384") else "sha256"
    )
    value = hashlib.new(name, token.encode("ascii")).digest()
    return _b64(value[: len(value) // 2])


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

    The authorization-code flow (PKCE S256 only): :meth:`register_client`,
    then ``GET <issuer>/authorize`` redirects to the client with a code for
    the user of :meth:`approve` (or an error after :meth:`deny`), and
    ``POST <issuer>/token`` exchanges it for an id token (``aud``: the client)
    and an access token (``aud``: :attr:`audience`).
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
        self._traits = shape.traits
        self.provider = provider or shape.name
        #: The provider vocabulary this mock was built from (``for_provider`` keywords).
        self.provider_params: dict[str, Any] = dict(provider_params or {})
        self.audience = audience
        self.clock: Callable[[], float] = clock or time.time
        self.cache_max_age = cache_max_age
        # The key set's Cache-Control when for_provider copies the real provider's
        # (None: from cache_max_age).
        self._jwks_cache_control: str | None = None
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
        self._access: dict[str, SigningKey] = {}  # alg -> key that signs access tokens, if another
        for a in dict.fromkeys([alg, *(algorithms or ())]):
            self._add(self._generate(a))
        self._outage: dict[str, Any] | None = None
        self._latency: tuple[float, Route | None] | None = None
        self._jwks_override: Any = None
        self._server: LoopbackServer | None = None
        self._clients: list[httpx.Client] = []
        self._oauth_clients: dict[str, _Client] = {}
        self._codes: dict[str, _Grant] = {}
        self._codes_lock = threading.Lock()
        self._user: tuple[str, dict[str, Any]] = ("mock-user", {})
        self._userinfo: dict[str, Any] = {}
        self._access_grants: dict[str, tuple[_Grant, float]] = {}  # access token -> (grant, expiry)
        self._denial: tuple[str, str | None] | None = None
        #: The ``jti`` of tokens issued from an authorization code that was then
        #: presented again (RFC 6749 §4.1.2: such tokens should be revoked).
        self.revoked_jtis: set[str] = set()
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
        unknown = sorted(set(options) - _INIT_KEYWORDS)
        if unknown:
            vocabulary = _keywords(shape.setup)
            accepted = ", ".join([*vocabulary, *sorted(_INIT_KEYWORDS - {"shape", "provider_params"})])
            raise TypeError(
                f"MockIdP.for_provider({name!r}) got unknown keyword(s) {', '.join(unknown)}; "
                f"it accepts: {accepted}"
            )
        idp = cls(shape=shape, **options)
        cache_control = idp._traits.jwks_cache_control
        if cache_control is not None and "cache_max_age" not in params:
            idp._jwks_cache_control = cache_control  # the real provider's, unless asked otherwise
        return idp

    def _set_location(self, issuer: str, jwks_uri: str | None) -> None:
        parts = urlsplit(issuer) if isinstance(issuer, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(
                f"issuer must be an https:// (or http://) URL such as 'https://{issuer}', not {issuer!r}"
            )
        self.issuer = issuer
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self.jwks_uri = jwks_uri or self._origin + self._jwks_path
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"

    def __repr__(self) -> str:
        return f"MockIdP(issuer={self.issuer!r}, provider={self.provider!r}, keys={len(self._keys)})"

    # -- keys ---------------------------------------------------------------------------

    def _generate(self, alg: str) -> SigningKey:
        """A new key for ``alg`` whose kid looks like the real provider's."""
        style = self._traits.kid
        if style is None:
            return generate_signing_key(alg)
        if style != "x5t":
            return generate_signing_key(alg, kid=style())
        # Entra names a key by its certificate's SHA-1 thumbprint: kid == x5t.
        key = generate_signing_key(alg)
        cert = self_signed_certificate(key, urlsplit(self.issuer).hostname or "mock-idp", self.clock())
        thumbprint = x509_jwk_members(cert)["x5t"]
        key = replace(key, kid=thumbprint, public_jwk={**key.public_jwk, "kid": thumbprint})
        with self._lock:
            self._certificates[thumbprint] = (key, cert)
        return key

    def _spares(self, alg: str) -> list[SigningKey]:
        """The keys published beside ``alg``'s signing keys (Google: at least two in all)."""
        spares = [self._generate(alg) for _ in range(self._traits.spare_keys)]
        if self._traits.access_key:
            spares.append(self._generate(alg))
        return spares

    def _add(self, key: SigningKey) -> SigningKey:
        extra = self._spares(key.alg) if key.alg not in self._active else []
        with self._lock:
            self._keys.append(key)
            self._active[key.alg] = key
            self._keys.extend(extra)  # after the signing key: it is the first one published
            if self._traits.access_key and extra:
                self._access[key.alg] = extra[-1]
        return key

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The published signing keys."""
        return tuple(self._keys)

    def key_for(self, alg: str | None = None, *, token_type: TokenKind = "id") -> SigningKey:  # noqa: S107
        """The key that signs ``alg`` (one is created and published if needed).

        ``token_type="access"``: the key that signs access tokens, which is another
        one for a Cognito mock (a user pool has a key pair for each kind).
        """
        alg = alg or self.default_alg
        key = self._active.get(alg)
        if key is None:
            key = self._add(self._generate(alg))
        if token_type == "access":
            return self._access.get(alg, key)
        return key

    def _signer(self, key: SigningKey | str | None, alg: str | None, token_type: TokenKind) -> SigningKey:
        """The key ``mint`` signs with: ``key`` (a key, or the kid of one of this mock's), else ``alg``'s."""
        if key is None:
            return self.key_for(alg, token_type=token_type)
        if isinstance(key, SigningKey):
            return key
        if isinstance(key, str):
            with self._lock:
                known = {k.kid: k for k in [*self._keys, *self._active.values(), *self._access.values()]}
            if key in known:
                return known[key]
            raise KeyError(f"this MockIdP has no key with kid {key!r} (its kids: {', '.join(known)})")
        raise TypeError(
            f"key must be a SigningKey (see generate_signing_key) or the kid of one of this mock's keys, "
            f"not {type(key).__name__}"
        )

    def rotate_keys(self, *, keep_old: bool = True, alg: str | None = None) -> SigningKey:
        """Publish a new key for ``alg`` and sign with it from now on.

        With ``keep_old=False`` the previous key disappears from the JWKS.
        """
        alg = alg or self.default_alg
        new = self._generate(alg)
        access = self._generate(alg) if self._traits.access_key else None
        with self._lock:
            if not keep_old:
                self._keys = [k for k in self._keys if k.alg != alg]
            self._keys.append(new)
            self._active[alg] = new
            if access is not None:  # a Cognito pool renews both of its key pairs
                self._keys.append(access)
                self._access[alg] = access
            missing = 1 + self._traits.spare_keys - sum(k.alg == alg for k in self._keys)
        if missing > 0:  # Google never publishes fewer than two keys
            spares = [self._generate(alg) for _ in range(missing)]
            with self._lock:
                self._keys.extend(spares)
        return new

    def replace_key(self, alg: str | None = None) -> SigningKey:
        """Publish a new key for ``alg`` under the kid of its current signing key, in that key's
        place, and sign with it from now on: what an issuer that names its key by a fixed id does
        when it is restarted without its keys (a development IdP) or re-keyed by hand.

        Raises :class:`ValueError` for a provider whose kid is the certificate's thumbprint
        (Entra ID), where a new key always has a new kid.
        """
        if self._traits.kid == "x5t":
            raise ValueError("this provider's kid is its certificate's thumbprint: use rotate_keys()")
        old = self.key_for(alg)
        new = generate_signing_key(old.alg, kid=old.kid)
        with self._lock:
            self._keys = [new if k is old else k for k in self._keys]
            self._active[old.alg] = new
            if self._access.get(old.alg) is old:
                self._access[old.alg] = new
        return new

    def remove_key(self, kid: str) -> None:
        """Stop publishing the key ``kid`` (it may still sign if active).

        Raises :class:`KeyError` when no published key has that kid.
        """
        with self._lock:
            kept = [k for k in self._keys if k.kid != kid]
            if len(kept) == len(self._keys):
                published = ", ".join(k.kid for k in self._keys) or "none"
                raise KeyError(f"no published key has kid {kid!r} (published: {published})")
            self._keys = kept

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
        jwks_uri = self._traits.discovery_jwks_uri or self.jwks_uri  # Firebase names its JWK Set
        if base_url:
            jwks_uri = base_url + urlsplit(jwks_uri).path
        document = {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "authorization_endpoint": self._endpoint("authorize", base_url),
            "token_endpoint": self._endpoint("token", base_url),
            "userinfo_endpoint": self._endpoint("userinfo", base_url),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
            "scopes_supported": ["openid", "email", "profile"],
            "authorization_response_iss_parameter_supported": True,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self._keys}),
        }
        if not self._traits.iss_parameter:  # Google and Entra neither send iss nor say so
            del document["authorization_response_iss_parameter_supported"]
        return document

    def _endpoint(self, name: str, base_url: str | None = None) -> str:
        """``<issuer>/<name>`` (a shipped provider's mock: where the provider has it), or
        the same path under ``base_url`` (the loopback server)."""
        endpoints = self._traits.endpoints
        if endpoints is not None:
            url = endpoints(self)[0 if name == "authorize" else 1]
            if name == "userinfo":  # beside the provider's token endpoint
                url = url.rsplit("/", 1)[0] + "/userinfo"
            return base_url + urlsplit(url).path if base_url else url
        base = base_url + urlsplit(self.issuer).path if base_url else self.issuer
        return base.rstrip("/") + "/" + name

    @property
    def authorization_endpoint(self) -> str:
        """The authorization endpoint's URL: ``<issuer>/authorize``, or where the
        provider has it (Keycloak ``.../protocol/openid-connect/auth``, Entra
        ``.../oauth2/v2.0/authorize``, Okta ``.../v1/authorize``, Google's)."""
        return self._endpoint("authorize")

    @property
    def token_endpoint(self) -> str:
        """The token endpoint's URL: ``<issuer>/token``, or where the provider has it."""
        return self._endpoint("token")

    @property
    def userinfo_endpoint(self) -> str:
        """The UserInfo endpoint's URL: ``<issuer>/userinfo``, or beside the provider's token
        endpoint (``.../userinfo``)."""
        return self._endpoint("userinfo")

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
        key: SigningKey | str | None = None,
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
        from :func:`generate_signing_key`, or one of this mock's named by its kid).
        """
        signer = self._signer(key, alg, token_type)
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
        self, header: bytes, payload: bytes, key: SigningKey | str | None = None, *, alg: str | None = None
    ) -> str:
        """Sign exact header and payload bytes (for malformed-JSON tests).

        The signature comes from joserfc's JWS algorithm (see :func:`sign`); an
        ``alg`` the key does not fit is signed by hand for negative tests.
        ``key`` is a :class:`SigningKey` or the kid of one of this mock's keys.
        """
        signer = self._signer(key, alg, "id")
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

        ``only="jwks"`` or ``only="discovery"`` fails that document alone; ``only`` may name
        any route :meth:`requests_to` takes (``"userinfo"``: the UserInfo endpoint alone).
        Requests made during an outage are still recorded.
        """
        self._outage = {"status": status, "timeout": timeout, "body": body, "only": _route_name(only)}

    @contextmanager
    def slow(self, seconds: float, *, only: Route | None = None) -> Iterator[MockIdP]:
        """``with idp.slow(0.5, only="jwks"):`` answers late: each request waits ``seconds``
        (real time) before its answer, in memory and on the loopback server alike.

        For code that must cope with a slow issuer within its timeout; ``only`` slows
        one route (the names :meth:`requests_to` takes). Blocks do not nest.
        """
        if not 0 <= seconds <= 60:
            raise ValueError("seconds must be between 0 and 60")
        if self._latency is not None:
            raise RuntimeError("this MockIdP is already slowed down")
        self._latency = (float(seconds), _route_name(only))
        try:
            yield self
        finally:
            self._latency = None

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

    # -- authorization-code flow -----------------------------------------------------------

    def register_client(
        self, client_id: str, *, client_secret: str | None = None, redirect_uris: Iterable[str]
    ) -> None:
        """Accept ``client_id`` at the authorization and token endpoints.

        ``redirect_uris`` are compared exactly (no prefix or pattern matching).
        With a ``client_secret`` the client is confidential: the token endpoint
        then wants the secret through HTTP Basic (``client_secret_basic``) or
        the ``client_secret`` form parameter (``client_secret_post``); without
        one it is a public client that sends only ``client_id``. Registering an
        id again replaces the client.
        """
        if isinstance(redirect_uris, str):
            raise TypeError("redirect_uris is a collection of URIs, not one string")
        uris = frozenset(redirect_uris)
        if not client_id:
            raise ValueError("client_id must not be empty")
        if not uris:
            raise ValueError("a client needs at least one redirect URI")
        for uri in uris:
            parts = urlsplit(uri)
            if not parts.scheme or not parts.netloc or parts.fragment:
                raise ValueError(f"redirect URI {uri!r} must be absolute and have no fragment")
        self._oauth_clients[client_id] = _Client(client_id, client_secret or None, uris)

    def approve(
        self, sub: str = "mock-user", *, userinfo: Mapping[str, Any] | None = None, **claims: Any
    ) -> None:
        """Make the authorization endpoint approve every request as user ``sub``.

        ``userinfo``: claims only the UserInfo endpoint answers with, beside ``sub`` and
        ``claims`` (a provider that leaves email or profile claims out of its id tokens).

        ``claims`` go into the id tokens issued for that user (``email=``,
        ``email_verified=``, ``name=``, ``groups=`` ...), last: they may replace
        protocol claims too, and a value of None drops one (``nonce=None``).
        Ends a :meth:`deny`. Until called, the user is ``"mock-user"`` with no
        extra claims.
        """
        self._user = (sub, dict(claims))
        self._userinfo = dict(userinfo or {})
        self._denial = None

    def deny(self, error: str = "access_denied", description: str | None = None) -> None:
        """Make the authorization endpoint answer valid requests with ``error`` (and
        ``state``) on the redirect URI instead of a code, until :meth:`approve`."""
        self._denial = (error, description)

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        """The authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1.1, RFC 7636 §4.3)."""
        try:
            if request.method == "POST":
                params = _form(parse_qsl(request.read().decode("utf-8"), keep_blank_values=True))
            elif request.method == "GET":
                params = _form(request.url.params.multi_items())
            else:
                return httpx.Response(405, headers={"allow": "GET, POST"}, text="method not allowed")
        except (_OAuthError, UnicodeDecodeError) as exc:
            return _error_page("invalid_request", str(exc))
        # RFC 6749 §4.1.2.1: a bad client or redirect URI is shown, never redirected to.
        client = self._oauth_clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page("invalid_client", "unknown or missing client_id")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return _error_page("invalid_request", "redirect_uri is missing or not registered for this client")
        state = params.get("state")

        def back(**answer: str | None) -> httpx.Response:
            iss = self.issuer if self._traits.iss_parameter else None  # RFC 9207, where the provider sends it
            location = _with_query(redirect_uri, {**answer, "state": state, "iss": iss})
            return httpx.Response(302, headers={"location": location, "cache-control": "no-store"})

        response_type = params.get("response_type")
        scopes = params.get("scope", "").split()
        method = params.get("code_challenge_method", "plain")
        challenge = params.get("code_challenge", "")
        problem: tuple[str, str] | None = None
        if response_type is None:
            problem = ("invalid_request", "response_type is missing")
        elif response_type != "code":
            problem = ("unsupported_response_type", "only response_type=code is supported")
        elif "openid" not in scopes:
            problem = ("invalid_request", "scope must include openid")
        elif not challenge:
            problem = ("invalid_request", "code_challenge is required (PKCE)")
        elif method != "S256":
            problem = ("invalid_request", "code_challenge_method must be S256")
        elif not _CHALLENGE.fullmatch(challenge):
            problem = ("invalid_request", "code_challenge is not a base64url SHA-256 digest")
        if problem is not None:
            return back(error=problem[0], error_description=problem[1])
        denial = self._denial
        if denial is not None:
            return back(error=denial[0], error_description=denial[1])
        sub, claims = self._user
        now = self.clock()
        code = secrets.token_urlsafe(32)
        grant = _Grant(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            challenge=challenge,
            nonce=params.get("nonce"),
            scope=" ".join(dict.fromkeys(scopes)),
            sub=sub,
            claims=dict(claims),
            auth_time=int(now),
            expires_at=now + CODE_LIFETIME,
            userinfo=dict(self._userinfo),
        )
        with self._codes_lock:
            self._codes[code] = grant
        return back(code=code)

    def _authenticate(self, request: httpx.Request, form: dict[str, str]) -> _Client:
        """The client the token request is from (RFC 6749 §2.3), or an ``invalid_client`` error."""
        basic: tuple[str, str] | None = None
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "basic":
                raise _OAuthError("invalid_client", "only HTTP Basic client authentication is supported", 401)
            try:
                user, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise _OAuthError("invalid_client", "malformed HTTP Basic credentials", 401) from None
            if not sep:
                raise _OAuthError("invalid_client", "malformed HTTP Basic credentials", 401)
            basic = (unquote_plus(user), unquote_plus(password))  # form-encoded first (§2.3.1)
            if "client_secret" in form:
                raise _OAuthError("invalid_request", "use one client authentication method, not two")
        client_id = basic[0] if basic is not None else form.get("client_id")
        if basic is not None and form.get("client_id", client_id) != client_id:
            raise _OAuthError("invalid_client", "client_id does not match the authenticated client", 401)
        client = self._oauth_clients.get(client_id or "")
        if client is None:
            raise _OAuthError("invalid_client", "unknown or missing client", 401)
        presented = basic[1] if basic is not None else form.get("client_secret")
        if client.secret is None:
            if presented:
                raise _OAuthError("invalid_client", "a public client has no secret to present", 401)
        elif presented is None or not hmac.compare_digest(presented.encode(), client.secret.encode()):
            raise _OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def _redeem(self, client: _Client, form: dict[str, str]) -> _Grant:
        """The grant behind ``form``'s code (RFC 6749 §4.1.3, RFC 7636 §4.6), used up."""
        code = form.get("code")
        verifier = form.get("code_verifier")
        if code is None or "redirect_uri" not in form or verifier is None:
            raise _OAuthError("invalid_request", "code, redirect_uri and code_verifier are required")
        if not _VERIFIER.fullmatch(verifier):
            raise _OAuthError("invalid_request", "code_verifier must be 43-128 unreserved characters")
        with self._codes_lock:
            grant = self._codes.get(code)
            if grant is None or grant.client_id != client.client_id:
                raise _OAuthError("invalid_grant", "unknown authorization code")
            if grant.redeemed:
                self.revoked_jtis.update(grant.tokens)
                raise _OAuthError("invalid_grant", "authorization code already used")
            grant.redeemed = True  # one attempt per code, whatever its outcome
        if self.clock() >= grant.expires_at:
            raise _OAuthError("invalid_grant", "authorization code expired")
        if form["redirect_uri"] != grant.redirect_uri:
            raise _OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        computed = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
        if not hmac.compare_digest(computed, grant.challenge):
            raise _OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        return grant

    def _token(self, request: httpx.Request) -> httpx.Response:
        """The token endpoint (RFC 6749 §4.1.3-4.1.4, §5; OIDC Core §3.1.3)."""
        if request.method != "POST":
            return httpx.Response(405, headers={"allow": "POST"}, text="method not allowed")
        try:
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            body = request.read()
            if media != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM:
                raise _OAuthError("invalid_request", "send the parameters form-encoded in the body")
            try:
                form = _form(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise _OAuthError("invalid_request", "the body is not UTF-8") from None
            grant_type = form.get("grant_type")
            if grant_type is None:
                raise _OAuthError("invalid_request", "grant_type is missing")
            if grant_type != "authorization_code":
                raise _OAuthError("unsupported_grant_type", "only authorization_code is supported")
            client = self._authenticate(request, form)
            grant = self._redeem(client, form)
        except _OAuthError as exc:
            headers = {"cache-control": "no-store", "pragma": "no-cache"}
            if exc.status == 401:
                headers["www-authenticate"] = 'Basic realm="mock-idp"'
            return httpx.Response(
                exc.status,
                json={"error": exc.error, "error_description": exc.description},
                headers=headers,
            )
        return httpx.Response(
            200,
            json=self._issue(grant),
            headers={"cache-control": "no-store", "pragma": "no-cache"},
        )

    def _issue(self, grant: _Grant) -> dict[str, Any]:
        """The token response for a redeemed ``grant``."""
        access_jti = secrets.token_urlsafe(12)
        id_jti = secrets.token_urlsafe(12)
        if self.shape.jwt_access_tokens:
            access_token = self.mint(
                token_type="access",
                lifetime=ACCESS_TOKEN_LIFETIME,
                sub=grant.sub,
                aud=self.audience,
                client_id=grant.client_id,
                scope=grant.scope,
                jti=access_jti,
            )
        else:  # the provider's access tokens are opaque (Google's): one nobody can verify
            access_token = "mock." + secrets.token_urlsafe(32)
        protocol: dict[str, Any] = {
            "sub": grant.sub,
            "aud": grant.client_id,
            "nonce": grant.nonce,
            "auth_time": grant.auth_time,
            "at_hash": _hash_half(self.default_alg, access_token),
            "jti": id_jti,
        }
        if self.shape.id_token_azp:
            protocol["azp"] = grant.client_id
        id_token = self.mint({**protocol, **grant.claims}, token_type="id")
        with self._codes_lock:
            grant.tokens += [access_jti, id_jti]
            self._access_grants[access_token] = (grant, self.clock() + ACCESS_TOKEN_LIFETIME)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "id_token": id_token,
            "scope": grant.scope,
        }

    def _userinfo_answer(self, request: httpx.Request) -> httpx.Response:
        """The UserInfo endpoint (OIDC Core §5.3, RFC 6750 §2.1): the user of a Bearer access
        token its token endpoint issued, still valid and of a grant not revoked."""
        if request.method not in ("GET", "POST"):
            return httpx.Response(405, headers={"allow": "GET, POST"}, text="method not allowed")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._codes_lock:
            found = self._access_grants.get(token) if scheme.lower() == "bearer" else None
        if found is None or self.clock() >= found[1] or set(found[0].tokens) & self.revoked_jtis:
            challenge = 'Bearer error="invalid_token"' if token else 'Bearer realm="mock-idp"'
            return httpx.Response(401, headers={"www-authenticate": challenge}, text="")
        grant = found[0]
        claims = {k: v for k, v in grant.claims.items() if v is not None and k not in _ID_TOKEN_ONLY}
        return httpx.Response(
            200,
            json={"sub": grant.sub, **claims, **grant.userinfo},  # userinfo= may even lie about sub
            headers={"cache-control": "no-store"},
        )

    # -- HTTP ----------------------------------------------------------------------------------

    def _route(self, request: httpx.Request) -> Route | None:
        origin = _request_origin(request)
        url = origin + request.url.path
        query = request.url.query.decode()
        if url == self.jwks_uri or (query and f"{url}?{query}" == self.jwks_uri):
            return "jwks"
        if self._is_jwk_url(request):
            return "jwks"
        if url == self.discovery_url:
            return "discovery"
        endpoints: tuple[Literal["authorize", "token", "userinfo"], ...] = ("authorize", "token", "userinfo")
        for name in endpoints:
            if url == self._endpoint(name):
                return name
        server = self._server
        if server is not None and origin == server.url:
            if request.url.path == urlsplit(self.jwks_uri).path:
                return "jwks"
            if request.url.path == urlsplit(self.discovery_url).path:
                return "discovery"
            for name in endpoints:
                if request.url.path == urlsplit(self._endpoint(name)).path:
                    return name
        return None

    def _is_jwk_url(self, request: httpx.Request) -> bool:
        """Whether ``request`` is for the JWK Set the discovery document names apart from
        :attr:`jwks_uri` (Firebase's), directly or on the loopback server."""
        named = self._traits.discovery_jwks_uri
        if named is None:
            return False
        origin = _request_origin(request)
        server = self._server
        if server is not None and origin == server.url:
            return request.url.path == urlsplit(named).path
        return origin + request.url.path == named

    def handles(self, request: httpx.Request) -> bool:
        """True when ``request`` is for one of this issuer's origins (issuer, JWKS, its
        authorization and token endpoints, loopback server)."""
        origin = _request_origin(request)
        server = self._server
        origins = {self._origin, _origin(self.jwks_uri), _origin(self.token_endpoint)}
        origins.add(_origin(self.authorization_endpoint))
        if self._traits.discovery_jwks_uri is not None:
            origins.add(_origin(self._traits.discovery_jwks_uri))
        return origin in origins or (server is not None and origin == server.url)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the function behind every transport and the loopback server)."""
        route = self._route(request)
        request.extensions[ROUTE] = route
        self.requests.append(request)
        latency = self._latency
        if latency is not None and latency[1] in (None, route):
            time.sleep(latency[0])
        outage = self._outage
        if outage is not None and outage["only"] in (None, route):
            if outage["timeout"]:
                raise httpx.ReadTimeout("mock issuer outage", request=request)
            if outage["body"] is not None:
                return httpx.Response(
                    200, content=outage["body"], headers={"content-type": "application/json"}
                )
            return httpx.Response(outage["status"], text="mock issuer outage")
        if route == "authorize":
            return self._authorize(request)
        if route == "token":
            return self._token(request)
        if route == "userinfo":
            return self._userinfo_answer(request)
        headers = {"content-type": "application/json"}
        if route == "jwks" and self._jwks_cache_control is not None:
            headers["cache-control"] = self._jwks_cache_control
        elif self.cache_max_age is not None:
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
            if override is None and self._is_jwk_url(request):
                document = self.jwks()  # Firebase's JWK Set beside its certificate map
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
        """The requests made for the key document (``"jwks"``, whatever its ``key_format``),
        the discovery document (``"discovery"``), or the authorization, token and UserInfo
        endpoints of the code flow (``"authorize"``, ``"token"``, ``"userinfo"``), in the order
        they came."""
        if what not in _ROUTES:
            raise ValueError("what must be 'jwks', 'discovery', 'authorize', 'token' or 'userinfo'")
        return [r for r in self.requests if r.extensions.get(ROUTE) == what]

    # -- loopback server ---------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The loopback server's base URL while :meth:`serve` runs, else None."""
        server = self._server
        return server.url if server is not None else None

    @contextmanager
    def serve(self, *, port: int = 0, as_issuer: bool = False) -> Iterator[str]:
        """Serve discovery, JWKS and the authorization and token endpoints over real
        HTTP on 127.0.0.1; yields the base URL.

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

        In memory by default: mock transports (no network) and, unless the config names
        ``storage:`` or ``store=`` is given, a fresh
        :class:`~federation.storage.MemoryStore` for users and sessions, so that no
        ``federation.db`` is written where the tests run and no test sees another's
        users or used URL tokens. ``served=True`` builds a bridge with its own real
        httpx client that fetches from the loopback server. ``options`` go to
        :class:`~federation.Bridge` (``on_event=``, ``clock=``, ``http_client=`` ...).
        """
        from federation import Bridge

        settings = self.bridge_config(discovery=discovery, served=served) if config is None else dict(config)
        if not served:
            options.setdefault("http_client", self.client())
            options.setdefault("async_http_client", self.async_client())
        options.setdefault("clock", self.clock)
        if settings.get("storage") is None and "store" not in options:
            from federation.storage import MemoryStore

            options["store"] = MemoryStore()
        return Bridge.from_dict(settings, **options)

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


def _error_page(error: str, description: str) -> httpx.Response:
    """What the authorization endpoint shows instead of redirecting (a 400, as JSON)."""
    return httpx.Response(
        400,
        json={"error": error, "error_description": description},
        headers={"cache-control": "no-store"},
    )


def mock_transport(*idps: MockIdP) -> httpx.MockTransport:
    """One transport serving several mock issuers; other hosts get 404."""

    def route(request: httpx.Request) -> httpx.Response:
        idp = _serving(idps, request)
        if idp is not None:
            return idp.handler(request)
        return httpx.Response(404, text="no mock issuer for this host")

    return httpx.MockTransport(route)


def _route_name(only: str | None) -> Route | None:
    """``only=`` of :meth:`MockIdP.outage` and :meth:`MockIdP.slow`, checked."""
    if only is not None and only not in _ROUTES:
        raise ValueError("only must be 'jwks', 'discovery', 'authorize', 'token', 'userinfo' or None")
    return cast("Route | None", only)


def _keywords(function: Callable[..., Any]) -> list[str]:
    """The named keyword parameters of ``function`` (a shape's ``setup``: the provider's words)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return []
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds]


#: The keywords :class:`MockIdP` takes (what a shape's ``setup`` may hand on).
_INIT_KEYWORDS = frozenset(inspect.signature(MockIdP.__init__).parameters) - {"self"}
