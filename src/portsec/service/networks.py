"""Networks: create, read, update, delete, each in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from portsec.domain import errors
from portsec.domain.attributes import prepare_create, prepare_update
from portsec.domain.model import Context, Network, Subnet
from portsec.domain.resources import NETWORK
from portsec.service import policy
from portsec.service.common import ALL, Listing, check_revision, list_query, new_id, scope
from portsec.store import networks as store
from portsec.store import ports as port_store
from portsec.store import subnets as subnet_store
from portsec.store.database import Tx

DEFAULT_MTU = 1500
# Neutron attribute -> column, where they differ.
COLUMNS: Mapping[str, str] = {}


def create(tx: Tx, ctx: Context, body: Any) -> Network:
    values = prepare_create(NETWORK, body, ctx.project_id, ctx.is_admin)
    policy.check_network_create(ctx, values)
    network = Network(
        id=new_id(),
        project_id=values["project_id"],
        name=values["name"],
        admin_state_up=values["admin_state_up"],
        status="ACTIVE",
        shared=values["shared"],
        port_security_enabled=values["port_security_enabled"],
        mtu=DEFAULT_MTU,
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
    filters = dict(listing.filters)
    subnet_filter = filters.pop("subnets", None)
    if listing.marker:
        get(tx, ctx, listing.marker)
    query = list_query(listing, filters, COLUMNS)
    visible = store.visible(scope(ctx.project_id, ctx.is_admin))
    return store.list_(tx.conn, query, visible, subnet_filter)


def update(tx: Tx, ctx: Context, network_id: str, body: Any, if_revision: int | None = None) -> Network:
    values = prepare_update(NETWORK, body)
    old = get(tx, ctx, network_id, for_update=True)
    policy.check_network_owner(ctx, old, "update_network", values)
    check_revision(if_revision, old.revision_number)
    new = replace(old, **values)
    if new == old:
        return old
    new = replace(new, revision_number=old.revision_number + 1, updated_at=tx.now)
    store.update(tx.conn, old, new)
    tx.record("network", new.id, new.project_id, new.revision_number, "update")
    return new


def delete(tx: Tx, ctx: Context, network_id: str, if_revision: int | None = None) -> None:
    network = get(tx, ctx, network_id, for_update=True)
    policy.check_network_owner(ctx, network, "delete_network", {})
    check_revision(if_revision, network.revision_number)
    if port_store.on_network(tx.conn, network_id):
        raise errors.NetworkInUse(net_id=network_id)
    for subnet in subnet_store.on_network(tx.conn, network_id):
        tx.record("subnet", subnet.id, subnet.project_id, subnet.revision_number, "delete")
    store.delete(tx.conn, network_id)
    tx.record("network", network.id, network.project_id, network.revision_number, "delete")
