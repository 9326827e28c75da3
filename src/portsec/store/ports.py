"""Port rows, their IP allocations and allowed address pairs <-> Port values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from portsec.domain.model import AllowedPair, FixedIp, Network, Port, sorted_fixed_ips, sorted_pairs
from portsec.store.query import ListQuery, fetch_page, filter_clauses
from portsec.store.schema import allowed_address_pairs, ip_allocations, networks, ports, source_samples, subnets

_CHILDREN = ("fixed_ips", "allowed_address_pairs", "security_groups")
_COLUMNS = tuple(f.name for f in fields(Port) if f.name not in _CHILDREN)


def _values(port: Port) -> dict[str, Any]:
    """The row's columns (all scalars: a shallow read is what ``asdict`` gave, without its deep copy)."""
    return {name: getattr(port, name) for name in _COLUMNS}


# Hot-path statements, built once and given their values at execute: building
# a statement per call costs more than its round trip.
_INSERT_IPS = ip_allocations.insert()
_INSERT_PAIRS = allowed_address_pairs.insert()
_UPDATE = ports.update().where(ports.c.id == sa.bindparam("old_id"))  # SET: the columns passed at execute
_DELETE_IP = ip_allocations.delete().where(
    ip_allocations.c.subnet_id == sa.bindparam("old_subnet_id"),
    ip_allocations.c.ip_address == sa.bindparam("old_ip_address"),
)
_DELETE_PAIRS = allowed_address_pairs.delete().where(allowed_address_pairs.c.port_id == sa.bindparam("old_port_id"))


@cache
def _insert_or_nothing_stmt(dialect_name: str, table: sa.Table, conflict: tuple[str, ...]) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return stmt.returning(sa.literal_column("1"))


