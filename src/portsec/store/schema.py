"""The tables, as SQLAlchemy Core metadata (the migrations create exactly these)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

ID = 36
NAME = 255
ADDRESS = 64  # an IPv6 CIDR written out in full fits with room to spare


def _standard() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("project_id", String(NAME), nullable=False, index=True),
        Column("name", String(NAME), nullable=False),
        Column("description", String(NAME), nullable=False),
        Column("revision_number", BigInteger, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    ]


networks = Table(
    "networks",
    metadata,
    Column("id", String(ID), primary_key=True),
    *_standard(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("shared", Boolean, nullable=False),
    Column("port_security_enabled", Boolean, nullable=False),
    Column("mtu", Integer, nullable=False),
)

subnets = Table(
    "subnets",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("network_id", String(ID), ForeignKey("networks.id"), nullable=False, index=True),
    *_standard(),
    Column("ip_version", Integer, nullable=False),
    Column("cidr", String(ADDRESS), nullable=False),
    Column("gateway_ip", String(ADDRESS)),
    Column("allocation_pools", JSON, nullable=False),
    Column("enable_dhcp", Boolean, nullable=False),
    Column("dns_nameservers", JSON, nullable=False),
    Column("host_routes", JSON, nullable=False),
    Column("ipv6_ra_mode", String(16)),
    Column("ipv6_address_mode", String(16)),
)

ports = Table(
    "ports",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("network_id", String(ID), ForeignKey("networks.id"), nullable=False),
    *_standard(),
    Column("mac_address", String(32), nullable=False),
    Column("admin_state_up", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("device_id", String(NAME), nullable=False),
    Column("device_owner", String(NAME), nullable=False),
    Column("port_security_enabled", Boolean, nullable=False),
    Column("host_id", String(NAME), nullable=False),
    Column("vnic_type", String(64), nullable=False),
    Column("ip_allocation", String(16), nullable=False),
    UniqueConstraint("network_id", "mac_address", name="uniq_ports_network_mac"),
    Index("ix_ports_name", "name"),
)

ip_allocations = Table(
    "ip_allocations",
    metadata,
    Column("subnet_id", String(ID), ForeignKey("subnets.id"), primary_key=True),
    Column("ip_address", String(ADDRESS), primary_key=True),
    Column("port_id", String(ID), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True),
)

allowed_address_pairs = Table(
    "allowed_address_pairs",
    metadata,
    Column("port_id", String(ID), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("mac_address", String(32), primary_key=True),
    Column("ip_address", String(ADDRESS), primary_key=True),
)

# Per-project quota overrides (Neutron's ``quotas`` table): a project without a row has the configured defaults.
quotas = Table(
    "quotas",
    metadata,
    Column("project_id", String(NAME), primary_key=True),
    Column("resource", String(NAME), primary_key=True),
    Column("limit", Integer, nullable=False),
)

# Agents (Neutron's ``agents`` table): one row per (agent_type, host), kept current by the agent's heartbeat.
agents = Table(
    "agents",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("agent_type", String(NAME), nullable=False),
    Column("binary", String(NAME), nullable=False),
    Column("topic", String(NAME), nullable=False),
    Column("host", String(NAME), nullable=False),
    Column("availability_zone", String(NAME)),
    Column("admin_state_up", Boolean, nullable=False),
    Column("description", String(NAME)),
    Column("configurations", JSON, nullable=False),
    Column("resources_synced", Boolean),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_timestamp", DateTime, nullable=False),
    UniqueConstraint("agent_type", "host", name="uniq_agents0agent_type0host"),
)

# The change log: one row per resource change, numbered in commit order, so the
# data plane can follow "everything after seq N" without missing a change.
changes = Table(
    "changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("resource", String(16), nullable=False),
    Column("resource_id", String(ID), nullable=False),
    Column("project_id", String(NAME), nullable=False),
    Column("revision_number", BigInteger, nullable=False),
    Column("operation", String(8), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# Who answered for a VIP, over time (issue 11): one row per change of owner seen by an agent (a gratuitous ARP
# or neighbour advertisement from another port). Kept when ports go: it is history. ``sequence`` numbers a VIP's
# rows from 1, so its count of moves survives the pruning of old rows (service/vips.py keeps the last ones).
vip_moves = Table(
    "vip_moves",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("network_id", String(ID), nullable=False, index=True),
    Column("ip_address", String(ADDRESS), nullable=False),
    Column("port_id", String(ID), nullable=False),
    Column("previous_port_id", String(ID)),
    Column("moved_at", Float, nullable=False),  # epoch seconds, wall clock
    Column("host", String(NAME), nullable=False),
    Column("sequence", Integer, nullable=False),
    Index("ix_vip_moves_network_id_ip_address", "network_id", "ip_address"),
)

# Sources a port sent from (issue 11), sampled by the agent, per drop reason: what enabling port security or
# removing a pair would stop. Go with their port.
source_samples = Table(
    "source_samples",
    metadata,
    Column("port_id", String(ID), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("mac_address", String(17), primary_key=True),
    Column("ip_address", String(ADDRESS), primary_key=True),  # '' when the frame had no IP source
    Column("packets", Integer, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)
