"""Who may see and change what: Neutron's newest default policy for networks, subnets and ports.

One rule per Neutron policy name (neutron/conf/policies/{network,subnet,port}.py),
over the roles of a project-scoped token. Keystone's role implication (admin >
manager > member > reader) is applied where the context is made (api/auth.py),
so a rule names the lowest role it needs, as Neutron's do.

A request is checked the way neutron.policy builds its match rule: the action,
AND one rule per policy-enforced attribute the request sets, AND one per key of
each dict in a list value (``update_port:allowed_address_pairs:ip_address``).
A refusal names that whole expression, as oslo.policy does
("<rule expression> is disallowed by policy").

A caller who may not see a resource gets its NotFound instead of a 403, so
existence never leaks across projects; that includes creating on a network the
caller cannot see (404 NetworkNotFound, where Neutron's newest rules answer 403).

Where portsec departs from the newest defaults:
- Neutron's ``service`` (and ``advsvc``) roles are not portsec roles, so the
  alternatives that name them are left out.
- ``create_port`` on a shared network needs the member role of the caller's
  project. Neutron's newest rule says "or rule:shared" with no role at all
  (commit 6ffe5056af folded the network-ownership hook into the rule, and the
  rule before it asked for a project member): a reader writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from portsec.domain import errors
from portsec.domain.model import Context, Network, Port, Subnet, is_trusted_owner
from portsec.service.views import ADMIN_ONLY_PORT_KEYS


@dataclass(frozen=True)
class _Target:
    """What a rule looks at: the resource's project, its network, and a port's device_owner."""

    project_id: str
    network: Network | None = None
    device_owner: str = ""


Rule = Callable[[Context, _Target], bool]


def _admin(ctx: Context, _target: _Target) -> bool:
    return ctx.is_admin


def _in_project(role: str) -> Rule:
    """``role:<role> and project_id:%(project_id)s``: the role, in the resource's project."""
    return lambda ctx, target: role in ctx.roles and target.project_id == ctx.project_id


def _network_owner(role: str) -> Rule:
    """``role:<role> and rule:network_owner``: the role, in the project that owns the resource's network."""
    return lambda ctx, target: (
        role in ctx.roles and target.network is not None and target.network.project_id == ctx.project_id
    )


def _shared(_ctx: Context, target: _Target) -> bool:
    """``rule:shared``: the resource's network is shared."""
    return target.network is not None and target.network.shared


def _not_network_device(_ctx: Context, target: _Target) -> bool:
    """``not rule:network_device``: a device_owner that does not make the port trusted."""
    return not is_trusted_owner(target.device_owner)


def _any(*rules: Rule) -> Rule:
    return lambda ctx, target: any(rule(ctx, target) for rule in rules)


def _all(*rules: Rule) -> Rule:
    return lambda ctx, target: all(rule(ctx, target) for rule in rules)


ADMIN = _admin
PROJECT_READER, PROJECT_MEMBER = _in_project("reader"), _in_project("member")
NET_OWNER_READER, NET_OWNER_MEMBER = _network_owner("reader"), _network_owner("member")
NET_OWNER_MANAGER = _network_owner("manager")
ADMIN_OR_PROJECT_MEMBER = _any(ADMIN, PROJECT_MEMBER)
# Neutron's "default" rule, rule:admin_or_owner: the resource's project, whatever the role.
ADMIN_OR_OWNER = _any(ADMIN, lambda ctx, target: target.project_id == ctx.project_id)
ADMIN_OR_NET_OWNER_MEMBER = _any(ADMIN, NET_OWNER_MEMBER)
ADMIN_OR_NET_OWNER_MEMBER_OR_SHARED = _any(ADMIN, NET_OWNER_MEMBER, _shared)
# A port that becomes trusted (device_owner network:*) is the network owner's to make.
DEVICE_OWNER = _any(_not_network_device, ADMIN, NET_OWNER_MEMBER)

