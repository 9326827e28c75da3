"""portsec serve: the Neutron v2.0 API on uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import threading
from typing import Any

from cliff.command import Command

from portsec.agent.ovsdb import default_target
from portsec.api import identity
from portsec.cli.agent import add_ovs_options, agent_config
from portsec.cli.find import CommandError
from portsec.store.database import Database


class Serve(Command):
    """Serve the Neutron v2.0 API (networks, subnets, ports) over HTTP"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--bind", default="127.0.0.1", metavar="<host>", help="Address to listen on")
        parser.add_argument("--port", type=int, default=9696, metavar="<port>", help="Port to listen on (9696)")
        parser.add_argument("--workers", type=int, default=1, metavar="<n>", help="Worker processes (1)")
        parser.add_argument(
            "--identity-config",
            metavar="<file>",
            default=os.environ.get(identity.ENV_CONFIG),
            help="YAML users/projects/roles: serve a Keystone v3 password-auth endpoint at /v3 and require its "
            f"tokens on /v2.0 (default: noauth; env {identity.ENV_CONFIG})",
        )
        enforce = parser.add_mutually_exclusive_group()
        enforce.add_argument(
            "--agent", dest="agent", action="store_true", default=None,
            help="Also run the Open vSwitch agent in this process (default: when a local OVSDB answers)",
        )  # fmt: skip
        enforce.add_argument("--no-agent", dest="agent", action="store_false", help="Serve the API only")
        add_ovs_options(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        import uvicorn

        from portsec.api.transport import NoDelayProtocol

        options: Any = self.app.options
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
        auth = f"identity {args.identity_config}" if args.identity_config else "noauth"
        self.app.stderr.write(f"portsec: Neutron API on http://{args.bind}:{args.port} (database {db.url}, {auth})\n")
        stop = threading.Event()
        agent = self._agent(args, db.url, stop)
        try:
            uvicorn.run(
                "portsec.api.app:from_environment",
                factory=True,
                host=args.bind,
                port=args.port,
                workers=args.workers,
                log_level="warning",
                http=NoDelayProtocol,
            )
        finally:
            stop.set()
            if agent is not None:
                agent.join(timeout=10)

    def _agent(self, args: argparse.Namespace, url: str, stop: threading.Event) -> threading.Thread | None:
        """The agent in a thread of this process: API writes here wake it at commit, with no polling delay."""
        from portsec.agent.agent import Agent
        from portsec.agent.ovsdb import ovsdb_answers

        config = agent_config(args)
        target = config.ovsdb or default_target(config.rundir)
        if args.agent is False:
            return None
        if not ovsdb_answers(target):
            if args.agent:
                raise CommandError(f"--agent: no Open vSwitch database answers at {target}")
            self.app.stderr.write(f"portsec: no Open vSwitch at {target}: nothing is enforced (trace still works)\n")
            return None
        logging.getLogger("portsec").setLevel(logging.INFO)
        agent = Agent(Database(url), config)
        thread = threading.Thread(target=agent.run, args=(stop,), name="portsec-agent", daemon=True)
        thread.start()
        self.app.stderr.write(f"portsec: enforcing on {config.bridge} ({target})\n")
        return thread
