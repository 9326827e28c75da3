"""The frames of the protection contract (DESIGN.md §4), one per row, as sent from the seed's server1.

Shared by the tests of both backends: the native agent counts each drop under its
reason, and OVN's pipeline on a hypervisor must drop or pass the same frames.
"""

from __future__ import annotations

from typing import Any

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Advertise
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6NDOptDstLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

M1, M2, MC = "fa:16:3e:3e:e3:14", "fa:16:3e:7b:e9:03", "fa:16:3e:00:00:02"
LLA1 = "fe80::f816:3eff:fe3e:e314"
OTHER_MAC = "fa:16:3e:99:99:99"
BCAST = "ff:ff:ff:ff:ff:ff"


def contract_rows() -> list[tuple[str, Any, str | None]]:
    """(what, frame from server1, the reason it is dropped for, or None when it must pass)."""
    ip1 = IP(src="192.168.1.138", dst="192.168.1.2")
    return [
        ("foreign source MAC", Ether(src=OTHER_MAC, dst=MC) / ip1 / UDP(sport=1, dport=9), "mac"),
        ("multicast source MAC", Ether(src="01:00:5e:00:00:01", dst=MC) / ip1 / UDP(sport=1, dport=9), "mac"),
        ("own MAC and IP", Ether(src=M1, dst=MC) / ip1 / UDP(sport=1, dport=9), None),
        ("IPv4 source not bound", Ether(src=M1, dst=MC) / IP(src="192.168.1.99", dst="192.168.1.2") / UDP(), "ipv4-source"),
        ("DHCP discover", Ether(src=M1, dst=BCAST) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
         / BOOTP(chaddr=bytes.fromhex("fa163e3ee314")) / DHCP(options=[("message-type", "discover"), "end"]), None),
        ("ARP sender MAC is not the frame's", Ether(src=M1, dst=BCAST) / ARP(hwsrc=OTHER_MAC, psrc="192.168.1.138", pdst="192.168.1.2"), "arp"),
        ("ARP for an address not bound", Ether(src=M1, dst=BCAST) / ARP(hwsrc=M1, psrc="192.168.1.99", pdst="192.168.1.2"), "arp"),
        ("ARP probe", Ether(src=M1, dst=BCAST) / ARP(hwsrc=M1, psrc="0.0.0.0", pdst="192.168.1.138"), None),
        ("ARP for its own address", Ether(src=M1, dst=BCAST) / ARP(hwsrc=M1, psrc="192.168.1.138", pdst="192.168.1.2"), None),
        ("IPv6 source not bound", Ether(src=M1, dst=MC) / IPv6(src="2001:db8:1::99", dst="2001:db8:1::2") / UDP(), "ipv6-source"),
        ("IPv6 from its link-local address", Ether(src=M1, dst=MC) / IPv6(src=LLA1, dst="fe80::1") / UDP(), None),
        ("DAD from ::", Ether(src=M1, dst="33:33:ff:00:01:38") / IPv6(src="::", dst="ff02::1:ff00:138")
         / ICMPv6ND_NS(tgt="2001:db8:1::138"), None),
        ("NA for an address not bound", Ether(src=M1, dst="33:33:00:00:00:01") / IPv6(src=LLA1, dst="ff02::1")
         / ICMPv6ND_NA(tgt="2001:db8:1::99") / ICMPv6NDOptDstLLAddr(lladdr=M1), "nd"),
        ("NA with another link-layer address", Ether(src=M1, dst="33:33:00:00:00:01") / IPv6(src=LLA1, dst="ff02::1")
         / ICMPv6ND_NA(tgt="2001:db8:1::138") / ICMPv6NDOptDstLLAddr(lladdr=OTHER_MAC), "nd"),
        ("NA for its own address", Ether(src=M1, dst="33:33:00:00:00:01") / IPv6(src=LLA1, dst="ff02::1")
         / ICMPv6ND_NA(tgt="2001:db8:1::138") / ICMPv6NDOptDstLLAddr(lladdr=M1), None),
        ("DHCP server reply", Ether(src=M1, dst=MC) / IP(src="192.168.1.138", dst="192.168.1.2") / UDP(sport=67, dport=68)
         / BOOTP(op=2), "dhcp-server"),
        ("DHCPv6 server reply", Ether(src=M1, dst=MC) / IPv6(src=LLA1, dst="fe80::1") / UDP(sport=547, dport=546)
         / DHCP6_Advertise(), "dhcp-server"),
        ("router advertisement", Ether(src=M1, dst="33:33:00:00:00:01") / IPv6(src=LLA1, dst="ff02::1") / ICMPv6ND_RA(), "ra"),
        ("ICMPv6 redirect", Ether(src=M1, dst=MC) / IPv6(src=LLA1, dst="fe80::1")
         / ICMPv6ND_Redirect(tgt="fe80::2", dst="2001:db8:9::1"), "ra"),
        ("802.1Q tagged", Ether(src=M1, dst=MC) / Dot1Q(vlan=5) / ip1 / UDP(), "vlan"),
        ("802.1ad tagged", Ether(src=M1, dst=MC) / Dot1AD(vlan=5) / Dot1Q(vlan=6) / ip1 / UDP(), "vlan"),
        ("LLDP (another ethertype)", Ether(src=M1, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02\x07" + b"\x00" * 40), "ethertype"),
    ]  # fmt: skip
