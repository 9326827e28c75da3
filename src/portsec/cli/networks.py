"""portsec network create|list|show|set|delete."""

from __future__ import annotations

import argparse
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from portsec.cli import show
from portsec.cli.find import client_of, delete_each, find
from portsec.cli.parsing import enable_disable


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description", help="Set network description")
    parser.add_argument("--mtu", metavar="<mtu>", help="Set network mtu")
    enable_disable(parser, "network", "admin_state_up", "--enable", "--disable")
    enable_disable(parser, "sharing of the network", "shared", "--share", "--no-share")
    enable_disable(
        parser, "port security by default for ports on this network", "port_security_enabled",
        "--enable-port-security", "--disable-port-security",
    )  # fmt: skip


def _attrs(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("name", "description", "admin_state_up", "shared", "port_security_enabled")
    attrs = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.mtu:  # as the openstack client: the text goes as given, the server converts it
        attrs["mtu"] = args.mtu
    return attrs


class CreateNetwork(ShowOne):
    """Create new network"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("name", metavar="<name>", help="New network name")
        _common(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        return show.show("network", client_of(self).create("network", _attrs(args)))


class ListNetwork(Lister):
    """List networks"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--name", help="List networks according to their name")
        parser.add_argument("--long", action="store_true", help="List additional fields in output")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        filters = {"name": [args.name]} if args.name is not None else {}
        items = client_of(self).list("network", filters)
        return show.table(show.NETWORK_LIST_LONG if args.long else show.NETWORK_LIST, items)


class ShowNetwork(ShowOne):
    """Show network details"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("network", metavar="<network>", help="Network to display (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        return show.show("network", find(client_of(self), "network", args.network))


class SetNetwork(Command):
    """Set network properties"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("network", metavar="<network>", help="Network to modify (name or ID)")
        parser.add_argument("--name", help="Set network name")
        _common(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        network = find(client_of(self), "network", args.network)
        changed = {k: v for k, v in _attrs(args).items() if network.get(k) != v}
        if changed:
            client_of(self).update("network", network["id"], changed)


class DeleteNetwork(Command):
    """Delete network(s)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("network", metavar="<network>", nargs="+", help="Network(s) to delete (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        delete_each(client_of(self), "network", args.network)
