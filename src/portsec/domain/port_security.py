"""Port security: how a port's value is resolved and what it forbids (reference §3)."""

from __future__ import annotations

from typing import Any

from portsec.domain import errors
from portsec.domain.attributes import NOT_SPECIFIED
from portsec.domain.model import is_trusted_owner


def resolve_on_create(requested: Any, device_owner: str, network_default: bool) -> bool:
    """Network-owned ports never get port security; else the request; else the network's."""
    if is_trusted_owner(device_owner):
        return False
    if requested is not NOT_SPECIFIED and requested is not None:
        return bool(requested)
    return network_default


def check_create(enabled: bool, pairs: list[Any], security_groups: list[Any]) -> None:
    if not enabled and pairs:
        raise errors.AddressPairAndPortSecurityRequired()
    if not enabled and security_groups:
        raise errors.PortSecurityAndIPRequiredForSecurityGroups()


def check_update(enabled: bool, body: dict[str, Any], has_stored_pairs: bool) -> None:
    """Turning port security off needs the pairs cleared in the same request."""
    if enabled:
        return
    if "allowed_address_pairs" in body:
        if body["allowed_address_pairs"]:
            raise errors.AddressPairAndPortSecurityRequired()
    elif has_stored_pairs:
        raise errors.AddressPairAndPortSecurityRequired()
    if body.get("security_groups"):
        raise errors.PortSecurityAndIPRequiredForSecurityGroups()
