"""PortGuard -> the port's flows: the one description of the protection contract (DESIGN.md §4).

The agent installs exactly these flows, and the switch model and
``portsec trace`` evaluate exactly these flows. Each is built by
:func:`~portsec.openflow.pipeline.pipeline_flow`, so each is checked against the
pipeline's declaration (fields, next tables, prerequisites) as it is made.

A port with port security on gets, for ofport P, MACs k, IPv4 bindings n4 and
IPv6 bindings n6 (each MAC brings its link-local address):

    table 0   VLAN-tagged -> drop(vlan); dl_src=m -> 24 (per MAC); else drop(mac)
    table 24  ARP with arp_sha=dl_src and (dl_src, arp_spa) bound -> 60 (a VIP's: copied too, at 95); probe
              from 0.0.0.0 -> 60;
              else drop(arp). NA with (dl_src, nd_target) bound and nd_tll absent or dl_src -> 25
              (its IPv6 source is checked like any other); else drop(nd). Anything else -> 25 (table miss).
    table 25  DHCP/DHCPv6 server -> drop(dhcp-server); RA, redirect -> drop(ra);
              (dl_src, ip source) bound -> 60; other IPv4 -> drop(ipv4-source);
              other IPv6 -> drop(ipv6-source); other ethertypes -> drop(ethertype).
              Shared by all ports (only a bound MAC gets past table 0): DHCP discover
              and DAD / MLD (ICMPv6 135, 131, 132, 143) from :: to ff02::/16 -> 60.
    table 60  NORMAL (a local VLAN per network, set on the OVSDB port, keeps networks apart).

That is 11 + 2k + 2·n4 + 3·n6 flows (each MAC adds its link-local address to n6):
20 for one MAC, one fixed IP and one pair, where OVN needs 22 and Neutron's OVS firewall 46.
The ARP and NA flows of a host pair (a VIP) also copy the packet to the agent, through
a meter: that is how it learns which port holds the VIP now, with no flow added.

A port with port security off, or a trusted port, gets the same flows in audit mode:
each drop becomes "copy to the agent (metered), count under the reason, -> 60", so
``portsec port drops`` tells what strict mode would drop and the copies tell from
which sources, while every packet goes on exactly as with no checks at all. A port with
admin_state_up false gets one flow: drop(admin-down).
"""

from __future__ import annotations

import functools

from portsec.guards import Binding, PortGuard
from portsec.openflow.actions import DROP, Controller, GotoTable, actions, goto_table
from portsec.openflow.flows import AUDIT, REASON_CODE, Flow, cookie
from portsec.openflow.pipeline import ADMISSION, ARP_ND, AUDIT_METER, COPY_BYTES, FORWARD, SOURCE, VIP_METER
from portsec.openflow.pipeline import pipeline_flow as flow  # every flow checked against the pipeline

GOTO_ARP_ND = goto_table(ARP_ND)
GOTO_FORWARD = goto_table(FORWARD)
GOTO_SOURCE = goto_table(SOURCE)
VLAN_PRESENT = "0x1000/0x1000"
NO_MAC = "00:00:00:00:00:00"  # nd_tll when the NA carries no link-layer option
AUDITED = actions(Controller(COPY_BYTES, AUDIT_METER), GotoTable(FORWARD))  # what a drop is in audit mode
ANNOUNCE_ARP = actions(Controller(COPY_BYTES, VIP_METER), GotoTable(FORWARD))
ANNOUNCE_NA = actions(Controller(COPY_BYTES, VIP_METER), GotoTable(SOURCE))


