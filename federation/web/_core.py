"""The web layer's rules, framework-neutral and pure (every integration calls these).

Owns: where a request's credential comes from (RFC 6750 §2.1 bearer header, then
the session cookie), the one response shape every failure becomes (RFC 6750 §3
``WWW-Authenticate``; 401/403/503 by the error's kind, the stable code in the
body), the cookies and their attributes (RFC 6265bis prefixes ``__Host-`` and
``__Secure-``), the CSRF double-submit token bound to the session (signed, HMAC),
which peers' ``X-Forwarded-*`` headers count, and :class:`WebSettings`, the
``web:`` section with its secrets loaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import (
    ConfigError,
    CSRFRejected,
    FederationError,
    InsufficientRole,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    KeySetUnavailable,
    LoginRefused,
    MissingToken,
    StorageError,
)
from ..spi import MAX_SECRET_FILE_BYTES, FileTooLarge, display_path, env_secret, read_limited
from ._redirects import RedirectPolicy, origin_of

if TYPE_CHECKING:
    from ..bridge import Bridge
    from ..config import KeyRef, WebConfig
    from ..sessions import Principal

__all__ = [
    "CSRF_COOKIE",
    "REFRESH_COOKIE",
    "SESSION_COOKIE",
    "CSRFGuard",
    "CookiePolicy",
    "Credential",
    "ErrorResponse",
    "ForwardedPolicy",
    "Guard",
    "WebSettings",
    "bearer_token",
    "credential_from",
    "error_response",
    "require_roles",
]

SESSION_COOKIE = "federation_session"
"""The base name of the session cookie (sent as ``__Host-federation_session``)."""
CSRF_COOKIE = "federation_csrf"
"""The base name of the CSRF double-submit cookie (readable by scripts)."""
REFRESH_COOKIE = "federation_refresh"
"""The base name of the refresh-token cookie (``Path`` limited to the token endpoint)."""
CSRF_HEADER = "x-csrf-token"
MAX_COOKIE_BYTES = 4000  # RFC 6265 §6.1's 4096 less room for the attributes
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WEBSOCKET = "WEBSOCKET"
"""The ``method`` the integrations give a WebSocket handshake: a GET that any page may open
with the browser's cookies, so a cookie-authenticated one must come from the app's origin."""


def scope_method(scope: Mapping[str, Any]) -> str:
    """An ASGI connection's method for :class:`Guard`: :data:`WEBSOCKET` for a handshake."""
    return WEBSOCKET if scope["type"] == "websocket" else str(scope.get("method", "GET"))


RETRY_AFTER = 5
"""Seconds a 503 asks the client to wait (``Retry-After``)."""


# -- credentials -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """A request's token and where it came from (``bearer`` header or session ``cookie``)."""

    token: str
    source: Literal["bearer", "cookie"]

    def __repr__(self) -> str:
        return f"Credential(source={self.source!r})"  # never the token


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive, RFC 7235 §2.1).

    None when there is no header or another scheme is used; an empty bearer
    credential is an :class:`~federation.errors.InvalidRequest`.
    """
    if authorization is None:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        # "Basic x, Bearer y": two headers joined (a quoted auth-param may hold the words)
        if _LATER_BEARER.search(_QUOTED.sub('""', authorization)):
            raise InvalidRequest("the request carries more than one Authorization credential")
        return None
    token = rest.strip()
    if not token:
        raise InvalidRequest("the Authorization header's Bearer credential is empty")
    if any(c in token for c in _NOT_B64TOKEN):
        # RFC 6750 §2.1's b64token has neither: a second credential (two headers joined by
        # a WSGI server or a proxy) or a header that is not one token.
        raise InvalidRequest("the Authorization header carries more than one Bearer credential")
    return token


_NOT_B64TOKEN = frozenset(" \t,")
_LATER_BEARER = re.compile(r",[ \t]*bearer[ \t]", re.IGNORECASE)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # RFC 9110 §5.6.4 quoted-string


def _cookie_count(cookie_header: str, name: str) -> int:
    return sum(1 for pair in cookie_header.split(";") if pair.partition("=")[0].strip() == name)


def credential_from(
    authorization: str | None,
    cookies: Mapping[str, str],
    cookie_names: Iterable[str],
    *,
    cookie_header: str | None = None,
) -> Credential | None:
    """The bearer token, else the first session cookie present, else None.

    ``cookie_header`` (the raw ``Cookie`` header) lets a session cookie sent twice be
    refused: frameworks keep different copies (Starlette the last, Werkzeug the first),
    and a sibling subdomain can plant a second one, so either choice would be a guess.
    """
    token = bearer_token(authorization)
    if token is not None:
        return Credential(token, "bearer")
    for name in cookie_names:
        value = cookies.get(name)
        if value:
            if "," in value or (cookie_header is not None and _cookie_count(cookie_header, name) > 1):
                # A comma is no cookie-octet (RFC 6265 §4.1.1): a WSGI server joined two Cookie
                # headers into this value (name=A,name=B). Never split it to find a session
                # cookie in: one cookie's value ("x=1,<session cookie>=...") is anyone's to set.
                raise InvalidRequest("the session cookie is sent more than once, or is not one value")
            return Credential(value, "cookie")
    return None


def _header(headers: Mapping[str, str], name: str, separator: str) -> str | None:
    """Every value of a header, joined as an HTTP/1.1 proxy would (RFC 9110 §5.3).

    ``Mapping.get`` gives Starlette's first value only; WSGI and Django join them already.
    """
    getlist = getattr(headers, "getlist", None)
    if getlist is None:
        return headers.get(name)
    values = getlist(name)
    return separator.join(values) if values else None


def require_roles(principal: Principal, roles: Collection[str] | None) -> None:
    """:class:`~federation.errors.InsufficientRole` unless the principal holds every role asked for."""
    if roles and not set(roles) <= principal.roles:
        raise InsufficientRole("the user lacks a role this endpoint requires", user_id=principal.user.id)


# -- errors to responses -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """The one shape every failure becomes: status, headers and ``{"error": code, "detail": ...}``."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, str]:
        """The JSON body (the stable code and the human message; never a token)."""
        return {"error": self.code, "detail": self.detail}


