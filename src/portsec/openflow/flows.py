"""Flows as frozen values, with one canonical text form in ovs-ofctl syntax.

The text form is what the agent feeds ``ovs-ofctl --bundle``, what golden
files and ``portsec trace`` print, and what :func:`parse_flow` reads back, so
a flow has one spelling everywhere. Two flows with the same :attr:`Flow.key`
(table, priority, match) are the same OpenFlow entry; cookie and actions are
its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Protocol shorthands of ovs-ofctl, and what they mean as (dl_type, nw_proto).
PROTOCOLS: dict[str, tuple[int, int | None]] = {
    "ip": (0x0800, None),
    "arp": (0x0806, None),
    "ipv6": (0x86DD, None),
    "udp": (0x0800, 17),
    "udp6": (0x86DD, 17),
    "tcp": (0x0800, 6),
    "tcp6": (0x86DD, 6),
    "icmp": (0x0800, 1),
    "icmp6": (0x86DD, 58),
}

# Match fields in the order the canonical text writes them.
FIELDS = (
    "in_port",
    "vlan_tci",
    "dl_src",
    "dl_dst",
    "dl_type",
    "nw_src",
    "nw_dst",
    "tp_src",
    "tp_dst",
    "arp_spa",
    "arp_tpa",
    "arp_sha",
    "ipv6_src",
    "ipv6_dst",
    "icmp_type",
    "nd_target",
    "nd_tll",
)
_FIELD_RANK = {f: i for i, f in enumerate(FIELDS)}

# Cookies: 0x5c in the top byte marks portsec's flows; the next 48 bits name
# the port (the first 12 hex digits of its UUID, 0 for bridge-wide flows); the
# low byte says why the flow exists, so a drop counter reads "port X, reason R".
COOKIE_MARK = 0x5C << 56
PORT_MASK = 0x00FFFFFFFFFFFF00
REASONS = (
    "allow",
    "mac",
    "ipv4-source",
    "ipv6-source",
    "arp",
    "nd",
    "dhcp-server",
    "ra",
    "vlan",
    "ethertype",
    "unknown-port",
    "canary",
    "admin-down",
)
DROP_REASONS = (*REASONS[1:10], "admin-down")  # what a port's own flows drop, for `portsec port drops`
REASON_CODE = {r: i for i, r in enumerate(REASONS)}


def port_tag(port_id: str) -> int:
    return int(port_id.replace("-", "")[:12], 16)


def cookie(port_id: str | None, reason: str) -> int:
    tag = port_tag(port_id) if port_id else 0
    return COOKIE_MARK | tag << 8 | REASON_CODE[reason]


def cookie_reason(value: int) -> str | None:
    if value & ~(PORT_MASK | 0xFF) != COOKIE_MARK or value & 0xFF >= len(REASONS):
        return None
    return REASONS[value & 0xFF]


def port_cookie_match(port_id: str) -> str:
    """The ovs-ofctl ``cookie=VALUE/MASK`` that selects every flow of one port."""
    return f"cookie={COOKIE_MARK | port_tag(port_id) << 8:#x}/{0xFFFFFFFFFFFFFF00:#x}"


FlowKey = tuple[int, int, str | None, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Flow:
    """One OpenFlow entry. ``match`` holds (field, value) pairs in :data:`FIELDS` order."""

    table: int
    priority: int
    match: tuple[tuple[str, str], ...]
    actions: str
    cookie: int = 0
    protocol: str | None = None

    @property
    def key(self) -> FlowKey:
        return (self.table, self.priority, self.protocol, self.match)

    @property
    def reason(self) -> str | None:
        return cookie_reason(self.cookie)

    def match_text(self) -> str:
        parts = [self.protocol] if self.protocol else []
        parts += [f"{k}={v}" for k, v in self.match]
        return ",".join(parts)

    def text(self) -> str:
        m = self.match_text()
        return (
            f"table={self.table},priority={self.priority},cookie={self.cookie:#x}"
            + (f",{m}" if m else "")
            + f" actions={self.actions}"
        )

    def __str__(self) -> str:
        return self.text()


def flow(table: int, priority: int, actions: str, cookie: int = 0, protocol: str | None = None, **match: str) -> Flow:
    """A flow from keyword fields; values already in ovs-ofctl spelling. Wildcards (``x/0``) are left out."""
    names = tuple(match)
    shape = _SHAPES.get(names) or _shape(names)
    items = tuple(match.items())
    if shape[0] is not None:
        items = tuple(items[i] for i in shape[0])
    for i in shape[1]:
        if items[i][1].endswith("/0"):
            items = tuple(kv for kv in items if not kv[1].endswith("/0"))
            break
    return Flow(table, priority, items, actions, cookie, protocol)


# The compiler uses a handful of field sets; for each, once: the canonical order (None when the
# keywords already come in it) and the positions that may hold a CIDR, hence a /0 wildcard.
_SHAPES: dict[tuple[str, ...], tuple[tuple[int, ...] | None, tuple[int, ...]]] = {}
_CIDR_FIELDS = frozenset({"nw_src", "nw_dst", "arp_spa", "arp_tpa", "ipv6_src", "ipv6_dst", "nd_target"})


def _shape(names: tuple[str, ...]) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
    order = tuple(sorted(range(len(names)), key=lambda i: _FIELD_RANK[names[i]]))
    ordered = [names[i] for i in order]
    cidr = tuple(i for i, n in enumerate(ordered) if n in _CIDR_FIELDS)
    _SHAPES[names] = shape = (None if order == tuple(range(len(names))) else order, cidr)
    return shape


_SPLIT = re.compile(r",(?![^(]*\))")


def parse_flow(text: str) -> Flow:
    """Read the canonical text form (the inverse of :meth:`Flow.text`)."""
    head, _, actions = text.strip().partition(" actions=")
    table = priority = cookie_value = 0
    protocol = None
    match: dict[str, str] = {}
    for part in _SPLIT.split(head):
        name, eq, value = part.partition("=")
        if not eq:
            if name not in PROTOCOLS:
                raise ValueError(f"unknown protocol {name!r} in {text!r}")
            protocol = name
        elif name == "table":
            table = int(value)
        elif name == "priority":
            priority = int(value)
        elif name == "cookie":
            cookie_value = int(value, 0)
        elif name in _FIELD_RANK:
            match[name] = value
        else:
            raise ValueError(f"unknown field {name!r} in {text!r}")
    return flow(table, priority, actions, cookie_value, protocol, **match)
