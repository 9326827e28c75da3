"""Several workers on one PostgreSQL: no lost update, no duplicate address, no 5xx."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import postgres
from tests.server import serve

CLIENTS = 8
UPDATES = 15


@pytest.mark.postgresql
def test_eight_clients_four_workers(postgres_url):
    url = postgres.fresh_database(postgres_url, "concurrency")
    with serve(url, workers=4) as endpoint, httpx.Client(base_url=endpoint + "/v2.0", timeout=30) as http:
        net = http.post("/networks", json={"network": {"name": "n"}}).json()["network"]
        http.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})

        def create(client: int) -> list[httpx.Response]:
            with httpx.Client(base_url=endpoint + "/v2.0", timeout=30) as own:
                return [
                    own.post("/ports", json={"port": {"network_id": net["id"], "name": f"c{client}-{i}"}})
                    for i in range(UPDATES)
                ]

        with ThreadPoolExecutor(CLIENTS) as pool:
            created = [r for batch in pool.map(create, range(CLIENTS)) for r in batch]
        assert {r.status_code for r in created} == {201}
        made = [r.json()["port"] for r in created]
        assert len({p["mac_address"] for p in made}) == len(made)
        assert len({p["fixed_ips"][0]["ip_address"] for p in made}) == len(made)

        targets = [p["id"] for p in made[:4]]

        def update(client: int) -> list[tuple[str, int, list[dict[str, str]]]]:
            acknowledged = []
            with httpx.Client(base_url=endpoint + "/v2.0", timeout=30) as own:
                for i in range(UPDATES):
                    port_id = targets[(client + i) % len(targets)]
                    pairs = [{"ip_address": f"172.16.{client}.{i}", "mac_address": "fa:16:3e:00:00:01"}]
                    response = own.put(f"/ports/{port_id}", json={"port": {"allowed_address_pairs": pairs}})
                    assert response.status_code == 200, response.text
                    port = response.json()["port"]
                    acknowledged.append((port_id, port["revision_number"], port["allowed_address_pairs"]))
            return acknowledged

        with ThreadPoolExecutor(CLIENTS) as pool:
            acks = [a for batch in pool.map(update, range(CLIENTS)) for a in batch]
        for port_id in targets:
            mine = sorted((rev, pairs) for pid, rev, pairs in acks if pid == port_id)
            revisions = [rev for rev, _ in mine]
            assert len(set(revisions)) == len(revisions)  # every update got its own revision
            final = http.get(f"/ports/{port_id}").json()["port"]
            assert final["revision_number"] == revisions[-1]
            assert final["allowed_address_pairs"] == mine[-1][1]  # the last acknowledged write is what is stored
