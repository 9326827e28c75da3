"""Domain values -> Neutron's JSON shapes (what the API returns and the CLI formats)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from portsec.domain.model import Context, Network, Port, Subnet

# Shown only to admins, as Neutron's get_port:binding:* rules do.
ADMIN_ONLY_PORT_KEYS = ("binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile")


def timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def observed_at(epoch: float) -> str:
    """When the data plane saw something (a VIP move, a sampled source): milliseconds matter there."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _standard(resource: Network | Subnet | Port) -> dict[str, Any]:
    return {
        "tenant_id": resource.project_id,
        "project_id": resource.project_id,
        "description": resource.description,
        "tags": [],
        "created_at": timestamp(resource.created_at),
        "updated_at": timestamp(resource.updated_at),
        "revision_number": resource.revision_number,
    }


def network(n: Network) -> dict[str, Any]:
    return {
        "id": n.id,
        "name": n.name,
        "subnets": list(n.subnet_ids),
        "admin_state_up": n.admin_state_up,
        "status": n.status,
        "shared": n.shared,
        "port_security_enabled": n.port_security_enabled,
        "mtu": n.mtu,
        "router:external": False,
        **_standard(n),
    }


def subnet(s: Subnet) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "network_id": s.network_id,
        "ip_version": s.ip_version,
        "cidr": s.cidr,
        "gateway_ip": s.gateway_ip,
        "allocation_pools": [{"start": p.start, "end": p.end} for p in s.allocation_pools],
        "enable_dhcp": s.enable_dhcp,
        "dns_nameservers": list(s.dns_nameservers),
        "host_routes": [{"destination": d, "nexthop": h} for d, h in s.host_routes],
        "ipv6_ra_mode": s.ipv6_ra_mode,
        "ipv6_address_mode": s.ipv6_address_mode,
        "subnetpool_id": None,
        **_standard(s),
    }


def port(p: Port, ctx: Context) -> dict[str, Any]:
    body = {
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": p.status,
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": [{"subnet_id": f.subnet_id, "ip_address": f.ip_address} for f in p.fixed_ips],
        "allowed_address_pairs": [
            {"mac_address": a.mac_address, "ip_address": a.ip_address} for a in p.allowed_address_pairs
        ],
        "security_groups": list(p.security_groups),
        "port_security_enabled": p.port_security_enabled,
        "ip_allocation": p.ip_allocation,
        "binding:host_id": p.host_id,
        "binding:vif_type": "ovs" if p.host_id else "unbound",
        "binding:vif_details": {},
        "binding:vnic_type": p.vnic_type,
        "binding:profile": {},
        **_standard(p),
    }
    if not ctx.is_admin:
        for key in ADMIN_ONLY_PORT_KEYS:
            del body[key]
    return body
