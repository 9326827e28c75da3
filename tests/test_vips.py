"""VIP owners and moves, sampled sources and suggested pairs (issue 11): service, HTTP API and CLI, no switch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from portsec.api import insight as api_insight
from portsec.api.app import create_app
from portsec.cli.ports import dry_run_report
from portsec.client.embedded import EmbeddedClient
from portsec.domain.model import Context
from portsec.service import sources, vips
from portsec.service.sources import MAX_SOURCES_PER_PORT, Sample, suggested_pairs
from portsec.store.database import Database
from portsec.store.schema import vip_moves
from tests.cli import run
from tests.server import serve
from tests.test_cli_seed import _seed_ports, ok

S1, S2 = "fa:16:3e:3e:e3:14", "fa:16:3e:7b:e9:03"
BOB = {"X-Project-Id": "bob", "X-Roles": "member"}
T0 = 1_764_619_200.0  # 2025-12-01T20:00:00Z
VIP = "192.168.1.10"
PORTSEC = Path(sys.executable).with_name("portsec")


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The seed network with its keepalived VIP on server1 and server2 (CLI, embedded), and its database."""
    url = f"sqlite:///{tmp_path}/portsec.db"
    monkeypatch.setenv("PORTSEC_DATABASE_URL", url)
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path / "no-ovs"))
    monkeypatch.setenv("COLUMNS", "400")
    ids = _seed_ports()
    ok(f"port set server1 --allowed-address ip-address={VIP}")
    ok(f"port set server2 --allowed-address ip-address={VIP}")
    ids["network"] = ok("network show net1 -f value -c id").strip()
    db = Database(url)
    yield db, ids
    db.dispose()


def _moves(db: Database, ids: dict[str, str]) -> None:
    """server1 claims the VIP, server2 takes it over, server2 again (no move), server1 takes it back."""
    net, s1, s2 = ids["network"], ids["server1"], ids["server2"]
    written = [
        db.run(lambda tx, p=p, at=at: vips.record(tx, net, VIP, p, at, "host-a"))
        for p, at in ((s1, T0), (s2, T0 + 10.5), (s2, T0 + 11), (s1, T0 + 20.25))
    ]
    assert written == [(True, None), (True, s1), (False, s2), (True, s2)]  # (a row written, the holder before)


# Service ---------------------------------------------------------------------------------------------------------


def test_a_configured_vip_never_claimed_is_listed_without_owner(seeded: Any) -> None:
    db, ids = seeded
    with db.transaction(write=False) as tx:
        found = vips.list_(tx, Context.admin())
    assert found == [
        {"network_id": ids["network"], "ip_address": VIP, "ports": sorted([ids["server1"], ids["server2"]]),
         "port_id": None, "since": None, "moves": 0, "last_move": None, "history": []}
    ]  # fmt: skip


def test_a_flapping_vip_keeps_its_last_rows_and_its_whole_count(seeded: Any) -> None:
    """A split-brain pair hands the VIP back and forth every second: the table keeps the last KEPT rows of it,
    and the count of moves stays whole."""
    db, ids = seeded
    net, s1, s2 = ids["network"], ids["server1"], ids["server2"]
    flips = vips.KEPT + 30
    for i in range(flips):
        db.run(lambda tx, i=i: vips.record(tx, net, VIP, (s1, s2)[i % 2], T0 + i, "h"))
    with db.transaction(write=False) as tx:
        (vip,) = vips.list_(tx, Context.admin(), ip_address=VIP)
        kept = tx.conn.execute(sa.select(sa.func.count()).select_from(vip_moves)).scalar_one()
    assert kept == vips.KEPT
    assert (vip["moves"], vip["port_id"], len(vip["history"])) == (flips - 1, (s1, s2)[(flips - 1) % 2], vips.HISTORY)


