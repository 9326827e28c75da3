"""Who may see and change what: Neutron's default policy, reduced to the rules portsec needs.

Refusals carry oslo.policy's message form ("<rule> is disallowed by policy").
A caller who may not see a resource gets its NotFound instead of a 403, so
existence never leaks across projects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portsec.domain import errors
from portsec.domain.model import TRUSTED_OWNER_PREFIX, Context, Network, Port

# Attributes only the network's owner (or an admin) may set on a port.
NETWORK_OWNER_PORT_ATTRS = ("mac_address", "port_security_enabled", "allowed_address_pairs")
ADMIN_ONLY_PORT_ATTRS = ("binding:host_id",)


def _refuse(action: str, attrs: Iterable[str]) -> errors.PolicyNotAuthorized:
    rules = " and ".join([f"rule:{action}", *(f"rule:{action}:{a}" for a in attrs)])
    return errors.PolicyNotAuthorized(action=f"({rules})")


def can_see_network(ctx: Context, network: Network) -> bool:
    return ctx.is_admin or network.project_id == ctx.project_id or network.shared


def can_see_port(ctx: Context, port: Port) -> bool:
    return ctx.is_admin or port.project_id == ctx.project_id


def check_network_create(ctx: Context, values: Mapping[str, Any]) -> None:
    if values.get("shared") and not ctx.is_admin:
        raise _refuse("create_network", ["shared"])


def check_network_owner(ctx: Context, network: Network, action: str, values: Mapping[str, Any]) -> None:
    if ctx.is_admin:
        return
    if network.project_id != ctx.project_id:
        raise _refuse(action, [])
    if "shared" in values:
        raise _refuse(action, ["shared"])


def check_port_write(
    ctx: Context, network: Network, action: str, values: Mapping[str, Any], explicit: Iterable[str]
) -> None:
    """``explicit``: the attributes the request really carried (defaults are not checked)."""
    if ctx.is_admin:
        return
    explicit = set(explicit)
    owner = network.project_id == ctx.project_id
    refused = [a for a in ADMIN_ONLY_PORT_ATTRS if a in explicit and values.get(a)]
    if not owner:
        refused += [a for a in NETWORK_OWNER_PORT_ATTRS if a in explicit]
        fixed_ips = values.get("fixed_ips")
        if isinstance(fixed_ips, list) and any(isinstance(f, dict) and "ip_address" in f for f in fixed_ips):
            refused.append("fixed_ips:ip_address")
    if str(values.get("device_owner", "")).startswith(TRUSTED_OWNER_PREFIX) and not owner:
        refused.append("device_owner")
    manager = owner and "manager" in ctx.roles
    if action == "update_port" and "mac_address" in explicit and not manager and "mac_address" not in refused:
        refused.append("mac_address")  # a MAC change needs the network owner's manager role
    if refused:
        raise _refuse(action, refused)
