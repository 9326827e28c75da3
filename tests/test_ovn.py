"""portsec on OVN, on two real hypervisors (tests/ovn.py), driven through the API, with real packets.

The seed's cloud: server1 and a client on hv1, server2 on hv2, traffic between
them over Geneve. Each check is made three ways where it matters: with packets
between the VMs, with ovn-trace on the logical switch, and with ofproto/trace
on the hypervisor's Open vSwitch as ovn-controller programmed it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portsec.ovn.intent import switch_name
from tests import ovn, ovs, server
from tests.cloud import Cloud, cloud
from tests.dataplane import wait_for
from tests.frames import M1, M2, MC, contract_rows
from tests.keepalived import VIP, Keepalived, crash, holds_vip

pytestmark = [
    pytest.mark.ovs,
    pytest.mark.skipif(not ovn.available(), reason="needs root and OVN (ovn-central, ovn-host): .ci/run installs them"),
]

SPOOF = "192.168.1.10"


@pytest.fixture(scope="module")
def sky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with cloud(tmp_path_factory.mktemp("ovn"), "--ovn-sync-interval", "1") as c:
        yield c


@pytest.fixture
def seed(sky: Cloud) -> Iterator[dict[str, Any]]:
    """The seed's network: client and server1 on hv1, server2 on hv2; removed (API and VMs) after the test."""
    net = sky.network("net1", ["192.168.1.0/24", "2001:db8:1::/64"])
    client = sky.port(net, "client", MC, ["192.168.1.2", "2001:db8:1::2"])
    server1 = sky.port(net, "server1", M1, ["192.168.1.138", "2001:db8:1::138"])
    server2 = sky.port(net, "server2", M2, ["192.168.1.136"])
    for port in (client, server1, server2):
        sky.converged(port)
    with sky.stack:
        yield {
            "net": net, "client": client, "server1": server1, "server2": server2,
            "client_vm": sky.vm(sky.hv1, client, ["192.168.1.2/24", "2001:db8:1::2/64"]),
            "server1_vm": sky.vm(sky.hv1, server1, ["192.168.1.138/24", "2001:db8:1::138/64"]),
            "server2_vm": sky.vm(sky.hv2, server2, ["192.168.1.136/24"]),
        }  # fmt: skip
    for port in (client, server1, server2):
        sky.call("DELETE", f"/v2.0/ports/{port['id']}", expect=204)
    sky.call("DELETE", f"/v2.0/networks/{net['id']}", expect=204)


def _spoof_reaches(source: ovs.VM, spoofed: str, target: str) -> bool:
    """A ping from ``source`` with the source address ``spoofed`` (added to its eth0 for the purpose)."""
    if spoofed not in source.sh("ip", "-4", "addr", "show", "dev", "eth0").stdout:
        source.sh("ip", "addr", "add", f"{spoofed}/32", "dev", "eth0")
    return source.sh("ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", spoofed, target, check=False).returncode == 0


def _tcp(client: ovs.VM, target: ovs.VM, address: str) -> str:
    """One TCP exchange: ``target`` echoes upper-cased what ``client`` sends."""
    listener = subprocess.Popen(
        ["ip", "netns", "exec", target.name, "python3", "-c",
         f"import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
         f"s.bind(('{address}', 8080)); s.listen(); c,_=s.accept(); c.sendall(c.recv(100).upper()); c.close()"],
    )  # fmt: skip
    try:
        script = (
            f"import socket,time\nfor _ in range(50):\n try:\n  s=socket.create_connection(('{address}',8080),timeout=2); break\n"
            " except OSError: time.sleep(0.1)\ns.sendall(b'portsec'); print(s.recv(100).decode())"
        )
        return client.sh("python3", "-c", script, timeout=30).stdout.strip()
    finally:
        listener.kill()
        listener.wait()


