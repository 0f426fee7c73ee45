"""FastAPI: the bridge as a ``Security`` dependency and a lifespan (needs the ``fastapi`` extra).

::

    auth = FederationAuth.from_file("federation.yaml")
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(principal: Principal = Depends(auth.principal())):
        return {"user": principal.user.id}

Every request goes through :meth:`federation.Bridge.aauthenticate` (the cheap
per-request path, never a login per request). Failures are ``HTTPException``
with the shape of :func:`federation.web.error_response` under FastAPI's
``detail``: 401 with ``WWW-Authenticate: Bearer`` (RFC 6750), 403, 503 with
``Retry-After``. OpenAPI lists the bearer scheme (and the session cookie when
``web:`` is configured), so ``/docs`` shows the lock.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Security
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from ..bridge import Bridge
from ..errors import FederationError
from ..sessions import Principal
from ._core import Guard, WebSettings, error_response, scope_method

__all__ = ["FederationAuth"]

log = logging.getLogger("federation.web")


def _http_error(exc: FederationError) -> HTTPException:
    answer = error_response(exc)
    return HTTPException(status_code=answer.status, detail=answer.body, headers=answer.headers or None)


class FederationAuth:
    """The bridge for a FastAPI app: :meth:`principal` dependencies and :meth:`lifespan`."""

    def __init__(self, bridge: Bridge, *, environ: Mapping[str, str] | None = None) -> None:
        self.bridge = bridge
        settings = WebSettings.load(bridge, environ=environ) if bridge.config.web is not None else None
        self.guard = Guard(bridge, settings)
        self._bearer = HTTPBearer(
            auto_error=False,
            scheme_name="bearer",
            description="A session access token of this app, or a token of a trusted issuer.",
        )
        names = self.guard.cookie_names
        self._cookie = (
            APIKeyCookie(name=names[0], auto_error=False, scheme_name="session cookie") if names else None
        )

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> FederationAuth:
        """Build the bridge from a YAML file (``options`` go to :class:`~federation.Bridge`)."""
        environ = options.get("environ")
        return cls(Bridge.from_file(path, **options), environ=environ)

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """FastAPI's lifespan: warm the issuers' keys on start (the report logged), close on stop."""
        report = await self.bridge.awarm_up()
        if report.ok:
            log.info("federation: keys warm for %d issuer(s)", len(report.succeeded))
        else:
            log.warning("federation: keys not warm for %s", ", ".join(sorted(report.failed)))
        try:
            yield
        finally:
            self.bridge.close()

    def principal(
        self, *, roles: Collection[str] | None = None, optional: bool = False
    ) -> Callable[..., Awaitable[Principal | None]]:
        """A dependency giving the request's :class:`~federation.sessions.Principal`.

        ``roles``: every one is required (403 ``insufficient_role`` otherwise);
        ``optional=True``: None when the request sent no credential at all (a
        credential that fails is still refused).
        """
        guard = self.guard
        wanted = frozenset(roles or ())

        async def run(request: HTTPConnection) -> Principal | None:
            try:
                return await guard.aauthenticate(
                    method=scope_method(request.scope),
                    headers=request.headers,
                    cookies=request.cookies,
                    roles=wanted,
                    optional=optional,
                )
            except FederationError as exc:
                raise _http_error(exc) from None

        bearer, cookie = self._bearer, self._cookie
        if cookie is None:

            async def dependency(
                request: HTTPConnection,
                _bearer: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
            ) -> Principal | None:
                return await run(request)

            return dependency

        async def dependency_with_cookie(
            request: HTTPConnection,
            _bearer: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
            _cookie: str | None = Security(cookie),
        ) -> Principal | None:
            return await run(request)

        return dependency_with_cookie
