"""What every list shares: attribute filters, visibility, sorting and keyset pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class ListQuery:
    """A list request in column terms: ``filters`` are ORed within a key, ANDed across keys."""

    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    sort: Sequence[tuple[str, bool]] = ()  # (column, ascending)
    limit: int | None = None
    marker: str | None = None
    reverse: bool = False


def filter_clauses(table: sa.Table, filters: Mapping[str, Sequence[Any]]) -> list[ColumnElement[bool]]:
    """Column filters only: the services answer filters on other attributes (a wrong guess here hid resources)."""
    unknown = sorted(set(filters) - set(table.c.keys()))
    if unknown:
        raise ValueError(f"{table.name} has no column for the filters {unknown}")
    return [table.c[key].in_(list(values)) for key, values in filters.items()]


def _order(table: sa.Table, query: ListQuery) -> list[tuple[sa.Column[Any], bool]]:
    keys = [(table.c[col], asc) for col, asc in query.sort]
    # Ties broken by id, so pages never skip or repeat a row.
    if (query.limit or not keys) and all(col.name != "id" for col, _ in keys):
        keys.append((table.c.id, True))
    return keys


def _after(keys: list[tuple[sa.Column[Any], bool]], marker: sa.Row[Any], backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after (or before) the marker row in the order given by ``keys``."""
    ors: list[ColumnElement[bool]] = []
    for i, (col, asc) in enumerate(keys):
        value = marker._mapping[col.name]
        forward = asc != backwards
        step = col > value if forward else col < value
        ors.append(sa.and_(*[c == marker._mapping[c.name] for c, _ in keys[:i]], step))
    return sa.or_(*ors)


def fetch_page(conn: Connection, stmt: sa.Select[Any], table: sa.Table, query: ListQuery) -> list[sa.Row[Any]]:
    """The rows of one page, in forward order even when paging backwards."""
    marker = None
    if query.marker:
        marker = conn.execute(sa.select(table).where(table.c.id == query.marker)).one_or_none()
    rows = list(conn.execute(_paged(stmt, table, query, marker)))
    if query.reverse and query.limit:
        rows.reverse()
    return rows


def _paged(stmt: sa.Select[Any], table: sa.Table, query: ListQuery, marker: sa.Row[Any] | None) -> sa.Select[Any]:
    keys = _order(table, query)
    backwards = query.reverse and bool(query.limit)
    if marker is not None and query.limit:
        stmt = stmt.where(_after(keys, marker, backwards))
    stmt = stmt.order_by(*[(col.asc() if asc != backwards else col.desc()) for col, asc in keys])
    if query.limit:
        stmt = stmt.limit(query.limit)
    return stmt
