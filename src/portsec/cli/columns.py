"""Cell formatting exactly as python-openstackclient renders Neutron resources.

These mirror osc-lib's format_columns and OSC's network column classes; they
are written out here because osc-lib would pull in openstacksdk and keystoneauth
for thirty lines. tests/test_cli_osc_parity.py renders the same data through
the real OSC and compares.
"""

from __future__ import annotations

from typing import Any

from cliff.columns import FormattableColumn


def format_dict(data: dict[str, Any] | None, prefix: str | None = None) -> str | None:
    if data is None:
        return None
    parts = []
    for key in sorted(data):
        name = f"{prefix}.{key}" if prefix else key
        value = data[key]
        if isinstance(value, dict):
            parts.append(format_dict(value, prefix=name) or "")
        elif value is not None:
            parts.append(f"{name}='{value}'")
        else:
            parts.append(f"{name}=")
    return ", ".join(parts)


class DictColumn(FormattableColumn[dict[str, Any]]):
    def human_readable(self) -> str:
        return format_dict(self._value) or ""

    def machine_readable(self) -> dict[str, Any]:
        return dict(self._value or {})


class ListColumn(FormattableColumn[list[Any]]):
    def human_readable(self) -> str:
        return ", ".join(sorted(self._value)) if self._value is not None else ""

    def machine_readable(self) -> list[Any]:
        return list(self._value or [])


class UnsortedListColumn(ListColumn):
    def human_readable(self) -> str:
        return ", ".join(self._value or [])


class ListDictColumn(FormattableColumn[list[dict[str, Any]]]):
    def human_readable(self) -> str:
        if self._value is None:
            return ""
        return "\n".join(format_dict(item) or "" for item in self._value)

    def machine_readable(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self._value or []]


class AdminStateColumn(FormattableColumn[bool]):
    def human_readable(self) -> str:
        return "UP" if self._value else "DOWN"


class RouterExternalColumn(FormattableColumn[bool]):
    def human_readable(self) -> str:
        return "External" if self._value else "Internal"


class AllocationPoolsColumn(FormattableColumn[Any]):
    def human_readable(self) -> str:
        return ",".join(f"{p.get('start', '')}-{p.get('end', '')}" for p in self._value)


class HostRoutesColumn(FormattableColumn[Any]):
    def human_readable(self) -> str:
        # OSC shows Neutron's "nexthop" as "gateway", the name of its --host-route key.
        routes = [{"destination": r["destination"], "gateway": r["nexthop"]} for r in self._value or []]
        return "\n".join(format_dict(r) or "" for r in routes)
