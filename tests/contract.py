"""DESIGN.md §4, evaluated directly from its table, and hypothesis strategies for ports and packets.

Nothing here uses the compiler, the guards or the switch model: the bindings B,
the link-local addresses and the verdicts are worked out again from the table,
so a test comparing this with the model's verdict on the compiled flows checks
the compiler against the contract, not against itself.

Readings of the table that it fixes:
- the port's own MAC is a MAC of B even with no fixed IP (its link-local address is bound);
- "DAD / MLD from :: to ff02::/16" is a neighbor solicitation (135) or an MLD report or done
  (131, 132, 143) from :: to ff02::/16; any other ICMPv6 from :: (an echo, say) is not bound;
- a neighbor advertisement must pass the NA row *and* the IPv6 source row;
- a VLAN tag is checked before anything else, a source MAC next.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

ANY_NET = ipaddress.ip_network("0.0.0.0/0")
LINK_MCAST = ipaddress.ip_network("ff02::/16")
ZERO_MAC = "00:00:00:00:00:00"
ETHERTYPES = {"arp": 0x0806, **dict.fromkeys(["ip", "udp", "tcp", "icmp"], 0x0800),
              **dict.fromkeys(["ipv6", "udp6", "tcp6", "icmp6"], 0x86DD)}  # fmt: skip


def eui64_link_local(mac: str) -> ipaddress.IPv6Address:
    raw = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([raw[0] ^ 0x02]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid)


def multicast(mac: str) -> bool:
    return bool(int(mac.split(":")[0], 16) & 1)


@dataclass(frozen=True)
class Spec:
    """A packet as plain ovs-ofctl fields, and the contract row it was made to exercise."""

    protocol: str | None
    fields: tuple[tuple[str, str], ...]
    kind: str

    def get(self, name: str, default: str | None = None) -> str | None:
        return dict(self.fields).get(name, default)

    def text(self) -> str:
        return ",".join(([self.protocol] if self.protocol else []) + [f"{k}={v}" for k, v in self.fields])


def bindings(port: dict[str, Any]) -> set[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """B: (port MAC, fixed IP), (pair MAC, pair IP or CIDR), and (m, link-local of m) for every MAC m."""
    mac = port["mac_address"]
    found = {(mac, ipaddress.ip_network(f["ip_address"])) for f in port["fixed_ips"]}
    found |= {(p["mac_address"], ipaddress.ip_network(p["ip_address"], strict=False))
              for p in port["allowed_address_pairs"]}  # fmt: skip
    macs = {mac} | {m for m, _ in found}
    found |= {(m, ipaddress.ip_network(eui64_link_local(m))) for m in macs}
    return found


def contract(port: dict[str, Any], pkt: Spec) -> tuple[bool, str]:
    """(allowed, the row that decided) for ``pkt`` sent by ``port``."""
    if not port["port_security_enabled"] or str(port.get("device_owner", "")).startswith("network:"):
        return True, "unprotected"
    b = bindings(port)
    get = pkt.get
    if int(get("vlan_tci", "0") or "0", 0) & 0x1000:
        return False, "vlan"
    src = get("dl_src")
    assert src is not None
    if multicast(src):
        return False, "multicast-mac"
    if src not in {m for m, _ in b}:
        return False, "mac"

    def bound(mac: str, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(m == mac and n.version == ip.version and ip in n for m, n in b)

    dl_type = ETHERTYPES[pkt.protocol] if pkt.protocol else int(get("dl_type", "0") or "0", 0)
    if dl_type == 0x0806:
        if get("arp_sha") != src:
            return False, "arp-sha"
        if get("arp_spa") == "0.0.0.0":
            return True, "arp-probe"
        return bound(src, get("arp_spa") or "0.0.0.0"), "arp"
    if dl_type == 0x0800:
        ports = (get("tp_src"), get("tp_dst"))
        if pkt.protocol == "udp" and ports == ("67", "68"):
            return False, "dhcp-server"
        if (pkt.protocol == "udp" and ports == ("68", "67") and get("nw_src") == "0.0.0.0"
                and get("nw_dst") == "255.255.255.255"):  # fmt: skip
            return True, "dhcp-client"
        return bound(src, get("nw_src") or "0.0.0.0"), "ipv4"
    if dl_type == 0x86DD:
        icmp_type = int(get("icmp_type", "-1") or "-1") if pkt.protocol == "icmp6" else None
        if pkt.protocol == "udp6" and (get("tp_src"), get("tp_dst")) == ("547", "546"):
            return False, "dhcp-server"
        if icmp_type in (134, 137):
            return False, "ra"
        if icmp_type == 136:
            if not bound(src, get("nd_target") or "::"):
                return False, "na-target"
            if get("nd_tll", ZERO_MAC) not in (ZERO_MAC, src):
                return False, "na-tll"
        source = get("ipv6_src") or "::"
        dad_or_mld = icmp_type in (131, 132, 135, 143)
        if dad_or_mld and source == "::" and ipaddress.ip_address(get("ipv6_dst") or "::") in LINK_MCAST:
            return True, "dad-mld"
        return bound(src, source), "na" if icmp_type == 136 else "ipv6"
    return False, "ethertype"


# -- strategies ----------------------------------------------------------------------------------

V4_POOL = [f"10.0.0.{i}" for i in (1, 2, 5, 9, 17, 18, 200)]
V6_POOL = [f"2001:db8::{i:x}" for i in (1, 2, 5, 9, 17, 18, 200)]
V4_CIDRS = ["10.0.0.0/28", "10.0.0.16/30", "10.0.0.0/24", "0.0.0.0/0", "10.0.0.5/29"]
V6_CIDRS = ["2001:db8::/124", "2001:db8::10/126", "::/0"]
OTHER_ETHERTYPES = ["0x88cc", "0x8847", "0x9000", "0x0842", "0x8035", "0x88f7"]


def macs() -> st.SearchStrategy[str]:
    unicast = st.integers(0, 0xFFFFFF).map(lambda n: f"fa:16:3e:{n >> 16:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}")
    other = st.integers(1, (1 << 48) - 2).map(lambda n: n & ~(1 << 40)).map(_mac_text)
    return st.one_of(unicast, unicast, other)


def _mac_text(n: int) -> str:
    raw = f"{n:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


@st.composite
def ports(draw: st.DrawFn) -> dict[str, Any]:
    """An API view of a port: random MAC, fixed IPs of both families, pairs with other MACs and CIDRs."""
    mac = draw(macs())
    fixed = draw(st.lists(st.sampled_from(V4_POOL), max_size=2, unique=True))
    fixed += draw(st.lists(st.sampled_from(V6_POOL), max_size=2, unique=True))
    pair_ip = st.one_of(st.sampled_from(V4_POOL), st.sampled_from(V6_POOL), st.sampled_from(V4_CIDRS + V6_CIDRS))
    pair_mac = st.one_of(st.just(mac), macs())
    pairs = draw(st.lists(st.tuples(pair_mac, pair_ip), max_size=3, unique=True))
    security = draw(st.sampled_from([True, True, True, True, False]))
    owner = draw(st.sampled_from(["compute:nova"] * 5 + ["network:dhcp", "network:router_interface"]))
    return {
        "id": str(uuid.UUID(int=draw(st.integers(1, (1 << 128) - 1)))),
        "name": "p",
        "network_id": "net",
        "mac_address": mac,
        "port_security_enabled": security,
        "device_owner": owner,
        "fixed_ips": [{"ip_address": ip} for ip in fixed],
        "allowed_address_pairs": [{"mac_address": m, "ip_address": ip} for m, ip in pairs] if security else [],
    }


def _addresses(port: dict[str, Any], version: int) -> list[str]:
    """Addresses near the port's: its own, inside its CIDRs, and its neighbours."""
    pool = [*V4_POOL, "10.0.0.3", "10.0.0.19", "192.168.7.7"] if version == 4 else [*V6_POOL, "2001:db8::11", "fd00::1"]
    own = [f["ip_address"] for f in port["fixed_ips"]]
    own += [p["ip_address"].split("/")[0] for p in port["allowed_address_pairs"]]
    return [a for a in own + pool if ipaddress.ip_address(a).version == version] or pool


