"""What the resource services share: ids, revision checks, list-request translation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from portsec.domain import attributes, errors
from portsec.domain.model import Network, Port, Subnet
from portsec.domain.pairs import DEFAULT_MAX_PAIRS
from portsec.domain.quotas import QuotaDefaults
from portsec.store.database import Tx
from portsec.store.query import ListQuery

Resource = TypeVar("Resource", Network, Subnet, Port)


@dataclass(frozen=True)
class Limits:
    """Configuration that changes what a request may ask for."""

    max_allowed_address_pairs: int = DEFAULT_MAX_PAIRS
    quotas: QuotaDefaults = field(default_factory=QuotaDefaults)


def new_id() -> str:
    return str(uuid.uuid4())


def check_revision(expected: int | None, current: int) -> None:
    """``If-Match: revision_number=N`` compares with the revision before this request."""
    if expected is not None and expected != current:
        raise errors.RevisionNumberConstraintFailed(expected=expected, current=current)


def save_update(
    tx: Tx, kind: str, old: Resource, new: Resource, write: Callable[[Connection, Resource, Resource], None]
) -> Resource:
    """Neutron's revision rule for an update: nothing changed, nothing written (``old`` comes back);
    else one bump, ``updated_at`` now, the row written and one change-log entry, all in ``tx``."""
    if new == old:
        return old
    new = replace(new, revision_number=old.revision_number + 1, updated_at=tx.now)
    write(tx.conn, old, new)
    tx.record(kind, new.id, new.project_id, new.revision_number, "update")
    return new


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

# A filter on an attribute that is no column: whether its values pass a resource's shown value.
ConstantFilter = Callable[[Sequence[Any]], bool]


def first_boolean_is(shown: bool) -> ConstantFilter:
    """A boolean every resource shows alike (``router:external``): Neutron's hook reads the first value only."""
    return lambda values: bool(values) and attributes.to_boolean(values[0]) == shown


def matches_no_value(_values: Sequence[Any]) -> bool:
    """A null or an empty list no query value equals (``subnetpool_id``, a port's ``security_groups``)."""
    return False


def split_constant_filters(
    filters: Mapping[str, Sequence[Any]], constants: Mapping[str, ConstantFilter]
) -> tuple[dict[str, Sequence[Any]], bool]:
    """(the filters left for columns, whether the constant ones pass).

    Every constant filter is checked, so a bad value is refused even when another already fails.
    """
    remaining = dict(filters)
    passes = True
    for name, check in constants.items():
        if name in remaining:
            passes = check(remaining.pop(name)) and passes
    return remaining, passes


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
