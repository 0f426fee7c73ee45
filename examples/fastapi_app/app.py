"""A FastAPI app whose endpoints accept this app's session tokens and trusted issuers' tokens.

``/me`` needs any signed-in caller, ``/admin`` the ``admin`` role; the login service
(token exchange, sign-in, logout) is mounted at ``/auth``. Run it with::

    FEDERATION_CONFIG=federation.yaml uvicorn app:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fastapi import Depends, FastAPI

from federation import Bridge
from federation.sessions import Principal
from federation.web import create_app as login_service
from federation.web.fastapi import FederationAuth


def create_app(config: Mapping[str, Any] | str | None = None, **bridge_options: Any) -> FastAPI:
    """The app for ``config`` (a mapping or a YAML path; default ``$FEDERATION_CONFIG``)."""
    config = config if config is not None else os.environ.get("FEDERATION_CONFIG", "federation.yaml")
    bridge = (
        Bridge.from_dict(config, **bridge_options)
        if isinstance(config, Mapping)
        else Bridge.from_file(config, **bridge_options)
    )
    auth = FederationAuth(bridge, environ=bridge_options.get("environ"))
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(principal: Principal = Depends(auth.principal())) -> dict[str, Any]:  # noqa: B008
        return {"user": principal.user.id, "email": principal.user.email, "kind": principal.kind}

    @app.get("/admin")
    async def admin(principal: Principal = Depends(auth.principal(roles={"admin"}))) -> dict[str, Any]:  # noqa: B008
        return {"admin": principal.user.id}

    app.mount("/auth", login_service(bridge, environ=bridge_options.get("environ")))
    return app
