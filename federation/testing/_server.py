"""A real HTTP server on the loopback interface for the mock issuer.

Owns: serving one :class:`~federation.testing.MockIdP` over plain HTTP on
127.0.0.1 (an ephemeral port, a daemon thread, one thread per connection) for
code that does not use httpx: GET, and POST with a ``Content-Length`` body
(the token endpoint). Every request goes through the mock's own ``handler``,
so outages, rotation and request recording behave exactly as in memory, and
its answers (redirects included) go back unchanged. A timeout outage is a
server that accepts the connection and never answers (until the outage ends
or the server stops).

Must not: listen anywhere but loopback, or outlive the ``serve()`` block.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._mockidp import MockIdP

__all__ = ["LoopbackServer"]

_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_MAX_HOLD = 120.0  # a timeout outage never holds a connection longer than this
_MAX_BODY = 1024 * 1024  # a request body larger than this is refused (413)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "MockIdP"
    sys_version = ""

    def do_GET(self) -> None:
        self.server.owner.answer(self)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding"):
            self._refuse(411, "Content-Length required")
            return
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= _MAX_BODY:
            self._refuse(413 if size > _MAX_BODY else 400, "bad Content-Length")
            return
        self.server.owner.answer(self, self.rfile.read(size))

    def _refuse(self, status: int, message: str) -> None:
        self.send_error(status, message)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``idp.requests``, not stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer


class LoopbackServer:
    """Serves ``idp`` at ``http://127.0.0.1:<port>`` until :meth:`stop`."""

    def __init__(self, idp: MockIdP, port: int = 0) -> None:
        self._idp = idp
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        port = self._httpd.server_address[1]
        #: The base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash).
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, release held connections, close the socket (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes | None = None) -> None:
        """Translate one HTTP exchange (``body``: a POST's) to and from the mock's httpx ``handler``."""
        request = httpx.Request(
            handler.command,
            self.url + handler.path,
            headers=list(handler.headers.items()),
            content=body,
        )
        try:
            response = self._idp.handler(request)
        except httpx.TimeoutException:
            self._hold()
            handler.close_connection = True
            return
        except httpx.HTTPError:
            handler.close_connection = True  # the connection drops without an answer
            return
        content = response.read()
        handler.send_response(response.status_code)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(content)
        handler.close_connection = True

    def _hold(self) -> None:
        """Keep the connection silent while the timeout outage lasts."""
        waited = 0.0
        while self._idp.outage_kind == "timeout" and waited < _MAX_HOLD:
            if self._stopped.wait(0.05):
                return
            waited += 0.05
