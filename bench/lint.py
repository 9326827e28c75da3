"""Pair lint benchmark: `lint_pairs` on one network of many ports with a few pairs each.

    python bench/lint.py [--ports 10000] [--pairs 3] [--runs 3]

Every port has one fixed IP in 10.0.0.0/16 and ``--pairs`` pairs: a VIP shared
with its neighbour (ports 2k and 2k+1), its own host addresses in 10.1.0.0/16,
and, on a few ports in every hundred, a risky pair instead of the last one:
0.0.0.0/0, a /24 over other ports' fixed IPs, another port's fixed IP, another
port's MAC, host bits set, the port's own fixed IP, an address in no subnet.
One port in a hundred has port security off. The target (DESIGN.md §6) is
under a second for 10,000 ports x 3 pairs. Also timed: the same from the API's port views (what
`portsec pair lint` does once it has listed the ports).
Prints a table and writes bench/results/lint.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from portsec.cli.lint import port_from_view  # noqa: E402
from portsec.domain.model import AllowedPair, Context, FixedIp, Port, Subnet  # noqa: E402
from portsec.domain.pair_lint import lint_pairs  # noqa: E402
from portsec.service import views  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NETWORK = "bench-net"


def _mac(i: int) -> str:
    return f"fa:16:3e:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"


def _ip(second: int, i: int) -> str:
    return f"10.{second}.{i >> 8 & 0xFF}.{i & 0xFF}"


def _risky(i: int, n_ports: int) -> tuple[str, str] | None:
    """The pair (IP, MAC) that replaces port ``i``'s last one, if it is one of the risky few."""
    if i % 1000 == 0:
        return ("0.0.0.0/0", _mac(i))
    other = (i + 7) % n_ports
    return {
        10: (f"10.0.{i >> 8 & 0xFF}.0/24", _mac(i)),  # covers the fixed IPs of up to 256 ports
        20: (_ip(1, 57_344 + i // 100), _mac(other)),  # another port's MAC
        30: (f"10.1.250.{i // 100 % 64 * 4 + 1}/30", _mac(i)),  # host bits set
        40: (_ip(0, i), _mac(i)),  # its own fixed IP again
        50: (f"192.168.{i >> 8 & 0xFF}.{i & 0xFF}", _mac(i)),  # in no subnet
        60: (_ip(0, other), _mac(i)),  # another port's fixed IP
    }.get(i % 100)


def _port(i: int, n_ports: int, n_pairs: int) -> Port:
    secured = i % 100 != 99
    pairs = [(_ip(1, 20_000 + i // 2), _mac(i))] + [
        (_ip(1, 30_000 + j * n_ports + i), _mac(i)) for j in range(n_pairs - 1)
    ]
    risky = _risky(i, n_ports)
    if risky:
        pairs[-1] = risky
    return Port(
        id=f"00000000-0000-0000-0000-{i:012d}", network_id=NETWORK, project_id="admin", name=f"vm{i}",
        mac_address=_mac(i), admin_state_up=True, status="ACTIVE", device_id="", device_owner="compute:nova",
        port_security_enabled=secured, host_id="", vnic_type="normal", description="", revision_number=1,
        created_at=T0, updated_at=T0, fixed_ips=(FixedIp("s0", _ip(0, i)),),
        allowed_address_pairs=tuple(AllowedPair(m, ip) for ip, m in pairs[:n_pairs]) if secured else (),
    )  # fmt: skip


def _subnet(cidr: str) -> Subnet:
    return Subnet(
        id=f"s-{cidr}", network_id=NETWORK, project_id="admin", name="", ip_version=4, cidr=cidr, gateway_ip=None,
        allocation_pools=(), enable_dhcp=True, dns_nameservers=(), host_routes=(), ipv6_ra_mode=None,
        ipv6_address_mode=None, description="", revision_number=1, created_at=T0, updated_at=T0,
    )  # fmt: skip


def _timed(work: Any) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - t0, time.process_time() - c0, result


def run(n_ports: int, n_pairs: int, runs: int) -> dict[str, Any]:
    ports = [_port(i, n_ports, n_pairs) for i in range(n_ports)]
    subnets = [_subnet("10.0.0.0/16"), _subnet("10.1.0.0/16")]
    port_views = [views.port(p, Context.admin()) for p in ports]
    lint = [_timed(lambda: lint_pairs(ports, subnets)) for _ in range(runs)]
    from_views = [_timed(lambda: lint_pairs([port_from_view(v) for v in port_views], subnets)) for _ in range(runs)]
    findings = lint[0][2]
    assert findings == from_views[0][2]
    severities = Counter(f.severity.value for f in findings)
    return {
        "ports": n_ports,
        "pairs": sum(len(p.allowed_address_pairs) for p in ports),
        "findings": {s: severities.get(s, 0) for s in ("high", "medium", "low", "info")},
        "checks": dict(sorted(Counter(f.check for f in findings).items())),
        "runs": runs,
        "lint_s": statistics.median(t for t, _, _ in lint),
        "lint_cpu_s": statistics.median(c for _, c, _ in lint),
        "from_views_s": statistics.median(t for t, _, _ in from_views),
        "load_average_1m": os.getloadavg()[0],  # other work on the machine: wall time above CPU time
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "lint.json"))
    args = parser.parse_args()
    r = run(args.ports, args.pairs, args.runs)

    f = r["findings"]
    head = ("ports", "pairs", "high", "medium", "low", "info", "lint s (target < 1)", "lint CPU s", "from API views s")
    row = (r["ports"], r["pairs"], f["high"], f["medium"], f["low"], f["info"],
           f"{r['lint_s']:.3f}", f"{r['lint_cpu_s']:.3f}", f"{r['from_views_s']:.3f}")  # fmt: skip
    print(f"pair lint, one network, median of {r['runs']} runs (load average {r['load_average_1m']:.1f}); "
          f"findings by check: {r['checks']}")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    print("| " + " | ".join(str(v) for v in row) + " |")
    Path(args.output).write_text(
        json.dumps({"machine": platform.machine(), "python": platform.python_version(), "results": r}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
