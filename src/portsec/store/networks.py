"""Network rows <-> Network values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from portsec.domain.model import Network, Subnet
from portsec.store.query import ListQuery, fetch_page, filter_clauses
from portsec.store.schema import networks, subnets
from portsec.store.subnets import subnet_row


def _values(network: Network) -> dict[str, Any]:
    values = asdict(network)
    del values["subnet_ids"]
    return values


def _subnet_ids(conn: Connection, where: ColumnElement[bool]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    rows = conn.execute(sa.select(subnets.c.network_id, subnets.c.id).where(where).order_by(subnets.c.id))
    for network_id, subnet_id in rows:
        found[network_id].append(subnet_id)
    return found


def insert(conn: Connection, network: Network) -> None:
    conn.execute(networks.insert().values(**_values(network)))


_GET = (
    sa.select(networks, subnets.c.id.label("subnet_id"))
    .outerjoin(subnets, subnets.c.network_id == networks.c.id)
    .where(networks.c.id == sa.bindparam("network_id"))
    .order_by(subnets.c.id)
)
_GET_FOR_UPDATE = _GET.with_for_update(of=networks)


def get(conn: Connection, network_id: str, for_update: bool = False) -> Network | None:
    """The network and its subnet ids in one round trip."""
    rows = conn.execute(_GET_FOR_UPDATE if for_update else _GET, {"network_id": network_id}).all()
    if not rows:
        return None
    values = {c.name: rows[0]._mapping[c.name] for c in networks.c}
    return Network(**values, subnet_ids=tuple(r.subnet_id for r in rows if r.subnet_id is not None))


_WITH_SUBNETS = (
    sa.select(networks, *[c.label(f"subnet_{c.name}") for c in subnets.c])
    .outerjoin(subnets, subnets.c.network_id == networks.c.id)
    .where(networks.c.id == sa.bindparam("network_id"))
    .order_by(subnets.c.created_at, subnets.c.id)
)


def get_with_subnets(conn: Connection, network_id: str) -> tuple[Network, list[Subnet]] | None:
    """The network and its subnets (in creation order, as ``subnets.on_network``) in one round trip."""
    rows = conn.execute(_WITH_SUBNETS, {"network_id": network_id}).all()
    if not rows:
        return None
    values = {c.name: rows[0]._mapping[c.name] for c in networks.c}
    found = [
        subnet_row({c.name: r._mapping[f"subnet_{c.name}"] for c in subnets.c})
        for r in rows
        if r._mapping["subnet_id"] is not None
    ]
    network = Network(**values, subnet_ids=tuple(sorted(s.id for s in found)))
    return network, found


def visible(project_id: str | None) -> ColumnElement[bool]:
    """A project sees its own networks and the shared ones; None means all (admin)."""
    if project_id is None:
        return sa.true()
    return sa.or_(networks.c.project_id == project_id, networks.c.shared.is_(True))


def list_(
    conn: Connection, query: ListQuery, scope: ColumnElement[bool], subnet_filter: Sequence[str] | None = None
) -> list[Network]:
    stmt = sa.select(networks).where(scope, *filter_clauses(networks, query.filters))
    if subnet_filter is not None:
        stmt = stmt.where(networks.c.id.in_(sa.select(subnets.c.network_id).where(subnets.c.id.in_(subnet_filter))))
    rows = fetch_page(conn, stmt, networks, query)
    ids = _subnet_ids(conn, subnets.c.network_id.in_([r.id for r in rows])) if rows else {}
    return [Network(**r._mapping, subnet_ids=tuple(ids[r.id])) for r in rows]


def update(conn: Connection, old: Network, new: Network) -> None:
    changed = {k: v for k, v in _values(new).items() if _values(old)[k] != v}
    if changed:
        conn.execute(networks.update().where(networks.c.id == old.id).values(**changed))


def delete(conn: Connection, network_id: str) -> None:
    conn.execute(subnets.delete().where(subnets.c.network_id == network_id))
    conn.execute(networks.delete().where(networks.c.id == network_id))


def touch(conn: Connection, network: Network, now: Any) -> Network:
    """Bump a network's revision because a child (a subnet) changed."""
    bumped = replace(network, revision_number=network.revision_number + 1, updated_at=now)
    update(conn, network, bumped)
    return bumped
