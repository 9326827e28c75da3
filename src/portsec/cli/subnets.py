"""portsec subnet create|list|show|delete."""

from __future__ import annotations

import argparse
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from portsec.cli import show
from portsec.cli.find import client_of, delete_each, find
from portsec.cli.parsing import KeyValueList, enable_disable


class CreateSubnet(ShowOne):
    """Create a subnet"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("name", metavar="<name>", help="New subnet name")
        parser.add_argument("--network", required=True, metavar="<network>", help="Network this subnet belongs to")
        parser.add_argument("--subnet-range", metavar="<subnet-range>", help="Subnet range in CIDR notation")
        parser.add_argument("--ip-version", type=int, default=4, choices=[4, 6], help="IP version (default is 4)")
        parser.add_argument(
            "--gateway", metavar="<gateway>", default="auto",
            help="'auto' (first host of the range, the default), 'none', or an IP address",
        )  # fmt: skip
        parser.add_argument(
            "--allocation-pool", dest="allocation_pools", action=KeyValueList, required_keys=["start", "end"],
            metavar="start=<ip-address>,end=<ip-address>", help="Allocation pool (repeat option for more)",
        )  # fmt: skip
        parser.add_argument(
            "--dns-nameserver", dest="dns_nameservers", action="append", metavar="<dns-nameserver>",
            help="DNS server for this subnet (repeat option for more)",
        )  # fmt: skip
        parser.add_argument(
            "--host-route", dest="host_routes", action=KeyValueList, required_keys=["destination", "gateway"],
            metavar="destination=<subnet>,gateway=<ip-address>", help="Additional route (repeat option for more)",
        )  # fmt: skip
        enable_disable(parser, "DHCP", "enable_dhcp", "--dhcp", "--no-dhcp")
        modes = ["dhcpv6-stateful", "dhcpv6-stateless", "slaac"]
        parser.add_argument("--ipv6-ra-mode", choices=modes, help="IPv6 RA (Router Advertisement) mode")
        parser.add_argument("--ipv6-address-mode", choices=modes, help="IPv6 address mode")
        parser.add_argument("--description", help="Set subnet description")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        network = find(client_of(self), "network", args.network)
        body: dict[str, Any] = {"name": args.name, "network_id": network["id"], "ip_version": args.ip_version}
        if args.subnet_range is not None:
            body["cidr"] = args.subnet_range
        if args.gateway.lower() == "none":
            body["gateway_ip"] = None
        elif args.gateway.lower() != "auto":
            body["gateway_ip"] = args.gateway
        for key in ("allocation_pools", "dns_nameservers", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode"):
            if getattr(args, key) is not None:
                body[key] = getattr(args, key)
        if args.host_routes:
            body["host_routes"] = [{"destination": r["destination"], "nexthop": r["gateway"]} for r in args.host_routes]
        if args.description is not None:
            body["description"] = args.description
        return show.show("subnet", client_of(self).create("subnet", body))


class ListSubnet(Lister):
    """List subnets"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--network", metavar="<network>", help="List only subnets of this network (name or ID)")
        parser.add_argument("--name", help="List only subnets of this name")
        parser.add_argument("--ip-version", type=int, choices=[4, 6], help="List only subnets of this IP version")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        filters: dict[str, list[Any]] = {}
        if args.network:
            filters["network_id"] = [find(client_of(self), "network", args.network)["id"]]
        if args.name is not None:
            filters["name"] = [args.name]
        if args.ip_version is not None:
            filters["ip_version"] = [args.ip_version]
        return show.table(show.SUBNET_LIST, client_of(self).list("subnet", filters))


class ShowSubnet(ShowOne):
    """Display subnet details"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("subnet", metavar="<subnet>", help="Subnet to display (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        return show.show("subnet", find(client_of(self), "subnet", args.subnet))


class DeleteSubnet(Command):
    """Delete subnet(s)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("subnet", metavar="<subnet>", nargs="+", help="Subnet(s) to delete (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        delete_each(client_of(self), "subnet", args.subnet)
