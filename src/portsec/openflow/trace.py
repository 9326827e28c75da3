"""`portsec trace`: one packet through one port's flows on the switch model, and why, in port terms.

The flows are the compiler's (the ones the agent installs) plus the bridge's
shared flows; the verdict is the model's. The words only interpret that verdict:
which binding let the packet through, or which rule of DESIGN.md §4 dropped it
and the command that would allow it, when one can.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portsec.domain.addresses import is_multicast_mac, link_local
from portsec.domain.model import is_trusted_owner
from portsec.guards import Binding, PortGuard
from portsec.openflow.compiler import NO_MAC, compile_port_flows
from portsec.openflow.flows import cookie_audits
from portsec.openflow.model import SwitchModel, Verdict
from portsec.openflow.packet import ETH_ARP, ETH_IP, ETH_IPV6, Packet, parse_packet
from portsec.openflow.pipeline import bridge_flows

_ALL_LINK_LOCAL_MULTICAST = ipaddress.ip_network("ff02::/16")


@dataclass(frozen=True)
class Trace:
    """The packet as traced (with what was filled in), the model's verdict, and the words."""

    packet: Packet
    verdict: Verdict
    why: str
    fix: str | None  # "to allow it: <command>", or None when nothing but the VM's own behaviour can change it

    @property
    def forwarded(self) -> bool:
        return self.verdict.forwarded

    @property
    def flows(self) -> tuple[str, ...]:
        return tuple(f.text() for f in self.verdict.path)

    def headline(self) -> str:
        if self.verdict.forwarded:
            return "forwarded"
        if self.verdict.reason:
            return f"dropped ({self.verdict.reason})"
        return f"dropped (no flow in table {self.verdict.missed_table})"

    def text(self) -> str:
        lines = [f"verdict: {self.headline()}", f"packet:  {self.packet}", "flows:"]
        lines += [f"  {f}" for f in self.flows]
        lines.append(f"why:     {self.why}")
        if self.fix:
            lines.append(self.fix)
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Facts:
    """What the API says about the port beyond its guard: for words only."""

    name: str
    ref: str  # how a command names the port: its name if it has one, else its ID
    fixed_ips: tuple[str, ...]
    has_pairs: bool
    trusted_owner: str | None
    security_off: bool | None
    known: bool  # the API's view was given: fixed IPs and pairs can be told apart


def _facts(guard: PortGuard, port: Mapping[str, Any] | None, name: str | None) -> _Facts:
    port = port or {}
    shown = name or port.get("name") or guard.port_id
    owner = str(port.get("device_owner") or "")
    security = port.get("port_security_enabled")
    return _Facts(
        name=shown,
        ref=shown,
        fixed_ips=tuple(str(f["ip_address"]) for f in port.get("fixed_ips") or ()),
        has_pairs=bool(port.get("allowed_address_pairs")),
        trusted_owner=owner if is_trusted_owner(owner) else None,
        security_off=None if security is None else not security,
        known="fixed_ips" in port,
    )


