"""Neutron's validator messages for MACs, IPs and CIDRs, word for word."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portsec.domain.addresses import (
    eui64,
    link_local,
    mac_error,
    multicast_error,
    normalize_mac,
    pair_ip_error,
    subnet_error,
)


@pytest.mark.parametrize("mac", ["fa:16:3e:00:00:01", "FA:16:3E:00:00:01", "fa-16-3e-00-00-01", "fa163e000001"])
def test_mac_forms_netaddr_accepts_are_valid(mac):
    assert mac_error(mac) is None
    assert normalize_mac(mac) == "fa:16:3e:00:00:01"


@pytest.mark.parametrize(
    "mac", ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "fa:16:3e:00:00", " fa:16:3e:00:00:01", None, 5]
)
def test_bad_macs_get_neutrons_message(mac):
    assert mac_error(mac) == f"'{mac}' is not a valid MAC address"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.1", None),
        ("2001:db8::1", None),
        ("10.0.0.1/24", None),  # host bits are allowed in a pair
        ("10.0.0.1222", "'10.0.0.1222' is not a valid IP address"),
        ("10.0.1", "'10.0.1' is not a valid IP address"),
        ("010.0.0.1", "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not a valid IP subnet"),
        ("fish", "'fish' is not a valid IP address"),
    ],
)
def test_pair_ip_messages(value, message):
    assert pair_ip_error(value) == message


def test_subnet_with_host_bits_names_the_network():
    assert (
        subnet_error("10.0.0.1/24") == "'10.0.0.1/24' isn't a recognized IP subnet cidr, '10.0.0.0/24' is recommended"
    )
    assert subnet_error("10.0.0.0/24") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("224.0.0.1", "IP 224.0.0.1 is a multicast address, which is not supported."),
        ("224.0.0.0/8", "Subnet 224.0.0.0/8 overlaps with multicast range 224.0.0.0/4, which is not supported."),
        ("ff02::1", "IP ff02::1 is a multicast address, which is not supported."),
        ("0.0.0.0/0", None),
        ("::/0", None),  # DESIGN §3: both "any" pairs are accepted
        ("192.168.1.0/24", None),
    ],
)
def test_multicast_pairs(value, message):
    assert multicast_error(value) == message


@given(st.binary(min_size=6, max_size=6))
def test_normalized_macs_are_lower_colon_form_and_stable(raw):
    mac = ":".join(f"{b:02X}" for b in raw)
    if mac_error(mac) is None:
        normal = normalize_mac(mac)
        assert normal == mac.lower()
        assert normalize_mac(normal.replace(":", "-")) == normal


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_link_local_is_the_eui64_of_the_mac_in_fe80(value: int) -> None:
    mac = ":".join(f"{value:012x}"[i : i + 2] for i in range(0, 12, 2))
    assert link_local(mac) == eui64(ipaddress.ip_network("fe80::/64"), mac)
