"""The switch model: OpenFlow matching and actions, tables as values, and ports that stay apart."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsec.agent.flowtable import BRIDGE, Batch, FlowTable
from portsec.guards import guard_from_view
from portsec.openflow.actions import NORMAL
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import Flow, cookie, flow, parse_flow, port_tag
from portsec.openflow.model import AmbiguousFlows, SwitchModel
from portsec.openflow.packet import make_packet, parse_packet
from portsec.openflow.pipeline import bridge_flows
from tests.contract import packets, ports

P = "6a3c3d0e-5b7e-4c1f-9d7a-2f1e0c9b8a71"


def verdict(model: SwitchModel, text: str) -> tuple[str, str | None]:
    v = model.evaluate(parse_packet(text))
    return v.action, v.reason


def test_masks_and_cidrs():
    model = SwitchModel([
        "table=0,priority=50,cookie=0x5c00000000000002,ip,nw_src=10.0.0.0/24 actions=drop",
        "table=0,priority=40,cookie=0x5c00000000000008,vlan_tci=0x1000/0x1000 actions=drop",
        "table=0,priority=30,cookie=0x5c00000000000003,ipv6,ipv6_dst=ff02::/16 actions=drop",
        "table=0,priority=20,cookie=0x5c00000000000001,dl_src=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop",
        "table=0,priority=0 actions=NORMAL",
    ])  # fmt: skip
    assert verdict(model, "ip,nw_src=10.0.0.255") == ("drop", "ipv4-source")
    assert verdict(model, "ip,nw_src=10.0.1.0") == ("forward", None)
    assert verdict(model, "ip,nw_src=10.0.1.0,vlan_tci=0x1fff") == ("drop", "vlan")
    assert verdict(model, "ip,nw_src=10.0.1.0,dl_vlan=0") == ("drop", "vlan")
    assert verdict(model, "ip,nw_src=10.0.1.0,vlan_tci=0x0fff") == ("forward", None)
    assert verdict(model, "ipv6,ipv6_dst=ff02::1:ff00:1") == ("drop", "ipv6-source")
    assert verdict(model, "ipv6,ipv6_dst=ff05::1") == ("forward", None)
    assert verdict(model, "ipv6,dl_src=33:33:00:00:00:01") == ("drop", "mac")
    assert verdict(model, "ipv6,dl_src=fa:16:3e:00:00:01") == ("forward", None)


def test_protocol_shorthands_bind_ethertype_and_ip_protocol():
    model = SwitchModel([
        "table=0,priority=10,icmp6,icmp_type=134 actions=drop",
        "table=0,priority=10,udp,tp_src=67 actions=drop",
        "table=0,priority=0 actions=NORMAL",
    ])  # fmt: skip
    assert verdict(model, "icmp6,icmp_type=134")[0] == "drop"
    assert verdict(model, "icmp,icmp_type=134")[0] == "forward"  # an ICMPv4 type 134 is not an RA
    assert verdict(model, "udp,tp_src=67")[0] == "drop"
    assert verdict(model, "udp6,tp_src=67")[0] == "forward"
    assert verdict(model, "tcp,tp_src=67")[0] == "forward"
    assert verdict(model, "dl_type=0x0800,nw_proto=17,tp_src=67")[0] == "drop"


def test_fields_need_their_protocol_as_in_open_vswitch():
    with pytest.raises(ValueError, match="prerequisites not met for nd_target"):
        SwitchModel(["table=0,priority=1,icmp6,nd_target=::1 actions=drop"])
    with pytest.raises(ValueError, match="prerequisites not met for arp_spa"):
        SwitchModel(["table=0,priority=1,arp_spa=10.0.0.1 actions=drop"])
    with pytest.raises(ValueError, match="arp_spa applies only to arp packets"):
        parse_packet("ip,arp_spa=10.0.0.1")
    with pytest.raises(ValueError, match="nd_tll applies only to icmp6 with icmp_type=136 packets"):
        parse_packet("icmp6,icmp_type=135,nd_tll=fa:16:3e:00:00:01")
    with pytest.raises(ValueError, match="not a valid nw_src"):
        parse_packet("ip,nw_src=2001:db8::1")
    with pytest.raises(ValueError, match="exact values"):
        parse_packet("ip,nw_src=10.0.0.0/8")


def test_an_na_without_a_link_layer_option_has_a_zero_nd_tll_as_in_open_vswitch():
    model = SwitchModel([
        "table=0,priority=10,icmp6,icmp_type=136,nd_tll=00:00:00:00:00:00 actions=NORMAL",
        "table=0,priority=0 actions=drop",
    ])  # fmt: skip
    assert verdict(model, "icmp6,icmp_type=136,nd_target=fe80::1")[0] == "forward"
    assert verdict(model, "icmp6,icmp_type=136,nd_target=fe80::1,nd_tll=fa:16:3e:00:00:01")[0] == "drop"


def test_priorities_goto_resubmit_and_misses():
    model = SwitchModel([
        "table=0,priority=10,ip actions=goto_table:5",
        "table=0,priority=20,ip,nw_src=10.0.0.1 actions=resubmit(,7),goto_table:9",
        "table=5,priority=1 actions=NORMAL",
        "table=7,priority=1,ip,nw_dst=10.0.0.2 actions=output:3",
        "table=9,priority=1,cookie=0x5c0000000000000a actions=drop",
    ])  # fmt: skip
    assert verdict(model, "ip,nw_src=10.0.0.9") == ("forward", None)
    v = model.evaluate(parse_packet("ip,nw_src=10.0.0.1,nw_dst=10.0.0.2"))
    assert v.forwarded and [f.table for f in v.path] == [0, 7, 9]
    v = model.evaluate(parse_packet("ip,nw_src=10.0.0.1,nw_dst=10.0.0.3"))  # table 7 misses, table 9 drops
    assert (v.action, v.reason, [f.table for f in v.path]) == ("drop", "unknown-port", [0, 9])
    v = model.evaluate(parse_packet("arp"))  # nothing in table 0 matches: a miss drops
    assert (v.action, v.path, v.reason, v.missed_table) == ("drop", (), None, 0)
    with pytest.raises(ValueError, match="later table"):
        SwitchModel(["table=5,priority=1 actions=goto_table:5"])
    with pytest.raises(ValueError, match="does not know the action"):
        SwitchModel(["table=0,priority=1 actions=mod_vlan_vid:5,NORMAL"])


def test_counters_and_same_key_replacement():
    model = SwitchModel(["table=0,priority=1,ip actions=drop"])
    for _ in range(3):
        model.evaluate(parse_packet("ip,nw_src=10.0.0.1"))
    model.evaluate(parse_packet("ip"), count=False)
    (only,) = model.flows()
    assert model.n_packets(only) == 3 and model.counters() == {only: 3}
    model.add("table=0,priority=1,cookie=0x5,ip actions=NORMAL")  # same key: replaced, counter kept
    assert len(model) == 1 and model.flows()[0].actions is NORMAL and model.n_packets(model.flows()[0]) == 3
    assert verdict(model, "ip")[0] == "forward"
    model.delete("table=0,priority=1,ip actions=whatever")  # strict delete by key; the actions do not matter
    model.delete(only)  # deleting what is not there is no error
    assert len(model) == 0 and verdict(model, "ip") == ("drop", None)


def test_ambiguous_flows_are_refused_and_leave_the_table_as_it_was():
    model = SwitchModel([
        "table=0,priority=5,ip,nw_src=10.0.0.0/24 actions=drop",
        "table=0,priority=5,arp actions=NORMAL",  # disjoint: another ethertype
        "table=0,priority=5,ip,nw_src=10.0.1.0/24 actions=NORMAL",  # disjoint: another prefix
        "table=0,priority=6,ip,nw_src=10.0.0.7 actions=NORMAL",  # another priority
        "table=0,priority=5,ip,nw_src=10.0.0.8 actions=drop",  # overlaps, but acts the same
    ])  # fmt: skip
    before = model.text()
    with pytest.raises(AmbiguousFlows, match="priority 5 in table 0"):
        model.apply(
            adds=[parse_flow("table=0,priority=1 actions=NORMAL"), parse_flow("table=0,priority=5,ip actions=NORMAL")],
            deletes=[parse_flow("table=0,priority=5,arp actions=NORMAL")],
        )
    assert model.text() == before
    with pytest.raises(AmbiguousFlows):
        model.add("table=0,priority=5,ip,in_port=3,dl_src=fa:16:3e:00:00:01 actions=NORMAL")
    # Replacing the flow it would have clashed with, in the same bundle, is fine.
    model.apply(
        adds=["table=0,priority=5,ip,in_port=3 actions=NORMAL"],
        deletes=[
            "table=0,priority=5,ip,nw_src=10.0.0.0/24 actions=drop",
            "table=0,priority=5,ip,nw_src=10.0.0.8 actions=x",
        ],
    )
    assert verdict(model, "ip,in_port=3,nw_src=10.0.0.8")[0] == "forward"


def test_loads_dump_flows_output():
    dump = """OFPST_FLOW reply (OF1.4) (xid=0x2):
 cookie=0x5c6a3c3d0e111108, duration=0.004s, table=0, n_packets=0, n_bytes=0, priority=100,in_port=5,vlan_tci=0x1000/0x1000 actions=drop
 cookie=0x5c6a3c3d0e111100, duration=0.004s, table=24, n_packets=2, n_bytes=84, idle_age=1, priority=90,arp,in_port=5,dl_src=fa:16:3e:3e:e3:14,arp_spa=10.0.0.0/24,arp_sha=fa:16:3e:3e:e3:14 actions=goto_table:60
 cookie=0x5c0000000000000a, duration=0.004s, table=0, n_packets=0, n_bytes=0, priority=0 actions=drop
