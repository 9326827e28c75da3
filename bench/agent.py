"""Data-plane benchmark on a real Open vSwitch (userspace datapath, private sandbox).

    python bench/agent.py [--ports 10000] [--pairs 3] [--updates 300] [--audited 10]

1. Flows per port (one fixed IP and one pair), against OVN's 22 and the Neutron OVS firewall's 46.
2. Full sync: the agent programs N ports x P pairs onto an empty br-int (compile, one replace-flows
   bundle), against raw `ovs-ofctl --bundle add-flows` of the same flows (target: within 1.5x).
3. Convergence with N ports on the bridge: a pair update through the service layer (what an API
   request does) until ovs-vswitchd acknowledged the bundle carrying the new flows (p50 < 10 ms,
   p99 < 50 ms), for updates that come alone and for updates right behind the previous one,
   from 2 s after the agent's start-up sync.
--audited P makes P% of the ports without port security and without pairs: they get audit flows (the
strict checks, counting only), so convergence is measured with audit flows on the bridge; 0 for none.
Ports are plugged as peerless `type=patch` interfaces: the bridge holds N real OpenFlow ports without
N veths, and without N receive queues for the userspace datapath to poll. Prints a table and writes bench/results/agent.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import ovs  # noqa: E402

from portsec.agent.agent import Agent, AgentConfig, Applied  # noqa: E402
from portsec.domain.model import Context  # noqa: E402
from portsec.domain.quotas import UNLIMITED_DEFAULTS  # noqa: E402
from portsec.guards import guard_of  # noqa: E402
from portsec.openflow.compiler import compile_port_flows  # noqa: E402
from portsec.service import networks, ports, subnets  # noqa: E402
from portsec.service.common import Limits  # noqa: E402
from portsec.store.database import Database  # noqa: E402

OVN_FLOWS, NEUTRON_OVS_FW_FLOWS = 22, 46
CTX = Context.admin()
UNLIMITED = Limits(quotas=UNLIMITED_DEFAULTS)  # 10,000 ports in one project


def _pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] if len(samples) > 1 else samples[0]


def flows_per_port() -> int:
    with tempfile.TemporaryDirectory() as d:
        db = Database(f"sqlite:///{d}/p.db")
        db.migrate()
        with db.transaction() as tx:
            net = networks.create(tx, CTX, {"name": "n"})
            subnets.create(tx, CTX, {"network_id": net.id, "cidr": "192.168.1.0/24", "ip_version": 4})
            port = ports.create(tx, CTX, {"network_id": net.id, "mac_address": "fa:16:3e:3e:e3:14",
                                          "fixed_ips": [{"ip_address": "192.168.1.138"}],
                                          "allowed_address_pairs": [{"ip_address": "192.168.1.10"}]}, UNLIMITED)  # fmt: skip
        db.dispose()
    return len(compile_port_flows(guard_of(port), 5))


def make_ports(db: Database, n: int, n_pairs: int, audited: int = 0) -> list[str]:
    with db.transaction() as tx:
        net = networks.create(tx, CTX, {"name": "bench"})
        subnets.create(tx, CTX, {"network_id": net.id, "cidr": "10.0.0.0/16", "ip_version": 4})
    made: list[str] = []
    for start in range(0, n, 500):

        def body(i: int) -> dict[str, Any]:
            if i % 100 < audited:  # port security off: audit flows
                return {"network_id": net.id, "name": f"p{i}", "port_security_enabled": False}
            return {"network_id": net.id, "name": f"p{i}",
                    "allowed_address_pairs": [{"ip_address": f"172.{16 + j}.{i // 256 % 256}.{i % 256}"}
                                              for j in range(n_pairs)]}  # fmt: skip

        def batch(tx: Any, start: int = start) -> list[str]:
            return [ports.create(tx, CTX, body(i), UNLIMITED).id for i in range(start, min(n, start + 500))]

        made += db.run(batch)
    return made


def plug(sw: ovs.Switch, port_ids: list[str]) -> None:
    """Interfaces in OVSDB transactions of 300 (ovs-vsctl slows down with each port it adds)."""
    for start in range(0, len(port_ids), 300):
        ops: list[Any] = []
        for i, port_id in enumerate(port_ids[start : start + 300], start):
            row = {"name": f"d{i}", "type": "patch", "options": ["map", [["peer", f"none{i}"]]],
                   "external_ids": ["map", [["iface-id", port_id]]]}  # fmt: skip
            ops.append({"op": "insert", "table": "Interface", "uuid-name": f"i{i}", "row": row})
            ops.append({"op": "insert", "table": "Port", "uuid-name": f"p{i}",
                        "row": {"name": f"d{i}", "interfaces": ["named-uuid", f"i{i}"]}})  # fmt: skip
        new = ["set", [["named-uuid", f"p{i}"] for i in range(start, min(len(port_ids), start + 300))]]
        ops.append({"op": "mutate", "table": "Bridge", "where": [["name", "==", sw.bridge]],
                    "mutations": [["ports", "insert", new]]})  # fmt: skip
        ovs.run("ovsdb-client", "transact", sw.db, json.dumps(["Open_vSwitch", *ops]), env=sw.env)


def run(n_ports: int, n_pairs: int, n_updates: int, audited: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = {"ports": n_ports, "pairs_per_port": n_pairs, "audited_percent": audited}
    with tempfile.TemporaryDirectory() as d, ovs.switch() as sw:
        db = Database(f"sqlite:///{d}/portsec.db")
        db.migrate()
        t0 = time.perf_counter()
        port_ids = make_ports(db, n_ports, n_pairs, audited)
        enforced = [p for i, p in enumerate(port_ids) if i % 100 >= audited]  # the ones pairs can be set on
        plug(sw, port_ids)
        print(f"  {n_ports} ports made and plugged in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        config = AgentConfig(sw.bridge, sw.db, str(sw.rundir), host="bench")
        agent = Agent(db, config)
        agent.start()
        ovs.run("ovs-vsctl", f"--db={sw.db}", "wait-until", "Interface", f"d{n_ports - 1}", "ofport>0")
        deadline = time.monotonic() + 60
        while len(agent.monitor.interfaces()) < n_ports and time.monotonic() < deadline:
            time.sleep(0.1)

        # Raw ovs-ofctl with the very same flows: the floor for a full sync.
        agent.sync()
        flows_text = [f.text() for f in agent.table.all_flows()]
        result["flows_total"] = len(flows_text)
        raw = []
        for _ in range(3):
            sw.ofctl("del-flows", sw.bridge)
            t0 = time.perf_counter()
            sw.ofctl("--bundle", "add-flows", sw.bridge, "-", input="\n".join(flows_text) + "\n")
            raw.append(time.perf_counter() - t0)
        synced = []
        for _ in range(3):
            sw.ofctl("del-flows", sw.bridge)
            t0 = time.perf_counter()
            agent.sync()
            synced.append(time.perf_counter() - t0)
        result["raw_bundle_s"] = min(raw)
        result["full_sync_s"] = min(synced)
        result["full_sync_vs_raw"] = result["full_sync_s"] / result["raw_bundle_s"]
        agent.stop()

        # Convergence: the agent runs as in production; each update waits for its bundle.
        applied: queue.Queue[Applied] = queue.Queue()
        agent = Agent(db, config)
        agent.listeners.append(applied.put)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        applied.get(timeout=120)  # its start-up sync
        # ovs-vswitchd goes on digesting 240,000 new flows for a moment after it acknowledged them (a bundle
        # right then took 300 ms): convergence is measured in the steady state that follows.
        time.sleep(2.0)
        rng = random.Random(7)
        paced: list[float] = []
        back_to_back: list[float] = []
        for k in range(n_updates):
            port_id = rng.choice(enforced)
            pairs = [{"ip_address": f"198.{18 + j}.{k // 256 % 256}.{k % 256}"} for j in range(n_pairs)]
            # Half the updates come alone (an API request every 100 ms); half right after the last
            # convergence, when ovs-vswitchd is still re-deriving its per-port state from the last change.
            alone = k % 2 == 0
            if alone:
                time.sleep(0.1)
            t0 = time.time()
            db.run(lambda tx, p=port_id, body={"allowed_address_pairs": pairs}: ports.update(tx, CTX, p, body))
            while True:
                event = applied.get(timeout=10)
                if port_id in event.ports:
                    (paced if alone else back_to_back).append(event.at - t0)
                    break
        stop.set()
        thread.join(timeout=10)
        check = sw.ofctl("dump-flows", sw.bridge, "table=25")
        assert f"nw_src=198.{18 + n_pairs - 1}.{(n_updates - 1) // 256 % 256}.{(n_updates - 1) % 256}" in check
        result["updates"] = n_updates
        result["converge_p50_ms"] = _pct(paced, 50) * 1000
        result["converge_p99_ms"] = _pct(paced, 99) * 1000
        result["back_to_back_p50_ms"] = _pct(back_to_back, 50) * 1000
        result["back_to_back_p99_ms"] = _pct(back_to_back, 99) * 1000
        db.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=10000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--audited", type=int, default=10, help="percent of ports without port security")
    args = parser.parse_args()
    per_port = flows_per_port()
    r = run(args.ports, args.pairs, args.updates, args.audited)
    r["flows_per_port_1ip_1pair"] = per_port
    ovs_version = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True).stdout.split()[-1]
    r["machine"] = f"{platform.machine()}, {platform.python_version()}, Open vSwitch {ovs_version} (userspace)"
    print(f"| flows per port (1 IP, 1 pair) | full sync {r['ports']} ports x {r['pairs_per_port']} pairs "
          f"({r['flows_total']} flows, {r['audited_percent']}% audited) | raw ovs-ofctl --bundle | sync / raw | convergence p50 / p99 "
          "| back-to-back p50 / p99 |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print(f"| {per_port} (OVN {OVN_FLOWS}, Neutron OVS firewall {NEUTRON_OVS_FW_FLOWS}) | {r['full_sync_s']:.2f} s "
          f"| {r['raw_bundle_s']:.2f} s | {r['full_sync_vs_raw']:.2f}x "
          f"| {r['converge_p50_ms']:.1f} / {r['converge_p99_ms']:.1f} ms "
          f"| {r['back_to_back_p50_ms']:.1f} / {r['back_to_back_p99_ms']:.1f} ms |")  # fmt: skip
    out = ROOT / "bench" / "results" / "agent.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
