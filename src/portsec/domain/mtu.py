"""A network's MTU (Neutron's ``net-mtu-writable``): what may be asked for, and what its subnets need."""

from __future__ import annotations

from collections.abc import Iterable

from portsec.domain import errors

# The largest MTU a network can have: portsec's networks are flat on br-int (Neutron's global_physnet_mtu).
MAX_MTU = 1500
IPV4_MIN_MTU = 68  # RFC 791
IPV6_MIN_MTU = 1280  # RFC 8200


def effective(requested: int) -> int:
    """The MTU a network gets: 0 (not given) means the largest; a larger one than that is refused.

    Neutron ML2's ``_get_network_mtu``.
    """
    if requested and requested > MAX_MTU:
        raise errors.InvalidInput(error_message=f"Requested MTU is too big, maximum is {MAX_MTU}")
    return requested or MAX_MTU


def check_change(network_id: str, mtu: int, subnet_versions: Iterable[int]) -> None:
    """A new MTU for a network with subnets must suit each (``_validate_change_network_mtu``)."""
    if mtu >= IPV6_MIN_MTU:
        return
    versions = set(subnet_versions)
    if not versions:
        return
    if mtu < IPV4_MIN_MTU:
        raise errors.NetworkMTUSubnetConflict(net_id=network_id, mtu=IPV4_MIN_MTU)
    if 6 in versions:
        raise errors.NetworkMTUSubnetConflict(net_id=network_id, mtu=IPV6_MIN_MTU)


def check_new_subnet(network_id: str, mtu: int, ip_version: int) -> None:
    """A subnet joins a network only if the network's MTU suits it (``_validate_subnet_network_mtu``)."""
    if not mtu or mtu >= IPV6_MIN_MTU:
        return
    if mtu < IPV4_MIN_MTU:
        raise errors.NetworkMTUSubnetConflict(net_id=network_id, mtu=IPV4_MIN_MTU)
    if ip_version == 6:
        raise errors.NetworkMTUSubnetConflict(net_id=network_id, mtu=IPV6_MIN_MTU)
