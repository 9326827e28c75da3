"""The OVN backend on a real OVN (tests/ovn.py's bed: NB, SB, ovn-northd, hypervisors with ovn-controller).

    python bench/ovn.py [--scales 1000,10000] [--samples 50] [--pairs 3] [--failovers 3]

At each scale (that many ports in the store and in NB):
1. API -> port up on its chassis: a port is created through the service layer (what an API
   request does) and its interface plugged right after the commit, as Nova plugs a VIF; the time
   from the commit until OVN reports the port up (Logical_Switch_Port.up, set once ovn-controller
   on the hypervisor installed its flows). p50 / p99 over --samples ports (target: p50 < 100 ms at
   1,000 ports; ovn-heater measured 1,149 ms average for Neutron ML2/OVN at 13,750 ports).
   The floor: the same port written by ovn-nbctl straight to NB (no portsec), plugged, until up.
2. The native agent on the same machine, in the same run: the same create and plug on a private
   Open vSwitch, until the agent's bundle carrying the port's flows is acknowledged.
3. NB transactions: pair updates of random ports, one commit each, as fast as the store takes them;
   updates per second until NB holds the last, and the NB transactions the backend used for them.
5. VIP failover across hypervisors (keepalived, SIGTERM of the master on hv1, backup on hv2, adverts
   every second): the longest gap in a client's replies from the VIP, pinging every 20 ms, with the
   pair on both ports against port security off on both (VRRP alone, on the same bed); median of
   --failovers runs each (target: no slower than VRRP alone).
4. Full resync: NB wiped, the backend restores N ports x --pairs pairs in one transaction; until
   NB acknowledged, and until ovn-northd has compiled it into SB (`ovn-nbctl --wait=sb sync`).
Interfaces are peerless `type=patch` ports (ovn-controller claims them like a VM's). Prints a table
and writes bench/results/ovn.json.
"""

from __future__ import annotations

import argparse
import itertools
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

from tests import ovn, ovs  # noqa: E402

from portsec.agent.agent import Agent, AgentConfig, Applied  # noqa: E402
from portsec.domain.model import Context  # noqa: E402
from portsec.domain.quotas import UNLIMITED_DEFAULTS  # noqa: E402
from portsec.ovn.backend import OvnBackend, OvnConfig  # noqa: E402
from portsec.ovn.intent import switch_name  # noqa: E402
from portsec.service import networks, ports, subnets  # noqa: E402
from portsec.service.common import Limits  # noqa: E402
from portsec.store.database import Database  # noqa: E402

CTX = Context.admin()
UNLIMITED = Limits(quotas=UNLIMITED_DEFAULTS)


def _pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] if len(samples) > 1 else samples[0]


def make_ports(db: Database, n: int, n_pairs: int) -> str:
    """``n`` ports with ``n_pairs`` pairs each on one network (its id returned)."""
    with db.transaction() as tx:
        net = networks.create(tx, CTX, {"name": "bench"})
        subnets.create(tx, CTX, {"network_id": net.id, "cidr": "10.0.0.0/16", "ip_version": 4})
    for start in range(0, n, 500):

        def batch(tx: Any, start: int = start) -> None:
            for i in range(start, min(n, start + 500)):
                pairs = [{"ip_address": f"172.{16 + j}.{i // 256 % 256}.{i % 256}"} for j in range(n_pairs)]
                ports.create(tx, CTX, {"network_id": net.id, "name": f"p{i}", "allowed_address_pairs": pairs},
                             UNLIMITED)  # fmt: skip

        db.run(batch)
    return net.id


def plug(vsctl: Any, name: str, port_id: str) -> None:
    vsctl("add-port", "br-int", name, "--", "set", "Interface", name, "type=patch", f"options:peer=none-{name}",
          f"external_ids:iface-id={port_id}")  # fmt: skip


def create_and_plug(db: Database, network_id: str, k: int, vsctl: Any) -> tuple[str, float]:
    """A port made through the service layer, then its interface plugged; its id and the commit's time."""
    port = db.run(lambda tx: ports.create(tx, CTX, {"network_id": network_id, "name": f"s{k}"}, UNLIMITED))
    committed = time.time()
    plug(vsctl, f"s{k}", port.id)
    return port.id, committed


