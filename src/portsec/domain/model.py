"""The resources as frozen values: what the store returns and the service hands on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_PROJECT_ID = "admin"
TRUSTED_OWNER_PREFIX = "network:"


def is_trusted_owner(device_owner: str | None) -> bool:
    """Network-owned ports (DHCP, router): no anti-spoofing, and only their network's owner may make them."""
    return (device_owner or "").startswith(TRUSTED_OWNER_PREFIX)


@dataclass(frozen=True)
class Context:
    """Who is asking: the project a request acts in, and whether it may act in all."""

    project_id: str = DEFAULT_PROJECT_ID
    is_admin: bool = True
    roles: tuple[str, ...] = ("admin",)

    @classmethod
    def admin(cls, project_id: str = DEFAULT_PROJECT_ID) -> Context:
        return cls(project_id=project_id, is_admin=True, roles=("admin", "member", "reader"))


@dataclass(frozen=True)
class AllowedPair:
    """An allowed address pair, both strings exactly as the client wrote them."""

    mac_address: str
    ip_address: str


@dataclass(frozen=True)
class FixedIp:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True)
class AllocationPool:
    start: str
    end: str


@dataclass(frozen=True)
class Network:
    id: str
    project_id: str
    name: str
    admin_state_up: bool
    status: str
    shared: bool
    port_security_enabled: bool
    mtu: int
    description: str
    revision_number: int
    created_at: datetime
    updated_at: datetime
    subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    project_id: str
    name: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    allocation_pools: tuple[AllocationPool, ...]
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...]
    host_routes: tuple[tuple[str, str], ...]
    ipv6_ra_mode: str | None
    ipv6_address_mode: str | None
    description: str
    revision_number: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    project_id: str
    name: str
    mac_address: str
    admin_state_up: bool
    status: str
    device_id: str
    device_owner: str
    port_security_enabled: bool
    host_id: str
    vnic_type: str
    description: str
    revision_number: int
    created_at: datetime
    updated_at: datetime
    fixed_ips: tuple[FixedIp, ...] = ()
    allowed_address_pairs: tuple[AllowedPair, ...] = ()
    ip_allocation: str = "immediate"
    security_groups: tuple[str, ...] = field(default=())

    @property
    def trusted(self) -> bool:
        """Network-owned ports (DHCP, router) get no anti-spoofing."""
        return is_trusted_owner(self.device_owner)


def sorted_fixed_ips(ips: list[FixedIp] | tuple[FixedIp, ...]) -> tuple[FixedIp, ...]:
    """Neutron returns fixed IPs ordered by address string, then subnet."""
    return tuple(sorted(ips, key=lambda f: (f.ip_address, f.subnet_id)))


def sorted_pairs(pairs: list[AllowedPair] | tuple[AllowedPair, ...]) -> tuple[AllowedPair, ...]:
    """Neutron returns pairs in primary-key order: (mac_address, ip_address)."""
    return tuple(sorted(pairs, key=lambda p: (p.mac_address, p.ip_address)))
