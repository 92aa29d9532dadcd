"""SSRF protection for subscription URLs: where a customer's URL may make callgate connect.

A host is resolved and **every** address it resolves to must be public; private (RFC 1918, ULA), loopback,
link-local (incl. cloud metadata), CGNAT (100.64/10), multicast, reserved, unspecified, documentation and
benchmarking ranges, and IPv4 hidden in IPv6 (mapped, 6to4, NAT64) are refused, unless the operator allows
private targets or lists networks. The check runs when a subscription is created and again before every
delivery (DNS can change), and the delivery connects to the address that was checked, so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_EXTRA_BLOCKED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",
        "2001:db8::/32",
        "fc00::/7",
    )
)


class BlockedTarget(Exception):
    """The URL resolves to an address the SSRF policy refuses (or does not resolve)."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    allow_private: bool = False
    allowed: tuple[Network, ...] = ()

    @classmethod
    def build(cls, allow_private: bool, cidrs: Sequence[str]) -> TargetPolicy:
        return cls(allow_private, tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def permits(self, address: IPAddress) -> bool:
        if self.allow_private or any(address in net for net in self.allowed):
            return True
        return is_public(address)


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
        if address.teredo is not None:
            return False
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    return not any(address in net for net in _EXTRA_BLOCKED if net.version == address.version)


def check_url_shape(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an acceptable subscription URL, or a 422."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed("url must be http or https", field="url")
    if not parts.hostname:
        raise ValidationFailed("url has no host", field="url")
    if parts.username or parts.password:
        raise ValidationFailed("url must not carry credentials", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationFailed("url has an invalid port", field="url") from None
    return parts.scheme, parts.hostname, port


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedTarget(f"{host} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedTarget(f"{host} does not resolve")
    return addresses


async def checked_address(policy: TargetPolicy, url: str) -> IPAddress:
    """The address to connect to for ``url``: every resolved address must be allowed; the first is used."""
    _, host, port = check_url_shape(url)
    addresses = await resolve(host, port)
    refused = [a for a in addresses if not policy.permits(a)]
    if refused:
        raise BlockedTarget(f"{host} resolves to a non-public address ({refused[0]})")
    return addresses[0]