def _insert_or_nothing(conn: Connection, table: sa.Table, conflict: tuple[str, ...], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING: True when the row went in.

    One round trip where a SELECT and an INSERT were two; a row another
    transaction is inserting is waited for, as a plain INSERT would.
    """
    stmt = _insert_or_nothing_stmt(conn.dialect.name, table, conflict)
    return conn.execute(stmt, values).first() is not None


def insert_row(conn: Connection, port: Port) -> bool:
    """The port's own row, without its children; False (nothing written) when its MAC is in use on its network."""
    return _insert_or_nothing(conn, ports, ("network_id", "mac_address"), _values(port))


def claim_ip(conn: Connection, port_id: str, fixed: FixedIp) -> bool:
    """Allocate an address to a port whose row exists; False (nothing written) when the address is taken."""
    values = {"port_id": port_id, "subnet_id": fixed.subnet_id, "ip_address": fixed.ip_address}
    return _insert_or_nothing(conn, ip_allocations, ("subnet_id", "ip_address"), values)


def insert_children(conn: Connection, port: Port, skip_ips: Sequence[FixedIp] = ()) -> None:
    """A new port's allocations (but those already claimed) and pairs."""
    _insert_ips(conn, port.id, [f for f in port.fixed_ips if f not in skip_ips])
    _insert_pairs(conn, port.id, port.allowed_address_pairs)


def _insert_ips(conn: Connection, port_id: str, ips: Sequence[FixedIp]) -> None:
    if ips:
        rows = [{"port_id": port_id, "subnet_id": f.subnet_id, "ip_address": f.ip_address} for f in ips]
        conn.execute(_INSERT_IPS, rows)


def _insert_pairs(conn: Connection, port_id: str, pairs: Sequence[AllowedPair]) -> None:
    if pairs:
        rows = [{"port_id": port_id, "mac_address": p.mac_address, "ip_address": p.ip_address} for p in pairs]
        conn.execute(_INSERT_PAIRS, rows)


def _children(ids: Any) -> Any:
    """A port's allocations and pairs in one UNION ALL: kind "i" rows are (subnet, address), "p" rows (mac, address)."""
    alloc = ip_allocations.c
    aap = allowed_address_pairs.c
    return sa.union_all(
        sa.select(alloc.port_id, sa.literal_column("'i'").label("kind"), alloc.subnet_id, alloc.ip_address).where(
            alloc.port_id.in_(ids)
        ),
        sa.select(aap.port_id, sa.literal_column("'p'"), aap.mac_address, aap.ip_address).where(aap.port_id.in_(ids)),
    )


_CHILDREN_OF = _children(sa.bindparam("ids", expanding=True))


def _assemble(
    conn: Connection, rows: Sequence[Mapping[Any, Any]], where: Sequence[ColumnElement[bool]] = ()
) -> list[Port]:
    """Rows (as mappings) plus their children, in two more queries whatever the number of ports.

    Children are selected by id for a few rows, and by the list's own conditions
    for many (a superset when paged), so no statement carries thousands of ids.
    """
    if not rows:
        return []
    few = len(rows) <= 500 or not where
    if few:  # the prebuilt statement, the ids as an expanding parameter
        found = conn.execute(_CHILDREN_OF, {"ids": [r["id"] for r in rows]})
    else:
        found = conn.execute(_children(sa.select(ports.c.id).where(*where)))
    ips: dict[str, list[FixedIp]] = defaultdict(list)
    pairs: dict[str, list[AllowedPair]] = defaultdict(list)
    for port_id, kind, first, address in found:
        if kind == "i":
            ips[port_id].append(FixedIp(first, address))
        else:
            pairs[port_id].append(AllowedPair(first, address))
    return [
        Port(**r, fixed_ips=sorted_fixed_ips(ips[r["id"]]), allowed_address_pairs=sorted_pairs(pairs[r["id"]]))
        for r in rows
    ]


_GET = sa.select(ports).where(ports.c.id == sa.bindparam("port_id"))
_GET_FOR_UPDATE = _GET.with_for_update()


def get(conn: Connection, port_id: str, for_update: bool = False) -> Port | None:
    row = conn.execute(_GET_FOR_UPDATE if for_update else _GET, {"port_id": port_id}).one_or_none()
    return None if row is None else _assemble(conn, [row._mapping])[0]


# The port with its network and the network's subnet ids, one row per subnet;
# network columns are prefixed "net_". For update, only the port's row is locked.
_GET_WITH_NETWORK = (
    sa.select(ports, *[c.label(f"net_{c.name}") for c in networks.c], subnets.c.id.label("net_subnet_id"))
    .join(networks, networks.c.id == ports.c.network_id)
    .outerjoin(subnets, subnets.c.network_id == networks.c.id)
    .where(ports.c.id == sa.bindparam("port_id"))
    .order_by(subnets.c.id)
)
_GET_WITH_NETWORK_FOR_UPDATE = _GET_WITH_NETWORK.with_for_update(of=ports)


def get_with_network(conn: Connection, port_id: str, for_update: bool = False) -> tuple[Port, Network] | None:
    """``get`` and ``networks.get`` of its network, in one round trip for both rows (only the port locked)."""
    rows = conn.execute(_GET_WITH_NETWORK_FOR_UPDATE if for_update else _GET_WITH_NETWORK, {"port_id": port_id}).all()
    if not rows:
        return None
    first = rows[0]._mapping
    network = Network(
        **{c.name: first[f"net_{c.name}"] for c in networks.c},
        subnet_ids=tuple(r.net_subnet_id for r in rows if r.net_subnet_id is not None),
    )
    port = _assemble(conn, [{c.name: first[c.name] for c in ports.c}])[0]
    return port, network


def visible(project_id: str | None) -> ColumnElement[bool]:
    """A project sees its ports and every port on its networks (Neutron's get_port); None means all (admin)."""
    if project_id is None:
        return sa.true()
    own_networks = sa.select(networks.c.id).where(networks.c.project_id == project_id)
    return sa.or_(ports.c.project_id == project_id, ports.c.network_id.in_(own_networks))


def list_(
    conn: Connection,
    query: ListQuery,
    scope: ColumnElement[bool],
    fixed_ip_filters: Mapping[str, Sequence[str]] | None = None,
) -> list[Port]:
    where = [scope, *filter_clauses(ports, query.filters)]
    if fixed_ip_filters:
        allocs = sa.select(ip_allocations.c.port_id)
        if "ip_address" in fixed_ip_filters:
            allocs = allocs.where(ip_allocations.c.ip_address.in_(list(fixed_ip_filters["ip_address"])))
        if "subnet_id" in fixed_ip_filters:
            allocs = allocs.where(ip_allocations.c.subnet_id.in_(list(fixed_ip_filters["subnet_id"])))
        for substr in fixed_ip_filters.get("ip_address_substr", ()):
            allocs = allocs.where(ip_allocations.c.ip_address.contains(substr, autoescape=True))
        where.append(ports.c.id.in_(allocs))
    rows = fetch_page(conn, sa.select(ports).where(*where), ports, query)
    return _assemble(conn, [r._mapping for r in rows], where)


def update(conn: Connection, old: Port, new: Port) -> None:
    """Write only what differs: the row's columns, changed allocations, the pair set."""
    before = _values(old)
    changed = {k: v for k, v in _values(new).items() if before[k] != v}
    if changed:
        conn.execute(_UPDATE, {"old_id": old.id, **changed})
    gone = set(old.fixed_ips) - set(new.fixed_ips)
    for fixed in gone:
        conn.execute(_DELETE_IP, {"old_subnet_id": fixed.subnet_id, "old_ip_address": fixed.ip_address})
    _insert_ips(conn, old.id, [f for f in new.fixed_ips if f not in set(old.fixed_ips)])
    if set(old.allowed_address_pairs) != set(new.allowed_address_pairs):
        conn.execute(_DELETE_PAIRS, {"old_port_id": old.id})
        _insert_pairs(conn, old.id, new.allowed_address_pairs)


def delete(conn: Connection, port_id: str) -> None:
    # Children go explicitly: SQLite only cascades with foreign_keys on.
    conn.execute(ip_allocations.delete().where(ip_allocations.c.port_id == port_id))
    conn.execute(allowed_address_pairs.delete().where(allowed_address_pairs.c.port_id == port_id))
    conn.execute(source_samples.delete().where(source_samples.c.port_id == port_id))  # vip_moves stay: history
    conn.execute(ports.delete().where(ports.c.id == port_id))


def mac_in_use(conn: Connection, network_id: str, mac: str) -> bool:
    stmt = sa.select(ports.c.id).where(ports.c.network_id == network_id, ports.c.mac_address == mac)
    return conn.execute(stmt.limit(1)).first() is not None


def ip_owner(conn: Connection, subnet_id: str, address: str) -> str | None:
    stmt = sa.select(ip_allocations.c.port_id).where(
        ip_allocations.c.subnet_id == subnet_id, ip_allocations.c.ip_address == address
    )
    return conn.execute(stmt).scalar_one_or_none()


def used_ips(conn: Connection, subnet_id: str) -> set[str]:
    stmt = sa.select(ip_allocations.c.ip_address).where(ip_allocations.c.subnet_id == subnet_id)
    return set(conn.scalars(stmt))


def on_network(conn: Connection, network_id: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(ports).where(ports.c.network_id == network_id)
    return int(conn.execute(stmt).scalar_one())


def ids_on_subnet(conn: Connection, subnet_id: str) -> list[tuple[str, str]]:
    """(port id, device_owner) of each port with an address on the subnet, in id order (the order they lock in)."""
    stmt = (
        sa.select(ports.c.id, ports.c.device_owner)
        .join(ip_allocations, ip_allocations.c.port_id == ports.c.id)
        .where(ip_allocations.c.subnet_id == subnet_id)
        .distinct()
        .order_by(ports.c.id)
    )
    return [(row.id, row.device_owner) for row in conn.execute(stmt)]
