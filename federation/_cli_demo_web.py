"""``federation demo --web``: the login service against a mock issuer, in a browser.

A :class:`~federation.testing.MockIdP` serves discovery, keys and the authorization and
token endpoints on one loopback port; the login service (:func:`federation.web.create_app`)
is mounted at ``/auth`` of a one-page app on another, over plain http on 127.0.0.1
(``web.insecure_http``: the development flag, loopback only). Sessions are signed with a
key made for this run, users live in memory: nothing is written to disk.
"""

from __future__ import annotations

import html
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TextIO

from .errors import ConfigError

if TYPE_CHECKING:
    from .testing import MockIdP

CLIENT_ID = "federation-demo-web"
ISSUER_NAME = "mock"
DEMO_USER = "demo-user"
DEMO_EMAIL = "demo@example.test"

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>federation demo</title></head>
<body>
<h1>federation-bridge: the login service</h1>
<p id="who">checking who you are&hellip;</p>
<p><a id="sign-in" href="auth/login/{issuer}?redirect_to=/">Sign in with the mock issuer</a></p>
<p><button id="sign-out" type="button">Sign out</button></p>
<p>The service's endpoints: <a href="auth/me">/auth/me</a>,
<a href="auth/.well-known/jwks.json">/auth/.well-known/jwks.json</a>,
<a href="auth/.well-known/oauth-authorization-server">metadata</a>,
<a href="auth/healthz">/auth/healthz</a>.</p>
<script>
const csrfCookie = "{csrf}=";
async function who() {{
  const response = await fetch("auth/me", {{credentials: "same-origin"}});
  const body = await response.json();
  document.getElementById("who").textContent = response.ok
    ? "signed in as " + (body.user.email || body.user.id) + " (" + body.kind + ")"
    : "not signed in (" + body.error + ")";
}}
document.getElementById("sign-out").addEventListener("click", async () => {{
  // The double-submit CSRF token: the script-readable cookie sent back as a header.
  const found = document.cookie.split("; ").find((c) => c.startsWith(csrfCookie));
  const token = found === undefined ? "" : decodeURIComponent(found.slice(csrfCookie.length));
  await fetch("auth/logout", {{method: "POST", headers: {{"X-CSRF-Token": token}},
                              credentials: "same-origin"}});
  who();
}});
who();
</script>
</body></html>
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the redirect URI needs it in advance)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def build_demo(port: int) -> tuple[Any, MockIdP, Callable[[], None]]:
    """The demo's pieces for an app on ``http://127.0.0.1:<port>``, inside a running mock issuer.

    Returns ``(app, idp, stop)``: the ASGI app, the serving mock issuer and a callable that
    closes the bridge and stops the issuer.
    """
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, Response
        from starlette.routing import Mount, Route

        from .web import CSRF_COOKIE, CookiePolicy, create_app
    except ImportError as exc:
        raise ConfigError(
            f"federation demo --web needs the web extra: pip install 'federation-bridge[web]' ({exc.name})"
        ) from None
    from .bridge import Bridge
    from .sessions import generate_private_key_pem
    from .storage import MemoryStore
    from .testing import MockIdP

    base = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(32)
    environ = {"DEMO_SESSION_KEY": generate_private_key_pem("ES256").decode(), "DEMO_SECRET": secret}
    idp = MockIdP(audience=CLIENT_ID)  # the real clock: a browser drives it
    with ExitStack() as stack:  # unwound here on a failure, else by stop()
        stack.enter_context(idp.serve(as_issuer=True))
        callback = f"{base}/auth/callback/{ISSUER_NAME}"
        idp.register_client(CLIENT_ID, client_secret=secret, redirect_uris=[callback])
        idp.approve(DEMO_USER, email=DEMO_EMAIL, email_verified=True, name="Demo User")
        config = idp.bridge_config(
            discovery=True,
            served=True,
            sessions={"issuer": base, "keys": [{"env": "DEMO_SESSION_KEY"}]},
            web={"public_url": base, "insecure_http": True},
        )
        entry = config["issuers"][0]
        entry["name"] = ISSUER_NAME
        entry["login"] = {"client_id": CLIENT_ID, "client_secret": {"env": "DEMO_SECRET"}}
        bridge = stack.enter_context(Bridge.from_dict(config, store=MemoryStore(), environ=environ))
        service = create_app(bridge, environ=environ)
        cleanup = stack.pop_all()
    page = _PAGE.format(
        issuer=ISSUER_NAME, csrf=html.escape(CookiePolicy(secure=False).name(CSRF_COOKIE), quote=True)
    )

    async def home(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app = Starlette(routes=[Route("/", home), Mount("/auth", app=service)])
    return app, idp, cleanup.close


def run_web_demo(out: TextIO, *, port: int = 0) -> int:
    """Serve the demo until interrupted; print the URL to open."""
    if not 0 <= port < 65536:
        raise ConfigError("--port must be between 0 (any free port) and 65535")
    try:
        import uvicorn
    except ImportError:
        raise ConfigError(
            "federation demo --web needs uvicorn: pip install 'federation-bridge[web]'"
        ) from None
    port = port or free_port()
    app, idp, stop = build_demo(port)
    try:
        base = f"http://127.0.0.1:{port}"
        out.write(
            "federation demo --web: the login service against a mock issuer, on loopback only\n"
            f"  mock issuer   {idp.issuer}\n"
            f"  sign in here  {base}/  (the issuer approves {DEMO_USER!r} at once)\n"
        )
        # The seeds' auto-login from a URL: a fresh single-use token, good for two minutes.
        sso = idp.mint(sub=DEMO_USER, email=DEMO_EMAIL, email_verified=True, lifetime=120)
        out.write(f"  or by URL     {base}/auth/sso?token={sso}&redirect_to=/  (once, within 120 s)\n")
        out.write("Ctrl-C stops.\n")
        out.flush()
        started = time.monotonic()
        uvicorn.run(app, host="127.0.0.1", port=port, proxy_headers=False, log_level="warning")
        out.write(f"stopped after {time.monotonic() - started:.0f} s\n")
    finally:
        stop()
    return 0
