"""Query strings -> list requests: filters, fields, sorting and pagination, with Neutron's errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from portsec.domain import errors
from portsec.service import policy
from portsec.service.common import Listing

MAX_LIMIT = 2**31 - 1  # any larger page is "everything"; SQL drivers refuse larger numbers
_STANDARD = ("id", "name", "tenant_id", "project_id", "description", "revision_number")

FILTERABLE = {
    "network": frozenset(
        {*_STANDARD, "admin_state_up", "status", "shared", "mtu", "router:external", "port_security_enabled", "subnets"}
    ),
    "subnet": frozenset(
        {
            *_STANDARD,
            "network_id",
            "ip_version",
            "cidr",
            "gateway_ip",
            "enable_dhcp",
            "ipv6_ra_mode",
            "ipv6_address_mode",
            "subnetpool_id",
            "shared",  # hidden, and filterable: the network's
        }
    ),
    "port": frozenset(
        {
            *_STANDARD,
            "network_id",
            "admin_state_up",
            "mac_address",
            "fixed_ips",
            "device_id",
            "device_owner",
            "status",
            "security_groups",
            "binding:host_id",
            "binding:vnic_type",
            "ip_allocation",
        }
    ),
    # neutron-lib's agent map (is_filter), with the availability_zone extension's
    "agent": frozenset(
        {"id", "agent_type", "binary", "topic", "host", "admin_state_up", "alive", "description", "availability_zone"}
    ),
}
SORTABLE = {
    "network": frozenset({"id", "name", "tenant_id", "project_id", "admin_state_up", "status", "shared", "mtu"}),
    "subnet": frozenset({"id", "name", "network_id", "tenant_id", "project_id", "ip_version", "cidr", "gateway_ip"}),
    "port": frozenset(
        {
            "id",
            "name",
            "network_id",
            "admin_state_up",
            "mac_address",
            "device_id",
            "device_owner",
            "tenant_id",
            "project_id",
            "status",
        }
    ),
    "agent": frozenset(
        {
            "id",
            "agent_type",
            "binary",
            "topic",
            "host",
            "admin_state_up",
            "created_at",
            "started_at",
            "heartbeat_timestamp",
        }
    ),
}


def parse(resource: str, items: Sequence[tuple[str, str]]) -> tuple[Listing, list[str]]:
    """(listing, fields) from the query string's (key, value) pairs."""
    filters: dict[str, list[str]] = {}
    fields: list[str] = []
    keys, dirs = [], []
    limit = marker = None
    reverse = False
    for key, value in items:
        if key == "fields":
            fields.append(value)
        elif key == "sort_key":
            keys.append(value)
        elif key == "sort_dir":
            dirs.append(value)
        elif key == "limit":
            limit = value
        elif key == "marker":
            marker = value
        elif key == "page_reverse":
            reverse = value.lower() == "true"
        else:
            filters.setdefault(key, []).append(value)
    bad = sorted(set(filters) - FILTERABLE[resource])
    if bad:
        raise policy.unknown_filters(bad)
    if len(keys) != len(dirs):
        raise errors.HTTPBadRequest("The number of sort_keys and sort_dirs must be same")
    bad = [d for d in dirs if d not in ("asc", "desc")]
    if bad:
        raise errors.HTTPBadRequest(f"{bad} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
    bad = [k for k in keys if k not in SORTABLE[resource]]
    if bad:
        raise errors.HTTPBadRequest(f"{bad} is invalid attribute for sort_keys")
    page = _limit(limit)
    return (
        Listing(
            filters=filters,
            sort=list(zip(keys, [d == "asc" for d in dirs], strict=True)),
            limit=page,
            marker=marker if page else None,
            reverse=reverse if page else False,
        ),
        fields,
    )


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        limit = int(value)
        if limit < 0:
            raise ValueError
    except ValueError:
        raise errors.BadRequest(
            resource="limit", msg=f"Limit must be an integer 0 or greater and not '{value}'"
        ) from None
    return min(limit, MAX_LIMIT) or None


def links(
    plural: str, base_url: str, items: Sequence[tuple[str, str]], listing: Listing, page: Sequence[dict[str, Any]]
) -> list[dict[str, str]]:
    """Neutron's ``<plural>_links``: next unless the last page, previous unless the first page read backwards."""
    if not listing.limit:
        return []
    kept = [(k, v) for k, v in items if k not in ("marker", "page_reverse")]
    found: list[dict[str, str]] = []
    if not (len(page) < listing.limit and not listing.reverse) and page:
        found.append({"rel": "next", "href": f"{base_url}?{urlencode([*kept, ('marker', page[-1]['id'])])}"})
    if not (len(page) < listing.limit and listing.reverse):
        back = [*kept, ("marker", page[0]["id"])] if page else kept
        found.append({"rel": "previous", "href": f"{base_url}?{urlencode([*back, ('page_reverse', 'True')])}"})
    return found
