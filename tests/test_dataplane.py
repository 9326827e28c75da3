"""The protection contract on a real Open vSwitch: the seed scenario with namespaces as VMs.

server1 (fa:16:3e:3e:e3:14, 192.168.1.138), server2 (fa:16:3e:7b:e9:03,
192.168.1.136) and a client (192.168.1.2) on net1, as in the seed document,
with IPv6 addresses too. Every row of DESIGN.md §4 is tried with a crafted
frame, and the drop must be counted under its reason.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pytest
from scapy.layers.l2 import ARP, Ether

from portsec.agent.ofctl import Bridge
from portsec.service import sources
from tests import ovs
from tests.dataplane import Dataplane, wait_for
from tests.frames import BCAST, M1, M2, MC, OTHER_MAC, contract_rows

pytestmark = pytest.mark.ovs


@pytest.fixture
def seed(plane: Dataplane) -> dict[str, Any]:
    net = plane.network("net1", ["192.168.1.0/24", "2001:db8:1::/64"])
    client = plane.port(net, "client", MC, ["192.168.1.2", "2001:db8:1::2"])
    server1 = plane.port(net, "server1", M1, ["192.168.1.138", "2001:db8:1::138"])
    server2 = plane.port(net, "server2", M2, ["192.168.1.136"])
    return {
        "net": net,
        "client": client,
        "server1": server1,
        "server2": server2,
        "client_vm": plane.vm(client, ["192.168.1.2/24", "2001:db8:1::2/64"]),
        "server1_vm": plane.vm(server1, ["192.168.1.138/24", "2001:db8:1::138/64"]),
        "server2_vm": plane.vm(server2, ["192.168.1.136/24"]),
    }


def test_normal_traffic_passes_and_ports_become_active(plane: Dataplane, seed: dict[str, Any]) -> None:
    client = seed["client_vm"]
    assert client.ping("192.168.1.138")
    assert client.ping("2001:db8:1::138")
    assert client.ping("192.168.1.136")
    # TCP end to end (checksums offload is off on the veths, as the userspace datapath needs).
    server = seed["server1_vm"]
    listener = subprocess.Popen(
        ["ip", "netns", "exec", server.name, "python3", "-c",
         "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
         "s.bind(('192.168.1.138', 8080)); s.listen(); c,_=s.accept(); c.sendall(c.recv(100).upper()); c.close()"],
    )  # fmt: skip
    try:
        time.sleep(0.3)
        reply = client.sh(
            "python3", "-c",
            "import socket; s=socket.create_connection(('192.168.1.138', 8080), timeout=5); s.sendall(b'hello');"
            "print(s.recv(100).decode())",
        )  # fmt: skip
        assert reply.stdout.strip() == "HELLO"
    finally:
        listener.kill()
        listener.wait()
    shown = plane.client.get("port", seed["server1"]["id"])
    assert (shown["status"], shown["binding:host_id"]) == ("ACTIVE", "test-host")


def test_vip_is_dropped_without_the_pair_and_passes_with_it(plane: Dataplane, seed: dict[str, Any]) -> None:
    client, server1 = seed["client_vm"], seed["server1_vm"]
    server1.sh("ip", "addr", "add", "192.168.1.10/32", "dev", "eth0")
    before = plane.drops(seed["server1"])
    assert not client.ping("192.168.1.10")
    after = plane.drops(seed["server1"])
    assert after["arp"] > before["arp"], "server1's ARP replies for the VIP must be dropped as ARP spoofing"

    plane.update(seed["server1"], allowed_address_pairs=[{"ip_address": "192.168.1.10"}])
    plane.converged(seed["server1"])
    client.sh("ip", "neigh", "flush", "dev", "eth0")
    assert client.ping("192.168.1.10")


def test_every_contract_row_gets_its_verdict_and_reason(plane: Dataplane, seed: dict[str, Any]) -> None:
    server1, port = seed["server1_vm"], seed["server1"]
    wrong = []
    for what, frame, reason in contract_rows():
        before, allowed = plane.drops(port), plane.allowed(port)
        plane.send(server1, bytes(frame))
        after = plane.drops(port)
        delta = {r: after[r] - before[r] for r in after if after[r] != before[r]}
        expected = {reason: 1} if reason else {}
        if delta != expected or (reason is None and plane.allowed(port) <= allowed):
            wrong.append(f"{what}: expected {expected or 'to pass'}, counted {delta or 'no drop'}")
    assert not wrong, "\n".join(wrong)


def test_port_security_off_lets_spoofing_through(plane: Dataplane, seed: dict[str, Any]) -> None:
    client, server1 = seed["client_vm"], seed["server1_vm"]
    server1.sh("ip", "addr", "add", "192.168.1.10/32", "dev", "eth0")
    assert not client.ping("192.168.1.10")
    plane.update(seed["server1"], port_security_enabled=False)
    plane.converged(seed["server1"])
    client.sh("ip", "neigh", "flush", "dev", "eth0")
    assert client.ping("192.168.1.10")
    flows = plane.sw.ofctl("dump-flows", plane.sw.bridge, f"in_port={seed['server1_vm'].ofport}")
    assert "drop" not in flows, "no flow may drop a port's packets when its port security is off"


def test_port_security_off_counts_what_strict_mode_would_drop_and_samples_the_sources(
    plane: Dataplane, seed: dict[str, Any]
) -> None:
    """Audit mode: the contract's frames from server1 with its port security off all pass, yet each one strict
    mode would drop is counted under that reason, and its source is sampled for `port set --dry-run`."""
    server1, port = seed["server1_vm"], seed["server1"]
    plane.update(port, port_security_enabled=False)
    plane.converged(port)
    wrong = []
    for what, frame, reason in contract_rows():
        before = plane.drops(port)
        plane.send(server1, bytes(frame))
        after = plane.drops(port)
        delta = {r: after[r] - before[r] for r in after if after[r] != before[r]}
        if delta != ({reason: 1} if reason else {}):
            wrong.append(f"{what}: expected { ({reason: 1} if reason else 'nothing') } counted, counted {delta}")
    assert not wrong, "\n".join(wrong)
    client = seed["client_vm"]
    server1.sh("ip", "addr", "add", "192.168.1.10/32", "dev", "eth0")
    assert client.ping("192.168.1.10"), "an audited port's spoofed address must still answer"

    def sampled() -> list[dict[str, Any]]:
        with plane.db.transaction(write=False) as tx:
            return sources.of_port(tx, port["id"])

    wait_for(lambda: any(s["ip_address"] == "192.168.1.10" for s in sampled()), what="the spoofed source sampled")
    seen = {(s["reason"], s["mac_address"], s["ip_address"]) for s in sampled()}
    assert {("ipv4-source", M1, "192.168.1.99"), ("mac", OTHER_MAC, "192.168.1.138"),
            ("ipv4-source", M1, "192.168.1.10")} <= seen  # fmt: skip
    suggested = sources.suggested_pairs(plane.client.get("port", port["id"]), sampled())
    assert {"ip_address": "192.168.1.10"} in suggested and {"ip_address": "192.168.1.99"} in suggested


def test_ports_on_two_networks_cannot_reach_each_other(plane: Dataplane, seed: dict[str, Any]) -> None:
    net2 = plane.network("net2", ["192.168.1.0/24"])  # the same range: only the network keeps them apart
    other = plane.port(net2, "other", "fa:16:3e:00:00:50", ["192.168.1.50"])
    other_vm = plane.vm(other, ["192.168.1.50/24"])
    assert not seed["client_vm"].ping("192.168.1.50")
    assert not other_vm.ping("192.168.1.2")
    neighbour = plane.port(net2, "neighbour", "fa:16:3e:00:00:51", ["192.168.1.51"])
    assert plane.vm(neighbour, ["192.168.1.51/24"]).ping("192.168.1.50")


def test_an_interface_of_no_known_port_is_dropped(plane: Dataplane, seed: dict[str, Any]) -> None:
    stranger = {"id": "00000000-0000-4000-8000-000000000000", "mac_address": "fa:16:3e:00:00:66"}
    machine = plane.stack.enter_context(ovs.vm(plane.sw, stranger["id"], stranger["mac_address"], ["192.168.1.66/24"]))
    assert not machine.ping("192.168.1.2")
    plane.sw.revalidate()
    table0 = plane.sw.ofctl("dump-flows", plane.sw.bridge, "table=0")
    assert re.search(r"n_packets=[1-9]\d*, .*priority=0 actions=drop", table0), "the fail-closed drop must count them"


def test_port_delete_removes_its_flows_and_unplug_sets_down(plane: Dataplane, seed: dict[str, Any]) -> None:
    server2, vm = seed["server2"], seed["server2_vm"]
    plane.sw.vsctl("del-port", plane.sw.bridge, vm.tap)
    wait_for(lambda: plane.client.get("port", server2["id"])["status"] == "DOWN", what="server2 DOWN")
    assert f"in_port={vm.ofport}," not in plane.sw.ofctl("dump-flows", plane.sw.bridge)
    plane.client.delete("port", seed["server1"]["id"])
    wait_for(lambda: seed["server1"]["id"] not in plane.agent.table.by_owner, what="server1's flows removed")
    assert f"in_port={seed['server1_vm'].ofport}," not in plane.sw.ofctl("dump-flows", plane.sw.bridge)
    assert not seed["client_vm"].ping("192.168.1.138")


def test_agent_restart_loses_no_packet_and_removes_stale_flows(plane: Dataplane, seed: dict[str, Any]) -> None:
    client = seed["client_vm"]
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", client.name, "ping", "-q", "-i", "0.01", "-c", "300", "192.168.1.138"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    plane.stop_agent()
    # While the agent is away, a pair is removed: the restarted agent must take its flows away.
    plane.update(seed["server2"], allowed_address_pairs=[{"ip_address": "192.168.1.20"}])
    plane.start_agent()
    plane.converged(seed["server2"])
    plane.update(seed["server2"], allowed_address_pairs=[])
    plane.stop_agent()
    plane.start_agent()
    out, _ = pinger.communicate(timeout=30)
    assert " 0% packet loss" in out, out
    plane.converged(seed["server2"])
    assert "192.168.1.20" not in plane.sw.ofctl("dump-flows", plane.sw.bridge)


def test_a_full_sync_removes_flows_it_did_not_install(plane: Dataplane, seed: dict[str, Any]) -> None:
    """The bridge's tables are portsec's: a flow added by hand (here one that would let a spoofed source
    through) is gone after the next full sync, which adds every flow and then finds one too many."""
    bridge = Bridge(plane.sw.bridge, str(plane.sw.rundir))
    assert bridge.flow_count() == len(plane.agent.table.installed)
    stray = f"table=25,priority=99,ip,in_port={seed['server1_vm'].ofport},nw_src=192.168.1.99 actions=goto_table:60"
    plane.sw.ofctl("add-flow", plane.sw.bridge, stray)
    assert bridge.flow_count() == len(plane.agent.table.installed) + 1
    plane.stop_agent()
    plane.start_agent()
    wait_for(lambda: "192.168.1.99" not in plane.sw.ofctl("dump-flows", plane.sw.bridge), what="the stray flow gone")
    assert bridge.flow_count() == len(plane.agent.table.installed)


def test_agent_restart_keeps_the_drop_counters(plane: Dataplane, seed: dict[str, Any]) -> None:
    """A full sync re-adds flows the switch already holds: they keep their counters, so `port drops` does too."""
    frame = next(frame for what, frame, _ in contract_rows() if what == "IPv4 source not bound")
    plane.send(seed["server1_vm"], bytes(frame))
    assert plane.drops(seed["server1"])["ipv4-source"] == 1
    plane.stop_agent()
    plane.start_agent()
    assert plane.drops(seed["server1"])["ipv4-source"] == 1


def test_open_vswitch_restart_gets_the_flows_back(plane: Dataplane, seed: dict[str, Any]) -> None:
    plane.sw.restart_vswitchd()
    wait_for(lambda: "nw_src=192.168.1.138" in plane.sw.ofctl("dump-flows", plane.sw.bridge), what="flows back")
    assert seed["client_vm"].ping("192.168.1.138", count=3)
    seed["server1_vm"].sh("ip", "addr", "add", "192.168.1.10/32", "dev", "eth0")
    assert not seed["client_vm"].ping("192.168.1.10"), "after a restart the switch must still fail closed"


def test_vip_announcements_are_heard_again_after_open_vswitch_restarts(plane: Dataplane, seed: dict[str, Any]) -> None:
    """The copies' connection and meters come back with the flows: the VIP's next holder is still recorded."""
    vip = "192.168.1.10"
    for name in ("server1", "server2"):
        plane.converged(plane.update(seed[name], allowed_address_pairs=[{"ip_address": vip}]))

    def announce(name: str) -> None:
        mac = seed[name]["mac_address"]
        plane.send(seed[f"{name}_vm"], bytes(Ether(src=mac, dst=BCAST) / ARP(hwsrc=mac, psrc=vip, pdst=vip)))

    def holder() -> str | None:
        return plane.agent.vip_owners.get((seed["net"]["id"], vip), (None,))[0]

    announce("server1")
    wait_for(lambda: holder() == seed["server1"]["id"], what="server1 recorded as the VIP's holder")
    plane.sw.restart_vswitchd()
    wait_for(lambda: "meter=1" in plane.sw.ofctl("dump-meters", plane.sw.bridge), what="the meters back")
    # keepalived repeats its announcements; so does this, until the flows are back and one is heard
    wait_for(lambda: announce("server2") or holder() == seed["server2"]["id"], what="server2 recorded as holder")


def test_a_disabled_port_sends_nothing_and_is_down(plane: Dataplane, seed: dict[str, Any]) -> None:
    client, server1 = seed["client_vm"], seed["server1"]
    plane.update(server1, admin_state_up=False)
    wait_for(lambda: plane.client.get("port", server1["id"])["status"] == "DOWN", what="server1 DOWN")
    before = plane.drops(server1)["admin-down"]
    assert not client.ping("192.168.1.138")
    assert plane.drops(server1)["admin-down"] > before, "server1's replies must be counted as admin-down drops"
    plane.update(server1, admin_state_up=True)
    plane.converged(server1)
    assert client.ping("192.168.1.138")


def test_an_ovsdb_restart_is_followed(plane: Dataplane, seed: dict[str, Any]) -> None:
    plane.sw.restart_ovsdb()
    late = plane.port(seed["net"], "late", "fa:16:3e:00:00:77", ["192.168.1.77"])
    late_vm = plane.vm(late, ["192.168.1.77/24"])  # plugged after the restart: the agent must see it
    assert late_vm.ping("192.168.1.2")
    assert seed["client_vm"].ping("192.168.1.138"), "the ports from before keep their flows"
