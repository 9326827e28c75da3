"""The portsec-insight extension: drops, trace and pair lint over HTTP give the CLI's answers, within policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portsec.api.app import create_app
from portsec.service.sources import suggested_pairs
from portsec.store.database import Database
from tests import ovs
from tests.cli import run
from tests.dataplane import Dataplane, wait_for
from tests.test_cli_seed import _seed_ports, ok

S1 = "fa:16:3e:3e:e3:14"
ALICE = {"X-Project-Id": "alice", "X-Roles": "member"}
BOB = {"X-Project-Id": "bob", "X-Roles": "member"}


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The seed network made with the CLI, and the API over the same database; no local switch."""
    url = f"sqlite:///{tmp_path}/portsec.db"
    monkeypatch.setenv("PORTSEC_DATABASE_URL", url)
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path / "no-ovs"))  # the CLI and the API alike find no switch
    ids = _seed_ports()
    db = Database(url)
    yield {"api": TestClient(create_app(db), raise_server_exceptions=False), **ids}
    db.dispose()


def _cli_lint(args: str) -> list[dict[str, Any]]:
    result = run(f"pair lint {args} --long -f json")
    assert result.code in (0, 3), result.err
    return [
        {"severity": f["Severity"], "check": f["Check"], "network_id": f["Network"], "ports": f["Ports"],
         "port_ids": f["Port IDs"], "address": f["Address"], "why": f["Why"], "fix": f["Fix"]}
        for f in json.loads(result.out)
    ]  # fmt: skip


