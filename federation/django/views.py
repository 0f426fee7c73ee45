"""The bridge's browser sign-in as Django views, ending in ``django.contrib.auth.login``.

Owns: ``/login/<issuer>`` (the authorization-code flow with PKCE S256, state
and nonce kept in the Django session), ``/callback/<issuer>`` (the code
exchanged through Authlib's httpx client over the bridge's transport, the id
token verified by the bridge and checked by the web layer's sign-in rules,
the user provisioned, then :func:`django.contrib.auth.login`, which cycles the
session key), ``/sso`` (a single-use URL token) and ``/logout`` (POST, under
Django's CSRF protection).

Redirect targets (``next`` or ``redirect_to``) must pass Django's
``url_has_allowed_host_and_scheme`` (this host, the scheme of this request)
and, when the config has ``web:``, its allow-list (docs/web.md); anything
else goes to ``LOGIN_REDIRECT_URL`` (``LOGOUT_REDIRECT_URL`` after logout).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..errors import (
    AccountDisabled,
    FederationError,
    InvalidRequest,
    KeySetUnavailable,
    LoginRefused,
    MissingToken,
    StorageError,
    TokenRevoked,
)
from ..web import (
    SignInClient,
    check_id_token,
    check_metadata,
    check_response_issuer,
    finish_sign_in,
    id_token_of,
    read_userinfo,
    sign_in_clients,
    spent_state_claim,
    start_sign_in,
    token_endpoint_failure,
    url_token_claim,
    userinfo_endpoint,
)
from .backends import BACKEND, federated_user
from .conf import federation_settings, get_bridge, get_guard
from .middleware import SESSION_GENERATION, problem

if TYPE_CHECKING:
    from ..provisioning import LoginResult

__all__ = ["callback", "login", "logout", "sso"]

log = logging.getLogger("federation.django")

SESSION_KEY = "federation_sign_in"
METADATA_TTL = 3600.0
DEFAULT_URL_TOKEN_MAX_AGE = 120
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _no_sign_in() -> JsonResponse:
    """404: no issuer entry of that name offers a sign-in."""
    body = {"error": "not_found", "detail": "no sign-in is configured for this issuer"}
    return JsonResponse(body, status=404)


class _Metadata:
    """Each provider's discovery document, fetched once an hour per bridge (a new bridge, as
    after a config change, fetches again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, url: str, transport: httpx.BaseTransport) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            cached = self._documents.get(url)
        if cached is not None and now - cached[0] < METADATA_TTL:
            return cached[1]
        with httpx.Client(transport=transport, timeout=10.0) as client:
            response = client.get(url)
        document = response.json() if response.status_code == 200 else None
        if not isinstance(document, dict) or not all(
            isinstance(document.get(k), str) for k in ("authorization_endpoint", "token_endpoint")
        ):
            raise ValueError("no usable discovery document")
        with self._lock:
            self._documents[url] = (now, document)
        return document


def _metadata() -> _Metadata:
    bridge = get_bridge()
    cached: _Metadata | None = getattr(bridge, "_django_metadata", None)
    if cached is None:
        cached = _Metadata()
        bridge._django_metadata = cached  # type: ignore[attr-defined]  # dropped with the bridge
    return cached


def _provider_metadata(entry: SignInClient) -> dict[str, Any]:
    """The sign-in's discovery document, read and checked (:func:`check_metadata`); a
    :class:`KeySetUnavailable` when it cannot be read or names another issuer."""
    try:
        document = _metadata().get(entry.discovery_url, _transport())
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("sign-in with %s: provider metadata unreadable (%s)", entry.name, type(exc).__name__)
        raise KeySetUnavailable("the identity provider cannot be reached", issuer=entry.name) from None
    try:
        check_metadata(document, entry)
    except KeySetUnavailable:
        log.warning("sign-in with %s: the provider's metadata names another issuer", entry.name)
        raise
    return document


class _Borrowed(httpx.BaseTransport):
    """The bridge's transport, lent to a client that must not close it when it is done."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        """The bridge's (an injected client's, or one kept for the process): left open."""


def _transport() -> httpx.BaseTransport:
    """One transport to the providers per bridge: the injected client's, else an address-checking one."""
    bridge = get_bridge()
    cached: httpx.BaseTransport | None = getattr(bridge, "_django_transport", None)
    if cached is None:
        cached = _Borrowed(bridge.transport())
        bridge._django_transport = cached  # type: ignore[attr-defined]  # dropped with the bridge
    return cached


def _clients() -> dict[str, SignInClient]:
    bridge = get_bridge()
    cached: dict[str, SignInClient] | None = getattr(bridge, "_django_sign_in", None)
    if cached is None:
        cached = sign_in_clients(bridge, federation_settings().environ)
        bridge._django_sign_in = cached  # type: ignore[attr-defined]  # dropped with the bridge
    return cached