def _challenge(error: str | None, description: str | None = None) -> str:
    # RFC 6750 §3: no error attribute when the request carried no credential at all.
    parts = ['Bearer realm="federation"']
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        safe = "".join(c for c in description if c.isprintable() and c not in '"\\')
        parts.append(f'error_description="{safe}"')
    return ", ".join(parts)


def error_response(exc: FederationError) -> ErrorResponse:
    """The response for ``exc``: 401 for a bad or missing token, 403 for a refused login or a
    missing role, 503 with ``Retry-After`` when keys or storage are down, 400 for a bad request."""
    detail = exc.message
    if isinstance(exc, MissingToken):
        return ErrorResponse(401, exc.code, detail, {"WWW-Authenticate": _challenge(None)})
    if isinstance(exc, InvalidCredentials):
        return ErrorResponse(401, exc.code, detail, {"WWW-Authenticate": _challenge("invalid_token")})
    if isinstance(exc, InvalidToken):
        return ErrorResponse(401, exc.code, detail, {"WWW-Authenticate": _challenge("invalid_token", detail)})
    if isinstance(exc, InsufficientRole):
        return ErrorResponse(403, exc.code, detail, {"WWW-Authenticate": _challenge("insufficient_scope")})
    if isinstance(exc, LoginRefused):
        headers = {}
        retry = getattr(exc, "retry_after", None)
        if retry:
            headers["Retry-After"] = str(max(1, int(retry + 0.999)))
        return ErrorResponse(403, exc.code, detail, headers)
    if isinstance(exc, CSRFRejected):
        return ErrorResponse(403, exc.code, detail)
    if isinstance(exc, (KeySetUnavailable, StorageError)):
        return ErrorResponse(503, exc.code, detail, {"Retry-After": str(RETRY_AFTER)})
    if isinstance(exc, InvalidRequest):
        return ErrorResponse(400, exc.code, detail, {"WWW-Authenticate": _challenge("invalid_request")})
    return ErrorResponse(500, exc.code, detail)


# -- cookies -----------------------------------------------------------------------------


