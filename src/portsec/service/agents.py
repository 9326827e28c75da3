"""Neutron's agent API (extension ``agent``) over the agents' own rows, and the registration and heartbeat they write.

Policy (neutron/conf/policies/agent.py): get_agent, update_agent and
delete_agent are admin only. Neutron enforces get_agent after the fact: a
member's list comes back empty and a member's show answers 404; a member's PUT
or DELETE also answers 404, since an agent has no project the caller owns.
portsec answers those 404s as AgentNotFound (Neutron's body says HTTPNotFound
"The resource could not be found."), as it answers a hidden port with
PortNotFound: what the caller may not see does not exist for it.

``alive`` depends on the time of the request: every call takes ``now`` (the
API passes the database clock's, tests a fixed one) and ``down_time``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from portsec.domain import agents as rules
from portsec.domain import attributes, errors
from portsec.domain.agents import Agent
from portsec.domain.model import Context
from portsec.service.common import Listing, list_query, new_id
from portsec.store import agents as store
from portsec.store.database import Tx

ENV_DOWN_TIME = "PORTSEC_AGENT_DOWN_TIME"  # `portsec serve --agent-down-time` hands it to the workers


def down_time_from_environment() -> float:
    return float(os.environ.get(ENV_DOWN_TIME, rules.AGENT_DOWN_TIME))


def _neutron_time(value: datetime) -> str:
    """Neutron shows agent times as str(datetime) of whole seconds: "2026-12-01 15:22:57", no T, no Z."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def view(agent: Agent, now: datetime, down_time: float) -> dict[str, Any]:
    return {
        "id": agent.id,
        "agent_type": agent.agent_type,
        "binary": agent.binary,
        "topic": agent.topic,
        "host": agent.host,
        "admin_state_up": agent.admin_state_up,
        "created_at": _neutron_time(agent.created_at),
        "started_at": _neutron_time(agent.started_at),
        "heartbeat_timestamp": _neutron_time(agent.heartbeat_timestamp),
        "alive": rules.is_alive(agent.heartbeat_timestamp, now, down_time),
        "configurations": dict(agent.configurations),
        "description": agent.description,
        "availability_zone": agent.availability_zone,
        "resources_synced": agent.resources_synced,
    }


def _visible(tx: Tx, ctx: Context, agent_id: str) -> Agent:
    found = store.get(tx.conn, agent_id) if ctx.is_admin else None
    if found is None:
        raise errors.AgentNotFound(id=agent_id)
    return found


def get(tx: Tx, ctx: Context, agent_id: str, now: datetime, down_time: float) -> dict[str, Any]:
    return view(_visible(tx, ctx, agent_id), now, down_time)


def list_(tx: Tx, ctx: Context, listing: Listing, now: datetime, down_time: float) -> list[dict[str, Any]]:
    filters = dict(listing.filters)
    alive = filters.pop("alive", None)
    # Neutron reads the first value of ``alive`` only, converted as a boolean.
    alive_since = (attributes.to_boolean(alive[0]), now - timedelta(seconds=down_time)) if alive else None
    if not ctx.is_admin:
        return []
    found = store.list_(tx.conn, list_query(listing, filters, {}), alive_since)
    return [view(agent, now, down_time) for agent in found]


def update(tx: Tx, ctx: Context, agent_id: str, body: Any, now: datetime, down_time: float) -> dict[str, Any]:
    """Neutron's order: the body (400), then the agent and its policy (404)."""
    values = rules.parse_update(body)
    agent = _visible(tx, ctx, agent_id)
    changed = {k: v for k, v in values.items() if getattr(agent, k) != v}
    if changed:
        store.update(tx.conn, agent_id, changed)
    return view(store.get(tx.conn, agent_id) or agent, now, down_time)


def delete(tx: Tx, ctx: Context, agent_id: str) -> None:
    _visible(tx, ctx, agent_id)
    store.delete(tx.conn, agent_id)


# -- what the agent itself writes ------------------------------------------------------------


def register(tx: Tx, agent_type: str, binary: str, topic: str, host: str, configurations: dict[str, Any]) -> str:
    """An agent's start: its row (made on first start, admin_state_up true as Neutron's enable_new_agents),
    ``started_at`` and heartbeat now. Returns the row's id, for the heartbeats."""
    known = store.find(tx.conn, agent_type, host)
    if known is not None:
        values = {"binary": binary, "topic": topic, "configurations": configurations}
        store.update(tx.conn, known.id, {**values, "started_at": tx.now, "heartbeat_timestamp": tx.now})
        return known.id
    agent = Agent(
        id=new_id(),
        agent_type=agent_type,
        binary=binary,
        topic=topic,
        host=host,
        availability_zone=None,
        admin_state_up=True,
        description=None,
        configurations=configurations,
        resources_synced=None,
        created_at=tx.now,
        started_at=tx.now,
        heartbeat_timestamp=tx.now,
    )
    store.insert(tx.conn, agent)
    return agent.id


def heartbeat(tx: Tx, agent_id: str, configurations: dict[str, Any]) -> bool:
    """One UPDATE; False when the row is gone (deleted by an admin), so the agent registers again."""
    return store.heartbeat(tx.conn, agent_id, tx.now, configurations)
