"""portsec port create|list|show|set|unset|delete, and the legacy neutron `port-update`."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from portsec.cli import show
from portsec.cli.agent import read_drops
from portsec.cli.find import CommandError, client_of, delete_each, find
from portsec.cli.parsing import KeyValueList, enable_disable
from portsec.domain.attributes import to_boolean
from portsec.service.sources import suggested_pairs


def _updatable(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description", help="Description of this port")
    parser.add_argument("--device", metavar="<device-id>", help="Port device ID")
    parser.add_argument("--mac-address", metavar="<mac-address>", help="MAC address of this port (admin only)")
    parser.add_argument("--device-owner", metavar="<device-owner>", help="Device owner of this port")
    parser.add_argument("--vnic-type", metavar="<vnic-type>", help="VNIC type for this port (default: normal)")
    parser.add_argument("--host", metavar="<host-id>", help="Allocate port on host <host-id> (ID only)")
    enable_disable(parser, "port", "admin_state_up", "--enable", "--disable")
    enable_disable(
        parser, "port security for this port", "port_security_enabled",
        "--enable-port-security", "--disable-port-security",
    )  # fmt: skip
    parser.add_argument(
        "--fixed-ip", dest="fixed_ips", action=KeyValueList, optional_keys=["subnet", "ip-address"],
        metavar="subnet=<subnet>,ip-address=<ip-address>",
        help="Desired IP and/or subnet for this port (name or ID of the subnet; repeat option for more)",
    )  # fmt: skip
    parser.add_argument("--no-fixed-ip", action="store_true", help="No IP or subnet for this port")
    parser.add_argument(
        "--allowed-address", dest="allowed_address_pairs", action=KeyValueList,
        required_keys=["ip-address"], optional_keys=["mac-address"],
        metavar="ip-address=<ip-address>[,mac-address=<mac-address>]",
        help="Add allowed-address pair associated with this port (repeat option for more)",
    )  # fmt: skip
    parser.add_argument(
        "--security-group", dest="security_groups", action="append", metavar="<security-group>",
        help="Security group to associate with this port (security groups are not built yet)",
    )  # fmt: skip
    parser.add_argument("--no-security-group", action="store_true", help="Associate no security groups")


def _attrs(args: argparse.Namespace) -> dict[str, Any]:
    """The options a user gave, as Neutron attributes (OSC's _get_attrs)."""
    attrs: dict[str, Any] = {}
    plain = {
        "name": "name",
        "description": "description",
        "device": "device_id",
        "device_owner": "device_owner",
        "vnic_type": "binding:vnic_type",
        "host": "binding:host_id",
        "mac_address": "mac_address",
        "admin_state_up": "admin_state_up",
        "port_security_enabled": "port_security_enabled",
    }
    for option, key in plain.items():
        if getattr(args, option, None) is not None:
            attrs[key] = getattr(args, option)
    return attrs


def _fixed_ips(client: Any, specs: list[dict[str, str]]) -> list[dict[str, str]]:
    result = []
    for spec in specs:
        entry = {}
        if spec.get("subnet"):
            entry["subnet_id"] = find(client, "subnet", spec["subnet"])["id"]
        if "ip-address" in spec:
            entry["ip_address"] = spec["ip-address"]
        result.append(entry)
    return result


def _pairs(specs: list[dict[str, str]]) -> list[dict[str, str]]:
    pairs = []
    for spec in specs:
        pair = {"ip_address": spec["ip-address"]}
        if "mac-address" in spec:
            pair["mac_address"] = spec["mac-address"]
        pairs.append(pair)
    return pairs


def _security_groups(args: argparse.Namespace) -> list[str] | None:
    if args.security_groups:
        raise CommandError(f"No SecurityGroup found for {args.security_groups[0]}")
    return [] if args.no_security_group else None


class CreatePort(ShowOne):
    """Create a new port"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("name", metavar="<name>", help="Name of this port")
        parser.add_argument("--network", required=True, metavar="<network>", help="Network this port belongs to")
        _updatable(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        client = client_of(self)
        body = _attrs(args)
        body["network_id"] = find(client, "network", args.network)["id"]
        if args.fixed_ips:
            body["fixed_ips"] = _fixed_ips(client, args.fixed_ips)
        elif args.no_fixed_ip:
            body["fixed_ips"] = []
        groups = _security_groups(args)
        if groups is not None:
            body["security_groups"] = groups
        if args.allowed_address_pairs:
            body["allowed_address_pairs"] = _pairs(args.allowed_address_pairs)
        return show.show("port", client.create("port", body))


class ListPort(Lister):
    """List ports"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--network", metavar="<network>", help="List only ports attached to this network")
        parser.add_argument("--device-owner", metavar="<device-owner>", help="List only ports with this owner")
        parser.add_argument("--device-id", metavar="<device-id>", help="List only ports with this device ID")
        parser.add_argument("--mac-address", metavar="<mac-address>", help="List only ports with this MAC address")
        parser.add_argument("--host", metavar="<host-id>", help="List only ports bound to this host ID")
        parser.add_argument("--name", metavar="<name>", help="List only ports of this name")
        parser.add_argument(
            "--status", choices=["ACTIVE", "BUILD", "DOWN", "ERROR"], help="List only ports in this state"
        )
        parser.add_argument(
            "--fixed-ip", dest="fixed_ips", action=KeyValueList,
            optional_keys=["subnet", "ip-address", "ip-substring"],
            metavar="subnet=<subnet>,ip-address=<ip-address>,ip-substring=<ip-substring>",
            help="List only ports with this fixed IP (repeat option for more)",
        )  # fmt: skip
        parser.add_argument("--long", action="store_true", help="List additional fields in output")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        client = client_of(self)
        filters: dict[str, list[Any]] = {}
        if args.network:
            filters["network_id"] = [find(client, "network", args.network)["id"]]
        plain = {
            "device_owner": "device_owner",
            "device_id": "device_id",
            "mac_address": "mac_address",
            "host": "binding:host_id",
            "name": "name",
            "status": "status",
        }
        for option, key in plain.items():
            if getattr(args, option) is not None:
                filters[key] = [getattr(args, option)]
        for spec in args.fixed_ips or []:
            if spec.get("subnet"):
                subnet_id = find(client, "subnet", spec["subnet"])["id"]
                filters.setdefault("fixed_ips", []).append(f"subnet_id={subnet_id}")
            if "ip-address" in spec:
                filters.setdefault("fixed_ips", []).append(f"ip_address={spec['ip-address']}")
            if "ip-substring" in spec:
                filters.setdefault("fixed_ips", []).append(f"ip_address_substr={spec['ip-substring']}")
        columns = show.PORT_LIST + (show.PORT_LIST_LONG if args.long else ())
        return show.table(columns, client.list("port", filters))


