"""The app benchmarks/load.py serves with uvicorn workers: one protected and one open endpoint.

``uvicorn load_app:create_app --factory --workers N`` with ``FEDERATION_CONFIG`` naming the
config (PostgreSQL users, Redis sessions) and ``SESSION_KEY`` the session signing key.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import Depends, FastAPI

from federation import Bridge
from federation.sessions import Principal
from federation.web import create_app as login_service
from federation.web.fastapi import FederationAuth


def create_app() -> FastAPI:
    """``/open`` (no auth: the baseline), ``/me`` (any signed-in caller), ``/auth`` (the login service)."""
    bridge = Bridge.from_file(os.environ["FEDERATION_CONFIG"], audit=lambda event: None)
    auth = FederationAuth(bridge)
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/open")
    async def open_endpoint() -> dict[str, Any]:
        return {"user": None}

    @app.get("/me")
    async def me(principal: Principal = Depends(auth.principal())) -> dict[str, Any]:  # noqa: B008
        return {"user": principal.user.id}

    app.mount("/auth", login_service(bridge))
    return app
