"""portsec agent: keep an Open vSwitch bridge's flows in step with the database; portsec port drops."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from typing import Any

from cliff.command import Command
from cliff.lister import Lister

from portsec.cli.find import CommandError, client_of, find
from portsec.ovn.settings import ENV_BACKEND, OVN

OVS_HINT = "is Open vSwitch running? Point OVS_RUNDIR or --ovsdb at it"


def add_ovs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bridge", default="br-int", metavar="<bridge>", help="Integration bridge (br-int)")
    parser.add_argument(
        "--ovsdb", metavar="<target>", default=None,
        help="OVSDB to follow, e.g. unix:/var/run/openvswitch/db.sock (default: unix:$OVS_RUNDIR/db.sock)",
    )  # fmt: skip


def _seconds(text: str) -> float:
    """A positive number of seconds (0 would write a heartbeat on every round of the loop)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_report_option(parser: argparse.ArgumentParser) -> None:
    """For the commands that run the agent (not for `port drops`, which only reads counters)."""
    parser.add_argument(
        "--report-interval", type=_seconds, default=30.0, metavar="<seconds>",
        help="Seconds between the agent's heartbeats to the agents table (Neutron's report_interval, 30)",
    )  # fmt: skip


def add_metrics_per_port_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-per-port", action="store_true",
        help="Label the drop counters of /metrics by port too (one series per port and reason)",
    )  # fmt: skip


def agent_config(args: argparse.Namespace) -> Any:
    from portsec.agent.agent import AgentConfig

    config = AgentConfig(bridge=args.bridge, ovsdb=args.ovsdb, rundir=os.environ.get("OVS_RUNDIR"))
    config.report_interval = getattr(args, "report_interval", config.report_interval)
    if getattr(args, "host", None):
        config.host = args.host
    return config


class RunAgent(Command):
    """Program an Open vSwitch bridge with each port's anti-spoofing flows, and keep them current"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_ovs_options(parser)
        add_report_option(parser)
        parser.add_argument("--host", metavar="<host>", help="Host name reported as binding:host_id (this host)")
        parser.add_argument("--once", action="store_true", help="One full sync, then exit")
        parser.add_argument(
            "--metrics-port", type=int, metavar="<port>", help="Serve Prometheus metrics on this port (default: off)"
        )
        parser.add_argument(
            "--metrics-bind", default="127.0.0.1", metavar="<host>", help="Address of /metrics (127.0.0.1)"
        )
        add_metrics_per_port_option(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        from portsec.agent.agent import Agent
        from portsec.store.database import Database

        logging.getLogger("portsec").setLevel(logging.INFO)
        options: Any = self.app.options
        db = Database(options.database_url)
        db.migrate()
        agent = Agent(db, agent_config(args))
        stop = threading.Event()

        def finish(*_: Any) -> None:
            stop.set()
            agent.wake.set()

        try:
            if args.once:
                agent.run_once()
                self.app.stdout.write(f"synced {len(agent.table.installed)} flows on {args.bridge}\n")
                return
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, finish)
            self.app.stderr.write(f"portsec agent: {args.bridge}, database {db.url}\n")
            if args.metrics_port is not None:
                from portsec.agent.metrics import expose

                expose(agent, args.metrics_bind, args.metrics_port, args.metrics_per_port)
                self.app.stderr.write(f"portsec agent: metrics on http://{args.metrics_bind}:{args.metrics_port}/\n")
            agent.run(stop)  # once started, it retries whatever fails until stopped
        except RuntimeError as err:  # Open vSwitch was not there to start with
            raise CommandError(f"{err} ({OVS_HINT})") from None


class PortDrops(Lister):
    """Packets a port's flows dropped, per reason (read from the bridge's flow counters)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("port", metavar="<port>", help="Port (name or ID)")
        add_ovs_options(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        from portsec.guards import guard_from_view

        port = find(client_of(self), "port", args.port)
        dropped = read_drops(port["id"], args.bridge)
        if not guard_from_view(port).enforced:
            self.app.stderr.write(
                f"{args.port} has no port security: nothing was dropped; these are the packets its audit flows "
                f"counted, which enabling port security would drop (portsec port set {args.port} "
                "--enable-port-security --dry-run)\n"
            )
        return ("Reason", "Packets"), list(dropped.items())


def read_drops(port_id: str, bridge: str = "br-int") -> dict[str, int]:
    """The port's drop counters from the local bridge (`port drops`, `port set --dry-run`); CommandError if none."""
    from portsec.agent.local import LocalSwitch, port_drops
    from portsec.agent.ofctl import OfctlError

    if os.environ.get(ENV_BACKEND) == OVN:
        raise CommandError(
            f"port {port_id} has no drop counters: they come from the native agent, and {ENV_BACKEND}=ovn "
            "enforces through OVN, which counts drops per logical flow, shared by all ports; trace a packet "
            "instead (portsec trace --backend ovn)"
        )
    try:
        return port_drops(LocalSwitch(bridge, os.environ.get("OVS_RUNDIR")), port_id)
    except OfctlError as err:
        raise CommandError(f"cannot read the counters of {bridge}: {err} ({OVS_HINT})") from None
