"""Subnet rows <-> Subnet values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from portsec.domain.model import AllocationPool, Subnet
from portsec.store.query import ListQuery, fetch_page, filter_clauses
from portsec.store.schema import ip_allocations, networks, subnets


def _values(subnet: Subnet) -> dict[str, Any]:
    values = asdict(subnet)
    values["allocation_pools"] = [{"start": p.start, "end": p.end} for p in subnet.allocation_pools]
    values["dns_nameservers"] = list(subnet.dns_nameservers)
    values["host_routes"] = [{"destination": d, "nexthop": n} for d, n in subnet.host_routes]
    return values


def subnet_row(mapping: Mapping[Any, Any]) -> Subnet:
    values = dict(mapping)
    values["allocation_pools"] = tuple(AllocationPool(p["start"], p["end"]) for p in values["allocation_pools"])
    values["dns_nameservers"] = tuple(values["dns_nameservers"])
    values["host_routes"] = tuple((r["destination"], r["nexthop"]) for r in values["host_routes"])
    return Subnet(**values)


def insert(conn: Connection, subnet: Subnet) -> None:
    conn.execute(subnets.insert().values(**_values(subnet)))


def get(conn: Connection, subnet_id: str) -> Subnet | None:
    row = conn.execute(sa.select(subnets).where(subnets.c.id == subnet_id)).one_or_none()
    return None if row is None else subnet_row(row._mapping)


def on_network(conn: Connection, network_id: str) -> list[Subnet]:
    """A network's subnets in creation order: automatic allocation tries them in turn."""
    stmt = sa.select(subnets).where(subnets.c.network_id == network_id).order_by(subnets.c.created_at, subnets.c.id)
    return [subnet_row(r._mapping) for r in conn.execute(stmt)]


def visible(project_id: str | None) -> ColumnElement[bool]:
    """Subnets are visible with their network: own project's or shared."""
    if project_id is None:
        return sa.true()
    shared = sa.select(networks.c.id).where(networks.c.shared.is_(True))
    return sa.or_(subnets.c.project_id == project_id, subnets.c.network_id.in_(shared))


def list_(
    conn: Connection, query: ListQuery, scope: ColumnElement[bool], network_shared: bool | None = None
) -> list[Subnet]:
    """``network_shared``: only the subnets of networks whose ``shared`` is that (None: any)."""
    stmt = sa.select(subnets).where(scope, *filter_clauses(subnets, query.filters))
    if network_shared is not None:
        of_networks = sa.select(networks.c.id).where(networks.c.shared.is_(network_shared))
        stmt = stmt.where(subnets.c.network_id.in_(of_networks))
    rows = fetch_page(conn, stmt, subnets, query)
    return [subnet_row(r._mapping) for r in rows]


def update(conn: Connection, old: Subnet, new: Subnet) -> None:
    before = _values(old)
    changed = {k: v for k, v in _values(new).items() if before[k] != v}
    if changed:
        conn.execute(subnets.update().where(subnets.c.id == old.id).values(**changed))


def in_use(conn: Connection, subnet_id: str) -> bool:
    stmt = sa.select(ip_allocations.c.port_id).where(ip_allocations.c.subnet_id == subnet_id).limit(1)
    return conn.execute(stmt).first() is not None


def delete(conn: Connection, subnet_id: str) -> None:
    conn.execute(subnets.delete().where(subnets.c.id == subnet_id))
