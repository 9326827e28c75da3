"""Subnets: create, read, delete; a change to a subnet bumps its network's revision."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from portsec.domain import errors, ipam
from portsec.domain.attributes import NOT_SPECIFIED, prepare_create, prepare_update
from portsec.domain.model import AllocationPool, Context, Subnet
from portsec.domain.resources import SUBNET
from portsec.service import networks, policy
from portsec.service.common import ALL, Listing, check_revision, list_query, new_id, scope
from portsec.store import networks as network_store
from portsec.store import subnets as store
from portsec.store.database import Tx

COLUMNS: Mapping[str, str] = {}


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


def create(tx: Tx, ctx: Context, body: Any) -> Subnet:
    values = prepare_create(SUBNET, body, ctx.project_id, ctx.is_admin)
    network = networks.get(tx, ctx, values["network_id"], for_update=True)
    policy.check_network_owner(ctx, network, "create_subnet", {})
    cidr = _check_cidr(tx, values, network.id)
    gateway = values["gateway_ip"]
    gateway = ipam.default_gateway(cidr) if gateway is NOT_SPECIFIED else gateway
    gateway = None if gateway is None else ipam.canonical_ip(gateway)
    ipam.check_gateway(cidr, gateway)
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
    subnet = store.get(tx.conn, subnet_id)
    if subnet is None:
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    network = network_store.get(tx.conn, subnet.network_id)
    if network is None or not policy.can_see_network(ctx, network):
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    return subnet


def list_(tx: Tx, ctx: Context, listing: Listing = ALL) -> list[Subnet]:
    if listing.marker:
        get(tx, ctx, listing.marker)
    query = list_query(listing, listing.filters, COLUMNS)
    return store.list_(tx.conn, query, store.visible(scope(ctx.project_id, ctx.is_admin)))


def delete(tx: Tx, ctx: Context, subnet_id: str, if_revision: int | None = None) -> None:
    subnet = get(tx, ctx, subnet_id)
    network = networks.get(tx, ctx, subnet.network_id, for_update=True)
    policy.check_network_owner(ctx, network, "delete_subnet", {})
    check_revision(if_revision, subnet.revision_number)
    if store.in_use(tx.conn, subnet_id):
        raise errors.SubnetInUse(subnet_id=subnet_id)
    store.delete(tx.conn, subnet_id)
    tx.record("subnet", subnet.id, subnet.project_id, subnet.revision_number, "delete")
    bumped = network_store.touch(tx.conn, network, tx.now)
    tx.record("network", bumped.id, bumped.project_id, bumped.revision_number, "update")


def update(tx: Tx, ctx: Context, subnet_id: str, body: Any, if_revision: int | None = None) -> Subnet:
    values = prepare_update(SUBNET, body)
    old = get(tx, ctx, subnet_id)
    network = networks.get(tx, ctx, old.network_id, for_update=True)
    policy.check_network_owner(ctx, network, "update_subnet", {})
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
    if new == old:
        return old
    new = replace(new, revision_number=old.revision_number + 1, updated_at=tx.now)
    store.update(tx.conn, old, new)
    tx.record("subnet", new.id, new.project_id, new.revision_number, "update")
    bumped = network_store.touch(tx.conn, network, tx.now)
    tx.record("network", bumped.id, bumped.project_id, bumped.revision_number, "update")
    return new
