"""The sign-in flows' transports (``Bridge.transport``/``async_transport``) bound what an
issuer's answer may hold: ``keys.max_response_bytes``, counted as the body streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from federation import Bridge
from federation.testing import MockIdP

BOUND = 64 * 1024
URL = "https://idp.example.test/token"


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """``size`` bytes in chunks, with no declared length; counts the chunks it gave."""

    def __init__(self, size: int, chunk: int = 4096) -> None:
        self.size, self.chunk, self.given = size, chunk, 0

    def _chunks(self) -> Iterator[bytes]:
        left = self.size
        while left > 0:
            self.given += 1
            yield b"x" * min(self.chunk, left)
            left -= self.chunk

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk


class Issuer:
    """A mock transport answering every request with ``respond()``; keeps the requests."""

    def __init__(self, respond: Any) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response: httpx.Response = self.respond()
        return response


def bridges(issuer: Issuer) -> Bridge:
    config = MockIdP().bridge_config(keys={"max_response_bytes": BOUND})
    return Bridge.from_dict(
        config,
        http_client=httpx.Client(transport=httpx.MockTransport(issuer)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(issuer)),
    )


def get_sync(bridge: Bridge) -> httpx.Response:
    with httpx.Client(transport=bridge.transport()) as client:
        return client.get(URL)


def get_async(bridge: Bridge) -> httpx.Response:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=bridge.async_transport()) as client:
            return await client.get(URL)

    return asyncio.run(get())


both = pytest.mark.parametrize("get", [get_sync, get_async], ids=["sync", "async"])


@both
def test_a_body_past_the_bound_is_refused_as_it_streams(get: Any) -> None:
    from federation._keys._bounded import ResponseTooLarge

    body = Body(100 * BOUND)  # 6.4 MiB, with no Content-Length
    with pytest.raises(ResponseTooLarge) as caught:
        get(bridges(Issuer(lambda: httpx.Response(200, stream=body))))
    assert isinstance(caught.value, httpx.ReadError)  # the flows' handling of a failed provider
    assert body.given == BOUND // body.chunk + 1  # it stopped reading at the bound
    assert "xxxx" not in str(caught.value)


@both
def test_a_body_at_the_bound_is_read_whole(get: Any) -> None:
    response = get(bridges(Issuer(lambda: httpx.Response(200, stream=Body(BOUND)))))
    assert response.status_code == 200 and response.content == b"x" * BOUND


@both
def test_a_declared_length_past_the_bound_reads_nothing(get: Any) -> None:
    from federation._keys._bounded import ResponseTooLarge

    body = Body(BOUND + 1)
    for length in (str(BOUND + 1), "1e9", "-1", "12 34"):
        issuer = Issuer(
            lambda length=length: httpx.Response(200, headers={"content-length": length}, stream=body)
        )
        with pytest.raises(ResponseTooLarge):
            get(bridges(issuer))
    assert body.given == 0


@both
def test_compressed_answers_are_never_asked_for_and_refused(get: Any) -> None:
    import gzip

    bomb = gzip.compress(b"{" * (200 * BOUND))  # a few KiB that decode to 12.5 MiB
    assert len(bomb) < BOUND
    issuer = Issuer(lambda: httpx.Response(200, headers={"content-encoding": "gzip"}, content=bomb))
    with pytest.raises(httpx.DecodingError):
        get(bridges(issuer))
    assert issuer.requests[0].headers["accept-encoding"] == "identity"
    plain = Issuer(lambda: httpx.Response(200, headers={"content-encoding": "identity"}, json={"ok": 1}))
    assert get(bridges(plain)).json() == {"ok": 1}


@pytest.fixture
def endless_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback HTTP/1.0 server whose answer never ends (no length: close-delimited);
    yields its URL and the number of chunks it managed to write."""
    import http.server
    import threading

    written = [0]

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for _ in range(100_000):  # 6.4 GB if nobody stops reading
                    self.wfile.write(b"[" * 65536)
                    written[0] += 1
            except OSError:  # the client hung up: the point
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", written
    finally:
        server.shutdown()
        server.server_close()


def test_the_own_transports_stop_an_endless_answer(endless_server: tuple[str, list[int]]) -> None:
    from federation._keys._bounded import ResponseTooLarge

    url, written = endless_server
    config = MockIdP().bridge_config(keys={"max_response_bytes": BOUND, "allow_loopback_http": True})
    bridge = Bridge.from_dict(config)  # no client injected: the address-checking transports
    with httpx.Client(transport=bridge.transport()) as client, pytest.raises(ResponseTooLarge):
        client.get(url)

    async def get() -> None:
        async with httpx.AsyncClient(transport=bridge.async_transport()) as client:
            await client.get(url)

    with pytest.raises(ResponseTooLarge):
        asyncio.run(get())
    assert written[0] < 1000  # both hung up long before the end (socket buffers hold a few)
