"""The login service: an ASGI app (Starlette) with the seeds' endpoints (docs/web.md).

Owns: the HTTP shape of the bridge's session layer — RFC 8693 token exchange,
RFC 6749 refresh and password grants and their §5.1/§5.2 bodies, RFC 7009
revocation, registration and account deletion behind their keys, the ``/sso``
URL-token login, the OIDC authorization-code flow with PKCE through Authlib's
client (the id token then verified by the bridge, never by the client alone),
logout, the RFC 8414 metadata and the session JWKS, and the health check.

Every rule it applies (credentials, responses, cookies, CSRF, redirects,
forwarded headers) is :mod:`federation.web._core`'s and
:mod:`federation.web._redirects`'; this module only moves requests to them and
to the bridge.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import (
    FederationError,
    InsufficientRole,
    InvalidRequest,
    InvalidToken,
    KeySetUnavailable,
    LoginRefused,
    MissingToken,
    StorageError,
    TokenRevoked,
)
from ..spi import StrictJSONError, loads_object
from ._core import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Credential,
    ErrorResponse,
    Guard,
    WebSettings,
    _header,
    error_response,
    keys_match,
)
from ._redirects import origin_of
from ._signin import (
    SIGN_IN_MAX_AGE,
    SignInClient,
    check_id_token,
    check_metadata,
    check_response_issuer,
    finish_sign_in,
    id_token_of,
    read_userinfo,
    sign_in_clients,
    spent_state_claim,
    spent_token_claim,
    start_sign_in,
    token_endpoint_failure,
    url_token_claim,
    userinfo_endpoint,
)

if TYPE_CHECKING:
    from ..bridge import Bridge
    from ..provisioning import LoginResult
    from ..sessions import Principal, Session
    from ..spi import TokenType

__all__ = ["create_app"]

log = logging.getLogger("federation.web")

#: RFC 8693 §3: the subject token types /token accepts (all verified as JWTs by the bridge),
#: and the kind each must be (jwt: any the issuer accepts).
SUBJECT_TOKEN_TYPES: Mapping[str, TokenType | None] = {
    "urn:ietf:params:oauth:token-type:id_token": "id",
    "urn:ietf:params:oauth:token-type:access_token": "access",
    "urn:ietf:params:oauth:token-type:jwt": None,
}
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
MAX_BODY_BYTES = 64 * 1024
STATE_COOKIE = "federation_oauth"
SIGN_INS = "sign_ins"  # the state cookie's one member: the browser's open sign-ins
# The state cookie's JSON at most: base64 of it, the signature and the name stay within
# the 4096 bytes browsers keep of a cookie.
STATE_BUDGET = 2900
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


#: Seconds a request body may take to arrive: a client sending a byte a second, or none
#: after its headers, would otherwise keep its connection (and the login it waits for).
BODY_TIMEOUT = 10.0


async def _read_body(request: Request) -> bytes:
    """The body up to :data:`MAX_BODY_BYTES` (a chunked body declares no length), within
    :data:`BODY_TIMEOUT`; a client that goes away meanwhile is an ``InvalidRequest`` no one
    reads, not an ASGI error logged with its traceback."""
    chunks: list[bytes] = []

    async def read() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise InvalidRequest("the request body is too large")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), BODY_TIMEOUT)
    except (asyncio.TimeoutError, TimeoutError):
        raise InvalidRequest("the request body did not arrive in time", code="request_timeout") from None
    except ClientDisconnect:
        raise InvalidRequest("the client went away before its request body arrived") from None
    return b"".join(chunks)


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(dict(body), status_code=status, headers={**NO_STORE, **(headers or {})})


async def _routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take) in the
    service's one error shape, its ``Allow`` header kept."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    error, detail = _ROUTING_ERRORS.get(status, ("invalid_request", "the request was refused"))
    return _json(status, {"error": error, "detail": detail}, exc.headers)


_ROUTING_ERRORS = {
    404: ("not_found", "no endpoint of the login service has this path"),
    405: ("method_not_allowed", "this endpoint does not take this method"),
}


def _problem(exc: FederationError) -> JSONResponse:
    answer: ErrorResponse = error_response(exc)
    return _json(answer.status, answer.body, answer.headers)


def _oauth_error(exc: FederationError, *, grant_error: str) -> JSONResponse:
    """RFC 6749 §5.2: ``error`` and ``error_description``, plus our stable ``code``."""
    headers: dict[str, str] = {}
    if isinstance(exc, (KeySetUnavailable, StorageError)):
        status, error = 503, "temporarily_unavailable"
        headers["Retry-After"] = error_response(exc).headers.get("Retry-After", "5")
    elif isinstance(exc, InvalidRequest):
        status, error = 400, "invalid_request"
    elif isinstance(exc, (InvalidToken, LoginRefused)):
        status, error = 400, grant_error
        retry = error_response(exc).headers.get("Retry-After")
        if retry is not None:
            headers["Retry-After"] = retry
    else:
        status, error = 500, "server_error"
    body = {"error": error, "error_description": _description(exc.message), "code": exc.code}
    return _json(status, body, headers)


#: The form parameters the endpoints read (RFC 6749, 7009, 8693; the seeds' registration).
_KNOWN_PARAMETERS = frozenset(
    {
        "grant_type", "subject_token", "subject_token_type", "requested_token_type", "audience",
        "resource", "scope", "actor_token", "actor_token_type", "refresh_token", "username",
        "password", "token", "token_type_hint", "email", "client_id",
    }
)


def _sent_once(request: Request, *names: str) -> None:
    """RFC 6749 §3.1: a parameter is sent at most once; two copies are two answers to choose
    between, and a proxy or log that reads the other one would see another request."""
    for name in names:
        if len(request.query_params.getlist(name)) > 1:
            raise InvalidRequest(f"the parameter {name!r} is repeated")


def _description(message: str) -> str:
    """RFC 6749 §5.2: ``error_description`` holds only %x20-21 / %x23-5B / %x5D-7E."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in message)


