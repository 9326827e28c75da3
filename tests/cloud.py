"""portsec serving the API with the OVN backend, on the two-hypervisor bed: what the OVN tests and bench share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import ovn, ovs, server
from tests.dataplane import wait_for

# What a port's Logical_Switch_Port is made of: a PUT that changes none of these writes nothing to NB.
ENFORCED = ("mac_address", "fixed_ips", "allowed_address_pairs", "port_security_enabled", "admin_state_up")


@dataclass
class Cloud:
    bed: ovn.Bed
    url: str
    http: httpx.Client
    database_url: str
    stack: ExitStack = field(default_factory=ExitStack)

    @property
    def hv1(self) -> ovn.Hypervisor:
        return self.bed.hvs[0]

    @property
    def hv2(self) -> ovn.Hypervisor:
        return self.bed.hvs[1]

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        answer = self.http.request(method, path, json=body)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def network(self, name: str, cidrs: list[str], **extra: Any) -> dict[str, Any]:
        net = self.call("POST", "/v2.0/networks", {"network": {"name": name, **extra}}, 201)["network"]
        for cidr in cidrs:
            body = {"network_id": net["id"], "cidr": cidr, "ip_version": 6 if ":" in cidr else 4}
            self.call("POST", "/v2.0/subnets", {"subnet": body}, 201)
        return net

    def port(self, net: dict[str, Any], name: str, mac: str, ips: list[str], **extra: Any) -> dict[str, Any]:
        subnets = self.call("GET", f"/v2.0/subnets?network_id={net['id']}")["subnets"]

        def subnet_of(ip: str) -> str:
            return next(s["id"] for s in subnets if (":" in ip) == (s["ip_version"] == 6))

        body = {"network_id": net["id"], "name": name, "mac_address": mac, **extra}
        body["fixed_ips"] = [{"subnet_id": subnet_of(ip), "ip_address": ip} for ip in ips]
        return self.call("POST", "/v2.0/ports", {"port": body}, 201)["port"]

    def update(self, port: dict[str, Any], **body: Any) -> dict[str, Any]:
        """PUT, then wait until NB and every chassis hold the change (if it changed what OVN enforces)."""
        before = self.get(port)
        updated = self.call("PUT", f"/v2.0/ports/{port['id']}", {"port": body})["port"]
        if any(before[k] != updated[k] for k in ENFORCED):
            self.converged(updated)
        return updated

    def get(self, port: dict[str, Any]) -> dict[str, Any]:
        return self.call("GET", f"/v2.0/ports/{port['id']}")["port"]

    def nb_port(self, port_id: str) -> dict[str, Any] | None:
        """The Logical_Switch_Port row as JSON columns, or None."""
        out = self.bed.central.nbctl("--format=json", "find", "Logical_Switch_Port", f"name={port_id}")
        table = json.loads(out)
        if not table["data"]:
            return None
        return dict(zip(table["headings"], table["data"][0], strict=True))

    def converged(self, port: dict[str, Any]) -> None:
        """NB holds the port at its revision (or newer), and every chassis has applied NB."""

        def written() -> bool:
            row = self.nb_port(port["id"])
            if row is None:
                return False
            external_ids = dict(row["external_ids"][1])
            return int(external_ids.get("portsec:revision_number", -1)) >= port["revision_number"]

        wait_for(written, what=f"port {port['name']} written to OVN NB")
        self.bed.sync()

    def vm(self, hv: ovn.Hypervisor, port: dict[str, Any], addresses: list[str]) -> ovs.VM:
        machine = self.stack.enter_context(ovn.vm(hv, port["id"], port["mac_address"], addresses))
        wait_for(lambda: ovn.installed(hv, machine.tap, 0.1), what=f"{port['name']} installed by ovn-controller")
        return machine

    def active(self, port: dict[str, Any]) -> dict[str, Any]:
        return wait_for(
            lambda: (shown := self.get(port))["status"] == "ACTIVE" and shown,
            what=f"port {port['name']} ACTIVE",
        )

    def datapath_verdict(self, hv: ovn.Hypervisor, machine: ovs.VM, frame: bytes) -> str:
        """What the hypervisor's Open vSwitch would do with ``frame`` from ``machine``: its datapath actions."""
        out = hv.appctl("ofproto/trace", "br-int", f"in_port={machine.ofport}", frame.hex())
        return out.strip().splitlines()[-1]


@contextmanager
def cloud(tmp: Path, *extra_args: str) -> Iterator[Cloud]:
    """The bed, and `portsec serve --backend ovn` on it (SQLite in ``tmp``), NB and SB given."""
    with ovn.bed() as bed, ExitStack() as stack:
        database_url = f"sqlite:///{tmp / 'portsec.db'}"
        args = ["--backend", "ovn", "--ovn-nb", bed.central.nb, "--ovn-sb", bed.central.sb, *extra_args]
        url = stack.enter_context(server.serve(database_url, args=args))
        http = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        result = Cloud(bed, url, http, database_url)
        with result.stack:
            yield result
