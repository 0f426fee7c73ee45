"""A Starlette app whose endpoints accept this app's session tokens and trusted issuers' tokens.

``FederationBackend`` behind Starlette's ``AuthenticationMiddleware`` sets ``request.user``;
``requires()`` (federation's, answering in the one error shape) guards ``/me`` and
``requires("admin")`` (a mapped role) ``/admin``; the login service is mounted at ``/auth``.
Run it with::

    FEDERATION_CONFIG=federation.yaml uvicorn app:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from federation import Bridge
from federation.web import create_app as login_service
from federation.web.starlette import FederationBackend, requires


def create_app(config: Mapping[str, Any] | str | None = None, **bridge_options: Any) -> Starlette:
    """The app for ``config`` (a mapping or a YAML path; default ``$FEDERATION_CONFIG``)."""
    config = config if config is not None else os.environ.get("FEDERATION_CONFIG", "federation.yaml")
    bridge = (
        Bridge.from_dict(config, **bridge_options)
        if isinstance(config, Mapping)
        else Bridge.from_file(config, **bridge_options)
    )
    environ = bridge_options.get("environ")
    backend = FederationBackend(bridge, environ=environ)

    @requires()
    async def me(request: Request) -> JSONResponse:
        principal = request.user.principal
        return JSONResponse({"user": principal.user.id, "kind": principal.kind})

    @requires("admin")
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.user.principal.user.id})

    return Starlette(
        routes=[
            Route("/me", me),
            Route("/admin", admin),
            Mount("/auth", app=login_service(bridge, environ=environ)),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)],
    )