class CookiePolicy:
    """Names and attributes of the web layer's cookies.

    Host-only cookies carry the ``__Host-`` prefix (``Secure``, ``Path=/``, no
    ``Domain``); a shared ``domain`` gives ``__Secure-`` names. Plain-HTTP cookies
    (``secure=False``) have no prefix: development on loopback only.
    """

    def __init__(self, *, domain: str | None = None, secure: bool = True) -> None:
        if domain is not None and not secure:
            raise ValueError("a cookie shared across subdomains must be Secure")
        self.domain = domain
        self.secure = secure

    def name(self, base: str, *, path: str = "/", host_only: bool = False) -> str:
        """The cookie's name on the wire (its prefix follows its attributes).

        ``host_only`` names a cookie that never takes the shared ``domain`` (the
        sign-in state): it keeps ``__Host-``, which a sibling subdomain cannot set.
        """
        if not self.secure:
            return base
        if (self.domain is None or host_only) and path == "/":
            return "__Host-" + base
        return "__Secure-" + base

    def _attributes(self, *, path: str, http_only: bool) -> list[str]:
        attributes = [f"Path={path}"]
        if self.domain is not None:
            attributes.append(f"Domain={self.domain}")
        if self.secure:
            attributes.append("Secure")
        if http_only:
            attributes.append("HttpOnly")
        attributes.append("SameSite=Lax")
        return attributes

    def set(self, base: str, value: str, *, max_age: int, path: str = "/", http_only: bool = True) -> str:
        """A ``Set-Cookie`` value; a ValueError for a cookie too large to set whole."""
        name = self.name(base, path=path)
        if len(name) + 1 + len(value) > MAX_COOKIE_BYTES:
            raise ValueError(
                f"the {name} cookie would be over {MAX_COOKIE_BYTES} bytes; "
                "browsers drop such cookies (make the tokens smaller: fewer roles or claims)"
            )
        if not value.isascii() or any(c in value for c in ' ";,\\') or not value.isprintable():
            raise ValueError(f"the {name} cookie's value is not a cookie-octet string")
        attributes = "; ".join(self._attributes(path=path, http_only=http_only))
        return f"{name}={value}; Max-Age={max(0, int(max_age))}; {attributes}"

    def clear(self, base: str, *, path: str = "/", http_only: bool = True) -> str:
        """The ``Set-Cookie`` value deleting the cookie: the same name and attributes, ``Max-Age=0``."""
        attributes = "; ".join(self._attributes(path=path, http_only=http_only))
        return f"{self.name(base, path=path)}=; Max-Age=0; {attributes}"


