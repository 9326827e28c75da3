"""The seed document's use case on a real switch: keepalived moves VIP 192.168.1.10 from server1 to server2.

It works when both ports carry the pair, and does not when server2's lacks it. Meanwhile the agent learns
who holds the VIP from the ARP the servers send, and records the move as the client sees it happen.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from portsec.domain.model import Context
from portsec.service import vips
from tests import ovs
from tests.dataplane import Dataplane, wait_for
from tests.keepalived import VIP, ArpWatch, Keepalived, holds_vip

pytestmark = pytest.mark.ovs


Heard = list[tuple[float, str, str]]


def _failover(plane: Dataplane, tmp_path: Path, pair_on_server2: bool) -> tuple[bool, ovs.VM, Heard]:
    net = plane.network("net1", ["192.168.1.0/24"])
    pair = [{"ip_address": VIP}]
    client = plane.port(net, "client", "fa:16:3e:00:00:02", ["192.168.1.2"])
    server1 = plane.port(net, "server1", "fa:16:3e:3e:e3:14", ["192.168.1.138"], allowed_address_pairs=pair)
    server2 = plane.port(net, "server2", "fa:16:3e:7b:e9:03", ["192.168.1.136"],
                         allowed_address_pairs=pair if pair_on_server2 else [])  # fmt: skip
    client_vm = plane.vm(client, ["192.168.1.2/24"])
    vm1, vm2 = plane.vm(server1, ["192.168.1.138/24"]), plane.vm(server2, ["192.168.1.136/24"])
    daemons = [Keepalived(vm1, tmp_path, "MASTER", 150), Keepalived(vm2, tmp_path, "BACKUP", 100)]
    try:
        wait_for(lambda: holds_vip(vm1), timeout=15, what="server1 to become master")
        assert client_vm.ping(VIP, count=3), "the client must reach the VIP on server1"
        wait_for(lambda: _owner(plane) == server1["id"], what="the agent to see server1 hold the VIP")
        watch = ArpWatch(client_vm)
        try:
            daemons[0].stop()
            wait_for(lambda: holds_vip(vm2), timeout=15, what="server2 to take the VIP")
            time.sleep(0.5)  # keepalived's gratuitous ARPs after the takeover
            reached = client_vm.ping(VIP, count=3, wait=1.0)
        finally:
            heard = watch.stop()
        return reached, client_vm, heard
    finally:
        for d in daemons:
            d.stop()


def _owner(plane: Dataplane) -> str | None:
    with plane.db.transaction(write=False) as tx:
        found = vips.list_(tx, Context.admin(), ip_address=VIP)
    return found[0]["port_id"] if found else None


def test_failover_reaches_the_vip_on_server2_when_both_ports_have_the_pair(plane: Dataplane, tmp_path: Path) -> None:
    reached, client_vm, heard = _failover(plane, tmp_path, pair_on_server2=True)
    assert reached, "after failover the client must reach the VIP on server2"
    neighbour = client_vm.sh("ip", "neigh", "show", VIP).stdout
    assert "fa:16:3e:7b:e9:03" in neighbour, f"the VIP must now resolve to server2: {neighbour}"

    server1, server2 = (plane.client.list("port", {"name": [n]})[0] for n in ("server1", "server2"))
    wait_for(lambda: _owner(plane) == server2["id"], what="the agent to record server2 as the VIP's holder")
    with plane.db.transaction(write=False) as tx:
        (vip,) = vips.list_(tx, Context.admin(), ip_address=VIP)
    move = vip["history"][0]
    assert (move["port_id"], move["previous_port_id"]) == (server2["id"], server1["id"])
    first_garp = min(at for at, mac, ip in heard if mac == server2["mac_address"] and ip == VIP)
    moved_at = datetime.fromisoformat(move["at"]).timestamp()
    assert abs(moved_at - first_garp) < 0.1, (
        f"move recorded {moved_at - first_garp:+.3f} s from the client's first GARP"
    )


def test_failover_fails_when_server2_lacks_the_pair(plane: Dataplane, tmp_path: Path) -> None:
    reached, _, _ = _failover(plane, tmp_path, pair_on_server2=False)
    assert not reached, "server2 may not answer for the VIP without the pair"
    server2 = plane.client.list("port", {"name": ["server2"]})[0]
    assert plane.drops(server2)["arp"] > 0, "server2's ARP for the VIP must be counted as dropped"