def ovn_scale(n: int, samples: int, n_pairs: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d, ovn.bed(hypervisors=1) as bed:
        db = Database(f"sqlite:///{d}/portsec.db")
        db.migrate()
        network_id = make_ports(db, n, n_pairs)
        backend = OvnBackend(db, OvnConfig(nb=bed.central.nb, sb=bed.central.sb, sync_interval=3600))
        backend.start()
        nb = backend.nb
        assert nb is not None
        # Full resync: everything from an empty NB, then again after NB is wiped.
        t0 = time.perf_counter()
        backend.sync()
        first = time.perf_counter() - t0
        bed.central.nbctl("--wait=sb", "sync")
        backend.stop()
        bed.central.wipe_nb()
        backend = OvnBackend(db, OvnConfig(nb=bed.central.nb, sb=bed.central.sb, sync_interval=3600))
        t0 = time.perf_counter()
        backend.start()
        backend.sync("nb-lost")
        result["resync_s"] = time.perf_counter() - t0
        bed.central.nbctl("--wait=sb", "sync")
        result["resync_to_sb_s"] = time.perf_counter() - t0
        result["first_sync_s"] = first
        nb = backend.nb
        assert nb is not None

        stop = threading.Event()
        thread = threading.Thread(target=backend.run, args=(stop,), daemon=True)
        thread.start()
        hv = bed.hvs[0]
        up: list[float] = []
        for k in range(samples):
            time.sleep(0.05)  # API requests that come alone
            port_id, committed = create_and_plug(db, network_id, k, hv.vsctl)
            while not nb.ports_up([port_id]).get(port_id):
                time.sleep(0.0005)
            up.append(time.time() - committed)
        result["port_up_p50_ms"] = _pct(up, 50) * 1000
        result["port_up_p99_ms"] = _pct(up, 99) * 1000
        # The floor: the same port written straight to NB by ovn-nbctl (no portsec), plugged, until up.
        raw: list[float] = []
        for k in range(samples):
            time.sleep(0.05)
            t0 = time.time()
            mac, ip = f"fa:16:3e:ff:{k // 256:02x}:{k % 256:02x}", f"10.1.{k // 256}.{k % 256}"  # outside the subnet
            bed.central.nbctl("lsp-add", switch_name(network_id), f"raw{k}", "--", "lsp-set-addresses", f"raw{k}",
                              f"{mac} {ip}", "--", "lsp-set-port-security", f"raw{k}", f"{mac} {ip}")  # fmt: skip
            plug(hv.vsctl, f"r{k}", f"raw{k}")
            while not nb.ports_up([f"raw{k}"]).get(f"raw{k}"):
                time.sleep(0.0005)
            raw.append(time.time() - t0)
        result["raw_nbctl_up_p50_ms"] = _pct(raw, 50) * 1000
        result["raw_nbctl_up_p99_ms"] = _pct(raw, 99) * 1000

        # NB transactions: updates one commit each, as fast as they come.
        transactions_before = backend.transactions
        rng = random.Random(7)
        with db.transaction(write=False) as tx:
            ids = [p.id for p in ports.list_(tx, CTX)]
        updates = min(1000, n)
        t0 = time.perf_counter()
        for k in range(updates):
            body = {"allowed_address_pairs": [{"ip_address": f"198.18.{k // 256}.{k % 256}"}]}
            changed = rng.choice(ids)
            db.run(lambda tx, p=changed, body=body: ports.update(tx, CTX, p, body))
        last = f"198.18.{(updates - 1) // 256}.{(updates - 1) % 256}"
        while last not in bed.central.nbctl("get", "Logical_Switch_Port", changed, "port_security"):
            time.sleep(0.002)
        seconds = time.perf_counter() - t0
        result["updates"] = updates
        result["updates_per_s"] = updates / seconds
        result["nb_transactions"] = backend.transactions - transactions_before
        stop.set()
        thread.join(timeout=30)
        db.dispose()
    return result


def _last_seq(db: Database) -> int:
    from portsec.store import changes

    with db.transaction(write=False) as tx:
        return changes.last_seq(tx.conn)


def native_scale(n: int, samples: int, n_pairs: int) -> dict[str, Any]:
    """The same create-and-plug on the native agent: commit -> the bundle with the port's flows acknowledged."""
    with tempfile.TemporaryDirectory() as d, ovs.switch() as sw:
        db = Database(f"sqlite:///{d}/portsec.db")
        db.migrate()
        network_id = make_ports(db, n, n_pairs)
        applied: queue.Queue[Applied] = queue.Queue()
        agent = Agent(db, AgentConfig(sw.bridge, sw.db, str(sw.rundir), host="bench"))
        agent.listeners.append(applied.put)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        applied.get(timeout=120)
        up: list[float] = []
        for k in range(samples):
            time.sleep(0.05)
            port_id, committed = create_and_plug(db, network_id, k, sw.vsctl)
            while True:
                event = applied.get(timeout=20)
                if port_id in event.ports:
                    up.append(event.at - committed)
                    break
        stop.set()
        thread.join(timeout=10)
        db.dispose()
    return {"port_up_p50_ms": _pct(up, 50) * 1000, "port_up_p99_ms": _pct(up, 99) * 1000}


def failover_gap(c: Any, tmp: Path, protected: bool) -> float:
    """One failover on the cloud ``c``; the longest gap between the client's replies from the VIP, in seconds."""
    from tests.frames import M1, M2, MC
    from tests.keepalived import VIP, Keepalived, holds_vip

    net = c.network(f"f{time.monotonic_ns()}", ["192.168.1.0/24"])
    pair = [{"ip_address": VIP}]
    extra = {"allowed_address_pairs": pair} if protected else {"port_security_enabled": False}
    client = c.port(net, "client", MC, ["192.168.1.2"])
    server1 = c.port(net, "server1", M1, ["192.168.1.138"], **extra)
    server2 = c.port(net, "server2", M2, ["192.168.1.136"], **extra)
    for port in (client, server1, server2):
        c.converged(port)
    with c.stack:
        client_vm = c.vm(c.hv1, client, ["192.168.1.2/24"])
        vm1, vm2 = c.vm(c.hv1, server1, ["192.168.1.138/24"]), c.vm(c.hv2, server2, ["192.168.1.136/24"])
        work = tmp / f"k{time.monotonic_ns()}"
        work.mkdir()
        daemons = [Keepalived(vm1, work, "MASTER", 150), Keepalived(vm2, work, "BACKUP", 100)]
        try:
            deadline = time.monotonic() + 20
            while not holds_vip(vm1) and time.monotonic() < deadline:
                time.sleep(0.05)
            pinger = subprocess.Popen(["ip", "netns", "exec", client_vm.name, "ping", "-D", "-i", "0.02", "-W", "1",
                                       "-w", "8", VIP], stdout=subprocess.PIPE, text=True)  # fmt: skip
            time.sleep(2)
            daemons[0].stop()
            out, _ = pinger.communicate(timeout=30)
        finally:
            for d in daemons:
                d.stop()
    for port in (client, server1, server2):
        c.call("DELETE", f"/v2.0/ports/{port['id']}", expect=204)
    c.call("DELETE", f"/v2.0/networks/{net['id']}", expect=204)
    times = [
        float(line[1 : line.index("]")]) for line in out.splitlines() if line.startswith("[") and "bytes from" in line
    ]
    return max(b - a for a, b in itertools.pairwise(times))


def failovers(runs: int) -> dict[str, Any]:
    from tests.cloud import cloud

    gaps: dict[str, list[float]] = {"pairs": [], "vrrp_alone": []}
    with tempfile.TemporaryDirectory() as d, cloud(Path(d)) as c:
        for _ in range(runs):
            for protected, key in ((True, "pairs"), (False, "vrrp_alone")):
                gaps[key].append(failover_gap(c, Path(d), protected))
    return {f"{k}_median_s": statistics.median(v) for k, v in gaps.items()} | {"runs": runs, "gaps_s": gaps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1000,10000")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    version = subprocess.run(["ovn-northd", "--version"], capture_output=True, text=True).stdout.split()[1]
    results: dict[str, Any] = {"pairs_per_port": args.pairs, "samples": args.samples, "scales": {}}
    for n in (int(s) for s in args.scales.split(",")):
        print(f"  {n} ports ...", file=sys.stderr)
        results["scales"][n] = {"ovn": ovn_scale(n, args.samples, args.pairs),
                                "native": native_scale(n, args.samples, args.pairs)}  # fmt: skip
    results["failover"] = failovers(args.failovers)
    results["machine"] = f"{platform.machine()}, {platform.python_version()}, OVN {version}, 1 chassis (userspace OVS)"
    print(
        "| ports | OVN: API -> port up p50 / p99 | raw ovn-nbctl -> up p50 / p99 | native agent: p50 / p99 "
        f"| NB: updates/s (transactions) | full resync {args.pairs} pairs: NB / until SB |"
    )
    print("|---|---|---|---|---|---|")
    for n, r in results["scales"].items():
        o, nat = r["ovn"], r["native"]
        print(f"| {n:,} | {o['port_up_p50_ms']:.1f} / {o['port_up_p99_ms']:.1f} ms "
              f"| {o['raw_nbctl_up_p50_ms']:.1f} / {o['raw_nbctl_up_p99_ms']:.1f} ms "
              f"| {nat['port_up_p50_ms']:.1f} / {nat['port_up_p99_ms']:.1f} ms "
              f"| {o['updates_per_s']:.0f} ({o['nb_transactions']} for {o['updates']}) "
              f"| {o['resync_s']:.2f} s / {o['resync_to_sb_s']:.2f} s |")  # fmt: skip
    f = results["failover"]
    print(
        f"\n| VIP failover across hypervisors (SIGTERM, median of {f['runs']}) | with the pair on both ports "
        "| port security off (VRRP alone) |\n|---|---|---|"
    )
    print(f"| longest gap in replies | {f['pairs_median_s']:.3f} s | {f['vrrp_alone_median_s']:.3f} s |")
    out = ROOT / "bench" / "results" / "ovn.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
