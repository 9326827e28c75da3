"""Prometheus metrics: scraped from /metrics and read with prometheus-client's own text parser.

Counters are per process, and other tests of this process may have moved them:
each test compares a scrape after what it does with one before.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from scapy.layers.l2 import ARP, Ether

from portsec import metrics
from portsec.agent.flowtable import FlowTable
from portsec.agent.metrics import AgentMetrics, reason_cookie_match
from portsec.api.app import create_app
from portsec.client.embedded import EmbeddedClient
from portsec.domain.model import Context
from portsec.openflow.flows import Flow, cookie
from portsec.store.database import Database
from tests import ovs
from tests.dataplane import _SEND, Dataplane, wait_for
from tests.server import PORTSEC, free_port, serve

Labels = tuple[tuple[str, str], ...]


def scrape(text: str) -> dict[str, dict[Labels, float]]:
    """Every sample of the exposition: name -> sorted label pairs -> value."""
    found: dict[str, dict[Labels, float]] = collections.defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(samples: dict[str, dict[Labels, float]], name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


# -- the API ---------------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_and_status(sqlite_db: Database) -> None:
    client = TestClient(create_app(sqlite_db))
    before = scrape(client.get("/metrics").text)
    net = client.post("/v2.0/networks", json={"network": {"name": "n1"}}).json()["network"]
    for _ in range(3):
        assert client.get(f"/v2.0/networks/{net['id']}").status_code == 200
    assert client.get("/v2.0/networks/no-such-network").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = scrape(response.text)

    def grown(method: str, route: str, status: str) -> float:
        name = "portsec_api_requests_total"
        labels = {"method": method, "route": route, "status": status}
        return value(after, name, **labels) - value(before, name, **labels)

    assert grown("POST", "/v2.0/networks", "201") == 1
    assert grown("GET", "/v2.0/networks/{item_id}", "200") == 3
    assert grown("GET", "/v2.0/networks/{item_id}", "404") == 1
    assert grown("GET", "unmatched", "404") == 1
    # Never the raw path: one series per route, whatever IDs clients ask for.
    routes = {dict(labels)["route"] for labels in after["portsec_api_requests_total"]}
    assert not any(net["id"] in r or "no-such" in r for r in routes)
    count = "portsec_api_request_duration_seconds_count"
    assert (
        value(after, count, method="GET", route="/v2.0/networks/{item_id}")
        - value(before, count, method="GET", route="/v2.0/networks/{item_id}")
        == 4
    )
    assert value(after, "portsec_build_info", version=metrics._version()) == 1


def test_several_workers_report_the_whole_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multiprocess mode: any worker's /metrics counts the requests every worker answered; its files go at exit."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))  # where serve makes its metrics directory
    with serve(f"sqlite:///{tmp_path}/portsec.db", workers=2) as url:
        assert any(private_tmp.iterdir()), "serve made no metrics directory"
        with httpx.Client(base_url=url) as http:
            for _ in range(20):
                # A new connection each time, so that the requests spread over the workers.
                assert httpx.get(url + "/v2.0/networks").status_code == 200
            for _ in range(4):  # whichever worker answers, it reports all 20
                samples = scrape(http.get("/metrics", headers={"Connection": "close"}).text)
                got = value(samples, "portsec_api_requests_total", method="GET", route="/v2.0/networks", status="200")
                assert got == 20
                assert value(samples, "portsec_build_info", version=metrics._version()) == 1
    assert not any(private_tmp.iterdir()), "serve left its metrics directory behind"


# -- the agent's bookkeeping ------------------------------------------------------------------------


def test_flows_per_table_follow_every_commit_and_reset() -> None:
    def flows(port: str, tables: list[int], reason: str = "allow") -> list[Flow]:
        return [Flow(t, 10 + i, (("in_port", port[-1]),), "drop", cookie(port, reason)) for i, t in enumerate(tables)]

    a, b = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa1", "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbb2"
    c = "cccccccc-cccc-cccc-cccc-ccccccccccc1"  # its flows have a's keys: an ofport handed from a to c
    table = FlowTable()
    rounds: list[dict[str, list[Flow]]] = [
        {a: flows(a, [0, 24, 25])}, {b: flows(b, [0, 25, 25])}, {a: flows(a, [60])}, {c: flows(c, [60, 0])},
        {a: [], b: []},
    ]  # fmt: skip
    for desired in rounds:
        table.commit(desired)
        counted = {t: n for t, n in table.per_table.items() if n}  # a table that emptied keeps a 0
        assert counted == collections.Counter(key[0] for key in table.installed)
    table.reset({a: flows(a, [0, 0, 24])})
    assert table.per_table == {0: 2, 24: 1}


def test_a_reason_selects_its_flows_of_every_port() -> None:
    value_, mask = (int(x, 16) for x in reason_cookie_match("arp").removeprefix("cookie=").split("/"))
    for port in ("7858c19a-2ab3-4000-8000-000000000000", "00000000-0001-4000-8000-000000000000"):
        assert cookie(port, "arp") & mask == value_
        assert cookie(port, "nd") & mask != value_
    assert cookie(None, "unknown-port") & mask != value_


# -- the agent on a real switch ----------------------------------------------------------------------


@pytest.mark.ovs
def test_a_spoofing_vm_moves_the_drop_counter_and_the_agent_reports(plane: Dataplane) -> None:
    recorder = AgentMetrics(plane.agent, drop_interval=0.1)
    recorder.start()
    try:
        _spoof_and_scrape(plane)
    finally:
        recorder.stop()


@pytest.mark.ovs
def test_a_vip_changing_hands_is_counted_once_per_move(plane: Dataplane) -> None:
    """Two ports carry VIP 192.168.1.10; each announces it in turn (a gratuitous ARP, as keepalived sends):
    the first holder is no move, the second is one, and a holder repeating itself is none."""
    recorder = AgentMetrics(plane.agent)
    recorder.start()
    try:
        app = TestClient(create_app(plane.db))
        net = plane.network("net1", ["192.168.1.0/24"])
        pair = [{"ip_address": "192.168.1.10"}]
        machines = []
        for name, mac, ip in (
            ("s1", "fa:16:3e:3e:e3:14", "192.168.1.138"),
            ("s2", "fa:16:3e:7b:e9:03", "192.168.1.136"),
        ):
            port = plane.port(net, name, mac, [ip], allowed_address_pairs=pair)
            machines.append((port, plane.vm(port, [f"{ip}/24"])))
        before = value(scrape(app.get("/metrics").text), "portsec_vip_moves_total")
        for port, machine in (*machines, machines[1]):
            mac = port["mac_address"]
            garp = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=mac, psrc="192.168.1.10", pdst="192.168.1.10")
            plane.send(machine, bytes(garp))
            wait_for(lambda p=port: plane.agent.vip_owners.get((net["id"], "192.168.1.10"), ("",))[0] == p["id"],
                     what=f"{port['name']} to hold the VIP")  # fmt: skip
        assert value(scrape(app.get("/metrics").text), "portsec_vip_moves_total") - before == 1
    finally:
        recorder.stop()


def _spoof_and_scrape(plane: Dataplane) -> None:
    app = TestClient(create_app(plane.db))  # the API's /metrics, in the agent's process as with `portsec serve`
    before = scrape(app.get("/metrics").text)
    net = plane.network("net1", ["192.168.1.0/24"])
    port = plane.port(net, "server1", "fa:16:3e:3e:e3:14", ["192.168.1.138"])
    machine = plane.vm(port, ["192.168.1.138/24"])
    # A commit that changes the flows of a plugged port: its convergence is observed.
    port = plane.update(port, allowed_address_pairs=[{"ip_address": "192.168.1.10"}])
    plane.converged(port)
    spoof = Ether(src=port["mac_address"], dst="ff:ff:ff:ff:ff:ff") / ARP(
        hwsrc=port["mac_address"], psrc="192.168.1.99", pdst="192.168.1.2"
    )
    for _ in range(3):
        plane.send(machine, bytes(spoof))
    plane.sw.revalidate()

    def arp_drops() -> float:
        samples = scrape(app.get("/metrics").text)
        name = "portsec_port_dropped_packets_total"
        return value(samples, name, reason="arp") - value(before, name, reason="arp")

    assert wait_for(lambda: arp_drops() >= 3, what="the arp drop counter to count the spoofed frames")
    after = scrape(app.get("/metrics").text)
    assert value(after, "portsec_agent_convergence_seconds_count") > value(
        before, "portsec_agent_convergence_seconds_count"
    )
    assert value(after, "portsec_agent_flows", table="25") > 0
    assert value(after, "portsec_agent_flows", table="0") > 0
    assert value(after, "portsec_agent_bundle_apply_seconds_count", kind="incremental") > 0
    assert value(after, "portsec_agent_ovs_connected") == 1
    # Another reason's counter did not move: the drops are counted under theirs.
    name = "portsec_port_dropped_packets_total"
    assert value(after, name, reason="vlan") == value(before, name, reason="vlan")


@pytest.mark.ovs
def test_a_standalone_agent_serves_its_metrics_with_ports_as_labels(sw: ovs.Switch, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/p.db")
    db.migrate()
    api = EmbeddedClient(db, Context.admin())
    net = api.create("network", {"name": "net1"})
    api.create("subnet", {"network_id": net["id"], "cidr": "192.168.1.0/24", "ip_version": 4})
    body = {"network_id": net["id"], "mac_address": "fa:16:3e:3e:e3:14", "fixed_ips": [{"ip_address": "192.168.1.138"}]}
    port = api.create("port", body)
    metrics_port = free_port()
    env = {**os.environ, "OVS_RUNDIR": str(sw.rundir), "PORTSEC_DATABASE_URL": db.url}
    argv = [PORTSEC, "agent", "--metrics-port", str(metrics_port), "--metrics-per-port"]
    agent = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with ovs.vm(sw, port["id"], port["mac_address"], ["192.168.1.138/24"]) as machine:
            wait_for(lambda: api.get("port", port["id"])["status"] == "ACTIVE", what="the port to be ACTIVE")
            spoof = Ether(src=port["mac_address"], dst="ff:ff:ff:ff:ff:ff") / ARP(
                hwsrc=port["mac_address"], psrc="192.168.1.99", pdst="192.168.1.2"
            )
            machine.sh("python3", "-c", _SEND, bytes(spoof).hex())
            sw.revalidate()

            def samples() -> dict[str, dict[Labels, float]]:
                return scrape(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)

            name = "portsec_port_dropped_packets_total"
            wait_for(lambda: value(samples(), name, port=port["id"], reason="arp") >= 1, timeout=20,
                     what="the port's arp drops on the agent's /metrics")  # fmt: skip
            found = samples()
            assert value(found, "portsec_agent_resyncs_total", cause="start") == 1
            assert value(found, "portsec_agent_flows", table="24") > 0
            assert value(found, "portsec_build_info", version=metrics._version()) == 1
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=20)
    assert f"metrics on http://127.0.0.1:{metrics_port}/" in err


@pytest.mark.ovs
def test_serve_with_workers_reports_the_agent_of_its_main_process(sw: ovs.Switch, tmp_path: Path) -> None:
    env = {**os.environ, "OVS_RUNDIR": str(sw.rundir), "PORTSEC_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    port = free_port()
    argv = [PORTSEC, "serve", "--port", str(port), "--agent", "--workers", "2"]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"

    def agent_reported() -> dict[str, dict[Labels, float]] | None:
        try:
            found = scrape(httpx.get(url, headers={"Connection": "close"}).text)
        except httpx.HTTPError:
            return None
        return found if value(found, "portsec_agent_resyncs_total", cause="start") == 1 else None

    try:
        for _ in range(3):  # whichever worker answers, it has the agent's values, written by the main process
            found = wait_for(agent_reported, timeout=20, what="the agent's first sync on a worker's /metrics")
            assert value(found, "portsec_agent_flows", table="0") > 0
            assert value(found, "portsec_agent_bundle_apply_seconds_count", kind="full") == 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
