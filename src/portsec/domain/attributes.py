"""Request-body processing as Neutron does it, from a declared attribute map.

Order matters because the first failure is the one reported: unknown keys,
then verb permission / required attributes, then each attribute's converter
and validator in map order. A validator returns a message (wrapped as
"Invalid input for X. Reason: msg.") or raises its own typed error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from portsec.domain import errors
from portsec.domain.addresses import uuid_error

Validator = Callable[[Any], str | None]
Converter = Callable[[Any], Any]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NOT_SPECIFIED: Any = _Sentinel("NOT_SPECIFIED")
REQUIRED: Any = _Sentinel("REQUIRED")

NAME_MAX_LEN = 255


@dataclass(frozen=True)
class Attr:
    name: str
    post: bool = True
    put: bool = True
    default: Any = NOT_SPECIFIED
    convert: Converter | None = None
    validate: Validator | None = None


@dataclass(frozen=True)
class ResourceSpec:
    """A resource's attribute map, in Neutron's order."""

    name: str
    attrs: tuple[Attr, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.attrs) | {"tenant_id"}


def _unrecognized(spec: ResourceSpec, body: Mapping[str, Any]) -> None:
    extra = sorted(set(body) - spec.names)
    if extra:
        raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'")


def _convert_and_validate(spec: ResourceSpec, values: dict[str, Any]) -> None:
    for attr in spec.attrs:
        if attr.name not in values or values[attr.name] is NOT_SPECIFIED:
            continue
        if attr.convert is not None:
            values[attr.name] = attr.convert(values[attr.name])
        if attr.validate is not None:
            msg = attr.validate(values[attr.name])
            if msg:
                raise errors.HTTPBadRequest(f"Invalid input for {attr.name}. Reason: {msg}.")


def _object_of(spec: ResourceSpec, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise errors.HTTPBadRequest(f"Object '{spec.name}' contains invalid data")
    return dict(body)


def _merge_tenant(values: dict[str, Any]) -> None:
    """Requests may say tenant_id or project_id; both must agree."""
    if "tenant_id" in values:
        tenant = values.pop("tenant_id")
        if "project_id" in values and values["project_id"] != tenant:
            raise errors.HTTPBadRequest("'project_id' and 'tenant_id' do not match")
        values["project_id"] = tenant


def prepare_create(spec: ResourceSpec, body: Any, project_id: str, is_admin: bool) -> dict[str, Any]:
    """Validate a POST body; returns every attribute, defaults filled in."""
    values = _object_of(spec, body)
    _unrecognized(spec, values)
    _merge_tenant(values)
    if values.get("project_id", project_id) != project_id and not is_admin:
        raise errors.HTTPBadRequest(
            "Specifying 'project_id' other than the authenticated project in request "
            "is not allowed for the current user."
        )
    values.setdefault("project_id", project_id)
    for attr in spec.attrs:
        if attr.post:
            if attr.name not in values:
                if attr.default is REQUIRED:
                    raise errors.HTTPBadRequest(
                        f"Failed to parse request. Required attribute '{attr.name}' not specified"
                    )
                values[attr.name] = attr.default
        elif attr.name in values:
            raise errors.HTTPBadRequest(f"Attribute '{attr.name}' not allowed in POST")
    _convert_and_validate(spec, values)
    return values


def prepare_update(spec: ResourceSpec, body: Any) -> dict[str, Any]:
    """Validate a PUT body; returns only the attributes it carries."""
    values = _object_of(spec, body)
    _unrecognized(spec, values)
    for key in values:
        attr = next((a for a in spec.attrs if a.name == key), None)
        if attr is None or not attr.put:
            raise errors.HTTPBadRequest(f"Cannot update read-only attribute {key}")
    _convert_and_validate(spec, values)
    return values


# Converters -----------------------------------------------------------------

_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
    raise errors.InvalidInput(error_message=f"'{value}' cannot be converted to boolean")


def to_int(value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise errors.InvalidInput(error_message=f"'{value}' is not an integer") from None


def none_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


# Validators -------------------------------------------------------------------


def string(max_len: int | None = NAME_MAX_LEN) -> Validator:
    def check(data: Any) -> str | None:
        if not isinstance(data, str):
            return f"'{data}' is not a valid string"
        if "\x00" in data:  # no database stores it (PostgreSQL refuses it in text)
            return f"'{data}' contains a NUL character"
        if max_len is not None and len(data) > max_len:
            return f"'{data}' exceeds maximum length of {max_len}"
        return None

    return check


def values_in(valid: Iterable[Any], allow_none: bool = False) -> Validator:
    choices = tuple(valid)

    def check(data: Any) -> str | None:
        if (data is None and allow_none) or data in choices:
            return None
        return f"{data} is not in valid_values"

    return check


def uuid(data: Any) -> str | None:
    return uuid_error(data)


def uuid_list(data: Any) -> str | None:
    if not isinstance(data, list):
        return f"'{data}' is not a list"
    dups = [d for i, d in enumerate(data) if d in data[:i]]
    if dups:
        return f"Duplicate items in the list: '{', '.join(str(d) for d in dups)}'"
    for item in data:
        msg = uuid_error(item)
        if msg:
            return msg
    return None


def dict_keys_error(expected: list[str], data: Any, strict: bool = True) -> str | None:
    if not isinstance(data, dict):
        return f"Invalid input. '{data}' must be a dictionary with keys: {expected}"
    provided = set(data)
    if (provided != set(expected)) if strict else not set(expected) <= provided:
        return f"Validation of dictionary's keys failed. Expected keys: {set(expected)} Provided keys: {provided}"
    return None
