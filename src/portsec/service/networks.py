"""Networks: create, read, update, delete, each in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from portsec.domain import errors, mtu
from portsec.domain.attributes import prepare_create, prepare_update
from portsec.domain.model import Context, Network, Subnet
from portsec.domain.resources import NETWORK
from portsec.service import policy, quotas
from portsec.service.common import (
    ALL,
    Limits,
    Listing,
    check_revision,
    first_boolean_is,
    list_query,
    new_id,
    save_update,
    scope,
    split_constant_filters,
)
from portsec.store import networks as store
from portsec.store import ports as port_store
from portsec.store import subnets as subnet_store
from portsec.store.database import Tx

DEFAULT_LIMITS = Limits()
# Neutron attribute -> column, where they differ.
COLUMNS: Mapping[str, str] = {}
# Shown alike by every network (portsec has no external networks): a filter on it keeps all or none.
CONSTANT_FILTERS = {"router:external": first_boolean_is(False)}


def create(tx: Tx, ctx: Context, body: Any, limits: Limits = DEFAULT_LIMITS) -> Network:
    values = prepare_create(NETWORK, body, ctx.project_id, ctx.is_admin)
    quotas.check_create(tx, limits.quotas, values["project_id"], "network")
    policy.check_network_create(ctx, values, body)
    network = Network(
        id=new_id(),
        project_id=values["project_id"],
        name=values["name"],
        admin_state_up=values["admin_state_up"],
        status="ACTIVE",
        shared=values["shared"],
        port_security_enabled=values["port_security_enabled"],
        mtu=mtu.effective(values["mtu"]),
        description=values["description"],
        revision_number=0,
        created_at=tx.now,
        updated_at=tx.now,
    )
    store.insert(tx.conn, network)
    tx.record("network", network.id, network.project_id, network.revision_number, "create")
    return network


def get(tx: Tx, ctx: Context, network_id: str, for_update: bool = False) -> Network:
    network = store.get(tx.conn, network_id, for_update=for_update)
    if network is None or not policy.can_see_network(ctx, network):
        raise errors.NetworkNotFound(net_id=network_id)
    return network


def get_with_subnets(tx: Tx, ctx: Context, network_id: str) -> tuple[Network, list[Subnet]]:
    """``get``, and the network's subnets in creation order, in one round trip."""
    found = store.get_with_subnets(tx.conn, network_id)
    if found is None or not policy.can_see_network(ctx, found[0]):
        raise errors.NetworkNotFound(net_id=network_id)
    return found


def list_(tx: Tx, ctx: Context, listing: Listing = ALL) -> list[Network]:
    filters, passes = split_constant_filters(listing.filters, CONSTANT_FILTERS)
    subnet_filter = filters.pop("subnets", None)
    if listing.marker:
        get(tx, ctx, listing.marker)
    if not passes:
        return []
    query = list_query(listing, filters, COLUMNS)
    visible = store.visible(scope(ctx.project_id, ctx.is_admin))
    # The store's scope is the project's networks and the shared ones; the policy also asks the reader role.
    return [n for n in store.list_(tx.conn, query, visible, subnet_filter) if policy.can_see_network(ctx, n)]


def update(tx: Tx, ctx: Context, network_id: str, body: Any, if_revision: int | None = None) -> Network:
    values = prepare_update(NETWORK, body)
    old = get(tx, ctx, network_id, for_update=True)
    policy.check_network_update(ctx, old, values)
    check_revision(if_revision, old.revision_number)
    if "mtu" in values:
        values["mtu"] = _changed_mtu(tx, old, values["mtu"])
    return save_update(tx, "network", old, replace(old, **values), store.update)


def _changed_mtu(tx: Tx, network: Network, requested: int) -> int:
    """Neutron checks the request against the subnets first, then gives 0 its meaning (the largest)."""
    mtu.check_change(network.id, requested, (s.ip_version for s in subnet_store.on_network(tx.conn, network.id)))
    return mtu.effective(requested)


def delete(tx: Tx, ctx: Context, network_id: str, if_revision: int | None = None) -> None:
    network = get(tx, ctx, network_id, for_update=True)
    policy.check_network_delete(ctx, network)
    check_revision(if_revision, network.revision_number)
    if port_store.on_network(tx.conn, network_id):
        raise errors.NetworkInUse(net_id=network_id)
    for subnet in subnet_store.on_network(tx.conn, network_id):
        tx.record("subnet", subnet.id, subnet.project_id, subnet.revision_number, "delete")
    store.delete(tx.conn, network_id)
    tx.record("network", network.id, network.project_id, network.revision_number, "delete")