@functools.lru_cache(maxsize=1 << 16)  # IPv6 text is slow to make, and each binding is written 1-3 times
def _address(b: Binding) -> str:
    net = b.network
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def compile_port_flows(guard: PortGuard, ofport: int) -> tuple[Flow, ...]:
    """Every flow of one port on br-int, for the port plugged in at ``ofport``."""
    port = str(ofport)

    base = cookie(guard.port_id, "allow")
    allow, vip = base, base | REASON_CODE["vip"]
    if not guard.admin_up:  # Neutron's dead port: nothing in, whatever its port security
        return (flow(ADMISSION, 100, DROP, base | REASON_CODE["admin-down"], in_port=port),)
    # Strict mode drops; audit mode copies, counts and lets through (the same checks, another verdict).
    drop, audit = (DROP, 0) if guard.enforced else (AUDITED, AUDIT)

    def c(reason: str) -> int:
        return base | REASON_CODE[reason] | audit

    vips = guard.vips
    v4 = [(b, bool(vips) and b in vips) for b in guard.bindings_of(4)]  # (binding, a VIP: announced?)
    v6 = [(b, bool(vips) and b in vips) for b in guard.bindings_of(6)]
    flows = [
        flow(ADMISSION, 100, drop, c("vlan"), in_port=port, vlan_tci=VLAN_PRESENT),
        *(flow(ADMISSION, 90, GOTO_ARP_ND, allow, in_port=port, dl_src=m) for m in guard.macs),
        flow(ADMISSION, 10, drop, c("mac"), in_port=port),
        # ARP: the sender must be the frame's source, and (source MAC, sender IP) a binding.
        # A VIP's, above a pair's CIDR that may cover it: copied to the agent as well.
        *(flow(ARP_ND, 95, ANNOUNCE_ARP, vip, "arp", in_port=port, dl_src=b.mac, arp_spa=_address(b), arp_sha=b.mac)
          if announced else
          flow(ARP_ND, 90, GOTO_FORWARD, allow, "arp", in_port=port, dl_src=b.mac, arp_spa=_address(b), arp_sha=b.mac)
          for b, announced in v4),
        *(flow(ARP_ND, 90, GOTO_FORWARD, allow, "arp", in_port=port, dl_src=m, arp_spa="0.0.0.0", arp_sha=m)
          for m in guard.macs),
        flow(ARP_ND, 10, drop, c("arp"), "arp", in_port=port),
        # Neighbor advertisements: a bound target, and a link-layer option (if any) equal to the source.
        # They then go on to the source check: an NA is an IPv6 packet like any other.
        *(flow(ARP_ND, 95, ANNOUNCE_NA, vip, "icmp6", in_port=port, dl_src=b.mac, icmp_type="136",
               nd_target=_address(b), nd_tll=tll)
          if announced else
          flow(ARP_ND, 90, GOTO_SOURCE, allow, "icmp6", in_port=port, dl_src=b.mac, icmp_type="136",
               nd_target=_address(b), nd_tll=tll)
          for b, announced in v6 for tll in (b.mac, NO_MAC)),
        flow(ARP_ND, 10, drop, c("nd"), "icmp6", in_port=port, icmp_type="136"),
        # Services a VM must not offer, whatever its addresses.
        flow(SOURCE, 100, drop, c("dhcp-server"), "udp", in_port=port, tp_src="67", tp_dst="68"),
        flow(SOURCE, 100, drop, c("dhcp-server"), "udp6", in_port=port, tp_src="547", tp_dst="546"),
        flow(SOURCE, 100, drop, c("ra"), "icmp6", in_port=port, icmp_type="134"),
        flow(SOURCE, 100, drop, c("ra"), "icmp6", in_port=port, icmp_type="137"),
        # Source addresses, bound to their MAC.
        *(flow(SOURCE, 90, GOTO_FORWARD, allow, "ip", in_port=port, dl_src=b.mac, nw_src=_address(b)) for b, _ in v4),
        *(flow(SOURCE, 90, GOTO_FORWARD, allow, "ipv6", in_port=port, dl_src=b.mac, ipv6_src=_address(b))
          for b, _ in v6),
        flow(SOURCE, 10, drop, c("ipv4-source"), "ip", in_port=port),
        flow(SOURCE, 10, drop, c("ipv6-source"), "ipv6", in_port=port),
        flow(SOURCE, 1, drop, c("ethertype"), in_port=port),
    ]  # fmt: skip
    return tuple(flows)