# -- CSRF --------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CSRFGuard:
    """Double submit, bound to the session: the token is an HMAC of the session id.

    A cookie-authenticated unsafe request passes when the ``X-CSRF-Token``
    header equals the CSRF cookie, the cookie is the token of the request's
    session, and the request comes from the app's own origin (``Origin``, or
    ``Sec-Fetch-Site: same-origin`` when the browser sent no ``Origin``).
    Bearer-authenticated requests are exempt (a browser never adds the header).
    """

    def __init__(self, secret: bytes, *, origins: Collection[str]) -> None:
        if len(secret) < 32:
            raise ValueError("the CSRF secret must be at least 32 bytes")
        self._key = hashlib.sha256(b"federation csrf:" + secret).digest()
        self.origins = frozenset(origins)

    def token(self, session_id: str) -> str:
        """The CSRF token of ``session_id`` (the cookie's value and the header's)."""
        return _b64(hmac.new(self._key, session_id.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())

    def check(
        self,
        *,
        method: str,
        session_id: str | None,
        header: str | None,
        cookie: str | None,
        origin: str | None,
        fetch_site: str | None,
    ) -> None:
        """Raise :class:`~federation.errors.CSRFRejected` when an unsafe request fails the rules.

        A WebSocket handshake (``method`` :data:`WEBSOCKET`) cannot carry the header, so it
        must come from the app's origin, which browsers always send on one.
        """
        if method == WEBSOCKET:
            self.check_origin(origin, fetch_site)
            return
        if method.upper() not in UNSAFE_METHODS:
            return
        self.check_origin(origin, fetch_site)
        if session_id is None or not header or not cookie:
            raise CSRFRejected("a cookie-authenticated request needs the X-CSRF-Token header")
        expected = self.token(session_id)
        same = hmac.compare_digest(header.encode(), cookie.encode())
        if not (same and hmac.compare_digest(cookie.encode(), expected.encode())):
            raise CSRFRejected("the X-CSRF-Token header does not match this session's token")

    def check_origin(self, origin: str | None, fetch_site: str | None) -> None:
        """Raise :class:`~federation.errors.CSRFRejected` unless the request is same-origin."""
        if origin is not None and origin != "null":
            if origin_of(origin) not in self.origins:
                raise CSRFRejected("the request's Origin is not this app's")
            return
        if fetch_site is not None and fetch_site.lower() == "same-origin":
            return
        raise CSRFRejected("an unsafe request needs an Origin header of this app")


# -- forwarded headers -------------------------------------------------------------------


class ForwardedPolicy:
    """Which peers' ``X-Forwarded-For/Proto/Host`` count: only listed proxies' (else ignored)."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self._networks = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` is a listed proxy."""
        if address is None or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: walking ``X-Forwarded-For`` from the right past trusted proxies."""
        if not self.trusts(peer) or not forwarded_for:
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # a garbled hop: believe nothing it says
        return hops[0] if hops else peer

    def scheme(self, peer: str | None, scheme: str, forwarded_proto: str | None) -> str:
        """The scheme the client used (``X-Forwarded-Proto`` from a trusted proxy only)."""
        if self.trusts(peer) and forwarded_proto:
            value = forwarded_proto.split(",")[0].strip().lower()
            if value in ("http", "https"):
                return value
        return scheme


# -- settings ----------------------------------------------------------------------------


def read_secret(
    ref: KeyRef, *, field: str, base_dir: Path, environ: Mapping[str, str] | None = None
) -> bytes:
    """The bytes of a secret from ``{env: NAME}`` or ``{file: path}`` (trailing newline dropped)."""
    env = os.environ if environ is None else environ
    if ref.env is not None:
        return env_secret(env, ref.env, field)
    path = base_dir / str(ref.file)
    shown = display_path(path)
    try:
        data = read_limited(path, MAX_SECRET_FILE_BYTES).rstrip(b"\r\n")
    except FileTooLarge as exc:
        raise ConfigError(f"{field}: {shown} is {exc.strerror}", field=field) from None
    except OSError:
        raise ConfigError(f"{field}: cannot read {shown}", field=field) from None
    if not data:
        raise ConfigError(f"{field}: {shown} is empty", field=field)
    return data


@dataclass(frozen=True)
class WebSettings:
    """The ``web:`` section with its secrets loaded, and the policies built from it."""

    public_origin: str
    redirects: RedirectPolicy
    cookies: CookiePolicy
    csrf: CSRFGuard
    forwarded: ForwardedPolicy
    url_token_max_age: int
    registration_key: bytes | None
    admin_key: bytes | None
    admin_role: str
    delete: Literal["disable", "delete"]
    state_secret: bytes
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, bridge: Bridge, *, environ: Mapping[str, str] | None = None) -> WebSettings:
        """From ``bridge.config.web``; a :class:`~federation.errors.ConfigError` when it is absent."""
        web = bridge.config.web
        if web is None:
            raise ConfigError("the web layer needs a web: section (public_url at least)", field="web")
        return cls.from_config(web, bridge, environ=environ)

    @classmethod
    def from_config(
        cls, web: WebConfig, bridge: Bridge, *, environ: Mapping[str, str] | None = None
    ) -> WebSettings:
        """From a :class:`~federation.config.WebConfig` (secrets read from files or ``environ``)."""
        base = bridge.config.base_dir
        origin = origin_of(web.public_url)
        if origin is None:
            raise ConfigError("web.public_url must be an origin", field="web.public_url")

        def secret(ref: KeyRef | None, name: str) -> bytes | None:
            if ref is None:
                return None
            value = read_secret(ref, field=f"web.{name}", base_dir=base, environ=environ)
            if len(value) < 32:  # it guards an endpoint anyone can call, with no attempt limit
                raise ConfigError(f"web.{name} must be at least 32 bytes", field=f"web.{name}")
            return value

        if web.cookie_secret is not None:
            master = read_secret(web.cookie_secret, field="web.cookie_secret", base_dir=base, environ=environ)
            if len(master) < 32:
                raise ConfigError("web.cookie_secret must be at least 32 bytes", field="web.cookie_secret")
        else:
            tokens = bridge.sessions.tokens
            if tokens is None:
                raise ConfigError("the web layer needs a sessions: section", field="sessions")
            master = tokens.ring.derive_secret("web cookies")
        secure = not web.insecure_http
        return cls(
            public_origin=origin,
            redirects=RedirectPolicy(home=web.home, public_url=origin, allowed_origins=web.allowed_redirects),
            cookies=CookiePolicy(domain=web.cookie_domain, secure=secure),
            csrf=CSRFGuard(_derive(master, "csrf"), origins={origin}),
            forwarded=ForwardedPolicy(web.trusted_proxies),
            url_token_max_age=web.url_token_max_age,
            registration_key=secret(web.registration_key, "registration_key"),
            admin_key=secret(web.admin_key, "admin_key"),
            admin_role=web.admin_role,
            delete=web.delete,
            state_secret=_derive(master, "oauth state"),
        )

    @property
    def secure(self) -> bool:
        """Whether cookies are ``Secure`` (always, unless ``insecure_http`` on loopback)."""
        return self.cookies.secure

    def session_cookie_names(self) -> tuple[str, ...]:
        """The session cookie's name on the wire (a tuple: integrations loop over it)."""
        return (self.cookies.name(SESSION_COOKIE),)


class Guard:
    """Who a request is, the same way for every integration: the credential
    (:func:`credential_from`), the bridge's ``authenticate`` (the cheap per-request
    path), CSRF for a cookie-authenticated unsafe request, then the roles asked for.

    Without ``settings`` (no ``web:`` section) only bearer tokens are read: a
    session cookie needs the CSRF secret and the cookie names of ``web:``.
    """

    def __init__(self, bridge: Bridge, settings: WebSettings | None) -> None:
        self.bridge = bridge
        self.settings = settings
        self.cookie_names = settings.session_cookie_names() if settings is not None else ()

    def credential(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Credential | None:
        """The request's credential (``headers`` looked up by lowercase name).

        Two ``Authorization`` headers, or the session cookie sent twice, are an
        :class:`~federation.errors.InvalidRequest`: one request, one credential.
        """
        token = bearer_token(_header(headers, "authorization", ", "))
        if token is not None:  # the common case: no Cookie header joined for nothing
            return Credential(token, "bearer")
        if not self.cookie_names:
            return None
        return credential_from(
            None, cookies, self.cookie_names, cookie_header=_header(headers, "cookie", "; ")
        )

    def admit(
        self,
        principal: Principal,
        credential: Credential,
        *,
        method: str,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        roles: Collection[str] | None = None,
    ) -> Principal:
        """CSRF (cookie credentials only), then the roles; the principal when both pass."""
        settings = self.settings
        if credential.source == "cookie" and settings is not None:
            settings.csrf.check(
                method=method,
                session_id=principal.session_id,
                header=headers.get(CSRF_HEADER),
                cookie=cookies.get(settings.cookies.name(CSRF_COOKIE)),
                origin=headers.get("origin"),
                fetch_site=headers.get("sec-fetch-site"),
            )
        require_roles(principal, roles)
        return principal

    def _required_credential(
        self, headers: Mapping[str, str], cookies: Mapping[str, str], optional: bool
    ) -> Credential | None:
        try:
            credential = self.credential(headers, cookies)
        except InvalidRequest:
            if optional and headers.get("authorization") is None:
                # The session cookie twice (a sibling subdomain planted a copy): as a stale
                # cookie, anonymous where a sign-in is optional, so a middleware in front
                # of every route leaves /logout and /sso able to recover the browser.
                return None
            raise
        if credential is None and not optional:
            raise MissingToken("no bearer token or session cookie was sent")
        return credential

    def principal_of(self, credential: Credential, *, optional: bool = False) -> Principal | None:
        """``bridge.authenticate`` of the credential.

        With ``optional``, a session cookie the bridge refuses (revoked, expired, its user
        disabled) is None, as if it had not been sent: a browser holding a stale cookie
        stays anonymous instead of being refused every page, the sign-in page included.
        A bearer token that fails is always the caller's error.
        """
        try:
            return self.bridge.authenticate(credential.token)
        except (InvalidToken, LoginRefused):
            if optional and credential.source == "cookie":
                return None
            raise

    async def aprincipal_of(self, credential: Credential, *, optional: bool = False) -> Principal | None:
        """Async twin of :meth:`principal_of`."""
        try:
            return await self.bridge.aauthenticate(credential.token)
        except (InvalidToken, LoginRefused):
            if optional and credential.source == "cookie":
                return None
            raise

    def authenticate(
        self,
        *,
        method: str,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        roles: Collection[str] | None = None,
        optional: bool = False,
    ) -> Principal | None:
        """The request's principal (sync); None only when ``optional`` and no credential was
        sent, or only a session cookie the bridge refuses (:meth:`principal_of`)."""
        credential = self._required_credential(headers, cookies, optional)
        if credential is None:
            return None
        principal = self.principal_of(credential, optional=optional)
        if principal is None:
            return None
        return self.admit(principal, credential, method=method, headers=headers, cookies=cookies, roles=roles)

    async def aauthenticate(
        self,
        *,
        method: str,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        roles: Collection[str] | None = None,
        optional: bool = False,
    ) -> Principal | None:
        """Async twin of :meth:`authenticate`."""
        credential = self._required_credential(headers, cookies, optional)
        if credential is None:
            return None
        principal = await self.aprincipal_of(credential, optional=optional)
        if principal is None:
            return None
        return self.admit(principal, credential, method=method, headers=headers, cookies=cookies, roles=roles)


def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, b"federation web: " + purpose.encode(), hashlib.sha256).digest()


def keys_match(given: str | None, expected: bytes | None) -> bool:
    """A configured extra key against the one a request sent, in constant time (never logged)."""
    if expected is None or given is None:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(), hashlib.sha256(expected).digest()
    )
