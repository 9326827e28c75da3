"""Subnets: create, read, delete; a change to a subnet bumps its network's revision."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from portsec.domain import errors, ipam, mtu
from portsec.domain.attributes import NOT_SPECIFIED, prepare_create, prepare_update, to_boolean
from portsec.domain.model import AllocationPool, Context, Network, Subnet, sorted_fixed_ips
from portsec.domain.resources import SUBNET
from portsec.service import networks, policy, quotas
from portsec.service.common import (
    ALL,
    Limits,
    Listing,
    check_revision,
    list_query,
    matches_no_value,
    new_id,
    save_update,
    scope,
    split_constant_filters,
)
from portsec.store import networks as network_store
from portsec.store import ports as port_store
from portsec.store import subnets as store
from portsec.store.database import Tx

COLUMNS: Mapping[str, str] = {}
# Shown null by every subnet (no subnet pools): no query value equals it.
CONSTANT_FILTERS = {"subnetpool_id": matches_no_value}
DEFAULT_LIMITS = Limits()


def _check_cidr(tx: Tx, values: Mapping[str, Any], network_id: str) -> str:
    cidr = str(ipaddress.ip_network(values["cidr"]))  # IPv6 in compact form
    net = ipaddress.ip_network(cidr)
    if net.version != values["ip_version"]:
        raise errors.InvalidInput(error_message=f"cidr '{cidr}' does not match the ip_version '{values['ip_version']}'")
    for other in store.on_network(tx.conn, network_id):
        if net.overlaps(ipaddress.ip_network(other.cidr)):  # type: ignore[arg-type]
            raise errors.InvalidInput(
                error_message=f"Requested subnet with cidr: {cidr} for network: {network_id} "
                "overlaps with another subnet"
            )
    return cidr


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def _check_ipv6_modes(values: Mapping[str, Any], cidr: str) -> None:
    """Neutron's checks of ipv6_ra_mode and ipv6_address_mode on create, in its order and with its messages."""
    ra_mode, address_mode = values["ipv6_ra_mode"], values["ipv6_address_mode"]
    if values["ip_version"] == 4:
        for name, mode in (("ipv6_ra_mode", ra_mode), ("ipv6_address_mode", address_mode)):
            if mode is not None:
                raise errors.InvalidInput(error_message=f"{name} is not valid when ip_version is 4")
        return
    if (ra_mode is not None or address_mode is not None) and not values["enable_dhcp"]:
        raise errors.InvalidInput(
            error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False."
        )
    if ra_mode is not None and address_mode is not None and ra_mode != address_mode:
        raise errors.InvalidInput(
            error_message=f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{address_mode}' is not "
            "valid. If both attributes are set, they must be the same value"
        )
    # EUI-64 addresses need a /64 (RFC 4862 5.5.3); Neutron counts either mode (is_auto_address_subnet).
    if (ra_mode in AUTO_ADDRESS_MODES or address_mode in AUTO_ADDRESS_MODES) and not cidr.endswith("/64"):
        raise errors.InvalidInput(
            error_message=f"Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, "
            "which requires the prefix to be /64."
        )


def create(tx: Tx, ctx: Context, body: Any, limits: Limits = DEFAULT_LIMITS) -> Subnet:
    values = prepare_create(SUBNET, body, ctx.project_id, ctx.is_admin)
    quotas.check_create(tx, limits.quotas, values["project_id"], "subnet")
    network = networks.get(tx, ctx, values["network_id"], for_update=True)
    policy.check_subnet_create(ctx, network, values)
    cidr = _check_cidr(tx, values, network.id)
    gateway = values["gateway_ip"]
    gateway = ipam.default_gateway(cidr) if gateway is NOT_SPECIFIED else gateway
    gateway = None if gateway is None else ipam.canonical_ip(gateway)
    ipam.check_gateway(cidr, gateway)
    _check_ipv6_modes(values, cidr)
    mtu.check_new_subnet(network.id, network.mtu, values["ip_version"])
    if values["allocation_pools"] is NOT_SPECIFIED:
        pools = ipam.default_pools(cidr, gateway)
    else:
        pools = tuple(
            AllocationPool(ipam.canonical_ip(p["start"]), ipam.canonical_ip(p["end"]))
            for p in values["allocation_pools"]
        )
        ipam.check_pools(cidr, pools, gateway)
    subnet = Subnet(
        id=new_id(),
        network_id=network.id,
        project_id=values["project_id"],
        name=values["name"],
        ip_version=values["ip_version"],
        cidr=cidr,
        gateway_ip=gateway,
        allocation_pools=pools,
        enable_dhcp=values["enable_dhcp"],
        dns_nameservers=tuple(values["dns_nameservers"]),
        host_routes=tuple((r["destination"], r["nexthop"]) for r in values["host_routes"]),
        ipv6_ra_mode=values["ipv6_ra_mode"],
        ipv6_address_mode=values["ipv6_address_mode"],
        description=values["description"],
        revision_number=0,
        created_at=tx.now,
        updated_at=tx.now,
    )
    store.insert(tx.conn, subnet)
    tx.record("subnet", subnet.id, subnet.project_id, subnet.revision_number, "create")
    bumped = network_store.touch(tx.conn, network, tx.now)
    tx.record("network", bumped.id, bumped.project_id, bumped.revision_number, "update")
    return subnet


