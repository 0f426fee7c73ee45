"""HTTP hygiene of key fetches (FETCH-03/04/06, KEY-13): the transport shells
``fetch_sync``/``fetch_async`` unit-tested on ``httpx.MockTransport``, and the
same failures end to end through a cold bridge (``KeySetUnavailable`` with the
failure reason, exact request counts)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from federation import Bridge
from federation._keys._http import FetchRequest, FetchResponse, fetch_async, fetch_sync
from federation.errors import ConfigError, InvalidToken, KeySetUnavailable
from federation.events import FETCH_FAILED, Event
from federation.testing import FrozenClock, MockIdP

URL = "https://idp.test/jwks"
Handler = Callable[[httpx.Request], httpx.Response]


# Key generation dominates the run time (RSA ~40 ms): every test gets its own
# MockIdP, but the n-th key of an algorithm generated in a test is the same

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fetch(
    mode: str,
    handler: Handler,
    *,
    timeout: float = 5.0,
    max_bytes: int = 4096,
    forced: bool = False,
    purpose: Any = "jwks",
) -> FetchResponse:
    transport = httpx.MockTransport(handler)
    request = FetchRequest(URL, purpose, forced)
    if mode == "sync":
        with httpx.Client(transport=transport) as client:
            return fetch_sync(client, request, timeout=timeout, max_bytes=max_bytes)

    async def run() -> FetchResponse:
        async with httpx.AsyncClient(transport=transport) as client:
            return await fetch_async(client, request, timeout=timeout, max_bytes=max_bytes)

    return asyncio.run(run())


def stream(mode: str, chunks: int, size: int, pulled: list[int], delay: float = 0.0) -> Any:
    """A chunked body without Content-Length; ``pulled`` counts chunks actually read."""

    def sync_body() -> Iterator[bytes]:
        for _ in range(chunks):
            if delay:
                time.sleep(delay)
            pulled.append(1)
            yield b" " * size

    async def async_body() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            if delay:
                await asyncio.sleep(delay)
            pulled.append(1)
            yield b" " * size

    return sync_body() if mode == "sync" else async_body()


def jwks_response(idp: MockIdP, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=idp.jwks(), headers={"content-type": "application/json", **headers})


# -- the transport shells -------------------------------------------------------------------------


def test_request_headers(mode: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"keys": []})

    fetch(mode, handler)
    fetch(mode, handler, forced=True)
    plain, forced = seen
    for request in seen:
        assert request.method == "GET"
        assert str(request.url) == URL
        assert request.headers["accept"] == "application/json, application/jwk-set+json"
        assert request.headers["user-agent"] == "federation-bridge"
    assert "cache-control" not in plain.headers
    assert forced.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed(mode: str, status: int) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(status, headers={"location": "https://attacker.test/jwks"})

    response = fetch(mode, handler)
    assert (response.status, response.error) == (status, None)
    assert response.headers["location"] == "https://attacker.test/jwks"
    assert seen == [URL]


def test_ok_response_is_returned_as_bytes(mode: str) -> None:
    body = json.dumps({"keys": []}).encode()
    response = fetch(
        mode, lambda r: httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    )
    assert (response.status, response.body, response.error) == (200, body, None)
    assert response.headers["content-type"] == "application/json"  # names lower-cased


def test_declared_oversized_body_is_refused_unread(mode: str) -> None:
    pulled: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-length": str(10**9)}, content=stream(mode, 10, 10, pulled)
        )

    response = fetch(mode, handler, max_bytes=4096)
    assert response.error == "response_too_large"
    assert response.status == 0
    assert pulled == []  # refused on the declared length, before reading


def test_streamed_oversized_body_is_cut_off(mode: str) -> None:
    pulled: list[int] = []
    response = fetch(
        mode, lambda r: httpx.Response(200, content=stream(mode, 1000, 100, pulled)), max_bytes=4096
    )
    assert response.error == "response_too_large"
    assert 41 <= len(pulled) < 1000  # stopped just past the cap, not at the end


def test_body_at_the_cap_is_accepted(mode: str) -> None:
    pulled: list[int] = []
    response = fetch(
        mode, lambda r: httpx.Response(200, content=stream(mode, 40, 100, pulled)), max_bytes=4000
    )
    assert (response.status, len(response.body), response.error) == (200, 4000, None)


def test_gzip_bomb_is_capped_after_decoding(mode: str) -> None:
    bomb = gzip.compress(b" " * 1_000_000)
    assert len(bomb) < 4096

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"content-encoding": "gzip"})

    assert fetch(mode, handler, max_bytes=4096).error == "response_too_large"


def test_bad_content_encoding(mode: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip at all", headers={"content-encoding": "gzip"})

    assert fetch(mode, handler).error == "bad_content_encoding"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ReadTimeout, "timeout"),
        (httpx.ConnectTimeout, "timeout"),
        (httpx.PoolTimeout, "timeout"),
        (httpx.ConnectError, "connect_failed"),
        (httpx.RemoteProtocolError, "transport_error:RemoteProtocolError"),
    ],
)
def test_transport_failures_become_data(mode: str, exc: type[httpx.TransportError], reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    assert fetch(mode, handler) == FetchResponse(error=reason)


def test_slow_drip_hits_the_total_deadline(mode: str) -> None:
    pulled: list[int] = []
    response = fetch(
        mode,
        lambda r: httpx.Response(200, content=stream(mode, 50, 1, pulled, delay=0.02)),
        timeout=0.01,
        max_bytes=4096,
    )
    assert response.error == "timeout"
    assert len(pulled) < 50


# -- end to end through a cold bridge ---------------------------------------------------------------


@pytest.fixture
def build(idp: MockIdP, events: list[Event]) -> Iterator[Callable[..., Bridge]]:
    built: list[tuple[Bridge, httpx.Client]] = []

    def factory(handler: Handler, *, keys: dict[str, Any] | None = None) -> Bridge:
        transport = httpx.MockTransport(handler)
        client = httpx.Client(transport=transport)
        config: dict[str, Any] = {"issuers": [idp.issuer_config()]}
        if keys:
            config["keys"] = keys
        bridge = Bridge.from_dict(
            config,
            http_client=client,
            async_http_client=httpx.AsyncClient(transport=transport),
            clock=idp.clock,
            on_event=events.append,
        )
        built.append((bridge, client))
        return bridge

    yield factory
    for bridge, client in built:
        bridge.close()
        client.close()


def verify(bridge: Bridge, token: str, mode: str) -> Any:
    return bridge.verify(token) if mode == "sync" else asyncio.run(bridge.averify(token))


def assert_unavailable(bridge: Bridge, idp: MockIdP, mode: str, reason: str, events: list[Event]) -> None:
    with pytest.raises(KeySetUnavailable) as exc:
        verify(bridge, idp.mint(), mode)
    assert not isinstance(exc.value, InvalidToken)
    assert (exc.value.code, exc.value.reason, exc.value.issuer) == ("keyset_unavailable", reason, idp.issuer)
    assert [(e.name, e.detail["reason"]) for e in events] == [(FETCH_FAILED, reason)]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_bridge_refuses_redirects(
    idp: MockIdP, build: Callable[..., Bridge], events: list[Event], mode: str, status: int
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "idp.test":
            return httpx.Response(status, headers={"location": "https://attacker.test/jwks"})
        return jwks_response(idp)  # valid keys: following the redirect would "work"

    bridge = build(handler)
    assert_unavailable(bridge, idp, mode, "redirect_refused", events)
    assert seen == [idp.jwks_uri]


@pytest.mark.parametrize("status", [201, 204, 400, 401, 403, 404, 429, 500, 502, 503])
def test_bridge_refuses_non_200(
    idp: MockIdP, build: Callable[..., Bridge], events: list[Event], mode: str, status: int
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=idp.jwks(), headers={"content-type": "application/json"})

    assert_unavailable(build(handler), idp, mode, f"http_{status}", events)
    assert len(seen) == 1


def test_bridge_refuses_declared_oversized_body(
    idp: MockIdP, build: Callable[..., Bridge], events: list[Event], mode: str
) -> None:
    padded = json.dumps({**idp.jwks(), "padding": "x" * 2000}).encode()
    assert len(padded) > 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=padded, headers={"content-type": "application/json"})

    assert_unavailable(
        build(handler, keys={"max_response_bytes": 1024}), idp, mode, "response_too_large", events
    )


def test_bridge_refuses_streamed_oversized_body(
    idp: MockIdP, build: Callable[..., Bridge], events: list[Event], mode: str
) -> None:
    pulled: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream(mode, 100_000, 1024, pulled))

    assert_unavailable(
        build(handler, keys={"max_response_bytes": 4096}), idp, mode, "response_too_large", events
    )
    assert len(pulled) <= 5


def test_bridge_accepts_a_key_set_within_the_size_cap(
    idp: MockIdP, build: Callable[..., Bridge], mode: str
) -> None:
    body = json.dumps(idp.jwks()).encode()
    bridge = build(lambda r: httpx.Response(200, content=body), keys={"max_response_bytes": len(body) + 1024})
    assert verify(bridge, idp.mint(), mode).issuer == idp.issuer


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8", "application/xhtml+xml"])
def test_bridge_refuses_html(
    idp: MockIdP, build: Callable[..., Bridge], events: list[Event], mode: str, content_type: str
) -> None:
    # Even a valid JWK Set is refused when labelled as HTML (an error page in disguise).
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=json.dumps(idp.jwks()).encode(), headers={"content-type": content_type}
        )

    assert_unavailable(build(handler), idp, mode, "not_json", events)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/jwk-set+json", "application/json; charset=utf-8", None]
)
def test_bridge_accepts_json_content_types(
    idp: MockIdP, build: Callable[..., Bridge], mode: str, content_type: str | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": content_type} if content_type else {}
        return httpx.Response(200, content=json.dumps(idp.jwks()).encode(), headers=headers)

    assert verify(build(handler), idp.mint(alg="ES256"), mode).algorithm == "ES256"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"garbage", "not_json"),
        (b"", "not_json"),
        (b"<html><body>Service Unavailable</body></html>", "not_json"),
        (b'{"keys": [], "keys": []}', "not_json"),  # duplicate member
        (b"[]", "not_json"),  # top-level array
        (b'[{"keys": []}]', "not_json"),
        (b'"keys"', "not_json"),
        (b'{"keys": [NaN]}', "not_json"),
        (b'\xef\xbb\xbf{"keys": []}', "not_json"),  # BOM
        (b'{"keys": {}}', "not_a_jwk_set"),
        (b'{"keys": "none"}', "not_a_jwk_set"),
        (b"{}", "not_a_jwk_set"),
        (b'{"keys": []}', "no_usable_key"),
        (b'{"keys": [{"kty": "oct", "k": "AA"}]}', "no_usable_key"),
    ],
)
def test_bridge_refuses_bad_documents(
    idp: MockIdP, build: Callable[..., Bridge], events: list[Event], mode: str, body: bytes, reason: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    assert_unavailable(build(handler), idp, mode, reason, events)


def test_duplicate_members_inside_a_key_are_refused(
    idp: MockIdP, build: Callable[..., Bridge], mode: str
) -> None:
    jwk = idp.key_for("ES256").public_jwk
    members = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in jwk.items())
    body = ('{"keys": [{' + members + ', "kid": "shadow"}]}').encode()
    bridge = build(lambda r: httpx.Response(200, content=body))
    with pytest.raises(KeySetUnavailable) as exc:
        verify(bridge, idp.mint(alg="ES256"), mode)
    assert exc.value.reason == "not_json"


@pytest.mark.parametrize(
    ("exc", "reason"), [(httpx.ReadTimeout, "timeout"), (httpx.ConnectError, "connect_failed")]
)
def test_bridge_reports_network_failures(
    idp: MockIdP,
    build: Callable[..., Bridge],
    events: list[Event],
    mode: str,
    exc: type[httpx.TransportError],
    reason: str,
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise exc("simulated", request=request)

    assert_unavailable(build(handler), idp, mode, reason, events)
    assert calls == [1]


def test_bridge_sends_the_accept_header(idp: MockIdP, make_bridge: Callable[..., Bridge], mode: str) -> None:
    verify(make_bridge(), idp.mint(), mode)
    (request,) = idp.requests_to("jwks")
    assert request.headers["accept"] == "application/json, application/jwk-set+json"
    assert request.headers["user-agent"] == "federation-bridge"


def test_key_set_larger_than_max_keys_is_refused(
    idp: MockIdP, make_bridge: Callable[..., Bridge], events: list[Event], mode: str, clock: FrozenClock
) -> None:
    assert len(idp.jwks()["keys"]) == 2
    bridge = make_bridge(keys={"max_keys": 2})
    verify(bridge, idp.mint(), mode)  # exactly max_keys: fine
    idp.rotate_keys()  # now three entries
    clock.advance(300)
    verify(bridge, idp.mint(alg="ES256"), mode)  # refused refresh: the last good set serves (stale)
    assert [e.detail.get("reason") for e in events if e.name == FETCH_FAILED] == ["too_many_keys"]
    assert len(idp.requests_to("jwks")) == 2


def test_cold_key_set_larger_than_max_keys_is_unavailable(
    idp: MockIdP, make_bridge: Callable[..., Bridge], events: list[Event], mode: str
) -> None:
    idp.serve_jwks({"keys": [dict(k.public_jwk) for k in idp.keys] * 51})  # 102 entries > 100
    assert_unavailable(make_bridge(), idp, mode, "too_many_keys", events)


# -- URLs refused at configuration time ------------------------------------------------------------------


def config(jwks_uri: str, *, allow: bool | None = None, issuer: str = "https://idp.test") -> dict[str, Any]:
    data: dict[str, Any] = {
        "issuers": [{"provider": "oidc", "issuer": issuer, "audiences": ["a"], "jwks_uri": jwks_uri}]
    }
    if allow is not None:
        data["keys"] = {"allow_loopback_http": allow}
    return data


@pytest.mark.parametrize(
    ("jwks_uri", "allow"),
    [
        ("http://idp.test/jwks", None),
        ("http://idp.test/jwks", True),  # not loopback
        ("http://127.0.0.1:8080/jwks", None),  # loopback, but not allowed
        ("http://127.0.0.1:8080/jwks", False),
        ("http://localhost/jwks", False),
        ("http://127.0.0.1.nip.io/jwks", True),  # a name, not a loopback address
        ("http://169.254.169.254/latest/meta-data/", True),
        ("file:///etc/passwd", True),
        ("ftp://idp.test/jwks", True),
        ("https:///jwks", None),  # no host
        ("idp.test/jwks", None),
    ],
)
def test_unsafe_jwks_uri_is_refused_at_config_time(jwks_uri: str, allow: bool | None) -> None:
    with pytest.raises(ConfigError) as exc:
        Bridge.from_dict(config(jwks_uri, allow=allow))
    assert exc.value.code == "config_error"
    assert "must be an https:// URL" in exc.value.message


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://127.0.0.1:8080/jwks",
        "http://127.9.9.9/jwks",
        "http://localhost:3000/jwks",
        "http://[::1]:8080/jwks",
    ],
)
def test_loopback_http_allowed_only_with_the_flag(jwks_uri: str) -> None:
    bridge = Bridge.from_dict(config(jwks_uri, allow=True))
    assert bridge.issuers == ("https://idp.test",)
    bridge.close()


def test_https_jwks_uri_is_accepted() -> None:
    Bridge.from_dict(config("https://idp.test/keys")).close()


def test_loopback_http_issuer_end_to_end(clock: FrozenClock, mode: str) -> None:
    local = MockIdP(issuer="http://127.0.0.1:8080", clock=clock)
    entry = {
        "provider": "oidc",
        "issuer": local.issuer,
        "audiences": [local.audience],
        "jwks_uri": local.jwks_uri,
    }
    with pytest.raises(ConfigError, match="must be an https:// URL"):
        local.bridge(config={"issuers": [entry]})
    bridge = local.bridge(config={"issuers": [entry], "keys": {"allow_loopback_http": True}})
    assert verify(bridge, local.mint(), mode).issuer == "http://127.0.0.1:8080"
    assert len(local.requests_to("jwks")) == 1
    bridge.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_server_trickling_its_answer_cannot_hold_a_sync_caller(where: str) -> None:
    """httpx's timeouts are per read: a server sending its headers a byte at a time, each
    byte within the read timeout, held ``fetch_sync`` (and every verify waiting on it)
    for as long as it liked. The total budget (twice ``timeout``) is now enforced by
    shutting the socket down. The server trickles for ever, so only the budget ends it."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = (
                b"HTTP/1.1 200 OK\r\nX-Pad: "
                if where == "headers"
                else (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: application/json\r\n\r\n")
            )
            try:
                conn.sendall(head)
                while not stop.wait(0.05):  # one byte well within every read timeout
                    conn.sendall(b"a")
            except OSError:
                pass  # the client shut the connection down: what the test waits for

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    result: list[FetchResponse] = []
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
    with httpx.Client() as client:
        caller = threading.Thread(
            target=lambda: result.append(
                fetch_sync(client, FetchRequest(url, "jwks"), timeout=0.3, max_bytes=1 << 20)
            ),
            daemon=True,
        )
        caller.start()
        caller.join(30)  # a liveness bound, far past the 0.6 s budget: not a measurement
        stop.set()
    listener.close()
    assert not caller.is_alive(), "fetch_sync is still reading from a trickling server"
    assert [r.error for r in result] == ["timeout"]