class ShowPort(ShowOne):
    """Display port details"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("port", metavar="<port>", help="Port to display (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        return show.show("port", find(client_of(self), "port", args.port))


def _send_changes(client: Any, port: dict[str, Any], attrs: dict[str, Any]) -> None:
    """Like openstacksdk: only what differs from the port is sent, and nothing if nothing does."""
    changed = {k: v for k, v in attrs.items() if port.get(k) != v}
    if changed:
        client.update("port", port["id"], changed)


class SetPort(Command):
    """Set port properties"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("port", metavar="<port>", help="Port to modify (name or ID)")
        parser.add_argument("--name", metavar="<name>", help="Set port name")
        _updatable(parser)
        parser.add_argument(
            "--no-allowed-address", dest="no_allowed_address_pair", action="store_true",
            help="Clear existing allowed-address pairs associated with this port "
            "(specify both --allowed-address and --no-allowed-address to overwrite the current pairs)",
        )  # fmt: skip
        parser.add_argument(
            "--dry-run", action="store_true",
            help="With --enable-port-security: change nothing; show what enabling it would drop (the port's drop "
            "counters on this host's switch and the sources the agent sampled) and the --allowed-address flags "
            "that would keep that traffic working",
        )  # fmt: skip
        self._parser = parser
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = client_of(self)
        if args.dry_run:
            self._dry_run(client, args)
            return
        fixed = _fixed_ips(client, args.fixed_ips or [])
        port = find(client, "port", args.port)
        attrs = _attrs(args)
        if args.no_fixed_ip:
            attrs["fixed_ips"] = []
        if fixed:
            attrs["fixed_ips"] = attrs.get("fixed_ips", [dict(f) for f in port["fixed_ips"]]) + fixed
        groups = _security_groups(args)
        if groups is not None:
            attrs["security_groups"] = groups
        if args.no_allowed_address_pair:
            attrs["allowed_address_pairs"] = []
        if args.allowed_address_pairs:
            current = attrs.get("allowed_address_pairs", [dict(p) for p in port["allowed_address_pairs"]])
            attrs["allowed_address_pairs"] = current + _pairs(args.allowed_address_pairs)
        _send_changes(client, port, attrs)

    def _dry_run(self, client: Any, args: argparse.Namespace) -> None:
        if args.port_security_enabled is not True:
            self._parser.error("--dry-run previews --enable-port-security: give both")  # exits 2, as argparse does
        port = find(client, "port", args.port)
        if port.get("port_security_enabled", True):
            self.app.stdout.write(f"Port {args.port} already has port security enabled: nothing would change.\n")
            return
        drops = read_drops(port["id"])
        sampled = client.port_sources(port["id"])
        report = dry_run_report(args.port, drops, sampled, suggested_pairs(port, sampled))
        self.app.stdout.write(report)


