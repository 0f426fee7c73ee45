"""The Flask extension: one extension for several apps, async views, optional views, the
app's own error handler, and credentials repeated in headers a WSGI server joins."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from inspect import iscoroutinefunction
from typing import Any

import pytest
from flask import Flask
from webenv import APP, WebEnv
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder, run_wsgi_app

from federation import Bridge
from federation.errors import FederationError
from federation.testing import MockIdP
from federation.web.flask import FederationAuth

SESSION = "__Host-federation_session"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def issuers() -> Iterator[tuple[MockIdP, Bridge, MockIdP, Bridge]]:
    a = MockIdP("https://a.example.test", audience="app")
    b = MockIdP("https://b.example.test", audience="app")
    bridge_a, bridge_b = a.bridge(), b.bridge()
    yield a, bridge_a, b, bridge_b
    for bridge, idp in ((bridge_a, a), (bridge_b, b)):
        bridge.close()
        idp.close()


def add_me(app: Flask, auth: FederationAuth) -> None:
    @app.get("/me")
    @auth.required()
    def me() -> dict[str, Any]:
        principal = auth.current_principal
        assert principal is not None
        return {"user": principal.user.id, "kind": principal.kind}


def test_one_extension_shared_by_two_apps_uses_each_apps_bridge(
    issuers: tuple[MockIdP, Bridge, MockIdP, Bridge],
) -> None:
    """The app-factory pattern: the last init_app's bridge answered for every app, so app A
    refused its own issuer's tokens and accepted app B's."""
    a, bridge_a, b, bridge_b = issuers
    auth = FederationAuth()

    def create_app(bridge: Bridge) -> Flask:
        app = Flask(__name__)
        auth.init_app(app, bridge)
        add_me(app, auth)
        return app

    app_a, app_b = create_app(bridge_a), create_app(bridge_b)
    client_a, client_b = app_a.test_client(), app_b.test_client()
    assert client_a.get("/me", headers=bearer(a.mint(sub="ada"))).status_code == 200
    assert client_b.get("/me", headers=bearer(b.mint(sub="bob"))).status_code == 200
    crossed = client_a.get("/me", headers=bearer(b.mint(sub="bob")))
    assert (crossed.status_code, crossed.get_json()["error"]) == (401, "untrusted_issuer")
    assert client_b.get("/me", headers=bearer(a.mint(sub="ada"))).status_code == 401
    with app_a.app_context():
        assert auth.bridge is bridge_a
        assert auth.guard is not None and auth.guard.bridge is bridge_a
    with app_b.app_context():
        assert auth.bridge is bridge_b


def test_an_extension_built_for_one_app_keeps_its_bridge_and_guard(
    issuers: tuple[MockIdP, Bridge, MockIdP, Bridge],
) -> None:
    _, bridge_a, _, bridge_b = issuers
    app = Flask(__name__)
    auth = FederationAuth(app, bridge_a)
    assert auth.bridge is bridge_a
    assert auth.guard is not None and auth.guard.bridge is bridge_a
    auth.init_app(Flask(__name__), bridge_b)  # another app's state is that app's own
    assert auth.bridge is bridge_a
    with app.app_context():
        assert auth.guard is not None and auth.guard.bridge is bridge_a


def test_an_app_never_initialised_is_a_clear_error(issuers: tuple[MockIdP, Bridge, MockIdP, Bridge]) -> None:
    """It silently used the bridge of another app the extension was initialised on."""
    a, bridge_a, _, _ = issuers
    auth = FederationAuth()
    auth.init_app(Flask(__name__), bridge_a)
    forgotten = Flask(__name__)
    forgotten.testing = True  # the exception reaches the test instead of a 500
    add_me(forgotten, auth)
    with pytest.raises(RuntimeError, match=r"call auth\.init_app\(app\) first"):
        forgotten.test_client().get("/me", headers=bearer(a.mint(sub="ada")))


def test_async_views_are_authenticated_and_awaited(issuers: tuple[MockIdP, Bridge, MockIdP, Bridge]) -> None:
    """The wrapper was a plain def returning the coroutine: every async view failed."""
    a, bridge_a, _, _ = issuers
    app = Flask(__name__)
    auth = FederationAuth(app, bridge_a)

    @app.get("/me")
    @auth.required()
    async def me() -> dict[str, Any]:
        principal = auth.current_principal
        return {"user": principal.user.id if principal else None}

    @app.get("/maybe")
    @auth.required(optional=True)
    async def maybe() -> dict[str, Any]:
        principal = auth.optional_principal
        return {"user": principal.user.id if principal else None}

    assert iscoroutinefunction(me)
    client = app.test_client()
    ok = client.get("/me", headers=bearer(a.mint(sub="ada")))
    assert ok.status_code == 200 and ok.get_json()["user"]
    missing = client.get("/me")
    assert (missing.status_code, missing.get_json()["error"]) == (401, "missing_token")
    assert client.get("/maybe").get_json() == {"user": None}


def test_an_optional_view_reads_no_one_as_none(issuers: tuple[MockIdP, Bridge, MockIdP, Bridge]) -> None:
    """Reading an optional view's anonymous caller raised (a 500): optional_principal is None."""
    a, bridge_a, _, _ = issuers
    app = Flask(__name__)
    app.testing = True
    auth = FederationAuth(app, bridge_a)

    @app.get("/maybe")
    @auth.required(optional=True)
    def maybe() -> dict[str, Any]:
        principal = auth.optional_principal
        return {"user": principal.user.id if principal else None}

    @app.get("/strict")
    @auth.required(optional=True)
    def strict() -> dict[str, Any]:
        return {"user": auth.current_principal.user.id}  # typed Principal: no one is an error

    @app.get("/open")
    def open_view() -> dict[str, Any]:
        return {"user": str(auth.current_principal)}

    client = app.test_client()
    assert client.get("/maybe").get_json() == {"user": None}
    assert client.get("/maybe", headers=bearer(a.mint(sub="ada"))).get_json()["user"]
    bad = client.get("/maybe", headers=bearer(a.mint(expired=True)))  # a bad bearer is still refused
    assert bad.status_code == 401
    with pytest.raises(RuntimeError, match=r"did not pass @auth\.required"):
        client.get("/open")
    with pytest.raises(RuntimeError, match=r"read auth\.optional_principal"):
        client.get("/strict")


