"""Sampled sources (issue 11): what (MAC, IP) each port sent from, per drop reason, and the pairs to allow them.

The agent calls :func:`record` with what it sampled; ``GET /v2.0/ports/{id}/drops``
and `portsec port set --enable-port-security --dry-run` show :func:`of_port` and
:func:`suggested_pairs`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from portsec.guards import guard_from_view
from portsec.service.views import observed_at
from portsec.store.database import Tx
from portsec.store.schema import ports, source_samples

MAX_SOURCES_PER_PORT = 64  # distinct (reason, MAC, IP) kept per port: a port spraying sources fills no table

Key = tuple[str, str, str, str]  # (port ID, reason, MAC, IP)


@dataclass(frozen=True)
class Sample:
    """``packets`` frames from (mac_address, ip_address) seen on ``port_id`` for ``reason``, up to ``at`` (epoch)."""

    port_id: str
    reason: str
    mac_address: str
    ip_address: str  # '' when the frame had no IP source
    packets: int
    at: float


@cache
def _upsert(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(source_samples)
    t, new = source_samples.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[t.port_id, t.reason, t.mac_address, t.ip_address],
        set_={
            "packets": t.packets + new.packets,
            "first_seen": sa.case((new.first_seen < t.first_seen, new.first_seen), else_=t.first_seen),
            "last_seen": sa.case((new.last_seen > t.last_seen, new.last_seen), else_=t.last_seen),
        },
    )


def record(tx: Tx, samples: Iterable[Sample]) -> None:
    """Add the samples up per key; new keys past MAX_SOURCES_PER_PORT, and unknown ports, are left out."""
    merged: dict[Key, list[float]] = {}  # key -> [packets, first, last]
    for s in samples:
        key = (s.port_id, s.reason, s.mac_address.lower(), s.ip_address)
        seen = merged.get(key)
        if seen is None:
            merged[key] = [s.packets, s.at, s.at]
        else:
            seen[0] += s.packets
            seen[1], seen[2] = min(seen[1], s.at), max(seen[2], s.at)
    if not merged:
        return
    port_ids = sorted({k[0] for k in merged})
    existing_ports = set(tx.conn.scalars(sa.select(ports.c.id).where(ports.c.id.in_(port_ids))))
    t = source_samples.c
    have: dict[str, set[Key]] = {p: set() for p in existing_ports}
    for row in tx.conn.execute(
        sa.select(t.port_id, t.reason, t.mac_address, t.ip_address).where(t.port_id.in_(sorted(existing_ports)))
    ):
        have[row.port_id].add((row.port_id, row.reason, row.mac_address, row.ip_address))
    rows = []
    for key, (packets, first, last) in sorted(merged.items()):
        known = have.get(key[0])
        if known is None:
            continue
        if key not in known:
            if len(known) >= MAX_SOURCES_PER_PORT:
                continue
            known.add(key)
        rows.append(
            {"port_id": key[0], "reason": key[1], "mac_address": key[2], "ip_address": key[3],
             "packets": int(packets), "first_seen": first, "last_seen": last}
        )  # fmt: skip
    if rows:
        tx.conn.execute(_upsert(tx.conn.dialect.name), rows)


def of_port(tx: Tx, port_id: str) -> list[dict[str, Any]]:
    """The port's sampled sources, most packets first."""
    t = source_samples.c
    stmt = (
        sa.select(source_samples)
        .where(t.port_id == port_id)
        .order_by(t.packets.desc(), t.reason, t.mac_address, t.ip_address)
    )
    return [
        {"reason": r.reason, "mac_address": r.mac_address, "ip_address": r.ip_address, "packets": r.packets,
         "first_seen": observed_at(r.first_seen), "last_seen": observed_at(r.last_seen)}
        for r in tx.conn.execute(stmt)
    ]  # fmt: skip


def suggested_pairs(port: Mapping[str, Any], sources: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The pairs ``port`` (the API's view) lacks for the sampled sources to pass: what the bindings strict mode
    would enforce (:func:`~portsec.guards.guard_from_view`, port security on) do not allow, one per (IP, MAC)."""
    guard = guard_from_view({**port, "port_security_enabled": True, "admin_state_up": True})
    wanted: set[tuple[int, int, str, str]] = set()
    for source in sources:
        mac, text = str(source.get("mac_address") or "").lower(), source.get("ip_address") or ""
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue  # no IP (or none readable): no pair helps
        if guard.binding_for(mac, text) is None:
            wanted.add((ip.version, int(ip), str(ip), mac))
    return [
        {"ip_address": ip, **({} if mac == guard.mac else {"mac_address": mac})}
        for _version, _n, ip, mac in sorted(wanted)
    ]
