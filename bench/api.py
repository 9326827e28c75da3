"""API benchmark: port create, pair update and list-1000 against a Neutron v2.0 API server.

    python bench/api.py                      # starts portsec serve: SQLite and PostgreSQL, 1 and 4 workers
    python bench/api.py --url http://HOST:9696 [--header X-Auth-Token=T]   # any Neutron-API server

Throughput: --ports creates, then as many pair updates, from --clients threads
(default 8) with keep-alive connections; list: pages of 1,000 ports. Latency
alone: 200 creates and updates and 10 lists from one client. PostgreSQL is a
private server started for the run (Unix socket only). Prints the README's
table and writes bench/results/api.json. Target (DESIGN.md §6): at least 100x
the 3.6 creates/s of the real Neutron server, p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import postgres  # noqa: E402
from tests.server import serve  # noqa: E402

NEUTRON_CREATES_PER_S = 3.6
SINGLE = 200  # requests of each kind from one client, for unloaded latency


def _timed(
    calls: list[Callable[[httpx.Client], httpx.Response]], url: str, headers: dict[str, str], clients: int
) -> dict[str, float]:
    chunks = [calls[i::clients] for i in range(clients)]

    def worker(chunk: list[Callable[[httpx.Client], httpx.Response]]) -> list[float]:
        spent = []
        with httpx.Client(base_url=url + "/v2.0", headers=headers, timeout=60) as http:
            for call in chunk:
                t0 = time.perf_counter()
                response = call(http)
                spent.append(time.perf_counter() - t0)
                if response.status_code >= 300:
                    raise RuntimeError(f"{response.status_code}: {response.text}")
        return spent

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for chunk in pool.map(worker, chunks) for t in chunk]
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"per_s": len(latencies) / elapsed, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def measure(url: str, headers: dict[str, str], ports: int, clients: int) -> dict[str, Any]:
    with httpx.Client(base_url=url + "/v2.0", headers=headers, timeout=60) as http:
        net = http.post("/networks", json={"network": {"name": "bench"}}).json()["network"]
        http.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/16", "ip_version": 4}})
    made: list[str] = []

    def create(i: int) -> Callable[[httpx.Client], httpx.Response]:
        def call(http: httpx.Client) -> httpx.Response:
            body = {
                "network_id": net["id"],
                "name": f"p{i}",
                "allowed_address_pairs": [{"ip_address": f"172.16.{i // 256}.{i % 256}"}],
            }
            response = http.post("/ports", json={"port": body})
            if response.status_code == 201:
                made.append(response.json()["port"]["id"])
            return response

        return call

    def update(i: int) -> Callable[[httpx.Client], httpx.Response]:
        pairs = [{"ip_address": f"192.168.{i // 256}.{i % 256}"}, {"ip_address": "10.1.0.0/24"}]
        return lambda http: http.put(f"/ports/{made[i]}", json={"port": {"allowed_address_pairs": pairs}})

    listing = [lambda http: http.get("/ports", params={"limit": 1000, "network_id": net["id"]}) for _ in range(20)]
    # Loaded: throughput with `clients` at once (latency then includes waiting for the others).
    results = {"create": _timed([create(i) for i in range(ports)], url, headers, clients)}
    results["pair_update"] = _timed([update(i) for i in range(ports)], url, headers, clients)
    results["list_1000"] = _timed(listing, url, headers, min(clients, 4))
    # One client: the latency of a request on its own.
    alone = range(ports, ports + SINGLE)
    results["create_1"] = _timed([create(i) for i in alone], url, headers, 1)
    results["pair_update_1"] = _timed([update(i) for i in alone], url, headers, 1)
    results["list_1000_1"] = _timed(listing[:10], url, headers, 1)
    return results


def table(results: dict[str, Any], clients: int) -> list[str]:
    """The README's table: one row per server and operation."""
    lines = [
        f"| server | operation | per second, {clients} clients | p50 | p99 | p50, 1 client | p99, 1 client |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"create": "port create", "pair_update": "pair update", "list_1000": "list 1,000 ports"}
    for server, r in results.items():
        for key, label in names.items():
            m, one = r[key], r[f"{key}_1"]
            lines.append(
                f"| {server} | {label} | {m['per_s']:.0f} | {m['p50_ms']:.1f} ms | {m['p99_ms']:.1f} ms "
                f"| {one['p50_ms']:.1f} ms | {one['p99_ms']:.1f} ms |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="measure this server instead of starting portsec serve")
    parser.add_argument("--header", action="append", default=[], help="KEY=VALUE sent with every request")
    parser.add_argument("--ports", type=int, default=2000, help="ports created (and updated) per server")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,4", help="worker counts of portsec serve")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "api.json"))
    args = parser.parse_args()
    headers = dict(h.split("=", 1) for h in args.header)
    if args.ports < 1000:
        parser.error("--ports must be at least 1000 (the list measures pages of 1,000)")

    results: dict[str, Any] = {}
    if args.url:
        results[args.url] = measure(args.url, headers, args.ports, args.clients)
    else:
        backends = args.backends.split(",")
        with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
            admin = stack.enter_context(postgres.server()) if "postgresql" in backends else ""
            for backend in backends:
                for workers in map(int, args.workers.split(",")):
                    name = f"{backend}-{workers}"
                    url = (
                        f"sqlite:///{tmp}/{name}.db"
                        if backend == "sqlite"
                        else postgres.fresh_database(admin, f"bench{workers}")
                    )
                    label = (
                        f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'}, {workers} worker{'s' * (workers > 1)}"
                    )
                    # 2,000 ports in one project: past Neutron's default port quota of 500.
                    with serve(url, workers=workers, args=["--quota-port", "-1"]) as endpoint:
                        results[label] = measure(endpoint, headers, args.ports, args.clients)
                        print(f"done: {label}", file=sys.stderr)

    print(
        f"{args.ports} port creates (1 pair each) and pair updates (2 pairs) from {args.clients} clients, "
        f"then {SINGLE} of each from 1 client; list: 20 pages of 1,000 from {min(args.clients, 4)} clients, "
        f"10 from 1. Latency as the client sees it. Neutron: {NEUTRON_CREATES_PER_S} creates/s."
    )
    print("\n".join(table(results, args.clients)))
    Path(args.output).write_text(
        json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "ports": args.ports, "clients": args.clients, "results": results}, indent=2) + "\n"
    )  # fmt: skip


if __name__ == "__main__":
    main()
