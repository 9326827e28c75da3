"""A flow's actions as values: read from ovs-ofctl text once, then used as they are.

The switch model runs them, the pipeline checks where they go and the native
encoder writes them; none of them parses text. :class:`Actions` are interned
(one object per distinct list), so two flows compare and hash their actions by
identity, and the compiler's few action lists cost nothing per flow.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Normal:
    """Forward as a learning switch would (``NORMAL``)."""

    def text(self) -> str:
        return "NORMAL"


@dataclass(frozen=True, slots=True)
class Output:
    port: int

    def text(self) -> str:
        return f"output:{self.port}"


@dataclass(frozen=True, slots=True)
class GotoTable:
    """The goto-table instruction: always last, always to a later table."""

    table: int

    def text(self) -> str:
        return f"goto_table:{self.table}"


@dataclass(frozen=True, slots=True)
class Resubmit:
    """Open vSwitch's ``resubmit(,N)``: run table N, then carry on here."""

    table: int

    def text(self) -> str:
        return f"resubmit(,{self.table})"


@dataclass(frozen=True, slots=True)
class Controller:
    """A copy of the packet's first ``max_len`` bytes to the agent, through meter ``meter_id`` (Open vSwitch's
    ``controller(...)``, NXAST_CONTROLLER2). The packet itself goes on: no verdict depends on it."""

    max_len: int
    meter_id: int

    def text(self) -> str:
        return f"controller(max_len={self.max_len},meter_id={self.meter_id})"


@dataclass(frozen=True, slots=True)
class Unknown:
    """An action portsec does not interpret, kept verbatim so any dump reads back; nothing can run or encode it."""

    spelling: str

    def text(self) -> str:
        return self.spelling


Action = Normal | Output | GotoTable | Resubmit | Controller | Unknown


class Actions:
    """An immutable action list (empty: drop), interned: make one with :func:`actions` or :func:`parse_actions`."""

    __slots__ = ("forwards", "goto", "items", "resubmits", "text", "unknown")

    items: tuple[Action, ...]
    text: str  # the canonical ovs-ofctl spelling
    goto: int | None  # the goto_table target, when the list ends with one
    forwards: bool  # NORMAL or output somewhere in the list
    resubmits: bool
    unknown: str | None  # the first action that is not understood

    def __init__(self, items: tuple[Action, ...]) -> None:
        last = items[-1] if items else None
        for name, value in (
            ("items", items),
            ("text", ",".join(a.text() for a in items) if items else "drop"),
            ("goto", last.table if isinstance(last, GotoTable) else None),
            ("forwards", any(isinstance(a, Normal | Output) for a in items)),
            ("resubmits", any(isinstance(a, Resubmit) for a in items)),
            ("unknown", next((a.spelling for a in items if isinstance(a, Unknown)), None)),
        ):
            object.__setattr__(self, name, value)

    @property
    def targets(self) -> tuple[int, ...]:
        """Every table these actions move a packet to."""
        return tuple(a.table for a in self.items if isinstance(a, GotoTable | Resubmit))

    def __repr__(self) -> str:
        return f"Actions({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[Any, ...]:  # unpickled into the interned object, so identity stays equality
        return (actions, self.items)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Actions are immutable")


_INTERNED: dict[tuple[Action, ...], Actions] = {}


def actions(*items: Action) -> Actions:
    """The one :class:`Actions` value for ``items``."""
    found = _INTERNED.get(items)
    if found is None:
        found = _INTERNED[items] = Actions(items)
    return found


DROP = actions()
NORMAL = actions(Normal())


def goto_table(table: int) -> Actions:
    return actions(GotoTable(table))


_SPLIT = re.compile(r",(?![^(]*\))")  # commas outside parentheses
_RESUBMIT = re.compile(r"resubmit\(\s*,\s*(\d+)\s*\)")
_CONTROLLER = re.compile(r"controller\((.*)\)")


@functools.lru_cache(maxsize=1024)
def parse_actions(text: str) -> Actions:
    """Read ovs-ofctl action text; what is not understood is kept as :class:`Unknown`."""
    text = text.strip()
    if text in ("drop", ""):
        return DROP
    items: list[Action] = []
    for part in _SPLIT.split(text):
        part = part.strip()
        resubmit = _RESUBMIT.fullmatch(part)
        controller = _CONTROLLER.fullmatch(part)
        if part.upper() == "NORMAL":
            items.append(Normal())
        elif part.startswith("output:") and part[7:].isdigit():
            items.append(Output(int(part[7:])))
        elif part.startswith("goto_table:") and part[11:].isdigit():
            items.append(GotoTable(int(part[11:])))
        elif resubmit:
            items.append(Resubmit(int(resubmit.group(1))))
        elif controller and (copy := _controller(controller.group(1))):
            items.append(copy)
        else:
            items.append(Unknown(part))
    return actions(*items)


def _controller(arguments: str) -> Controller | None:
    """``controller(max_len=N,meter_id=M)`` in any order, as ovs-ofctl writes it; None for any other form."""
    pairs = dict(kv.partition("=")[::2] for kv in arguments.split(","))
    if pairs.keys() != {"max_len", "meter_id"} or not all(v.isdigit() for v in pairs.values()):
        return None
    return Controller(int(pairs["max_len"]), int(pairs["meter_id"]))


def as_actions(value: Actions | str) -> Actions:
    """Actions given either way (text is what hand-written flows use)."""
    return value if isinstance(value, Actions) else parse_actions(value)
