"""The HTTP shells of the key cache: one GET, bytes in and out, nothing else.

Owns: performing a :class:`FetchRequest` with httpx, synchronously or
asynchronously, with no redirects, connect/read timeouts, a total deadline and
a response-size cap applied after content decoding (so a gzip bomb is capped
too), and reporting transport failures as data rather than exceptions.

Must not: interpret status codes or bodies, keep state, or decide what to fetch.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ._connect import AddressNotAllowed

__all__ = ["FetchRequest", "FetchResponse", "fetch_async", "fetch_sync"]

_USER_AGENT = "federation-bridge"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What the key cache wants fetched. URLs only ever come from configuration or discovery."""

    url: str
    purpose: Literal["jwks", "discovery"]
    forced: bool = False

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json, application/jwk-set+json", "User-Agent": _USER_AGENT}
        if self.forced:
            # An unknown kid means our copy may be stale: ask caches in between for a fresh one.
            headers["Cache-Control"] = "no-cache"
        return headers


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """A response, or ``error`` naming the transport failure (then status is 0)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


class _TooLarge(Exception):
    pass


def _is_async_timeout(exc: BaseException) -> bool:
    # asyncio's own TimeoutError before Python 3.11 (an alias of the builtin since). Only an
    # async fetch raises it, so asyncio is loaded then; a sync-only process never imports it.
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.TimeoutError)


def _transport_error(exc: BaseException) -> FetchResponse:
    if isinstance(exc, _TooLarge):
        return FetchResponse(error="response_too_large")
    if isinstance(exc, AddressNotAllowed) or isinstance(exc.__cause__, AddressNotAllowed):
        # the own clients' connect-time SSRF check (httpx re-raises it as a ConnectError)
        return FetchResponse(error="address_not_allowed")
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)) or _is_async_timeout(exc):
        return FetchResponse(error="timeout")
    if isinstance(exc, httpx.ConnectError):
        return FetchResponse(error="connect_failed")
    if isinstance(exc, httpx.DecodingError):
        return FetchResponse(error="bad_content_encoding")
    return FetchResponse(error=f"transport_error:{type(exc).__name__}")


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


class _BoundedBody:
    """The decoded body, never more than ``max_bytes`` of it in memory. httpx decodes a whole
    network chunk at once (its decoders have no output limit): a 250 KB gzip chunk became
    250 MB before any check. Here the raw bytes are decoded with zlib's ``max_length``."""

    def __init__(self, encoding: str | None, max_bytes: int) -> None:
        name = (encoding or "identity").strip().lower()
        if name in ("", "identity"):
            self._zlib = None
        elif name in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._zlib = zlib.decompressobj()
        else:  # brotli, zstd, several codings: none a key set needs
            raise httpx.DecodingError(f"unsupported content encoding {name!r}")
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max:
            raise _TooLarge
        self._chunks.append(data)

    def feed(self, raw: bytes) -> None:
        if self._zlib is None:
            self._keep(raw)
            return
        try:
            data = self._zlib.decompress(raw, self._max + 1 - self._size)
        except zlib.error:
            raise httpx.DecodingError("the body does not decode") from None
        self._keep(data)
        if self._zlib.unconsumed_tail:  # more output than the bound
            raise _TooLarge

    def body(self) -> bytes:
        if self._zlib is not None:
            try:
                self._keep(self._zlib.flush())
            except zlib.error:
                raise httpx.DecodingError("the body does not decode") from None
        return b"".join(self._chunks)


def _read_already(response: httpx.Response, max_bytes: int) -> FetchResponse:
    """A response whose body was in memory before it was sent (no network in between)."""
    content = response.content
    if len(content) > max_bytes:
        raise _TooLarge
    return FetchResponse(response.status_code, _headers(response), content)


def _declared_too_large(response: httpx.Response, max_bytes: int) -> bool:
    length = response.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) > max_bytes


class _Watchdog:
    """Shuts the fetch's socket down at the deadline. httpx's timeouts are per read, so a
    server that trickles its response headers a byte at a time held a sync caller without
    end (asyncio's ``wait_for`` bounds the async shell). The socket comes from httpcore's
    ``trace`` extension when the connection opens; the request asks ``Connection: close``,
    so a key fetch never rides on a pooled connection the watchdog could not see."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name != "connection.connect_tcp.complete":
            return
        extra = getattr(info.get("return_value"), "get_extra_info", None)
        sock = extra("socket") if extra is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                late = self.fired
            if late:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread (close does not)
    except OSError:
        pass  # closed already


def fetch_sync(
    client: httpx.Client, request: FetchRequest, *, timeout: float, max_bytes: int
) -> FetchResponse:
    """GET ``request.url`` with ``client``; never raises for network trouble."""
    budget = 2 * timeout  # total budget: a slow drip cannot hold a thread forever
    deadline = time.monotonic() + budget
    watchdog = _Watchdog(budget)
    try:
        with watchdog, client.stream(
            "GET",
            request.url,
            headers={**request.headers(), "Connection": "close"},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            extensions={"trace": watchdog.trace},
        ) as response:
            if _declared_too_large(response, max_bytes):
                raise _TooLarge
            body = _BoundedBody(response.headers.get("content-encoding"), max_bytes)
            try:
                for chunk in response.iter_raw():
                    body.feed(chunk)
                    if time.monotonic() > deadline:
                        raise TimeoutError
            except httpx.StreamConsumed:  # an in-memory response (a mock transport): read already
                return _read_already(response, max_bytes)
            return FetchResponse(response.status_code, _headers(response), body.body())
    except Exception as exc:  # every transport failure becomes data for the pure core
        if watchdog.fired:
            return FetchResponse(error="timeout")
        return _transport_error(exc)


async def _fetch_async(
    client: httpx.AsyncClient, request: FetchRequest, timeout: float, max_bytes: int
) -> FetchResponse:
    async with client.stream(
        "GET", request.url, headers=request.headers(), timeout=httpx.Timeout(timeout), follow_redirects=False
    ) as response:
        if _declared_too_large(response, max_bytes):
            raise _TooLarge
        body = _BoundedBody(response.headers.get("content-encoding"), max_bytes)
        try:
            async for chunk in response.aiter_raw():
                body.feed(chunk)
        except httpx.StreamConsumed:
            return _read_already(response, max_bytes)
        return FetchResponse(response.status_code, _headers(response), body.body())


async def fetch_async(
    client: httpx.AsyncClient, request: FetchRequest, *, timeout: float, max_bytes: int
) -> FetchResponse:
    """Async twin of :func:`fetch_sync` (the caller picks the client: never a default one)."""
    import asyncio  # here: only async callers need it, and they have it loaded

    try:
        return await asyncio.wait_for(_fetch_async(client, request, timeout, max_bytes), 2 * timeout)
    except Exception as exc:
        return _transport_error(exc)