def test_moves_give_owner_since_count_and_history_newest_first(seeded: Any) -> None:
    db, ids = seeded
    _moves(db, ids)
    with db.transaction(write=False) as tx:
        vip = vips.show(tx, Context.admin(), VIP, None)
    assert vip["port_id"] == ids["server1"]
    assert vip["since"] == vip["last_move"] == "2025-12-01T20:00:20.250Z"
    assert vip["moves"] == 2
    assert vip["history"] == [
        {"port_id": ids["server1"], "previous_port_id": ids["server2"], "at": "2025-12-01T20:00:20.250Z",
         "host": "host-a"},
        {"port_id": ids["server2"], "previous_port_id": ids["server1"], "at": "2025-12-01T20:00:10.500Z",
         "host": "host-a"},
        {"port_id": ids["server1"], "previous_port_id": None, "at": "2025-12-01T20:00:00.000Z", "host": "host-a"},
    ]  # fmt: skip


def test_history_is_kept_when_the_pairs_and_ports_go(seeded: Any) -> None:
    db, ids = seeded
    _moves(db, ids)
    ok("port delete server2")
    ok("port set server1 --no-allowed-address")
    with db.transaction(write=False) as tx:
        [vip] = vips.list_(tx, Context.admin())
    assert (vip["ports"], vip["port_id"], vip["moves"]) == ([], ids["server1"], 2)


def test_a_project_sees_only_vips_of_its_ports(seeded: Any) -> None:
    db, ids = seeded
    _moves(db, ids)
    bob = Context(project_id="bob", is_admin=False, roles=("member", "reader"))
    alice = Context(project_id="alice", is_admin=False, roles=("member", "reader"))
    admin = EmbeddedClient(db, Context.admin())
    body = {"network_id": ids["network"], "project_id": "alice", "allowed_address_pairs": [{"ip_address": VIP}]}
    theirs = admin.create("port", body)
    db.run(lambda tx: vips.record(tx, ids["network"], "192.168.1.20", ids["server1"], T0, "h"))
    with db.transaction(write=False) as tx:
        [seen] = vips.list_(tx, alice)  # the VIP her port carries, with the other carriers; not 192.168.1.20
        assert seen["ports"] == sorted([ids["server1"], ids["server2"], theirs["id"]])
        assert seen["port_id"] == ids["server1"]
        assert [v["ip_address"] for v in vips.list_(tx, Context.admin())] == [VIP, "192.168.1.20"]
    with db.transaction(write=False) as tx:
        assert vips.list_(tx, bob) == []
        with pytest.raises(vips.VipNotFound):
            vips.show(tx, bob, VIP, None)
        with pytest.raises(vips.VipNotFound):
            vips.show(tx, Context.admin(), "192.168.1.11", None)


def test_one_ip_on_two_networks_needs_the_network(seeded: Any) -> None:
    db, ids = seeded
    db.run(lambda tx: vips.record(tx, "other-net", VIP, ids["server1"], T0, "h"))
    with db.transaction(write=False) as tx:
        with pytest.raises(vips.VipOnSeveralNetworks, match="network"):
            vips.show(tx, Context.admin(), VIP, None)
        assert vips.show(tx, Context.admin(), VIP, "other-net")["port_id"] == ids["server1"]
        assert [v["network_id"] for v in vips.list_(tx, Context.admin(), ip_address=VIP)] == sorted(
            [ids["network"], "other-net"]
        )


