"""portsec network agent list|show|set|delete: openstackclient's network agent commands, same columns and cells.

Columns, rows and the cells ':-)'/'XXX' (alive) and 'UP'/'DOWN' (state) follow
openstackclient/network/v2/network_agent.py; `show` prints a row per attribute
openstackclient maps (openstacksdk's names: ``configuration``,
``last_heartbeat_at``), None for what the server does not return. An agent is
its ID only, as there.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Protocol, cast

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from portsec import faults
from portsec.cli import columns as c
from portsec.cli import show
from portsec.cli.find import CommandError
from portsec.domain import errors

LOG = logging.getLogger(__name__)

# openstackclient's --agent-type choices -> Neutron's agent_type.
AGENT_TYPES = {
    "bgp": "BGP dynamic routing agent",
    "dhcp": "DHCP agent",
    "open-vswitch": "Open vSwitch agent",
    "linux-bridge": "Linux bridge agent",
    "ofa": "OFA driver agent",
    "l3": "L3 agent",
    "loadbalancer": "Loadbalancer agent",
    "metering": "Metering agent",
    "metadata": "Metadata agent",
    "macvtap": "Macvtap agent",
    "nic": "NIC Switch agent",
    "baremetal": "Baremetal Node",
    "ovn-controller": "OVN Controller agent",
    "ovn-controller-gateway": "OVN Controller Gateway agent",
    "ovn-metadata": "OVN Metadata agent",
    "ovn-agent": "OVN Neutron agent",
}


class AliveColumn(c.FormattableColumn[bool]):
    def human_readable(self) -> str:
        return ":-)" if self._value else "XXX"


LIST = (
    ("ID", "id", None),
    ("Agent Type", "agent_type", None),
    ("Host", "host", None),
    ("Availability Zone", "availability_zone", None),
    ("Alive", "alive", AliveColumn),
    ("State", "admin_state_up", c.AdminStateColumn),
    ("Binary", "binary", None),
)
# (row, Neutron key, formatter), in openstackclient's order.
ROWS: tuple[show.Row, ...] = (
    ("admin_state_up", "admin_state_up", c.AdminStateColumn),
    ("agent_type", "agent_type", None),
    ("alive", "alive", AliveColumn),
    ("availability_zone", "availability_zone", None),
    ("binary", "binary", None),
    # openstackclient keys its dict formatter "configurations" but names the row "configuration": the dict prints raw
    ("configuration", "configurations", None),
    ("created_at", "created_at", None),
    ("description", "description", None),
    ("ha_chassis_priority", "ha_chassis_priority", None),
    ("ha_state", "ha_state", None),
    ("host", "host", None),
    ("id", "id", None),
    ("last_heartbeat_at", "heartbeat_timestamp", None),
    ("resources_synced", "resources_synced", None),
    ("started_at", "started_at", None),
    ("topic", "topic", None),
)


class AgentClient(Protocol):
    def list_agents(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]: ...
    def get_agent(self, agent_id: str) -> dict[str, Any]: ...
    def update_agent(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete_agent(self, agent_id: str) -> None: ...


def _client(cmd: Command) -> AgentClient:
    return cast(AgentClient, cast(Any, cmd.app).client)


def _row(item: dict[str, Any], key: str, formatter: Any) -> Any:
    value = item.get(key)
    return formatter(value) if formatter is not None else value


class ListNetworkAgent(Lister):
    """List network agents"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--agent-type", metavar="<agent-type>", choices=list(AGENT_TYPES),
            help=f"List only agents with the specified agent type. The supported agent types are: "
            f"{','.join(AGENT_TYPES)}.",
        )  # fmt: skip
        parser.add_argument("--host", metavar="<host>", help="List only agents running on the specified host")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        filters: dict[str, list[str]] = {}
        if args.agent_type is not None:
            filters["agent_type"] = [AGENT_TYPES[args.agent_type]]
        if args.host is not None:
            filters["host"] = [args.host]
        return show.table(LIST, _client(self).list_agents(filters))


class ShowNetworkAgent(ShowOne):
    """Display network agent details"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("network_agent", metavar="<network-agent>", help="Network agent to display (ID only)")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        agent = _client(self).get_agent(args.network_agent)
        return tuple(r[0] for r in ROWS), tuple(_row(agent, key, fmt) for _, key, fmt in ROWS)


class SetNetworkAgent(Command):
    """Set network agent properties"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("network_agent", metavar="<network-agent>", help="Network agent to modify (ID only)")
        parser.add_argument("--description", metavar="<description>", help="Set network agent description")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enable", action="store_true", help="Enable network agent")
        state.add_argument("--disable", action="store_true", help="Disable network agent")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = _client(self)
        client.get_agent(args.network_agent)  # as openstackclient: a missing agent fails even with nothing to set
        attrs: dict[str, Any] = {}
        if args.description is not None:
            attrs["description"] = args.description
        if args.enable or args.disable:
            attrs["admin_state_up"] = bool(args.enable)
        if attrs:
            client.update_agent(args.network_agent, attrs)


class DeleteNetworkAgent(Command):
    """Delete network agent(s)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "network_agent", metavar="<network-agent>", nargs="+", help="Network agent(s) to delete (ID only)"
        )
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = _client(self)
        failed = 0
        for agent_id in args.network_agent:
            try:
                client.delete_agent(agent_id)
            except errors.NeutronError as err:
                failed += 1
                LOG.error(f"Failed to delete network agent with ID '{agent_id}': {faults.cli_message(err)}")
        if failed:
            raise CommandError(f"{failed} of {len(args.network_agent)} network agents failed to delete.")
