"""portsec serve: the Neutron v2.0 API on uvicorn."""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import os
import secrets
import threading
from typing import Any

from cliff.command import Command

from portsec.agent.local import switch_environment
from portsec.agent.ovsdb import default_target
from portsec.api import identity, logflood
from portsec.cli.agent import add_metrics_per_port_option, add_ovs_options, add_report_option, agent_config
from portsec.cli.find import CommandError
from portsec.cli.ovn import add_backend_options, ovn_config
from portsec.cli.quotas import defaults_of
from portsec.ovn.settings import ENV_BACKEND, ENV_NB, ENV_SB, OVN
from portsec.service.agents import ENV_DOWN_TIME
from portsec.service.quotas import environment as quota_environment
from portsec.store.database import Database


class Serve(Command):
    """Serve the Neutron v2.0 API (networks, subnets, ports) over HTTP"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        from portsec.api import transport  # uvicorn's protocol: loaded for this command only

        parser = super().get_parser(prog_name)
        parser.add_argument("--bind", default="127.0.0.1", metavar="<host>", help="Address to listen on")
        parser.add_argument("--port", type=int, default=9696, metavar="<port>", help="Port to listen on (9696)")
        parser.add_argument("--workers", type=int, default=1, metavar="<n>", help="Worker processes (1)")
        parser.add_argument(
            "--timeout-request",
            type=_positive(float),
            default=transport.REQUEST_TIMEOUT,
            metavar="<seconds>",
            help="Close a connection that has not sent a whole request (headers and body) this long after it "
            f"opened or after its previous response ({transport.REQUEST_TIMEOUT:g})",
        )
        parser.add_argument(
            "--timeout-keep-alive",
            type=_positive(float),
            default=5.0,
            metavar="<seconds>",
            help="Close a keep-alive connection idle this long after a response (5)",
        )
        parser.add_argument(
            "--max-connections",
            type=_positive(int),
            metavar="<n>",
            help="Open connections per worker; past them a new one gets 503 and is closed (default: three quarters "
            "of the open-file limit, whose soft value is raised to the hard one at start)",
        )
        parser.add_argument(
            "--identity-config",
            metavar="<file>",
            default=os.environ.get(identity.ENV_CONFIG),
            help="YAML users/projects/roles: serve a Keystone v3 password-auth endpoint at /v3 and require its "
            f"tokens on /v2.0 (default: noauth; env {identity.ENV_CONFIG})",
        )
        parser.add_argument(
            "--agent-down-time", type=_positive(float), default=float(os.environ.get(ENV_DOWN_TIME, "75")),
            metavar="<seconds>",
            help=f"An agent whose last heartbeat is older is shown alive: false (Neutron's agent_down_time, 75; "
            f"env {ENV_DOWN_TIME})",
        )  # fmt: skip
        enforce = parser.add_mutually_exclusive_group()
        enforce.add_argument(
            "--agent", dest="agent", action="store_true", default=None,
            help="Also run the Open vSwitch agent in this process (default: when a local OVSDB answers)",
        )  # fmt: skip
        enforce.add_argument("--no-agent", dest="agent", action="store_false", help="Serve the API only")
        add_ovs_options(parser)
        add_report_option(parser)
        add_metrics_per_port_option(parser)
        add_backend_options(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        import uvicorn

        from portsec import metrics
        from portsec.api import transport

        options: Any = self.app.options
        open_files = transport.raise_open_file_limit()
        max_connections = args.max_connections or transport.default_max_connections(open_files)
        if max_connections >= open_files:
            raise CommandError(f"--max-connections: {max_connections} leaves no file of the {open_files} allowed")
        if args.identity_config:
            # Checked once here; workers get the same secret, so any of them validates any token.
            secret = os.environ.get(identity.ENV_SECRET) or secrets.token_urlsafe(32)
            try:
                identity.Identity.load(args.identity_config, secret)
            except identity.IdentityConfigError as err:
                raise CommandError(f"--identity-config: {err}") from None
            os.environ[identity.ENV_CONFIG] = os.path.abspath(args.identity_config)
            os.environ[identity.ENV_SECRET] = secret
        else:
            os.environ.pop(identity.ENV_CONFIG, None)
        db = Database(options.database_url)
        db.migrate()  # once, before any worker starts
        db.dispose()
        # Workers are separate processes: they read their configuration from the environment.
        os.environ["PORTSEC_DATABASE_URL"] = db.url
        os.environ["PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS"] = str(options.max_allowed_address_pairs)
        os.environ.update(quota_environment(defaults_of(options)))
        os.environ[ENV_DOWN_TIME] = str(args.agent_down_time)
        os.environ.update(switch_environment(args.bridge, args.ovsdb))  # where drops and trace read the switch
        os.environ.update(_backend_environment(args))
        auth = f"identity {args.identity_config}" if args.identity_config else "noauth"
        self.app.stderr.write(f"portsec: Neutron API on http://{args.bind}:{args.port} (database {db.url}, {auth})\n")
        # uvicorn calls its `http` class with its own arguments: a partial adds ours. Not a class made here:
        # with --workers it is pickled to each worker process, by name. (Any: uvicorn's hint says a class.)
        protocol: Any = functools.partial(
            transport.ServerProtocol, request_timeout=args.timeout_request, max_connections=max_connections
        )
        stop = threading.Event()
        # Several workers share their metrics through files: set up before the agent and the workers make any.
        with metrics.multiprocess_dir(args.workers):
            agent = self._agent(args, db.url, stop)
            try:
                uvicorn.run(
                    "portsec.api.app:from_environment",
                    factory=True,
                    host=args.bind,
                    port=args.port,
                    workers=args.workers,
                    log_level="warning",
                    log_config=_log_config(options),
                    timeout_keep_alive=args.timeout_keep_alive,
                    http=protocol,
                )
            finally:
                stop.set()
                if agent is not None:
                    agent.join(timeout=10)

    def _agent(self, args: argparse.Namespace, url: str, stop: threading.Event) -> threading.Thread | None:
        """The agent in a thread of this process: API writes here wake it at commit, with no polling delay."""
        from portsec.agent.agent import Agent
        from portsec.agent.metrics import AgentMetrics
        from portsec.agent.ovsdb import ovsdb_answers

        if args.agent is False:
            return None
        if args.backend == OVN:
            return self._ovn(args, url, stop)
        config = agent_config(args)
        target = config.ovsdb or default_target(config.rundir)
        if not ovsdb_answers(target):
            if args.agent:
                raise CommandError(f"--agent: no Open vSwitch database answers at {target}")
            self.app.stderr.write(f"portsec: no Open vSwitch at {target}: nothing is enforced (trace still works)\n")
            return None
        logging.getLogger("portsec").setLevel(logging.INFO)
        agent = Agent(Database(url), config)
        AgentMetrics(agent, args.metrics_per_port).start()  # served by the API's /metrics
        thread = threading.Thread(target=agent.run, args=(stop,), name="portsec-agent", daemon=True)
        thread.start()
        self.app.stderr.write(f"portsec: enforcing on {config.bridge} ({target})\n")
        return thread

    def _ovn(self, args: argparse.Namespace, url: str, stop: threading.Event) -> threading.Thread:
        """The OVN backend in a thread of this process: it writes NB; ovn-controller enforces on each hypervisor."""
        from portsec.ovn.backend import OvnBackend

        config = ovn_config(args)
        logging.getLogger("portsec").setLevel(logging.INFO)
        backend = OvnBackend(Database(url), config)
        thread = threading.Thread(target=backend.run, args=(stop,), name="portsec-ovn", daemon=True)
        thread.start()
        self.app.stderr.write(f"portsec: enforcing through OVN (Northbound {config.nb})\n")
        return thread


def _backend_environment(args: argparse.Namespace) -> dict[str, str]:
    """What the workers need to answer trace and drops for the backend that runs."""
    env = {ENV_BACKEND: args.backend}
    if args.backend == OVN:
        ovn_config(args)  # refused here, before anything starts, without --ovn-nb
        env.update({ENV_NB: args.ovn_nb, **({ENV_SB: args.ovn_sb} if args.ovn_sb else {})})
    return env


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value

    return parse


def _log_config(options: Any) -> dict[str, Any]:
    """uvicorn's logging, and the root logger's as cliff sets it up, every handler through one flood filter.

    dictConfig replaces the root logger's handlers, and the processes of --workers
    would have none but logging's lastResort, unfiltered: asyncio's errors (accept()
    out of files, say) and portsec's own lines go to the root. So cliff's console
    (stderr, at the -v/-q level) and --log-file are described again here, for this
    process and the workers alike.
    """
    from cliff.app import App
    from uvicorn.config import LOGGING_CONFIG

    console = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}.get(options.verbose_level, logging.DEBUG)
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"flood": {"()": logflood.RateLimit}}
    config["formatters"].update(
        cliff_console={"format": App.CONSOLE_MESSAGE_FORMAT}, cliff_file={"format": App.LOG_FILE_MESSAGE_FORMAT}
    )
    config["handlers"]["cliff_console"] = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "cliff_console",
        "level": console,
    }
    config["root"] = {"level": console, "handlers": ["cliff_console"]}
    if options.log_file:
        config["handlers"]["cliff_file"] = {
            "class": "logging.FileHandler",
            "filename": options.log_file,
            "formatter": "cliff_file",
        }
        config["root"] = {"level": logging.DEBUG, "handlers": ["cliff_console", "cliff_file"]}
    for handler in config["handlers"].values():
        handler["filters"] = ["flood"]
    return config