RULES: Mapping[str, Rule] = {
    # neutron/conf/policies/network.py
    "create_network": ADMIN_OR_PROJECT_MEMBER,
    "create_network:shared": ADMIN,
    "create_network:port_security_enabled": ADMIN_OR_PROJECT_MEMBER,
    "create_network:mtu": ADMIN_OR_OWNER,  # no rule of its own: Neutron's "default"
    "get_network": _any(ADMIN, PROJECT_READER, _shared),
    "update_network": ADMIN_OR_PROJECT_MEMBER,
    "update_network:shared": ADMIN,
    "update_network:port_security_enabled": ADMIN_OR_PROJECT_MEMBER,
    "update_network:mtu": ADMIN_OR_OWNER,
    "delete_network": ADMIN_OR_PROJECT_MEMBER,
    # neutron/conf/policies/subnet.py
    "create_subnet": ADMIN_OR_NET_OWNER_MEMBER,
    "get_subnet": _any(ADMIN, PROJECT_READER, _shared, NET_OWNER_READER),
    "update_subnet": _any(ADMIN, PROJECT_MEMBER, NET_OWNER_MEMBER),
    "delete_subnet": _any(ADMIN, PROJECT_MEMBER, NET_OWNER_MEMBER),
    # neutron/conf/policies/port.py
    "create_port": _any(ADMIN, NET_OWNER_MEMBER, _all(PROJECT_MEMBER, _shared)),  # see the module's docstring
    "create_port:mac_address": ADMIN_OR_NET_OWNER_MEMBER,
    "create_port:fixed_ips": ADMIN_OR_NET_OWNER_MEMBER_OR_SHARED,
    "create_port:fixed_ips:ip_address": ADMIN_OR_NET_OWNER_MEMBER,
    "create_port:fixed_ips:subnet_id": ADMIN_OR_NET_OWNER_MEMBER_OR_SHARED,
    "create_port:device_id": ADMIN_OR_PROJECT_MEMBER,
    "create_port:device_owner": DEVICE_OWNER,
    "create_port:allowed_address_pairs": ADMIN_OR_NET_OWNER_MEMBER,
    "create_port:allowed_address_pairs:mac_address": ADMIN_OR_NET_OWNER_MEMBER,
    "create_port:allowed_address_pairs:ip_address": ADMIN_OR_NET_OWNER_MEMBER,
    "create_port:binding:vnic_type": ADMIN_OR_PROJECT_MEMBER,
    "create_port:binding:host_id": ADMIN,
    "create_port:port_security_enabled": ADMIN_OR_NET_OWNER_MEMBER,
    "get_port": _any(ADMIN, NET_OWNER_READER, PROJECT_READER),
    "update_port": ADMIN_OR_PROJECT_MEMBER,
    "update_port:mac_address": _any(ADMIN, NET_OWNER_MANAGER),
    "update_port:fixed_ips": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:fixed_ips:ip_address": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:fixed_ips:subnet_id": ADMIN_OR_NET_OWNER_MEMBER_OR_SHARED,
    "update_port:device_id": ADMIN_OR_PROJECT_MEMBER,
    "update_port:device_owner": DEVICE_OWNER,
    "update_port:allowed_address_pairs": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:allowed_address_pairs:mac_address": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:allowed_address_pairs:ip_address": ADMIN_OR_NET_OWNER_MEMBER,
    "update_port:binding:vnic_type": ADMIN_OR_PROJECT_MEMBER,
    "update_port:binding:host_id": ADMIN,
    "update_port:port_security_enabled": ADMIN_OR_NET_OWNER_MEMBER,
    "delete_port": _any(ADMIN, NET_OWNER_MEMBER, PROJECT_MEMBER),
}

# The attributes Neutron marks enforce_policy, in its attribute map's order (core
# attributes, then extensions by file name): the order a refusal lists them in.
_ENFORCED = {
    "network": ("shared", "mtu", "port_security_enabled"),  # netmtu_writable loads before portsecurity
    "subnet": (),
    "port": (
        "mac_address",
        "fixed_ips",
        "device_id",
        "device_owner",
        "allowed_address_pairs",
        "binding:vnic_type",
        "binding:host_id",
        "port_security_enabled",
    ),
}
# Neutron's defaults, for the enforced attributes that have one: on create an
# attribute equal to its default is not checked. The others (a MAC, fixed IPs,
# pairs, a host, a port's port_security_enabled) are checked whenever sent.
_CREATE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "network": {"shared": False, "mtu": 0, "port_security_enabled": True},
    "port": {"device_id": "", "device_owner": "", "binding:vnic_type": "normal"},
}


def _sub_keys(value: Any) -> list[str]:
    """The keys of each dict in a list value, duplicates kept, as Neutron lists their rules."""
    if not isinstance(value, list):
        return []
    return [key for item in value if isinstance(item, dict) for key in item]


def _attribute_rules(action: str, name: str, value: Any) -> list[str]:
    return [f"{action}:{name}", *(f"{action}:{name}:{key}" for key in _sub_keys(value))]


def _expression(action: str, attributes: Mapping[str, Any]) -> str:
    """oslo.policy's text of Neutron's match rule: ``((rule:a and rule:a:x) and (rule:a:y and (rule:a:y:k)))``."""
    text = f"rule:{action}"
    for name, value in attributes.items():
        keys = " and ".join(f"rule:{action}:{name}:{key}" for key in _sub_keys(value))
        text = f"({text} and {f'(rule:{action}:{name} and ({keys}))' if keys else f'rule:{action}:{name}'})"
    return text


