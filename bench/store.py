"""Store benchmark: ports with allowed address pairs created through the service layer.

    python bench/store.py [--ports 10000] [--pairs 3] [--backends sqlite,postgresql]

Each create is one transaction, as one API request would be: validation, MAC
and IP allocation, the rows, and the change-log entry. PostgreSQL is a private
server started for the run (Unix socket only), unless --postgres-url is given.
Prints a table and writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import postgres  # noqa: E402

from portsec.domain.model import Context  # noqa: E402
from portsec.domain.quotas import UNLIMITED_DEFAULTS  # noqa: E402
from portsec.service import networks, ports, subnets  # noqa: E402
from portsec.service.common import Limits  # noqa: E402
from portsec.store.database import Database  # noqa: E402


def _pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] if len(samples) > 1 else samples[0]


def run(url: str, n_ports: int, n_pairs: int) -> dict[str, Any]:
    db = Database(url)
    db.migrate()
    ctx = Context.admin()
    with db.transaction() as tx:
        net = networks.create(tx, ctx, {"name": "bench"})
        subnets.create(tx, ctx, {"network_id": net.id, "cidr": "10.0.0.0/16", "ip_version": 4})
    latencies = []
    started = time.perf_counter()
    made = []
    for i in range(n_ports):
        body = {
            "network_id": net.id,
            "name": f"p{i}",
            "allowed_address_pairs": [
                {"ip_address": f"172.{16 + j}.{i // 256 % 256}.{i % 256}"} for j in range(n_pairs)
            ],
        }
        t0 = time.perf_counter()
        with db.transaction() as tx:
            made.append(ports.create(tx, ctx, body, Limits(quotas=UNLIMITED_DEFAULTS)).id)
        latencies.append(time.perf_counter() - t0)
    create_s = time.perf_counter() - started

    updates = []
    for i, port_id in enumerate(made[:1000]):
        t0 = time.perf_counter()
        with db.transaction() as tx:
            ports.update(tx, ctx, port_id, {"allowed_address_pairs": [{"ip_address": f"192.168.{i // 256}.{i % 256}"}]})
        updates.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with db.transaction(write=False) as tx:
        listed = ports.list_(tx, ctx)
    list_s = time.perf_counter() - t0
    updated = set(made[:1000])
    assert len(listed) == n_ports
    assert all(len(p.allowed_address_pairs) == (1 if p.id in updated else n_pairs) for p in listed)
    db.dispose()
    return {
        "ports": n_ports,
        "pairs_per_port": n_pairs,
        "create_ports_per_s": n_ports / create_s,
        "create_p50_ms": _pct(latencies, 50) * 1000,
        "create_p99_ms": _pct(latencies, 99) * 1000,
        "pair_update_per_s": len(updates) / sum(updates),
        "pair_update_p99_ms": _pct(updates, 99) * 1000,
        "list_all_s": list_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", help="use this PostgreSQL database instead of starting one")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "store.json"))
    args = parser.parse_args()

    results = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{tmp}/bench.db"
            else:
                admin = args.postgres_url or stack.enter_context(postgres.server())
                url = postgres.fresh_database(admin, "portsec_bench") if not args.postgres_url else admin
            results[backend] = run(url, args.ports, args.pairs)

    print(f"{args.ports} ports x {args.pairs} pairs through the service layer, one transaction per request")
    print(f"{'backend':<12}{'create/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'update/s':>10}{'upd p99':>9}{'list all s':>12}")
    for backend, r in results.items():
        print(
            f"{backend:<12}{r['create_ports_per_s']:>10.0f}{r['create_p50_ms']:>9.2f}{r['create_p99_ms']:>9.2f}"
            f"{r['pair_update_per_s']:>10.0f}{r['pair_update_p99_ms']:>9.2f}{r['list_all_s']:>12.2f}"
        )
    Path(args.output).write_text(
        json.dumps({"machine": platform.machine(), "python": platform.python_version(), "results": results}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