def test_seed_across_hypervisors(sky: Cloud, seed: dict[str, Any]) -> None:
    client, server1, server2 = seed["client_vm"], seed["server1_vm"], seed["server2_vm"]
    for name, hv in (("client", sky.hv1), ("server1", sky.hv1), ("server2", sky.hv2)):
        shown = sky.active(seed[name])
        assert shown["binding:host_id"] == hv.name, f"{name} is bound on {hv.name}"
    assert client.ping("192.168.1.136", count=3), "client (hv1) reaches server2 (hv2) over Geneve"
    assert server2.ping("192.168.1.138"), "server2 (hv2) reaches server1 (hv1)"
    assert _tcp(client, server2, "192.168.1.136") == "PORTSEC", "TCP across hypervisors"
    assert not _spoof_reaches(server1, SPOOF, "192.168.1.2"), "server1 may not send from an address it lacks"


def test_spoofing_is_dropped_in_ovn_and_on_the_hypervisor(sky: Cloud, seed: dict[str, Any]) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether

    server1, port = seed["server1_vm"], seed["server1"]
    switch = switch_name(seed["net"]["id"])
    inport = f'inport=="{port["id"]}" && eth.src=={M1} && eth.dst=={MC}'
    spoofed = sky.bed.central.trace(switch, f"{inport} && ip4.src=={SPOOF} && ip4.dst==192.168.1.2 && ip.ttl==64")
    assert "check_in_port_sec" in spoofed and spoofed.rstrip().endswith("};") and "drop;" in spoofed, spoofed
    own = sky.bed.central.trace(switch, f"{inport} && ip4.src==192.168.1.138 && ip4.dst==192.168.1.2 && ip.ttl==64")
    assert '/* output to "' in own, own
    frames = {
        "spoofed IP": Ether(src=M1, dst=MC) / IP(src=SPOOF, dst="192.168.1.2") / UDP(sport=1, dport=9),
        "spoofed MAC": Ether(src="fa:16:3e:99:99:99", dst=MC) / IP(src="192.168.1.138", dst="192.168.1.2") / UDP(),
        "forged ARP": Ether(src=M1, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=M1, psrc=SPOOF, pdst="192.168.1.2"),
    }
    for what, frame in frames.items():
        verdict = sky.datapath_verdict(sky.hv1, server1, bytes(frame))
        assert verdict == "Datapath actions: drop", f"{what}: {verdict}"
    honest = Ether(src=M1, dst=MC) / IP(src="192.168.1.138", dst="192.168.1.2") / UDP(sport=1, dport=9)
    assert sky.datapath_verdict(sky.hv1, server1, bytes(honest)) != "Datapath actions: drop"


# Where OVN 23.03 cannot give DESIGN §4's verdict (the README's contract table says the same).
OVN_DIFFERENCES = {
    "ARP probe": "dropped: OVN's port security wants the ARP sender address bound, and 0.0.0.0 is not",
    "router advertisement": "forwarded: OVN's ACL stage passes ND, RA and RS at priority 65532, above any ACL",
}


def test_every_contract_row_on_the_hypervisor(sky: Cloud, seed: dict[str, Any]) -> None:
    """Each frame of the contract from server1, through hv1's Open vSwitch as ovn-controller programmed it.

    The client (the frames' unicast destination) gets port security off for this test, so OVN's egress
    checks of the receiver do not hide the verdict of server1's ingress.
    """
    sky.update(seed["client"], port_security_enabled=False)
    server1 = seed["server1_vm"]
    verdicts = {}
    for what, frame, reason in contract_rows():
        verdict = sky.datapath_verdict(sky.hv1, server1, bytes(frame))
        verdicts[what] = (verdict == "Datapath actions: drop") == (reason is not None), verdict
    wrong = [f"{what}: {verdict}" for what, (right, verdict) in verdicts.items() if not right]
    assert sorted(what.split(":")[0] for what in wrong) == sorted(OVN_DIFFERENCES), "\n".join(wrong)


