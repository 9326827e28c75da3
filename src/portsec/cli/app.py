"""The `portsec` command: cliff application, global options and the command table."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from cliff.app import App
from cliff.command import Command
from cliff.commandmanager import CommandManager

from portsec import faults
from portsec.cli import agent, network_agents, networks, ovn, parsing, ports, quotas, serve, subnets, trace, vips
from portsec.cli.find import CommandError
from portsec.cli.lint import PairLint
from portsec.domain.errors import NeutronError
from portsec.domain.model import DEFAULT_PROJECT_ID, Context
from portsec.domain.pairs import DEFAULT_MAX_PAIRS
from portsec.service.common import Limits
from portsec.store.database import ENV_URL, Database, default_url

COMMANDS: dict[str, type[Command]] = {
    "network create": networks.CreateNetwork,
    "network list": networks.ListNetwork,
    "network show": networks.ShowNetwork,
    "network set": networks.SetNetwork,
    "network delete": networks.DeleteNetwork,
    "network agent list": network_agents.ListNetworkAgent,
    "network agent show": network_agents.ShowNetworkAgent,
    "network agent set": network_agents.SetNetworkAgent,
    "network agent delete": network_agents.DeleteNetworkAgent,
    "subnet create": subnets.CreateSubnet,
    "subnet list": subnets.ListSubnet,
    "subnet show": subnets.ShowSubnet,
    "subnet delete": subnets.DeleteSubnet,
    "port create": ports.CreatePort,
    "port list": ports.ListPort,
    "port show": ports.ShowPort,
    "port set": ports.SetPort,
    "port unset": ports.UnsetPort,
    "port delete": ports.DeletePort,
    "port-update": ports.LegacyPortUpdate,
    "port drops": agent.PortDrops,
    "quota show": quotas.ShowQuota,
    "quota set": quotas.SetQuota,
    "quota delete": quotas.DeleteQuota,
    "agent": agent.RunAgent,
    "ovn sync": ovn.OvnSync,
    "serve": serve.Serve,
    "trace": trace.Trace,
    "pair lint": PairLint,
    "vip list": vips.ListVip,
    "vip show": vips.ShowVip,
}


class PortsecApp(App):
    def __init__(self) -> None:
        manager = CommandManager("portsec.cli", convert_underscores=False)
        for name, command in COMMANDS.items():
            manager.add_command(name, command)
        super().__init__(
            description=(
                "Port security for virtual networks: Neutron's networks, subnets and ports with allowed "
                f"address pairs. Embedded database: {default_url()} (override with --database-url or "
                f"{ENV_URL})."
            ),
            version="0.1.0",
            command_manager=manager,
            deferred_help=True,
        )
        self._client: Any = None

    def build_option_parser(self, description: str | None, version: str | None, argparse_kwargs: Any = None) -> Any:
        parser = super().build_option_parser(description, version, argparse_kwargs)
        parser.add_argument(
            "--database-url", metavar="<url>", default=os.environ.get(ENV_URL),
            help=f"SQLAlchemy URL of the database (default: {default_url()}; env {ENV_URL})",
        )  # fmt: skip
        parser.add_argument(
            "--endpoint", metavar="<url>", default=os.environ.get("PORTSEC_ENDPOINT"),
            help="Talk to a portsec (or any Neutron) API at this URL instead of the embedded database "
            "(env PORTSEC_ENDPOINT)",
        )  # fmt: skip
        parser.add_argument(
            "--project-id", metavar="<project>", default=os.environ.get("PORTSEC_PROJECT_ID", DEFAULT_PROJECT_ID),
            help="Project that new resources belong to in embedded mode (env PORTSEC_PROJECT_ID)",
        )  # fmt: skip
        parser.add_argument(
            "--max-allowed-address-pairs", metavar="<n>", type=parsing.count,
            default=os.environ.get("PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS", str(DEFAULT_MAX_PAIRS)),
            help=f"Most pairs a port may have (default {DEFAULT_MAX_PAIRS}; env PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS)",
        )  # fmt: skip
        quotas.add_default_options(parser)
        auth = parser.add_argument_group(
            "identity", "Password auth against a Keystone v3 endpoint (portsec serve --identity-config, or a cloud's). "
            "The OS_* variables count when an endpoint is set; --os-auth-url alone takes the network endpoint from "
            "the token's catalog.",
        )  # fmt: skip
        auth.add_argument("--os-auth-url", metavar="<url>", help="Identity endpoint (env OS_AUTH_URL)")
        auth.add_argument("--os-username", metavar="<name>", default=os.environ.get("OS_USERNAME"))
        auth.add_argument("--os-password", metavar="<password>", default=os.environ.get("OS_PASSWORD"))
        auth.add_argument("--os-project-name", metavar="<name>", default=os.environ.get("OS_PROJECT_NAME"))
        auth.add_argument("--os-user-domain-name", metavar="<name>",
                          default=os.environ.get("OS_USER_DOMAIN_NAME", "Default"))  # fmt: skip
        auth.add_argument("--os-project-domain-name", metavar="<name>",
                          default=os.environ.get("OS_PROJECT_DOMAIN_NAME", "Default"))  # fmt: skip
        return parser

    def _remote(self) -> Any:
        """The HTTP client, logged in when identity options are given; None for embedded mode."""
        from portsec.client.http import HTTPClient, password_token

        o = self.options
        auth_url = o.os_auth_url or (os.environ.get("OS_AUTH_URL") if o.endpoint else None)
        if not auth_url:
            if not o.endpoint:
                return None
            # noauth servers take the caller's project from this header; without it, admin.
            headers = {"X-Project-Id": o.project_id} if o.project_id != DEFAULT_PROJECT_ID else {}
            return HTTPClient(o.endpoint, headers)
        missing = [
            f"--os-{n}" for n in ("username", "password", "project-name") if not getattr(o, f"os_{n}".replace("-", "_"))
        ]
        if missing:
            raise CommandError(f"password auth at {auth_url} needs {', '.join(missing)} (or the OS_* variables)")
        token, network = password_token(auth_url, o.os_username, o.os_password, o.os_project_name,
                                        o.os_user_domain_name, o.os_project_domain_name)  # fmt: skip
        endpoint = o.endpoint or network
        if not endpoint:
            raise CommandError(f"the catalog from {auth_url} has no public network endpoint; give --endpoint")
        return HTTPClient(endpoint, {"X-Auth-Token": token})

    @property
    def client(self) -> Any:
        """Opened on first use, so `--help` works without a database."""
        if self._client is None:
            self._client = self._remote()
        if self._client is None:
            from portsec.client.embedded import EmbeddedClient

            db = Database(self.options.database_url)
            db.migrate()
            limits = Limits(self.options.max_allowed_address_pairs, quotas.defaults_of(self.options))
            self._client = EmbeddedClient(db, Context.admin(self.options.project_id), limits)
        return self._client

    def configure_logging(self) -> None:
        super().configure_logging()
        # httpx logs each request at INFO, cliff's default console level: a user sees those lines only with
        # -vv / --debug, as the openstack client shows its HTTP traffic only in debug mode.
        level = logging.NOTSET if self.options.verbose_level >= 2 else logging.WARNING
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(level)

    def prepare_to_run_command(self, cmd: Command) -> None:
        take_action = cmd.take_action

        def guarded(parsed_args: Any) -> Any:
            try:
                return take_action(parsed_args)
            except NeutronError as err:
                raise CommandError(faults.cli_message(err)) from err

        cmd.take_action = guarded  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    return PortsecApp().run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
