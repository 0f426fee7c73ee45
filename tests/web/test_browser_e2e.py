"""The login service end to end in Debian's headless Chromium.

The service (``federation.web.create_app``) is mounted at ``/auth`` in a small Starlette
app with a home page, a dashboard and a logout page, served by uvicorn over HTTPS on
127.0.0.1 with a self-signed certificate (so the cookies keep ``Secure`` and the
``__Host-`` prefix exactly as in production; Chromium runs with
``--ignore-certificate-errors``). The mock issuer is a real loopback HTTP server
(``MockIdP.serve(as_issuer=True)``): the bridge discovers it, Chromium follows the
redirects through its ``/authorize`` and the service's Authlib client calls its
``/token``. Every test drives the browser; nothing is faked between the three.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from browser import cdp_cookies, chromium, free_port, loopback_certificate, require_browser, serve_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from federation.sessions import generate_private_key_pem
from federation.storage import MemoryStore
from federation.testing import MockIdP
from federation.web import create_app

if TYPE_CHECKING:  # selenium itself is imported lazily: without it the tests skip (or fail in CI)
    from selenium.webdriver.chrome.webdriver import WebDriver

    from federation import Bridge

CLIENT_ID = "e2e-web-client"
CLIENT_SECRET = "e2e-web-client-secret-0123456789"
SESSION_COOKIE = "__Host-federation_session"
CSRF_COOKIE = "__Host-federation_csrf"
ROUTE = "federation.testing.route"  # MockIdP tags each served request with its endpoint
SESSION_LIFETIME = 3600  # the sessions: default the cookies' Max-Age follows

LOGOUT_PAGE = """<!doctype html>
<html><head><title>logout</title></head><body>
<form id="logout" method="post" action="/auth/logout"><button type="submit">Sign out</button></form>
<script>
// The double-submit CSRF token: the script-readable cookie sent back as X-CSRF-Token.
function csrfToken() {
  const prefix = "__Host-federation_csrf=";
  const found = document.cookie.split("; ").find((c) => c.startsWith(prefix));
  return found === undefined ? null : decodeURIComponent(found.slice(prefix.length));
}
window.federationLogout = async function () {
  const token = csrfToken();
  const response = await fetch("/auth/logout", {
    method: "POST",
    headers: token === null ? {} : {"X-CSRF-Token": token},
    credentials: "same-origin",
  });
  document.title = String(response.status);
  return {status: response.status, ok: response.ok, redirected: response.redirected,
          url: response.url, token: token, body: await response.text()};
};
document.getElementById("logout").addEventListener("submit", (event) => {
  event.preventDefault();
  window.federationLogout();
});
</script>
</body></html>
"""


async def _home(request: Request) -> Response:
    return HTMLResponse("<!doctype html><title>home</title><p>home page</p>")


async def _dashboard(request: Request) -> Response:
    return HTMLResponse("<!doctype html><title>dashboard</title><p>dashboard</p>")


async def _logout_page(request: Request) -> Response:
    return HTMLResponse(LOGOUT_PAGE)


@dataclass
class E2E:
    """The running service, its mock issuer and the browser driving them."""

    base: str
    idp: MockIdP
    bridge: Bridge
    driver: WebDriver

    def get(self, path: str, **params: str) -> None:
        self.driver.get(self.base + path + ("?" + urlencode(params) if params else ""))

    def body(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body())
        return value

    def jar(self) -> dict[str, dict[str, Any]]:
        """The browser's whole cookie jar by name (CDP)."""
        return {c["name"]: c for c in cdp_cookies(self.driver)}

    def sign_in(self, redirect_to: str = "/dashboard") -> None:
        self.get("/auth/login/mock", redirect_to=redirect_to)


