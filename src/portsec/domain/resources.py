"""The attribute maps of networks, subnets and ports, in neutron-lib's order.

Order decides which error a request with several bad attributes gets, so it
follows neutron-lib's definitions (core attributes first, then extensions).
"""

from __future__ import annotations

import functools
from typing import Any

from portsec.domain import attributes as a
from portsec.domain.addresses import ip_error, is_multicast_mac, mac_error, subnet_error, uuid_error
from portsec.domain.attributes import NOT_SPECIFIED, REQUIRED, Attr, ResourceSpec
from portsec.domain.pairs import DEFAULT_MAX_PAIRS, validate_pairs

PLURALS = {"network": "networks", "subnet": "subnets", "port": "ports"}  # resource -> collection
VNIC_TYPES = (
    "normal", "direct", "macvtap", "baremetal", "direct-physical",
    "virtio-forwarder", "smart-nic", "vdpa", "remote-managed",
)  # fmt: skip
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
MAX_NAMESERVERS = 5
MAX_HOST_ROUTES = 20


def _fixed_ips_error(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for fixed IP: '{data}'"
    ips: list[Any] = []
    for fixed_ip in data:
        # Unknown keys are refused (Neutron ignores them): a typo such as
        # "ip-address" would otherwise silently allocate a random address.
        if not isinstance(fixed_ip, dict) or set(fixed_ip) - {"ip_address", "subnet_id"}:
            return f"Invalid data format for fixed IP: '{fixed_ip}'"
        if "ip_address" in fixed_ip:
            address = fixed_ip["ip_address"]
            msg = f"Duplicate IP address '{address}'" if address in ips else ip_error(address)
            if msg:
                return msg
            ips.append(address)
        if "subnet_id" in fixed_ip:
            msg = uuid_error(fixed_ip["subnet_id"])
            if msg:
                return msg
    return None


def _non_negative(data: Any) -> str | None:
    return f"'{data}' should be non-negative" if data < 0 else None


def _ip_or_none_error(data: Any) -> str | None:
    return None if data is None else ip_error(data)


def _pools_error(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for IP pool: '{data}'"
    for pool in data:
        msg = a.dict_keys_error(["start", "end"], pool)
        if msg:
            return msg
        for key in ("start", "end"):
            msg = ip_error(pool[key])
            if msg:
                return msg
    return None


def _nameservers_error(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for nameserver: '{data}'"
    if len(data) > MAX_NAMESERVERS:
        return f"'{data}' exceeds maximum of {MAX_NAMESERVERS} nameservers"
    seen: list[Any] = []
    for host in data:
        msg = ip_error(host)
        if msg:
            return f"'{host}' is not a valid nameserver. {msg}"
        if host in seen:
            return f"Duplicate nameserver '{host}'"
        seen.append(host)
    return None


def _host_routes_error(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"Invalid data format for hostroute: '{data}'"
    if len(data) > MAX_HOST_ROUTES:
        return f"'{data}' exceeds maximum of {MAX_HOST_ROUTES} host routes"
    seen: list[Any] = []
    for route in data:
        msg = a.dict_keys_error(["destination", "nexthop"], route)
        msg = msg or subnet_error(route["destination"]) or ip_error(route["nexthop"])
        if msg:
            return msg
        if route in seen:
            return f"Duplicate hostroute '{route}'"
        seen.append(route)
    return None


def _none_to_empty(value: Any) -> Any:
    return "" if value is None else value


def _name(post: bool = True, default: Any = "") -> Attr:
    return Attr("name", post=post, default=default, validate=a.string())


_STANDARD = (
    Attr("description", default="", validate=a.string()),
    Attr("project_id", put=False, validate=a.string()),
)

NETWORK = ResourceSpec(
    "network",
    (
        Attr("id", post=False, put=False),
        _name(),
        Attr("subnets", post=False, put=False),
        Attr("admin_state_up", default=True, convert=a.to_boolean),
        Attr("status", post=False, put=False),
        Attr("shared", default=False, convert=a.to_boolean),
        Attr("port_security_enabled", default=True, convert=a.to_boolean),
        Attr("mtu", default=0, convert=a.to_int, validate=_non_negative),  # net-mtu-writable
        Attr("router:external", post=False, put=False),
        *_STANDARD,
    ),
)

SUBNET = ResourceSpec(
    "subnet",
    (
        Attr("id", post=False, put=False),
        _name(),
        Attr("ip_version", put=False, default=REQUIRED, convert=a.to_int, validate=a.values_in((4, 6))),
        Attr("network_id", put=False, default=REQUIRED, validate=a.uuid),
        Attr("cidr", put=False, default=REQUIRED, validate=subnet_error),
        Attr("gateway_ip", default=NOT_SPECIFIED, validate=_ip_or_none_error),
        Attr("allocation_pools", default=NOT_SPECIFIED, validate=_pools_error),
        Attr("dns_nameservers", default=[], convert=a.none_to_empty_list, validate=_nameservers_error),
        Attr("host_routes", default=[], convert=a.none_to_empty_list, validate=_host_routes_error),
        Attr("enable_dhcp", default=True, convert=a.to_boolean),
        Attr("ipv6_ra_mode", put=False, default=None, validate=a.values_in(IPV6_MODES, allow_none=True)),
        Attr("ipv6_address_mode", put=False, default=None, validate=a.values_in(IPV6_MODES, allow_none=True)),
        Attr("subnetpool_id", put=False, default=None, validate=a.values_in((), allow_none=True)),
        *_STANDARD,
    ),
)


@functools.cache
def port_spec(max_pairs: int = DEFAULT_MAX_PAIRS) -> ResourceSpec:
    """The port attribute map; the pair limit is configuration."""

    def pairs_error(data: Any) -> str | None:
        validate_pairs(data, max_pairs)  # raises its own typed errors
        return None

    return ResourceSpec(
        "port",
        (
            Attr("id", post=False, put=False),
            _name(),
            Attr("network_id", put=False, default=REQUIRED, validate=a.uuid),
            Attr("admin_state_up", default=True, convert=a.to_boolean),
            Attr("mac_address", default=NOT_SPECIFIED, validate=_mac_or_none_error),
            Attr("fixed_ips", default=NOT_SPECIFIED, validate=_fixed_ips_error),
            Attr("device_id", default="", validate=a.string()),
            Attr("device_owner", default="", validate=a.string()),
            Attr("status", post=False, put=False),
            Attr("security_groups", default=NOT_SPECIFIED, convert=a.none_to_empty_list, validate=a.uuid_list),
            Attr("port_security_enabled", default=NOT_SPECIFIED, convert=a.to_boolean),
            Attr("allowed_address_pairs", default=[], convert=a.none_to_empty_list, validate=pairs_error),
            Attr("binding:host_id", default="", convert=_none_to_empty, validate=a.string()),
            Attr("binding:vnic_type", default="normal", validate=a.values_in(VNIC_TYPES)),
            Attr("ip_allocation", post=False, put=False),
            *_STANDARD,
        ),
    )


def _mac_or_none_error(data: Any) -> str | None:
    """``null`` asks for a generated MAC (port-mac-address-regenerate).

    A multicast MAC is refused (Neutron takes it): no switch can forward to it.
    """
    if data is None:
        return None
    msg = mac_error(data)
    if msg is None and is_multicast_mac(data):
        msg = f"MAC address {data} is a multicast address, which is not supported"
    return msg


PORT = port_spec()
