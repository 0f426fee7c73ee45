"""FastAPI, Starlette and Flask integrations: credentials, the error shape, roles, CSRF, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from flask import Flask
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from webenv import ADMIN_MAPPING, APP, WebEnv
from werkzeug.test import EnvironBuilder, run_wsgi_app

from federation.sessions import Principal
from federation.web import create_app
from federation.web.fastapi import FederationAuth as FastAPIAuth
from federation.web.flask import FederationAuth as FlaskAuth
from federation.web.starlette import FederationBackend


def fastapi_app(env: WebEnv) -> tuple[TestClient, FastAPIAuth]:
    auth = FastAPIAuth(env.bridge, environ=env.environ)
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(principal: Principal = Depends(auth.principal())) -> dict[str, Any]:  # noqa: B008
        return {"user": principal.user.id, "kind": principal.kind}

    @app.get("/admin")
    async def admin(principal: Principal = Depends(auth.principal(roles={"admin"}))) -> dict[str, Any]:  # noqa: B008
        return {"user": principal.user.id}

    @app.get("/maybe")
    async def maybe(principal: Principal | None = Depends(auth.principal(optional=True))) -> dict[str, Any]:  # noqa: B008
        return {"user": principal.user.id if principal else None}

    @app.post("/change")
    async def change(principal: Principal = Depends(auth.principal())) -> dict[str, Any]:  # noqa: B008
        return {"user": principal.user.id}

    return TestClient(app, base_url=APP), auth


def starlette_app(env: WebEnv) -> TestClient:
    backend = FederationBackend(env.bridge, environ=env.environ)

    async def me(request: Request) -> JSONResponse:
        if not request.user.is_authenticated:
            return JSONResponse({"user": None})
        return JSONResponse({"user": request.user.identity, "scopes": request.auth.scopes})

    @requires("admin", status_code=403)
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.identity})

    app = Starlette(
        routes=[Route("/me", me), Route("/admin", admin)],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)],
    )
    return TestClient(app, base_url=APP)


def flask_app(env: WebEnv) -> tuple[Any, FlaskAuth]:
    app = Flask(__name__)
    auth = FlaskAuth(app, env.bridge, environ=env.environ)

    @app.get("/me")
    @auth.required()
    def me() -> dict[str, Any]:
        return {"user": auth.current_principal.user.id, "kind": auth.current_principal.kind}

    @app.get("/admin")
    @auth.required(roles={"admin"})
    def admin() -> dict[str, Any]:
        return {"user": auth.current_principal.user.id}

    @app.post("/change")
    @auth.required()
    def change() -> dict[str, Any]:
        return {"user": auth.current_principal.user.id}

    return app.test_client(), auth


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


@pytest.fixture
def env(make_web_env: Any) -> WebEnv:
    built: WebEnv = make_web_env(mapping=ADMIN_MAPPING)
    return built


# -- FastAPI ------------------------------------------------------------------------------


def test_fastapi_bearer_session_and_external_tokens(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    with client:
        session = env.exchange("alice")
        for scheme in ("Bearer", "bearer", "BEARER"):
            response = client.get("/me", headers=bearer(session["access_token"], scheme))
            assert response.status_code == 200
            assert response.json()["kind"] == "session"
        external = client.get("/me", headers=bearer(env.login_token("bob")))
        assert external.status_code == 200
        assert external.json()["kind"] == "external"


def test_fastapi_error_shapes(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.json()["detail"]["error"] == "missing_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = client.get("/me", headers=bearer("not.a.token"))
    assert bad.status_code == 401
    assert bad.json()["detail"]["error"] == "malformed"
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert "not.a.token" not in bad.text
    plain = env.exchange("alice")
    refused = client.get("/admin", headers=bearer(plain["access_token"]))
    assert refused.status_code == 403
    assert refused.json()["detail"]["error"] == "insufficient_role"
    admin = env.exchange("root", groups=["admins"])
    assert client.get("/admin", headers=bearer(admin["access_token"])).status_code == 200


def test_fastapi_optional_principal(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    assert client.get("/maybe").json() == {"user": None}
    assert client.get("/maybe", headers=bearer("garbage")).status_code == 401
    session = env.exchange("alice")
    assert client.get("/maybe", headers=bearer(session["access_token"])).json()["user"]


def test_fastapi_keys_down_is_503(make_web_env: Any) -> None:
    env = make_web_env()
    client, _ = fastapi_app(env)
    env.idp.outage(status=503)
    response = client.get("/me", headers=bearer(env.login_token("bob")))
    assert response.status_code == 503
    assert response.json()["detail"]["error"] == "keyset_unavailable"
    assert response.headers["retry-after"]


def test_fastapi_cookie_sessions_need_csrf_for_unsafe_methods(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    sso = env.client.get("/sso", params={"token": env.idp.mint(sub="alice", jti="fastapi-csrf")})
    assert sso.status_code == 303
    token = env.client.cookies.get("__Host-federation_session")
    csrf = env.client.cookies.get("__Host-federation_csrf")
    assert token and csrf
    client.cookies.set("__Host-federation_session", token)
    client.cookies.set("__Host-federation_csrf", csrf)
    assert client.get("/me").status_code == 200
    refused = client.post("/change", headers={"Origin": APP})
    assert refused.status_code == 403
    assert refused.json()["detail"]["error"] == "csrf_failed"
    ok = client.post("/change", headers={"Origin": APP, "X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_fastapi_openapi_lists_the_security_schemes(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A session access token of this app, or a token of a trusted issuer.",
    }
    assert schemes["session cookie"]["in"] == "cookie"
    assert schema["paths"]["/me"]["get"]["security"]


def test_fastapi_lifespan_warms_the_keys(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    before = len(env.idp.requests_to("jwks"))
    with client:
        assert len(env.idp.requests_to("jwks")) == before + 1


def test_fastapi_never_logs_in_per_request(env: WebEnv) -> None:
    client, _ = fastapi_app(env)
    token = env.login_token("bob")
    for _ in range(5):
        assert client.get("/me", headers=bearer(token)).status_code == 200
    logins = [e for e in env.audit if getattr(e, "name", None) == "login_succeeded"]
    assert len(logins) == 1


# -- Starlette ----------------------------------------------------------------------------


def test_starlette_requires_answers_in_the_one_error_shape(env: WebEnv) -> None:
    from federation.web.starlette import requires as federation_requires

    backend = FederationBackend(env.bridge, environ=env.environ)

    @federation_requires()
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.identity})

    @federation_requires("admin")
    def admin(request: Request) -> JSONResponse:  # a sync endpoint: run in the thread pool
        return JSONResponse({"admin": request.user.identity})

    client = TestClient(
        Starlette(
            routes=[Route("/me", me), Route("/admin", admin)],
            middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)],
        ),
        base_url=APP,
    )
    missing = client.get("/me")
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_token")
    assert missing.headers["www-authenticate"] == 'Bearer realm="federation"'
    plain = env.exchange("alice")["access_token"]
    assert client.get("/me", headers=bearer(plain)).json()["user"]
    refused = client.get("/admin", headers=bearer(plain))
    assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_role")
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    admin_token = env.exchange("root", groups=["admins"])["access_token"]
    assert client.get("/admin", headers=bearer(admin_token)).json()["admin"]


def test_starlette_backend(env: WebEnv) -> None:
    client = starlette_app(env)
    assert client.get("/me").json() == {"user": None}
    session = env.exchange("root", groups=["admins"])
    me = client.get("/me", headers=bearer(session["access_token"])).json()
    assert "admin" in me["scopes"] and "authenticated" in me["scopes"]
    assert client.get("/admin", headers=bearer(session["access_token"])).status_code == 200
    plain = env.exchange("alice")
    assert client.get("/admin", headers=bearer(plain["access_token"])).status_code == 403
    bad = client.get("/me", headers=bearer("x.y.z"))
    assert bad.status_code == 401
    assert bad.json()["error"] == "malformed"
    assert bad.headers["www-authenticate"].startswith("Bearer")


# -- Flask --------------------------------------------------------------------------------


def test_flask_extension(env: WebEnv) -> None:
    client, _ = flask_app(env)
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.get_json()["error"] == "missing_token"
    session = env.exchange("alice")
    me = client.get("/me", headers=bearer(session["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["kind"] == "session"
    refused = client.get("/admin", headers=bearer(session["access_token"]))
    assert refused.status_code == 403
    assert refused.get_json() == {"error": "insufficient_role", "detail": refused.get_json()["detail"]}
    admin = env.exchange("root", groups=["admins"])
    assert client.get("/admin", headers=bearer(admin["access_token"])).status_code == 200


def test_flask_keys_down_is_503(make_web_env: Any) -> None:
    env = make_web_env()
    client, _ = flask_app(env)
    env.idp.outage(status=503)  # before any fetch: no keys to serve from cache
    fresh = client.get("/me", headers=bearer(env.login_token("carol")))
    assert fresh.status_code == 503
    assert fresh.get_json()["error"] == "keyset_unavailable"
    assert fresh.headers["Retry-After"]


def test_flask_cookie_csrf(env: WebEnv) -> None:
    client, _ = flask_app(env)
    env.client.get("/sso", params={"token": env.idp.mint(sub="alice", jti="flask-csrf")})
    token = env.client.cookies.get("__Host-federation_session")
    csrf = env.client.cookies.get("__Host-federation_csrf")
    assert token and csrf
    client.set_cookie("__Host-federation_session", token, domain="localhost")
    client.set_cookie("__Host-federation_csrf", csrf, domain="localhost")
    assert client.get("/me").status_code == 200
    assert client.post("/change", headers={"Origin": APP}).status_code == 403
    assert client.post("/change", headers={"Origin": APP, "X-CSRF-Token": csrf}).status_code == 200


def test_flask_init_app_factory(env: WebEnv) -> None:
    auth = FlaskAuth(bridge=env.bridge, environ=env.environ)
    app = Flask(__name__)
    auth.init_app(app)

    @app.get("/me")
    @auth.required()
    def me() -> dict[str, Any]:
        return {"user": auth.current_principal.user.id}

    session = env.exchange("alice")
    assert app.test_client().get("/me", headers=bearer(session["access_token"])).status_code == 200


# -- every integration alike ----------------------------------------------------------------

SESSION = "__Host-federation_session"


def _flask_get(client: Any, path: str, headers: dict[str, str], cookie: str | None) -> tuple[int, str]:
    # Werkzeug's test client replaces a hand-written Cookie header by its jar: a raw environ.
    environ = EnvironBuilder(path=path, base_url=APP, headers=headers).get_environ()
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    body, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    error = json.loads(b"".join(body) or b"{}").get("error", "")
    return int(status.split()[0]), error


def _asgi_get(client: TestClient, path: str, headers: list[tuple[str, str]]) -> tuple[int, str]:
    response = client.get(path, headers=headers)
    body = response.json()
    error = body.get("error") or (body.get("detail") or {}).get("error", "") if isinstance(body, dict) else ""
    return response.status_code, error or ""


def test_a_request_with_two_credentials_is_refused_the_same_everywhere(env: WebEnv) -> None:
    """Starlette keeps a repeated cookie's last copy and Werkzeug its first, and a sibling
    subdomain can plant one: neither is believed. Two Authorization headers, separate
    (ASGI) or joined by the server (WSGI), are one request with two credentials."""
    alice = env.exchange("alice")["access_token"]
    mallory = env.exchange("mallory")["access_token"]
    asgi = {"fastapi": fastapi_app(env)[0], "starlette": starlette_app(env), "service": env.client}
    flask, _ = flask_app(env)
    two_cookies = f"{SESSION}={alice}; {SESSION}={mallory}"
    for name, client in asgi.items():
        client.cookies.clear()
        cases = {
            "two headers": [("authorization", f"Bearer {alice}"), ("authorization", "Bearer other")],
            "joined headers": [("authorization", f"Bearer {alice}, Bearer other")],
            "basic, then bearer": [
                ("authorization", "Basic dXNlcjpwYXNz"),
                ("authorization", f"Bearer {alice}"),
            ],
            "two cookies": [("cookie", two_cookies)],
        }
        for case, headers in cases.items():
            if (name, case) == ("starlette", "two cookies"):
                # Its /me is open to anyone: an unreadable cookie is as a stale one, not sent.
                assert client.get("/me", headers=headers).json() == {"user": None}
                continue
            assert _asgi_get(client, "/me", headers) == (400, "invalid_request"), (name, case)
        assert _asgi_get(client, "/me", [("cookie", f"{SESSION}={alice}")])[0] == 200, name
    joined = {"Authorization": f"Bearer {alice}, Bearer other"}
    assert _flask_get(flask, "/me", joined, None) == (400, "invalid_request")
    assert _flask_get(flask, "/me", {}, two_cookies) == (400, "invalid_request")
    assert _flask_get(flask, "/me", {}, f"{SESSION}={alice}")[0] == 200


def test_a_planted_session_cookie_copy_does_not_lock_the_browser_out_behind_the_middleware(
    env: WebEnv,
) -> None:
    """The login service mounted behind ``AuthenticationMiddleware`` (docs/web.md): the
    middleware refused the doubled cookie on every route, so /logout could not clear it
    and /sso could not sign the browser in until the planted copy expired."""
    backend = FederationBackend(env.bridge, environ=env.environ)
    app = Starlette(
        routes=[Mount("/auth", app=create_app(env.bridge, environ=env.environ))],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)],
    )
    client = TestClient(app, base_url=APP, follow_redirects=False)
    alice = env.exchange("alice")["access_token"]
    doubled = {"Cookie": f"{SESSION}={alice}; {SESSION}=planted"}
    logout = client.post("/auth/logout", headers={**doubled, "Origin": APP})
    assert logout.status_code == 400
    assert any(h.startswith(f"{SESSION}=;") for h in logout.headers.get_list("set-cookie"))
    sso = client.get("/auth/sso", params={"token": env.idp.mint(sub="alice")}, headers=doubled)
    assert sso.status_code == 303
    assert client.get("/auth/me", headers=doubled).status_code == 400  # still never guessed


def test_a_cookie_websocket_handshake_must_come_from_the_apps_origin(env: WebEnv) -> None:
    """Cross-site WebSocket hijacking: a page of any origin can open a socket with the
    browser's cookies and cannot add the CSRF header, so the Origin decides."""
    backend = FederationBackend(env.bridge, environ=env.environ)

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        user = websocket.user.identity if websocket.user.is_authenticated else None
        await websocket.send_json({"user": user})
        await websocket.close()

    starlette = Starlette(
        routes=[WebSocketRoute("/ws", socket)],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)],
    )
    auth = FastAPIAuth(env.bridge, environ=env.environ)
    fastapi = FastAPI()

    @fastapi.websocket("/ws")
    async def fastapi_socket(
        websocket: FastAPIWebSocket,
        principal: Principal = Depends(auth.principal()),  # noqa: B008
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user": principal.user.id})
        await websocket.close()

    session = env.exchange("alice")["access_token"]
    cookie = {"cookie": f"{SESSION}={session}"}
    for app in (starlette, fastapi):
        client = TestClient(app, base_url=APP)
        for origin in ("https://evil.example", "https://shop.example.test"):
            refused = pytest.raises((WebSocketDisconnect, WebSocketDenialResponse))
            with refused, client.websocket_connect("/ws", headers={**cookie, "origin": origin}) as ws:
                ws.receive_json()
        with client.websocket_connect("/ws", headers={**cookie, "origin": APP}) as ws:
            assert ws.receive_json()["user"]
        bearer_only = {"authorization": f"Bearer {session}", "origin": "https://evil.example"}
        with client.websocket_connect("/ws", headers=bearer_only) as ws:  # no cookie: no CSRF
            assert ws.receive_json()["user"]


def test_a_stale_session_cookie_is_anonymous_where_a_principal_is_optional(env: WebEnv) -> None:
    """A revoked cookie answered every page of a Starlette app with 401 (the backend runs on
    every request): the browser was locked out, the sign-in page included, until it expired."""
    session = env.exchange("alice")["access_token"]
    env.bridge.revoke(session)
    cookie = [("cookie", f"{SESSION}={session}")]
    assert starlette_app(env).get("/me", headers=cookie).json() == {"user": None}
    fastapi, _ = fastapi_app(env)
    assert fastapi.get("/maybe", headers=cookie).json() == {"user": None}
    assert _asgi_get(fastapi, "/me", cookie) == (401, "revoked")  # required: still refused
    as_bearer = [("authorization", f"Bearer {session}")]
    assert _asgi_get(fastapi, "/maybe", as_bearer) == (401, "revoked")  # a bearer token is the caller's
    flask, auth = flask_app(env)

    @flask.application.get("/maybe")
    @auth.required(optional=True)
    def maybe() -> dict[str, Any]:
        principal = auth.authenticate(optional=True)
        return {"user": principal.user.id if principal else None}

    assert _flask_get(flask, "/maybe", {}, f"{SESSION}={session}") == (200, "")
    assert _flask_get(flask, "/me", {}, f"{SESSION}={session}") == (401, "revoked")
