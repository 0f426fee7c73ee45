"""Starlette: an ``AuthenticationBackend`` for ``AuthenticationMiddleware`` (needs the ``web`` extra).

::

    backend = FederationBackend(bridge)
    app = Starlette(routes=..., middleware=[
        Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error),
    ])

``request.user`` is a :class:`FederatedUser` (``.principal``), ``request.auth.scopes``
the roles plus ``authenticated``; ``starlette.authentication.requires("admin")``
checks a role. A request without credentials is anonymous; a credential that fails
is answered by :meth:`FederationBackend.on_error` with the shape of
:func:`federation.web.error_response` (401/403/503, never Starlette's bare 400).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from ..bridge import Bridge
from ..errors import FederationError
from ..sessions import Principal
from ._core import WEBSOCKET, Guard, WebSettings, error_response

__all__ = ["FederatedUser", "FederationAuthError", "FederationBackend"]


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
        method = WEBSOCKET if conn.scope["type"] == "websocket" else conn.scope.get("method", "GET")
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
            answer = error_response(exc.error)
            return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
        return JSONResponse({"error": "invalid_token", "detail": str(exc)}, status_code=401)
