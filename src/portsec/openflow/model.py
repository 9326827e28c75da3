"""The switch model: br-int's flow tables held in memory, evaluating packets with OpenFlow semantics.

It holds :class:`~portsec.openflow.flows.Flow` values (the compiler's output, or
``ovs-ofctl`` text read back with :func:`~portsec.openflow.flows.parse_flow`),
applies adds and deletes the way ``ovs-ofctl --bundle`` does (one key = one
entry; adding an existing key replaces its actions and cookie and keeps its
counters), and evaluates packets: per table the highest-priority match wins,
masks and CIDRs are honoured, ``goto_table`` / ``resubmit(,N)`` move on, ``NORMAL``
and ``output`` forward, and a miss drops. Counters are per flow.

Two flows at one priority in one table that can match the same packet but act
differently are refused (:class:`AmbiguousFlows`): Open vSwitch would pick one
of them arbitrarily, so such a pair is a bug in whoever wrote the flows.

Speed: every field of a packet is packed once into one integer, and every flow
is compiled into an integer (value, mask) pair over the same layout, so a
match test is ``bits & mask == value``. Flows are indexed by (table, in_port).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from portsec.openflow.flows import PROTOCOLS, Flow, parse_flow

# The packet fields the model knows, in ovs-ofctl spelling, with their kind and width in bits.
_LAYOUT: tuple[tuple[str, str, int], ...] = (
    ("in_port", "int", 32),
    ("vlan_tci", "int", 16),
    ("dl_src", "mac", 48),
    ("dl_dst", "mac", 48),
    ("dl_type", "int", 16),
    ("nw_proto", "int", 8),
    ("nw_src", "ip4", 32),
    ("nw_dst", "ip4", 32),
    ("tp_src", "int", 16),
    ("tp_dst", "int", 16),
    ("arp_op", "int", 16),
    ("arp_spa", "ip4", 32),
    ("arp_tpa", "ip4", 32),
    ("arp_sha", "mac", 48),
    ("arp_tha", "mac", 48),
    ("ipv6_src", "ip6", 128),
    ("ipv6_dst", "ip6", 128),
    ("icmp_type", "int", 8),
    ("icmp_code", "int", 8),
    ("nd_target", "ip6", 128),
    ("nd_sll", "mac", 48),
    ("nd_tll", "mac", 48),
)
PACKET_FIELDS = tuple(name for name, _, _ in _LAYOUT)
_KIND = {name: kind for name, kind, _ in _LAYOUT}
_WIDTH = {name: width for name, _, width in _LAYOUT}
_OFFSET: dict[str, int] = {}
_at = 0
for _name, _, _width in _LAYOUT:
    _OFFSET[_name] = _at
    _at += _width
del _at, _name, _width

ETH_IP, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
_TRANSPORT = frozenset({1, 6, 17, 58, 132})
# ovs-ofctl spellings that mean one of our fields.
_ALIASES = {"icmpv6_type": "icmp_type", "icmpv6_code": "icmp_code", "eth_src": "dl_src", "eth_dst": "dl_dst",
            "eth_type": "dl_type", "ip_proto": "nw_proto"}  # fmt: skip


def _prerequisite(name: str, dl_type: int | None, nw_proto: int | None, icmp_type: int | None) -> str | None:
    """What ``name`` needs, as Open vSwitch checks it; None when the context provides it."""
    if name in ("nw_src", "nw_dst"):
        return None if dl_type == ETH_IP else "ip"
    if name == "nw_proto":
        return None if dl_type in (ETH_IP, ETH_IPV6) else "ip or ipv6"
    if name in ("tp_src", "tp_dst"):
        ok = dl_type in (ETH_IP, ETH_IPV6) and nw_proto in (6, 17, 132)
        return None if ok else "tcp, udp, sctp, tcp6, udp6 or sctp6"
    if name.startswith("arp_"):
        return None if dl_type == ETH_ARP else "arp"
    if name.startswith("ipv6_"):
        return None if dl_type == ETH_IPV6 else "ipv6"
    if name in ("icmp_type", "icmp_code"):
        ok = (dl_type, nw_proto) in ((ETH_IP, 1), (ETH_IPV6, 58))
        return None if ok else "icmp or icmp6"
    if name in ("nd_target", "nd_sll", "nd_tll"):
        types = {"nd_target": (135, 136), "nd_sll": (135,), "nd_tll": (136,)}[name]
        ok = (dl_type, nw_proto) == (ETH_IPV6, 58) and icmp_type in types
        return None if ok else f"icmp6 with icmp_type={' or '.join(map(str, types))}"
    return None


def _value_mask(name: str, text: str) -> tuple[int, int]:
    """One field's ovs-ofctl value (with optional /mask or /prefix) as integers."""
    kind, full = _KIND[name], (1 << _WIDTH[name]) - 1
    try:
        if kind == "mac":
            value, _, mask = text.partition("/")
            return int(value.replace(":", ""), 16), int(mask.replace(":", ""), 16) if mask else full
        if kind in ("ip4", "ip6"):
            version = 4 if kind == "ip4" else 6
            net = ipaddress.ip_network(text, strict=False)
            if net.version != version:
                raise ValueError
            return int(net.network_address), int(net.netmask)
        value, _, mask = text.partition("/")
        number, bits = int(value, 0), int(mask, 0) if mask else full
    except ValueError:
        return _bad(name, text), 0
    if number > full or bits > full:
        _bad(name, text)
    return number, bits