def test_pair_lets_the_vip_through_and_port_security_off_lets_anything(sky: Cloud, seed: dict[str, Any]) -> None:
    client, server1 = seed["client_vm"], seed["server1_vm"]
    assert not _spoof_reaches(server1, SPOOF, "192.168.1.2")
    sky.update(seed["server1"], allowed_address_pairs=[{"ip_address": SPOOF}])
    assert _spoof_reaches(server1, SPOOF, "192.168.1.2"), "with the pair, server1 may send from the VIP"
    assert not _spoof_reaches(server1, "192.168.1.11", "192.168.1.2")
    sky.update(seed["server1"], port_security_enabled=False, allowed_address_pairs=[])
    assert _spoof_reaches(server1, "192.168.1.11", "192.168.1.2"), "port security off lets anything through"
    row = sky.nb_port(seed["server1"]["id"])
    assert row is not None and row["port_security"] == ["set", []] and "unknown" in str(row["addresses"])
    assert client.ping("192.168.1.138")


def test_admin_state_down_disables_the_port(sky: Cloud, seed: dict[str, Any]) -> None:
    assert seed["client_vm"].ping("192.168.1.136")
    sky.update(seed["server2"], admin_state_up=False)
    assert not seed["client_vm"].ping("192.168.1.136")
    wait_for(lambda: sky.get(seed["server2"])["status"] == "DOWN", what="server2 DOWN")
    sky.update(seed["server2"], admin_state_up=True)
    assert seed["client_vm"].ping("192.168.1.136", count=3)
    sky.active(seed["server2"])


@pytest.mark.parametrize("how", ["sigterm", "crash"])
def test_keepalived_fails_over_across_hypervisors(sky: Cloud, seed: dict[str, Any], tmp_path: Path, how: str) -> None:
    reached = _failover(sky, seed, tmp_path, how, pair_on_server2=True)
    assert reached, f"after failover ({how}) the client must reach the VIP on server2, on the other hypervisor"
    assert M2 in seed["client_vm"].sh("ip", "neigh", "show", VIP).stdout


def test_keepalived_failover_fails_without_the_pair_on_server2(
    sky: Cloud, seed: dict[str, Any], tmp_path: Path
) -> None:
    assert not _failover(sky, seed, tmp_path, "sigterm", pair_on_server2=False)


def _failover(sky: Cloud, seed: dict[str, Any], tmp_path: Path, how: str, pair_on_server2: bool) -> bool:
    pair = [{"ip_address": VIP}]
    sky.update(seed["server1"], allowed_address_pairs=pair)
    sky.update(seed["server2"], allowed_address_pairs=pair if pair_on_server2 else [])
    client, vm1, vm2 = seed["client_vm"], seed["server1_vm"], seed["server2_vm"]
    daemons = [Keepalived(vm1, tmp_path, "MASTER", 150), Keepalived(vm2, tmp_path, "BACKUP", 100)]
    try:
        wait_for(lambda: holds_vip(vm1), timeout=15, what="server1 to become master")
        assert client.ping(VIP, count=3), "the client must reach the VIP on server1"
        if how == "crash":
            crash(daemons[0], vm1)
        else:
            daemons[0].stop()
        wait_for(lambda: holds_vip(vm2), timeout=15, what="server2 to take the VIP")
        time.sleep(0.5)  # keepalived's gratuitous ARPs after the takeover
        return client.ping(VIP, count=3, wait=1.0)
    finally:
        for d in daemons:
            d.stop()


def test_ports_come_and_go_with_the_api(sky: Cloud) -> None:
    net = sky.network("net9", ["10.9.0.0/24"])
    port = sky.port(net, "p9", "fa:16:3e:00:09:09", ["10.9.0.9"])
    sky.converged(port)
    assert switch_name(net["id"]) in sky.bed.central.nbctl("--bare", "--columns=name", "list", "Logical_Switch")
    sky.call("DELETE", f"/v2.0/ports/{port['id']}", expect=204)
    wait_for(lambda: sky.nb_port(port["id"]) is None, what="the port's row gone from NB")
    sky.call("DELETE", f"/v2.0/networks/{net['id']}", expect=204)
    wait_for(
        lambda: (
            switch_name(net["id"]) not in sky.bed.central.nbctl("--bare", "--columns=name", "list", "Logical_Switch")
        ),
        what="the network's switch gone from NB",
    )