def test_samples_add_up_and_keep_first_and_last_seen(seeded: Any) -> None:
    db, ids = seeded
    s1 = ids["server1"]
    db.run(lambda tx: sources.record(tx, [Sample(s1, "ip-spoof", S1, "10.0.0.99", 3, T0 + 5)]))
    db.run(
        lambda tx: sources.record(
            tx,
            [
                Sample(s1, "ip-spoof", S1, "10.0.0.99", 4, T0),
                Sample(s1, "mac-spoof", "FA:16:3E:00:00:01", "", 1, T0 + 1),
                Sample("no-such-port", "ip-spoof", S1, "10.0.0.1", 1, T0),
            ],
        )
    )
    with db.transaction(write=False) as tx:
        assert sources.of_port(tx, s1) == [
            {"reason": "ip-spoof", "mac_address": S1, "ip_address": "10.0.0.99", "packets": 7,
             "first_seen": "2025-12-01T20:00:00.000Z", "last_seen": "2025-12-01T20:00:05.000Z"},
            {"reason": "mac-spoof", "mac_address": "fa:16:3e:00:00:01", "ip_address": "", "packets": 1,
             "first_seen": "2025-12-01T20:00:01.000Z", "last_seen": "2025-12-01T20:00:01.000Z"},
        ]  # fmt: skip
        assert sources.of_port(tx, "no-such-port") == []
    ok("port delete server1")
    with db.transaction(write=False) as tx:
        assert sources.of_port(tx, s1) == []


def test_at_most_max_sources_per_port_but_known_ones_still_count(seeded: Any) -> None:
    db, ids = seeded
    s1 = ids["server1"]
    many = [Sample(s1, "ip-spoof", S1, f"10.0.{i // 250}.{i % 250}", 1, T0) for i in range(MAX_SOURCES_PER_PORT + 5)]
    db.run(lambda tx: sources.record(tx, many))
    db.run(lambda tx: sources.record(tx, [Sample(s1, "ip-spoof", S1, "10.0.0.0", 9, T0), *many[-3:]]))
    with db.transaction(write=False) as tx:
        found = sources.of_port(tx, s1)
    assert len(found) == MAX_SOURCES_PER_PORT
    assert found[0]["ip_address"] == "10.0.0.0" and found[0]["packets"] == 10


def test_suggested_pairs_leave_out_what_the_port_already_allows() -> None:
    port = {
        "id": "6a3c3d0e-5b7e-4c1f-9d7a-2f1e0c9b8a71",
        "network_id": "net1",
        "mac_address": S1,
        "port_security_enabled": False,
        "fixed_ips": [{"subnet_id": "s", "ip_address": "192.168.1.138"}],
        "allowed_address_pairs": [
            {"ip_address": "10.1.0.0/16", "mac_address": S1},
            {"ip_address": "10.2.0.5", "mac_address": "fa:16:3e:00:00:02"},
        ],
    }
    sampled = [
        {"mac_address": S1, "ip_address": "192.168.1.138"},  # its fixed IP
        {"mac_address": S1, "ip_address": "10.1.2.3"},  # inside a pair
        {"mac_address": "fa:16:3e:00:00:02", "ip_address": "10.2.0.5"},  # a pair with its MAC
        {"mac_address": "fa:16:3e:00:00:02", "ip_address": "fe80::f816:3eff:fe00:2"},  # that MAC's link-local
        {"mac_address": "fa:16:3e:00:00:02", "ip_address": "fe80::1"},  # another link-local: strict drops it
        {"mac_address": S1, "ip_address": ""},  # no IP: no pair helps
        {"mac_address": S1, "ip_address": "10.0.0.99"},
        {"mac_address": S1, "ip_address": "10.0.0.99"},
        {"mac_address": "FA:16:3E:00:00:01", "ip_address": "10.0.0.9"},
        {"mac_address": S1, "ip_address": "fd00::5"},
        {"mac_address": "fa:16:3e:00:00:09", "ip_address": "fe80::9"},  # link-local of an unknown MAC
        {"mac_address": S2, "ip_address": "192.168.1.138"},  # its IP with another MAC
    ]
    assert suggested_pairs(port, sampled) == [
        {"ip_address": "10.0.0.9", "mac_address": "fa:16:3e:00:00:01"},
        {"ip_address": "10.0.0.99"},
        {"ip_address": "192.168.1.138", "mac_address": S2},
        {"ip_address": "fd00::5"},
        {"ip_address": "fe80::1", "mac_address": "fa:16:3e:00:00:02"},
        {"ip_address": "fe80::9", "mac_address": "fa:16:3e:00:00:09"},
    ]


