"""What the agent believes br-int holds, and the bundle that turns it into what it should hold.

Invariants (as OVN's ofctrl keeps them):
- ``installed`` maps each flow key (table, priority, match) to the flow on the
  switch and the owner that put it there: a port id, or ``BRIDGE`` for the
  shared flows. The agent never reads the switch to decide what to change.
- A change is computed per owner: only the flows of the ports that changed are
  compared, so its cost does not grow with the number of other ports.
- One batch becomes one ordered, atomic bundle: deletes first, then adds. An
  ``add`` of an existing key replaces it in place, so a port never runs with
  half its flows, and a key that moves from one owner to another (an ofport
  reused by a new port) is never deleted from under its new owner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat

from portsec.openflow.flows import Flow, FlowKey, flow_key

BRIDGE = ""  # owner of the flows every port shares

Key = FlowKey


@dataclass
class Batch:
    """The bundle for one round: deletes, then adds."""

    deletes: list[Flow] = field(default_factory=list)
    adds: list[Flow] = field(default_factory=list)
    owners: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.deletes or self.adds)


@dataclass
class FlowTable:
    installed: dict[Key, tuple[str, Flow]] = field(default_factory=dict)
    # An owner's keys, in a list: a full sync makes 234,000 of them, and a key (a tuple of tuples) is
    # hashed anew each time it goes into a set.
    by_owner: dict[str, list[Key]] = field(default_factory=dict)
    # Flows per OpenFlow table, kept as flows come and go: a metric reads it after every round, in O(tables).
    per_table: dict[int, int] = field(default_factory=dict)

    def owners(self) -> set[str]:
        return set(self.by_owner)

    def flows_of(self, owner: str) -> list[Flow]:
        return [self.installed[k][1] for k in self.by_owner.get(owner, ())]

    def all_flows(self) -> list[Flow]:
        return [f for _, f in self.installed.values()]

    def diff(self, desired: Mapping[str, Iterable[Flow]]) -> Batch:
        """The bundle that makes each owner in ``desired`` own exactly its flows (an empty list removes it)."""
        batch = Batch()
        wanted: dict[Key, Flow] = {}
        for owner, flows in desired.items():
            new = {f.key: f for f in flows}
            wanted.update(new)
            for key in self.by_owner.get(owner, ()):
                if key not in new:
                    batch.deletes.append(self.installed[key][1])
            for key, f in new.items():
                if key not in self.installed or self.installed[key][1] != f:
                    batch.adds.append(f)
            batch.owners.add(owner)
        # A key another owner in this batch adds again must not be deleted after all.
        batch.deletes = [f for f in batch.deletes if f.key not in wanted]
        return batch

    def commit(self, desired: Mapping[str, Iterable[Flow]]) -> None:
        """Record that the bundle of :meth:`diff` for ``desired`` is on the switch."""
        for owner, flows in desired.items():
            for key in self.by_owner.pop(owner, ()):
                if self.installed.get(key, (None,))[0] == owner:
                    del self.installed[key]
                    self.per_table[key[0]] -= 1
            keys = []
            for f in flows:
                key = f.key
                previous = self.installed.get(key)
                if previous is not None and previous[0] != owner:
                    theirs = self.by_owner[previous[0]]
                    theirs.remove(key)
                    if not theirs:
                        del self.by_owner[previous[0]]
                if previous is None:
                    self.per_table[f.table] = self.per_table.get(f.table, 0) + 1
                self.installed[key] = (owner, f)
                keys.append(key)
            if keys:
                self.by_owner[owner] = keys

    def reset(self, desired: Mapping[str, Iterable[Flow]]) -> None:
        """After a full replace of the switch's flows: exactly ``desired`` is installed."""
        installed: dict[Key, tuple[str, Flow]] = {}
        self.by_owner = {}
        for owner, given in desired.items():
            flows = given if isinstance(given, list | tuple) else list(given)
            keys = list(map(flow_key, flows))
            installed.update(zip(keys, zip(repeat(owner), flows, strict=False), strict=True))
            if keys:
                self.by_owner[owner] = keys
        self.installed = installed
        self.per_table = dict(Counter(key[0] for key in installed))
