"""Flows as immutable values, with one canonical text form in ovs-ofctl syntax.

The text form is what the agent feeds ``ovs-ofctl --bundle``, what golden
files and ``portsec trace`` print, and what :func:`parse_flow` reads back, so
a flow has one spelling everywhere. Two flows with the same :attr:`Flow.key`
(table, priority, match) are the same OpenFlow entry; cookie and actions are
its value.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import NamedTuple, Protocol

from portsec.openflow.actions import Actions, parse_actions
from portsec.openflow.fields import ALIASES, CONTEXT, FIELD, PROTOCOLS, read_match, unmet

# Cookies: 0x5c in the top byte marks portsec's flows; the next 48 bits name
# the port (the first 12 hex digits of its UUID, 0 for bridge-wide flows); the
# low byte says why the flow exists, so a drop counter reads "port X, reason R".
# Its top bit marks an audit flow: one that counts what strict mode would drop
# for reason R, on a port without port security, and lets the packet through.
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
    "vip",  # an ARP or NA a port sends for a host pair: copied to the agent, to learn who holds the VIP
)
DROP_REASONS = (*REASONS[1:10], "admin-down")  # what a port's own flows drop, for `portsec port drops`
REASON_CODE = {r: i for i, r in enumerate(REASONS)}
AUDIT = 0x80  # in the cookie's low byte, over the reason: "would drop", not "dropped"


def port_tag(port_id: str) -> int:
    return int(port_id.replace("-", "")[:12], 16)


def cookie(port_id: str | None, reason: str) -> int:
    tag = port_tag(port_id) if port_id else 0
    return COOKIE_MARK | tag << 8 | REASON_CODE[reason]


def cookie_reason(value: int) -> str | None:
    """The reason a portsec flow exists (an audit flow's: what it would drop for); None for other cookies."""
    if value & ~(PORT_MASK | 0xFF) != COOKIE_MARK or value & 0x7F >= len(REASONS):
        return None
    return REASONS[value & 0x7F]


def cookie_port_tag(value: int) -> int:
    """The port part of a cookie (:func:`port_tag` of its port; 0 for bridge-wide flows)."""
    return (value & PORT_MASK) >> 8


def cookie_audits(value: int) -> bool:
    return cookie_reason(value) is not None and bool(value & AUDIT)


def port_cookie_match(port_id: str) -> str:
    """The ovs-ofctl ``cookie=VALUE/MASK`` that selects every flow of one port."""
    return f"cookie={COOKIE_MARK | port_tag(port_id) << 8:#x}/{0xFFFFFFFFFFFFFF00:#x}"


FlowKey = tuple[int, int, str | None, tuple[tuple[str, str], ...]]


class Flow(NamedTuple):
    """One OpenFlow entry. ``match`` holds (field, value) pairs in :data:`~portsec.openflow.fields.FIELDS` order;
    ``actions`` are structured (:mod:`portsec.openflow.actions`) and written in ovs-ofctl syntax by :meth:`text`.

    A named tuple: made, hashed and compared in C, which a compiler of 10,000 ports feels.
    """

    table: int
    priority: int
    match: tuple[tuple[str, str], ...]
    actions: Actions
    cookie: int = 0
    protocol: str | None = None

    @property
    def key(self) -> FlowKey:
        return (self.table, self.priority, self.protocol, self.match)  # = flow_key(self), for hot loops

    @property
    def reason(self) -> str | None:
        return cookie_reason(self.cookie)

    def match_text(self) -> str:
        fields = ",".join(map("=".join, self.match))
        protocol = self.protocol
        if protocol:
            return f"{protocol},{fields}" if fields else protocol
        return fields

    def text(self) -> str:
        m = self.match_text()
        head = f"table={self.table},priority={self.priority},cookie={self.cookie:#x}"
        return f"{head},{m} actions={self.actions.text}" if m else f"{head} actions={self.actions.text}"

    def __str__(self) -> str:
        return self.text()


flow_key: Callable[[Flow], FlowKey] = operator.itemgetter(0, 1, 5, 2)  # Flow.key, in C
assert flow_key(Flow(1, 2, (("a", "b"),), None, 3, "ip")) == (1, 2, "ip", (("a", "b"),))  # type: ignore[arg-type]


def prerequisite_error(f: Flow) -> str | None:
    """Why ``f`` may not match one of its fields (a port without TCP or UDP, ...), as Open vSwitch refuses it."""
    context: dict[str, int] = {}
    if f.protocol is not None:
        dl_type, nw_proto = PROTOCOLS[f.protocol]
        context["dl_type"] = dl_type
        if nw_proto is not None:
            context["nw_proto"] = nw_proto
    for name, text in f.match:
        if name in CONTEXT:
            value, mask = FIELD[name].value_mask(text)
            if mask == FIELD[name].full:
                context[name] = value
    for name, _ in f.match:
        need = unmet(name, context.get("dl_type"), context.get("nw_proto"), context.get("icmp_type"))
        if need:
            return f"prerequisites not met for {name} (needs {need}): {f}"
    return None


class _Shape:
    """What :func:`flow_builder` knows of one field set: the canonical order (None when the keywords
    already come in it), the positions that may hold a CIDR (hence a ``/0`` wildcard), the positions of
    fields whose values prerequisites read, and what of it was checked."""

    __slots__ = ("cidr", "context", "order", "pending", "seen")

    def __init__(self, names: tuple[str, ...], checking: bool) -> None:
        unknown = [n for n in names if n not in FIELD]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        order = tuple(sorted(range(len(names)), key=lambda i: FIELD[names[i]].rank))
        ordered = [FIELD[names[i]] for i in order]
        self.order = None if order == tuple(range(len(names))) else order
        self.cidr = tuple(i for i, f in enumerate(ordered) if f.prefixed)
        self.context = tuple(i for i, f in enumerate(ordered) if f.name in CONTEXT)
        self.pending = checking  # a flow of this shape still has to be checked
        self.seen: set[object] = set()  # the context values checked, when there are context fields


_make = tuple.__new__


class FlowBuilder(Protocol):
    """The signature of :func:`flow`."""

    def __call__(
        self,
        table: int,
        priority: int,
        actions: Actions | str,
        cookie: int = 0,
        protocol: str | None = None,
        **match: str,
    ) -> Flow: ...


def flow_builder(check: Callable[[Flow], None] | None = None) -> FlowBuilder:
    """:func:`flow`, or one that runs ``check`` on the first flow of each shape it builds.

    A shape is what a check can depend on: table, protocol, actions, the fields
    matched and the values of the fields that others' prerequisites read. A
    compiler writes a handful of shapes, so checking every flow it makes costs
    about one dictionary lookup a flow.
    """
    shapes: dict[object, _Shape] = {}

    def build(
        table: int, priority: int, actions: Actions | str, cookie: int = 0, protocol: str | None = None, **match: str
    ) -> Flow:
        """A flow from keyword fields; values already in ovs-ofctl spelling. Wildcards (``x/0``) are left out."""
        if isinstance(actions, str):
            actions = parse_actions(actions)
        names = tuple(match)
        key = names if check is None else (table, protocol, actions, names)
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = _Shape(names, check is not None)
        items = tuple(match.items())
        if shape.order is not None:
            items = tuple([items[i] for i in shape.order])
        pruned = False
        for i in shape.cidr:
            if items[i][1].endswith("/0"):
                items = tuple([kv for kv in items if not kv[1].endswith("/0")])
                pruned = True
                break
        f = _make(Flow, (table, priority, items, actions, cookie, protocol))  # Flow(...) without its Python __new__
        if shape.pending:
            assert check is not None
            if pruned:  # fewer fields than the shape's (a /0 pair): checked until a flow with all of them was
                check(f)
            elif shape.context:
                context = tuple([items[i][1] for i in shape.context])
                if context not in shape.seen:
                    check(f)
                    shape.seen.add(context)
            else:
                check(f)
                shape.pending = False
        return f

    return build


assert Flow._fields == ("table", "priority", "match", "actions", "cookie", "protocol"), "flow_builder makes these"
flow = flow_builder()


def parse_flow(text: str) -> Flow:
    """Read the canonical text form (the inverse of :meth:`Flow.text`)."""
    head, _, actions = text.strip().partition(" actions=")
    protocol, fields = read_match(head)
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} in {text!r}")
    table = int(fields.pop("table", "0"))
    priority = int(fields.pop("priority", "0"))
    cookie_value = int(fields.pop("cookie", "0"), 0)
    match: dict[str, str] = {}
    for name, value in fields.items():
        if name not in FIELD and name not in ALIASES:
            raise ValueError(f"unknown field {name!r} in {text!r}")
        match[ALIASES.get(name, name)] = value
    return flow(table, priority, parse_actions(actions), cookie_value, protocol, **match)


_STATS = ("duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age=", "reset_counts", "idle_timeout=",
          "hard_timeout=", "send_flow_rem", "importance=")  # fmt: skip


def parse_dump_line(line: str) -> Flow | None:
    """One line of ``ovs-ofctl dump-flows`` (or the canonical text); None for headers and blank lines."""
    line = line.strip()
    if not line or line.startswith(("#", "OFPST_", "NXST_")) or " actions=" not in line:
        return None
    head, _, actions = line.partition(" actions=")
    parts = [p for p in re.split(r",\s*", head.strip()) if p and not p.startswith(_STATS)]
    if not any(p.startswith("priority=") for p in parts):
        parts.append("priority=32768")
    return parse_flow(",".join(parts) + " actions=" + actions)
