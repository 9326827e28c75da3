"""portsec trace: why a packet from a port would be forwarded or dropped, on the built-in switch model."""

from __future__ import annotations

import argparse
import shutil
import subprocess

from cliff.command import Command

from portsec.cli.find import CommandError, client_of, find
from portsec.guards import guard_from_view
from portsec.openflow.trace import trace

FORWARDED, DROPPED = 0, 2
PLACEHOLDER_OFPORT = 1

EXIT_STATUS = f"""\
exit status: {FORWARDED} when the packet would be forwarded, {DROPPED} when it would be dropped, 1 when the
trace could not be run (no such port, a microflow that does not parse), so a script can test
`portsec trace PORT FLOW` directly and still tell a drop from a mistake.

The microflow is in ovs-ofctl syntax (as for `ovs-appctl ofproto/trace`), e.g.
'arp,arp_spa=192.168.1.10' or 'udp,tp_src=67,tp_dst=68' or 'icmp6,icmp_type=136,nd_target=2001:db8::5'.
What it leaves out comes from the port: in_port, dl_src (the port's MAC), the ARP sender MAC, operation
and IP, and the source address (the port's first fixed IP of that family). The flows are the ones the
agent installs for the port, evaluated on the built-in switch model; no packet is sent."""


class Trace(Command):
    """Trace a packet from a port through its anti-spoofing flows: verdict, flows taken, why, and the fix"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = EXIT_STATUS
        parser.add_argument("port", metavar="<port>", help="Port that sends the packet (name or ID)")
        parser.add_argument("flow", metavar="<microflow>", help="The packet, in ovs-ofctl syntax")
        parser.add_argument(
            "--ofport", type=int, metavar="<ofport>",
            help="OpenFlow port number to trace from (default: the port's interface on the local Open vSwitch)",
        )  # fmt: skip
        parser.add_argument(
            "--ovsdb", metavar="<target>", default=None,
            help="OVSDB to look the interface up in, e.g. unix:/var/run/openvswitch/db.sock "
            "(default: unix:$OVS_RUNDIR/db.sock)",
        )  # fmt: skip
        return parser

    def take_action(self, args: argparse.Namespace) -> int:
        port = find(client_of(self), "port", args.port)
        if args.ofport is not None:
            ofport, where = args.ofport, "given with --ofport"
        else:
            found, where = local_ofport(port["id"], args.ovsdb)
            ofport = found if found is not None else PLACEHOLDER_OFPORT
        try:
            result = trace(guard_from_view(port), args.flow, ofport, port=port)
        except ValueError as err:
            raise CommandError(f"Bad microflow {args.flow!r}: {err}") from err
        lines = result.text().splitlines()
        lines.insert(2, f"ofport:  {ofport} ({where})")
        self.app.stdout.write("\n".join(lines) + "\n")
        return FORWARDED if result.forwarded else DROPPED


def local_ofport(port_id: str, ovsdb: str | None = None) -> tuple[int | None, str]:
    """The ofport of the interface plugged in with ``external_ids:iface-id=port_id``, and where it came from."""
    if shutil.which("ovs-vsctl") is None:
        return None, _placeholder("ovs-vsctl is not installed")
    argv = ["ovs-vsctl", "--timeout=5", *([f"--db={ovsdb}"] if ovsdb else []), "--bare", "--columns=ofport",
            "find", "Interface", f"external_ids:iface-id={port_id}"]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return None, _placeholder("ovs-vsctl timed out")
    if done.returncode != 0:
        return None, _placeholder((done.stderr.strip().splitlines() or ["ovs-vsctl failed"])[-1])
    ofports = [int(v) for v in done.stdout.split() if v.lstrip("-").isdigit() and int(v) > 0]
    if not ofports:
        return None, _placeholder(None)
    return ofports[0], f"its interface on the local Open vSwitch, external_ids:iface-id={port_id}"


def _placeholder(trouble: str | None) -> str:
    return "a placeholder: the port has no interface on the local Open vSwitch" + (f"; {trouble}" if trouble else "")
