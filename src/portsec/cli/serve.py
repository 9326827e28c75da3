"""portsec serve: the Neutron v2.0 API on uvicorn."""

from __future__ import annotations

import argparse
import os
import secrets
from typing import Any

from cliff.command import Command

from portsec.api import identity
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
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        import uvicorn

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
        uvicorn.run(
            "portsec.api.app:from_environment",
            factory=True,
            host=args.bind,
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
