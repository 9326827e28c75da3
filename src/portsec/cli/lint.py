"""portsec pair lint: which allowed address pairs let a port impersonate another, with the fix for each."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cliff.lister import Lister

from portsec.cli import columns
from portsec.cli.find import Client, client_of, find, list_where
from portsec.domain.model import AllowedPair, FixedIp, Port, Subnet
from portsec.domain.pair_lint import Finding, Severity
from portsec.service.insight import pair_findings

CLEAN, HIGH_RISK = 0, 3
COLUMNS = ("Severity", "Check", "Ports", "Address", "Why", "Fix")
LONG_COLUMNS = ("Network", "Port IDs")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EXIT_STATUS = f"""\
exit status: {HIGH_RISK} when a high finding exists (a pair that lets a port send as another port, 0.0.0.0/0 or
::/0, another port's MAC), {CLEAN} when there is none (medium, low and info findings only), 1 when the lint
could not run, so a pipeline can gate on `portsec pair lint`.

Checks: impersonation, any-source, foreign-mac (high); host-bits (medium: 10.0.0.5/24 means the /24 to
the OVS firewall and the host to OVN); redundant, outside-subnets (low); vip, shared-range, unchecked (info).
Ports with port security off or trusted (device_owner network:*) are not checked as impersonators: they
may send from any address anyway; their addresses count as what the others may impersonate.
With <port>, the findings that involve that port: its pairs, its addresses covered by another's pair,
its MAC in another's pair, the VIPs it shares. With neither <port> nor --network, every network."""


class PairLint(Lister):
    """Find allowed address pairs that let a port impersonate another (exit 3 when one does)"""

    high_risk = False

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = EXIT_STATUS
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument(
            "port", metavar="<port>", nargs="?",
            help="Only the findings that involve this port (name or ID); its whole network is linted",
        )  # fmt: skip
        scope.add_argument("--network", metavar="<network>", help="Lint this network (name or ID)")
        parser.add_argument("--long", action="store_true", help="Also show the network and the port IDs")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        client = client_of(self)
        port_id, network_id = _scope(client, args.port, args.network)
        filters = {"network_id": [network_id]} if network_id else None
        ports = [port_from_view(view) for view in client.list("port", filters)]
        subnets = [subnet_from_view(view) for view in client.list("subnet", filters)]
        findings = pair_findings(
            ports, subnets, network_id=network_id, port_id=port_id,
            names_elsewhere=lambda names, known: _names_of_other_ports(client, names, known),
        )  # fmt: skip
        self.high_risk = any(f.severity is Severity.HIGH for f in findings)
        return COLUMNS + (LONG_COLUMNS if args.long else ()), [_row(f, args.long) for f in findings]

    def run(self, parsed_args: argparse.Namespace) -> int:
        code = super().run(parsed_args)
        return HIGH_RISK if code == CLEAN and self.high_risk else code


def _scope(client: Client, port: str | None, network: str | None) -> tuple[str | None, str | None]:
    """(port ID, network ID) to lint; a port is linted with its whole network, then its findings kept."""
    if port:
        found = find(client, "port", port)
        return found["id"], found["network_id"]
    if network:
        return None, find(client, "network", network)["id"]
    return None, None


def _names_of_other_ports(client: Client, names: set[str], known: set[str]) -> set[str]:
    """Those of ``names`` that a port outside ``known`` also has: `find` would call them ambiguous."""
    return {view["name"] for view in list_where(client, "port", "name", names) if view["id"] not in known}


def _row(f: Finding, long: bool) -> tuple[Any, ...]:
    row = (str(f.severity), f.check, columns.UnsortedListColumn(list(f.ports)), f.address, f.why, f.fix)
    return row + ((f.network_id, columns.UnsortedListColumn(list(f.port_ids))) if long else ())


def port_from_view(view: Mapping[str, Any]) -> Port:
    """A port as the API shows it, back as the domain value the lint takes.

    A server without the port-security extension sends no ``port_security_enabled``;
    such ports are taken as enforced, Neutron's default.
    """
    mac = view["mac_address"]
    return Port(
        id=view["id"],
        network_id=view["network_id"],
        project_id=view.get("project_id") or view.get("tenant_id") or "",
        name=view.get("name") or "",
        mac_address=mac,
        admin_state_up=bool(view.get("admin_state_up", True)),
        status=view.get("status") or "",
        device_id=view.get("device_id") or "",
        device_owner=view.get("device_owner") or "",
        port_security_enabled=bool(view.get("port_security_enabled", True)),
        host_id=view.get("binding:host_id") or "",
        vnic_type=view.get("binding:vnic_type") or "normal",
        description=view.get("description") or "",
        revision_number=int(view.get("revision_number") or 0),
        created_at=_when(view.get("created_at")),
        updated_at=_when(view.get("updated_at")),
        fixed_ips=tuple(FixedIp(f.get("subnet_id") or "", f["ip_address"]) for f in view.get("fixed_ips") or ()),
        allowed_address_pairs=tuple(
            AllowedPair(p.get("mac_address") or mac, p["ip_address"]) for p in view.get("allowed_address_pairs") or ()
        ),
    )


def subnet_from_view(view: Mapping[str, Any]) -> Subnet:
    """A subnet as the API shows it; the lint reads its network and CIDR."""
    return Subnet(
        id=view["id"],
        network_id=view["network_id"],
        project_id=view.get("project_id") or view.get("tenant_id") or "",
        name=view.get("name") or "",
        ip_version=int(view.get("ip_version") or (6 if ":" in view["cidr"] else 4)),
        cidr=view["cidr"],
        gateway_ip=view.get("gateway_ip"),
        allocation_pools=(),
        enable_dhcp=bool(view.get("enable_dhcp", True)),
        dns_nameservers=tuple(view.get("dns_nameservers") or ()),
        host_routes=(),
        ipv6_ra_mode=view.get("ipv6_ra_mode"),
        ipv6_address_mode=view.get("ipv6_address_mode"),
        description=view.get("description") or "",
        revision_number=int(view.get("revision_number") or 0),
        created_at=_when(view.get("created_at")),
        updated_at=_when(view.get("updated_at")),
    )


def _when(text: str | None) -> datetime:
    """An API timestamp; the lint does not read them, so one that does not parse is not an error."""
    try:
        return datetime.fromisoformat(text) if text else EPOCH
    except ValueError:
        return EPOCH