"""
    model = SwitchModel()
    model.load(dump)
    assert model.text().splitlines() == [
        "table=0,priority=100,cookie=0x5c6a3c3d0e111108,in_port=5,vlan_tci=0x1000/0x1000 actions=drop",
        "table=0,priority=0,cookie=0x5c0000000000000a actions=drop",
        "table=24,priority=90,cookie=0x5c6a3c3d0e111100,arp,in_port=5,dl_src=fa:16:3e:3e:e3:14,arp_spa=10.0.0.0/24,"
        "arp_sha=fa:16:3e:3e:e3:14 actions=goto_table:60",
    ]


def test_packets_read_and_print_in_ovs_ofctl_syntax():
    p = parse_packet("arp,in_port=5,dl_src=FA:16:3E:3E:E3:14,nw_src=192.168.1.10,arp_sha=fa:16:3e:3e:e3:14")
    assert p.text() == "arp,in_port=5,dl_src=fa:16:3e:3e:e3:14,arp_spa=192.168.1.10,arp_sha=fa:16:3e:3e:e3:14"
    assert parse_packet(p.text()) == p and p.in_port == 5 and p.get("arp_spa") == "192.168.1.10"
    assert (
        make_packet("icmp6", icmpv6_type="136", nd_target="FE80::1").text() == "icmp6,icmp_type=136,nd_target=fe80::1"
    )
    assert p.with_defaults(arp_op="1", arp_sha="00:00:00:00:00:01").get("arp_sha") == "fa:16:3e:3e:e3:14"
    with pytest.raises(ValueError, match="unknown field"):
        parse_packet("ip,nw_srcc=1.2.3.4")


# -- ports on one model ----------------------------------------------------------------------------


def _port_flows(port: dict[str, Any], ofport: int):
    return compile_port_flows(guard_from_view(port), ofport)


@st.composite
def bridges(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = draw(st.lists(ports(), min_size=2, max_size=4))
    for i, port in enumerate(found):
        port["id"] = str(uuid.UUID(int=(i + 1) << 80 | draw(st.integers(0, (1 << 80) - 1))))  # distinct port tags
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), found=bridges())
def test_one_ports_flows_never_decide_another_ports_packets(data: st.DataObject, found: list[dict[str, Any]]):
    shared = SwitchModel(bridge_flows())
    for ofport, port in enumerate(found, start=1):
        shared.apply(adds=_port_flows(port, ofport))
    for ofport, port in enumerate(found, start=1):
        alone = SwitchModel([*_port_flows(port, ofport), *bridge_flows()])
        tag = port_tag(port["id"])
        for spec in data.draw(st.lists(packets(port, ofport), min_size=5, max_size=10)):
            packet = make_packet(spec.protocol, dict(spec.fields))
            v = shared.evaluate(packet)
            assert v == alone.evaluate(packet)
            assert all((f.cookie >> 8 & 0xFFFFFFFFFFFF) in (tag, 0) for f in v.path), v.path
            assert all(dict(f.match).get("in_port", str(ofport)) == str(ofport) for f in v.path)


def _push(table: FlowTable, model: SwitchModel, desired: dict[str, list[Flow]]) -> Batch:
    """What the agent does for one round: its diff, applied as one bundle, then recorded."""
    batch = table.diff(desired)
    model.apply(adds=batch.adds, deletes=batch.deletes)
    table.commit(desired)
    return batch


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=bridges(), other=ports())
def test_updating_a_port_and_back_restores_the_identical_table(found: list[dict[str, Any]], other: dict[str, Any]):
    table, model = FlowTable(), SwitchModel()
    _push(table, model, {BRIDGE: list(bridge_flows())})
    _push(table, model, {p["id"]: _port_flows(p, ofport) for ofport, p in enumerate(found, start=1)})
    before, a = model.text(), found[0]
    b = {**other, "id": a["id"]}
    flows_a, flows_b = set(_port_flows(a, 1)), set(_port_flows(b, 1))
    untouched = set(model.flows()) - flows_a
    there = _push(table, model, {a["id"]: _port_flows(b, 1)})
    assert set(model.flows()) == untouched | flows_b, "only the changed port's flows may change"
    back = _push(table, model, {a["id"]: _port_flows(a, 1)})
    assert model.text() == before
    assert set(back.adds) == flows_a - flows_b
    assert bool(there) == (flows_a != flows_b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=bridges(), changed=ports())
def test_applying_the_same_diff_twice_is_a_no_op(found: list[dict[str, Any]], changed: dict[str, Any]):
    table, model = FlowTable(), SwitchModel()
    _push(table, model, {BRIDGE: list(bridge_flows())})
    _push(table, model, {p["id"]: _port_flows(p, ofport) for ofport, p in enumerate(found, start=1)})
    moved = {found[-1]["id"]: _port_flows({**changed, "id": found[-1]["id"]}, 99)}  # to another ofport, too
    batch = table.diff(moved)
    model.apply(adds=batch.adds, deletes=batch.deletes)
    once = model.text()
    model.apply(adds=batch.adds, deletes=batch.deletes)
    assert model.text() == once
    table.commit(moved)
    assert set(model.flows()) == set(table.all_flows())
    assert not table.diff(moved)


def test_a_table_of_many_ports_counts_drops_per_port_and_reason():
    model = SwitchModel(bridge_flows())
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(1, 51)]
    for ofport, port_id in enumerate(ids, start=1):
        view = {"id": port_id, "network_id": "n", "mac_address": f"fa:16:3e:00:00:{ofport:02x}",
                "port_security_enabled": True, "fixed_ips": [{"ip_address": f"10.0.0.{ofport}"}]}  # fmt: skip
        model.apply(adds=compile_port_flows(guard_from_view(view), ofport))
    for _ in range(4):
        model.evaluate(parse_packet("ip,in_port=7,dl_src=fa:16:3e:00:00:07,nw_src=10.0.0.8"))
    assert model.counters()[flow(25, 10, "drop", cookie(ids[6], "ipv4-source"), "ip", in_port="7")] == 4
    assert verdict(model, "ip,in_port=8,dl_src=fa:16:3e:00:00:08,nw_src=10.0.0.8") == ("forward", None)
