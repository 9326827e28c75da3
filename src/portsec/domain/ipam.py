"""Subnet address management: gateways, allocation pools and address choice.

Pure: the caller says which addresses are taken (a predicate or a set), so the
store decides how to look that up cheaply.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Callable, Iterator, Sequence

from portsec.domain import errors
from portsec.domain.addresses import IPAddress, IPNetwork
from portsec.domain.model import AllocationPool, Subnet

RANDOM_PROBES = 16


def _ip(value: int, version: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def _usable_range(net: IPNetwork) -> tuple[int, int] | None:
    """First and last address a pool may hold: not the network or (IPv4) broadcast address."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if first == last:
        return first, last
    lo, hi = first + 1, last - (net.version == 4)
    return (lo, hi) if lo < hi else None


def default_gateway(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return str(_ip(int(net.network_address) + 1, net.version)) if net.num_addresses > 1 else str(net.network_address)


def default_pools(cidr: str, gateway_ip: str | None) -> tuple[AllocationPool, ...]:
    """The whole usable range, split around the gateway."""
    net = ipaddress.ip_network(cidr)
    bounds = _usable_range(net)
    if bounds is None:
        return ()
    lo, hi = bounds
    gw = int(ipaddress.ip_address(gateway_ip)) if gateway_ip else None
    ranges = [(lo, gw - 1), (gw + 1, hi)] if gw is not None and lo <= gw <= hi else [(lo, hi)]
    return tuple(AllocationPool(str(_ip(s, net.version)), str(_ip(e, net.version))) for s, e in ranges if s <= e)


def _pool_text(pool: AllocationPool) -> str:
    return f"{pool.start}-{pool.end}"


def check_gateway(cidr: str, gateway_ip: str | None) -> None:
    if gateway_ip is None:
        return
    net = ipaddress.ip_network(cidr)
    gw = ipaddress.ip_address(gateway_ip)
    if gw.version != net.version:
        raise errors.InvalidInput(error_message="Gateway IP version inconsistent with allocation pool version")
    if net.version == 4 and net.prefixlen < 31 and gw in (net.network_address, net.broadcast_address):
        raise errors.InvalidInput(error_message="Gateway is not valid on subnet")


def check_pools(cidr: str, pools: Sequence[AllocationPool], gateway_ip: str | None) -> None:
    """Neutron's pool rules: ordered, inside the CIDR, disjoint, not holding the gateway."""
    net = ipaddress.ip_network(cidr)
    bounds = _usable_range(net) or (int(net.network_address), int(net.broadcast_address))
    spans: list[tuple[int, int, AllocationPool]] = []
    for pool in pools:
        first, last = ipaddress.ip_address(pool.start), ipaddress.ip_address(pool.end)
        if first.version != net.version or last.version != net.version or int(first) > int(last):
            raise errors.InvalidAllocationPool(pool=_pool_text(pool))
        if int(first) < bounds[0] or int(last) > bounds[1]:
            raise errors.OutOfBoundsAllocationPool(pool=_pool_text(pool), subnet_cidr=cidr)
        spans.append((int(first), int(last), pool))
    spans.sort(key=lambda s: s[0])
    for (_, end_a, pool_a), (start_b, _, pool_b) in itertools.pairwise(spans):
        if start_b <= end_a:
            raise errors.OverlappingAllocationPools(
                pool_1=_pool_text(pool_a), pool_2=_pool_text(pool_b), subnet_cidr=cidr
            )
    if gateway_ip is not None:
        gw = int(ipaddress.ip_address(gateway_ip))
        for start, end, pool in spans:
            if start <= gw <= end:
                raise errors.GatewayConflictWithAllocationPools(ip_address=gateway_ip, pool=_pool_text(pool))


def _spans(subnet: Subnet) -> list[tuple[int, int]]:
    return [(int(ipaddress.ip_address(p.start)), int(ipaddress.ip_address(p.end))) for p in subnet.allocation_pools]


def random_candidates(subnet: Subnet, rng: random.Random, probes: int = RANDOM_PROBES) -> Iterator[str]:
    """Random addresses from the pools, weighted by pool size (cheap while pools are sparse)."""
    spans = _spans(subnet)
    sizes = [end - start + 1 for start, end in spans]
    if not spans:
        return
    for _ in range(probes):
        start, end = rng.choices(spans, weights=sizes)[0]
        yield str(_ip(rng.randint(start, end), subnet.ip_version))


def lowest_free(subnet: Subnet, is_used: Callable[[str], bool] | set[str]) -> str | None:
    """The first address of the pools that is not used; None when they are full."""
    used = is_used.__contains__ if isinstance(is_used, set) else is_used
    for start, end in _spans(subnet):
        for value in range(start, end + 1):
            address = str(_ip(value, subnet.ip_version))
            if not used(address):
                return address
    return None


def in_subnet(address: str, subnet: Subnet) -> bool:
    """A fixed IP may be anywhere in the CIDR except its IPv4 network/broadcast address."""
    ip = ipaddress.ip_address(address)
    net = ipaddress.ip_network(subnet.cidr)
    if ip.version != net.version or ip not in net:
        return False
    if net.version == 4 and net.prefixlen < 31:
        return ip not in (net.network_address, net.broadcast_address)
    return True


def canonical_ip(address: str) -> str:
    return str(ipaddress.ip_address(address))


def is_auto_address_subnet(subnet: Subnet) -> bool:
    """SLAAC and DHCPv6-stateless subnets give every port its EUI-64 address."""
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")
