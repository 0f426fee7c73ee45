"""Flask: the bridge as an extension with a ``required`` decorator (needs the ``flask`` extra).

::

    auth = FederationAuth(app, bridge)          # or FederationAuth(bridge=bridge).init_app(app)

    @app.get("/admin")
    @auth.required(roles={"admin"})
    def admin():
        return {"user": auth.current_principal.user.id}

One extension may serve several apps (the app-factory pattern): each app's bridge and
guard live in ``app.extensions["federation"]`` and are looked up through
``flask.current_app`` on every request. ``async def`` views are decorated as well.

Each request goes through :meth:`federation.Bridge.authenticate` (the cheap
per-request path). A failure is answered with ``{"error": code, "detail": ...}``
and the status of :func:`federation.web.error_response` (401 with
``WWW-Authenticate: Bearer``, 403, 503 with ``Retry-After``), by the error
handler the extension registers for :class:`~federation.errors.FederationError`
(unless the app registered its own first).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any, Final, TypeVar, cast

from flask import Flask, Response, current_app, g, has_app_context, jsonify, request

from ..bridge import Bridge
from ..errors import FederationError
from ..sessions import Principal
from ._core import Guard, WebSettings, error_response

__all__ = ["FederationAuth", "FederationState"]

F = TypeVar("F", bound=Callable[..., Any])
_KEY = "federation"
_G_PRINCIPAL = "federation_principal"
_NOT_INIT = "FederationAuth is not initialised for this app: call auth.init_app(app) first"


class _Unset:
    """``g`` holds no principal: no :meth:`FederationAuth.authenticate` ran in this request."""


_UNSET: Final = _Unset()  # distinct from None, which is an optional view's "no one"


@dataclass(frozen=True, slots=True)
class FederationState:
    """One app's part of the extension, kept in ``app.extensions["federation"]``."""

    bridge: Bridge
    guard: Guard


class FederationAuth:
    """A Flask extension over a bridge: ``FederationAuth(app, bridge)`` for one app, or one
    ``FederationAuth()`` shared by the apps of a factory, each given its own bridge by
    :meth:`init_app`."""

    def __init__(
        self,
        app: Flask | None = None,
        bridge: Bridge | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._default_bridge = bridge
        self._environ = environ
        # Only an extension built for one app remembers it (for ``bridge``/``guard`` outside a request).
        self._app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, bridge: Bridge | None = None) -> FederationAuth:
        """Attach to ``app``: the bridge given here, at construction, or from
        ``app.config["FEDERATION_CONFIG"]`` (a YAML path). The app's state is its own:
        attaching one extension to another app never changes this one's bridge."""
        bridge = bridge or self._default_bridge
        if bridge is None:
            path = app.config.get("FEDERATION_CONFIG")
            if not path:
                raise RuntimeError("give a bridge, or set app.config['FEDERATION_CONFIG'] to a YAML path")
            bridge = Bridge.from_file(path)
        settings = WebSettings.load(bridge, environ=self._environ) if bridge.config.web is not None else None
        app.extensions[_KEY] = FederationState(bridge, Guard(bridge, settings))
        if FederationError not in app.error_handler_spec.get(None, {}).get(None, {}):
            # an app's own handler, registered before init_app, is the app's choice
            app.register_error_handler(FederationError, _error_response)
        return self

    def _state_of(self, app: Flask) -> FederationState | None:
        state = app.extensions.get(_KEY)
        return state if isinstance(state, FederationState) else None

    def _state(self) -> FederationState:
        state = self._state_of(current_app)
        if state is None:
            raise RuntimeError(_NOT_INIT)
        return state

    def _current(self) -> FederationState | None:
        # the current app's state in a request or app context, else the one app given at construction
        if has_app_context():
            return self._state_of(current_app)
        return self._state_of(self._app) if self._app is not None else None

    @property
    def bridge(self) -> Bridge | None:
        """The current app's bridge (outside an app context: the app given at construction's,
        else the bridge given at construction, if any)."""
        state = self._current()
        return state.bridge if state is not None else self._default_bridge

    @property
    def guard(self) -> Guard | None:
        """The current app's :class:`~federation.web.Guard` (None where no app is initialised)."""
        state = self._current()
        return state.guard if state is not None else None

    def authenticate(
        self, *, roles: Collection[str] | None = None, optional: bool = False
    ) -> Principal | None:
        """The current request's principal (raises a FederationError the handler answers).

        With ``optional``, None when no one authenticated (what :attr:`current_principal`
        then reads)."""
        principal = self._state().guard.authenticate(
            method=request.method,
            headers=cast("Mapping[str, str]", request.headers),  # case-insensitive get
            cookies=request.cookies,
            roles=roles,
            optional=optional,
        )
        setattr(g, _G_PRINCIPAL, principal)
        return principal

    def required(self, *, roles: Collection[str] | None = None, optional: bool = False) -> Callable[[F], F]:
        """A view decorator: the request must authenticate (and hold every role in ``roles``);
        with ``optional``, an anonymous request passes and reads ``current_principal`` as None.
        Works on ``def`` and ``async def`` views."""
        wanted = frozenset(roles or ())

        def decorate(view: F) -> F:
            if iscoroutinefunction(view):

                @wraps(view)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    # the sync path: Flask gives each async view a fresh event loop, and the
                    # bridge's async HTTP client must not be shared between loops
                    self.authenticate(roles=wanted, optional=optional)
                    return await view(*args, **kwargs)

                return cast(F, async_wrapper)

            @wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.authenticate(roles=wanted, optional=optional)
                return view(*args, **kwargs)

            return cast(F, wrapper)

        return decorate

    @property
    def current_principal(self) -> Principal:
        """The principal of the current request (after :meth:`required` or :meth:`authenticate`).

        A RuntimeError when no one authenticated: in a ``required(optional=True)`` view,
        read :attr:`optional_principal` instead."""
        principal = self.optional_principal
        if principal is None:
            raise RuntimeError("no one authenticated in this optional view: read auth.optional_principal")
        return principal

    @property
    def optional_principal(self) -> Principal | None:
        """The principal of the current request, None in a ``required(optional=True)`` view no
        one authenticated to. A RuntimeError when neither :meth:`required` nor
        :meth:`authenticate` ran in this request."""
        principal = g.get(_G_PRINCIPAL, _UNSET)
        if isinstance(principal, _Unset):
            raise RuntimeError(
                "no principal: this request did not pass @auth.required or call auth.authenticate()"
            )
        return cast("Principal | None", principal)


def _error_response(exc: FederationError) -> Response:
    answer = error_response(exc)
    response = jsonify(answer.body)
    response.status_code = answer.status
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response
