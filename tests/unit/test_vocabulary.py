"""One OpenFlow vocabulary: the field registry, actions as values, and flows checked as they are built."""

from __future__ import annotations

import pickle

import pytest

from portsec.agent.ofconn import ADD, OpenFlowError, encode_flow_mod
from portsec.guards import guard_from_view
from portsec.openflow.actions import (
    DROP,
    NORMAL,
    GotoTable,
    Normal,
    Output,
    Resubmit,
    Unknown,
    actions,
    goto_table,
    parse_actions,
)
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.fields import FIELD, FIELDS, PROTOCOLS
from portsec.openflow.flows import Flow, flow, flow_builder, parse_flow
from portsec.openflow.model import SwitchModel
from portsec.openflow.pipeline import ARP_ND, FORWARD, PIPELINE, SOURCE, check_flow, pipeline_flow
from tests.unit.test_compiler import SERVER1


def test_the_registry_lays_fields_out_end_to_end_in_text_order():
    at = 0
    for rank, f in enumerate(FIELDS):
        assert (f.rank, f.offset, FIELD[f.name]) == (rank, at, f)
        at += f.bits
    for table in PIPELINE.values():
        assert table.matches <= FIELD.keys()
    # OXM numbers are one per field, in every IP protocol a field can be encoded in.
    for proto in {p for _, p in PROTOCOLS.values()}:
        numbers = [n for f in FIELDS if (n := f.oxm_number(proto)) is not None]
        assert len(numbers) == len(set(numbers))


def test_field_values_read_and_spell_through_the_registry():
    assert FIELD["nw_src"].value_mask("10.0.0.5/24") == (0x0A000000, 0xFFFFFF00)
    assert FIELD["vlan_tci"].value_mask("0x1000/0x1000") == (0x1000, 0x1000)
    assert FIELD["dl_src"].spell(0xFA163E000001) == "fa:16:3e:00:00:01"
    assert FIELD["dl_type"].spell(0x800) == "0x0800"
    with pytest.raises(ValueError, match="not a valid nw_src"):
        FIELD["nw_src"].value_mask("2001:db8::1")
    with pytest.raises(ValueError, match="not a valid tp_src"):
        FIELD["tp_src"].value_mask("70000")


def test_actions_are_interned_values_with_one_spelling():
    for text in ("drop", "NORMAL", "goto_table:60", "output:3,goto_table:9", "resubmit(,7),NORMAL"):
        parsed = parse_actions(text)
        assert parsed.text == text and parse_actions(parsed.text) is parsed
    assert parse_actions("") is DROP and parse_actions("normal") is NORMAL
    assert parse_actions("resubmit( , 7 ),goto_table:9").items == (Resubmit(7), GotoTable(9))
    assert actions(Output(3), GotoTable(9)) is parse_actions("output:3,goto_table:9")
    assert goto_table(60) is actions(GotoTable(60)) and NORMAL.items == (Normal(),)
    assert pickle.loads(pickle.dumps(goto_table(60))) is goto_table(60)  # identity survives another process
    odd = parse_actions("mod_vlan_vid:5,NORMAL")
    assert odd.items == (Unknown("mod_vlan_vid:5"), Normal()) and odd.text == "mod_vlan_vid:5,NORMAL"
    assert (odd.unknown, odd.forwards, goto_table(5).goto, goto_table(5).targets) == ("mod_vlan_vid:5", True, 5, (5,))
    with pytest.raises(AttributeError):
        NORMAL.text = "drop"  # type: ignore[misc]


def test_flows_are_values_whatever_way_their_actions_come():
    a = flow(25, 90, "goto_table:60", 5, "ip", in_port="5", nw_src="10.0.0.1")
    b = flow(25, 90, goto_table(60), 5, "ip", nw_src="10.0.0.1", in_port="5")
    assert a == b and hash(a) == hash(b) and a.actions is b.actions
    assert a == Flow(25, 90, (("in_port", "5"), ("nw_src", "10.0.0.1")), goto_table(60), 5, "ip")
    assert parse_flow(a.text()) == a and pickle.loads(pickle.dumps(a)) == a
    assert flow(0, 1, DROP, nw_src="0.0.0.0/0", in_port="1").match == (("in_port", "1"),)  # a /0 is no match


def test_every_compiled_flow_is_checked_against_the_pipeline_once_per_shape():
    seen: list[Flow] = []
    build = flow_builder(seen.append)
    for port in ("1", "2", "3"):
        # A /0 leaves its field out: checked each time until a flow with all the shape's fields was.
        build(SOURCE, 90, goto_table(FORWARD), 0, "ip", in_port=port, nw_src="0.0.0.0/0")
        build(SOURCE, 90, goto_table(FORWARD), 0, "ip", in_port=port, nw_src="10.0.0.1")
        build(ARP_ND, 10, DROP, 0, "icmp6", in_port=port, icmp_type="136")
        build(ARP_ND, 10, DROP, 0, "icmp6", in_port=port, icmp_type="135")  # another value prerequisites read
    assert [(f.table, dict(f.match).get("icmp_type"), len(f.match)) for f in seen] == [
        (SOURCE, None, 1), (SOURCE, None, 2), (ARP_ND, "136", 2), (ARP_ND, "135", 2),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="may not go to table 24"):
        pipeline_flow(SOURCE, 90, goto_table(ARP_ND), 0, "ip", in_port="9")
    with pytest.raises(ValueError, match="may not match"):
        pipeline_flow(SOURCE, 90, DROP, 0, "arp", in_port="9", arp_tpa="10.0.0.1")
    with pytest.raises(ValueError, match="prerequisites not met for tp_src"):
        pipeline_flow(SOURCE, 90, DROP, 0, "ip", in_port="9", tp_src="67")
    with pytest.raises(ValueError, match="may not use the action"):
        check_flow(flow(SOURCE, 90, "mod_vlan_vid:5", 0, in_port="9"))
    for f in compile_port_flows(guard_from_view(SERVER1), 5):
        check_flow(f)


def test_the_model_and_the_encoder_refuse_what_they_cannot_run_or_write():
    with pytest.raises(ValueError, match="does not know the action 'controller'"):
        SwitchModel(["table=0,priority=1 actions=controller"])
    with pytest.raises(ValueError, match="goto_table must be the last action"):
        SwitchModel(["table=0,priority=1 actions=goto_table:5,NORMAL"])
    with pytest.raises(OpenFlowError, match="no encoding"):
        encode_flow_mod(flow(0, 1, "resubmit(,7)"), ADD, 1)
    with pytest.raises(OpenFlowError, match="tp_src needs tcp"):
        encode_flow_mod(Flow(0, 1, (("tp_src", "67"),), DROP, 0, "icmp"), ADD, 1)
