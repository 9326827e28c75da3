"""`portsec trace` with the OVN backend: the packet through OVN's logical pipeline, by ``ovn-trace``.

The microflow is the native trace's (ovs-ofctl syntax, filled in from the port
the same way), written as an OVN expression on the port's logical switch. The
verdict is OVN's: the packet is dropped when the ingress pipeline of the port's
switch drops it (port security, or a portsec ACL), and the stage that dropped it
is named. The words (why, and the fix) are the contract's, from the native
trace of the same packet, since both backends enforce one intent; where OVN
23.03 gives another verdict than the contract (ARP probes, Router
Advertisements), the answer says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portsec.guards import guard_from_view
from portsec.openflow.packet import ETH_ARP, ETH_IP, ETH_IPV6, Packet, make_packet, parse_packet
from portsec.openflow.trace import Trace, fill, trace
from portsec.ovn.intent import switch_name

BROADCAST = "ff:ff:ff:ff:ff:ff"
_STAGE = re.compile(r"^\s*\d+\. (\w+) ")
_PLACEHOLDER_OFPORT = 1  # the native fill wants one; OVN names the port itself


class OvnTraceError(RuntimeError):
    """ovn-trace could not be run, or did not understand the packet."""


@dataclass(frozen=True)
class OvnTrace:
    packet: Packet
    expression: str
    stages: tuple[str, ...]  # ingress stages the packet went through, the last one dropping it if it was dropped
    dropped_by: str | None  # the stage, when the ingress pipeline dropped it
    contract: Trace  # the native trace of the same packet: what DESIGN §4 says of it

    @property
    def forwarded(self) -> bool:
        return self.dropped_by is None

    def headline(self) -> str:
        return "forwarded" if self.forwarded else f"dropped ({self.dropped_by})"

    @property
    def why(self) -> str:
        if self.forwarded == self.contract.forwarded:
            return self.contract.why
        if self.forwarded:
            return (f"OVN forwards it, where portsec's contract drops it ({self.contract.headline()}): "
                    f"{self.contract.why} OVN 23.03 cannot drop it (the README's contract table).")  # fmt: skip
        return (f"OVN drops it in {self.dropped_by}, where portsec's contract forwards it: "
                f"{self.contract.why} OVN 23.03 is stricter here (the README's contract table).")  # fmt: skip

    @property
    def fix(self) -> str | None:
        return self.contract.fix if self.forwarded == self.contract.forwarded else None

    def text(self) -> str:
        lines = [f"verdict: {self.headline()}", f"packet:  {self.packet}", f"ovn:     {self.expression}", "stages:"]
        lines += [f"  {s}" for s in self.stages]
        lines.append(f"why:     {self.why}")
        if self.fix:
            lines.append(self.fix)
        return "\n".join(lines) + "\n"


def trace_ovn(port: Mapping[str, Any], microflow: str, southbound: str) -> OvnTrace:
    """``microflow`` sent by ``port`` (the API's view of it), through OVN's logical switch of its network.

    Raises ValueError for a microflow that does not parse, OvnTraceError when ovn-trace cannot answer.
    """
    guard = guard_from_view(port)
    fixed_ips = tuple(str(f["ip_address"]) for f in port.get("fixed_ips") or ())
    packet = fill(guard, parse_packet(microflow), _PLACEHOLDER_OFPORT, fixed_ips).with_defaults(dl_dst=BROADCAST)
    contract = trace(guard, packet, _PLACEHOLDER_OFPORT, port=port)
    expression = expression_of(packet, str(port["id"]))
    stages, dropped_by = _ingress(_ovn_trace(southbound, switch_name(str(port["network_id"])), expression))
    # OVN names the port itself: the placeholder OpenFlow port the native fill needed means nothing here.
    shown = make_packet(packet.protocol, {k: v for k, v in packet.fields if k != "in_port"})
    return OvnTrace(shown, expression, stages, dropped_by, contract)


def expression_of(packet: Packet, port_id: str) -> str:
    """The packet as an OVN match expression that ovn-trace reads (one value per field)."""
    dl_type, proto = packet.dl_type, packet.nw_proto
    terms = [f'inport == "{port_id}"']
    for name, value in packet.fields:
        field = _ovn_field(name, dl_type, proto)
        if field is not None:
            terms.append(f"{field} == {value}")
    if packet.get("vlan_tci") is None:
        terms.append("vlan.present == 0")
    if dl_type in (ETH_IP, ETH_IPV6) and packet.get("nw_ttl") is None:
        # ovn-trace starts from ttl 0; neighbor discovery must carry 255.
        terms.append(f"ip.ttl == {255 if proto == 58 else 64}")
    return " && ".join(terms)


def _ovn_field(name: str, dl_type: int, proto: int) -> str | None:
    l4 = {6: "tcp", 17: "udp"}.get(proto)
    icmp = "icmp6" if dl_type == ETH_IPV6 else "icmp4"
    fields = {
        "dl_src": "eth.src", "dl_dst": "eth.dst", "dl_type": "eth.type", "vlan_tci": "vlan.tci",
        "nw_src": "ip4.src", "nw_dst": "ip4.dst", "nw_proto": "ip.proto", "nw_ttl": "ip.ttl",
        "ipv6_src": "ip6.src", "ipv6_dst": "ip6.dst",
        "arp_spa": "arp.spa", "arp_tpa": "arp.tpa", "arp_sha": "arp.sha", "arp_tha": "arp.tha", "arp_op": "arp.op",
        "tp_src": f"{l4}.src" if l4 else None, "tp_dst": f"{l4}.dst" if l4 else None,
        "icmp_type": f"{icmp}.type", "icmp_code": f"{icmp}.code",
        "nd_target": "nd.target", "nd_sll": "nd.sll", "nd_tll": "nd.tll",
    }  # fmt: skip
    if dl_type == ETH_ARP and name in ("nw_src", "nw_dst"):
        return None
    return fields.get(name)


def _ovn_trace(southbound: str, datapath: str, expression: str) -> str:
    if shutil.which("ovn-trace") is None:
        raise OvnTraceError("ovn-trace is not installed (Debian ovn-common)")
    argv = ["ovn-trace", f"--db={southbound}", "--no-friendly-names", datapath, expression]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        raise OvnTraceError(f"ovn-trace did not answer in 20 s ({southbound})") from None
    if done.returncode != 0:
        raise OvnTraceError((done.stderr.strip().splitlines() or ["ovn-trace failed"])[-1])
    return done.stdout


def _ingress(output: str) -> tuple[tuple[str, ...], str | None]:
    """The ingress pipeline's stages, and the stage that dropped the packet (None when it went on)."""
    stages: list[str] = []
    stage: str | None = None
    inside = False
    for line in output.splitlines():
        if line.startswith("ingress("):
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith((" ", "-")):
            break  # the next section: egress, multicast; the packet left the ingress pipeline
        found = _STAGE.match(line)
        if found:
            stages.append(line.strip())
            stage = found.group(1)
        elif line.strip() == "drop;" and stage is not None:
            return tuple(stages), stage
    return tuple(stages), None