def _bad(name: str, text: str) -> int:
    raise ValueError(f"{text!r} is not a valid {name}")


def _spell(name: str, value: int) -> str:
    """The canonical ovs-ofctl spelling of one exact field value."""
    kind = _KIND[name]
    if kind == "mac":
        raw = f"{value:012x}"
        return ":".join(raw[i : i + 2] for i in range(0, 12, 2))
    if kind == "ip4":
        return str(ipaddress.IPv4Address(value))
    if kind == "ip6":
        return str(ipaddress.IPv6Address(value))
    if name in ("vlan_tci", "dl_type"):
        return f"{value:#06x}"
    return str(value)


def _pack(values: Mapping[str, int]) -> int:
    bits = 0
    for name, value in values.items():
        bits |= value << _OFFSET[name]
    return bits


# -- packets ---------------------------------------------------------------------------------------


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
        return self.bits >> _OFFSET[name] & (1 << _WIDTH[name]) - 1

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
    given = {_ALIASES.get(k, k): v for k, v in {**(fields or {}), **more}.items()}
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
    unknown = sorted(set(given) - set(_KIND))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(PACKET_FIELDS)})")
    # Context fields first, then the rest, so prerequisites can be checked in order.
    for name in ("dl_type", "nw_proto", "icmp_type"):
        if name in given:
            values[name] = _exact(name, given[name])
    for name, text in given.items():
        values[name] = _exact(name, text)
    for name in given:
        need = _prerequisite(name, values.get("dl_type"), values.get("nw_proto"), values.get("icmp_type"))
        if need:
            raise ValueError(f"{name} applies only to {need} packets")
    order = {name: i for i, name in enumerate(PACKET_FIELDS)}
    implied = {"dl_type", "nw_proto"} if protocol else set()
    spelled = tuple(
        (name, _spell(name, values[name])) for name in sorted(values, key=order.__getitem__) if name not in implied
    )
    return Packet(protocol, spelled, _pack(values), values.get("in_port", 0))


def _exact(name: str, text: str) -> int:
    value, mask = _value_mask(name, text)
    if mask != (1 << _WIDTH[name]) - 1:
        raise ValueError(f"a packet has exact values, not {name}={text}")
    return value


def parse_packet(text: str) -> Packet:
    """A microflow in ovs-ofctl syntax: ``arp,in_port=5,dl_src=fa:16:3e:3e:e3:14,arp_spa=192.168.1.10``."""
    protocol: str | None = None
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.strip().split(","))):
        name, eq, value = part.partition("=")
        if not eq:
            if protocol is not None:
                raise ValueError(f"two protocols in {text!r}: {protocol} and {name}")
            protocol = name
        else:
            fields[name.strip()] = value.strip()
    return make_packet(protocol, fields)