def _refuse(action: str, attributes: Mapping[str, Any]) -> errors.PolicyNotAuthorized:
    return errors.PolicyNotAuthorized(action=_expression(action, attributes))


def _enforce(ctx: Context, action: str, target: _Target, attributes: Mapping[str, Any] | None = None) -> None:
    attributes = attributes or {}
    names = [action, *(rule for name, value in attributes.items() for rule in _attribute_rules(action, name, value))]
    if not all(RULES[name](ctx, target) for name in names):
        raise _refuse(action, attributes)


def _set_by(resource: str, values: Mapping[str, Any], sent: Iterable[str], creating: bool) -> dict[str, Any]:
    """The enforced attributes a request sets, in Neutron's order, with their values.

    ``sent``: the attributes the request body really carried (filled-in defaults are not).
    """
    sent = set(sent)
    defaults = _CREATE_DEFAULTS.get(resource, {}) if creating else {}
    return {
        name: values[name]
        for name in _ENFORCED[resource]
        if name in sent and not (name in defaults and values[name] == defaults[name])
    }


# Reading ------------------------------------------------------------------------------------------------


def can_see_network(ctx: Context, network: Network) -> bool:
    return RULES["get_network"](ctx, _Target(network.project_id, network))


def can_see_subnet(ctx: Context, subnet: Subnet, network: Network) -> bool:
    return RULES["get_subnet"](ctx, _Target(subnet.project_id, network))


def can_see_port(ctx: Context, port: Port, network: Network) -> bool:
    return RULES["get_port"](ctx, _Target(port.project_id, network, port.device_owner))


def reads_projects(ctx: Context) -> bool:
    """Whether the caller may read anything by project or network ownership (every rule for that asks reader)."""
    return ctx.is_admin or "reader" in ctx.roles


def hidden_port_attributes(ctx: Context) -> frozenset[str]:
    """``get_port:binding:{host_id,vif_type,vif_details,profile}``: admin only; others never see them."""
    return frozenset() if ctx.is_admin else frozenset(ADMIN_ONLY_PORT_KEYS)


def unknown_filters(keys: Iterable[str]) -> errors.HTTPBadRequest:
    """Neutron's answer to a filter on an attribute it does not know (filter-validation on)."""
    return errors.HTTPBadRequest(f"{sorted(keys)} is invalid attribute for filtering")


def check_port_filters(ctx: Context, filters: Iterable[str]) -> None:
    """An attribute hidden from the caller is unknown to it, as a filter too: filtering would reveal its value."""
    hidden = hidden_port_attributes(ctx) & set(filters)
    if hidden:
        raise unknown_filters(hidden)


# Writing ------------------------------------------------------------------------------------------------


def check_network_create(ctx: Context, values: Mapping[str, Any], sent: Iterable[str]) -> None:
    attributes = _set_by("network", values, sent, creating=True)
    _enforce(ctx, "create_network", _Target(values["project_id"]), attributes)


def check_network_update(ctx: Context, network: Network, values: Mapping[str, Any]) -> None:
    attributes = _set_by("network", values, values, creating=False)
    _enforce(ctx, "update_network", _Target(network.project_id, network), attributes)


def check_network_delete(ctx: Context, network: Network) -> None:
    _enforce(ctx, "delete_network", _Target(network.project_id, network))


def check_subnet_create(ctx: Context, network: Network, values: Mapping[str, Any]) -> None:
    _enforce(ctx, "create_subnet", _Target(values["project_id"], network))


def check_subnet_change(ctx: Context, action: str, subnet: Subnet, network: Network) -> None:
    """``update_subnet`` or ``delete_subnet``."""
    _enforce(ctx, action, _Target(subnet.project_id, network))


def check_port_create(ctx: Context, network: Network, values: Mapping[str, Any], sent: Iterable[str]) -> None:
    target = _Target(values["project_id"], network, values["device_owner"])
    _enforce(ctx, "create_port", target, _set_by("port", values, sent, creating=True))


def check_port_update(ctx: Context, port: Port, network: Network, values: Mapping[str, Any]) -> None:
    """The target is the port as the request would leave it (Neutron merges the request into it)."""
    target = _Target(port.project_id, network, values.get("device_owner", port.device_owner))
    _enforce(ctx, "update_port", target, _set_by("port", values, values, creating=False))


def check_port_delete(ctx: Context, port: Port, network: Network) -> None:
    _enforce(ctx, "delete_port", _Target(port.project_id, network, port.device_owner))