def trace(
    guard: PortGuard,
    spec: str | Packet,
    ofport: int,
    *,
    port: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Trace:
    """Trace ``spec`` (a microflow in ovs-ofctl syntax) sent by the port plugged in at ``ofport``.

    What the spec leaves out comes from the port: ``in_port``, ``dl_src`` (the
    port's MAC), the ARP sender (``arp_sha`` = ``dl_src``, ``arp_op=1``,
    ``arp_spa`` = its first fixed IPv4), the IP source (its first fixed
    address of that family), and a neighbor advertisement's target (its IPv6
    source). ``port`` (the API's view of the port) only improves the words.
    """
    facts = _facts(guard, port, name)
    packet = fill(guard, parse_packet(spec) if isinstance(spec, str) else spec, ofport, facts.fixed_ips)
    model = SwitchModel([*compile_port_flows(guard, ofport), *bridge_flows()])
    verdict = model.evaluate(packet)
    if verdict.forwarded:
        return Trace(packet, verdict, _why_forwarded(guard, packet, facts) + _audit_note(guard, verdict, packet, facts),
                     None)  # fmt: skip
    why, fix = _why_dropped(guard, packet, verdict, facts)
    return Trace(packet, verdict, why, fix)


def _audit_note(guard: PortGuard, verdict: Verdict, packet: Packet, facts: _Facts) -> str:
    """What strict mode would say, when an audit flow counted this packet (a port without port security)."""
    audited = [f.reason for f in verdict.path if cookie_audits(f.cookie)]
    if not audited:
        return ""
    strict = dataclasses.replace(guard, enforced=True)
    model = SwitchModel([*compile_port_flows(strict, packet.in_port), *bridge_flows()])
    why, fix = _why_dropped(strict, packet, model.evaluate(packet), facts)
    return f"; with port security on it would be dropped ({audited[0]}): {why}" + (f" ({fix})" if fix else "")


def fill(guard: PortGuard, packet: Packet, ofport: int, fixed_ips: tuple[str, ...] = ()) -> Packet:
    """``packet`` with what it leaves out taken from the port (see :func:`trace`)."""
    packet = packet.with_defaults(in_port=str(ofport), dl_src=guard.mac)
    src = packet.get("dl_src") or guard.mac
    dl_type, proto = packet.dl_type, packet.nw_proto
    if dl_type == ETH_ARP:
        first = _first(guard, fixed_ips, 4, src)
        return packet.with_defaults(arp_sha=src, arp_op="1", dl_dst="ff:ff:ff:ff:ff:ff", **_some(arp_spa=first))
    if dl_type == ETH_IP:
        return packet.with_defaults(**_some(nw_src=_first(guard, fixed_ips, 4, src)))
    if dl_type == ETH_IPV6:
        packet = packet.with_defaults(ipv6_src=_first(guard, fixed_ips, 6, src) or str(link_local(src)))
        if proto == 58 and packet.value("icmp_type") == 136:
            packet = packet.with_defaults(**_some(nd_target=packet.get("ipv6_src")))
    return packet


def _some(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _first(guard: PortGuard, fixed_ips: tuple[str, ...], version: int, mac: str) -> str | None:
    """The port's first fixed IP of a family; without the API's view, its first host binding for ``mac``."""
    for ip in fixed_ips:
        if ipaddress.ip_address(ip).version == version:
            return ip
    for b in guard.bindings_of(version):
        if b.mac == mac and b.network.num_addresses == 1 and not b.network.network_address.is_link_local:
            return str(b.network.network_address)
    return None


# -- words ---------------------------------------------------------------------------------------


def _binding_words(guard: PortGuard, b: Binding, address: str, facts: _Facts) -> str:
    net = b.network
    host = net.num_addresses == 1
    if host and net.network_address == link_local(b.mac):
        whose = "a MAC of" if b.mac != guard.mac else "the MAC of"
        return f"{address} is the link-local address of {b.mac}, {whose} {facts.name}"
    if host and b.mac == guard.mac and address in facts.fixed_ips:
        return f"{address} is a fixed IP of {facts.name} (MAC {b.mac})"
    if host:
        kind = "an allowed address pair" if facts.known else "a fixed IP or allowed address pair"
        return f"{address} is {kind} of {facts.name} (MAC {b.mac})"
    return f"{address} is in the allowed address pair {net} of {facts.name} (MAC {b.mac})"


def _why_forwarded(guard: PortGuard, packet: Packet, facts: _Facts) -> str:
    if not guard.enforced:
        if facts.trusted_owner:
            return f"{facts.name} is a trusted port (device_owner {facts.trusted_owner}): nothing it sends is dropped"
        if facts.security_off:
            return f"port security is off for {facts.name}: nothing it sends is dropped"
        return f"{facts.name} has no anti-spoofing (port security off, or a trusted port): nothing it sends is dropped"
    src = packet.get("dl_src") or guard.mac
    dl_type = packet.dl_type
    if dl_type == ETH_ARP:
        spa = packet.get("arp_spa") or "0.0.0.0"
        if spa == "0.0.0.0":
            return f"an ARP probe (sender IP 0.0.0.0) from {src}, a MAC of {facts.name}"
        return _allowed(guard, src, spa, facts, "ARP sender ")
    if dl_type == ETH_IP:
        nw_src = packet.get("nw_src") or "0.0.0.0"
        if nw_src == "0.0.0.0" and packet.get("nw_dst") == "255.255.255.255":
            return f"a DHCP client request from 0.0.0.0 to 255.255.255.255, sent from {src}, a MAC of {facts.name}"
        return _allowed(guard, src, nw_src, facts, "")
    if dl_type == ETH_IPV6:
        ipv6_src = packet.get("ipv6_src") or "::"
        dst = ipaddress.ip_address(packet.get("ipv6_dst") or "::")
        if packet.nw_proto == 58 and packet.value("icmp_type") == 136:
            target = packet.get("nd_target") or "::"
            b = guard.binding_for(src, target)
            if b is not None:
                words = _binding_words(guard, b, target, facts)
                return f"a neighbor advertisement for {target}, which {words.partition(' ')[2]}"
        if ipv6_src == "::" and dst in _ALL_LINK_LOCAL_MULTICAST:
            return f"duplicate address detection / MLD from :: to {dst}, sent from {src}, a MAC of {facts.name}"
        return _allowed(guard, src, ipv6_src, facts, "")
    return f"forwarded from {src}"


def _allowed(guard: PortGuard, src: str, address: str, facts: _Facts, what: str) -> str:
    b = guard.binding_for(src, address)
    if b is None:  # not reached when the model forwarded; say what is known
        return f"{what}{address} from {src} is forwarded"
    return what + _binding_words(guard, b, address, facts)


def _why_dropped(guard: PortGuard, packet: Packet, verdict: Verdict, facts: _Facts) -> tuple[str, str | None]:
    reason = verdict.reason
    src = packet.get("dl_src") or guard.mac
    name = facts.name
    if reason is None:
        return f"no flow matched in table {verdict.missed_table}, and a table miss drops", None
    if reason == "unknown-port":
        return (
            f"in_port {packet.in_port} is not the interface of any known port, so what it sends is dropped "
            "(fail closed)",
            f"to allow it: plug the port's interface into br-int with external_ids:iface-id={guard.port_id}",
        )
    if reason == "admin-down":
        return (f"{name} is administratively down (admin_state_up is false): it may send nothing",
                f"to allow it: portsec port set {name} --enable")  # fmt: skip
    if reason == "mac":
        if is_multicast_mac(src):
            return f"{src} is a multicast MAC: no port may send from one, and no address pair can allow it", None
        ip = _source_address(packet)
        return (
            f"{src} is not the MAC of {name} ({guard.mac}) or of any of its allowed address pairs",
            _pair_fix(facts, ip or "<ip-address>", src, guard),
        )
    if reason == "vlan":
        return (
            f"{name} sent a VLAN-tagged frame (vlan_tci={packet.get('vlan_tci')}); a port with port security "
            "sends untagged frames only",
            _security_off_fix(facts),
        )
    if reason == "arp":
        sha = packet.get("arp_sha") or NO_MAC
        if sha != src:
            return (
                f"the ARP sender MAC {sha} is not the frame's source MAC {src}; no allowed address pair can allow that",
                None,
            )
        return _not_bound(guard, packet.get("arp_spa") or "0.0.0.0", src, facts)
    if reason in ("ipv4-source", "ipv6-source"):
        field = "nw_src" if reason == "ipv4-source" else "ipv6_src"
        return _not_bound(guard, packet.get(field) or ("0.0.0.0" if field == "nw_src" else "::"), src, facts)
    if reason == "nd":
        tll = packet.get("nd_tll") or NO_MAC
        if tll not in (NO_MAC, src):
            return (
                f"the neighbor advertisement's target link-layer address {tll} is not its source MAC {src}; no "
                "allowed address pair can allow that",
                None,
            )
        target = packet.get("nd_target") or "::"
        why, fix = _not_bound(guard, target, src, facts)
        return f"the neighbor advertisement is for {target}, and {why}", fix
    if reason == "dhcp-server":
        v6 = packet.dl_type == ETH_IPV6
        ports = "547->546" if v6 else "67->68"
        return (
            f"{name} sent a DHCP{'v6' if v6 else ''} server reply (UDP {ports}); only a port with port "
            "security off may act as a DHCP server",
            _security_off_fix(facts),
        )
    if reason == "ra":
        kind = "redirect" if packet.value("icmp_type") == 137 else "router advertisement"
        return (
            f"{name} sent an ICMPv6 {kind}; only a port with port security off may act as a router",
            _security_off_fix(facts),
        )
    if reason == "ethertype":
        return (
            f"ethertype {packet.dl_type:#06x} is not IPv4, IPv6 or ARP; only a port with port security off may send it",
            _security_off_fix(facts),
        )
    return f"dropped by a flow whose cookie says {reason}", None


def _source_address(packet: Packet) -> str | None:
    for name in ("nw_src", "arp_spa", "ipv6_src"):
        value = packet.get(name)
        if value and value not in ("0.0.0.0", "::"):
            return value
    return None


def _not_bound(guard: PortGuard, address: str, src: str, facts: _Facts) -> tuple[str, str | None]:
    ip = ipaddress.ip_address(address)
    others = sorted({b.mac for b in guard.bindings if b.version == ip.version and ip in b.network} - {src})
    if others:
        why = f"{address} is allowed for {facts.name} only from MAC {', '.join(others)}, not from {src}"
    else:
        why = f"{address} is not a fixed IP or allowed address pair of {facts.name} (MAC {src})"
    return why, _pair_fix(facts, address, src, guard)


def _pair_fix(facts: _Facts, address: str, mac: str, guard: PortGuard) -> str:
    mac_part = "" if mac == guard.mac else f",mac-address={mac}"
    return f"to allow it: portsec port set {facts.ref} --allowed-address ip-address={address}{mac_part}"


def _security_off_fix(facts: _Facts) -> str:
    pairs = "--no-allowed-address " if facts.has_pairs else ""
    return (
        f"to allow it: portsec port set {facts.ref} {pairs}--disable-port-security "
        f"(this turns off all anti-spoofing for {facts.name})"
    )
