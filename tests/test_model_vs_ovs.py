"""The switch model and a real Open vSwitch agree: same flows in, same verdicts out.

The compiler's flows for five ports go into a private br-int with one atomic
``ovs-ofctl --bundle add-flows``; for a sample covering every row of the
DESIGN.md §4 table, the model's verdict must equal the contract's and
``ovs-appctl ofproto/trace``'s ("Datapath actions: drop" or not).

ofproto/trace does need the in_port to exist: NORMAL drops a packet from an
unknown port ("no input bundle"). Each ofport is therefore a patch port whose
peer does not exist: an OpenFlow port with no kernel device and no traffic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from portsec.guards import guard_from_view
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import parse_dump_line
from portsec.openflow.model import SwitchModel
from portsec.openflow.packet import make_packet
from portsec.openflow.pipeline import bridge_flows
from tests import ovs
from tests.contract import Spec, contract

pytestmark = pytest.mark.ovs

S1, S1_MAC, OTHER_MAC = 5, "fa:16:3e:3e:e3:14", "fa:16:3e:00:00:11"
V6, V6_MAC = 6, "fa:16:3e:7b:e9:03"
ANY, OFF, TRUSTED, UNPLUGGED = 7, 8, 9, 10
S1_LL, V6_LL = "fe80::f816:3eff:fe3e:e314", "fe80::f816:3eff:fe7b:e903"


def _view(n: int, mac: str, fixed: list[str], pairs: list[tuple[str, str]], **extra: object) -> dict:
    return {"id": f"{n:08x}-5b7e-4c1f-9d7a-2f1e0c9b8a71", "name": f"p{n}", "network_id": "net1", "mac_address": mac,
            "port_security_enabled": True, "device_owner": "compute:nova",
            "fixed_ips": [{"ip_address": ip} for ip in fixed],
            "allowed_address_pairs": [{"mac_address": m, "ip_address": ip} for m, ip in pairs], **extra}  # fmt: skip


PORTS = {
    S1: _view(
        1, S1_MAC, ["192.168.1.138"], [(S1_MAC, "192.168.1.10"), (OTHER_MAC, "192.168.1.11"), (S1_MAC, "10.1.0.0/24")]
    ),
    V6: _view(2, V6_MAC, ["192.168.1.136", "2001:db8::136"], [(V6_MAC, "2001:db8:1::/64")]),
    ANY: _view(3, "fa:16:3e:00:00:77", [], [("fa:16:3e:00:00:77", "0.0.0.0/0"), ("fa:16:3e:00:00:77", "::/0")]),
    OFF: _view(4, "fa:16:3e:00:00:88", ["192.168.1.88"], [], port_security_enabled=False),
    TRUSTED: _view(5, "fa:16:3e:00:00:99", ["192.168.1.1"], [], device_owner="network:router_interface"),
}


def _case(ofport: int, text: str) -> Spec:
    protocol, _, rest = text.partition(",") if "=" not in text.split(",")[0] else ("", "", text)
    fields = [tuple(p.split("=", 1)) for p in rest.split(",") if p]
    return Spec(protocol or None, (("in_port", str(ofport)), *fields), "sample")  # type: ignore[arg-type]


S1_SRC, V6_SRC = f"dl_src={S1_MAC}", f"dl_src={V6_MAC}"
SAMPLE = [
    # source MAC, VLAN, ethertype
    (S1, f"ip,dl_src={OTHER_MAC},nw_src=192.168.1.11"),  # a pair's MAC with its IP
    (S1, f"ip,dl_src={OTHER_MAC},nw_src=192.168.1.138"),  # a pair's MAC with another binding's IP
    (S1, "ip,dl_src=fa:16:3e:de:ad:01,nw_src=192.168.1.138"),
    (S1, "ip,dl_src=01:00:5e:00:00:01,nw_src=192.168.1.138"),
    (S1, f"ip,{S1_SRC},vlan_tci=0x1005,nw_src=192.168.1.138"),
    (V6, f"icmp6,{V6_SRC},vlan_tci=0x1000,ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=128"),
    (S1, f"{S1_SRC},dl_type=0x88cc"),
    (ANY, "dl_src=fa:16:3e:00:00:77,dl_type=0x8847"),
    # IPv4 sources, CIDRs, DHCP
    (S1, f"ip,{S1_SRC},nw_src=192.168.1.138"),
    (S1, f"tcp,{S1_SRC},nw_src=192.168.1.10,tp_src=1234,tp_dst=80"),
    (S1, f"udp,{S1_SRC},nw_src=10.1.0.77,tp_src=1234,tp_dst=53"),
    (S1, f"ip,{S1_SRC},nw_src=10.1.1.77"),
    (S1, f"ip,{S1_SRC},nw_src=192.168.1.11"),  # bound, but to the other MAC
    (S1, f"udp,{S1_SRC},nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67"),
    (S1, f"udp,{S1_SRC},nw_src=192.168.1.138,nw_dst=255.255.255.255,tp_src=67,tp_dst=68"),
    (ANY, "ip,dl_src=fa:16:3e:00:00:77,nw_src=203.0.113.9"),
    (ANY, "udp,dl_src=fa:16:3e:00:00:77,nw_src=203.0.113.9,tp_src=67,tp_dst=68"),
    # ARP
    (S1, f"arp,{S1_SRC},arp_op=1,arp_spa=192.168.1.138,arp_sha={S1_MAC}"),
    (S1, f"arp,{S1_SRC},arp_op=2,arp_spa=192.168.1.10,arp_sha={S1_MAC}"),
    (S1, f"arp,{S1_SRC},arp_op=1,arp_spa=192.168.1.99,arp_sha={S1_MAC}"),
    (S1, f"arp,{S1_SRC},arp_op=1,arp_spa=192.168.1.138,arp_sha={OTHER_MAC}"),
    (S1, f"arp,dl_src={OTHER_MAC},arp_op=1,arp_spa=192.168.1.11,arp_sha={OTHER_MAC}"),
    (S1, f"arp,{S1_SRC},arp_op=1,arp_spa=192.168.1.11,arp_sha={S1_MAC}"),
    (S1, f"arp,{S1_SRC},arp_op=1,arp_spa=0.0.0.0,arp_sha={S1_MAC}"),
    (S1, f"arp,{S1_SRC},arp_op=1,arp_spa=10.1.0.5,arp_sha={S1_MAC}"),
    # IPv6 sources, neighbor discovery, DHCPv6, RA
    (V6, f"ipv6,{V6_SRC},ipv6_src=2001:db8::136"),
    (V6, f"tcp6,{V6_SRC},ipv6_src=2001:db8:1::42,tp_src=1234,tp_dst=22"),
    (V6, f"ipv6,{V6_SRC},ipv6_src=2001:db8:2::42"),
    (S1, f"icmp6,{S1_SRC},ipv6_src={S1_LL},ipv6_dst=ff02::1,icmp_type=128"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=136,nd_target=2001:db8::136,nd_tll={V6_MAC}"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=136,nd_target=2001:db8:1::9"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=136,nd_target=2001:db8::137"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=136,nd_target=2001:db8::136,nd_tll={S1_MAC}"),
    (V6, f"icmp6,{V6_SRC},ipv6_src=2001:db8:9::1,ipv6_dst=ff02::1,icmp_type=136,nd_target=2001:db8::136"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1:ff00:136,icmp_type=135,nd_target=2001:db8::136"),
    (V6, f"icmp6,{V6_SRC},ipv6_src=::,ipv6_dst=ff02::1:ff00:136,icmp_type=135,nd_target=2001:db8::136"),
    (V6, f"icmp6,{V6_SRC},ipv6_src=::,ipv6_dst=ff02::16,icmp_type=143"),
    (V6, f"icmp6,{V6_SRC},ipv6_src=::,ipv6_dst=2001:db8::1,icmp_type=135,nd_target=2001:db8::136"),
    (V6, f"udp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1:2,tp_src=546,tp_dst=547"),
    (V6, f"udp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,tp_src=547,tp_dst=546"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=134"),
    (V6, f"icmp6,{V6_SRC},ipv6_src={V6_LL},ipv6_dst=ff02::1,icmp_type=137"),
    (
        ANY,
        "icmp6,dl_src=fa:16:3e:00:00:77,ipv6_src=2001:db8:7::7,ipv6_dst=ff02::1,icmp_type=136,nd_target=2001:db8:7::7",
    ),
    # no anti-spoofing
    (OFF, "ip,dl_src=fa:16:3e:de:ad:02,nw_src=203.0.113.1,vlan_tci=0x1007"),
    (OFF, "udp,dl_src=fa:16:3e:00:00:88,nw_src=192.168.1.88,tp_src=67,tp_dst=68"),
    (TRUSTED, "icmp6,dl_src=fa:16:3e:00:00:99,ipv6_src=fe80::1,ipv6_dst=ff02::1,icmp_type=134"),
    (TRUSTED, "arp,dl_src=fa:16:3e:00:00:99,arp_op=2,arp_spa=192.168.1.254,arp_sha=fa:16:3e:00:00:01"),
]
ROWS = {"vlan", "multicast-mac", "mac", "ethertype", "ipv4", "dhcp-client", "dhcp-server", "arp", "arp-sha",
        "arp-probe", "ipv6", "na", "na-target", "na-tll", "dad-mld", "ra", "unprotected"}  # fmt: skip


def _ovs_text(spec: Spec) -> str:
    """ofproto/trace reads an exact flow: ICMPv6 type as icmpv6_type, ports as udp_src, tcp_dst ..."""
    text = spec.text()
    if spec.protocol == "icmp6":
        text = text.replace("icmp_type=", "icmpv6_type=")
    if spec.protocol in ("udp", "udp6", "tcp", "tcp6"):
        transport = spec.protocol.rstrip("6")
        text = text.replace("tp_src=", f"{transport}_src=").replace("tp_dst=", f"{transport}_dst=")
    return text


def require_bridge(sw: ovs.Switch) -> None:
    """Fail with the cause when vswitchd could not open the bridge's userspace datapath.

    Its tap devices (``ovs-netdev``, the bridge's own) live in the host's namespace, so a
    second private switch started while another runs on the same host cannot open them.
    """
    log = (sw.rundir / "ovs-vswitchd.log").read_text()
    if f"failed to create bridge {sw.bridge}" in log:
        errors = [line for line in log.splitlines() if "|WARN|" in line or "|ERR|" in line]
        pytest.fail(f"Open vSwitch could not create {sw.bridge} (is another ovs-vswitchd with a userspace datapath "
                    "running on this host?):\n" + "\n".join(errors[-4:]))  # fmt: skip


@contextmanager
def _bridge_deleted(sw: ovs.Switch) -> Iterator[None]:
    require_bridge(sw)
    try:
        yield
    finally:
        with suppress(RuntimeError):
            sw.vsctl("--if-exists", "del-br", sw.bridge)


def test_the_sample_covers_every_row_of_the_contract():
    rows = {contract(PORTS[ofport], _case(ofport, text))[1] for ofport, text in SAMPLE}
    assert rows == ROWS
    verdicts = [contract(PORTS[ofport], _case(ofport, text))[0] for ofport, text in SAMPLE]
    assert 15 < verdicts.count(False) < len(verdicts) - 15


def test_the_model_agrees_with_ofproto_trace_on_a_real_bridge():
    if not ovs.available():
        pytest.fail("this test needs Open vSwitch (Debian openvswitch-switch: ovs-vswitchd on PATH) and root")
    flows = [f for ofport, view in PORTS.items() for f in compile_port_flows(guard_from_view(view), ofport)]
    model = SwitchModel([*flows, *bridge_flows()])
    # A bridge name of our own: a netdev bridge's internal port is a tap device in the host's namespace,
    # and another private switch's br-int may hold that name right now. Deleted before the switch stops.
    with ovs.switch(bridge=f"brpstrace{os.getpid() % 100000}") as sw, _bridge_deleted(sw):
        for ofport in (*PORTS, UNPLUGGED):
            name = f"pstrace{ofport}"
            sw.vsctl("add-port", sw.bridge, name, "--", "set", "Interface", name, "type=patch",
                     f"options:peer=pstrace-none{ofport}", f"ofport_request={ofport}")  # fmt: skip
        sw.ofctl("--bundle", "add-flows", sw.bridge, "-", input="".join(f"add {f.text()}\n" for f in model.flows()))
        installed = [f for f in map(parse_dump_line, sw.ofctl("dump-flows", sw.bridge).splitlines()) if f]
        assert sorted(installed, key=lambda f: f.text()) == sorted(model.flows(), key=lambda f: f.text())

        mismatches = []
        cases = [(_case(ofport, text), contract(PORTS[ofport], _case(ofport, text))[0]) for ofport, text in SAMPLE]
        cases.append((_case(UNPLUGGED, f"ip,{S1_SRC},nw_src=192.168.1.138"), False))  # maps to no port: fail closed
        for spec, allowed in cases:
            trace = sw.appctl("ofproto/trace", sw.bridge, _ovs_text(spec))
            (actions,) = [line for line in trace.splitlines() if line.startswith("Datapath actions:")]
            switch_forwards = actions.strip() != "Datapath actions: drop"
            verdict = model.evaluate(make_packet(spec.protocol, dict(spec.fields)))
            if not (verdict.forwarded == switch_forwards == allowed):
                mismatches.append(f"{spec.text()}: contract {allowed}, model {verdict.action}, OVS {actions}")
        assert not mismatches, "\n".join(mismatches)
        assert len(cases) >= 40