@pytest.fixture
def e2e(tmp_path: Path) -> Iterator[E2E]:
    require_browser()
    certfile, keyfile = loopback_certificate(tmp_path)
    port = free_port()  # public_url and the registered redirect URI need it before the server runs
    base = f"https://127.0.0.1:{port}"
    idp = MockIdP(audience=CLIENT_ID)  # the real clock: Chromium and uvicorn run in real time
    environ = {
        "SESSION_KEY": generate_private_key_pem("ES256").decode(),
        "CLIENT_SECRET": CLIENT_SECRET,
    }
    with idp.serve(as_issuer=True):
        idp.register_client(
            CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[f"{base}/auth/callback/mock"]
        )
        config = idp.bridge_config(
            discovery=True,
            served=True,
            sessions={"issuer": base, "keys": [{"env": "SESSION_KEY"}]},
            web={"public_url": base, "allowed_redirects": ["https://shop.example.test"]},
        )
        assert config["keys"]["allow_loopback_http"] is True
        config["issuers"][0]["name"] = "mock"
        config["issuers"][0]["login"] = {"client_id": CLIENT_ID, "client_secret": {"env": "CLIENT_SECRET"}}
        bridge = idp.bridge(discovery=True, served=True, config=config, store=MemoryStore(), environ=environ)
        # Authlib's calls to the issuer go through bridge.async_transport(): the guarded
        # transport, which admits the loopback issuer because keys.allow_loopback_http is on.
        service = create_app(bridge, environ=environ)
        app = Starlette(
            routes=[
                Route("/", _home),
                Route("/dashboard", _dashboard),
                Route("/logout-form", _logout_page),
                Mount("/auth", app=service),
            ]
        )
        try:
            with (
                serve_asgi(app, port=port, ssl_certfile=certfile, ssl_keyfile=keyfile) as url,
                chromium(extra_args=["--ignore-certificate-errors"]) as driver,
            ):
                assert url == base
                yield E2E(base, idp, bridge, driver)
        finally:
            bridge.close()
            idp.close()


# -- the sign-in flow ------------------------------------------------------------------------


def test_sign_in_through_the_issuer_sets_host_cookies_and_lands_on_the_page(e2e: E2E) -> None:
    e2e.idp.approve("alice", email="alice@example.test", email_verified=True)
    started = time.time()
    e2e.sign_in("/dashboard")
    assert e2e.driver.current_url == e2e.base + "/dashboard"
    assert e2e.body() == "dashboard"
    assert e2e.driver.execute_script("return window.isSecureContext") is True
    jar = e2e.jar()
    session = jar[SESSION_COOKIE]
    assert session["secure"] is True
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert session["domain"] == "127.0.0.1"  # host-only: a Domain attribute would show ".127.0.0.1"
    assert session["sourceScheme"] == "Secure"
    assert session["session"] is False
    assert started < session["expires"] <= time.time() + SESSION_LIFETIME + 60
    csrf = jar[CSRF_COOKIE]
    assert csrf["httpOnly"] is False
    assert csrf["secure"] is True and csrf["path"] == "/" and csrf["domain"] == "127.0.0.1"
    assert abs(csrf["expires"] - session["expires"]) <= 1
    # Authlib's sign-in state cookie was cleared at the callback: only the two session cookies remain.
    assert set(jar) == {SESSION_COOKIE, CSRF_COOKIE}
    e2e.get("/auth/me")
    me = e2e.json()
    assert me["user"]["email"] == "alice@example.test"
    assert me["kind"] == "session"
    # The issuer really saw the browser's authorization request and the service's token call.
    routes = [r.extensions.get(ROUTE) for r in e2e.idp.requests]
    assert routes.count("authorize") == 1 and routes.count("token") == 1, routes


def test_a_hostile_redirect_at_sign_in_ends_on_the_home_page(e2e: E2E) -> None:
    e2e.idp.approve("alice", email="alice@example.test")
    e2e.sign_in("https://evil.example")
    assert e2e.driver.current_url == e2e.base + "/"
    assert e2e.body() == "home page"
    assert SESSION_COOKIE in e2e.jar()


def test_the_sign_in_state_cookie_is_a_host_cookie_bound_to_this_browser(e2e: E2E) -> None:
    # With the redirect URI unregistered the issuer shows its error page and never
    # redirects back (RFC 6749 4.1.2.1): the browser stops there, the state cookie set.
    e2e.idp.register_client(
        CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=["https://elsewhere.example.test/cb"]
    )
    started = time.time()
    e2e.sign_in("/dashboard")
    assert e2e.driver.current_url.startswith(e2e.idp.issuer + "/authorize?")
    assert "invalid_request" in e2e.body()
    jar = e2e.jar()
    assert SESSION_COOKIE not in jar
    state = jar["__Host-federation_oauth"]
    assert state["secure"] is True and state["httpOnly"] is True
    assert state["sameSite"] == "Lax" and state["path"] == "/" and state["domain"] == "127.0.0.1"
    assert started < state["expires"] <= time.time() + 600 + 60