# -- flows as the model holds them ----------------------------------------------------------------

FlowKey = tuple[int, int, str | None, tuple[tuple[str, str], ...]]
_NORMAL, _OUTPUT, _GOTO, _RESUBMIT = range(4)
_ACTION_SPLIT = re.compile(r",(?![^(]*\))")
_RESUBMIT_RE = re.compile(r"resubmit\(\s*,\s*(\d+)\s*\)")


class AmbiguousFlows(ValueError):
    """Two flows at one priority in one table could match the same packet and act differently."""


def _ops(f: Flow) -> tuple[tuple[int, int], ...]:
    text = f.actions.strip()
    if text in ("drop", ""):
        return ()
    ops: list[tuple[int, int]] = []
    for action in _ACTION_SPLIT.split(text):
        action = action.strip()
        resubmit = _RESUBMIT_RE.fullmatch(action)
        if action.upper() == "NORMAL":
            ops.append((_NORMAL, 0))
        elif action.startswith("output:") and action[7:].isdigit():
            ops.append((_OUTPUT, int(action[7:])))
        elif action.startswith("goto_table:") and action[11:].isdigit():
            target = int(action[11:])
            if target <= f.table:
                raise ValueError(f"goto_table must go to a later table: {f}")
            ops.append((_GOTO, target))
        elif resubmit:
            ops.append((_RESUBMIT, int(resubmit.group(1))))
        else:
            raise ValueError(f"the switch model does not know the action {action!r}: {f}")
    if any(op == _GOTO for op, _ in ops[:-1]):
        raise ValueError(f"goto_table must be the last action: {f}")
    return tuple(ops)


class _Entry:
    """One installed flow: the value, its compiled match and actions, and its counter."""

    __slots__ = ("flow", "forwards", "goto", "in_port", "mask", "n_packets", "ops", "reason", "simple", "value")

    def __init__(self, f: Flow) -> None:
        values: dict[str, int] = {}
        masks: dict[str, int] = {}
        if f.protocol is not None:
            if f.protocol not in PROTOCOLS:
                raise ValueError(f"unknown protocol {f.protocol!r}: {f}")
            dl_type, nw_proto = PROTOCOLS[f.protocol]
            values["dl_type"], masks["dl_type"] = dl_type, 0xFFFF
            if nw_proto is not None:
                values["nw_proto"], masks["nw_proto"] = nw_proto, 0xFF
        for name, text in f.match:
            if name not in _KIND:
                raise ValueError(f"the switch model does not know the field {name!r}: {f}")
            value, mask = _value_mask(name, text)
            values[name], masks[name] = value & mask, mask

        def exact(name: str) -> int | None:
            full = (1 << _WIDTH[name]) - 1
            return values[name] if masks.get(name) == full else None

        for name in masks:
            need = _prerequisite(name, exact("dl_type"), exact("nw_proto"), exact("icmp_type"))
            if need:
                raise ValueError(f"prerequisites not met for {name} (needs {need}): {f}")
        self.flow = f
        self.value = _pack(values)
        self.mask = _pack(masks)
        self.in_port = exact("in_port") if "in_port" in masks else None
        self.ops = _ops(f)
        self.n_packets = 0
        self.reason = f.reason
        self.simple = all(op != _RESUBMIT for op, _ in self.ops)
        self.forwards = any(op in (_NORMAL, _OUTPUT) for op, _ in self.ops)
        self.goto = next((arg for op, arg in self.ops if op == _GOTO), None)

    def overlaps(self, other: _Entry) -> bool:
        return (self.value ^ other.value) & self.mask & other.mask == 0


