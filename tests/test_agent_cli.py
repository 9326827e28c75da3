"""The agent as a user starts it: `portsec serve --agent`, `portsec agent --once`, `portsec port drops`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import ovs, postgres
from tests.dataplane import dataplane, wait_for
from tests.server import free_port

pytestmark = pytest.mark.ovs
PORTSEC = str(Path(sys.executable).with_name("portsec"))


def portsec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PORTSEC, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_serve_with_agent_enforces_what_the_api_says(sw: ovs.Switch, tmp_path: Path) -> None:
    env = {**os.environ, "OVS_RUNDIR": str(sw.rundir), "PORTSEC_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    port = free_port()
    proc = subprocess.Popen([PORTSEC, "serve", "--port", str(port), "--agent"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v2.0"
    try:
        wait_for(lambda: _up(url), what="portsec serve --agent")
        api = httpx.Client(base_url=url)
        net = api.post("/networks", json={"network": {"name": "net1"}}).json()["network"]
        api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "192.168.1.0/24", "ip_version": 4}})
        made = []
        for name, mac, ip in (("client", "fa:16:3e:00:00:02", "192.168.1.2"),
                              ("server1", "fa:16:3e:3e:e3:14", "192.168.1.138")):  # fmt: skip
            body = {"network_id": net["id"], "name": name, "mac_address": mac, "fixed_ips": [{"ip_address": ip}]}
            made.append(api.post("/ports", json={"port": body}).json()["port"])
        client, server1 = made
        with ovs.vm(sw, client["id"], client["mac_address"], ["192.168.1.2/24"]) as client_vm, \
                ovs.vm(sw, server1["id"], server1["mac_address"], ["192.168.1.138/24"]) as server1_vm:  # fmt: skip
            wait_for(lambda: api.get(f"/ports/{server1['id']}").json()["port"]["status"] == "ACTIVE", what="ACTIVE")
            assert client_vm.ping("192.168.1.138")
            server1_vm.sh("ip", "addr", "add", "192.168.1.10/32", "dev", "eth0")
            assert not client_vm.ping("192.168.1.10")
            pair = {"port": {"allowed_address_pairs": [{"ip_address": "192.168.1.10"}]}}
            assert api.put(f"/ports/{server1['id']}", json=pair).status_code == 200
            wait_for(lambda: "arp_spa=192.168.1.10" in sw.ofctl("dump-flows", sw.bridge), what="the pair's flows")
            client_vm.sh("ip", "neigh", "flush", "dev", "eth0")
            assert client_vm.ping("192.168.1.10")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "enforcing on br-int" in err


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/networks", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_agent_once_programs_the_bridge_and_drops_reads_the_counters(sw: ovs.Switch, tmp_path: Path) -> None:
    env = {**os.environ, "OVS_RUNDIR": str(sw.rundir), "PORTSEC_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    assert portsec(env, "network", "create", "net1").returncode == 0
    assert (
        portsec(env, "subnet", "create", "--network", "net1", "--subnet-range", "192.168.1.0/24", "s1").returncode == 0
    )
    made = portsec(env, "port", "create", "--network", "net1", "--mac-address", "fa:16:3e:3e:e3:14",
                   "--fixed-ip", "subnet=s1,ip-address=192.168.1.138", "server1", "-f", "value", "-c", "id")  # fmt: skip
    port_id = made.stdout.strip()
    with ovs.vm(sw, port_id, "fa:16:3e:3e:e3:14", ["192.168.1.138/24"]) as vm:
        once = portsec(env, "agent", "--once")
        assert once.returncode == 0, once.stderr
        assert re.search(r"synced \d+ flows on br-int", once.stdout)
        assert f"in_port={vm.ofport},dl_src=fa:16:3e:3e:e3:14" in sw.ofctl("dump-flows", sw.bridge)
        vm.sh("ip", "addr", "add", "192.168.1.99/24", "dev", "eth0")
        # The kernel asks for 192.168.1.1 as 192.168.1.99, the source of the ping: a spoofed ARP.
        vm.sh("ping", "-c", "1", "-W", "2", "-I", "192.168.1.99", "192.168.1.1", check=False)
        sw.revalidate()
        drops = portsec(env, "port", "drops", "server1", "-f", "value")
        assert drops.returncode == 0, drops.stderr
        counts = dict(line.split() for line in drops.stdout.splitlines())
        assert int(counts["arp"]) >= 1, drops.stdout
        assert set(counts) == {
            "mac",
            "ipv4-source",
            "ipv6-source",
            "arp",
            "nd",
            "dhcp-server",
            "ra",
            "vlan",
            "ethertype",
            "admin-down",
        }
        shown = portsec(env, "port", "show", "server1", "-f", "value", "-c", "status")
        assert shown.stdout.strip() == "ACTIVE"


@pytest.mark.postgresql
def test_agent_on_postgresql_wakes_on_notify_from_another_process(
    sw: ovs.Switch, tmp_path: Path, postgres_url: str
) -> None:
    url = postgres.fresh_database(postgres_url, "agent_notify")
    # Polling once a minute: only the NOTIFY of the other process's commit can wake the agent in time.
    with dataplane(tmp_path, sw, url=url, poll_interval=60) as plane:
        net = plane.network("net1", ["192.168.1.0/24"])
        server1 = plane.port(net, "server1", "fa:16:3e:3e:e3:14", ["192.168.1.138"])
        plane.vm(server1, ["192.168.1.138/24"])
        env = {**os.environ, "PORTSEC_DATABASE_URL": url}
        done = portsec(env, "port", "set", "server1", "--allowed-address", "ip-address=192.168.1.10")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: "arp_spa=192.168.1.10" in sw.ofctl("dump-flows", sw.bridge), timeout=10, what="NOTIFY")
