"""Flask: the bridge as an extension with a ``required`` decorator (needs the ``flask`` extra).

::

    auth = FederationAuth(app, bridge)          # or FederationAuth(bridge=bridge).init_app(app)

    @app.get("/admin")
    @auth.required(roles={"admin"})
    def admin():
        return {"user": auth.current_principal.user.id}

Each request goes through :meth:`federation.Bridge.authenticate` (the cheap
per-request path). A failure is answered with ``{"error": code, "detail": ...}``
and the status of :func:`federation.web.error_response` (401 with
``WWW-Authenticate: Bearer``, 403, 503 with ``Retry-After``), by the error
handler the extension registers for :class:`~federation.errors.FederationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, jsonify, request

from ..bridge import Bridge
from ..errors import FederationError
from ..sessions import Principal
from ._core import Guard, WebSettings, error_response

__all__ = ["FederationAuth"]

F = TypeVar("F", bound=Callable[..., Any])
_KEY = "federation"


class FederationAuth:
    """A Flask extension over one bridge (one per app; ``init_app`` for factories)."""

    def __init__(
        self,
        app: Flask | None = None,
        bridge: Bridge | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.bridge = bridge
        self._environ = environ
        self.guard: Guard | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, bridge: Bridge | None = None) -> FederationAuth:
        """Attach to ``app``: the bridge given here, at construction, or from
        ``app.config["FEDERATION_CONFIG"]`` (a YAML path)."""
        bridge = bridge or self.bridge
        if bridge is None:
            path = app.config.get("FEDERATION_CONFIG")
            if not path:
                raise RuntimeError("give a bridge, or set app.config['FEDERATION_CONFIG'] to a YAML path")
            bridge = Bridge.from_file(path)
        self.bridge = bridge
        settings = WebSettings.load(bridge, environ=self._environ) if bridge.config.web is not None else None
        self.guard = Guard(bridge, settings)
        app.extensions[_KEY] = self
        app.register_error_handler(FederationError, _error_response)
        return self

    def _guard(self) -> Guard:
        ext = cast("FederationAuth | None", current_app.extensions.get(_KEY))
        guard = (ext or self).guard
        if guard is None:
            raise RuntimeError("FederationAuth is not initialised for this app (call init_app)")
        return guard

    def authenticate(
        self, *, roles: Collection[str] | None = None, optional: bool = False
    ) -> Principal | None:
        """The current request's principal (raises a FederationError the handler answers)."""
        principal = self._guard().authenticate(
            method=request.method,
            headers=cast("Mapping[str, str]", request.headers),  # case-insensitive get
            cookies=request.cookies,
            roles=roles,
            optional=optional,
        )
        g.federation_principal = principal
        return principal

    def required(self, *, roles: Collection[str] | None = None, optional: bool = False) -> Callable[[F], F]:
        """A view decorator: the request must authenticate (and hold every role in ``roles``)."""
        wanted = frozenset(roles or ())

        def decorate(view: F) -> F:
            @wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.authenticate(roles=wanted, optional=optional)
                return view(*args, **kwargs)

            return cast(F, wrapper)

        return decorate

    @property
    def current_principal(self) -> Principal:
        """The principal of the current request (after :meth:`required` or :meth:`authenticate`)."""
        principal = g.get("federation_principal")
        if principal is None:
            raise RuntimeError("no principal: the view is not behind @auth.required")
        return cast(Principal, principal)


def _error_response(exc: FederationError) -> Response:
    answer = error_response(exc)
    response = jsonify(answer.body)
    response.status_code = answer.status
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response
