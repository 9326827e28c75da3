"""Allowed address pairs: Neutron's validation, in its order, and the rules after it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portsec.domain import errors
from portsec.domain.addresses import is_multicast_mac, mac_error, multicast_error, pair_ip_error
from portsec.domain.model import AllowedPair

DEFAULT_MAX_PAIRS = 10
_PAIR_KEYS = frozenset({"ip_address", "mac_address"})


def validate_pairs(data: Any, max_pairs: int = DEFAULT_MAX_PAIRS) -> list[dict[str, str]]:
    """Checks 1-10 of the reference (§2.2); returns the entries as given.

    Each check stops at the first failure, and most raise their own typed error
    rather than returning a message, exactly as neutron-lib does.
    """
    if not isinstance(data, list):
        raise errors.HTTPBadRequest("Allowed address pairs must be a list.")
    if len(data) > max_pairs:
        raise errors.AllowedAddressPairExhausted(quota=max_pairs)
    seen: list[tuple[Any, Any]] = []  # a list: a bad entry may hold unhashable values
    for entry in data:
        if not isinstance(entry, dict):
            raise errors.HTTPBadRequest(
                f"Invalid input for allowed_address_pairs. Reason: '{entry}' is not a dictionary."
            )
        if "mac_address" in entry:
            msg = mac_error(entry["mac_address"])
            if msg:
                raise errors.HTTPBadRequest(msg)
        if "ip_address" not in entry:
            raise errors.AllowedAddressPairsMissingIP()
        key = (entry.get("mac_address"), entry["ip_address"])
        if key in seen:
            raise errors.DuplicateAddressPairInRequest(mac_address=key[0], ip_address=key[1])
        seen.append(key)
        extra = sorted(set(entry) - _PAIR_KEYS)
        if extra:
            raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'")
        ip = entry["ip_address"]
        msg = pair_ip_error(ip) or multicast_error(ip)
        if msg:
            raise errors.HTTPBadRequest(msg)
        mac = entry.get("mac_address")
        if mac is not None and is_multicast_mac(mac):
            raise errors.HTTPBadRequest(f"MAC address {mac} is a multicast address, which is not supported.")
    return data


def with_port_mac(entries: Iterable[dict[str, str]], port_mac: str) -> tuple[AllowedPair, ...]:
    """Fill the port's MAC where the client gave none; a collision that creates is a duplicate."""
    pairs: list[AllowedPair] = []
    for entry in entries:
        pair = AllowedPair(mac_address=entry.get("mac_address") or port_mac, ip_address=entry["ip_address"])
        if pair in pairs:
            raise errors.DuplicateAddressPairInRequest(mac_address=pair.mac_address, ip_address=pair.ip_address)
        pairs.append(pair)
    return tuple(pairs)
