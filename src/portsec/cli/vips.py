"""portsec vip list|show: the VIPs, which port answers for each, since when."""

from __future__ import annotations

import argparse
from typing import Any, Protocol, cast

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from portsec.cli import columns
from portsec.cli.find import client_of, find, list_where

LIST_COLUMNS = ("IP Address", "Network", "Owner", "Since", "Moves", "Last Move", "Ports")
SHOW_FIELDS = ("ip_address", "network_id", "port_id", "since", "moves", "last_move", "ports", "history")


class VipClient(Protocol):
    def list_vips(self, network_id: str | None = None, ip_address: str | None = None) -> list[dict[str, Any]]: ...
    def get_vip(self, ip_address: str, network_id: str | None = None) -> dict[str, Any]: ...


def _client(cmd: Command) -> VipClient:
    return cast(VipClient, client_of(cmd))


def _port_names(cmd: Command, ids: set[str]) -> dict[str, str]:
    """The names of the ports ``ids`` (those that have one and the caller may see)."""
    return {p["id"]: p["name"] for p in list_where(client_of(cmd), "port", "id", ids) if p.get("name")}


def _network_id(cmd: Command, network: str | None) -> str | None:
    return find(client_of(cmd), "network", network)["id"] if network else None


class ListVip(Lister):
    """List VIPs (host pairs two or more ports carry, or claimed by one): owner, since when, moves"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--network", metavar="<network>", help="Only VIPs of this network (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        found = _client(self).list_vips(_network_id(self, args.network))
        names = _port_names(self, {p for v in found for p in (v["port_id"], *v["ports"]) if p})

        def name(port_id: str | None) -> str | None:
            return names.get(port_id, port_id) if port_id else None

        rows = [
            (v["ip_address"], v["network_id"], name(v["port_id"]), v["since"], v["moves"], v["last_move"],
             columns.ListColumn([name(p) for p in v["ports"]]))
            for v in found
        ]  # fmt: skip
        return LIST_COLUMNS, rows


class ShowVip(ShowOne):
    """Show a VIP: its ports, the port that answers for it, since when, and its last moves"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("ip_address", metavar="<ip-address>", help="The VIP's address")
        parser.add_argument(
            "--network", metavar="<network>", help="The VIP's network (name or ID), when it is a VIP on several"
        )
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        vip = _client(self).get_vip(args.ip_address, _network_id(self, args.network))
        names = _port_names(self, {p for p in (vip["port_id"], *vip["ports"]) if p})

        def name(port_id: str | None) -> str | None:  # "server2 (id)": who it is, and what the API calls it
            return f"{names[port_id]} ({port_id})" if port_id in names else port_id

        history = [{**m, "port_id": name(m["port_id"]), "previous_port_id": name(m["previous_port_id"])}
                   for m in vip["history"]]  # fmt: skip
        values = {**vip, "port_id": name(vip["port_id"]), "ports": columns.ListColumn([name(p) for p in vip["ports"]]),
                  "history": columns.ListDictColumn(history)}  # fmt: skip
        return SHOW_FIELDS, tuple(values[f] for f in SHOW_FIELDS)