# -- logout ----------------------------------------------------------------------------------


def test_logout_with_the_csrf_cookie_revokes_and_clears_the_session(e2e: E2E) -> None:
    e2e.idp.approve("alice", email="alice@example.test")
    e2e.sign_in("/dashboard")
    assert SESSION_COOKIE in e2e.jar()
    e2e.get("/logout-form")
    result = e2e.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.federationLogout().then(done, (e) => done({error: String(e)}));"
    )
    assert "error" not in result, result
    assert result["token"], "the CSRF cookie must be readable by the page's script"
    # fetch follows the 303 to the home page.
    assert result["ok"] is True and result["status"] == 200
    assert result["redirected"] is True
    assert result["url"] == e2e.base + "/"
    assert result["body"].find("home page") >= 0
    assert e2e.driver.title == "200"
    jar = e2e.jar()
    assert SESSION_COOKIE not in jar
    assert CSRF_COOKIE not in jar
    e2e.get("/auth/me")
    assert e2e.json()["error"] == "missing_token"


def test_logout_without_the_csrf_header_is_refused_and_keeps_the_session(e2e: E2E) -> None:
    e2e.idp.approve("alice", email="alice@example.test")
    e2e.sign_in("/dashboard")
    e2e.get("/logout-form")
    result = e2e.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/auth/logout', {method: 'POST', credentials: 'same-origin'})"
        ".then(async (r) => done({status: r.status, body: await r.text()}), (e) => done({error: String(e)}));"
    )
    assert result["status"] == 403, result
    assert json.loads(result["body"])["error"] == "csrf_failed"
    assert SESSION_COOKIE in e2e.jar()
    e2e.get("/auth/me")
    assert e2e.json()["user"]["email"] == "alice@example.test"


# -- /sso ------------------------------------------------------------------------------------


def test_sso_url_logs_in_once_and_a_replay_is_refused(e2e: E2E) -> None:
    token = e2e.idp.mint(sub="bob", jti="e2e-1", email="bob@example.test")
    e2e.get("/auth/sso", token=token, redirect_to="/dashboard")
    assert e2e.driver.current_url == e2e.base + "/dashboard"
    assert SESSION_COOKIE in e2e.jar()
    e2e.get("/auth/me")
    assert e2e.json()["user"]["email"] == "bob@example.test"
    e2e.driver.delete_all_cookies()
    assert SESSION_COOKIE not in e2e.jar()
    e2e.get("/auth/sso", token=token, redirect_to="/dashboard")
    assert e2e.driver.current_url.startswith(e2e.base + "/auth/sso?")
    assert e2e.json()["error"] == "url_token_replayed"
    assert SESSION_COOKIE not in e2e.jar()
    e2e.get("/auth/me")
    assert e2e.json()["error"] == "missing_token"


@pytest.mark.parametrize(
    "query",
    [
        {"redirect_to": "//evil.example/x"},
        {"redirect_to": "https://evil.example/"},
        {"redirect_to": "/%2F%2Fevil.example"},  # sent encoded: the service sees the %2F
        "redirect_to=/%2F%2Fevil.example",  # raw: the service sees ///evil.example
        "redirect_to=/\\evil.example",
        "redirect_to=%2F%2Fevil.example",
    ],
    ids=[
        "scheme-relative",
        "absolute",
        "encoded-slashes",
        "raw-encoded-slashes",
        "backslash",
        "encoded-root",
    ],
)
def test_sso_never_leaves_the_origin(e2e: E2E, query: dict[str, str] | str) -> None:
    token = e2e.idp.mint(sub="bob", jti=f"e2e-hostile-{time.monotonic_ns()}")
    suffix = urlencode(query) if isinstance(query, dict) else query
    e2e.driver.get(f"{e2e.base}/auth/sso?{urlencode({'token': token})}&{suffix}")
    assert e2e.driver.current_url == e2e.base + "/"
    assert e2e.body() == "home page"
    assert SESSION_COOKIE in e2e.jar()
