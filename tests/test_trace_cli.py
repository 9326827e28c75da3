"""portsec trace on the seed ports: the VIP is dropped with the sentence and the fix, then passes once the pair is set."""

from __future__ import annotations

import os
from contextlib import suppress

import pytest

from tests import ovs
from tests.cli import run
from tests.test_model_vs_ovs import require_bridge

S1 = "fa:16:3e:3e:e3:14"


@pytest.fixture
def seeded(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("PORTSEC_DATABASE_URL", f"sqlite:///{tmp_path}/portsec.db")
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path / "no-ovs"))  # no local switch: the placeholder ofport
    ok("network create net1")
    ok("subnet create --network net1 --subnet-range 192.168.1.0/24 subnet1")
    ok("port create --network net1 --fixed-ip subnet=subnet1,ip-address=192.168.1.2 ''")
    ok(f"port create --network net1 --mac-address {S1} --fixed-ip subnet=subnet1,ip-address=192.168.1.138 server1")
    ok("port create --network net1 --mac-address fa:16:3e:7b:e9:03 --fixed-ip subnet=subnet1,ip-address=192.168.1.136 server2")  # fmt: skip
    return {name: ok(f"port show {name} -f value -c id").strip() for name in ("server1", "server2")}


def ok(command: str) -> str:
    result = run(command)
    assert result.code == 0, result.err
    return result.out


def test_the_vip_is_dropped_until_the_pair_is_set(seeded):
    dropped = run("trace server1 'arp,arp_spa=192.168.1.10'")
    assert dropped.code == 2, dropped.err
    lines = dropped.out.splitlines()
    assert lines[0] == "verdict: dropped (arp)"
    assert lines[1] == f"packet:  arp,in_port=1,dl_src={S1},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa=192.168.1.10,arp_sha={S1}"  # fmt: skip
    assert lines[2].startswith("ofport:  1 (a placeholder: the port has no interface on the local Open vSwitch")
    cookie = f"0x5c{seeded['server1'].replace('-', '')[:12]}"
    assert lines[3:6] == [
        "flows:",
        f"  table=0,priority=90,cookie={cookie}00,in_port=1,dl_src={S1} actions=goto_table:24",
        f"  table=24,priority=10,cookie={cookie}04,arp,in_port=1 actions=drop",
    ]
    assert lines[6:] == [
        f"why:     192.168.1.10 is not a fixed IP or allowed address pair of server1 (MAC {S1})",
        "to allow it: portsec port set server1 --allowed-address ip-address=192.168.1.10",
    ]

    assert ok("port set server1 --allowed-address ip-address=192.168.1.10") == ""
    allowed = run("trace server1 'arp,arp_spa=192.168.1.10'")
    assert allowed.code == 0, allowed.err
    assert allowed.out.splitlines()[0] == "verdict: forwarded"
    vip_flow = f"arp,in_port=1,dl_src={S1},arp_spa=192.168.1.10,arp_sha={S1} actions=controller(max_len=128,meter_id=1)"
    assert vip_flow + ",goto_table:60" in allowed.out  # a VIP: its ARP is copied to the agent too
    assert allowed.out.splitlines()[-1] == (
        f"why:     ARP sender 192.168.1.10 is an allowed address pair of server1 (MAC {S1})"
    )
    # The other server has no pair yet, and the port's own address still passes.
    assert run("trace server2 'arp,arp_spa=192.168.1.10'").code == 2
    assert run(f"trace {seeded['server2']} ip").code == 0


