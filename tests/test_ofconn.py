"""The agent's own OpenFlow 1.4 encoder, checked against a real switch: what it installs reads back as compiled."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from portsec.agent.ofconn import OpenFlowConnection, OpenFlowError
from portsec.guards import guard_from_view
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import flow, parse_dump_line
from portsec.openflow.pipeline import bridge_flows
from tests import ovs

pytestmark = pytest.mark.ovs


def _port(n: int, mac: str, fixed: list[str], pairs: list[tuple[str, str]], **extra: object) -> dict[str, object]:
    return {
        "id": f"{n:08x}-0000-4000-8000-000000000000", "network_id": "net", "mac_address": mac,
        "port_security_enabled": True, "device_owner": "", "fixed_ips": [{"ip_address": ip} for ip in fixed],
        "allowed_address_pairs": [{"mac_address": m, "ip_address": ip} for m, ip in pairs], **extra,
    }  # fmt: skip


PORTS = [
    _port(1, "fa:16:3e:3e:e3:14", ["192.168.1.138", "2001:db8:1::138"],
          [("fa:16:3e:3e:e3:14", "192.168.1.10"), ("00:00:5e:00:01:0a", "10.0.0.0/24"),
           ("fa:16:3e:3e:e3:14", "2001:db8:9::/64"), ("fa:16:3e:3e:e3:14", "0.0.0.0/0")]),
    _port(2, "fa:16:3e:7b:e9:03", ["192.168.1.136"], [], port_security_enabled=False),
    _port(3, "fa:16:3e:00:00:03", ["192.168.1.1"], [], device_owner="network:router_interface"),
]  # fmt: skip


@pytest.fixture(scope="module")
def sw() -> Iterator[ovs.Switch]:
    assert ovs.available(), "these tests need Open vSwitch and root (.ci/run installs it)"
    with ovs.switch(bridge=f"brpsofc{os.getpid() % 100000}") as switch:
        yield switch


def _installed(sw: ovs.Switch) -> set[object]:
    return {f for f in map(parse_dump_line, sw.ofctl("dump-flows", sw.bridge).splitlines()) if f}


def test_bundles_install_and_delete_exactly_the_compiled_flows(sw: ovs.Switch) -> None:
    compiled = [f for n, p in enumerate(PORTS, 1) for f in compile_port_flows(guard_from_view(p), n)]
    wanted = {*compiled, *bridge_flows()}
    conn = OpenFlowConnection(str(sw.rundir / f"{sw.bridge}.mgmt"))
    try:
        conn.bundle([], sorted(wanted, key=str))
        assert _installed(sw) == wanted
        first = compile_port_flows(guard_from_view(PORTS[0]), 1)
        conn.bundle(first, [])
        assert _installed(sw) == wanted - set(first)
    finally:
        conn.close()


def test_a_refused_bundle_changes_nothing(sw: ovs.Switch) -> None:
    conn = OpenFlowConnection(str(sw.rundir / f"{sw.bridge}.mgmt"))
    before = _installed(sw)
    good = flow(60, 7, "NORMAL", 0x1, "ip", nw_src="10.9.9.9")
    bad = flow(24, 7, "goto_table:3", 0x1, "arp")  # a goto backwards: the switch refuses it
    try:
        with pytest.raises(OpenFlowError, match="refused"):
            conn.bundle([], [good, bad])
        assert _installed(sw) == before, "an atomic bundle that fails must leave the table as it was"
        conn.bundle([], [good])  # the connection is still good for the next one
        assert good in _installed(sw)
    finally:
        conn.close()


def test_every_field_of_the_registry_and_every_action_it_encodes_reads_back_from_the_switch(sw: ovs.Switch) -> None:
    mac, mac2 = "fa:16:3e:00:00:01", "fa:16:3e:00:00:02"
    written = [
        flow(70, 1, "NORMAL", 0x1, in_port="3", dl_src=mac, dl_dst=mac2, vlan_tci="0x1000/0x1000"),
        flow(70, 2, "output:3", 0x1, dl_type="0x88cc", dl_src="01:00:00:00:00:00/01:00:00:00:00:00"),
        flow(70, 3, "output:3,goto_table:72", 0x1, "ip", nw_proto="47", nw_src="10.0.0.0/8", nw_dst="10.1.2.3"),
        flow(70, 4, "goto_table:71", 0x1, "tcp", tp_src="22", tp_dst="80"),
        flow(70, 5, "NORMAL,goto_table:71", 0x1, "udp6", tp_src="547", tp_dst="546", ipv6_dst="ff02::1:2"),
        flow(70, 6, "drop", 0x1, "arp", arp_op="2", arp_spa="10.0.0.1", arp_tpa="10.0.0.0/24", arp_sha=mac,
             arp_tha=mac2),
        flow(71, 7, "NORMAL", 0x1, "icmp", icmp_type="8", icmp_code="0"),
        flow(71, 8, "NORMAL", 0x1, "icmp6", ipv6_src="2001:db8::/64", icmp_type="135", nd_target="2001:db8::1",
             nd_sll=mac),
        flow(71, 9, "NORMAL", 0x1, "icmp6", icmp_type="136", nd_target="2001:db8::1", nd_tll=mac),
    ]  # fmt: skip
    conn = OpenFlowConnection(str(sw.rundir / f"{sw.bridge}.mgmt"))
    try:
        conn.bundle([], written)
        installed = _installed(sw)
        assert set(written) <= installed, sorted(map(str, set(written) - installed))
        conn.bundle(written, [])
        assert not set(written) & _installed(sw)
    finally:
        conn.close()
