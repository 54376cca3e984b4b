"""auth.address_key: the one rate-limit key of a client address (issue 25, finding 14)."""

from __future__ import annotations

import pytest

from server.auth import address_key


@pytest.mark.parametrize(("addr", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("fe80::1%eth0", "fe80::/64"),
    ("unknown", "unknown"),
])
def test_ipv4_as_is_ipv6_by_its_64_mapped_ipv4_as_ipv4(addr: str, key: str) -> None:
    """IPv4 is its own key, IPv6 its /64 (any spelling), IPv4-mapped IPv6 the IPv4 address; a non-address as is."""
    assert address_key(addr) == key


def test_a_non_address_key_is_bounded() -> None:
    """Whatever a trusted proxy forwards, the key is at most 64 characters."""
    assert len(address_key("x" * 1000)) == 64
