"""``Bridge.transport`` / ``Bridge.async_transport``: the sign-in flows' outbound HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from federation import Bridge
from federation.testing import MockIdP


def _bridge(**options: object) -> Bridge:
    return Bridge.from_dict(MockIdP().bridge_config(), **options)  # type: ignore[arg-type]


def test_an_injected_client_carries_the_sign_in_calls_too() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    async_client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    bridge = _bridge(http_client=client, async_http_client=async_client)
    with httpx.Client(transport=bridge.transport()) as sync:
        assert sync.get("https://idp.example.test/sync").status_code == 204

    async def fetch() -> None:
        async with httpx.AsyncClient(transport=bridge.async_transport()) as outbound:
            assert (await outbound.get("https://idp.example.test/async")).status_code == 204

    asyncio.run(fetch())
    assert seen == ["https://idp.example.test/sync", "https://idp.example.test/async"]


def test_the_own_transports_refuse_private_addresses_like_the_key_fetches() -> None:
    bridge = _bridge()  # allow_private_networks and allow_loopback_http are off by default
    with (
        httpx.Client(transport=bridge.transport()) as client,
        pytest.raises(httpx.ConnectError, match="address not allowed"),
    ):
        client.get("http://127.0.0.1:9/token")

    async def fetch() -> None:
        async with httpx.AsyncClient(transport=bridge.async_transport()) as client:
            await client.get("http://10.255.255.1:9/token")

    with pytest.raises(httpx.ConnectError, match="address not allowed"):
        asyncio.run(fetch())


def test_the_own_transports_load_the_ca_bundle_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx's own pool and the address-checking one share one TLS context: the CA bundle
    # load is the largest part of a cold start's first key fetch.
    import ssl

    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    bridge = _bridge()
    transport = bridge.transport()
    assert len(loads) == 1
    async_transport = bridge.async_transport()
    assert len(loads) == 2
    # Both pools of each transport verify certificates with that one context.
    for one in (transport, async_transport):
        context = one.inner._pool._ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
