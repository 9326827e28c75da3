"""Packets as the switch sees them: microflows in ovs-ofctl syntax, read, checked and packed once.

A :class:`Packet` carries its fields' text (to print it) and one integer over
the layout of :data:`~portsec.openflow.fields.FIELDS` (to match it): the switch
model (:mod:`portsec.openflow.model`) tests a flow against it with one mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from portsec.openflow.fields import (
    ALIASES,
    CONTEXT,
    ETH_ARP,
    ETH_IP,
    ETH_IPV6,
    FIELD,
    NAMES,
    PROTOCOLS,
    pack,
    read_match,
    unmet,
)

__all__ = ["ETH_ARP", "ETH_IP", "ETH_IPV6", "PACKET_FIELDS", "Packet", "make_packet", "parse_packet"]

PACKET_FIELDS = NAMES


@dataclass(frozen=True)
class Packet:
    """One packet as the switch sees it: ovs-ofctl field names, exact values.

    Fields left out are zero, as in Open vSwitch's flow key (an NA without a
    target link-layer option has ``nd_tll=00:00:00:00:00:00``). ``bits`` is the
    packed form the model matches against, computed once.
    """

    protocol: str | None
    fields: tuple[tuple[str, str], ...]
    bits: int = field(compare=False, repr=False)
    in_port: int = field(compare=False, repr=False)

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    def value(self, name: str) -> int:
        """A field as an integer (0 when absent)."""
        f = FIELD[name]
        return self.bits >> f.offset & f.full

    @property
    def dl_type(self) -> int:
        return self.value("dl_type")

    @property
    def nw_proto(self) -> int:
        return self.value("nw_proto")

    def text(self) -> str:
        """The microflow in ovs-ofctl syntax (what ``ovs-appctl ofproto/trace`` reads, bar icmp6's type)."""
        parts = [self.protocol] if self.protocol else []
        return ",".join(parts + [f"{k}={v}" for k, v in self.fields])

    def with_defaults(self, **defaults: str) -> Packet:
        """This packet, with ``defaults`` for the fields it does not set."""
        given = dict(self.fields)
        return make_packet(self.protocol, {**{k: v for k, v in defaults.items() if k not in given}, **given})

    def __str__(self) -> str:
        return self.text()


def make_packet(protocol: str | None = None, fields: Mapping[str, str] | None = None, **more: str) -> Packet:
    """A packet from a protocol shorthand (``arp``, ``icmp6`` ...) and fields in ovs-ofctl spelling."""
    given = {ALIASES.get(k, k): v for k, v in {**(fields or {}), **more}.items()}
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    if "dl_vlan" in given:  # a VLAN ID: the tag is present, with that ID
        given["vlan_tci"] = hex(0x1000 | int(given.pop("dl_vlan"), 0))
    values: dict[str, int] = {}
    if protocol is not None:
        dl_type, nw_proto = PROTOCOLS[protocol]
        values["dl_type"] = dl_type
        if nw_proto is not None:
            values["nw_proto"] = nw_proto
    if protocol == "arp":  # ovs-ofctl reads nw_src/nw_dst of an ARP packet as its sender/target IP
        for ip, arp in (("nw_src", "arp_spa"), ("nw_dst", "arp_tpa")):
            if ip in given:
                given.setdefault(arp, given.pop(ip))
    unknown = sorted(set(given) - FIELD.keys())
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(PACKET_FIELDS)})")
    # Context fields first, then the rest, so prerequisites can be checked in order.
    for name in CONTEXT:
        if name in given:
            values[name] = FIELD[name].exact(given[name])
    for name, text in given.items():
        values[name] = FIELD[name].exact(text)
    for name in given:
        need = unmet(name, values.get("dl_type"), values.get("nw_proto"), values.get("icmp_type"))
        if need:
            raise ValueError(f"{name} applies only to {need} packets")
    implied = {"dl_type", "nw_proto"} if protocol else set()
    spelled = tuple(
        (name, FIELD[name].spell(values[name]))
        for name in sorted(values, key=lambda n: FIELD[n].rank)
        if name not in implied
    )
    return Packet(protocol, spelled, pack(values), values.get("in_port", 0))


def parse_packet(text: str) -> Packet:
    """A microflow in ovs-ofctl syntax: ``arp,in_port=5,dl_src=fa:16:3e:3e:e3:14,arp_spa=192.168.1.10``."""
    return make_packet(*read_match(text))
