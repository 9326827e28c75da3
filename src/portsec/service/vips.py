"""VIPs (issue 11): the host pairs two or more ports of a network carry, and which port answered for each, when.

The agent calls :func:`record` when it sees a port claim a VIP (a gratuitous ARP or
neighbour advertisement); `portsec vip list|show` and ``GET /v2.0/vips[/{ip}]`` call
:func:`list_` and :func:`show`. A configured VIP is what the pair lint calls one
(:data:`portsec.domain.pair_lint.VIP`); a VIP seen in ``vip_moves`` is listed even
after its pairs are gone, so its history stays readable.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from portsec.domain import errors
from portsec.domain.model import Context, Port
from portsec.domain.pair_lint import VIP, lint_pairs
from portsec.service import policy
from portsec.service.views import observed_at
from portsec.store import ports as port_store
from portsec.store.database import Tx
from portsec.store.query import ListQuery
from portsec.store.schema import vip_moves

HISTORY = 20  # moves shown per VIP, newest first
KEPT = 100  # rows kept per VIP: a flapping pair (split brain) writes one a second, and no table may grow forever

Key = tuple[str, str]  # (network ID, IP address in canonical form)


class VipNotFound(errors.NotFound):
    message = "VIP %(ip_address)s could not be found."


class VipOnSeveralNetworks(errors.Conflict):
    message = (
        "%(ip_address)s is a VIP on several networks (%(networks)s): give the network (--network, or network_id=)."
    )


def canonical_ip(text: str) -> str:
    """The address as the switch writes it (``10.0.0.5``, ``fd00::5``); ValueError if it is none."""
    return str(ipaddress.ip_address(text.strip()))


class Claim(NamedTuple):
    """What :func:`record` did: wrote a row (the first holder seen, or a move), and who held the VIP before."""

    written: bool
    previous: str | None


def record(tx: Tx, network_id: str, ip_address: str, port_id: str, at: float, host: str) -> Claim:
    """Note that ``port_id`` answers for the VIP now: a row only when the owner changes."""
    ip = canonical_ip(ip_address)
    this_vip = (vip_moves.c.network_id == network_id, vip_moves.c.ip_address == ip)
    latest = sa.select(vip_moves.c.port_id, vip_moves.c.sequence).where(*this_vip).order_by(vip_moves.c.id.desc())
    row = tx.conn.execute(latest.limit(1)).first()
    owner, sequence = (row.port_id, row.sequence) if row is not None else (None, 0)
    if owner == port_id:
        return Claim(False, owner)
    tx.conn.execute(
        vip_moves.insert().values(
            network_id=network_id, ip_address=ip, port_id=port_id, previous_port_id=owner, moved_at=at, host=host,
            sequence=sequence + 1,
        )
    )  # fmt: skip
    tx.conn.execute(vip_moves.delete().where(*this_vip, vip_moves.c.sequence <= sequence + 1 - KEPT))
    return Claim(True, owner)


def _moves(tx: Tx, network_id: str | None, ip: str | None) -> dict[Key, list[Mapping[str, Any]]]:
    """Every move per VIP, oldest first."""
    stmt = sa.select(vip_moves).order_by(vip_moves.c.id)
    if network_id is not None:
        stmt = stmt.where(vip_moves.c.network_id == network_id)
    if ip is not None:
        stmt = stmt.where(vip_moves.c.ip_address == ip)
    found: dict[Key, list[Mapping[str, Any]]] = defaultdict(list)
    for row in tx.conn.execute(stmt):
        found[(row.network_id, row.ip_address)].append(dict(row._mapping))
    return found


def configured(all_ports: Sequence[Port]) -> dict[Key, list[str]]:
    """The VIPs the ports' pairs make (the pair lint's ``vip`` findings): port IDs carrying each, sorted."""
    return {(f.network_id, f.address): sorted(f.port_ids) for f in lint_pairs(all_ports) if f.check == VIP}


def list_(tx: Tx, ctx: Context, network_id: str | None = None, ip_address: str | None = None) -> list[dict[str, Any]]:
    """Configured VIPs and VIPs ever claimed, with owner and history, as ``ctx`` may see them."""
    ip = None
    if ip_address is not None:
        try:
            ip = canonical_ip(ip_address)
        except ValueError:
            raise errors.HTTPBadRequest(
                f"Invalid input for ip_address. Reason: '{ip_address}' is not a valid IP address."
            ) from None
    if not policy.reads_projects(ctx):
        return []  # as ports.list_: what a project sees of its ports, it sees with the reader role
    filters = {"network_id": [network_id]} if network_id is not None else {}
    all_ports = port_store.list_(tx.conn, ListQuery(filters=filters), sa.true())
    carried = configured(all_ports)
    if ip is not None:
        carried = {k: v for k, v in carried.items() if k[1] == ip}
    moves = _moves(tx, network_id, ip)
    project_of = {p.id: p.project_id for p in all_ports}
    missing = {r["port_id"] for rows in moves.values() for r in rows[-1:]} - set(project_of)
    if missing:  # an owner on another network than the filter (cannot be) or deleted: ask anyway
        for p in port_store.list_(tx.conn, ListQuery(filters={"id": sorted(missing)}), sa.true()):
            project_of[p.id] = p.project_id
    shown = []
    for key in set(carried) | set(moves):
        rows = moves.get(key, [])
        owner = rows[-1]["port_id"] if rows else None
        ids = carried.get(key, [])
        if not ctx.is_admin and not any(
            project_of.get(i) == ctx.project_id for i in [*ids, *([owner] if owner else [])]
        ):
            continue
        shown.append(_view(key, ids, rows))
    return sorted(shown, key=_order)


def _view(key: Key, ids: list[str], rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    since = observed_at(rows[-1]["moved_at"]) if rows else None
    moves = rows[-1]["sequence"] - 1 if rows else 0  # all of them: the oldest rows may be pruned
    return {
        "network_id": key[0],
        "ip_address": key[1],
        "ports": ids,
        "port_id": rows[-1]["port_id"] if rows else None,
        "since": since,
        "moves": moves,
        "last_move": since if moves else None,
        "history": [
            {
                "port_id": r["port_id"],
                "previous_port_id": r["previous_port_id"],
                "at": observed_at(r["moved_at"]),
                "host": r["host"],
            }
            for r in reversed(rows[-HISTORY:])
        ],
    }


def _order(vip: Mapping[str, Any]) -> tuple[str, int, int]:
    address = ipaddress.ip_address(vip["ip_address"])
    return vip["network_id"], address.version, int(address)


def show(tx: Tx, ctx: Context, ip_address: str, network_id: str | None) -> dict[str, Any]:
    """One VIP; VipNotFound when ``ctx`` sees none, VipOnSeveralNetworks when no network says which."""
    found = list_(tx, ctx, network_id, ip_address)
    if not found:
        raise VipNotFound(ip_address=ip_address)
    if len(found) > 1:
        networks = ", ".join(v["network_id"] for v in found)
        raise VipOnSeveralNetworks(ip_address=found[0]["ip_address"], networks=networks)
    return found[0]