def _api_lint(api: TestClient, query: str = "", headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = api.get(f"/v2.0/pair-lint{query}", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["findings"])


def _neutron_error(response: Any, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    assert error["type"] == kind, error
    return str(error["message"])


def test_the_extension_is_listed_as_neutron_lists_extensions(seeded: dict[str, Any]) -> None:
    shown = seeded["api"].get("/v2.0/extensions/portsec-insight").json()["extension"]
    assert set(shown) == {"alias", "name", "description", "updated", "links"}
    assert shown["alias"] in [e["alias"] for e in seeded["api"].get("/v2.0/extensions").json()["extensions"]]


def test_the_lint_route_finds_what_portsec_pair_lint_finds(seeded: dict[str, Any]) -> None:
    ok("port set server1 --allowed-address ip-address=192.168.1.10")
    ok("port set server2 --allowed-address ip-address=192.168.1.10")
    ok("port create --network net1 --fixed-ip ip-address=192.168.1.50 --allowed-address ip-address=192.168.1.0/24 web1")
    api, net = seeded["api"], ok("network show net1 -f value -c id").strip()

    everything = _api_lint(api)
    assert [(f["severity"], f["check"], f["ports"][0]) for f in everything] == [
        ("high", "impersonation", "web1"), ("info", "vip", "server1"),
    ]  # fmt: skip
    assert everything[0]["fix"] == "portsec port unset web1 --allowed-address ip-address=192.168.1.0/24"
    assert everything == _cli_lint("")
    assert _api_lint(api, f"?network_id={net}") == _cli_lint("--network net1") == everything
    assert _api_lint(api, f"?port_id={seeded['server2']}") == _cli_lint("server2")


def test_the_trace_route_answers_what_portsec_trace_prints(seeded: dict[str, Any]) -> None:
    api, flow = seeded["api"], "arp,arp_spa=192.168.1.10"
    for pair, expected_code in (("", 2), ("--allowed-address ip-address=192.168.1.10", 0)):  # dropped, forwarded
        ok(f"port set server1 {pair}")
        printed = run(f"trace server1 '{flow}'")
        assert printed.code == expected_code, printed.err
        response = api.post(f"/v2.0/ports/{seeded['server1']}/trace", json={"trace": {"microflow": flow}})
        assert response.status_code == 200, response.text
        assert _as_printed(response.json()["trace"]) == printed.out

    dropped = api.post(f"/v2.0/ports/{seeded['server2']}/trace", json={"trace": {"microflow": flow, "ofport": 7}})
    answer = dropped.json()["trace"]
    assert (answer["verdict"], answer["reason"], answer["ofport"]) == ("dropped", "arp", 7)
    assert answer["fix"] == "to allow it: portsec port set server2 --allowed-address ip-address=192.168.1.10"


def _as_printed(trace: dict[str, Any]) -> str:
    """The answer in the lines of `portsec trace`."""
    lines = [f"verdict: {trace['headline']}", f"packet:  {trace['packet']}",
             f"ofport:  {trace['ofport']} ({trace['ofport_source']})", "flows:",
             *(f"  {f}" for f in trace["flows"]), f"why:     {trace['why']}", *([trace["fix"]] if trace["fix"] else [])]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_a_bad_microflow_or_body_is_400_in_neutrons_body(seeded: dict[str, Any]) -> None:
    api, path = seeded["api"], f"/v2.0/ports/{seeded['server1']}/trace"
    message = _neutron_error(api.post(path, json={"trace": {"microflow": "arp,colour=blue"}}), 400, "HTTPBadRequest")
    assert message.startswith("Invalid input for microflow. Reason: Bad microflow 'arp,colour=blue': unknown field")
    assert run("trace server1 'arp,colour=blue'").err.startswith("Bad microflow 'arp,colour=blue': unknown field")
    for body in ({"microflow": "arp"}, {"trace": {"microflow": 5}}, {"trace": {"microflow": "arp", "vlan": 1}},
                 {"trace": {"microflow": "arp", "ofport": 0}}, {"trace": {}}):  # fmt: skip
        _neutron_error(api.post(path, json=body), 400, "HTTPBadRequest")
    _neutron_error(api.get("/v2.0/pair-lint?colour=blue"), 400, "HTTPBadRequest")
    both = f"?network_id={seeded['server1']}&port_id={seeded['server1']}"
    _neutron_error(api.get(f"/v2.0/pair-lint{both}"), 400, "HTTPBadRequest")


def test_without_a_switch_the_drops_are_503_in_neutrons_body(seeded: dict[str, Any]) -> None:
    message = _neutron_error(
        seeded["api"].get(f"/v2.0/ports/{seeded['server1']}/drops"), 503, "DropCountersUnavailable"
    )
    assert f"The drop counters of port {seeded['server1']} cannot be read: bridge br-int:" in message
    _neutron_error(seeded["api"].get("/v2.0/ports/no-such-port/drops"), 404, "PortNotFound")


def test_another_projects_port_is_not_found_and_a_members_lint_shows_only_its_own(seeded: dict[str, Any]) -> None:
    api = seeded["api"]
    shared = api.post("/v2.0/networks", json={"network": {"name": "shared", "shared": True}}).json()["network"]
    api.post("/v2.0/subnets", json={"subnet": {"network_id": shared["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})
    # The admin makes a port for each project; bob's pair covers alice's address. The admin sees that;
    # bob must not learn alice's port or address from it, nor alice bob's.
    mine = _port_of(api, shared["id"], "alice", "alice1", fixed_ips=[{"ip_address": "10.0.0.5"}])
    theirs_id = _port_of(api, shared["id"], "bob", "bob1", allowed_address_pairs=[{"ip_address": "10.0.0.0/28"}])["id"]

    for path in (f"/v2.0/ports/{theirs_id}/drops", f"/v2.0/ports/{seeded['server1']}/drops"):
        _neutron_error(api.get(path, headers=ALICE), 404, "PortNotFound")
    trace = {"trace": {"microflow": "arp"}}
    _neutron_error(api.post(f"/v2.0/ports/{theirs_id}/trace", headers=ALICE, json=trace), 404, "PortNotFound")
    assert api.post(f"/v2.0/ports/{mine['id']}/trace", headers=ALICE, json=trace).status_code == 200
    _neutron_error(api.get(f"/v2.0/pair-lint?port_id={theirs_id}", headers=ALICE), 404, "PortNotFound")

    by_admin = _api_lint(api, f"?network_id={shared['id']}")
    assert [(f["check"], f["port_ids"]) for f in by_admin if f["severity"] == "high"] == [
        ("impersonation", [theirs_id, mine["id"]])
    ]
    for caller, hidden in ((BOB, [mine["id"], "alice1", "10.0.0.5"]), (ALICE, [theirs_id, "bob1", "10.0.0.0/28"])):
        for query in (f"?network_id={shared['id']}", ""):
            shown = json.dumps(_api_lint(api, query, caller))
            assert not [h for h in hidden if h in shown], (caller, query, shown)
    # The price of not leaking: bob's lint cannot name a victim he may not see, so it shows no impersonation.
    assert "impersonation" not in [f["check"] for f in _api_lint(api, f"?port_id={theirs_id}", BOB)]


def _port_of(api: TestClient, network_id: str, project: str, name: str, **body: Any) -> dict[str, Any]:
    made = api.post("/v2.0/ports", json={"port": {"network_id": network_id, "project_id": project, "name": name,
                                                   **body}})  # fmt: skip
    assert made.status_code == 201, made.text
    return dict(made.json()["port"])


@pytest.mark.ovs
def test_drops_through_the_real_agent_after_spoofed_packets(
    plane: Dataplane, sw: ovs.Switch, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = plane.network("net1", ["192.168.1.0/24"])
    server1 = plane.port(net, "server1", S1, ["192.168.1.138"])
    vm = plane.vm(server1, ["192.168.1.138/24"])
    monkeypatch.setenv("OVS_RUNDIR", str(sw.rundir))
    monkeypatch.setenv("PORTSEC_BRIDGE", sw.bridge)
    monkeypatch.setenv("PORTSEC_DATABASE_URL", plane.db.url)
    api = TestClient(create_app(plane.db), raise_server_exceptions=False)

    vm.sh("ip", "addr", "add", "192.168.1.99/24", "dev", "eth0")
    # The kernel asks for 192.168.1.1 as 192.168.1.99, the source of the ping: a spoofed ARP, dropped.
    vm.sh("ping", "-c", "1", "-W", "2", "-I", "192.168.1.99", "192.168.1.1", check=False)
    expected = plane.drops(server1)  # revalidates, so the counters are current
    assert expected["arp"] >= 1, expected

    response = api.get(f"/v2.0/ports/{server1['id']}/drops")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["drops"] == expected
    # Port security on: real drops, and no audit flow samples sources.
    assert (answer["audit"], answer["sources"], answer["suggested_pairs"]) == (False, [], [])
    printed = run("port drops server1 -f json")
    assert printed.code == 0, printed.err
    assert {row["Reason"]: row["Packets"] for row in json.loads(printed.out)} == expected

    # Port security off: the same spoofing passes, is counted as what strict mode would drop, and its
    # source is sampled, with the pair that would keep it working.
    plane.update(server1, port_security_enabled=False)
    plane.converged(server1)
    vm.sh("ip", "neigh", "flush", "dev", "eth0")
    vm.sh("ping", "-c", "1", "-W", "1", "-I", "192.168.1.99", "192.168.1.1", check=False)

    def audited() -> dict[str, Any]:
        found: dict[str, Any] = api.get(f"/v2.0/ports/{server1['id']}/drops").json()
        return found if found["sources"] else {}

    answer = wait_for(audited, what="the spoofed source to be sampled")
    assert answer["audit"] is True and answer["drops"]["arp"] >= 1, answer
    assert {(s["reason"], s["ip_address"]) for s in answer["sources"]} >= {("arp", "192.168.1.99")}
    port = api.get(f"/v2.0/ports/{server1['id']}").json()["port"]
    assert answer["suggested_pairs"] == suggested_pairs(port, answer["sources"]) == [{"ip_address": "192.168.1.99"}]
    printed = run("port drops server1")
    assert printed.code == 0 and "has no port security: nothing was dropped" in printed.err, printed
    _neutron_error(api.get(f"/v2.0/ports/{server1['id']}/drops", headers=ALICE), 404, "PortNotFound")
