"""SSRF protection for subscription and CRM URLs: where a customer's URL may make callgate connect.

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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

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


def check_url_shape(url: str, field: str = "url") -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an acceptable subscription URL, or a 422."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed(f"{field} must be http or https", field=field)
    if not parts.hostname:
        raise ValidationFailed(f"{field} has no host", field=field)
    if parts.username or parts.password:
        raise ValidationFailed(f"{field} must not carry credentials", field=field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationFailed(f"{field} has an invalid port", field=field) from None
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


def pinned_request(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, with the Host header and TLS server name of the original."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc)), {"host": host_header}, extensions


ALLOW_HINT = (
    "for local testing the operator allows the network: "
    """CALLGATE_ALLOWED_TARGET_CIDRS='["127.0.0.0/8"]' (or CALLGATE_ALLOW_PRIVATE_TARGETS=true), """
    "then restarts"
)


def blocked_error(exc: BlockedTarget) -> str:
    """A delivery's error for a refused target, saying how to allow it when it is a private address."""
    text = f"blocked: {exc}"
    return f"{text}; {ALLOW_HINT}" if "non-public" in text else text


LOOKUP_BUDGET = 5.0  # seconds of DNS for blocked_hosts


async def blocked_hosts(policy: TargetPolicy, urls: Sequence[str]) -> dict[str, str]:
    """Of ``urls``, the hosts the policy refuses now, with the reason (``LOOKUP_BUDGET`` s of lookups)."""
    refused: dict[str, str] = {}

    async def one(url: str) -> None:
        try:
            await checked_address(policy, url)
        except BlockedTarget as exc:
            refused[urlsplit(url).hostname or url] = str(exc)
        except ValidationFailed as exc:
            refused[urlsplit(url).hostname or url] = exc.message

    try:
        async with asyncio.timeout(LOOKUP_BUDGET):
            await asyncio.gather(*(one(u) for u in urls))
    except TimeoutError:
        pass
    return refused


async def check_target(policy: TargetPolicy, url: str, field: str = "url") -> None:
    """For the API: a URL a customer gives (a subscription, a CRM base URL) is refused with a 422 now,
    not at its first delivery."""
    check_url_shape(url, field)
    try:
        await checked_address(policy, url)
    except BlockedTarget as exc:
        raise ValidationFailed(f"{field} refused: {exc}; {ALLOW_HINT}", field=field) from None


class GuardedTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that checks every request's host against the policy and connects to the
    checked address (Host header and TLS server name of the original): for clients that call many paths
    of one base URL (the CRM connectors), so each of their requests is guarded like a delivery."""

    def __init__(self, policy: TargetPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            address = await checked_address(self.policy, str(request.url))
        except BlockedTarget as exc:
            raise httpx.ConnectError(f"blocked: {exc}", request=request) from None
        url, host, extensions = pinned_request(str(request.url), address)
        request.url = httpx.URL(url)
        request.headers["host"] = host["host"]
        request.extensions = {**request.extensions, **extensions}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
