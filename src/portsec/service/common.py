"""What the resource services share: ids, revision checks, list-request translation."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portsec.domain import attributes, errors
from portsec.domain.pairs import DEFAULT_MAX_PAIRS
from portsec.store.query import ListQuery


@dataclass(frozen=True)
class Limits:
    """Configuration that changes what a request may ask for."""

    max_allowed_address_pairs: int = DEFAULT_MAX_PAIRS


def new_id() -> str:
    return str(uuid.uuid4())


def check_revision(expected: int | None, current: int) -> None:
    """``If-Match: revision_number=N`` compares with the revision before this request."""
    if expected is not None and expected != current:
        raise errors.RevisionNumberConstraintFailed(expected=expected, current=current)


def scope(ctx_project: str, is_admin: bool) -> str | None:
    """The project whose rows a caller sees; None when it sees every project."""
    return None if is_admin else ctx_project


_BOOLEAN_FILTERS = frozenset({"admin_state_up", "shared", "port_security_enabled", "enable_dhcp"})
_INT_FILTERS = frozenset({"revision_number", "ip_version", "mtu"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Listing:
    """A list request in Neutron's terms: attribute filters, sort keys, a page."""

    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    sort: Sequence[tuple[str, bool]] = ()  # (attribute, ascending)
    limit: int | None = None
    marker: str | None = None
    reverse: bool = False


ALL = Listing()


def list_query(listing: Listing, filters: Mapping[str, Sequence[Any]], columns: Mapping[str, str]) -> ListQuery:
    """Neutron attribute filters -> typed column filters (``tenant_id`` is ``project_id``).

    ``filters`` is the part of the listing's filters left for plain columns.
    """
    typed: dict[str, list[Any]] = {}
    for key, values in filters.items():
        name = "project_id" if key == "tenant_id" else key
        column = columns.get(name, name)
        if name in _BOOLEAN_FILTERS:
            typed[column] = [attributes.to_boolean(v) for v in values]
        elif name in _INT_FILTERS:
            # A number no column can hold matches nothing (and must not reach the driver).
            numbers = [attributes.to_int(v) for v in values]
            typed[column] = [n for n in numbers if _INT64_MIN <= n <= _INT64_MAX]
        else:
            typed.setdefault(column, []).extend(values)
    sort = [(columns.get(k, "project_id" if k == "tenant_id" else k), asc) for k, asc in listing.sort]
    return ListQuery(filters=typed, sort=sort, limit=listing.limit, marker=listing.marker, reverse=listing.reverse)
