"""The headless Chromium harness itself (``tests/web/browser.py``), end to end.

A tiny Starlette app under uvicorn on loopback; a real system Chromium drives it.

What Chromium 156.0.8078.114 (Debian bookworm ``chromium`` / ``chromium-driver``) does
with ``Secure`` and prefixed cookies over plain HTTP, found by experiment and pinned by
``test_secure_cookies_only_on_trustworthy_loopback_origins``:

* ``http://127.0.0.1:<port>`` and ``http://localhost:<port>`` are potentially
  trustworthy origins (``window.isSecureContext`` is true): ``Secure`` cookies are
  stored and sent back, ``__Host-`` and ``__Secure-`` cookies are accepted, and CDP
  records them with ``sourceScheme: "Secure"``. So cookie security attributes of the
  bridge can be tested end to end without TLS, as long as the URL says 127.0.0.1 or
  localhost.
* The prefix rules are still enforced there: ``__Host-`` without ``Secure``, with a
  ``Path`` other than ``/`` or with a ``Domain`` attribute, and ``__Secure-`` without
  ``Secure``, are all silently dropped.
* A name mapped to loopback with ``--host-resolver-rules`` (``http://app.example.test``)
  is NOT a secure context: the page loads, plain cookies are stored, but every
  ``Secure`` / ``__Host-`` / ``__Secure-`` cookie is dropped. Tests that need secure
  cookies on a real-looking host name need HTTPS (or must use 127.0.0.1/localhost).
* ``chromium()`` is offline by default (``--host-resolver-rules`` sends every name but
  loopback and the caller's mapped names to NOTFOUND): ``example.com`` and a
  non-loopback IP literal fail with ``ERR_NAME_NOT_RESOLVED``.
* WebDriver's ``get_cookies`` shows HttpOnly cookies too (``httpOnly: True``); CDP
  ``Network.getAllCookies`` adds ``sameSite``, ``expires`` (-1 for session cookies)
  and the whole jar across hosts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from browser import cdp_cookies, chromium, cookies, require_browser, serve_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:  # selenium itself is imported lazily: without it the tests skip (or fail in CI)
    from selenium.webdriver.chrome.webdriver import WebDriver

HOST_COOKIE = "__Host-probe=1; Secure; HttpOnly; Path=/; SameSite=Lax"
# Each of these breaks a prefix rule; a conforming browser drops all of them.
BAD_PREFIXED = (
    "__Host-nosecure=1; Path=/",
    "__Host-subpath=1; Secure; Path=/sub",
    "__Host-domain=1; Secure; Path=/; Domain=localhost",
    "__Secure-nosecure=1; Path=/",
)


async def _set(request: Request) -> Response:
    response = PlainTextResponse("set")
    response.headers.append("set-cookie", HOST_COOKIE)
    response.headers.append("set-cookie", "plain=1; Path=/")
    response.headers.append("set-cookie", "__Secure-s=1; Secure; Path=/")
    for bad in BAD_PREFIXED:
        response.headers.append("set-cookie", bad)
    return response


async def _read(request: Request) -> Response:
    return JSONResponse(dict(request.cookies))


async def _redirect(request: Request) -> Response:
    return RedirectResponse("/landed", status_code=303)


async def _landed(request: Request) -> Response:
    return PlainTextResponse("landed")


APP = Starlette(
    routes=[
        Route("/set", _set),
        Route("/read", _read),
        Route("/redirect", _redirect),
        Route("/landed", _landed),
    ]
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The probe app on a free loopback port, for the whole module."""
    require_browser()
    with serve_asgi(APP) as url:
        yield url


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A fresh headless Chromium (empty cookie jar) per test."""
    require_browser()
    with chromium(host_rules="MAP *.example.test 127.0.0.1") as d:
        yield d


def _body(driver: WebDriver) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_serve_asgi_binds_loopback_only(base_url: str) -> None:
    assert base_url.startswith("http://127.0.0.1:")
    with pytest.raises(ValueError, match="loopback"), serve_asgi(APP, host="0.0.0.0"):
        pass


def test_browser_is_offline_except_loopback(driver: WebDriver, base_url: str) -> None:
    from selenium.common.exceptions import WebDriverException

    port = base_url.rsplit(":", 1)[1]
    for url in (f"http://example.com:{port}/read", f"http://192.0.2.1:{port}/read"):
        with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):
            driver.get(url)


def test_host_cookie_set_then_sent_back(driver: WebDriver, base_url: str) -> None:
    started = time.monotonic()
    driver.get(base_url + "/set")
    driver.get(base_url + "/read")
    received = json.loads(_body(driver))
    assert received["__Host-probe"] == "1"
    assert received["plain"] == "1"
    seen = cookies(driver)
    assert seen["__Host-probe"]["httpOnly"] is True
    assert seen["__Host-probe"]["path"] == "/"
    assert time.monotonic() - started < 10


def test_cdp_shows_host_cookie_attributes(driver: WebDriver, base_url: str) -> None:
    driver.get(base_url + "/set")
    jar = {c["name"]: c for c in cdp_cookies(driver)}
    probe = jar["__Host-probe"]
    assert probe["httpOnly"] is True
    assert probe["secure"] is True
    assert probe["sameSite"] == "Lax"
    assert probe["domain"] == "127.0.0.1"
    assert probe["path"] == "/"
    assert probe["session"] is True and probe["expires"] == -1
    # The prefix rules are enforced even on http loopback.
    assert not {"__Host-nosecure", "__Host-subpath", "__Host-domain", "__Secure-nosecure"} & set(jar)


def test_303_redirect_lands(driver: WebDriver, base_url: str) -> None:
    driver.get(base_url + "/redirect")
    assert driver.current_url == base_url + "/landed"
    assert _body(driver) == "landed"


def test_secure_cookies_only_on_trustworthy_loopback_origins(driver: WebDriver, base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    for host, trustworthy in (("127.0.0.1", True), ("localhost", True), ("app.example.test", False)):
        origin = f"http://{host}:{port}"
        driver.get(origin + "/set")
        assert driver.execute_script("return window.isSecureContext") is trustworthy, host
        driver.get(origin + "/read")
        received = set(json.loads(_body(driver)))
        expected = {"plain", "__Host-probe", "__Secure-s"} if trustworthy else {"plain"}
        assert received == expected, host