def test_init_app_keeps_the_apps_own_federation_error_handler(
    issuers: tuple[MockIdP, Bridge, MockIdP, Bridge],
) -> None:
    _, bridge_a, _, _ = issuers
    app = Flask(__name__)

    @app.errorhandler(FederationError)
    def own(exc: FederationError) -> tuple[dict[str, str], int]:
        return {"mine": exc.code}, 418

    auth = FederationAuth(app, bridge_a)
    add_me(app, auth)
    answer = app.test_client().get("/me")
    assert (answer.status_code, answer.get_json()) == (418, {"mine": "missing_token"})
    plain = Flask(__name__)  # without a handler of its own, the extension's
    add_me(plain, FederationAuth(plain, bridge_a))
    assert plain.test_client().get("/me").status_code == 401


# -- repeated credentials through a real Werkzeug server ------------------------------------


@pytest.fixture
def served(make_web_env: Callable[..., WebEnv]) -> Iterator[tuple[WebEnv, Callable[..., tuple[int, str]]]]:
    env = make_web_env()
    app = Flask(__name__)
    add_me(app, FederationAuth(app, env.bridge, environ=env.environ))
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def get(*headers: tuple[str, str]) -> tuple[int, str]:
        """GET /me with ``headers`` sent as given, repeated ones as separate header lines."""
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        try:
            connection.putrequest("GET", "/me")
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            body = json.loads(response.read() or b"{}")
            return response.status, body.get("error", "")
        finally:
            connection.close()

    yield env, get
    server.shutdown()
    thread.join(timeout=10)


def test_a_basic_and_a_bearer_authorization_header_are_invalid_request(
    served: tuple[WebEnv, Callable[..., tuple[int, str]]],
) -> None:
    """The server joins them as ``Basic ...,Bearer ...``, which read as no bearer at all (401)."""
    env, get = served
    alice = env.exchange("alice")["access_token"]
    assert get(("Authorization", "Basic dXNlcjpwYXNz"), ("Authorization", f"Bearer {alice}")) == (
        400,
        "invalid_request",
    )
    assert get(("Authorization", f"Bearer {alice}"))[0] == 200
    assert get(("Authorization", "Basic dXNlcjpwYXNz")) == (401, "missing_token")  # one, not ours
    digest = 'Digest username="a, b c", realm="x", nonce = "y"'  # commas inside one credential
    assert get(("Authorization", digest)) == (401, "missing_token")


def test_the_session_cookie_in_two_cookie_headers_is_invalid_request(
    served: tuple[WebEnv, Callable[..., tuple[int, str]]],
) -> None:
    """Joined as ``name=A,name=B``, the pair read as one malformed cookie (401)."""
    env, get = served
    alice = env.exchange("alice")["access_token"]
    mallory = env.exchange("mallory")["access_token"]
    twice = get(("Cookie", f"{SESSION}={alice}"), ("Cookie", f"{SESSION}={mallory}"))
    assert twice == (400, "invalid_request")
    assert get(("Cookie", f"{SESSION}={alice}"))[0] == 200


def test_a_cookie_value_holding_a_session_cookie_is_no_credential(
    served: tuple[WebEnv, Callable[..., tuple[int, str]]],
) -> None:
    """A sibling subdomain may set any cookie whose name is not __Host-: one whose value is
    ``1,__Host-federation_session=<token>`` must not sign a browser in as that token's user."""
    env, get = served
    mallory = env.exchange("mallory")["access_token"]
    alice = env.exchange("alice")["access_token"]
    assert get(("Cookie", f"x=1,{SESSION}={mallory}")) == (401, "missing_token")
    assert get(("Cookie", f"x=1,{SESSION}={mallory}; {SESSION}={alice}"))[0] == 200  # alice's own
    # Joined by a server with ", ", a session cookie and another Cookie header cannot be told
    # from one cookie holding the other: not read (Werkzeug drops the pair), never guessed.
    app = Flask(__name__)
    add_me(app, FederationAuth(app, env.bridge, environ=env.environ))
    environ = EnvironBuilder(path="/me", base_url=APP).get_environ()
    environ["HTTP_COOKIE"] = f"{SESSION}={alice}, theme=dark"
    _, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("401")