def test_hand_edits_are_repaired_by_the_server(sky: Cloud, seed: dict[str, Any]) -> None:
    server1 = seed["server1"]["id"]
    central = sky.bed.central
    central.nbctl("lsp-set-port-security", server1, f"{M1} 192.168.1.138 {SPOOF}")  # someone widens it by hand
    central.nbctl("lsp-add", switch_name(seed["net"]["id"]), "intruder")
    # The server's periodic sync (every second here) puts back exactly the store's intent.
    wait_for(lambda: sky.nb_port("intruder") is None, what="the extra port removed")
    wait_for(lambda: SPOOF not in str((sky.nb_port(server1) or {}).get("port_security")), what="port_security repaired")
    sky.bed.sync()
    assert not _spoof_reaches(seed["server1_vm"], SPOOF, "192.168.1.2")


def test_ovn_sync_cli_reports_and_repairs_drift(tmp_path: Path) -> None:
    """`portsec ovn sync [--dry-run]` on the embedded database, with no server running."""
    env = {"PORTSEC_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}

    def portsec(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([server.PORTSEC, *argv], capture_output=True, text=True, env=env, timeout=60,
                              check=False)  # fmt: skip

    with ovn.bed(hypervisors=1) as bed:
        nb = ["--ovn-nb", bed.central.nb]
        assert portsec("network", "create", "net1").returncode == 0
        assert (
            portsec("subnet", "create", "--network", "net1", "--subnet-range", "192.168.1.0/24", "s1").returncode == 0
        )
        made = portsec("port", "create", "--network", "net1", "--mac-address", M1, "-c", "id", "-f", "value", "server1")
        port_id = made.stdout.strip()
        first = portsec("ovn", "sync", *nb, "-f", "value")
        assert first.returncode == 0 and f"port {port_id} missing" in first.stdout, first
        bed.central.nbctl("clear", "Logical_Switch_Port", port_id, "port_security")
        bed.central.nbctl("lsp-add", f"portsec-{_network_id(portsec)}", "intruder")
        dry = portsec("ovn", "sync", "--dry-run", *nb, "-f", "value")
        assert dry.returncode == 0, dry
        assert f"port {port_id} changed: port_security" in dry.stdout and "port intruder extra" in dry.stdout, dry
        assert bed.central.nbctl("get", "Logical_Switch_Port", port_id, "port_security").strip() == "[]", "dry run"
        fixed = portsec("ovn", "sync", *nb, "-f", "value")
        assert "port intruder extra" in fixed.stdout and "repaired" in fixed.stderr, fixed
        clean = portsec("ovn", "sync", "--dry-run", *nb)
        assert clean.stdout.strip() == "" and "matches" in clean.stderr, clean
        assert M1 in bed.central.nbctl("get", "Logical_Switch_Port", port_id, "port_security")
    away = portsec("ovn", "sync", "--ovn-nb", f"unix:{tmp_path / 'none.sock'}")
    assert away.returncode == 1 and "OVN Northbound" in away.stderr, away


def _network_id(portsec: Any) -> str:
    return str(portsec("network", "show", "net1", "-c", "id", "-f", "value").stdout.strip())


def test_nb_restart_and_wipe_are_survived(sky: Cloud, seed: dict[str, Any]) -> None:
    central = sky.bed.central
    before = {p: sky.nb_port(seed[p]["id"]) for p in ("client", "server1", "server2")}
    central.stop_db("nb")
    central.start_db("nb")
    sky.bed.sync()
    assert seed["client_vm"].ping("192.168.1.136", count=3), "traffic after an NB restart"
    central.wipe_nb()
    wait_for(lambda: all(sky.nb_port(seed[p]["id"]) for p in before), timeout=20, what="NB restored after a wipe")
    sky.bed.sync()
    after = {p: sky.nb_port(seed[p]["id"]) for p in before}
    for name in before:
        old, new = before[name], after[name]
        assert old is not None and new is not None
        assert (new["addresses"], new["port_security"], new["enabled"]) == (
            old["addresses"], old["port_security"], old["enabled"]
        ), name  # fmt: skip
    assert seed["client_vm"].ping("192.168.1.136", count=3), "traffic after NB was wiped and restored"
    assert not _spoof_reaches(seed["server1_vm"], SPOOF, "192.168.1.2"), "and port security with it"


def test_trace_answers_through_ovn(sky: Cloud, seed: dict[str, Any]) -> None:
    """`portsec trace --backend ovn` and POST /v2.0/ports/{id}/trace on an OVN server: OVN's verdict, the contract's
    words, exit 0/2/1; drops are the native agent's only, and both say so."""
    env = {"PORTSEC_DATABASE_URL": sky.database_url, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}

    def trace(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([server.PORTSEC, "trace", "--backend", "ovn", "--ovn-sb", sky.bed.central.sb, *argv],
                              capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip

    spoof = trace("server1", f"ip,nw_src={SPOOF}")
    assert spoof.returncode == 2, spoof
    assert spoof.stdout.startswith("verdict: dropped (ls_in_apply_port_sec)"), spoof.stdout
    assert f"nw_src={SPOOF}" in spoof.stdout and f"ip4.src == {SPOOF}" in spoof.stdout
    assert "--allowed-address ip-address=192.168.1.10" in spoof.stdout, "the fix, in port terms"
    own = trace("server1", "udp,tp_src=5000,tp_dst=53")
    assert own.returncode == 0 and own.stdout.startswith("verdict: forwarded"), own
    dhcp = trace("server1", "udp,tp_src=67,tp_dst=68")
    assert dhcp.returncode == 2 and "dropped (ls_in_acl)" in dhcp.stdout, dhcp
    ra = trace("server1", "icmp6,icmp_type=134,icmp_code=0,ipv6_dst=ff02::1")
    assert ra.returncode == 0 and "OVN forwards it, where portsec's contract drops it" in ra.stdout, ra
    bad = trace("server1", "ip,nw_src=not-an-address")
    assert bad.returncode == 1, bad

    answer = sky.call("POST", f"/v2.0/ports/{seed['server1']['id']}/trace",
                      {"trace": {"microflow": f"ip,nw_src={SPOOF}"}})["trace"]  # fmt: skip
    assert answer["verdict"] == "dropped" and answer["reason"] == "ls_in_apply_port_sec" and answer["ofport"] is None
    refused = sky.http.get(f"/v2.0/ports/{seed['server1']['id']}/drops")
    assert refused.status_code == 409 and "OVN" in refused.json()["NeutronError"]["message"], refused.text
    drops = subprocess.run([server.PORTSEC, "port", "drops", "server1"], capture_output=True, text=True, timeout=60,
                           env={**env, "PORTSEC_BACKEND": "ovn"}, check=False)  # fmt: skip
    assert drops.returncode == 1 and "native agent" in drops.stderr, drops


def test_each_chassis_is_an_agent_alive_while_its_ovn_controller_runs(tmp_path: Path) -> None:
    """GET /v2.0/agents lists each chassis as ML2/OVN does ("OVN Controller agent", its host); a chassis whose
    ovn-controller stops answering NB turns alive: false."""
    with cloud(tmp_path, "--report-interval", "0.5", "--agent-down-time", "2") as c:

        def agents() -> dict[str, bool]:
            listed = c.call("GET", "/v2.0/agents?agent_type=OVN Controller agent")["agents"]
            return {a["host"]: a["alive"] for a in listed if a["binary"] == "ovn-controller"}

        wait_for(lambda: agents() == {c.hv1.name: True, c.hv2.name: True}, what="both chassis alive")
        shown = c.call("GET", "/v2.0/agents?host=" + c.hv2.name)["agents"][0]
        assert shown["configurations"]["chassis_name"] == c.hv2.name and shown["agent_type"] == "OVN Controller agent"
        pid = int((c.hv2.rundir / "ovn-controller.pid").read_text())
        os.kill(pid, signal.SIGSTOP)  # hung: its Chassis row stays in SB, but it no longer catches up with NB
        try:
            wait_for(lambda: agents() == {c.hv1.name: True, c.hv2.name: False}, timeout=15, what="hv2 not alive")
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: agents()[c.hv2.name], timeout=15, what="hv2 alive again")


def test_a_stale_writer_never_overwrites_a_newer_row(tmp_path: Path) -> None:
    """Two portsec servers on one NB: the one behind in the change log (an older revision) leaves a newer row be."""
    from portsec.ovn.intent import PortIntent, SwitchIntent
    from portsec.ovn.northbound import Intent, Northbound

    with ovn.bed(hypervisors=0) as bed:
        nb = Northbound(bed.central.nb)
        try:
            switch = {switch_name("n1"): SwitchIntent(switch_name("n1"), "n1", 1, "net1")}
            newer = PortIntent("p1", "n1", (f"{M1} 10.0.0.5",), (f"{M1} 10.0.0.5 10.0.0.10",), True, 5)
            older = dataclasses.replace(newer, port_security=(f"{M1} 10.0.0.5",), revision=4)
            nb.reconcile(Intent(switch, {"p1": newer}))
            drift = nb.reconcile(Intent(switch, {"p1": older}))
            assert [str(d) for d in drift] == ["port p1: stale: NB has revision 5"]
            assert "10.0.0.10" in bed.central.nbctl("get", "Logical_Switch_Port", "p1", "port_security")
            newest = dataclasses.replace(older, revision=6)
            assert [d.found for d in nb.reconcile(Intent(switch, {"p1": newest}))] == ["changed: port_security"]
            assert "10.0.0.10" not in bed.central.nbctl("get", "Logical_Switch_Port", "p1", "port_security")
        finally:
            nb.close()


def test_portsec_restarted_restores_what_changed_while_it_was_away(tmp_path: Path) -> None:
    """Changes made while no server runs (the embedded CLI, on the same database) reach NB at the next start."""
    env = {"PORTSEC_DATABASE_URL": f"sqlite:///{tmp_path / 'away.db'}", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}

    def portsec(*argv: str) -> str:
        done = subprocess.run([server.PORTSEC, *argv], capture_output=True, text=True, env=env, timeout=60,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done
        return done.stdout.strip()

    with ovn.bed(hypervisors=1) as bed:
        args = ["--backend", "ovn", "--ovn-nb", bed.central.nb]
        portsec("network", "create", "net1")
        portsec("subnet", "create", "--network", "net1", "--subnet-range", "192.168.1.0/24", "s1")
        kept = portsec("port", "create", "--network", "net1", "-c", "id", "-f", "value", "kept")
        gone = portsec("port", "create", "--network", "net1", "-c", "id", "-f", "value", "gone")
        with server.serve(env["PORTSEC_DATABASE_URL"], args=args):
            wait_for(lambda: {kept, gone} <= _lsp_names(bed), what="both in NB")
        portsec("port", "delete", "gone")
        portsec("port", "set", "--allowed-address", "ip-address=192.168.1.10", "kept")
        with server.serve(env["PORTSEC_DATABASE_URL"], args=args):
            wait_for(lambda: gone not in _lsp_names(bed), what="the port deleted meanwhile removed")
            wait_for(
                lambda: "192.168.1.10" in bed.central.nbctl("get", "Logical_Switch_Port", kept, "port_security"),
                what="the pair added meanwhile written",
            )


def _lsp_names(bed: ovn.Bed) -> set[str]:
    return set(bed.central.nbctl("--bare", "--columns=name", "list", "Logical_Switch_Port").split())