@st.composite
def packets(draw: st.DrawFn, port: dict[str, Any], in_port: int) -> Spec:
    """A packet from ``port``, biased to land on its bindings and on every row of the contract."""
    port_macs = [port["mac_address"]] + [p["mac_address"] for p in port["allowed_address_pairs"]]
    src = draw(st.one_of(st.sampled_from(port_macs), st.sampled_from(port_macs), macs(),
                         st.sampled_from(["01:00:5e:00:00:01", "33:33:00:00:00:01", "ff:ff:ff:ff:ff:ff"])))  # fmt: skip
    v4 = st.sampled_from(_addresses(port, 4))
    lls = [str(eui64_link_local(m)) for m in port_macs]
    v6 = st.one_of(st.sampled_from(_addresses(port, 6)), st.sampled_from(lls))
    kind = draw(st.sampled_from(["ipv4", "ipv4", "ipv6", "ipv6", "arp", "arp", "na", "na", "ns", "dad", "mld",
                                 "dhcp-client", "dhcp-server", "dhcpv6-client", "dhcpv6-server", "ra", "redirect",
                                 "echo-from-unspecified", "ethertype"]))  # fmt: skip
    f: dict[str, str] = {"in_port": str(in_port), "dl_src": src}
    protocol: str | None
    if kind == "ipv4":
        protocol = draw(st.sampled_from(["ip", "udp", "tcp", "icmp"]))
        f["nw_src"] = draw(st.one_of(v4, st.just("0.0.0.0")))
        f["nw_dst"] = "10.0.0.254"
        if protocol in ("udp", "tcp"):
            f["tp_src"], f["tp_dst"] = draw(st.sampled_from([("1234", "80"), ("68", "67"), ("67", "68")]))
    elif kind == "ipv6":
        protocol = draw(st.sampled_from(["ipv6", "udp6", "tcp6", "icmp6"]))
        f["ipv6_src"], f["ipv6_dst"] = draw(st.one_of(v6, st.just("::"))), "2001:db8::fe"
        if protocol in ("udp6", "tcp6"):
            f["tp_src"], f["tp_dst"] = draw(st.sampled_from([("1234", "80"), ("546", "547"), ("547", "546")]))
        if protocol == "icmp6":
            f["icmp_type"] = draw(st.sampled_from(["128", "129", "133", "135", "143"]))
    elif kind == "arp":
        protocol = "arp"
        f["arp_op"] = draw(st.sampled_from(["1", "2"]))
        f["arp_spa"] = draw(st.one_of(v4, v4, st.just("0.0.0.0")))
        f["arp_tpa"] = "10.0.0.254"
        f["arp_sha"] = draw(st.one_of(st.just(src), st.just(src), st.sampled_from(port_macs), macs()))
    elif kind in ("na", "ns"):
        protocol = "icmp6"
        f["ipv6_src"] = draw(v6)
        f["ipv6_dst"] = draw(st.sampled_from(["ff02::1", "fe80::1"]))
        f["icmp_type"] = "136" if kind == "na" else "135"
        f["nd_target"] = draw(st.one_of(st.just(f["ipv6_src"]), v6))
        if kind == "na":
            tll = draw(st.one_of(st.just(src), st.just(ZERO_MAC), st.sampled_from(port_macs), macs()))
            if tll != ZERO_MAC:
                f["nd_tll"] = tll
    elif kind in ("dad", "mld", "echo-from-unspecified"):
        protocol = "icmp6"
        f["ipv6_src"] = "::"
        f["ipv6_dst"] = draw(st.sampled_from(["ff02::1:ff00:1", "ff02::16", "ff02::1", "ff05::1", "2001:db8::fe"]))
        f["icmp_type"] = {"dad": "135", "mld": "143", "echo-from-unspecified": "128"}[kind]
        if kind == "dad":
            f["nd_target"] = draw(v6)
    elif kind == "dhcp-client":
        protocol = "udp"
        f.update(nw_src="0.0.0.0", nw_dst=draw(st.sampled_from(["255.255.255.255", "10.0.0.254"])),
                 tp_src="68", tp_dst="67")  # fmt: skip
    elif kind == "dhcp-server":
        protocol = "udp"
        f.update(nw_src=draw(v4), nw_dst="255.255.255.255", tp_src="67", tp_dst="68")
    elif kind in ("dhcpv6-client", "dhcpv6-server"):
        protocol = "udp6"
        f.update(ipv6_src=draw(v6), ipv6_dst="ff02::1:2")
        f["tp_src"], f["tp_dst"] = ("546", "547") if kind == "dhcpv6-client" else ("547", "546")
    elif kind in ("ra", "redirect"):
        protocol = "icmp6"
        f.update(ipv6_src=draw(v6), ipv6_dst="ff02::1", icmp_type="134" if kind == "ra" else "137")
    else:
        protocol = None
        f["dl_type"] = draw(st.sampled_from(OTHER_ETHERTYPES))
    if draw(st.integers(0, 11)) == 0:  # 802.1Q or 802.1ad: Open vSwitch shows either as a present vlan_tci
        f["vlan_tci"] = hex(0x1000 | draw(st.integers(0, 4095)))
    return Spec(protocol, tuple(f.items()), kind)
