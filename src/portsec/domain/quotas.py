"""Quotas as Neutron has them: per-project limits on how many networks, subnets and ports exist.

Neutron's defaults (``[QUOTAS] quota_network/quota_subnet/quota_port``), its
``-1`` for "no limit", and the validation of a ``PUT /v2.0/quotas/{project}``
body. Neutron shows every resource its plugins register (routers, floating
IPs, ...); portsec shows the three it serves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from portsec.domain import errors
from portsec.domain.resources import PLURALS

RESOURCES = tuple(PLURALS)  # every resource portsec serves has a quota
UNLIMITED = -1
MAX_LIMIT = 2**31 - 1  # neutron_lib.db.constants.DB_INTEGER_MAX_VALUE
PROJECT_ID_MAX_LEN = 255
# Keys a client may send beside the limits: openstackclient sends one of them with each `quota set`.
# Current Neutron always checks usage unless force is JSON true; check_limit is accepted and ignored.
_FLAGS = ("force", "check_limit")
_DIGITS = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class QuotaDefaults:
    """The limits of a project that has no override (configuration; Neutron's defaults)."""

    network: int = 100
    subnet: int = 100
    port: int = 500

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


UNLIMITED_DEFAULTS = QuotaDefaults(UNLIMITED, UNLIMITED, UNLIMITED)


def over(limit: int, used: int, wanted: int = 1) -> bool:
    return limit != UNLIMITED and used + wanted > limit


def check_limit(resource: str, limit: int) -> None:
    """Neutron's ``type:range [-1, DB_INTEGER_MAX_VALUE]``, with its message."""
    if limit < UNLIMITED:
        reason = f"'{limit}' is too small - must be at least '{UNLIMITED}'"
    elif limit > MAX_LIMIT:
        reason = f"'{limit}' is too large - must be no larger than '{MAX_LIMIT}'"
    else:
        return
    raise errors.HTTPBadRequest(f"Invalid input for {resource}. Reason: {reason}.")


def _to_int(value: Any) -> int:
    """Neutron's ``convert_to_int``, minus what int() takes by accident (2.5, True, ' 7', '1_0')."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise errors.InvalidInput(error_message=f"'{value}' is not an integer")


def parse_update(body: Any) -> tuple[dict[str, int], bool]:
    """A PUT body -> (new limits in the order given, force); Neutron's checks and messages."""
    if not isinstance(body, dict) or "quota" not in body:
        raise errors.HTTPBadRequest("Unable to find 'quota' in request body")
    extra = sorted(k for k in body if k != "quota")
    if extra:
        raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'")
    values = body["quota"]
    if not isinstance(values, dict):
        raise errors.HTTPBadRequest("Object 'quota' contains invalid data")
    force = values.get("force") is True
    requested = {k: v for k, v in values.items() if k not in _FLAGS}
    unknown = [k for k in requested if k not in RESOURCES]
    if unknown:
        raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    limits = {}
    for resource, value in requested.items():
        limits[resource] = _to_int(value)
        check_limit(resource, limits[resource])
    return limits, force


def check_project_id(project_id: str, stored: bool = False) -> None:
    """What the store can take: PostgreSQL refuses NUL in text; a stored one fits the column (Neutron's 255)."""
    if "\x00" in project_id:
        raise errors.HTTPBadRequest("Invalid input for project_id: a NUL character is not allowed")
    if stored and len(project_id) > PROJECT_ID_MAX_LEN:
        raise errors.HTTPBadRequest(
            f"Invalid input for project_id. Reason: '{project_id}' exceeds maximum length of {PROJECT_ID_MAX_LEN}."
        )


def effective(defaults: QuotaDefaults, overrides: Mapping[str, int]) -> dict[str, int]:
    """A project's limits: its overrides over the defaults, in Neutron's resource order."""
    base = defaults.as_dict()
    return {r: overrides.get(r, base[r]) for r in RESOURCES}