@pytest.mark.parametrize("fetcher", ["sync", "async"])
def test_a_gzip_bomb_over_the_network_is_never_decoded_whole(fetcher: str) -> None:
    """httpx decodes a whole network chunk at once: 250 KB of gzip became 250 MB in memory
    before the size cap looked. The raw bytes are now decoded with zlib's output bound, so
    what is held never passes the cap (measured in allocations, not in time)."""
    import socket
    import threading
    import tracemalloc

    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB of zeros, ~64 KB
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
            try:
                conn.sendall(head.encode() + bomb)
            except OSError:
                pass  # the client stopped reading at the cap

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
    tracemalloc.start()
    try:
        if fetcher == "sync":
            with httpx.Client() as client:
                result = fetch_sync(client, FetchRequest(url, "jwks"), timeout=10, max_bytes=256 * 1024)
        else:

            async def run() -> FetchResponse:
                async with httpx.AsyncClient() as client:
                    return await fetch_async(
                        client, FetchRequest(url, "jwks"), timeout=10, max_bytes=256 * 1024
                    )

            result = asyncio.run(run())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        listener.close()
    assert result.error == "response_too_large"
    assert peak < 16 << 20, f"{peak >> 20} MiB held for a 256 KiB cap"


def test_a_zlib_deflate_key_set_still_decodes() -> None:
    import zlib

    from federation._keys._http import _BoundedBody

    document = json.dumps({"keys": []}).encode()
    body = _BoundedBody("deflate", 1024)
    body.feed(zlib.compress(document))
    assert body.body() == document
    with pytest.raises(httpx.DecodingError):
        _BoundedBody("br", 1024)
