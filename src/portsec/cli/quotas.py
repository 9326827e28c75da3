"""portsec quota show|set|delete: openstackclient's network quotas, and the --quota-* defaults.

``openstack quota show`` prints a row per attribute of openstacksdk's Quota,
whether the server returns it or not (None); QUOTA_ROWS is that list with the
Neutron key each row reads, so both commands print the same for the same
server. A project is its ID here: portsec has no project names to look up
(openstackclient asks Keystone's project API, which portsec does not serve).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Protocol, cast

from cliff.command import Command
from cliff.lister import Lister

from portsec.domain.quotas import UNLIMITED, QuotaDefaults
from portsec.service.quotas import ENV

# (row, Neutron key), in openstacksdk's attribute order (openstack.network.v2.quota.Quota).
QUOTA_ROWS = (
    ("check_limit", "check_limit"),
    ("floating_ips", "floatingip"),
    ("health_monitors", "healthmonitor"),
    ("listeners", "listener"),
    ("load_balancers", "loadbalancer"),
    ("l7_policies", "l7policy"),
    ("networks", "network"),
    ("pools", "pool"),
    ("ports", "port"),
    ("project_id", "project_id"),
    ("tenant_id", "tenant_id"),
    ("rbac_policies", "rbac_policy"),
    ("router_routes", "router_route"),
    ("routers", "router"),
    ("subnets", "subnet"),
    ("subnet_pools", "subnetpool"),
    ("security_group_rules", "security_group_rule"),
    ("security_groups", "security_group"),
)
# `quota set` options: (option, Neutron key), openstackclient's spellings for what portsec serves.
SET_OPTIONS = (("networks", "network"), ("subnets", "subnet"), ("ports", "port"))


class QuotaClient(Protocol):
    def project_id(self) -> str: ...
    def get_quota(self, project_id: str, which: str = "") -> dict[str, Any]: ...
    def update_quota(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete_quota(self, project_id: str) -> None: ...


def _client(cmd: Command) -> QuotaClient:
    return cast(QuotaClient, cast(Any, cmd.app).client)


def limit(text: str) -> int:
    """A default quota (option or environment variable): a count; any negative value means no limit (-1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid quota: {text!r}") from None
    return max(value, UNLIMITED)


def add_default_options(parser: argparse.ArgumentParser) -> None:
    """--quota-network/-subnet/-port: the limits of projects without their own (Neutron's [QUOTAS] quota_*)."""
    for resource, default in QuotaDefaults().as_dict().items():
        parser.add_argument(
            f"--quota-{resource}", metavar="<n>", type=limit, default=os.environ.get(ENV[resource], str(default)),
            help=f"Default {resource}s per project, -1 for no limit (default {default}; env {ENV[resource]})",
        )  # fmt: skip


def defaults_of(options: argparse.Namespace) -> QuotaDefaults:
    return QuotaDefaults(options.quota_network, options.quota_subnet, options.quota_port)


def _service(parser: argparse.ArgumentParser, action: str) -> None:
    """openstackclient's service choice; portsec has only the network service."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help=f"{action} quotas for all services (network only here)")
    group.add_argument("--network", action="store_true", help=f"{action} network quotas")


class ShowQuota(Lister):
    """Show quotas for project"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "project", metavar="<project>", nargs="?", help="Show quotas for this project (ID; default: current)"
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--default", action="store_true", help="Show default quotas for <project>")
        which.add_argument("--usage", action="store_true", help="Show details about quotas usage")
        _service(parser, "Show")
        return parser

    def take_action(self, args: argparse.Namespace) -> Any:
        client = _client(self)
        project = args.project or client.project_id()
        which = "default" if args.default else "details" if args.usage else ""
        quota = client.get_quota(project, which)
        if not args.usage:
            return ("Resource", "Limit"), [(row, _value(quota, key)) for row, key in QUOTA_ROWS]
        used = [(row, quota[key]) for row, key in QUOTA_ROWS if isinstance(quota.get(key), dict)]
        return ("Resource", "Limit", "In Use", "Reserved"), [
            (row, d.get("limit") or 0, d.get("used", 0), d.get("reserved", 0)) for row, d in used
        ]


def _value(quota: dict[str, Any], key: str) -> Any:
    if key == "project_id":  # openstacksdk's alias
        return quota.get("project_id", quota.get("tenant_id"))
    return quota.get(key)


class SetQuota(Command):
    """Set quotas for project"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "project", metavar="<project>", nargs="?", help="Set quotas for this project (ID; default: current)"
        )
        for option, key in SET_OPTIONS:
            parser.add_argument(f"--{option}", metavar=f"<{option}>", dest=key, type=int,
                                help=f"New value for the {option} quota")  # fmt: skip
        force = parser.add_mutually_exclusive_group()
        force.add_argument("--force", action="store_true", help="Force quota update (even below current usage)")
        force.add_argument("--no-force", action="store_false", dest="force", help="Do not force quota update (default)")
        force.add_argument("--check-limit", action="store_false", dest="force", help=argparse.SUPPRESS)
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        body: dict[str, Any] = {key: getattr(args, key) for _, key in SET_OPTIONS if getattr(args, key) is not None}
        if not body:
            return  # as openstackclient: nothing asked, nothing sent
        # openstackclient's flags; current Neutron checks usage unless force is true.
        body.update({"force": True} if args.force else {"check_limit": True})
        client = _client(self)
        client.update_quota(args.project or client.project_id(), body)


class DeleteQuota(Command):
    """Delete configured quota for a project and revert to defaults"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("project", metavar="<project>", help="Delete quotas for this project (ID)")
        _service(parser, "Delete")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        _client(self).delete_quota(args.project)
