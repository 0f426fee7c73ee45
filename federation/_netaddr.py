"""Which network addresses the key cache may fetch from (the SSRF policy). Pure.

Owns: reading a URL host the way the system resolver does (every IPv4
spelling ``inet_aton`` accepts: decimal ``2130706433``, octal ``0177.0.0.1``,
hex ``0x7f000001``, short forms ``127.1``/``10.1``/``0``; IPv6 with zone ids;
a trailing dot), unwrapping IPv4 addresses embedded in IPv6 ones (mapped
``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4),
and the one policy both layers apply:

* a **global** address is allowed;
* a **private-use** address (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)
  only with ``keys.allow_private_networks`` (an on-prem IdP);
* a **loopback** address only with ``keys.allow_loopback_http`` *and* a host
  spelled canonically (``localhost``, ``127.0.0.1``, ``[::1]``), so an oddly
  spelled loopback never counts as "loopback";
* everything else (link-local 169.254/16 with the cloud metadata service,
  ``0.0.0.0``, multicast, reserved, ...) never.

The URL layer (:func:`host_refusal`) judges IP literals and ``localhost``;
the bridge's own HTTP clients judge the addresses a DNS name resolves to, per
connection (``_keys._connect``).

Must not: resolve names, open sockets, or import httpx.
"""

from __future__ import annotations

import ipaddress
import re
import socket

__all__ = [
    "Address",
    "address_refusal",
    "host_refusal",
    "is_canonical_loopback_host",
    "literal_address",
    "unwrap",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The BSD ``inet_aton`` forms: 1 to 4 parts, each decimal, octal or hex; the last
    part fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too)."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(p) for p in parts):
        return None
    values = [
        int(p, 16) if p[:2] in ("0x", "0X") else int(p, 8) if p.startswith("0") else int(p) for p in parts
    ]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number << 8 | v
    return ipaddress.IPv4Address(number << 8 * (4 - len(head)) | last)


def literal_address(host: str) -> Address | None:
    """The address ``host`` denotes when it is an IP literal in any spelling the
    resolver accepts (``[...]`` brackets, IPv6 zone ids and one trailing dot allowed)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])  # the zone id does not change the address
        except ValueError:
            return None
    host = host[:-1] if host.endswith(".") else host
    address = _inet_aton(host)
    if address is None and host and not host.strip("0123456789abcdefx."):
        try:  # belt and braces: whatever this platform's inet_aton reads as an address is one
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return address


def unwrap(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if any(address in net for net in _NAT64) or (packed[:12] == bytes(12) and int(address) > 1):
        return ipaddress.IPv4Address(packed[12:])  # NAT64, or IPv4-compatible ::a.b.c.d
    return address


def is_canonical_loopback_host(host: str) -> bool:
    """``localhost``, or a loopback address written the standard way (``127.0.0.1``, ``::1``)."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)  # refuses every odd spelling (and zone ids)
    except ValueError:
        return False
    return address.is_loopback and str(address) == host


def address_refusal(address: Address, host: str, *, allow_loopback: bool, allow_private: bool) -> str | None:
    """Why the key cache may not connect to ``address`` (reached through ``host``), or None."""
    address = unwrap(address)
    if address.is_loopback:
        if allow_loopback and is_canonical_loopback_host(host):
            return None
        return "loopback"
    if any(address in net for net in _PRIVATE):
        return None if allow_private else "private"
    if address.is_global and not address.is_multicast:
        return None
    return "internal"


def host_refusal(host: str, *, allow_loopback: bool, allow_private: bool) -> str | None:
    """Why a URL with ``host`` may not be fetched, judged before any resolution, or None.

    DNS names pass here (except ``localhost`` and ``*.localhost``); the bridge's
    own clients check what they resolve to.
    """
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return None if allow_loopback and host.lower() == "localhost" else "loopback"
    address = literal_address(host)
    if address is None:
        return None
    return address_refusal(address, host, allow_loopback=allow_loopback, allow_private=allow_private)
