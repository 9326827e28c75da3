"""The OVN backend's options, and `portsec ovn sync`: compare the store with OVN's Northbound, and repair it."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cliff.lister import Lister

from portsec.cli.find import CommandError
from portsec.ovn.settings import ENV_BACKEND, ENV_NB, ENV_SB, NATIVE, OVN


def add_backend_choice(parser: argparse.ArgumentParser, what: str) -> None:
    """--backend: ``what`` says what each choice means for the command."""
    parser.add_argument(
        "--backend", choices=(NATIVE, OVN), default=os.environ.get(ENV_BACKEND) or NATIVE,
        help=f"{what} (default: native; env {ENV_BACKEND})",
    )  # fmt: skip


def add_southbound_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--ovn-sb", metavar="<connection>", default=os.environ.get(ENV_SB),
        help=f"OVN Southbound database, e.g. tcp:10.0.0.5:6642 or unix:PATH, {what} (env {ENV_SB})",
    )  # fmt: skip


def add_backend_options(parser: argparse.ArgumentParser, with_choice: bool = True) -> None:
    from portsec.ovn.backend import OvnConfig

    if with_choice:
        add_backend_choice(parser, "What enforces port security: the native Open vSwitch agent on this host, or OVN "
                                   "on every hypervisor (--ovn-nb)")  # fmt: skip
    parser.add_argument(
        "--ovn-nb", metavar="<connection>", default=os.environ.get(ENV_NB),
        help=f"OVN Northbound database, e.g. tcp:10.0.0.5:6641 or unix:PATH (env {ENV_NB})",
    )  # fmt: skip
    add_southbound_option(parser, "read to learn each port's chassis, shown as binding:host_id (optional)")
    parser.add_argument(
        "--ovn-sync-interval", type=float, default=OvnConfig.sync_interval, metavar="<seconds>",
        help=f"Seconds between full comparisons of the store with NB that repair drift ({OvnConfig.sync_interval:g})",
    )  # fmt: skip


def ovn_config(args: argparse.Namespace) -> Any:
    from portsec.ovn.backend import OvnConfig

    if not args.ovn_nb:
        raise CommandError("the OVN backend needs --ovn-nb (or PORTSEC_OVN_NB): where OVN's Northbound database is")
    if not args.ovn_sync_interval > 0:
        raise CommandError(f"--ovn-sync-interval: {args.ovn_sync_interval:g} is not a positive number of seconds")
    config = OvnConfig(nb=args.ovn_nb, sb=args.ovn_sb, sync_interval=args.ovn_sync_interval)
    config.report_interval = getattr(args, "report_interval", config.report_interval)
    return config


class OvnSync(Lister):
    """Compare the database with OVN's Northbound and repair every difference (--dry-run: only list them)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_backend_options(parser, with_choice=False)
        parser.add_argument("--dry-run", action="store_true", help="List the differences; change nothing")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[str, str, str]]]:
        from portsec.ovn.backend import OvnBackend
        from portsec.store.database import Database

        options: Any = self.app.options
        config = ovn_config(args)
        db = Database(options.database_url)
        db.migrate()
        backend = OvnBackend(db, config)
        try:
            backend.start()
            drift = backend.sync("cli", dry_run=args.dry_run)
        except Exception as err:  # ovsdbapp raises bare exceptions for a database that is not there
            raise CommandError(f"OVN Northbound at {config.nb}: {err}") from None
        finally:
            backend.stop()
        verb = "differ" if args.dry_run else "repaired"
        self.app.stderr.write(f"{len(drift)} difference(s) {verb}\n" if drift else "OVN NB matches the database\n")
        return ("Kind", "Name", "Found"), [(d.kind, d.name, d.found) for d in drift]