class UnsetPort(Command):
    """Unset port properties"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("port", metavar="<port>", help="Port to modify (name or ID)")
        parser.add_argument(
            "--fixed-ip", dest="fixed_ips", action=KeyValueList, optional_keys=["subnet", "ip-address"],
            metavar="subnet=<subnet>,ip-address=<ip-address>",
            help="Remove a fixed IP from this port (repeat option for more)",
        )  # fmt: skip
        parser.add_argument(
            "--allowed-address", dest="allowed_address_pairs", action=KeyValueList,
            required_keys=["ip-address"], optional_keys=["mac-address"],
            metavar="ip-address=<ip-address>[,mac-address=<mac-address>]",
            help="Remove the allowed-address pair(s) with this IP (and this MAC, if given); repeat for more",
        )  # fmt: skip
        parser.add_argument("--host", action="store_true", help="Clear host binding for the port")
        parser.add_argument("--device", action="store_true", help="Clear device ID for the port")
        parser.add_argument("--device-owner", action="store_true", help="Clear device owner for the port")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = client_of(self)
        port = find(client, "port", args.port)
        attrs: dict[str, Any] = {}
        if args.fixed_ips:
            remaining = [dict(f) for f in port["fixed_ips"]]
            for wanted in _fixed_ips(client, args.fixed_ips):
                match = [f for f in remaining if all(f.get(k) == v for k, v in wanted.items())]
                if not match:
                    raise CommandError(f"Port does not contain fixed-ip {wanted}")
                remaining.remove(match[0])
            attrs["fixed_ips"] = remaining
        if args.allowed_address_pairs:
            attrs["allowed_address_pairs"] = _without_pairs(port, _pairs(args.allowed_address_pairs))
        if args.host:
            attrs["binding:host_id"] = ""
        if args.device:
            attrs["device_id"] = ""
        if args.device_owner:
            attrs["device_owner"] = ""
        _send_changes(client, port, attrs)


def _without_pairs(port: dict[str, Any], unwanted: list[dict[str, str]]) -> list[dict[str, str]]:
    """Pairs minus every pair with the given IP, and the given MAC when one is given.

    OSC removes only a dict equal to the stored one, so a user must repeat the MAC
    the server filled in; here the IP alone is enough.
    """
    remaining = [dict(p) for p in port["allowed_address_pairs"]]
    for wanted in unwanted:
        mac = wanted.get("mac_address")
        keep = [
            p
            for p in remaining
            if p["ip_address"] != wanted["ip_address"] or (mac is not None and p["mac_address"].lower() != mac.lower())
        ]
        if len(keep) == len(remaining):
            raise CommandError(f"Port does not contain allowed-address-pair {wanted}")
        remaining = keep
    return remaining


class DeletePort(Command):
    """Delete port(s)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("port", metavar="<port>", nargs="+", help="Port(s) to delete (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        delete_each(client_of(self), "port", args.port)


class LegacyPortUpdate(Command):
    """Update a port (the neutron client's spelling: port-update PORT --port-security-enabled=false)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("port", metavar="PORT", help="ID or name of port to update")
        parser.add_argument("--name", help="Name of this port")
        parser.add_argument("--description", help="Description of this port")
        parser.add_argument("--admin-state-up", type=_boolean, metavar="{True,False}", help="Set admin state up")
        parser.add_argument(
            "--port-security-enabled", type=_boolean, metavar="{True,False}", help="Enable or disable port security"
        )
        parser.add_argument("--no-allowed-address-pairs", action="store_true", help="Remove all allowed address pairs")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        port = find(client_of(self), "port", args.port)
        body = {k: getattr(args, k) for k in ("name", "description", "admin_state_up", "port_security_enabled")}
        body = {k: v for k, v in body.items() if v is not None}
        if args.no_allowed_address_pairs:
            body["allowed_address_pairs"] = []
        client_of(self).update("port", port["id"], body)
        self.app.stdout.write(f"Updated port: {args.port}\n")


def _boolean(text: str) -> bool:
    try:
        return to_boolean(text)
    except Exception:
        raise argparse.ArgumentTypeError(f"invalid boolean value: '{text}'") from None


def dry_run_report(
    who: str,
    drops: Mapping[str, int],
    sources: Sequence[Mapping[str, Any]],
    suggested: Sequence[Mapping[str, str]],
) -> str:
    """What `portsec port set <who> --enable-port-security` would drop, what was sampled, and the flags that keep
    it working."""
    lines = [f"Dry run: nothing was changed. Enabling port security on {who} would drop:"]
    dropping = [(reason, packets) for reason, packets in drops.items() if packets]
    lines += [f"  {reason}: {_packets(n)}" for reason, n in dropping] or ["  nothing counted so far"]
    lines.append("Sources it sent from (sampled by the agent):")
    lines += [
        f"  {s['reason']}: mac {s['mac_address']}, ip {s['ip_address'] or '(none)'}: {_packets(s['packets'])}, "
        f"{s['first_seen']} .. {s['last_seen']}"
        for s in sources
    ] or ["  none sampled"]
    command = f"portsec port set {shlex.quote(who)} --enable-port-security"
    flags = [
        "--allowed-address ip-address=" + p["ip_address"] + (f",mac-address={p['mac_address']}" if "mac_address" in p
                                                             else "")
        for p in suggested
    ]  # fmt: skip
    if flags:
        lines.append("To keep them working:")
        lines.append(f"  {command} {' '.join(flags)}")
    else:
        lines.append("No pair is needed for the sampled sources:")
        lines.append(f"  {command}")
    return "\n".join(lines) + "\n"


def _packets(n: int) -> str:
    return f"{n} packet" if n == 1 else f"{n} packets"
