"""Switch-model benchmark: packet verdicts per second on a bridge holding many ports' flows.

    python bench/trace.py [--ports 10000] [--pairs 3] [--packets 200000]

Every port has one fixed IP and ``--pairs`` allowed address pairs; the model
holds their compiled flows plus the bridge's. Packets are random (any port,
IPv4 / ARP / IPv6 / NA / DHCP / other ethertypes, bound or spoofed), built
before the clock starts, as a traffic generator would; the verdict loop counts
packets on every flow they take, as the switch does. On a shared
machine the CPU-time rate is the fairer figure; both are printed. Also timed: loading the
flows, parsing microflows, and `trace` end to end (fill, compile, evaluate, words).
Prints a table and writes bench/results/trace.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from portsec.guards import guard_from_view  # noqa: E402
from portsec.openflow.compiler import compile_port_flows  # noqa: E402
from portsec.openflow.model import Packet, SwitchModel, parse_packet  # noqa: E402
from portsec.openflow.pipeline import bridge_flows  # noqa: E402
from portsec.openflow.trace import trace  # noqa: E402


def _port(i: int, n_pairs: int) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=(i + 1) << 80 | random.getrandbits(80))),
        "network_id": "bench",
        "mac_address": f"fa:16:3e:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
        "port_security_enabled": True,
        "fixed_ips": [{"ip_address": f"10.{i >> 16 & 0xFF}.{i >> 8 & 0xFF}.{i & 0xFF}"}],
        "allowed_address_pairs": [
            {"mac_address": f"fa:16:3e:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
             "ip_address": f"172.{16 + j}.{i >> 8 & 0xFF}.{i & 0xFF}"}
            for j in range(n_pairs)
        ],
    }  # fmt: skip


def _microflow(port: dict[str, Any], ofport: int) -> str:
    mac, ip = port["mac_address"], port["fixed_ips"][0]["ip_address"]
    pair = random.choice(port["allowed_address_pairs"])["ip_address"] if port["allowed_address_pairs"] else ip
    spoof = f"192.0.2.{random.randrange(1, 255)}"
    src = f"in_port={ofport},dl_src={mac}"
    return random.choice([
        f"ip,{src},nw_src={ip},nw_dst=10.0.0.1",
        f"tcp,{src},nw_src={pair},nw_dst=10.0.0.1,tp_src=40000,tp_dst=443",
        f"udp,{src},nw_src={spoof},nw_dst=10.0.0.1,tp_src=5353,tp_dst=53",
        f"arp,{src},arp_op=1,arp_spa={ip},arp_tpa=10.0.0.1,arp_sha={mac}",
        f"arp,{src},arp_op=2,arp_spa={spoof},arp_tpa=10.0.0.1,arp_sha={mac}",
        f"icmp6,{src},ipv6_src=fe80::1,ipv6_dst=ff02::1,icmp_type=136,nd_target=fe80::1",
        f"udp,{src},nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67",
        f"udp,{src},nw_src={ip},nw_dst=255.255.255.255,tp_src=67,tp_dst=68",
        f"ip,in_port={ofport},dl_src=fa:16:3e:ff:ff:ff,nw_src={ip}",
        f"{src},dl_type=0x88cc",
    ])  # fmt: skip


def run(n_ports: int, n_pairs: int, n_packets: int) -> dict[str, Any]:
    random.seed(1)
    views = [_port(i, n_pairs) for i in range(n_ports)]
    t0 = time.perf_counter()
    flows = [f for ofport, view in enumerate(views, start=1) for f in compile_port_flows(guard_from_view(view), ofport)]
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = SwitchModel([*flows, *bridge_flows()])
    load_s = time.perf_counter() - t0

    texts = [_microflow(views[k], k + 1) for k in (random.randrange(n_ports) for _ in range(n_packets))]
    t0 = time.perf_counter()
    packets: list[Packet] = [parse_packet(t) for t in texts]
    parse_s = time.perf_counter() - t0

    evaluate = model.evaluate
    t0, c0 = time.perf_counter(), time.process_time()
    forwarded = sum(evaluate(p).forwarded for p in packets)
    verdict_s, verdict_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    sample = [random.randrange(n_ports) for _ in range(2000)]
    t0 = time.perf_counter()
    for k in sample:
        trace(guard_from_view(views[k]), "arp,arp_spa=192.0.2.1", k + 1, port=views[k])
    trace_s = time.perf_counter() - t0
    return {
        "ports": n_ports,
        "pairs_per_port": n_pairs,
        "flows": len(model),
        "flows_per_port": (len(model) - len(bridge_flows())) / n_ports,
        "compile_s": compile_s,
        "load_s": load_s,
        "packets": n_packets,
        "forwarded_share": forwarded / n_packets,
        "verdicts_per_s": n_packets / verdict_s,
        "verdicts_per_cpu_s": n_packets / verdict_cpu_s,
        "parse_and_verdict_per_s": n_packets / (parse_s + verdict_s),
        "trace_end_to_end_per_s": len(sample) / trace_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "trace.json"))
    args = parser.parse_args()
    r = run(args.ports, args.pairs, args.packets)

    print(f"switch model: {r['ports']} ports x {r['pairs_per_port']} pairs, {r['flows']} flows "
          f"({r['flows_per_port']:.0f} per port), {r['packets']} random packets ({r['forwarded_share']:.0%} forwarded)")  # fmt: skip
    rows = [
        ("compile all ports (s)", f"{r['compile_s']:.2f}"),
        ("load flows into the model (s)", f"{r['load_s']:.2f}"),
        ("verdicts per second, wall (target >= 100000)", f"{r['verdicts_per_s']:,.0f}"),
        ("verdicts per CPU second (shared machine)", f"{r['verdicts_per_cpu_s']:,.0f}"),
        ("parse microflow + verdict per second", f"{r['parse_and_verdict_per_s']:,.0f}"),
        ("trace end to end per second (one port)", f"{r['trace_end_to_end_per_s']:,.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:>12}")
    Path(args.output).write_text(
        json.dumps({"machine": platform.machine(), "python": platform.python_version(), "results": r}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
