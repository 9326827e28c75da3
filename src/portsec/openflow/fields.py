"""The match fields portsec speaks, declared once: name, kind, width, OXM number and prerequisites.

One table serves every reader of a field: the canonical flow text (the order of
:data:`FIELDS` is the order fields are written in), the switch model (each field's
``offset`` in the packed packet and flow integers), packet parsing (``spell``,
``aliases``) and the native OpenFlow encoder (``oxm``). Names are ovs-ofctl's.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

ETH_IP, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD

# Protocol shorthands of ovs-ofctl, and what they mean as (dl_type, nw_proto).
PROTOCOLS: dict[str, tuple[int, int | None]] = {
    "ip": (ETH_IP, None),
    "arp": (ETH_ARP, None),
    "ipv6": (ETH_IPV6, None),
    "udp": (ETH_IP, 17),
    "udp6": (ETH_IPV6, 17),
    "tcp": (ETH_IP, 6),
    "tcp6": (ETH_IPV6, 6),
    "icmp": (ETH_IP, 1),
    "icmp6": (ETH_IPV6, 58),
}


@dataclass(frozen=True)
class Prerequisite:
    """What a field needs, as Open vSwitch checks it: an allowed (dl_type, nw_proto) context and ICMP types.

    ``contexts`` holds (dl_type, nw_proto) pairs; a nw_proto of None allows any.
    """

    contexts: frozenset[tuple[int, int | None]]
    icmp_types: frozenset[int] | None
    words: str  # how an error names the packets the field applies to

    def met(self, dl_type: int | None, nw_proto: int | None, icmp_type: int | None) -> bool:
        if (dl_type, None) not in self.contexts and (dl_type, nw_proto) not in self.contexts:
            return False
        return self.icmp_types is None or icmp_type in self.icmp_types


def _needs(words: str, *contexts: tuple[int, int | None], icmp_types: tuple[int, ...] | None = None) -> Prerequisite:
    return Prerequisite(frozenset(contexts), None if icmp_types is None else frozenset(icmp_types), words)


_IP = _needs("ip", (ETH_IP, None))
_ARP = _needs("arp", (ETH_ARP, None))
_IPV6 = _needs("ipv6", (ETH_IPV6, None))
_PORTS = _needs("tcp, udp, sctp, tcp6, udp6 or sctp6", *((t, p) for t in (ETH_IP, ETH_IPV6) for p in (6, 17, 132)))
_ICMP = _needs("icmp or icmp6", (ETH_IP, 1), (ETH_IPV6, 58))


def _nd(*types: int) -> Prerequisite:
    return _needs(f"icmp6 with icmp_type={' or '.join(map(str, types))}", (ETH_IPV6, 58), icmp_types=types)


@dataclass(frozen=True, eq=False)  # one object per field: identity is equality, and it hashes fast
class Field:
    """One match field. ``oxm`` is its OXM_OF_* number, or per IP protocol when that decides it (ports, ICMP)."""

    name: str
    kind: str  # "int", "mac", "ip4" or "ip6": how its text is read and written
    bits: int
    oxm: int | Mapping[int, int]
    needs: Prerequisite | None = None
    aliases: tuple[str, ...] = ()
    hex: bool = False  # an int written in hex (0x0800), as ovs-ofctl does
    offset: int = 0  # bit offset in the model's packed integers (set below)
    rank: int = 0  # position in the canonical text (set below)
    full: int = 0  # the mask of an exact match, all ``bits`` ones (set below)
    size: int = 0  # bytes in an OXM value (set below)

    @property
    def prefixed(self) -> bool:
        """Its value may be a CIDR, hence a ``/0`` wildcard."""
        return self.kind in ("ip4", "ip6")

    def value_mask(self, text: str) -> tuple[int, int]:
        """The ovs-ofctl value (with optional /mask or /prefix) as integers; the value is masked."""
        return _value_mask(self, text)

    def exact(self, text: str) -> int:
        value, mask = _value_mask(self, text)
        if mask != self.full:
            raise ValueError(f"a packet has exact values, not {self.name}={text}")
        return value

    def spell(self, value: int) -> str:
        """The canonical ovs-ofctl spelling of one exact value."""
        if self.kind == "mac":
            raw = f"{value:012x}"
            return ":".join(raw[i : i + 2] for i in range(0, 12, 2))
        if self.kind == "ip4":
            return str(ipaddress.IPv4Address(value))
        if self.kind == "ip6":
            return str(ipaddress.IPv6Address(value))
        return f"{value:#06x}" if self.hex else str(value)

    def oxm_number(self, nw_proto: int | None) -> int | None:
        """The OXM field number in a flow of IP protocol ``nw_proto``; None when it has none there."""
        return self.oxm if isinstance(self.oxm, int) else self.oxm.get(nw_proto)  # type: ignore[arg-type]


# In the order of the canonical text, which is also the model's bit layout.
FIELDS: tuple[Field, ...] = (
    Field("in_port", "int", 32, 0),
    Field("vlan_tci", "int", 16, 6, hex=True),  # OXM_OF_VLAN_VID: 0x1000 is "a tag is present", as vlan_tci's CFI bit
    Field("dl_src", "mac", 48, 4, aliases=("eth_src",)),
    Field("dl_dst", "mac", 48, 3, aliases=("eth_dst",)),
    Field("dl_type", "int", 16, 5, aliases=("eth_type",), hex=True),
    Field("nw_proto", "int", 8, 10, _needs("ip or ipv6", (ETH_IP, None), (ETH_IPV6, None)), aliases=("ip_proto",)),
    Field("nw_src", "ip4", 32, 11, _IP),
    Field("nw_dst", "ip4", 32, 12, _IP),
    Field("tp_src", "int", 16, {6: 13, 17: 15, 132: 17}, _PORTS),
    Field("tp_dst", "int", 16, {6: 14, 17: 16, 132: 18}, _PORTS),
    Field("arp_op", "int", 16, 21, _ARP),
    Field("arp_spa", "ip4", 32, 22, _ARP),
    Field("arp_tpa", "ip4", 32, 23, _ARP),
    Field("arp_sha", "mac", 48, 24, _ARP),
    Field("arp_tha", "mac", 48, 25, _ARP),
    Field("ipv6_src", "ip6", 128, 26, _IPV6),
    Field("ipv6_dst", "ip6", 128, 27, _IPV6),
    Field("icmp_type", "int", 8, {1: 19, 58: 29}, _ICMP, aliases=("icmpv6_type",)),
    Field("icmp_code", "int", 8, {1: 20, 58: 30}, _ICMP, aliases=("icmpv6_code",)),
    Field("nd_target", "ip6", 128, 31, _nd(135, 136)),
    Field("nd_sll", "mac", 48, 32, _nd(135)),
    Field("nd_tll", "mac", 48, 33, _nd(136)),
)


def _place(fields: tuple[Field, ...]) -> dict[str, Field]:
    placed, at = {}, 0
    for rank, f in enumerate(fields):
        object.__setattr__(f, "offset", at)
        object.__setattr__(f, "rank", rank)
        object.__setattr__(f, "full", (1 << f.bits) - 1)
        object.__setattr__(f, "size", (f.bits + 7) // 8)
        placed[f.name] = f
        at += f.bits
    return placed


FIELD: dict[str, Field] = _place(FIELDS)
NAMES = tuple(FIELD)
ALIASES: dict[str, str] = {alias: f.name for f in FIELDS for alias in f.aliases}
CONTEXT = ("dl_type", "nw_proto", "icmp_type")  # the fields other fields' prerequisites read


def read_match(text: str) -> tuple[str | None, dict[str, str]]:
    """``proto,name=value,...`` in ovs-ofctl syntax: the protocol shorthand (if any) and the fields as written."""
    protocol: str | None = None
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name.strip()] = value.strip()
        elif name:
            if protocol is not None:
                raise ValueError(f"two protocols in {text!r}: {protocol} and {name}")
            protocol = name
    return protocol, fields


def unmet(name: str, dl_type: int | None, nw_proto: int | None, icmp_type: int | None) -> str | None:
    """The packets ``name`` applies to, when the context (exact values, or None) is not among them."""
    needs = FIELD[name].needs
    return None if needs is None or needs.met(dl_type, nw_proto, icmp_type) else needs.words


def pack(values: Mapping[str, int]) -> int:
    """Field values (or masks) as one integer over the layout of :data:`FIELDS`."""
    bits = 0
    for name, value in values.items():
        bits |= value << FIELD[name].offset
    return bits


@functools.lru_cache(maxsize=1 << 16)  # a table repeats its values (ports, MACs, the same few prefixes) a lot
def _value_mask(f: Field, text: str) -> tuple[int, int]:
    try:
        if f.kind == "mac":
            value, _, mask = text.partition("/")
            number, bits = int(value.replace(":", ""), 16), int(mask.replace(":", ""), 16) if mask else f.full
        elif f.kind in ("ip4", "ip6"):
            net = ipaddress.ip_network(text, strict=False)
            if net.version != (4 if f.kind == "ip4" else 6):
                raise ValueError
            return int(net.network_address), int(net.netmask)
        else:
            value, _, mask = text.partition("/")
            number, bits = int(value, 0), int(mask, 0) if mask else f.full
    except ValueError:
        raise ValueError(f"{text!r} is not a valid {f.name}") from None
    if not (0 <= number <= f.full and 0 <= bits <= f.full):
        raise ValueError(f"{text!r} is not a valid {f.name}")
    return number & bits, bits
