"""Reading the change log: what changed after sequence number N, in commit order."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portsec.store.schema import changes

# Written in the same transaction as the change-log rows on PostgreSQL, and
# delivered at commit: followers wake on it instead of polling.
CHANNEL = "portsec_changes"


@dataclass(frozen=True)
class ChangeRow:
    seq: int
    resource: str
    resource_id: str
    operation: str


def since(conn: Connection, seq: int) -> list[ChangeRow]:
    rows = conn.execute(
        sa.select(changes.c.seq, changes.c.resource, changes.c.resource_id, changes.c.operation)
        .where(changes.c.seq > seq)
        .order_by(changes.c.seq)
    )
    return [ChangeRow(*row) for row in rows]


def last_seq(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(changes.c.seq), 0))).scalar_one())