def _oauth_client(entry: SignInClient, redirect_uri: str) -> Any:
    import authlib.deprecate  # type: ignore[import-untyped]  # its "always" filter first, then ours

    with warnings.catch_warnings():  # Authlib announces httpx2; this layer is on httpx
        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]

    return OAuth2Client(
        client_id=entry.client_id,
        client_secret=entry.client_secret,
        token_endpoint_auth_method=entry.auth_method,
        scope=" ".join(entry.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        transport=_transport(),
        timeout=10.0,
    )


def _userinfo(client: Any, entry: SignInClient, endpoints: dict[str, Any], bridge: Any) -> dict[str, Any]:
    """The provider's UserInfo response for the access token ``client`` now holds (``login.userinfo``)."""
    url = userinfo_endpoint(endpoints, allow_loopback_http=bridge.config.keys.allow_loopback_http)
    try:
        response = client.get(url, headers={"accept": "application/json"})
    except Exception as exc:  # httpx errors, a refused answer size: the provider, not the user
        log.warning("sign-in with %s: the UserInfo endpoint failed (%s)", entry.name, type(exc).__name__)
        raise token_endpoint_failure(exc, entry.name) from None
    return read_userinfo(
        response.status_code,
        response.headers.get("content-type"),
        response.content,
        entry.name,
        bridge.config.limits.max_json_depth,
    )


def _safe_target(request: HttpRequest, value: str | None, fallback: str) -> str:
    """``value`` when it is safe to redirect to, else ``fallback``.

    Safe: Django accepts it for this host and scheme and, with ``web:``, the
    web layer's guard does too; or it names an origin ``web.allowed_redirects`` lists.
    """
    if not value:
        return fallback
    web = get_guard().settings
    policy_ok = web is None or web.redirects.is_safe(value)
    same_host = url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    listed = web is not None and not value.startswith("/") and policy_ok
    return value if (same_host and policy_ok) or listed else fallback


def _next(request: HttpRequest, fallback: str) -> str:
    params = request.GET if request.method == "GET" else request.POST
    return _safe_target(request, params.get("next") or params.get("redirect_to"), fallback)


def _callback_uri(request: HttpRequest, name: str) -> str:
    path = str(reverse("federation:callback", args=[name]))
    web = get_guard().settings
    if web is not None:
        return web.public_origin + path  # the configured origin: never the Host header
    return str(request.build_absolute_uri(path))


def _sent_once(request: HttpRequest, *names: str) -> None:
    """RFC 6749 §3.1: a parameter is sent at most once (two copies: two answers to pick from)."""
    for name in names:
        if len(request.GET.getlist(name)) > 1:
            raise InvalidRequest(f"the parameter {name!r} is repeated")


def _admitted(result: LoginResult) -> int | None:
    """A login by an external token issued before ``revoke_user`` is refused here as at every
    door; the user's generation for the session to record (None without ``sessions:``)."""
    bridge = get_bridge()
    if bridge.config.sessions is None:
        return None
    return bridge.sessions.admit_login(result)


def _sign_in(request: HttpRequest, user_id: str, target: str, generation: int | None) -> HttpResponse:
    user = federated_user(user_id)
    if user is None:
        return problem(AccountDisabled("this account is disabled", user_id=user_id))
    auth.login(request, user, backend=BACKEND)  # cycles the session key
    if generation is not None:  # the session ends once revoke_user (a back-channel logout) moves it
        request.session[SESSION_GENERATION] = generation
    response = HttpResponseRedirect(target)
    for name, value in NO_STORE.items():
        response[name] = value
    return response


@never_cache
@require_GET
def login(request: HttpRequest, issuer: str) -> HttpResponse:
    """Start the sign-in at ``issuer`` (an entry's ``name:``, else its provider)."""
    entry = _clients().get(issuer)
    if entry is None:
        return _no_sign_in()
    redirect_uri = _callback_uri(request, issuer)
    try:
        endpoints = _provider_metadata(entry)
    except KeySetUnavailable as exc:
        return problem(exc)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    with _oauth_client(entry, redirect_uri) as client:
        url, state = client.create_authorization_url(
            endpoints["authorization_endpoint"],
            code_verifier=verifier,
            nonce=nonce,
            **entry.authorization_params(),
        )
    request.session[SESSION_KEY] = start_sign_in(
        request.session.get(SESSION_KEY),
        state,
        {
            "verifier": verifier,
            "nonce": nonce,
            "redirect_uri": redirect_uri,
            "next": _next(request, resolve_url(settings.LOGIN_REDIRECT_URL)),
        },
        issuer=issuer,
        now=time.time(),
    )
    return HttpResponseRedirect(url)


@never_cache
@require_GET
def callback(request: HttpRequest, issuer: str) -> HttpResponse:
    """The provider's redirect back: the code exchanged, the id token verified, the user signed in."""
    entry = _clients().get(issuer)
    if entry is None:
        return _no_sign_in()
    try:
        _sent_once(request, "state", "code", "error")
    except InvalidRequest as exc:
        return problem(exc)
    data, pending = finish_sign_in(
        request.session.get(SESSION_KEY), request.GET.get("state"), issuer=issuer, now=time.time()
    )
    request.session[SESSION_KEY] = pending  # a state is used once, whatever happens next
    try:
        if data is None:
            # No state of this browser: a forged or replayed callback (RFC 9700 §4.7).
            raise InvalidRequest("the sign-in state is missing or expired; sign in again")
        bridge = get_bridge()
        key, until = spent_state_claim(str(request.GET.get("state")), data)
        if not bridge.sessions.store.claim_once(key, expires_at=until):
            # a cookie-held session (signed_cookies) restored from an earlier copy
            raise InvalidRequest("the sign-in state was used already; sign in again")
        endpoints = _provider_metadata(entry)
        check_response_issuer(request.GET.getlist("iss"), endpoints)
        if request.GET.get("error"):
            raise LoginRefused("the identity provider refused the sign-in", code="provider_refused")
        code = request.GET.get("code")
        if not code:
            raise InvalidRequest("the callback carries no code")
        with _oauth_client(entry, data["redirect_uri"]) as client:
            try:
                answer = client.fetch_token(
                    endpoints["token_endpoint"],
                    code=code,
                    code_verifier=data["verifier"],
                    redirect_uri=data["redirect_uri"],
                )
            except Exception as exc:  # Authlib's OAuthError, httpx errors: the provider, not the user
                log.warning("sign-in with %s: the token endpoint failed (%s)", issuer, type(exc).__name__)
                raise token_endpoint_failure(exc, issuer) from None
            id_token = id_token_of(answer)
            userinfo = _userinfo(client, entry, endpoints, bridge) if entry.userinfo else None
        if userinfo is not None:
            verified = bridge._verify_signed_in(id_token, userinfo)
        else:
            verified = bridge.verify(id_token)
        check_id_token(
            verified,
            data.get("nonce"),
            entry,
            answer=answer,
            code=code,
            now=bridge.now(),
            leeway=bridge.config.leeway,
        )
        result = bridge.provision(verified)
        generation = _admitted(result)
    except FederationError as exc:
        return problem(exc)
    return _sign_in(request, result.user.id, str(data["next"]), generation)


@never_cache
@require_GET
def sso(request: HttpRequest) -> HttpResponse:
    """``/sso?token=...&next=...``: sign in with a single-use URL token (the seeds' auto-login)."""
    token = request.GET.get("token")
    try:
        _sent_once(request, "token", "next")
        if not token:
            raise MissingToken("the token parameter is missing")
        bridge = get_bridge()
        verified = bridge.verify(token)
        web = get_guard().settings
        max_age = web.url_token_max_age if web is not None else DEFAULT_URL_TOKEN_MAX_AGE
        key, until = url_token_claim(verified, now=bridge.now(), max_age=max_age, token=token)
        if not bridge.sessions.store.claim_once(key, expires_at=until):
            raise TokenRevoked("this URL token was used already", code="url_token_replayed")
        result = bridge.provision(verified)
        generation = _admitted(result)
    except FederationError as exc:
        response = problem(exc)
        response["Referrer-Policy"] = "no-referrer"
        return response
    target = _next(request, resolve_url(settings.LOGIN_REDIRECT_URL))
    response = _sign_in(request, result.user.id, target, generation)
    response["Referrer-Policy"] = "no-referrer"  # the token is in this URL: never pass it on
    return response


@csrf_exempt  # the provider's server posts it: no browser, no cookie
@never_cache
@require_POST
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """OIDC Back-Channel Logout 1.0 (``logout_token``): the token's user signed out everywhere,
    their Django sessions too (on their next request); 400 for a token not valid or replayed."""
    token = request.POST.get("logout_token")
    try:
        if not token or len(request.POST.getlist("logout_token")) != 1:
            raise InvalidRequest("one logout_token is required")
        get_bridge().backchannel_logout(token)
    except (KeySetUnavailable, StorageError) as exc:
        return problem(exc)
    except FederationError as exc:
        return JsonResponse({"error": "invalid_request", "code": exc.code}, status=400)
    response = HttpResponse(status=200)
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """End the Django session (POST, CSRF-checked) and go to a safe ``next``."""
    auth.logout(request)
    return HttpResponseRedirect(_next(request, resolve_url(settings.LOGOUT_REDIRECT_URL or "/")))
