"""The rows of `show` and the columns of `list`, as OSC prints them for each resource.

OSC's rows come from openstacksdk's attribute list, so a key the server does not
return still gets a row (value None); the lists below are those attribute lists,
with the Neutron key each row reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portsec.cli import columns as c

# (row, Neutron key, formatter)
Row = tuple[str, str, type[c.FormattableColumn[Any]] | None]

PORT_ROWS: tuple[Row, ...] = (
    ("admin_state_up", "admin_state_up", c.AdminStateColumn),
    ("allowed_address_pairs", "allowed_address_pairs", c.ListDictColumn),
    ("binding_host_id", "binding:host_id", None),
    ("binding_profile", "binding:profile", c.DictColumn),
    ("binding_vif_details", "binding:vif_details", c.DictColumn),
    ("binding_vif_type", "binding:vif_type", None),
    ("binding_vnic_type", "binding:vnic_type", None),
    ("created_at", "created_at", None),
    ("data_plane_status", "data_plane_status", None),
    ("description", "description", None),
    ("device_id", "device_id", None),
    ("device_owner", "device_owner", None),
    ("device_profile", "device_profile", None),
    ("dns_assignment", "dns_assignment", c.ListDictColumn),
    ("dns_domain", "dns_domain", None),
    ("dns_name", "dns_name", None),
    ("extra_dhcp_opts", "extra_dhcp_opts", c.ListDictColumn),
    ("fixed_ips", "fixed_ips", c.ListDictColumn),
    ("hardware_offload_type", "hardware_offload_type", None),
    ("hints", "hints", None),
    ("id", "id", None),
    ("ip_allocation", "ip_allocation", None),
    ("mac_address", "mac_address", None),
    ("name", "name", None),
    ("network_id", "network_id", None),
    ("numa_affinity_policy", "numa_affinity_policy", None),
    ("port_security_enabled", "port_security_enabled", None),
    ("project_id", "project_id", None),
    ("propagate_uplink_status", "propagate_uplink_status", None),
    ("pvlan_type", "pvlan_type", None),
    ("pvlan_community", "pvlan_community", None),
    ("resource_request", "resource_request", None),
    ("revision_number", "revision_number", None),
    ("qos_network_policy_id", "qos_network_policy_id", None),
    ("qos_policy_id", "qos_policy_id", None),
    ("security_group_ids", "security_groups", c.ListColumn),
    ("status", "status", None),
    ("tags", "tags", c.ListColumn),
    ("trunk_details", "trunk_details", None),
    ("trusted", "trusted", None),
    ("updated_at", "updated_at", None),
)

NETWORK_ROWS: tuple[Row, ...] = (
    ("admin_state_up", "admin_state_up", c.AdminStateColumn),
    ("availability_zone_hints", "availability_zone_hints", c.ListColumn),
    ("availability_zones", "availability_zones", c.ListColumn),
    ("created_at", "created_at", None),
    ("description", "description", None),
    ("dns_domain", "dns_domain", None),
    ("id", "id", None),
    ("ipv4_address_scope", "ipv4_address_scope", None),
    ("ipv6_address_scope", "ipv6_address_scope", None),
    ("is_default", "is_default", None),
    ("is_vlan_qinq", "vlan_qinq", None),
    ("is_vlan_transparent", "vlan_transparent", None),
    ("mtu", "mtu", None),
    ("name", "name", None),
    ("port_security_enabled", "port_security_enabled", None),
    ("project_id", "project_id", None),
    ("provider:network_type", "provider:network_type", None),
    ("provider:physical_network", "provider:physical_network", None),
    ("provider:segmentation_id", "provider:segmentation_id", None),
    ("pvlan", "pvlan", None),
    ("qos_policy_id", "qos_policy_id", None),
    ("revision_number", "revision_number", None),
    ("router:external", "router:external", c.RouterExternalColumn),
    ("segments", "segments", None),
    ("shared", "shared", None),
    ("status", "status", None),
    ("subnets", "subnets", c.ListColumn),
    ("tags", "tags", c.ListColumn),
    ("updated_at", "updated_at", None),
)

SUBNET_ROWS: tuple[Row, ...] = (
    ("allocation_pools", "allocation_pools", c.AllocationPoolsColumn),
    ("cidr", "cidr", None),
    ("created_at", "created_at", None),
    ("description", "description", None),
    ("dns_nameservers", "dns_nameservers", c.UnsortedListColumn),
    ("dns_publish_fixed_ip", "dns_publish_fixed_ip", None),
    ("enable_dhcp", "enable_dhcp", None),
    ("gateway_ip", "gateway_ip", None),
    ("host_routes", "host_routes", c.HostRoutesColumn),
    ("id", "id", None),
    ("ip_version", "ip_version", None),
    ("ipv6_address_mode", "ipv6_address_mode", None),
    ("ipv6_ra_mode", "ipv6_ra_mode", None),
    ("name", "name", None),
    ("network_id", "network_id", None),
    ("project_id", "project_id", None),
    ("revision_number", "revision_number", None),
    ("segment_id", "segment_id", None),
    ("service_types", "service_types", c.ListColumn),
    ("subnetpool_id", "subnetpool_id", None),
    ("tags", "tags", c.ListColumn),
    ("updated_at", "updated_at", None),
)

ROWS = {"port": PORT_ROWS, "network": NETWORK_ROWS, "subnet": SUBNET_ROWS}

# list columns: (header, Neutron key, formatter)
PORT_LIST = (
    ("ID", "id", None),
    ("Name", "name", None),
    ("MAC Address", "mac_address", None),
    ("Fixed IP Addresses", "fixed_ips", c.ListDictColumn),
    ("Status", "status", None),
)
PORT_LIST_LONG = (
    ("Security Groups", "security_groups", c.ListColumn),
    ("Device Owner", "device_owner", None),
    ("Tags", "tags", c.ListColumn),
    ("Trunk subports", "trunk_details", c.ListDictColumn),
)
NETWORK_LIST = (("ID", "id", None), ("Name", "name", None), ("Subnets", "subnets", c.ListColumn))
NETWORK_LIST_LONG = (
    ("ID", "id", None),
    ("Name", "name", None),
    ("Status", "status", None),
    ("Project", "project_id", None),
    ("State", "admin_state_up", c.AdminStateColumn),
    ("Shared", "shared", None),
    ("Subnets", "subnets", c.ListColumn),
    ("Network Type", "provider:network_type", None),
    ("Router Type", "router:external", c.RouterExternalColumn),
    ("Availability Zones", "availability_zones", c.ListColumn),
    ("Tags", "tags", c.ListColumn),
)
SUBNET_LIST = (("ID", "id", None), ("Name", "name", None), ("Network", "network_id", None), ("Subnet", "cidr", None))


# What openstacksdk shows for these when the server does not return them.
SDK_DEFAULTS = {"port_security_enabled": False, "hints": ""}


def _cell(item: Mapping[str, Any], key: str, formatter: type[c.FormattableColumn[Any]] | None) -> Any:
    value = item.get(key, SDK_DEFAULTS.get(key))
    return formatter(value) if formatter is not None else value


def show(resource: str, item: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    rows = ROWS[resource]
    return tuple(r[0] for r in rows), tuple(_cell(item, key, fmt) for _, key, fmt in rows)


def table(
    columns: Sequence[tuple[str, str, Any]], items: Sequence[Mapping[str, Any]]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    headers = tuple(h for h, _, _ in columns)
    return headers, [tuple(_cell(item, key, fmt) for _, key, fmt in columns) for item in items]