class LoginService:
    """The endpoints, over one bridge and its web settings (see :func:`create_app`)."""

    def __init__(
        self,
        bridge: Bridge,
        settings: WebSettings,
        *,
        environ: Mapping[str, str] | None = None,
        oauth_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.bridge = bridge
        self.settings = settings
        self.guard = Guard(bridge, settings)
        self.clients: dict[str, Any] = {}  # Authlib's, by sign-in name
        self.sign_ins: dict[str, SignInClient] = {}
        self._oauth: Any = None
        self._build_clients(environ, oauth_transport)

    # -- the sign-in clients ------------------------------------------------------------

    def _build_clients(
        self, environ: Mapping[str, str] | None, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        entries = [p for p in self.bridge.config.issuers if p.login is not None]
        if not entries:
            return
        import authlib.deprecate  # type: ignore[import-untyped]  # its "always" filter first, then ours

        with warnings.catch_warnings():  # Authlib announces httpx2; this layer is on httpx
            warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
            from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]

        oauth = OAuth()
        self.sign_ins = sign_in_clients(self.bridge, environ)
        for name, entry in self.sign_ins.items():
            kwargs: dict[str, Any] = {
                "scope": " ".join(entry.scopes),
                "code_challenge_method": "S256",
                "timeout": 10.0,
                "token_endpoint_auth_method": entry.auth_method,
            }
            if _authlib_on_httpx():  # with httpx2 installed, Authlib's clients take its transports
                kwargs["transport"] = self.bridge.async_transport(transport)  # bounded either way
            self.clients[name] = oauth.register(
                name,
                client_id=entry.client_id,
                client_secret=entry.client_secret,
                server_metadata_url=entry.discovery_url,
                client_kwargs=kwargs,
            )
        self._oauth = oauth

    # -- helpers --------------------------------------------------------------------------

    async def _metadata(self, name: str, client: Any) -> dict[str, Any]:
        """The sign-in's discovery document (Authlib's, cached by it), read and checked
        (:func:`check_metadata`); a :class:`KeySetUnavailable` when it cannot be read or
        names another issuer."""
        try:
            metadata: dict[str, Any] = await client.load_server_metadata()
        except (httpx.HTTPError, ValueError, RuntimeError, KeyError) as exc:
            raise self._unreachable(name, exc) from None
        try:
            check_metadata(metadata, self.sign_ins[name])
        except KeySetUnavailable:
            log.warning("sign-in with %s: the provider's metadata names another issuer", name)
            raise
        return metadata

    async def _userinfo(
        self, name: str, client: Any, metadata: Mapping[str, Any], answer: Any
    ) -> dict[str, Any]:
        """The provider's UserInfo response for the access token of ``answer`` (``login.userinfo``)."""
        url = userinfo_endpoint(metadata, allow_loopback_http=self.bridge.config.keys.allow_loopback_http)
        try:
            response = await client.get(url, token=answer, headers={"accept": "application/json"})
        except Exception as exc:  # httpx errors, a refused answer size: the provider, not the user
            log.warning("sign-in with %s: the UserInfo endpoint failed (%s)", name, type(exc).__name__)
            raise token_endpoint_failure(exc, name) from None
        limits = self.bridge.config.limits
        return read_userinfo(
            response.status_code,
            response.headers.get("content-type"),
            response.content,
            name,
            limits.max_json_depth,
        )

    @staticmethod
    def _unreachable(name: str, exc: Exception) -> KeySetUnavailable:
        log.warning("sign-in with %s: provider metadata unreadable (%s)", name, type(exc).__name__)
        return KeySetUnavailable("the identity provider cannot be reached", issuer=name)

    def _base(self, request: Request) -> str:
        """The service's own absolute base URL: public_url plus where it is mounted (never Host)."""
        root = str(request.scope.get("root_path", ""))
        return self.settings.public_origin + root.rstrip("/")

    def _client_address(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        # Every X-Forwarded-For line, joined: a proxy may add its own line below the client's.
        forwarded = _header(request.headers, "x-forwarded-for", ", ")
        return self.settings.forwarded.client_address(peer, forwarded)

    def _credential(self, request: Request) -> Credential | None:
        return self.guard.credential(request.headers, request.cookies)

    async def _principal(self, request: Request) -> tuple[Principal, Credential]:
        """Who the request is; a cookie-authenticated unsafe request must pass CSRF first."""
        credential = self._credential(request)
        if credential is None:
            raise MissingToken("no bearer token or session cookie was sent")
        principal = await self.bridge.aauthenticate(credential.token)
        self.guard.admit(
            principal, credential, method=request.method, headers=request.headers, cookies=request.cookies
        )
        return principal, credential

    async def _form(self, request: Request) -> dict[str, str]:
        """A url-encoded (or JSON) body as single-valued fields; repeated fields are refused."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise InvalidRequest("the request body is too large")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await _read_body(request)
        if kind == "application/json":
            # Strict, as a form is: a repeated member is refused, not decided by the last one.
            try:
                data = loads_object(body or b"{}", max_depth=1)
            except StrictJSONError as exc:  # its message names the fault, never the input
                raise InvalidRequest(f"the body must be a JSON object of strings ({exc})") from None
            if not all(isinstance(v, str) for v in data.values()):
                raise InvalidRequest("the body must be a JSON object of strings")
            return data
        if kind not in ("application/x-www-form-urlencoded", ""):
            raise InvalidRequest("the body must be application/x-www-form-urlencoded or application/json")
        from urllib.parse import parse_qsl

        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise InvalidRequest("the body is not UTF-8") from None
        form: dict[str, str] = {}
        for key, value in pairs:
            if key in form:  # RFC 6749 §3.2; a name the client made up is not echoed
                named = f"the parameter {key!r}" if key in _KNOWN_PARAMETERS else "a parameter"
                raise InvalidRequest(f"{named} is repeated")
            form[key] = value
        return form

    @staticmethod
    def _token_body(session: Session, *, exchange: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": session.access_token,
            "token_type": session.token_type,
            "expires_in": session.expires_in,
        }
        if session.refresh_token is not None:
            body["refresh_token"] = session.refresh_token
        if exchange:
            body["issued_token_type"] = ACCESS_TOKEN_TYPE
        return body

    async def _session_cookies(self, session: Session) -> tuple[str, str]:
        """The session cookie (HttpOnly) and its CSRF cookie (script-readable), as long as the token.

        A token too large for a cookie revokes the session just issued (nobody could hold it)
        and raises ``cookie_too_large``: the browser's previous session is still untouched.
        """
        cookies = self.settings.cookies
        now = datetime.fromtimestamp(self.bridge.now(), timezone.utc)
        max_age = max(0, int((session.expires_at - now).total_seconds()))
        max_age = min(max_age, session.expires_in)
        csrf = self.settings.csrf.token(session.session_id)
        try:
            return (
                cookies.set(SESSION_COOKIE, session.access_token, max_age=max_age),
                cookies.set(CSRF_COOKIE, csrf, max_age=max_age, http_only=False),
            )
        except ValueError as exc:
            await self.bridge.arevoke_session(session.session_id)
            raise FederationError(str(exc), code="cookie_too_large") from None

    async def _signed_in(self, request: Request, session: Session, target: str | None) -> Response:
        """The redirect that carries a new session's cookies; the browser's previous session ended.

        The cookies are built first, so that a refusal (``cookie_too_large``) leaves the
        previous session as it was.
        """
        cookies = await self._session_cookies(session)
        await self._end_previous(request)
        response = self._redirect(target)
        for cookie in cookies:
            response.headers.append("set-cookie", cookie)
        return response

    def _clear_session_cookies(self, response: Response) -> None:
        cookies = self.settings.cookies
        response.headers.append("set-cookie", cookies.clear(SESSION_COOKIE))
        response.headers.append("set-cookie", cookies.clear(CSRF_COOKIE, http_only=False))

    def _redirect(self, target: str | None) -> RedirectResponse:
        location = self.settings.redirects.target(target)
        return RedirectResponse(location, status_code=303, headers=dict(NO_STORE))

    async def _end_previous(self, request: Request) -> None:
        """Session fixation: a browser signing in again ends the session its cookie names."""
        for name in self.settings.session_cookie_names():
            token = request.cookies.get(name)
            if token:
                try:
                    await self.bridge.arevoke(token)
                except FederationError:
                    pass  # an unreadable old cookie is simply replaced

    def _own_target(self, target: str) -> bool:
        """Whether an exchange's ``audience`` or ``resource`` names this app: its tokens'
        audience, issuer or client id, or a URL of its origin (RFC 8707: an API path under it)."""
        tokens = self.bridge.sessions.tokens
        if target in (tokens.audience, tokens.issuer, tokens.client_id):
            return True
        return origin_of(target) == self.settings.public_origin

    async def _claim_once(self, key: str, until: datetime) -> bool:
        """Whether this call is the first to claim ``key`` in the shared session store."""
        return await asyncio.to_thread(self.bridge.sessions.store.claim_once, key, expires_at=until)

    async def _spend(self, result: LoginResult, token: str) -> None:
        """An external token becomes a session once, whichever door (``/sso`` claims the same
        key): a token that travelled in a URL, or was captured, cannot be exchanged again."""
        key, until = spent_token_claim(result.token, token=token)
        assert key is not None  # the token is given
        if not await self._claim_once(key, until):
            raise TokenRevoked("this token was exchanged for a session already", code="token_replayed")

    # -- endpoints ------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """POST /token: token exchange (RFC 8693), refresh and password grants (RFC 6749)."""
        try:
            form = await self._form(request)
        except InvalidRequest as exc:
            return _oauth_error(exc, grant_error="invalid_request")
        grant = form.get("grant_type")
        try:
            if grant == TOKEN_EXCHANGE:
                subject = form.get("subject_token")
                kind = form.get("subject_token_type")
                if not subject or not kind:
                    raise InvalidRequest("subject_token and subject_token_type are required")
                if kind not in SUBJECT_TOKEN_TYPES:
                    raise InvalidRequest("subject_token_type is not one this service accepts")
                requested = form.get("requested_token_type")
                if requested not in (None, ACCESS_TOKEN_TYPE):
                    raise InvalidRequest("only access tokens are issued (requested_token_type)")
                if "actor_token" in form or "actor_token_type" in form:  # RFC 8693 §2.1
                    raise InvalidRequest("delegation (actor_token) is not supported: impersonation only")
                for name in ("audience", "resource"):  # §2.2.2: tokens for this app alone
                    if name in form and not self._own_target(form[name]):
                        return _json(
                            400,
                            {
                                "error": "invalid_target",
                                "error_description": f"tokens are issued for this app only ({name})",
                                "code": "invalid_target",
                            },
                        )
                try:
                    result = await self.bridge.alogin(subject, token_type=SUBJECT_TOKEN_TYPES[kind])
                    await self._spend(result, subject)
                except InvalidToken as exc:  # RFC 8693 §2.2.2: a bad subject token is invalid_request
                    return _oauth_error(exc, grant_error="invalid_request")
                session = await self.bridge.aissue_session(result)
                return _json(200, self._token_body(session, exchange=True))
            if grant == "refresh_token":
                refresh = form.get("refresh_token")
                if not refresh:
                    raise InvalidRequest("refresh_token is required")
                session = await self.bridge.arefresh(refresh)
                return _json(200, self._token_body(session))
            if grant == "password" and self.bridge.config.local_accounts is not None:
                username, password = form.get("username"), form.get("password")
                if not username or password is None:
                    raise InvalidRequest("username and password are required")
                session = await self.bridge.apassword_login(
                    username, password, client_address=self._client_address(request)
                )
                return _json(200, self._token_body(session))
        except FederationError as exc:
            return _oauth_error(exc, grant_error="invalid_grant")
        if not grant:
            return _oauth_error(InvalidRequest("grant_type is required"), grant_error="invalid_request")
        body = {
            "error": "unsupported_grant_type",
            "error_description": "this grant type is not supported",
            "code": "unsupported_grant_type",
        }
        return _json(400, body)

    async def revoke(self, request: Request) -> Response:
        """POST /revoke (RFC 7009): always 200 for a well-formed request."""
        try:
            form = await self._form(request)
            token = form.get("token")
            if not token:
                raise InvalidRequest("token is required")
            hint = form.get("token_type_hint")
            if hint is not None and hint not in ("access_token", "refresh_token"):
                # RFC 7009 §2.2.1: an unknown hint may be ignored; the search covers both kinds.
                hint = None
            try:
                await self.bridge.arevoke(token)
            except InvalidToken:
                pass  # §2.2: an invalid token is no error for the client
        except FederationError as exc:
            return _oauth_error(exc, grant_error="invalid_request")
        return Response(status_code=200, headers=dict(NO_STORE))

    async def register(self, request: Request) -> Response:
        """POST /register: the seeds' registration (an external token, or local-account fields)."""
        try:
            expected = self.settings.registration_key
            if expected is not None and not keys_match(request.headers.get("x-registration-key"), expected):
                raise LoginRefused("registration needs the registration key", code="registration_key")
            form = await self._form(request)
            external = form.get("subject_token") or form.get("token")
            if external:
                result = await self.bridge.alogin(external)
                await self._spend(result, external)
                session = await self.bridge.aissue_session(result)
                status = 201 if result.created else 200
            else:
                username, password = form.get("username"), form.get("password")
                if self.bridge.config.local_accounts is None:
                    raise InvalidRequest("registration here needs an external token (subject_token)")
                if not username or password is None:
                    raise InvalidRequest("give subject_token, or username and password")
                user = await self.bridge.aregister_local(
                    username=username, email=form.get("email") or None, password=password
                )
                session = await self.bridge.aissue_session(user)
                status = 201
        except FederationError as exc:
            return _problem(exc)
        body = {**self._token_body(session), "user": _user_json(session.user)}
        return _json(status, body)

    async def delete_me(self, request: Request) -> Response:
        """DELETE /users/me: the caller's account disabled or deleted, every session revoked."""
        try:
            principal, credential = await self._principal(request)
            result = await self.bridge.adeprovision_user(
                principal.user.id, mode=self.settings.delete, reason="deleted by the user"
            )
        except FederationError as exc:
            return _problem(exc)
        response = _json(200, {"user": principal.user.id, "action": result.action if result else "none"})
        if credential.source == "cookie":
            self._clear_session_cookies(response)
        return response

    async def delete_user(self, request: Request) -> Response:
        """DELETE /users/{id}: with the admin key (X-Admin-Key) or a caller holding the admin role."""
        user_id = request.path_params["user_id"]
        try:
            admin_key = request.headers.get("x-admin-key")
            if admin_key is not None:
                if self.settings.admin_key is None:  # not "not valid": there is none to match
                    raise LoginRefused(
                        "no admin key is configured (web.admin_key): deleting another user needs "
                        "the admin role",
                        code="admin_key",
                    )
                if not keys_match(admin_key, self.settings.admin_key):
                    raise LoginRefused("the admin key is not valid", code="admin_key")
            else:
                principal, _ = await self._principal(request)
                if self.settings.admin_role not in principal.roles:
                    raise InsufficientRole(
                        "deleting another user needs the admin role", user_id=principal.user.id
                    )
            result = await self.bridge.adeprovision_user(
                user_id, mode=self.settings.delete, reason="deleted by an administrator"
            )
        except FederationError as exc:
            return _problem(exc)
        if result is None:
            return _json(404, {"error": "not_found", "detail": "no such user"})
        return _json(200, {"user": user_id, "action": result.action})

    async def sso(self, request: Request) -> Response:
        """GET /sso?token=...&redirect_to=...: the seeds' auto-login from a single-use URL token."""
        headers = {**NO_STORE, "Referrer-Policy": "no-referrer"}
        token = request.query_params.get("token")
        try:
            _sent_once(request, "token", "redirect_to")
            if not token:
                raise MissingToken("the token parameter is missing")
            verified = await self.bridge.averify(token)
            key, until = url_token_claim(
                verified, now=self.bridge.now(), max_age=self.settings.url_token_max_age, token=token
            )
            if not await self._claim_once(key, until):
                raise TokenRevoked("this URL token was used already", code="url_token_replayed")
            result = await self.bridge.aprovision(verified)
            session = await self.bridge.aissue_session(result)
            response = await self._signed_in(request, session, request.query_params.get("redirect_to"))
        except FederationError as exc:
            answer = error_response(exc)
            return _json(answer.status, answer.body, {**answer.headers, **headers})
        response.headers.update(headers)
        return response

    async def backchannel_logout(self, request: Request) -> Response:
        """POST /backchannel-logout: OIDC Back-Channel Logout 1.0 §2.5 and §2.8, from the
        provider's server (no cookies, no CSRF): 200 when the user's sessions are ended (or
        no user has the identity), 400 for a logout token that is not valid or used already."""
        try:
            form = await self._form(request)
            token = form.get("logout_token")
            if not token:
                raise InvalidRequest("logout_token is required")
            await self.bridge.abackchannel_logout(token)
        except (KeySetUnavailable, StorageError) as exc:  # the provider retries: say when
            return _oauth_error(exc, grant_error="invalid_request")
        except FederationError as exc:
            body = {"error": "invalid_request", "error_description": _description(exc.message)}
            return _json(400, {**body, "code": exc.code})
        return Response(status_code=200, headers=dict(NO_STORE))

    async def login(self, request: Request) -> Response:
        """GET /login/{issuer}: start the authorization-code flow (PKCE S256, state, nonce)."""
        name = request.path_params["issuer"]
        client = self.clients.get(name)
        if client is None:
            return _json(404, {"error": "not_found", "detail": "no sign-in is configured for this issuer"})
        redirect_uri = f"{self._base(request)}/callback/{quote(name, safe='')}"
        target = self.settings.redirects.target(request.query_params.get("redirect_to"))
        try:
            await self._metadata(name, client)
        except KeySetUnavailable as exc:
            return _problem(exc)
        extra = self.sign_ins[name].authorization_params()  # max_age, when the entry sets one
        try:
            rv = await client.create_authorization_url(redirect_uri, **extra)
        except (httpx.HTTPError, ValueError, RuntimeError, KeyError) as exc:
            return _problem(self._unreachable(name, exc))
        request.session[SIGN_INS] = start_sign_in(
            request.session.get(SIGN_INS),
            rv["state"],
            {
                "redirect_uri": redirect_uri,
                "next": target,
                "code_verifier": rv.get("code_verifier"),
                "nonce": rv.get("nonce"),
            },
            issuer=name,
            now=self.bridge.now(),
            budget=STATE_BUDGET,
        )
        return RedirectResponse(rv["url"], status_code=302, headers=dict(NO_STORE))

    async def callback(self, request: Request) -> Response:
        """GET /callback/{issuer}: the code exchanged, the id token verified by the bridge, a session."""
        name = request.path_params["issuer"]
        client = self.clients.get(name)
        if client is None:
            return _json(404, {"error": "not_found", "detail": "no sign-in is configured for this issuer"})
        params = request.query_params
        try:
            _sent_once(request, "state", "code", "error")
        except InvalidRequest as exc:
            return _problem(exc)
        data, pending = finish_sign_in(
            request.session.get(SIGN_INS), params.get("state"), issuer=name, now=self.bridge.now()
        )
        # A state is used once, whatever happens next; with none left the cookie goes.
        if pending:
            request.session[SIGN_INS] = pending
        else:
            request.session.pop(SIGN_INS, None)
        try:
            if not data:
                # No state of this browser: a forged or replayed callback (RFC 9700 §4.7).
                raise InvalidRequest("the sign-in state is missing or expired; sign in again")
            key, until = spent_state_claim(str(params.get("state")), data)
            if not await self._claim_once(key, until):
                # an earlier copy of this browser's state cookie, restored
                raise InvalidRequest("the sign-in state was used already; sign in again")
            metadata = await self._metadata(name, client)  # loaded at /login (this process or another)
            check_response_issuer(params.getlist("iss"), metadata)
            if params.get("error"):
                raise LoginRefused("the identity provider refused the sign-in", code="provider_refused")
            code = params.get("code")
            if not code:
                raise InvalidRequest("the callback carries no code")
            try:
                answer = await client.fetch_access_token(
                    code=code, redirect_uri=data["redirect_uri"], code_verifier=data.get("code_verifier")
                )
            except Exception as exc:  # Authlib's OAuthError, httpx errors: the provider, not the user
                log.warning("sign-in with %s: the token endpoint failed (%s)", name, type(exc).__name__)
                raise token_endpoint_failure(exc, name) from None
            id_token = id_token_of(answer)
            if self.sign_ins[name].userinfo:
                userinfo = await self._userinfo(name, client, metadata, answer)
                verified = await self.bridge._averify_signed_in(id_token, userinfo)
            else:
                verified = await self.bridge.averify(id_token)
            check_id_token(
                verified,
                data.get("nonce"),
                self.sign_ins[name],
                answer=answer,
                code=code,
                now=self.bridge.now(),
                leeway=self.bridge.config.leeway,
            )
            result = await self.bridge.aprovision(verified)
            session = await self.bridge.aissue_session(result)
            return await self._signed_in(request, session, data.get("next"))
        except FederationError as exc:
            return _problem(exc)

    async def logout(self, request: Request) -> Response:
        """POST /logout: the session revoked, the cookies cleared with identical attributes."""
        try:
            credential = self._credential(request)
        except InvalidRequest as exc:
            # The session cookie twice (a sibling subdomain can plant a copy): neither names
            # the session to end, but a same-origin logout still clears this host's cookies.
            try:
                origin, site = request.headers.get("origin"), request.headers.get("sec-fetch-site")
                self.settings.csrf.check_origin(origin, site)
            except FederationError as refused:
                return _problem(refused)
            answer = _problem(exc)
            self._clear_session_cookies(answer)
            return answer
        try:
            form = await self._form(request)  # a refused body refuses the logout before it revokes
            if credential is not None:
                if credential.source == "cookie":
                    self.settings.csrf.check_origin(
                        request.headers.get("origin"), request.headers.get("sec-fetch-site")
                    )
                try:
                    principal = await self.bridge.aauthenticate(credential.token)
                except InvalidToken:
                    principal = None  # an expired or revoked cookie: only clear it
                except LoginRefused:
                    principal = None
                if principal is not None:
                    self.guard.admit(
                        principal,
                        credential,
                        method=request.method,
                        headers=request.headers,
                        cookies=request.cookies,
                    )
                    if principal.session_id is not None:
                        await self.bridge.arevoke_session(principal.session_id)
        except FederationError as exc:
            return _problem(exc)
        response = self._redirect(form.get("redirect_to") or request.query_params.get("redirect_to"))
        self._clear_session_cookies(response)
        return response

    async def me(self, request: Request) -> Response:
        """GET /me: the current principal."""
        try:
            principal, _ = await self._principal(request)
        except FederationError as exc:
            return _problem(exc)
        return _json(
            200,
            {
                "user": _user_json(principal.user),
                "kind": principal.kind,
                "roles": sorted(principal.roles),
                "session_id": principal.session_id,
            },
        )

    async def jwks(self, request: Request) -> Response:
        """GET /.well-known/jwks.json: the session keys."""
        return JSONResponse(self.bridge.session_jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def metadata(self, request: Request) -> Response:
        """GET /.well-known/oauth-authorization-server (RFC 8414)."""
        base = self._base(request)
        sessions = self.bridge.config.sessions
        assert sessions is not None  # WebSettings requires it
        grants = [TOKEN_EXCHANGE, "refresh_token"]
        if self.bridge.config.local_accounts is not None:
            grants.append("password")
        return JSONResponse(
            {
                "issuer": sessions.issuer,
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "token_endpoint": f"{base}/token",
                "revocation_endpoint": f"{base}/revoke",
                "grant_types_supported": grants,
                "token_endpoint_auth_methods_supported": ["none"],
                "revocation_endpoint_auth_methods_supported": ["none"],
                "response_types_supported": [],
            },
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: every issuer's keys warm and the store reachable, else 503 naming what is down."""
        report = await self.bridge.awarm_up(cold_only=True)  # a probe never makes us fetch
        down: dict[str, Any] = {}
        if not report.ok:
            down["issuers"] = dict(report.failed)
        try:
            store = self.bridge.sessions.store
            await asyncio.to_thread(store.attempts, "\x00healthz")
        except FederationError as exc:
            down["store"] = exc.code
        except Exception as exc:  # a store of the app's own that raises its own errors
            down["store"] = type(exc).__name__
        if down:
            return _json(503, {"status": "unavailable", "down": down}, {"Retry-After": "5"})
        return _json(200, {"status": "ok", "issuers": list(report.succeeded)})


def _authlib_on_httpx() -> bool:
    from authlib.integrations.httpx_client import _compat  # type: ignore[import-untyped]

    return bool(_compat.httpx2 is httpx)


def _user_json(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": getattr(user, "display_name", None),
        "roles": sorted(user.roles),
        "status": user.status,
    }


def create_app(
    bridge: Bridge,
    *,
    environ: Mapping[str, str] | None = None,
    oauth_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The login service over ``bridge`` (its ``web:`` and ``sessions:`` sections), as a Starlette app.

    Mount it (``app.mount("/auth", create_app(bridge))``) or serve it alone
    (``federation serve``). ``environ`` is where ``{env: ...}`` secrets are read
    (default: the process environment); ``oauth_transport`` carries the sign-in
    flow's calls to the providers (default: the bridge's, see
    :meth:`~federation.Bridge.async_transport`); either way a response over
    ``keys.max_response_bytes`` is refused.
    """
    settings = WebSettings.load(bridge, environ=environ)
    service = LoginService(bridge, settings, environ=environ, oauth_transport=oauth_transport)

    def route(path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
        return Route(path, endpoint, methods=methods)

    def get_only(path: str, endpoint: Callable[[Request], Awaitable[Response]], **options: Any) -> Route:
        # Starlette adds HEAD to a GET route; these GETs spend a single-use credential (a URL
        # token, an authorization code), which a link checker's HEAD must not (RFC 9110
        # §9.3.2): 405 with ``Allow: GET``, on HEAD and on every other method alike.
        built = Route(path, endpoint, methods=["GET"], **options)
        assert built.methods is not None
        built.methods.discard("HEAD")
        return built

    routes = [
        route("/token", service.token, ["POST"]),
        route("/revoke", service.revoke, ["POST"]),
        route("/register", service.register, ["POST"]),
        route("/users/me", service.delete_me, ["DELETE"]),
        route("/users/{user_id}", service.delete_user, ["DELETE"]),
        get_only("/sso", service.sso),
        route("/login/{issuer}", service.login, ["GET"]),
        get_only("/callback/{issuer}", service.callback, name="callback"),
        route("/logout", service.logout, ["POST"]),
        route("/backchannel-logout", service.backchannel_logout, ["POST"]),
        route("/me", service.me, ["GET"]),
        route("/.well-known/jwks.json", service.jwks, ["GET"]),
        route("/.well-known/oauth-authorization-server", service.metadata, ["GET"]),
        route("/healthz", service.healthz, ["GET"]),
    ]
    # Authlib keeps the sign-in state (state, nonce, code_verifier, where to go next) in a
    # signed cookie: it binds the flow to the browser that started it.
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=settings.state_secret.hex(),
            # Host-only whatever cookie_domain says: a __Secure- name could be planted
            # from a sibling subdomain with an attacker's own state (login CSRF).
            session_cookie=settings.cookies.name(STATE_COOKIE, host_only=True),
            max_age=int(SIGN_IN_MAX_AGE),  # each state also carries its own start time
            same_site="lax",
            https_only=settings.secure,
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: _routing_error})
    app.state.federation = service
    return app