def test_every_reason_has_its_sentence_and_its_fix(seeded):
    cases = {
        "ip,dl_src=fa:16:3e:00:00:01": (
            f"why:     fa:16:3e:00:00:01 is not the MAC of server1 ({S1}) or of any of its allowed address pairs",
            "to allow it: portsec port set server1 --allowed-address ip-address=192.168.1.138,mac-address=fa:16:3e:00:00:01",
        ),
        "ip,nw_src=192.168.1.136": (
            f"why:     192.168.1.136 is not a fixed IP or allowed address pair of server1 (MAC {S1})",
            "to allow it: portsec port set server1 --allowed-address ip-address=192.168.1.136",
        ),
        "arp,arp_sha=fa:16:3e:7b:e9:03": (
            f"why:     the ARP sender MAC fa:16:3e:7b:e9:03 is not the frame's source MAC {S1}; no allowed address pair can allow that",
        ),
        "ipv6,ipv6_src=2001:db8::5": (
            f"why:     2001:db8::5 is not a fixed IP or allowed address pair of server1 (MAC {S1})",
            "to allow it: portsec port set server1 --allowed-address ip-address=2001:db8::5",
        ),
        "icmp6,icmp_type=136,nd_target=2001:db8::5": (
            f"why:     the neighbor advertisement is for 2001:db8::5, and 2001:db8::5 is not a fixed IP or allowed address pair of server1 (MAC {S1})",
            "to allow it: portsec port set server1 --allowed-address ip-address=2001:db8::5",
        ),
        "udp,tp_src=67,tp_dst=68": (
            "why:     server1 sent a DHCP server reply (UDP 67->68); only a port with port security off may act as a DHCP server",
            "to allow it: portsec port set server1 --disable-port-security (this turns off all anti-spoofing for server1)",
        ),
        "icmp6,icmp_type=134": (
            "why:     server1 sent an ICMPv6 router advertisement; only a port with port security off may act as a router",
            "to allow it: portsec port set server1 --disable-port-security (this turns off all anti-spoofing for server1)",
        ),
        "ip,dl_vlan=10": (
            "why:     server1 sent a VLAN-tagged frame (vlan_tci=0x100a); a port with port security sends untagged frames only",
            "to allow it: portsec port set server1 --disable-port-security (this turns off all anti-spoofing for server1)",
        ),
        "dl_type=0x88cc": (
            "why:     ethertype 0x88cc is not IPv4, IPv6 or ARP; only a port with port security off may send it",
            "to allow it: portsec port set server1 --disable-port-security (this turns off all anti-spoofing for server1)",
        ),
    }
    for flow, words in cases.items():
        result = run(f"trace server1 '{flow}'")
        assert result.code == 2, (flow, result.out, result.err)
        assert tuple(result.out.splitlines()[-len(words) :]) == words, result.out
    ok("port set server1 --disable-port-security")
    result = run("trace server1 'udp,tp_src=67,tp_dst=68'")
    assert result.code == 0
    assert result.out.splitlines()[-1].startswith(
        "why:     port security is off for server1: nothing it sends is dropped; "
        "with port security on it would be dropped (dhcp-server): "
    ), result.out  # what the audit flow counted it under


def test_bad_input_is_an_error_not_a_verdict(seeded):
    result = run("trace server1 'arp,arp_spa=192.168.1.'")
    assert result.code == 1 and result.out == ""
    assert "Bad microflow 'arp,arp_spa=192.168.1.': '192.168.1.' is not a valid arp_spa" in result.err
    result = run("trace nosuchport ip")
    assert result.code == 1 and "No Port found for nosuchport" in result.err


def test_help_documents_the_exit_status():
    result = run("help trace")
    assert result.code == 0
    assert "exit status: 0 when the packet would be forwarded, 2 when it would be dropped, 1 when the" in result.out


@pytest.mark.ovs
def test_the_ofport_comes_from_the_local_open_vswitch(seeded, monkeypatch):
    if not ovs.available():
        pytest.fail("this test needs Open vSwitch (Debian openvswitch-switch: ovs-vswitchd on PATH) and root")
    # A bridge name of our own (a netdev bridge's tap device lives in the host's namespace), deleted at the end.
    with ovs.switch(bridge=f"brpscli{os.getpid() % 100000}") as sw:
        require_bridge(sw)
        try:
            # A patch port with no peer: an OpenFlow port with no kernel device, as a plugged VM would be.
            sw.vsctl("add-port", sw.bridge, "pscli42", "--", "set", "Interface", "pscli42", "type=patch",
                     "options:peer=pscli-none", "ofport_request=42",
                     f"external_ids:iface-id={seeded['server1']}")  # fmt: skip
            sw.vsctl("wait-until", "Interface", "pscli42", "ofport=42")  # vswitchd assigns it a moment later
            by_option = run(f"trace server1 ip --ovsdb {sw.db}")
            assert by_option.code == 0, by_option.err
            assert by_option.out.splitlines()[2] == (
                f"ofport:  42 (its interface on the local Open vSwitch, external_ids:iface-id={seeded['server1']})"
            )
            assert by_option.out.splitlines()[1] == f"packet:  ip,in_port=42,dl_src={S1},nw_src=192.168.1.138"
            monkeypatch.setenv("OVS_RUNDIR", str(sw.rundir))
            assert "in_port=42," in run("trace server1 ip").out
            assert "in_port=1," in run("trace server2 ip").out  # not plugged: the placeholder
            assert "in_port=7," in run("trace server1 ip --ofport 7").out
        finally:
            with suppress(RuntimeError):
                sw.vsctl("--if-exists", "del-br", sw.bridge)
