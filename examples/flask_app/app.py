"""A small Flask API that accepts tokens from a trusted identity provider.

``GET /me`` answers with the caller's identity when the request carries a
valid ``Authorization: Bearer <token>``; 401 for a missing or bad token (with
the stable error code), 503 when the issuer's keys cannot be had right now.

Run it against a real issuer with ``FEDERATION_CONFIG=federation.yaml flask --app app run``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request

from federation import Bridge
from federation.errors import InvalidToken, KeySetUnavailable


def create_app(config: Mapping[str, Any] | str | Path | None = None, **bridge_options: Any) -> Flask:
    """The app. ``config`` is a bridge configuration (a mapping or a YAML path);
    ``bridge_options`` go to :class:`~federation.Bridge` (``clock=`` in tests)."""
    if config is None:
        config = os.environ.get("FEDERATION_CONFIG", "federation.yaml")
    if isinstance(config, Mapping):
        bridge = Bridge.from_dict(config, **bridge_options)
    else:
        bridge = Bridge.from_file(config, **bridge_options)

    app = Flask(__name__)
    app.extensions["federation"] = bridge

    def require_user(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _error(401, "missing_token", 'Bearer realm="api"')
            try:
                g.user = bridge.verify(token.strip())
            except InvalidToken as exc:
                return _error(401, exc.code, 'Bearer realm="api", error="invalid_token"')
            except KeySetUnavailable:
                response = _error(503, "keyset_unavailable")
                response.headers["Retry-After"] = "30"
                return response
            return view(*args, **kwargs)

        return wrapper

    @app.get("/me")
    @require_user
    def me() -> Response:
        user = g.user
        return jsonify(
            user=f"{user.issuer}|{user.subject}",
            sub=user.subject,
            email=user.claims.get("email"),
            groups=user.claims.get("groups", []),
        )

    return app


def _error(status: int, code: str, challenge: str | None = None) -> Response:
    response = jsonify(error=code)
    response.status_code = status
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    return response