class Verdict(NamedTuple):
    """What the switch did with one packet: forwarded or dropped, the flows it took, and why."""

    forwarded: bool
    path: tuple[Flow, ...]
    reason: str | None  # the drop reason in the deciding flow's cookie; None when forwarded or on a bare miss
    missed_table: int | None = None  # a table with no flow that matched (not even a miss flow)

    @property
    def action(self) -> str:
        return "forward" if self.forwarded else "drop"


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


class SwitchModel:
    """br-int in memory: flow tables with OpenFlow semantics and per-flow packet counters."""

    MAX_RESUBMIT = 64

    def __init__(self, flows: Iterable[Flow | str] = ()) -> None:
        self._entries: dict[FlowKey, _Entry] = {}
        # (table, in_port or None for flows that match any port) -> key -> entry
        self._groups: dict[tuple[int, int | None], dict[FlowKey, _Entry]] = {}
        self._lookup: dict[tuple[int, int | None], list[tuple[int, int, _Entry]]] = {}
        self._dirty: set[tuple[int, int | None]] = set()  # groups whose lookup list a bundle changed
        self.apply(adds=flows)

    # -- the table --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, f: object) -> bool:
        return isinstance(f, Flow) and self._entries.get(f.key) is not None and self._entries[f.key].flow == f

    def flows(self) -> tuple[Flow, ...]:
        """Every installed flow, in a stable order (table, descending priority, text)."""
        return tuple(sorted((e.flow for e in self._entries.values()), key=_order))

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows())

    def text(self) -> str:
        return "".join(f.text() + "\n" for f in self.flows())

    def n_packets(self, f: Flow | FlowKey) -> int:
        entry = self._entries.get(f.key if isinstance(f, Flow) else f)
        return entry.n_packets if entry else 0

    def counters(self) -> dict[Flow, int]:
        """n_packets of every flow that has seen a packet."""
        return {e.flow: e.n_packets for e in self._entries.values() if e.n_packets}

    def load(self, text: str) -> None:
        """Add flows written in ovs-ofctl syntax, one a line (canonical text or ``dump-flows`` output)."""
        self.apply(adds=[f for f in map(parse_dump_line, text.splitlines()) if f is not None])

    def add(self, f: Flow | str) -> None:
        self.apply(adds=[f])

    def delete(self, f: Flow | FlowKey | str) -> None:
        """Strict delete by key (table, priority, protocol, match); a key not installed is no error."""
        self.apply(deletes=[f])

    def apply(self, adds: Iterable[Flow | str] = (), deletes: Iterable[Flow | FlowKey | str] = ()) -> None:
        """One atomic bundle: deletes, then adds; on any error nothing changes."""
        undo: list[tuple[FlowKey, _Entry | None]] = []
        try:
            for d in deletes:
                key = parse_flow(d).key if isinstance(d, str) else d.key if isinstance(d, Flow) else d
                if key in self._entries:
                    undo.append((key, self._entries[key]))
                    self._remove(key)
            added = []
            for a in adds:
                f = parse_flow(a) if isinstance(a, str) else a
                old = self._entries.get(f.key)
                if old is not None and old.flow == f:
                    continue
                entry = _Entry(f)
                if old is not None:
                    entry.n_packets = old.n_packets  # an add over an existing entry keeps its counters
                    self._remove(f.key)
                undo.append((f.key, old))
                self._insert(entry)
                added.append(entry)
            for entry in added:
                if self._entries.get(entry.flow.key) is entry:
                    self._check_ambiguity(entry)
        except Exception:
            self._dirty.clear()
            for key, previous in reversed(undo):
                if key in self._entries:
                    self._remove(key)
                if previous is not None:
                    self._insert(previous)
            self._dirty.clear()
            raise
        self._rebuild()

    def _insert(self, entry: _Entry) -> None:
        key = entry.flow.key
        self._entries[key] = entry
        self._groups.setdefault((entry.flow.table, entry.in_port), {})[key] = entry
        self._invalidate(entry)

    def _remove(self, key: FlowKey) -> None:
        entry = self._entries.pop(key)
        group = (entry.flow.table, entry.in_port)
        del self._groups[group][key]
        if not self._groups[group]:
            del self._groups[group]
        self._invalidate(entry)

    def _invalidate(self, entry: _Entry) -> None:
        table = entry.flow.table
        if entry.in_port is None:
            stale = [k for k in self._lookup if k[0] == table]
            self._dirty.update(k for k in self._groups if k[0] == table)
        else:
            stale = [(table, entry.in_port)]
            self._dirty.add((table, entry.in_port))
        for key in stale:
            self._lookup.pop(key, None)

    def _rebuild(self) -> None:
        """After a bundle: the lookup lists of what it touched, so no packet pays for sorting."""
        for table, in_port in self._dirty:
            if in_port is None:
                self._entries_for(table, -1)  # a port with no flows of its own: the shared list
            elif (table, in_port) in self._groups:
                self._entries_for(table, in_port)
        self._dirty.clear()

    def _check_ambiguity(self, entry: _Entry) -> None:
        f = entry.flow
        if entry.in_port is None:
            rivals: Iterable[_Entry] = (e for (t, _), g in self._groups.items() if t == f.table for e in g.values())
        else:
            rivals = [*self._groups.get((f.table, entry.in_port), {}).values(),
                      *self._groups.get((f.table, None), {}).values()]  # fmt: skip
        for other in rivals:
            if (
                other is not entry
                and other.flow.priority == f.priority
                and other.ops != entry.ops
                and entry.overlaps(other)
            ):
                raise AmbiguousFlows(
                    f"two flows at priority {f.priority} in table {f.table} match the same packets "
                    f"with different actions:\n  {other.flow}\n  {f}"
                )

    def _entries_for(self, table: int, in_port: int) -> list[tuple[int, int, _Entry]]:
        """The flows a packet from ``in_port`` can match in ``table``, best first, as (mask, value, entry)."""
        own = self._groups.get((table, in_port))
        key = (table, in_port if own else None)
        found = self._lookup.get(key)
        if found is None:
            merged = [*(own or {}).values(), *self._groups.get((table, None), {}).values()]
            found = self._lookup[key] = [(e.mask, e.value, e) for e in sorted(merged, key=lambda e: _order(e.flow))]
        if not own and len(self._lookup) < 4 * len(self._entries) + 1024:
            self._lookup[(table, in_port)] = found  # the shared list, also under this port: one lookup per table
        return found

    # -- packets ----------------------------------------------------------------------------------

    def evaluate(self, packet: Packet, count: bool = True) -> Verdict:
        """Run one packet from table 0; count it on every flow it takes."""
        path: list[_Entry] = []
        forwarded, missed = self._run(0, packet.bits, packet.in_port, path, 0)
        if count:
            for entry in path:
                entry.n_packets += 1
        reason = None if forwarded or missed is not None or not path else path[-1].reason
        return Verdict(forwarded, tuple([e.flow for e in path]), reason, missed)

    def _run(self, table: int, bits: int, in_port: int, path: list[_Entry], depth: int) -> tuple[bool, int | None]:
        forwarded = False
        lookup = self._lookup
        while True:
            for mask, value, entry in lookup.get((table, in_port)) or self._entries_for(table, in_port):  # noqa: B007
                if bits & mask == value:
                    break
            else:
                return forwarded, table
            path.append(entry)
            if entry.simple:  # no resubmit: forward or not, then maybe go to a later table
                forwarded = forwarded or entry.forwards
                if entry.goto is None:
                    return forwarded, None
                table = entry.goto
                continue
            following = None
            for op, arg in entry.ops:
                if op in (_NORMAL, _OUTPUT):
                    forwarded = True
                elif op == _GOTO:
                    following = arg
                else:
                    if depth >= self.MAX_RESUBMIT:
                        raise RecursionError(f"more than {self.MAX_RESUBMIT} resubmits: {entry.flow}")
                    more, _ = self._run(arg, bits, in_port, path, depth + 1)
                    forwarded = forwarded or more
            if following is None:
                return forwarded, None
            table = following


def _order(f: Flow) -> tuple[int, int, str]:
    return (f.table, -f.priority, f.text())