# HTTP API --------------------------------------------------------------------------------------------------------


@pytest.fixture
def api(seeded: Any) -> Any:
    db, ids = seeded
    return TestClient(create_app(db), raise_server_exceptions=False), db, ids


def _error(response: Any, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    assert error["type"] == kind, error
    return str(error["message"])


def test_api_lists_and_shows_vips_as_the_service_does(api: Any) -> None:
    client, db, ids = api
    _moves(db, ids)
    with db.transaction(write=False) as tx:
        expected = vips.list_(tx, Context.admin())
    assert client.get("/v2.0/vips").json() == {"vips": expected}
    assert client.get(f"/v2.0/vips?network_id={ids['network']}&ip_address={VIP}").json() == {"vips": expected}
    assert client.get("/v2.0/vips?network_id=nope").json() == {"vips": []}
    assert client.get(f"/v2.0/vips/{VIP}").json() == {"vip": expected[0]}
    assert client.get(f"/v2.0/vips/{VIP}?network_id={ids['network']}").json() == {"vip": expected[0]}


def test_api_vips_refuse_bad_input_in_neutrons_format(api: Any) -> None:
    client, _db, _ids = api
    _error(client.get("/v2.0/vips?ip_address=not-an-ip"), 400, "HTTPBadRequest")
    _error(client.get("/v2.0/vips?ip_address=10.0.0.1/32"), 400, "HTTPBadRequest")
    _error(client.get("/v2.0/vips?colour=blue"), 400, "HTTPBadRequest")
    _error(client.get("/v2.0/vips?network_id=a&network_id=b"), 400, "HTTPBadRequest")
    _error(client.get("/v2.0/vips?network_id=%00"), 400, "HTTPBadRequest")
    _error(client.get("/v2.0/vips/not-an-ip"), 400, "HTTPBadRequest")
    _error(client.get("/v2.0/vips/192.168.1.11"), 404, "VipNotFound")
    _error(client.get(f"/v2.0/vips/{VIP}?ip_address={VIP}"), 400, "HTTPBadRequest")


def test_api_vip_on_two_networks_is_409_without_network_id(api: Any) -> None:
    client, db, ids = api
    db.run(lambda tx: vips.record(tx, "other-net", VIP, ids["server2"], T0, "h"))
    assert "network_id" in _error(client.get(f"/v2.0/vips/{VIP}"), 409, "VipOnSeveralNetworks")
    assert client.get(f"/v2.0/vips/{VIP}?network_id=other-net").json()["vip"]["port_id"] == ids["server2"]


def test_api_another_project_sees_no_vip_of_ours(api: Any) -> None:
    client, db, ids = api
    _moves(db, ids)
    assert client.get("/v2.0/vips", headers=BOB).json() == {"vips": []}
    _error(client.get(f"/v2.0/vips/{VIP}", headers=BOB), 404, "VipNotFound")


def test_api_drops_carry_the_sampled_sources_and_suggested_pairs(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, db, ids = api
    counted = {"ip-spoof": 7}
    monkeypatch.setattr(api_insight, "port_drops", lambda _switch, _port_id: counted)
    s1 = ids["server1"]
    assert client.get(f"/v2.0/ports/{s1}/drops").json() == {
        "drops": counted,
        "audit": False,
        "sources": [],
        "suggested_pairs": [],
    }
    db.run(lambda tx: sources.record(tx, [Sample(s1, "ip-spoof", S1, "10.0.0.99", 7, T0)]))
    answer = client.get(f"/v2.0/ports/{s1}/drops").json()
    assert answer["sources"] == [
        {"reason": "ip-spoof", "mac_address": S1, "ip_address": "10.0.0.99", "packets": 7,
         "first_seen": "2025-12-01T20:00:00.000Z", "last_seen": "2025-12-01T20:00:00.000Z"}
    ]  # fmt: skip
    assert answer["suggested_pairs"] == [{"ip_address": "10.0.0.99"}]
    _error(client.get(f"/v2.0/ports/{s1}/drops", headers=BOB), 404, "PortNotFound")


def test_openapi_describes_the_vip_routes(api: Any) -> None:
    client, _db, _ids = api
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v2.0/vips", "/v2.0/vips/{ip_address}"} <= set(paths)
    shown = client.get("/v2.0/extensions/portsec-insight").json()["extension"]
    assert "GET vips" in shown["description"]


# CLI -------------------------------------------------------------------------------------------------------------


def test_cli_vip_list_and_show(seeded: Any) -> None:
    db, ids = seeded
    _moves(db, ids)
    listed = json.loads(ok("vip list -f json"))
    by_id = sorted([(ids["server1"], "server1"), (ids["server2"], "server2")])
    assert listed == [
        {"IP Address": VIP, "Network": ids["network"], "Owner": "server1", "Since": "2025-12-01T20:00:20.250Z",
         "Moves": 2, "Last Move": "2025-12-01T20:00:20.250Z", "Ports": [name for _, name in by_id]}
    ]  # fmt: skip  # ports by name, in the API's order (by id)
    assert json.loads(ok("vip list --network net1 -f json")) == listed
    table = ok("vip list")
    assert "| IP Address   | Network" in table and "| Owner" in table and "| Last Move" in table
    shown = json.loads(ok(f"vip show {VIP} --network net1 -f json"))
    s1, s2 = (f"{name} ({ids[name]})" for name in ("server1", "server2"))
    assert shown["port_id"] == s1 and shown["moves"] == 2
    assert [h["port_id"] for h in shown["history"]] == [s1, s2, s1]
    missing = run("vip show 192.168.1.11")
    assert missing.code == 1 and "VIP 192.168.1.11 could not be found" in missing.err


def test_cli_dry_run_needs_enable_port_security(seeded: Any) -> None:
    """A usage error, as argparse's own: exit status 2, the usage and the message on stderr, nothing changed."""
    for args in ("--dry-run", "--dry-run --disable-port-security", "--dry-run --name other"):
        done = subprocess.run(
            [str(PORTSEC), "port", "set", "server1", *args.split()], capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, done.stderr
        assert "usage:" in done.stderr and "error: --dry-run previews --enable-port-security" in done.stderr
    assert json.loads(ok("port show server1 -f json"))["name"] == "server1"


def test_cli_dry_run_on_a_port_with_port_security_on_says_so(seeded: Any) -> None:
    result = run("port set server1 --enable-port-security --dry-run")
    assert (result.code, result.err) == (0, "")
    assert "already has port security enabled" in result.out


def test_cli_dry_run_without_a_switch_fails_as_port_drops_does(seeded: Any) -> None:
    ok("port create --network net1 --no-fixed-ip --disable-port-security open1")
    dry = run("port set open1 --enable-port-security --dry-run")
    drops = run("port drops open1")
    assert dry.code == drops.code == 1
    assert dry.err == drops.err and "cannot read the counters" in dry.err
    assert json.loads(ok("port show open1 -f json"))["port_security_enabled"] is False  # nothing changed


def test_dry_run_report_names_drops_sources_and_the_flags() -> None:
    sampled = [
        {"reason": "ip-spoof", "mac_address": S1, "ip_address": "10.0.0.99", "packets": 7,
         "first_seen": "2025-12-01T20:00:00.000Z", "last_seen": "2025-12-01T20:00:05.000Z"},
        {"reason": "mac-spoof", "mac_address": "fa:16:3e:00:00:01", "ip_address": "10.0.0.98", "packets": 2,
         "first_seen": "2025-12-01T20:00:01.000Z", "last_seen": "2025-12-01T20:00:01.000Z"},
    ]  # fmt: skip
    suggested = [{"ip_address": "10.0.0.98", "mac_address": "fa:16:3e:00:00:01"}, {"ip_address": "10.0.0.99"}]
    report = dry_run_report("open1", {"ip-spoof": 7, "mac-spoof": 2, "arp-spoof": 0}, sampled, suggested)
    assert report.splitlines() == [
        "Dry run: nothing was changed. Enabling port security on open1 would drop:",
        "  ip-spoof: 7 packets",
        "  mac-spoof: 2 packets",
        "Sources it sent from (sampled by the agent):",
        f"  ip-spoof: mac {S1}, ip 10.0.0.99: 7 packets, 2025-12-01T20:00:00.000Z .. 2025-12-01T20:00:05.000Z",
        "  mac-spoof: mac fa:16:3e:00:00:01, ip 10.0.0.98: 2 packets, 2025-12-01T20:00:01.000Z .. "
        "2025-12-01T20:00:01.000Z",
        "To keep them working:",
        "  portsec port set open1 --enable-port-security --allowed-address "
        "ip-address=10.0.0.98,mac-address=fa:16:3e:00:00:01 --allowed-address ip-address=10.0.0.99",
    ]
    quiet = dry_run_report("open1", {"ip-spoof": 0}, [], [])
    assert "nothing counted so far" in quiet and "none sampled" in quiet
    assert quiet.endswith(
        "No pair is needed for the sampled sources:\n  portsec port set open1 --enable-port-security\n"
    )


def test_cli_against_a_server_says_the_same(seeded: Any) -> None:
    db, ids = seeded
    _moves(db, ids)
    embedded = (ok("vip list -f json"), ok(f"vip show {VIP} -f json"))
    with serve(str(db.url)) as url:
        served = (
            ok(f"--endpoint {url} vip list --network net1 -f json"),
            ok(f"--endpoint {url} vip show {VIP} -f json"),
        )
        missing = run(f"--endpoint {url} vip show 192.168.1.11")
        theirs = run(f"--endpoint {url} --project-id bob vip list -f json")
    assert served == embedded
    assert missing.code == 1 and "VIP 192.168.1.11 could not be found" in missing.err
    assert (theirs.code, json.loads(theirs.out)) == (0, [])


# Both backends ---------------------------------------------------------------------------------------------------


def test_recording_works_on_both_backends(db: Database) -> None:
    client = EmbeddedClient(db, Context.admin())
    net = client.create("network", {"name": "net1"})
    client.create("subnet", {"network_id": net["id"], "cidr": "192.168.1.0/24", "ip_version": 4})
    a, b = (
        client.create("port", {"network_id": net["id"], "allowed_address_pairs": [{"ip_address": "192.168.1.10"}]})
        for _ in range(2)
    )
    for port, at in ((a, T0), (a, T0 + 1), (b, T0 + 2)):
        db.run(lambda tx, port=port, at=at: vips.record(tx, net["id"], "192.168.1.10", port["id"], at, "h"))
    samples = [Sample(a["id"], "ip-spoof", a["mac_address"], f"10.0.1.{i}", 1, T0 + i) for i in range(70)]
    db.run(lambda tx: sources.record(tx, samples))
    db.run(lambda tx: sources.record(tx, [Sample(a["id"], "ip-spoof", a["mac_address"], "10.0.1.3", 5, T0 - 1)]))
    with db.transaction(write=False) as tx:
        [vip] = vips.list_(tx, Context.admin())
        found = sources.of_port(tx, a["id"])
    assert (vip["ports"], vip["port_id"], vip["moves"]) == (sorted([a["id"], b["id"]]), b["id"], 1)
    assert len(found) == MAX_SOURCES_PER_PORT
    assert found[0] == {
        "reason": "ip-spoof", "mac_address": a["mac_address"], "ip_address": "10.0.1.3", "packets": 6,
        "first_seen": "2025-12-01T19:59:59.000Z", "last_seen": "2025-12-01T20:00:03.000Z",
    }  # fmt: skip
