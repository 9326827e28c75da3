"""Port -> PortGuard: who a port may send as, the input of every data-plane backend (DESIGN.md §4)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portsec.domain.addresses import IPNetwork, link_local_network, normalize_mac, parse_network
from portsec.domain.model import Port, is_trusted_owner


@dataclass(frozen=True, order=True)
class Binding:
    """One allowed (source MAC, source address or CIDR) of a port.

    Its hash is computed once: bindings live in sets and caches, and ipaddress hashes a
    network in Python each time (a third of a full sync's compile at 10,000 ports).
    """

    mac: str
    network: IPNetwork

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.mac, self.network)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    @property
    def version(self) -> int:
        return self.network.version


@dataclass(frozen=True)
class PortGuard:
    """What the data plane enforces for one port.

    ``enforced`` is False for a port with port security off or a trusted
    (``network:*``) port: everything it sends passes, and ``bindings`` are only
    what strict mode would allow (audited, never enforced). Otherwise only the
    ``bindings`` may be sent as; ``macs`` are their source MACs. A port that
    is administratively down (``admin_up`` False) may send nothing at all.
    ``vips`` are the bindings of host pairs that are not a fixed IP: the
    addresses a keepalived pair moves, whose ARP/NA tell who holds them now.
    """

    port_id: str
    network_id: str
    mac: str
    enforced: bool
    bindings: tuple[Binding, ...] = ()
    admin_up: bool = True
    vips: frozenset[Binding] = frozenset()

    @property
    def macs(self) -> tuple[str, ...]:
        return tuple(sorted({b.mac for b in self.bindings}))

    def bindings_of(self, version: int) -> tuple[Binding, ...]:
        return tuple(b for b in self.bindings if b.version == version)

    def binding_for(self, mac: str, address: str) -> Binding | None:
        """The most specific binding that lets ``mac`` send from ``address``; None when none does."""
        ip = ipaddress.ip_address(address)
        found = [b for b in self.bindings if b.mac == mac and b.version == ip.version and ip in b.network]
        return max(found, key=lambda b: b.network.prefixlen, default=None)


def guard_of(port: Port) -> PortGuard:
    """The allowed bindings B of DESIGN.md §4: fixed IPs, pairs, and the link-local address of each MAC."""
    return _guard(
        port.id, port.network_id, port.mac_address, port.port_security_enabled and not port.trusted,
        [f.ip_address for f in port.fixed_ips], [(p.mac_address, p.ip_address) for p in port.allowed_address_pairs],
        port.admin_state_up,
    )  # fmt: skip


def guard_from_view(port: Mapping[str, Any]) -> PortGuard:
    """The same, from a port as the API shows it (what a remote client holds)."""
    return _guard(
        port["id"], port["network_id"], port["mac_address"],
        bool(port["port_security_enabled"]) and not is_trusted_owner(port.get("device_owner")),
        [f["ip_address"] for f in port.get("fixed_ips") or ()],
        [(p["mac_address"], p["ip_address"]) for p in port.get("allowed_address_pairs") or ()],
        bool(port.get("admin_state_up", True)),
    )  # fmt: skip


def _guard(
    port_id: str,
    network_id: str,
    mac: str,
    enforced: bool,
    fixed_ips: list[str],
    pairs: list[tuple[str, str]],
    admin_up: bool = True,
) -> PortGuard:
    mac = normalize_mac(mac)
    if not admin_up:
        return PortGuard(port_id, network_id, mac, enforced=True, admin_up=False)
    fixed = {Binding(mac, parse_network(ip)) for ip in fixed_ips}
    paired = {Binding(normalize_mac(m), parse_network(ip)) for m, ip in pairs}
    found = fixed | paired
    for m in {mac} | {b.mac for b in found}:
        found.add(Binding(m, link_local_network(m)))
    # A multicast source MAC is never a VM's own, whatever a pair says: fail closed.
    found = {b for b in found if not int(b.mac[:2], 16) & 1}  # canonical MACs: the group bit of the first octet
    vips = frozenset(b for b in paired - fixed if b in found and b.network.prefixlen == b.network.max_prefixlen)
    return PortGuard(port_id, network_id, mac, enforced, tuple(sorted(found, key=_order)), vips=vips)


def _order(b: Binding) -> tuple[str, int, int, int]:
    return (b.mac, b.version, int(b.network.network_address), b.network.prefixlen)
