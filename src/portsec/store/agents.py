"""Agent rows <-> Agent values; the heartbeat is one UPDATE of one row."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portsec.domain.agents import Agent
from portsec.store.query import ListQuery, fetch_page, filter_clauses
from portsec.store.schema import agents

_HEARTBEAT = (
    agents.update()
    .where(agents.c.id == sa.bindparam("agent_id"))
    .values(heartbeat_timestamp=sa.bindparam("now"), configurations=sa.bindparam("configurations"))
)


def _agent(row: sa.Row[Any]) -> Agent:
    return Agent(**row._mapping)


def get(conn: Connection, agent_id: str) -> Agent | None:
    row = conn.execute(sa.select(agents).where(agents.c.id == agent_id)).one_or_none()
    return None if row is None else _agent(row)


def find(conn: Connection, agent_type: str, host: str) -> Agent | None:
    where = (agents.c.agent_type == agent_type) & (agents.c.host == host)
    row = conn.execute(sa.select(agents).where(where)).one_or_none()
    return None if row is None else _agent(row)


def insert(conn: Connection, agent: Agent) -> None:
    conn.execute(agents.insert().values(**asdict(agent)))


def heartbeat(conn: Connection, agent_id: str, now: datetime, configurations: dict[str, Any]) -> bool:
    """Whether the row was still there (an admin may have deleted it: then the agent registers again)."""
    result = conn.execute(_HEARTBEAT, {"agent_id": agent_id, "now": now, "configurations": configurations})
    return bool(result.rowcount)


def list_(conn: Connection, query: ListQuery, alive_since: tuple[bool, datetime] | None = None) -> list[Agent]:
    """``alive_since`` (alive, oldest live heartbeat): the ``alive`` filter, in SQL so pages stay whole."""
    stmt = sa.select(agents).where(*filter_clauses(agents, query.filters))
    if alive_since is not None:
        alive, oldest = alive_since
        stmt = stmt.where(agents.c.heartbeat_timestamp >= oldest if alive else agents.c.heartbeat_timestamp < oldest)
    return [_agent(r) for r in fetch_page(conn, stmt, agents, query)]


def update(conn: Connection, agent_id: str, values: dict[str, Any]) -> None:
    """Some columns of one row: an admin's PUT, or what a restarted agent reports."""
    conn.execute(agents.update().where(agents.c.id == agent_id).values(**values))


def delete(conn: Connection, agent_id: str) -> int:
    return int(conn.execute(agents.delete().where(agents.c.id == agent_id)).rowcount)
