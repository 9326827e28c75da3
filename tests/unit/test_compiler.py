"""The compiler: flows that fit the pipeline, one spelling, the flow budget, and the contract of DESIGN.md §4.

The contract test runs the compiler's flows on the switch model and compares
each verdict with tests/contract.py, which evaluates the §4 table directly.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portsec.guards import guard_from_view
from portsec.openflow.actions import DROP
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import DROP_REASONS, cookie, cookie_audits, flow, parse_flow
from portsec.openflow.model import SwitchModel
from portsec.openflow.packet import make_packet
from portsec.openflow.pipeline import (
    ADMISSION,
    ARP_ND,
    AUDIT_METER,
    FORWARD,
    SOURCE,
    VIP_METER,
    bridge_flows,
    check_flow,
    goto_table,
)
from tests.contract import Spec, contract, packets, ports

SERVER1 = {
    "id": "6a3c3d0e-5b7e-4c1f-9d7a-2f1e0c9b8a71",
    "name": "server1",
    "network_id": "net1",
    "mac_address": "fa:16:3e:3e:e3:14",
    "port_security_enabled": True,
    "device_owner": "compute:nova",
    "fixed_ips": [{"ip_address": "192.168.1.138"}],
    "allowed_address_pairs": [{"mac_address": "fa:16:3e:3e:e3:14", "ip_address": "192.168.1.10"}],
}


def test_one_fixed_ip_and_one_pair_is_twenty_flows_with_these_jobs():
    flows = compile_port_flows(guard_from_view(SERVER1), 5)
    jobs = Counter((f.table, f.priority, f.protocol, f.reason) for f in flows)
    assert jobs == Counter({
        (0, 100, None, "vlan"): 1,
        (0, 90, None, "allow"): 1,  # one MAC
        (0, 10, None, "mac"): 1,
        (24, 90, "arp", "allow"): 2,  # the fixed IP and the probe from 0.0.0.0
        (24, 95, "arp", "vip"): 1,  # the pair: its ARP is also copied to the agent (who holds the VIP?)
        (24, 10, "arp", "arp"): 1,
        (24, 90, "icmp6", "allow"): 2,  # the link-local target, with and without a link-layer option
        (24, 10, "icmp6", "nd"): 1,
        (25, 100, "udp", "dhcp-server"): 1,
        (25, 100, "udp6", "dhcp-server"): 1,
        (25, 100, "icmp6", "ra"): 2,  # router advertisement and redirect
        (25, 90, "ip", "allow"): 2,
        (25, 90, "ipv6", "allow"): 1,  # the link-local address
        (25, 10, "ip", "ipv4-source"): 1,
        (25, 10, "ipv6", "ipv6-source"): 1,
        (25, 1, None, "ethertype"): 1,
    })  # fmt: skip
    assert len(flows) == 20 < 22  # OVN's port security for the same port
    assert all(dict(f.match)["in_port"] == "5" for f in flows)


def test_every_drop_reason_of_the_contract_has_its_own_flow():
    reasons = {f.reason for f in compile_port_flows(guard_from_view(SERVER1), 5)}
    assert reasons == {"allow", "mac", "ipv4-source", "ipv6-source", "arp", "nd", "dhcp-server", "ra", "vlan",
                       "ethertype", "vip"}  # fmt: skip


def test_only_the_arp_and_na_of_host_pairs_are_copied_to_the_agent_through_the_vip_meter():
    port = {**SERVER1, "allowed_address_pairs": [{"mac_address": SERVER1["mac_address"], "ip_address": "192.168.1.10"},
            {"mac_address": SERVER1["mac_address"], "ip_address": "2001:db8::10"},
            {"mac_address": SERVER1["mac_address"], "ip_address": "10.9.0.0/24"}]}  # fmt: skip
    copied = [f for f in compile_port_flows(guard_from_view(port), 5) if "controller" in f.actions.text]
    assert sorted((f.table, dict(f.match).get("arp_spa") or dict(f.match)["nd_target"]) for f in copied) == [
        (24, "192.168.1.10"),
        (24, "2001:db8::10"),
        (24, "2001:db8::10"),
    ]  # with and without a link-layer option
    assert {f.reason for f in copied} == {"vip"}
    assert {f.actions.text.split(",goto")[0] for f in copied} == {f"controller(max_len=128,meter_id={VIP_METER})"}


def test_unprotected_ports_get_the_strict_checks_in_audit_mode_which_drop_nothing():
    strict = compile_port_flows(guard_from_view(SERVER1), 5)
    for change in ({"port_security_enabled": False}, {"device_owner": "network:dhcp"}):
        audited = compile_port_flows(guard_from_view({**SERVER1, **change}), 5)
        assert [f.key for f in audited] == [f.key for f in strict]  # the same checks, in the same places
        assert all(f.actions != DROP for f in audited)
        would_drop = [f for f in audited if cookie_audits(f.cookie)]
        assert {f.reason for f in would_drop} == set(DROP_REASONS) - {"admin-down"}
        assert {f.actions.text for f in would_drop} == {f"controller(max_len=128,meter_id={AUDIT_METER}),goto_table:60"}


@st.composite
def disabled_port_and_packet(draw: st.DrawFn) -> tuple[dict[str, Any], Spec]:
    port = {**draw(ports()), "admin_state_up": False}
    return port, draw(packets(port, 5))


@settings(max_examples=30, deadline=None)
@given(case=disabled_port_and_packet())
def test_a_disabled_port_sends_nothing_whatever_its_port_security(case: tuple[dict[str, Any], Spec]):
    port, spec = case
    flows = compile_port_flows(guard_from_view(port), 5)
    assert [f.reason for f in flows] == ["admin-down"]
    verdict = SwitchModel([*flows, *bridge_flows()]).evaluate(make_packet(spec.protocol, dict(spec.fields)))
    assert (verdict.forwarded, verdict.reason) == (False, "admin-down")


@settings(max_examples=60, deadline=None)
@given(port=ports(), ofport=st.integers(1, 0xFEFF))
def test_compiled_flows_fit_the_pipeline_and_read_back_identically(port: dict[str, Any], ofport: int):
    flows = compile_port_flows(guard_from_view(port), ofport)
    for f in (*flows, *bridge_flows()):
        check_flow(f)
        assert parse_flow(f.text()) == f
        assert f.reason is not None
    assert len({f.key for f in flows}) == len(flows)
    # Drops are per port and per reason: the cookie names the port.
    assert {f.cookie >> 8 & 0xFFFFFFFFFFFF for f in flows} == {int(port["id"].replace("-", "")[:12], 16)}
    SwitchModel([*flows, *bridge_flows()])  # and no two of them are ambiguous


@st.composite
def port_and_packets(draw: st.DrawFn) -> tuple[dict[str, Any], list[Spec]]:
    port = draw(ports())
    return port, draw(st.lists(packets(port, 7), min_size=10, max_size=25))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=port_and_packets())
def test_the_model_on_the_compiled_flows_agrees_with_the_contract(case: tuple[dict[str, Any], list[Spec]]):
    port, specs = case
    model = SwitchModel([*compile_port_flows(guard_from_view(port), 7), *bridge_flows()])
    for spec in specs:
        allowed, row = contract(port, spec)
        verdict = model.evaluate(make_packet(spec.protocol, dict(spec.fields)))
        assert verdict.forwarded == allowed, (
            f"contract row {row!r} says {'allow' if allowed else 'drop'} for {spec.text()} from {port}, "
            f"the flows say {verdict.action}:\n" + "\n".join(f.text() for f in verdict.path)
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=port_and_packets(), trusted=st.booleans())
def test_audit_flows_never_change_a_verdict_and_count_what_strict_mode_would_drop(
    case: tuple[dict[str, Any], list[Spec]], trusted: bool
):
    """A port without port security forwards every packet as it did with its one flow to table 60, and the
    audit flow a packet takes names the reason strict mode would have dropped it for."""
    port, specs = case
    port = {**port, "port_security_enabled": True, "device_owner": "compute:nova"}
    unprotected = {**port, "device_owner": "network:router_interface"} if trusted else {
        **port, "port_security_enabled": False}  # fmt: skip
    guard = guard_from_view(unprotected)
    bare = flow(ADMISSION, 100, goto_table(FORWARD), cookie(port["id"], "allow"), in_port="7")
    without = SwitchModel([bare, *bridge_flows()])
    audited = SwitchModel([*compile_port_flows(guard, 7), *bridge_flows()])
    strict = SwitchModel([*compile_port_flows(guard_from_view(port), 7), *bridge_flows()])
    for spec in specs:
        packet = make_packet(spec.protocol, dict(spec.fields))
        seen, before, strictly = audited.evaluate(packet), without.evaluate(packet), strict.evaluate(packet)
        assert (seen.forwarded, seen.reason) == (before.forwarded, before.reason) == (True, None), spec.text()
        counted = [f.reason for f in seen.path if cookie_audits(f.cookie)]
        assert counted == ([] if strictly.forwarded else [strictly.reason]), spec.text()


def test_the_contract_rows_that_decide_a_drop_match_the_reason_in_the_cookie():
    """For server1, one packet per drop row: the drop is counted under the reason an operator expects."""
    model = SwitchModel([*compile_port_flows(guard_from_view(SERVER1), 5), *bridge_flows()])
    src = "in_port=5,dl_src=fa:16:3e:3e:e3:14"
    cases = {
        f"ip,{src},vlan_tci=0x1005,nw_src=192.168.1.138": "vlan",
        "ip,in_port=5,dl_src=fa:16:3e:00:00:01,nw_src=192.168.1.138": "mac",
        "ip,in_port=5,dl_src=01:00:5e:00:00:01,nw_src=192.168.1.138": "mac",
        f"ip,{src},nw_src=192.168.1.11": "ipv4-source",
        f"ipv6,{src},ipv6_src=2001:db8::1": "ipv6-source",
        f"arp,{src},arp_sha=fa:16:3e:00:00:01,arp_spa=192.168.1.138": "arp",
        f"arp,{src},arp_sha=fa:16:3e:3e:e3:14,arp_spa=192.168.1.11": "arp",
        f"icmp6,{src},ipv6_src=fe80::f816:3eff:fe3e:e314,icmp_type=136,nd_target=fe80::1": "nd",
        f"udp,{src},nw_src=192.168.1.138,tp_src=67,tp_dst=68": "dhcp-server",
        f"udp6,{src},ipv6_src=fe80::f816:3eff:fe3e:e314,tp_src=547,tp_dst=546": "dhcp-server",
        f"icmp6,{src},ipv6_src=fe80::f816:3eff:fe3e:e314,icmp_type=134": "ra",
        f"icmp6,{src},ipv6_src=fe80::f816:3eff:fe3e:e314,icmp_type=137": "ra",
        f"{src},dl_type=0x88cc": "ethertype",
        "ip,in_port=6,dl_src=fa:16:3e:3e:e3:14": "unknown-port",
    }
    from portsec.openflow.packet import parse_packet

    got = {text: model.evaluate(parse_packet(text)) for text in cases}
    assert {text: (v.action, v.reason) for text, v in got.items()} == {t: ("drop", r) for t, r in cases.items()}
    assert {FORWARD, ARP_ND, SOURCE} >= {v.path[-1].table for v in got.values()} - {0}
