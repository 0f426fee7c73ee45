"""The bridge's own HTTP transports: every connection checks the address it goes to.

Owns: an httpcore network backend (sync and async) that resolves the host
with ``getaddrinfo``, refuses the connection when *any* resolved address is
not allowed (``_netaddr.address_refusal``: loopback only with
``keys.allow_loopback_http`` and a canonical loopback host, private-use only
with ``keys.allow_private_networks``, link-local / metadata / unspecified /
multicast never), and then connects to a vetted IP itself, so a DNS answer
cannot change between the check and the connect. TLS SNI and the ``Host``
header keep the name (httpcore passes ``server_hostname`` separately). A
refusal raises :class:`AddressNotAllowed`, which ``_http`` reports as the
``address_not_allowed`` fetch failure.

Applies to the clients the bridge builds for itself only: injected clients are
the application's (the URL-level checks still apply to them). The own clients
do not read proxy settings from the environment (a proxy would connect for
us, unchecked): inject a client to use a proxy.

Must not: interpret responses or decide what to fetch.
"""

from __future__ import annotations

import socket
import typing
from dataclasses import dataclass

import httpcore
import httpx

from .._netaddr import address_refusal, literal_address

__all__ = ["AddressNotAllowed", "ConnectPolicy", "guarded_async_transport", "guarded_transport"]

_SocketOptions = typing.Iterable[typing.Any] | None


class AddressNotAllowed(httpcore.ConnectError):
    """A connection to an address the key cache may not reach; ``reason`` is why.

    A connect error to httpcore, so httpx raises it as ``httpx.ConnectError`` (this as
    its ``__cause__``) to every other user of the transports: the sign-in flows' clients.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"address not allowed ({reason})")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ConnectPolicy:
    """Which resolved addresses the own clients may connect to (from ``KeysConfig``)."""

    allow_loopback: bool = False
    allow_private: bool = False

    def vet(self, host: str, infos: list[tuple[typing.Any, ...]]) -> list[str]:
        """The addresses to try, in resolver order; raise when any of them is not allowed."""
        addresses: list[str] = []
        for info in infos:
            ip = str(info[4][0])
            address = literal_address(ip)
            if address is None:  # not an IP at all: nothing we can vouch for
                raise AddressNotAllowed("unresolvable")
            refusal = address_refusal(
                address, host, allow_loopback=self.allow_loopback, allow_private=self.allow_private
            )
            if refusal is not None:
                # One bad answer refuses the name: a resolver mixing public and internal
                # addresses (DNS rebinding) must not get a chance to be tried.
                raise AddressNotAllowed(refusal)
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise httpcore.ConnectError(f"no address for {host}")
        return addresses


def _getaddrinfo(host: str, port: int) -> list[tuple[typing.Any, ...]]:
    try:
        return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve the host ({type(exc).__name__})") from None


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, policy: ConnectPolicy, inner: httpcore.NetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _SocketOptions = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for ip in self._policy.vet(host, _getaddrinfo(host, port)):
            try:
                return self._inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc  # try the next vetted address
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _SocketOptions = None
    ) -> httpcore.NetworkStream:
        raise AddressNotAllowed("unix_socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: ConnectPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _SocketOptions = None,
    ) -> httpcore.AsyncNetworkStream:
        import anyio.to_thread  # here: a sync process never loads anyio's thread pool (cold start)

        infos = await anyio.to_thread.run_sync(_getaddrinfo, host, port)
        last: Exception | None = None
        for ip in self._policy.vet(host, infos):
            try:
                return await self._inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _SocketOptions = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed("unix_socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: ConnectPolicy, backend: httpcore.NetworkBackend | None = None) -> None:
        # One TLS context for both pools: loading the CA bundle is most of a cold start's fetch.
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context)
        # httpx builds its pool without a network-backend option: build it again with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, network_backend=_GuardedBackend(policy, backend)
        )


class _AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: ConnectPolicy, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        ssl_context = httpx.create_ssl_context()  # one for both pools, as in the sync transport
        super().__init__(verify=ssl_context)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=_AsyncGuardedBackend(policy, backend)
        )


def guarded_transport(
    policy: ConnectPolicy, backend: httpcore.NetworkBackend | None = None
) -> httpx.HTTPTransport:
    """A sync transport whose every connection is vetted (``backend``: the real one, for tests)."""
    return _GuardedTransport(policy, backend)


def guarded_async_transport(
    policy: ConnectPolicy, backend: httpcore.AsyncNetworkBackend | None = None
) -> httpx.AsyncHTTPTransport:
    """Async twin of :func:`guarded_transport`."""
    return _AsyncGuardedTransport(policy, backend)