def get(tx: Tx, ctx: Context, subnet_id: str) -> Subnet:
    return _get_with_network(tx, ctx, subnet_id)[0]


def _get_with_network(tx: Tx, ctx: Context, subnet_id: str, for_update: bool = False) -> tuple[Subnet, Network]:
    """The subnet, if the caller may see it, and its network (locked ``for_update``: the revision it bumps)."""
    subnet = store.get(tx.conn, subnet_id)
    network = None if subnet is None else network_store.get(tx.conn, subnet.network_id, for_update=for_update)
    if subnet is None or network is None or not policy.can_see_subnet(ctx, subnet, network):
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    return subnet, network


def list_(tx: Tx, ctx: Context, listing: Listing = ALL) -> list[Subnet]:
    filters, passes = split_constant_filters(listing.filters, CONSTANT_FILTERS)
    network_shared = _shared_filter(filters.pop("shared", None))
    if listing.marker:
        get(tx, ctx, listing.marker)
    if not passes:
        return []
    query = list_query(listing, filters, COLUMNS)
    found = store.list_(tx.conn, query, store.visible(scope(ctx.project_id, ctx.is_admin)), network_shared)
    if policy.reads_projects(ctx):
        return found
    # Without the reader role only a shared network shows its subnets: the store's scope (own project) is wider.
    return [s for s in found if _visible(tx, ctx, s)]


def _shared_filter(values: Sequence[Any] | None) -> bool | None:
    """A subnet's ``shared`` is its network's; Neutron's filter on it reads the first value only."""
    if values is None:
        return None
    return bool(values) and to_boolean(values[0])


def _visible(tx: Tx, ctx: Context, subnet: Subnet) -> bool:
    network = network_store.get(tx.conn, subnet.network_id)
    return network is not None and policy.can_see_subnet(ctx, subnet, network)


def delete(tx: Tx, ctx: Context, subnet_id: str, if_revision: int | None = None) -> None:
    subnet, network = _get_with_network(tx, ctx, subnet_id, for_update=True)
    policy.check_subnet_change(ctx, "delete_subnet", subnet, network)
    check_revision(if_revision, subnet.revision_number)
    if ipam.is_auto_address_subnet(subnet):
        _release_auto_addresses(tx, subnet)
    elif store.in_use(tx.conn, subnet_id):
        raise errors.SubnetInUse(subnet_id=subnet_id)
    store.delete(tx.conn, subnet_id)
    tx.record("subnet", subnet.id, subnet.project_id, subnet.revision_number, "delete")
    bumped = network_store.touch(tx.conn, network, tx.now)
    tx.record("network", bumped.id, bumped.project_id, bumped.revision_number, "update")


# Neutron's ROUTER_INTERFACE_OWNERS: a router's interface keeps even an automatic address's subnet.
ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)


def _release_auto_addresses(tx: Tx, subnet: Subnet) -> None:
    """SLAAC and DHCPv6-stateless addresses come from the MAC, not from an allocation: deleting the
    subnet takes them off its ports (each port's revision and change log follow, for the data plane)."""
    users = port_store.ids_on_subnet(tx.conn, subnet.id)
    if any(owner in ROUTER_INTERFACE_OWNERS for _, owner in users):
        raise errors.SubnetInUse(subnet_id=subnet.id)
    for port_id, _ in users:
        old = port_store.get(tx.conn, port_id, for_update=True)
        if old is not None:
            kept = sorted_fixed_ips([f for f in old.fixed_ips if f.subnet_id != subnet.id])
            save_update(tx, "port", old, replace(old, fixed_ips=kept), port_store.update)


def update(tx: Tx, ctx: Context, subnet_id: str, body: Any, if_revision: int | None = None) -> Subnet:
    values = prepare_update(SUBNET, body)
    old, network = _get_with_network(tx, ctx, subnet_id, for_update=True)
    policy.check_subnet_change(ctx, "update_subnet", old, network)
    check_revision(if_revision, old.revision_number)
    gateway = values.get("gateway_ip", old.gateway_ip)
    gateway = None if gateway is None else ipam.canonical_ip(gateway)
    ipam.check_gateway(old.cidr, gateway)
    pools = old.allocation_pools
    if "allocation_pools" in values:
        given = values["allocation_pools"]
        pools = tuple(AllocationPool(ipam.canonical_ip(p["start"]), ipam.canonical_ip(p["end"])) for p in given)
    if "allocation_pools" in values or "gateway_ip" in values:
        ipam.check_pools(old.cidr, pools, gateway)
    new = replace(
        old,
        name=values.get("name", old.name),
        description=values.get("description", old.description),
        gateway_ip=gateway,
        allocation_pools=pools,
        enable_dhcp=values.get("enable_dhcp", old.enable_dhcp),
        dns_nameservers=tuple(values.get("dns_nameservers", old.dns_nameservers)),
        host_routes=tuple((r["destination"], r["nexthop"]) for r in values["host_routes"])
        if "host_routes" in values
        else old.host_routes,
    )
    saved = save_update(tx, "subnet", old, new, store.update)
    if saved is not old:  # a subnet's change is its network's too
        bumped = network_store.touch(tx.conn, network, tx.now)
        tx.record("network", bumped.id, bumped.project_id, bumped.revision_number, "update")
    return saved
