"""A real HTTP server on the loopback interface for the mock issuer.

Owns: serving one :class:`~federation.testing.MockIdP` over plain HTTP on
127.0.0.1 (an ephemeral port, a daemon thread, one thread per connection) for
code that does not use httpx. Every request goes through the mock's own
``handler``, so outages, rotation and request recording behave exactly as in
memory. A timeout outage is a server that accepts the connection and never
answers (until the outage ends or the server stops).

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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "MockIdP"
    sys_version = ""

    def do_GET(self) -> None:
        self.server.owner.answer(self)

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

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Translate one HTTP exchange to and from the mock's httpx ``handler``."""
        request = httpx.Request(
            handler.command, self.url + handler.path, headers=list(handler.headers.items())
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
        body = response.read()
        handler.send_response(response.status_code)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    def _hold(self) -> None:
        """Keep the connection silent while the timeout outage lasts."""
        waited = 0.0
        while self._idp.outage_kind == "timeout" and waited < _MAX_HOLD:
            if self._stopped.wait(0.05):
                return
            waited += 0.05
