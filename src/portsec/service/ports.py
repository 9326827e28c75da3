"""Ports: create, read, update, delete, with Neutron's rules for pairs, port security and IPAM."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from portsec.domain import errors, ipam, port_security
from portsec.domain.addresses import eui64, normalize_mac
from portsec.domain.attributes import NOT_SPECIFIED, prepare_create, prepare_update
from portsec.domain.model import Context, FixedIp, Network, Port, Subnet, sorted_fixed_ips, sorted_pairs
from portsec.domain.pairs import with_port_mac
from portsec.domain.resources import port_spec
from portsec.service import networks, policy, quotas
from portsec.service import subnets as subnet_service
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
from portsec.store import ports as store
from portsec.store import subnets as subnet_store
from portsec.store.database import Tx

BASE_MAC = "fa:16:3e"
MAC_RETRIES = 16
DHCP_OWNER = "network:dhcp"
DEFAULT_LIMITS = Limits()
COLUMNS: Mapping[str, str] = {"binding:host_id": "host_id", "binding:vnic_type": "vnic_type"}
# Shown [] by every port (no security groups exist): no group's id is among them.
CONSTANT_FILTERS = {"security_groups": matches_no_value}
# Neutron attribute -> Port field, for what a PUT may change directly.
_UPDATABLE = {
    "name": "name",
    "admin_state_up": "admin_state_up",
    "device_id": "device_id",
    "device_owner": "device_owner",
    "binding:host_id": "host_id",
    "binding:vnic_type": "vnic_type",
    "description": "description",
}


def _random_mac(tx: Tx) -> str:
    return BASE_MAC + "".join(f":{b:02x}" for b in tx.rng.randbytes(3))


def _choose_mac(tx: Tx, network_id: str, requested: Any) -> str:
    if requested is not NOT_SPECIFIED and requested is not None:
        mac = normalize_mac(requested)
        if store.mac_in_use(tx.conn, network_id, mac):
            raise errors.MacAddressInUse(net_id=network_id, mac=requested)
        return mac
    for _ in range(MAC_RETRIES):
        mac = _random_mac(tx)
        if not store.mac_in_use(tx.conn, network_id, mac):
            return mac
    raise errors.NetworkMacAddressGenerationFailure(net_id=network_id)


def _insert_with_mac(tx: Tx, port: Port, requested: Any) -> Port:
    """``_choose_mac`` for a new port, by inserting its row: the MAC's unique constraint is the check.

    Same outcome as checking then inserting, in one round trip per MAC tried.
    """
    if requested is not NOT_SPECIFIED and requested is not None:
        port = replace(port, mac_address=normalize_mac(requested))
        if not store.insert_row(tx.conn, port):
            raise errors.MacAddressInUse(net_id=port.network_id, mac=requested)
        return port
    for _ in range(MAC_RETRIES):
        port = replace(port, mac_address=_random_mac(tx))
        if store.insert_row(tx.conn, port):
            return port
    raise errors.NetworkMacAddressGenerationFailure(net_id=port.network_id)


def _pick_address(
    tx: Tx, subnet: Subnet, taken: set[str], owner: str, claim: list[FixedIp] | None = None, port_id: str = ""
) -> str | None:
    """A random free address (cheap while the subnet is sparse); else the lowest free one.

    DHCP ports take the lowest free address, as in Neutron, so they are predictable.
    With ``claim`` (a new port whose row exists), a random address is allocated
    right away by inserting it, its unique key being the check, and added to ``claim``.
    """
    if owner != DHCP_OWNER:
        for candidate in ipam.random_candidates(subnet, tx.rng):
            if candidate in taken:
                continue
            if claim is not None:
                fixed = FixedIp(subnet.id, candidate)
                if store.claim_ip(tx.conn, port_id, fixed):
                    claim.append(fixed)
                    return candidate
            elif store.ip_owner(tx.conn, subnet.id, candidate) is None:
                return candidate
    return ipam.lowest_free(subnet, store.used_ips(tx.conn, subnet.id) | taken)


def _claim(tx: Tx, subnet: Subnet, address: str, port_id: str) -> FixedIp:
    owner = store.ip_owner(tx.conn, subnet.id, address)
    if owner is not None and owner != port_id:
        raise errors.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet.id)
    return FixedIp(subnet.id, address)


def _from_subnet(
    tx: Tx,
    subnet: Subnet,
    port_id: str,
    mac: str,
    owner: str,
    taken: set[str],
    claim: list[FixedIp] | None = None,
) -> FixedIp | None:
    if ipam.is_auto_address_subnet(subnet):
        return _claim(tx, subnet, str(eui64(ipaddress.ip_network(subnet.cidr), mac)), port_id)
    address = _pick_address(tx, subnet, taken, owner, claim, port_id)
    return None if address is None else FixedIp(subnet.id, address)


def _automatic(
    tx: Tx, network: Network, subnets: Sequence[Subnet], port_id: str, mac: str, owner: str, claimed: list[FixedIp]
) -> list[FixedIp]:
    """One address from the first IPv4 and the first stateful IPv6 subnet with room; EUI-64 on SLAAC.

    The port's row exists: random addresses are inserted as they are found, and listed in ``claimed``.
    """
    chosen: list[FixedIp] = []
    served: set[int] = set()  # families that got an address from a pool
    full: set[int] = set()  # families with a subnet that had none left
    for subnet in subnets:
        auto = ipam.is_auto_address_subnet(subnet)
        if not auto and subnet.ip_version in served:
            continue
        fixed = _from_subnet(tx, subnet, port_id, mac, owner, set(), claimed)
        if fixed is None:
            full.add(subnet.ip_version)
            continue
        chosen.append(fixed)
        if not auto:
            served.add(subnet.ip_version)
    if full - served:
        raise errors.IpAddressGenerationFailure(net_id=network.id)
    return chosen


def _subnet_of(tx: Tx, ctx: Context, network: Network, subnets: Sequence[Subnet], subnet_id: str) -> Subnet:
    for subnet in subnets:
        if subnet.id == subnet_id:
            return subnet
    # Not on this network: a subnet the caller may not see is not found, exactly like one that does not exist.
    subnet_service.get(tx, ctx, subnet_id)
    raise errors.InvalidInput(
        error_message=f"Failed to create port on network {network.id}, "
        f"because fixed_ips included invalid subnet {subnet_id}"
    )


def _requested(
    tx: Tx,
    ctx: Context,
    network: Network,
    port: Port,
    requested: list[dict[str, str]],
    owner: str,
    subnets: Sequence[Subnet] | None = None,
) -> list[FixedIp]:
    """Resolve a fixed_ips request; addresses the port already holds are kept."""
    if subnets is None:
        subnets = subnet_store.on_network(tx.conn, network.id)
    if requested and not subnets:
        raise errors.InvalidInput(error_message="IP allocation requires subnets for network")
    chosen: list[FixedIp] = []
    taken: set[str] = set()
    for entry in requested:
        if "ip_address" in entry:
            address = ipam.canonical_ip(entry["ip_address"])
            if "subnet_id" in entry:
                subnet = _subnet_of(tx, ctx, network, subnets, entry["subnet_id"])
                if not ipam.in_subnet(address, subnet):
                    raise errors.InvalidIpForSubnet(ip_address=entry["ip_address"])
            else:
                found = [s for s in subnets if ipam.in_subnet(address, s)]
                if not found:
                    raise errors.InvalidIpForNetwork(ip_address=entry["ip_address"])
                subnet = found[0]
            fixed = _claim(tx, subnet, address, port.id)
        elif "subnet_id" in entry:
            subnet = _subnet_of(tx, ctx, network, subnets, entry["subnet_id"])
            kept = [f for f in port.fixed_ips if f.subnet_id == subnet.id and f not in chosen]
            picked = kept[0] if kept else _from_subnet(tx, subnet, port.id, port.mac_address, owner, taken)
            if picked is None:
                raise errors.IpAddressGenerationFailure(net_id=network.id)
            fixed = picked
        else:
            raise errors.HTTPBadRequest(
                f"Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '{entry}'."
            )
        chosen.append(fixed)
        taken.add(fixed.ip_address)
    return chosen


def create(tx: Tx, ctx: Context, body: Any, limits: Limits = DEFAULT_LIMITS) -> Port:
    explicit = set(body) if isinstance(body, dict) else set()
    values = prepare_create(port_spec(limits.max_allowed_address_pairs), body, ctx.project_id, ctx.is_admin)
    quotas.check_create(tx, limits.quotas, values["project_id"], "port")
    network, subnets = networks.get_with_subnets(tx, ctx, values["network_id"])
    policy.check_port_create(ctx, network, values, explicit)
    owner = values["device_owner"]
    enabled = port_security.resolve_on_create(values["port_security_enabled"], owner, network.port_security_enabled)
    groups = [] if values["security_groups"] is NOT_SPECIFIED else values["security_groups"]
    port_security.check_create(enabled, values["allowed_address_pairs"], groups)
    if groups:  # security groups are not built yet: no id can exist
        raise errors.SecurityGroupNotFound(id=groups[0])
    requested = values["fixed_ips"]
    port = Port(
        id=new_id(),
        network_id=network.id,
        project_id=values["project_id"],
        name=values["name"],
        mac_address="",
        admin_state_up=values["admin_state_up"],
        status="DOWN",
        device_id=values["device_id"],
        device_owner=owner,
        port_security_enabled=enabled,
        host_id=values["binding:host_id"],
        vnic_type=values["binding:vnic_type"],
        description=values["description"],
        revision_number=1,
        created_at=tx.now,
        updated_at=tx.now,
        ip_allocation="none" if requested == [] else "immediate",
    )
    # The row goes in first (an error later rolls it back): inserting it is the MAC check.
    port = _insert_with_mac(tx, port, values["mac_address"])
    mac = port.mac_address
    port = replace(port, allowed_address_pairs=sorted_pairs(with_port_mac(values["allowed_address_pairs"], mac)))
    claimed: list[FixedIp] = []
    if requested is NOT_SPECIFIED or requested is None:
        fixed_ips = _automatic(tx, network, subnets, port.id, mac, owner, claimed)
    else:
        fixed_ips = _requested(tx, ctx, network, port, requested, owner, subnets)
    port = replace(port, fixed_ips=sorted_fixed_ips(fixed_ips))
    store.insert_children(tx.conn, port, skip_ips=claimed)
    tx.record("port", port.id, port.project_id, port.revision_number, "create")
    return port


def get(tx: Tx, ctx: Context, port_id: str, for_update: bool = False) -> Port:
    return _get_with_network(tx, ctx, port_id, for_update)[0]


def _get_with_network(tx: Tx, ctx: Context, port_id: str, for_update: bool = False) -> tuple[Port, Network]:
    """The port, if the caller may see it, with its network (whose owner may see it too), in one query."""
    found = store.get_with_network(tx.conn, port_id, for_update=for_update)
    if found is None or not policy.can_see_port(ctx, *found):
        raise errors.PortNotFound(port_id=port_id)
    return found


def list_(tx: Tx, ctx: Context, listing: Listing = ALL) -> list[Port]:
    policy.check_port_filters(ctx, listing.filters)
    filters, passes = split_constant_filters(listing.filters, CONSTANT_FILTERS)
    fixed_ip_filters = _fixed_ip_filters(filters.pop("fixed_ips", []))
    if "mac_address" in filters:
        filters["mac_address"] = [_normalized_or_same(m) for m in filters["mac_address"]]
    if listing.marker:
        get(tx, ctx, listing.marker)
    if not passes or not policy.reads_projects(ctx):
        return []  # get_port asks the reader role of the port's project or of its network's
    query = list_query(listing, filters, COLUMNS)
    return store.list_(tx.conn, query, store.visible(scope(ctx.project_id, ctx.is_admin)), fixed_ip_filters)


def _normalized_or_same(mac: str) -> str:
    try:
        return normalize_mac(mac)
    except Exception:  # not a MAC: matches nothing, as in Neutron
        return mac


def _fixed_ip_filters(entries: Sequence[Any]) -> dict[str, list[str]]:
    """``fixed_ips=ip_address=X`` strings (API) or ``{"ip_address": X}`` dicts (CLI)."""
    found: dict[str, list[str]] = {}
    for entry in entries:
        items = entry.items() if isinstance(entry, dict) else [str(entry).split("=", 1)]
        for item in items:
            if len(item) != 2 or item[0] not in ("ip_address", "subnet_id", "ip_address_substr"):
                raise errors.HTTPBadRequest(f"Invalid input for fixed_ips. Reason: '{entry}' is not a valid filter.")
            found.setdefault(item[0], []).append(item[1])
    return found


def update(
    tx: Tx, ctx: Context, port_id: str, body: Any, if_revision: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> Port:
    values = prepare_update(port_spec(limits.max_allowed_address_pairs), body)
    old, network = _get_with_network(tx, ctx, port_id, for_update=True)
    policy.check_port_update(ctx, old, network, values)
    check_revision(if_revision, old.revision_number)
    enabled = values.get("port_security_enabled", old.port_security_enabled)
    port_security.check_update(enabled, values, bool(old.allowed_address_pairs))
    if values.get("security_groups"):
        raise errors.SecurityGroupNotFound(id=values["security_groups"][0])
    new = replace(
        old, port_security_enabled=enabled, **{_UPDATABLE[k]: v for k, v in values.items() if k in _UPDATABLE}
    )
    if "mac_address" in values:
        requested = values["mac_address"]
        same = requested is not None and normalize_mac(requested) == old.mac_address
        new = replace(new, mac_address=old.mac_address if same else _choose_mac(tx, old.network_id, requested))
    if "fixed_ips" in values:
        fixed = _requested(tx, ctx, network, new, values["fixed_ips"] or [], new.device_owner)
        new = replace(new, fixed_ips=sorted_fixed_ips(fixed))
    if "allowed_address_pairs" in values:
        pairs = with_port_mac(values["allowed_address_pairs"], new.mac_address)
        new = replace(new, allowed_address_pairs=sorted_pairs(pairs))
    return save_update(tx, "port", old, new, store.update)


def delete(tx: Tx, ctx: Context, port_id: str, if_revision: int | None = None) -> None:
    port, network = _get_with_network(tx, ctx, port_id, for_update=True)
    policy.check_port_delete(ctx, port, network)
    check_revision(if_revision, port.revision_number)
    store.delete(tx.conn, port_id)
    tx.record("port", port.id, port.project_id, port.revision_number, "delete")
