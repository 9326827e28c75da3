"""Gateways, pools and address choice."""

import ipaddress
import random
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portsec.domain import errors, ipam
from portsec.domain.model import AllocationPool, Subnet


def _subnet(cidr, pools):
    now = datetime(2026, 1, 1)
    net = ipaddress.ip_network(cidr)
    return Subnet("s", "n", "p", "", net.version, cidr, None, tuple(pools), True, (), (), None, None, "", 0, now, now)


def test_default_gateway_and_pools_match_neutron():
    assert ipam.default_gateway("192.168.1.0/24") == "192.168.1.1"
    assert ipam.default_pools("192.168.1.0/24", "192.168.1.1") == (AllocationPool("192.168.1.2", "192.168.1.254"),)
    assert ipam.default_pools("10.0.0.0/24", "10.0.0.100") == (
        AllocationPool("10.0.0.1", "10.0.0.99"),
        AllocationPool("10.0.0.101", "10.0.0.254"),
    )
    assert ipam.default_pools("2001:db8::/64", "2001:db8::1") == (
        AllocationPool("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff"),
    )
    assert ipam.default_pools("10.0.0.0/31", None) == ()


@pytest.mark.parametrize(
    ("pools", "gateway", "kind"),
    [
        ([AllocationPool("10.0.0.20", "10.0.0.10")], None, errors.InvalidAllocationPool),
        ([AllocationPool("10.0.0.0", "10.0.0.10")], None, errors.OutOfBoundsAllocationPool),
        ([AllocationPool("10.0.0.2", "10.0.0.10"), AllocationPool("10.0.0.5", "10.0.0.20")], None,
         errors.OverlappingAllocationPools),
        ([AllocationPool("10.0.0.1", "10.0.0.10")], "10.0.0.1", errors.GatewayConflictWithAllocationPools),
    ],
)  # fmt: skip
def test_bad_pools(pools, gateway, kind):
    with pytest.raises(kind):
        ipam.check_pools("10.0.0.0/24", pools, gateway)


def test_gateway_cannot_be_the_network_address():
    with pytest.raises(errors.InvalidInput, match="Gateway is not valid on subnet"):
        ipam.check_gateway("10.0.0.0/24", "10.0.0.0")


@given(st.integers(2, 200), st.integers(0, 60), st.sets(st.integers(0, 255)), st.randoms())
def test_chosen_addresses_are_in_the_pools_and_free(start, length, used_octets, rng):
    end = min(start + length, 254)
    subnet = _subnet("10.0.0.0/24", [AllocationPool(f"10.0.0.{start}", f"10.0.0.{end}")])
    used = {f"10.0.0.{o}" for o in used_octets}
    for candidate in ipam.random_candidates(subnet, random.Random(rng.random())):
        assert start <= int(candidate.split(".")[-1]) <= end
    lowest = ipam.lowest_free(subnet, used)
    free = [f"10.0.0.{o}" for o in range(start, end + 1) if f"10.0.0.{o}" not in used]
    assert lowest == (free[0] if free else None)
