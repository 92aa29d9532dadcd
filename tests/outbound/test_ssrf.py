"""SSRF policy: which addresses a subscription URL may reach."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.errors import ValidationFailed
from gateway.outbound.ssrf import BlockedTarget, TargetPolicy, check_url_shape, checked_address, is_public

pytestmark = pytest.mark.anyio

BLOCKED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",
    "64:ff9b::a00:1",
    "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not TargetPolicy().permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allow_lists() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert TargetPolicy(allow_private=True).permits(loopback)
    assert TargetPolicy.build(False, ["127.0.0.0/8"]).permits(loopback)
    assert not TargetPolicy.build(False, ["10.0.0.0/8"]).permits(loopback)


async def test_resolved_names_are_checked() -> None:
    with pytest.raises(BlockedTarget):
        await checked_address(TargetPolicy(), "http://localhost:9/hook")
    with pytest.raises(BlockedTarget):
        await checked_address(TargetPolicy(), "https://[::1]/hook")
    allowed = await checked_address(
        TargetPolicy.build(False, ["127.0.0.0/8", "::1/128"]), "http://localhost:9/"
    )
    assert allowed.is_loopback
    with pytest.raises(BlockedTarget):
        await checked_address(TargetPolicy(), "http://does-not-exist.invalid/")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/hook", "http://user:pw@example.com/", "http://:80/"]
)
def test_url_shape(url: str) -> None:
    with pytest.raises(ValidationFailed):
        check_url_shape(url)
