"""portsec serve: the Neutron v2.0 API on uvicorn."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cliff.command import Command

from portsec.store.database import Database


class Serve(Command):
    """Serve the Neutron v2.0 API (networks, subnets, ports) over HTTP"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--bind", default="127.0.0.1", metavar="<host>", help="Address to listen on")
        parser.add_argument("--port", type=int, default=9696, metavar="<port>", help="Port to listen on (9696)")
        parser.add_argument("--workers", type=int, default=1, metavar="<n>", help="Worker processes (1)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        import uvicorn

        options: Any = self.app.options
        db = Database(options.database_url)
        db.migrate()  # once, before any worker starts
        db.dispose()
        # Workers are separate processes: they read their configuration from the environment.
        os.environ["PORTSEC_DATABASE_URL"] = db.url
        os.environ["PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS"] = str(options.max_allowed_address_pairs)
        self.app.stderr.write(f"portsec: Neutron API on http://{args.bind}:{args.port} (database {db.url})\n")
        uvicorn.run(
            "portsec.api.app:from_environment",
            factory=True,
            host=args.bind,
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
