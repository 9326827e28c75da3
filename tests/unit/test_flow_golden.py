"""The compiled flows, their native encoding and parsed packets, against a golden file captured before the
OpenFlow vocabulary (field registry, structured actions) replaced the strings: the agent diffs against
installed flows by their text, so a refactoring must not change one byte of it. Regenerated once since, on
purpose: VIP announcements copied to the agent, and audit flows for ports without port security.

Regenerate (only for an intended change of the flows): ``PORTSEC_REGOLD=1 pytest tests/unit/test_flow_golden.py``.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from pathlib import Path
from typing import Any

from portsec.agent.ofconn import ADD, DELETE_STRICT, encode_flow_mod
from portsec.guards import guard_from_view
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import parse_flow
from portsec.openflow.packet import make_packet, parse_packet
from portsec.openflow.pipeline import bridge_flows

GOLDEN = Path(__file__).with_name("flows_golden.txt")

V4 = ["10.0.0.1", "10.0.0.2", "192.168.1.138", "172.16.5.4"]
V6 = ["2001:db8::1", "2001:db8::2", "fd00::abcd"]
V4_PAIRS = ["10.0.0.0/28", "10.0.0.16/30", "0.0.0.0/0", "10.0.0.5/29", "192.168.1.10", "10.1.0.0/16"]
V6_PAIRS = ["2001:db8::/124", "2001:db8::10/126", "::/0", "2001:db8::99", "fe80::1"]
MACS = ["fa:16:3e:3e:e3:14", "FA:16:3E:7B:E9:03", "02:00:00:00:00:01", "00:00:5e:00:01:01", "01:00:5e:00:00:01"]
OWNERS = ["compute:nova"] * 6 + ["network:dhcp", "network:router_interface", ""]

MICROFLOWS = [
    "arp,in_port=5,dl_src=fa:16:3e:3e:e3:14,arp_spa=192.168.1.10,arp_sha=fa:16:3e:3e:e3:14,arp_op=1",
    "ip,in_port=7,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.1,nw_dst=10.0.0.2",
    "udp,in_port=1,nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67",
    "udp6,in_port=1,ipv6_src=fe80::1,tp_src=547,tp_dst=546",
    "icmp6,in_port=3,ipv6_src=::,ipv6_dst=ff02::1:ff00:1,icmp_type=135",
    "icmp6,in_port=3,icmp_type=136,nd_target=2001:db8::1,nd_tll=fa:16:3e:3e:e3:14",
    "icmp6,in_port=3,icmpv6_type=134",
    "in_port=9,dl_vlan=10",
    "in_port=9,dl_type=0x88cc,eth_src=02:00:00:00:00:01",
    "tcp,in_port=2,nw_src=10.0.0.9,tp_src=22,tp_dst=80",
    "icmp,in_port=2,icmp_type=8,icmp_code=0",
    "arp,nw_src=10.0.0.1,nw_dst=10.0.0.2",
]


def varied_ports(n: int = 80, seed: int = 11) -> list[tuple[dict[str, Any], int]]:
    """Ports of every kind the compiler treats differently, each with an ofport."""
    rng = random.Random(seed)
    found = []
    for i in range(n):
        mac = rng.choice(MACS[:4]) if i % 5 else f"fa:16:3e:{i:02x}:{rng.randrange(256):02x}:0{i % 10}"
        fixed = rng.sample(V4, rng.randrange(3)) + rng.sample(V6, rng.randrange(3))
        pairs = []
        for _ in range(rng.randrange(5)):
            pair_mac = rng.choice([mac, mac, *MACS])
            pairs.append({"mac_address": pair_mac, "ip_address": rng.choice(V4_PAIRS + V6_PAIRS)})
        pairs = list({(p["mac_address"].lower(), p["ip_address"]): p for p in pairs}.values())
        security = i % 7 != 3
        port = {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "network_id": "net",
            "mac_address": mac,
            "port_security_enabled": security,
            "device_owner": rng.choice(OWNERS),
            "admin_state_up": i % 11 != 5,
            "fixed_ips": [{"ip_address": ip} for ip in fixed],
            "allowed_address_pairs": pairs if security else [],
        }
        found.append((port, rng.choice([1, 2, 5, 17, 4095, 65279])))
    return found


def current() -> str:
    lines = ["# bridge"]
    flows = list(bridge_flows())
    lines += [f.text() for f in bridge_flows()]
    for port, ofport in varied_ports():
        compiled = compile_port_flows(guard_from_view(port), ofport)
        flows += compiled
        lines.append(f"# port {port['id']} ofport {ofport}")
        lines += [f.text() for f in compiled]
    encoded = hashlib.sha256()
    for xid, f in enumerate(flows):
        encoded.update(encode_flow_mod(f, ADD, xid) + encode_flow_mod(f, DELETE_STRICT, xid))
    lines.append(f"# native encoding (flow mod ADD and DELETE_STRICT of each flow above) sha256 {encoded.hexdigest()}")
    lines.append("# packets: text, packed bits")
    for spec in MICROFLOWS:
        packet = parse_packet(spec)
        lines.append(f"{packet.text()} {packet.bits:#x}")
    filled = make_packet("arp", {"in_port": "4"}).with_defaults(arp_spa="10.0.0.1", dl_src="fa:16:3e:00:00:02")
    lines.append(f"{filled.text()} {filled.bits:#x}")
    return "\n".join(lines) + "\n"


def test_compiled_flows_encoding_and_packets_are_byte_identical_to_the_golden_file():
    text = current()
    if os.environ.get("PORTSEC_REGOLD"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_the_golden_flows_read_back_to_themselves():
    for line in GOLDEN.read_text().splitlines():
        if line.startswith("table="):
            assert parse_flow(line).text() == line
