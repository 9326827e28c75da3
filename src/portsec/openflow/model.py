"""The switch model: br-int's flow tables held in memory, evaluating packets with OpenFlow semantics.

It holds :class:`~portsec.openflow.flows.Flow` values (the compiler's output, or
``ovs-ofctl`` text read back with :func:`~portsec.openflow.flows.parse_flow`),
applies adds and deletes the way ``ovs-ofctl --bundle`` does (one key = one
entry; adding an existing key replaces its actions and cookie and keeps its
counters), and evaluates packets (:mod:`portsec.openflow.packet`): per table the highest-priority match wins,
masks and CIDRs are honoured, ``goto_table`` / ``resubmit(,N)`` move on, ``NORMAL``
and ``output`` forward, and a miss drops. Counters are per flow.

Two flows at one priority in one table that can match the same packet but act
differently are refused (:class:`AmbiguousFlows`): Open vSwitch would pick one
of them arbitrarily, so such a pair is a bug in whoever wrote the flows.

Speed: every field of a packet is packed once into one integer, and every flow
is compiled into an integer (value, mask) pair over the same layout (the field
registry's, :mod:`portsec.openflow.fields`), so a match test is
``bits & mask == value``; actions come structured, so nothing is parsed per
packet. Flows are indexed by (table, in_port).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from portsec.openflow.actions import GotoTable, Normal, Output, Resubmit, as_actions
from portsec.openflow.fields import FIELD, PROTOCOLS, pack
from portsec.openflow.flows import Flow, FlowKey, parse_dump_line, parse_flow, prerequisite_error
from portsec.openflow.packet import ETH_ARP, ETH_IP, ETH_IPV6, Packet, make_packet, parse_packet

# Packets (:mod:`portsec.openflow.packet`) and dump reading (:mod:`portsec.openflow.flows`) are also reachable
# from here, where callers of the model have always found them.
__all__ = ["ETH_ARP", "ETH_IP", "ETH_IPV6", "AmbiguousFlows", "Packet", "SwitchModel", "Verdict", "make_packet",
           "parse_dump_line", "parse_packet"]  # fmt: skip


class AmbiguousFlows(ValueError):
    """Two flows at one priority in one table could match the same packet and act differently."""


class _Entry:
    """One installed flow: the value, its compiled match and actions, and its counter."""

    __slots__ = ("actions", "flow", "forwards", "goto", "in_port", "mask", "n_packets", "reason", "simple", "value")

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
            field = FIELD.get(name)
            if field is None:
                raise ValueError(f"the switch model does not know the field {name!r}: {f}")
            values[name], masks[name] = field.value_mask(text)
        error = prerequisite_error(f)
        if error:
            raise ValueError(error)
        actions = as_actions(f.actions)
        if actions.unknown is not None:
            raise ValueError(f"the switch model does not know the action {actions.unknown!r}: {f}")
        if actions.goto is not None and actions.goto <= f.table:
            raise ValueError(f"goto_table must go to a later table: {f}")
        if any(isinstance(a, GotoTable) for a in actions.items[:-1]):
            raise ValueError(f"goto_table must be the last action: {f}")
        self.flow = f
        self.actions = actions
        self.value = pack(values)
        self.mask = pack(masks)
        self.in_port = values["in_port"] if masks.get("in_port") == FIELD["in_port"].full else None
        self.n_packets = 0
        self.reason = f.reason
        self.simple = not actions.resubmits
        self.forwards = actions.forwards
        self.goto = actions.goto

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
                and other.actions is not entry.actions
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
            for action in entry.actions.items:
                if isinstance(action, Normal | Output):
                    forwarded = True
                elif isinstance(action, Resubmit):
                    if depth >= self.MAX_RESUBMIT:
                        raise RecursionError(f"more than {self.MAX_RESUBMIT} resubmits: {entry.flow}")
                    more, _ = self._run(action.table, bits, in_port, path, depth + 1)
                    forwarded = forwarded or more
            if entry.goto is None:
                return forwarded, None
            table = entry.goto


def _order(f: Flow) -> tuple[int, int, str]:
    return (f.table, -f.priority, f.text())
