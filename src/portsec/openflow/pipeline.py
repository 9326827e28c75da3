"""The br-int pipeline, declared once: each table's job, what it may match and where it may go.

Neutron's table numbers are kept so ``ovs-ofctl dump-flows br-int`` reads as
operators know it: 24 checks ARP and Neighbor Advertisements, 25 checks the
source address, 60 forwards. Table 0 admits a port's frames (VLAN tag, source
MAC) and drops frames from interfaces that map to no port; 23 holds the
canary whose absence tells the agent that Open vSwitch restarted.
"""

from __future__ import annotations

from dataclasses import dataclass

from portsec.openflow.actions import DROP, NORMAL, Actions, as_actions, goto_table
from portsec.openflow.fields import FIELD
from portsec.openflow.flows import Flow, cookie, flow_builder, prerequisite_error


@dataclass(frozen=True)
class Table:
    number: int
    name: str
    matches: frozenset[str]
    next_tables: frozenset[int]
    miss: Actions  # what the table does with a packet no port flow matches


ADMISSION, CANARY, ARP_ND, SOURCE, FORWARD = 0, 23, 24, 25, 60
# Meters on the copies flows send the agent (never on the packets themselves), one per kind, so a port
# flooding what an audit would drop cannot starve the VIP announcements: meter id -> (packets/s, burst).
VIP_METER, AUDIT_METER = 1, 2
METERS = {VIP_METER: (100, 100), AUDIT_METER: (50, 50)}
COPY_BYTES = 128  # of a packet copied to the agent: Ethernet, VLAN, IPv6 and an ND target fit
UNSPECIFIED_SOURCE_ICMP6 = (131, 132, 135, 143)  # MLDv1 report and done, neighbor solicitation, MLDv2 report

PIPELINE = {
    t.number: t
    for t in (
        Table(ADMISSION, "port admission", frozenset({"in_port", "vlan_tci", "dl_src"}), frozenset({ARP_ND, FORWARD}),
              DROP),
        Table(CANARY, "canary", frozenset(), frozenset(), DROP),
        Table(ARP_ND, "ARP and neighbor advertisement check",
              frozenset({"in_port", "dl_src", "arp_spa", "arp_sha", "icmp_type", "nd_target", "nd_tll"}),
              frozenset({SOURCE, FORWARD}), goto_table(SOURCE)),
        Table(SOURCE, "source address check",
              frozenset({"in_port", "dl_src", "nw_src", "nw_dst", "tp_src", "tp_dst", "ipv6_src", "ipv6_dst",
                         "icmp_type"}),
              frozenset({FORWARD}), DROP),
        Table(FORWARD, "forwarding", frozenset(), frozenset(), NORMAL),
    )
}  # fmt: skip
assert all(t.matches <= FIELD.keys() for t in PIPELINE.values()), "a table matches a field the registry lacks"


def check_flow(f: Flow) -> None:
    """Refuse a flow that matches a field or jumps to a table its table does not declare, or whose fields
    lack their prerequisites."""
    table = PIPELINE.get(f.table)
    if table is None:
        raise ValueError(f"table {f.table} is not in the pipeline: {f}")
    extra = {k for k, _ in f.match} - table.matches
    if extra:
        raise ValueError(f"table {f.table} ({table.name}) may not match {sorted(extra)}: {f}")
    actions = as_actions(f.actions)
    for target in actions.targets:
        if target not in table.next_tables:
            raise ValueError(f"table {f.table} ({table.name}) may not go to table {target}: {f}")
    if actions.unknown is not None:
        raise ValueError(f"table {f.table} ({table.name}) may not use the action {actions.unknown!r}: {f}")
    error = prerequisite_error(f)
    if error:
        raise ValueError(error)


# flow(), with check_flow run on the first flow of every shape: what the compiler builds its flows with.
pipeline_flow = flow_builder(check_flow)


def bridge_flows() -> tuple[Flow, ...]:
    """Installed once per bridge: the table misses, and what any admitted port may send.

    A packet reaches table 25 only from a port whose source MAC table 0 admitted,
    so DHCP discovery and DAD/MLD from ``::`` need no per-port copy.
    """
    reasons = {ADMISSION: "unknown-port", CANARY: "canary", SOURCE: "unknown-port"}
    allow, goto, flow = cookie(None, "allow"), goto_table(FORWARD), pipeline_flow
    return (
        *(flow(t.number, 0, t.miss, cookie(None, reasons.get(t.number, "allow"))) for t in PIPELINE.values()),
        flow(SOURCE, 95, goto, allow, "udp", nw_src="0.0.0.0", nw_dst="255.255.255.255", tp_src="68", tp_dst="67"),
        # Duplicate address detection (neighbor solicitation) and MLD reports/done, before a host has an address.
        *(flow(SOURCE, 95, goto, allow, "icmp6", ipv6_src="::", ipv6_dst="ff02::/16", icmp_type=str(t))
          for t in UNSPECIFIED_SOURCE_ICMP6),
    )  # fmt: skip
