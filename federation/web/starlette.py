"""Starlette: an ``AuthenticationBackend`` for ``AuthenticationMiddleware`` (needs the ``web`` extra).

::

    backend = FederationBackend(bridge)
    app = Starlette(routes=..., middleware=[
        Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error),
    ])

``request.user`` is a :class:`FederatedUser` (``.principal``), ``request.auth.scopes``
the roles plus ``authenticated``. :func:`requires` guards an endpoint: signed in, every
role listed, refused in the shape of :func:`federation.web.error_response` (401 with the
Bearer challenge, 403 ``insufficient_role``), where Starlette's own ``requires``
answers a bare 403 or 401. A request without credentials is anonymous; a credential that fails
is answered by :meth:`FederationBackend.on_error` with that shape too (401/403/503,
never Starlette's bare 400).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from ..bridge import Bridge
from ..errors import FederationError, MissingToken
from ..sessions import Principal
from ._core import Guard, WebSettings, error_response, require_roles, scope_method

__all__ = ["FederatedUser", "FederationAuthError", "FederationBackend", "requires"]

E = TypeVar("E", bound=Callable[..., Any])


class FederatedUser(BaseUser):
    """``request.user``: the authenticated principal."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.user.display_name or self.principal.user.id

    @property
    def identity(self) -> str:
        return self.principal.user.id


class FederationAuthError(AuthenticationError):
    """An :class:`~starlette.authentication.AuthenticationError` carrying the bridge's error."""

    def __init__(self, error: FederationError) -> None:
        super().__init__(error.message)
        self.error = error


class FederationBackend(AuthenticationBackend):
    """Authenticates each request through :meth:`federation.Bridge.aauthenticate`."""

    def __init__(self, bridge: Bridge, *, environ: Mapping[str, str] | None = None) -> None:
        settings = WebSettings.load(bridge, environ=environ) if bridge.config.web is not None else None
        self.guard = Guard(bridge, settings)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The principal's roles and user, or None for a request without credentials."""
        method = scope_method(conn.scope)
        try:
            principal = await self.guard.aauthenticate(
                method=method, headers=conn.headers, cookies=conn.cookies, optional=True
            )
        except FederationError as exc:
            raise FederationAuthError(exc) from None
        if principal is None:
            return None
        return AuthCredentials(["authenticated", *sorted(principal.roles)]), FederatedUser(principal)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """``AuthenticationMiddleware(on_error=...)``: the one error shape."""
        if isinstance(exc, FederationAuthError):
            return _refusal(exc.error)
        return JSONResponse({"error": "invalid_token", "detail": str(exc)}, status_code=401)


def _refusal(exc: FederationError) -> JSONResponse:
    answer = error_response(exc)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def requires(*roles: str) -> Callable[[E], E]:
    """An HTTP endpoint decorator (behind :class:`FederationBackend`): the request must be
    signed in (else 401 ``missing_token`` with the Bearer challenge) and hold every role in
    ``roles`` (else 403 ``insufficient_role``, ``error="insufficient_scope"``).

    ``@requires()`` asks only for a signed-in caller. Sync endpoints run in Starlette's
    thread pool, as Starlette runs them.
    """
    wanted = frozenset(roles)

    def decorate(endpoint: E) -> E:
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Any:
            user = request.user
            try:
                if not isinstance(user, FederatedUser):
                    raise MissingToken("no bearer token or session cookie was sent")
                require_roles(user.principal, wanted)
            except FederationError as exc:
                return _refusal(exc)
            if is_async:
                return await endpoint(request, *args, **kwargs)
            return await run_in_threadpool(endpoint, request, *args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
