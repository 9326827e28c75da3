"""Neutron's agent resource as portsec's native agent fills it: what it reports, when it counts as alive.

One row per (agent_type, host), as Neutron's ``agents`` table. portsec's agent
does the Neutron Open vSwitch agent's job on br-int, so it reports that agent's
type, binary and topic: ``openstack network agent list --agent-type
open-vswitch`` filters on the type, and tools that look for an OVS agent per
compute host (Nova's and Octavia's checks, dashboards) find it. Neutron's OVS
agent reports the topic "N/A" and no availability zone; so does portsec's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portsec.domain import attributes as a
from portsec.domain.attributes import Attr, ResourceSpec

AGENT_TYPE = "Open vSwitch agent"
BINARY = "neutron-openvswitch-agent"
TOPIC = "N/A"
# With the OVN backend, each chassis is listed as ML2/OVN lists it: its ovn-controller is the agent of its host.
OVN_AGENT_TYPE = "OVN Controller agent"
OVN_BINARY = "ovn-controller"
REPORT_INTERVAL = 30.0  # Neutron's [agent] report_interval: seconds between heartbeats
AGENT_DOWN_TIME = 75.0  # Neutron's agent_down_time: no heartbeat for longer, and the agent is not alive
DESCRIPTION_MAX_LEN = 255


@dataclass(frozen=True)
class Agent:
    id: str
    agent_type: str
    binary: str
    topic: str
    host: str
    availability_zone: str | None
    admin_state_up: bool
    description: str | None
    configurations: dict[str, Any]
    resources_synced: bool | None
    created_at: datetime
    started_at: datetime
    heartbeat_timestamp: datetime


def is_alive(heartbeat: datetime, now: datetime, down_time: float) -> bool:
    """Neutron's ``not is_agent_down``: the last heartbeat is at most ``down_time`` seconds old."""
    return now - heartbeat <= timedelta(seconds=down_time)


def configurations(bridge: str, devices: int) -> dict[str, Any]:
    """The part of Neutron's OVS agent report that means something here: its bridge and how many ports it enforces."""
    return {"integration_bridge": bridge, "devices": devices}


def chassis_configurations(chassis: str, encap_ip: str | None) -> dict[str, Any]:
    """What an OVN chassis reports: its name in OVN, and the address its Geneve tunnels end at."""
    return {"chassis_name": chassis, "encap_ip": encap_ip}


def _string_or_none(data: Any) -> str | None:
    return None if data is None else a.string(DESCRIPTION_MAX_LEN)(data)


# neutron-lib's agent attribute map, in its order; only these two are allow_put.
SPEC = ResourceSpec(
    "agent",
    (
        Attr("id", post=False, put=False),
        Attr("agent_type", post=False, put=False),
        Attr("binary", post=False, put=False),
        Attr("topic", post=False, put=False),
        Attr("host", post=False, put=False),
        Attr("admin_state_up", post=False, convert=a.to_boolean),
        Attr("created_at", post=False, put=False),
        Attr("started_at", post=False, put=False),
        Attr("heartbeat_timestamp", post=False, put=False),
        Attr("alive", post=False, put=False),
        Attr("configurations", post=False, put=False),
        Attr("description", post=False, validate=_string_or_none),
        Attr("availability_zone", post=False, put=False),
        Attr("resources_synced", post=False, put=False),
    ),
)


def parse_update(body: Any) -> dict[str, Any]:
    """The PUT body's ``agent`` object: admin_state_up and description only (Neutron's messages otherwise)."""
    return a.prepare_update(SPEC, body)
