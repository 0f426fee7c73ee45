"""Issue 10 §1, SSRF guard: internal addresses in every spelling, at the URL level (any
client) and at connect time (the bridge's own clients, after DNS, per connection).

No real DNS and no real connection: ``socket.getaddrinfo`` is replaced by a fake
resolver, and the connect step by a recorder that refuses.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import httpx
import pytest

from federation import Bridge
from federation._netaddr import host_refusal, literal_address
from federation.config import is_loopback_url
from federation.errors import ConfigError, KeySetUnavailable
from federation.testing import MockIdP

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py

# Every spelling the resolver reads as an internal address (inet_aton forms, IPv6 forms).
INTERNAL_SPELLINGS = {
    "2130706433": "127.0.0.1",
    "127.1": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "0x7f.1": "127.0.0.1",
    "127.0.0.1.": "127.0.0.1",
    "0": "0.0.0.0",
    "10.1": "10.0.0.1",
    "2852039166": "169.254.169.254",
    "[::ffff:7f00:1]": "::ffff:7f00:1",
    "[::127.0.0.1]": "::7f00:1",
    "[0:0:0:0:0:ffff:127.0.0.1]": "::ffff:7f00:1",
    "[fe80::1%25eth0]": "fe80::1",
    "[64:ff9b::a9fe:a9fe]": "64:ff9b::a9fe:a9fe",
}


@pytest.mark.parametrize("host", list(INTERNAL_SPELLINGS))
def test_every_spelling_is_read_as_the_resolver_reads_it(host: str) -> None:
    assert str(literal_address(host)) == INTERNAL_SPELLINGS[host]
    assert host_refusal(host, allow_loopback=True, allow_private=False) is not None
    assert not is_loopback_url(f"http://{host}/jwks")


def test_only_standard_loopback_spellings_count_as_loopback() -> None:
    assert is_loopback_url("http://127.0.0.1:8080/jwks")
    assert is_loopback_url("http://[::1]:8080/jwks")
    assert is_loopback_url("http://localhost:8080/jwks")
    for host in ("127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "localhost.", "a.localhost"):
        assert not is_loopback_url(f"http://{host}/jwks"), host


def _discovery_to(idp: MockIdP, jwks_uri: str) -> tuple[httpx.MockTransport, list[str]]:
    """Discovery names ``jwks_uri``; any other host (the internal service) answers too."""
    urls: list[str] = []
    attacker_jwks = {"keys": [dict(idp.key_for().public_jwk)]}

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        if str(request.url) == idp.discovery_url:
            return httpx.Response(200, json={"issuer": idp.issuer, "jwks_uri": jwks_uri})
        if request.url.host != "idp.test":
            return httpx.Response(200, json=attacker_jwks)
        return idp.handler(request)

    return httpx.MockTransport(handler), urls


@pytest.mark.parametrize("host", list(INTERNAL_SPELLINGS))
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_discovery_may_not_point_an_injected_client_at_internal_addresses(
    idp: MockIdP, host: str, mode: str
) -> None:
    transport, urls = _discovery_to(idp, f"https://{host}/jwks")
    bridge = Bridge.from_dict(
        idp.bridge_config(discovery=True, keys={"allow_loopback_http": True}),
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        clock=idp.clock,
        on_event=lambda e: None,
    )
    token = idp.mint()
    with pytest.raises(KeySetUnavailable) as exc:
        bridge.verify(token) if mode == "sync" else asyncio.run(bridge.averify(token))
    assert exc.value.reason == "discovery_jwks_uri_not_public"
    assert urls == [idp.discovery_url]  # the internal address was never asked
    bridge.close()


def test_oddly_spelled_loopback_is_not_loopback_for_plain_http_from_discovery(idp: MockIdP) -> None:
    for jwks_uri, ok in (("http://127.1:8080/jwks", False), ("http://127.0.0.1:8080/jwks", True)):
        transport, urls = _discovery_to(idp, jwks_uri)
        bridge = Bridge.from_dict(
            idp.bridge_config(discovery=True, keys={"allow_loopback_http": True}),
            http_client=httpx.Client(transport=transport),
            clock=idp.clock,
            on_event=lambda e: None,
        )
        report = bridge.warm_up()
        assert report.ok is ok, jwks_uri
        assert len(urls) == (2 if ok else 1)
        bridge.close()


def test_private_networks_need_the_explicit_opt_in(idp: MockIdP) -> None:
    for knob, jwks_uri, ok in (
        (False, "https://10.0.0.5/jwks", False),
        (True, "https://10.0.0.5/jwks", True),
        (True, "https://[fd00::5]/jwks", True),
        (True, "https://169.254.169.254/jwks", False),  # link-local (cloud metadata): never
        (True, "https://2852039166/jwks", False),
        (True, "https://127.0.0.1/jwks", False),  # loopback is allow_loopback_http's, not this
    ):
        transport, _ = _discovery_to(idp, jwks_uri)
        bridge = Bridge.from_dict(
            idp.bridge_config(discovery=True, keys={"allow_private_networks": knob}),
            http_client=httpx.Client(transport=transport),
            clock=idp.clock,
            on_event=lambda e: None,
        )
        report = bridge.warm_up()
        assert report.ok is ok, (knob, jwks_uri)
        bridge.close()


@pytest.mark.parametrize(
    "url", ["https://2130706433/jwks", "http://127.1:8080/jwks", "https://0x0a000001/jwks"]
)
def test_configured_urls_must_spell_addresses_the_standard_way(idp: MockIdP, url: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Bridge.from_dict(
            {"issuers": [idp.issuer_config(jwks_uri=url)], "keys": {"allow_loopback_http": True}}
        )
    assert "standard form" in str(exc.value) or "https://" in str(exc.value)


# -- connect time: the bridge's own clients, after DNS -----------------------------------------------


class FakeNet:
    """A fake resolver and a connect recorder: nothing leaves the process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.resolved: list[str] = []
        self.connected: list[str] = []
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)
        monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", self.connect)
        monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", self.aconnect)
        monkeypatch.setattr(socket.socket, "connect", self.socket_connect)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.resolved.append(str(host))
        out = []
        for ip in self.answers.get(str(host), []):
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, int(port), 0, 0) if ":" in ip else (ip, int(port))
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        if not out:
            raise socket.gaierror(socket.EAI_NONAME, "unknown in this test")
        return out

    def connect(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connected.append(host)
        raise httpcore.ConnectError("refused by the test")

    async def aconnect(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connected.append(host)
        raise httpcore.ConnectError("refused by the test")

    def socket_connect(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a real socket connect was attempted")


@pytest.fixture
def fake_net(monkeypatch: pytest.MonkeyPatch) -> FakeNet:
    return FakeNet(monkeypatch)


@pytest.fixture
def own_bridge(idp: MockIdP) -> Iterator[Callable[..., Bridge]]:
    """A bridge with NO injected client: its own (guarded) clients do the fetching."""
    built: list[Bridge] = []

    def factory(**keys: Any) -> Bridge:
        config = idp.bridge_config(keys=keys) if keys else idp.bridge_config()
        bridge = Bridge.from_dict(config, clock=idp.clock, on_event=lambda e: None)
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


def _verify(bridge: Bridge, idp: MockIdP, mode: str) -> KeySetUnavailable:
    token = idp.mint()
    with pytest.raises(KeySetUnavailable) as exc:
        bridge.verify(token) if mode == "sync" else asyncio.run(bridge.averify(token))
    return exc.value


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "answer",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fd12:3456::1"],
        ["::ffff:169.254.169.254"],
        ["0.0.0.0"],
        ["93.184.216.34", "127.0.0.1"],  # one bad answer refuses the name (rebinding)
    ],
)
def test_a_name_resolving_to_an_internal_address_is_refused(
    idp: MockIdP, fake_net: FakeNet, own_bridge: Callable[..., Bridge], mode: str, answer: list[str]
) -> None:
    fake_net.answers["idp.test"] = answer
    exc = _verify(own_bridge(), idp, mode)
    assert exc.reason == "address_not_allowed"
    assert fake_net.resolved == ["idp.test"]
    assert fake_net.connected == []  # refused before any connect


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_public_answer_is_connected_to_by_its_vetted_ip(
    idp: MockIdP, fake_net: FakeNet, own_bridge: Callable[..., Bridge], mode: str
) -> None:
    fake_net.answers["idp.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    exc = _verify(own_bridge(), idp, mode)
    assert exc.reason == "connect_failed"  # the recorder refuses: no network in tests
    # the vetted addresses, in resolver order, not the name (which could re-resolve elsewhere)
    assert fake_net.connected == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_private_answers_with_the_opt_in_are_connected_to(
    idp: MockIdP, fake_net: FakeNet, own_bridge: Callable[..., Bridge], mode: str
) -> None:
    fake_net.answers["idp.test"] = ["10.0.0.5"]
    exc = _verify(own_bridge(allow_private_networks=True), idp, mode)
    assert exc.reason == "connect_failed"
    assert fake_net.connected == ["10.0.0.5"]


def test_loopback_answers_need_allow_loopback_http_and_a_loopback_name(fake_net: FakeNet, clock: Any) -> None:
    local = MockIdP(issuer="https://localhost", audience="my-client", clock=clock)
    fake_net.answers["localhost"] = ["127.0.0.1"]
    for allow, reason, connects in (
        (False, "address_not_allowed", []),
        (True, "connect_failed", ["127.0.0.1"]),
    ):
        fake_net.connected.clear()
        bridge = Bridge.from_dict(
            local.bridge_config(keys={"allow_loopback_http": allow}), clock=clock, on_event=lambda e: None
        )
        with pytest.raises(KeySetUnavailable) as exc:
            bridge.verify(local.mint())
        assert exc.value.reason == reason
        assert fake_net.connected == connects
        bridge.close()


def test_the_served_mock_still_works_with_the_own_client(idp: MockIdP) -> None:
    """Real loopback HTTP (the toolkit's server on 127.0.0.1) with allow_loopback_http."""
    with idp.serve():
        bridge = idp.bridge(served=True, on_event=lambda e: None)
        assert bridge.verify(idp.mint()).issuer == idp.issuer
        assert asyncio.run(bridge.averify(idp.mint(alg="RS256"))).issuer == idp.issuer
        bridge.close()
