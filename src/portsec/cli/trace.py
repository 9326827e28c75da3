"""portsec trace: why a packet from a port would be forwarded or dropped, on the built-in switch model."""

from __future__ import annotations

import argparse
from typing import Any

from cliff.command import Command

from portsec.agent.local import choose_ofport
from portsec.cli.find import CommandError, client_of, find
from portsec.cli.ovn import add_backend_choice, add_southbound_option
from portsec.ovn.settings import ENV_SB, OVN
from portsec.service.insight import trace_port

FORWARDED, DROPPED = 0, 2

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
        add_backend_choice(parser, "Trace through the native agent's flows (on the switch model), or through OVN's "
                                   "logical pipeline with ovn-trace (needs --ovn-sb)")  # fmt: skip
        add_southbound_option(parser, "that ovn-trace reads")
        parser.add_argument(
            "--ovsdb", metavar="<target>", default=None,
            help="OVSDB to look the interface up in, e.g. unix:/var/run/openvswitch/db.sock "
            "(default: unix:$OVS_RUNDIR/db.sock)",
        )  # fmt: skip
        return parser

    def take_action(self, args: argparse.Namespace) -> int:
        port = find(client_of(self), "port", args.port)
        if args.backend == OVN:
            return self._ovn(port, args)
        ofport, where = choose_ofport(port["id"], args.ofport, args.ovsdb, "given with --ofport")
        try:
            result = trace_port(port, args.flow, ofport)
        except ValueError as err:
            raise CommandError(str(err)) from err
        lines = result.text().splitlines()
        lines.insert(2, f"ofport:  {ofport} ({where})")
        self.app.stdout.write("\n".join(lines) + "\n")
        return FORWARDED if result.forwarded else DROPPED

    def _ovn(self, port: dict[str, Any], args: argparse.Namespace) -> int:
        from portsec.ovn.trace import OvnTraceError, trace_ovn

        if not args.ovn_sb:
            raise CommandError(f"--backend ovn: ovn-trace needs --ovn-sb (or {ENV_SB}): where OVN's Southbound is")
        try:
            result = trace_ovn(port, args.flow, args.ovn_sb)
        except (ValueError, OvnTraceError) as err:
            raise CommandError(str(err)) from err
        self.app.stdout.write(result.text())
        return FORWARDED if result.forwarded else DROPPED
