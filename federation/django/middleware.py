"""The middleware: a request's bearer token (or the bridge's session cookie) becomes ``request.user``.

Owns: :class:`FederationMiddleware`. Place it after Django's
``AuthenticationMiddleware``. A request without a token keeps Django's own
session user. A request with one is answered by
:meth:`~federation.Bridge.authenticate` (the cheap per-request path: no write
for a token seen before): ``request.user`` becomes its Django user (read
lazily, refused when inactive), ``request.federation`` the
:class:`~federation.sessions.Principal`; a bad token is answered at once, 401
with ``WWW-Authenticate`` (RFC 6750 §3), 403 for a disabled user, 503 when
keys or storage are down. A session cookie the bridge refuses (revoked,
expired) is no credential: the request keeps Django's session user, so a
stale cookie never locks a browser out of the sign-in pages. A
bearer-authenticated request is exempt from
Django's CSRF check (a browser never attaches that header by itself); a
cookie-authenticated one is checked by the web layer's CSRF rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import SimpleLazyObject

from ..errors import FederationError
from ..web import error_response
from .backends import federated_user
from .conf import get_bridge, get_guard

__all__ = ["SESSION_GENERATION", "FederationMiddleware", "problem"]

#: Where a Django session signed in by the federation views keeps the user's token generation
#: at sign-in: once ``revoke_user`` (or a back-channel logout) moves it, the session ends.
SESSION_GENERATION = "federation_generation"


def problem(exc: FederationError) -> JsonResponse:
    """The web layer's response for ``exc``: ``{"error": code, "detail": ...}`` with its headers."""
    answer = error_response(exc)
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def authenticate_request(request: HttpRequest) -> HttpResponse | None:
    """Authenticate ``request`` by its token, if it carries one; the error response when refused."""
    try:
        guard = get_guard()
        credential = guard.credential(request.headers, request.COOKIES)
        if credential is None:
            _end_a_revoked_session(request)
            return None
        # A stale session cookie is no credential: Django's own session user stays.
        found = guard.principal_of(credential, optional=True)
        if found is None:
            _end_a_revoked_session(request)
            return None
        principal = guard.admit(  # the credential read once: no second parse of the header
            found,
            credential,
            method=request.method or "GET",
            headers=request.headers,
            cookies=request.COOKIES,
        )
    except FederationError as exc:
        return problem(exc)
    user_id = principal.user.id

    def load() -> Any:
        return federated_user(user_id) or AnonymousUser()

    request.federation = principal
    request.user = SimpleLazyObject(load)

    async def auser() -> Any:
        return await sync_to_async(load)()

    request.auser = auser
    if credential.source == "bearer":
        request._dont_enforce_csrf_checks = True
    return None


def _end_a_revoked_session(request: HttpRequest) -> None:
    """Log out a Django session whose user's generation moved since the sign-in recorded it
    (``revoke_user``, a back-channel logout, ``deprovision``): read from memory, at most
    ``user_check`` seconds old, as ``authenticate`` reads it."""
    session = getattr(request, "session", None)
    if session is None:
        return
    signed_in = session.get(SESSION_GENERATION)
    if signed_in is None:
        return
    user_id = session.get(auth.SESSION_KEY)
    if user_id is None:
        return
    sessions = get_bridge().sessions
    if sessions.current_generation(str(user_id)) == signed_in:
        return
    # Memory may lag the store the sign-in read (a revocation made elsewhere since): the
    # store decides, so a fresh sign-in is never logged out by what this process remembers.
    if sessions.current_generation(str(user_id), fresh=True) == signed_in:
        return
    auth.logout(request)  # flushes the session; request.user becomes AnonymousUser


class FederationMiddleware:
    """Token authentication for every request (sync and async stacks)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        refused = authenticate_request(request)
        return refused if refused is not None else self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        # In Django's thread for sync work: the ORM's connections are handled as in a sync view.
        refused = await sync_to_async(authenticate_request)(request)
        if refused is not None:
            return refused
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return await get_response(request)
