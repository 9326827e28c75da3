"""What OVN's Northbound database should hold for portsec's networks and ports (pure: no I/O).

The mapping is ML2/OVN's (reference/ovn.md §2), from the same PortGuard the native
agent compiles, so both backends enforce one intent:

- a network is a Logical_Switch named ``portsec-<network id>``;
- a port is a Logical_Switch_Port named by its id. ``addresses`` holds the port MAC
  with its fixed IPs (OVN answers ARP/ND for those and forwards to that MAC) and each
  other MAC a pair sends from; pair IPs are never in ``addresses``, so OVN's ARP
  responder does not answer for a VIP and its holder does. ``port_security`` holds
  one entry per MAC of the guard with every address it may send from; CIDRs are
  written in network form, so ``10.0.0.5/24`` means the /24 on both backends;
- port security off, or a trusted (``network:*``) port: ``port_security`` empty and
  ``unknown`` in ``addresses`` (OVN then also forwards to MACs it does not know there);
- ``admin_state_up`` false is ``enabled=false``: OVN then drops all of the port's traffic.

A VIP (a host pair carried by several ports) needs no OVN ``type=virtual`` port:
its holders' ``port_security`` lets the keepalived master send from it, and failover
is the master's gratuitous ARP. Measured on the two-hypervisor bed (reference/ovn.md
§3, and bench/ovn.py), a virtual port made failover no faster, and it needs a
placeholder port that users should never have to create.

The contract rows that OVN's port security does not check are portsec ACLs on one
port group holding every enforced port (:data:`ACLS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from portsec.domain.model import Network, Port
from portsec.guards import Binding, guard_of

SWITCH_PREFIX = "portsec-"
PORT_GROUP = "portsec_enforced"  # OVN names: letters, digits, '_' and '.'
NETWORK_KEY = "portsec:network_id"
NAME_KEY = "portsec:name"
REVISION_KEY = "portsec:revision_number"
ACL_PRIORITY = 1001  # above the 1000 of Neutron's security-group ACLs, were both to share a switch


@dataclass(frozen=True)
class SwitchIntent:
    name: str
    network_id: str
    revision: int
    display_name: str

    @property
    def external_ids(self) -> dict[str, str]:
        return {NETWORK_KEY: self.network_id, NAME_KEY: self.display_name, REVISION_KEY: str(self.revision)}


@dataclass(frozen=True)
class PortIntent:
    name: str  # the port id
    network_id: str
    addresses: tuple[str, ...]
    port_security: tuple[str, ...]
    enabled: bool
    revision: int

    @property
    def enforced(self) -> bool:
        """In portsec's port group (its ACLs apply): port security on, not a trusted port."""
        return bool(self.port_security)

    @property
    def switch(self) -> str:
        return switch_name(self.network_id)

    @property
    def external_ids(self) -> dict[str, str]:
        return {NETWORK_KEY: self.network_id, REVISION_KEY: str(self.revision)}

    def content(self) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """What the data plane depends on: equal content means no write, whatever the revisions say."""
        return (self.addresses, self.port_security, self.enabled)


@dataclass(frozen=True)
class Acl:
    """A stateless drop of traffic from an enforced port, for a contract row OVN's port security leaves open."""

    match: str
    why: str
    direction: str = "from-lport"
    priority: int = ACL_PRIORITY
    action: str = "drop"

    def key(self) -> tuple[str, int, str, str]:
        return (self.direction, self.priority, self.match, self.action)


# Each row of DESIGN §4 that ovn-northd's port-security stages do not enforce (the README's table says which do).
# Not Router Advertisements: OVN 23.03's ACL stage passes all of ND, RA and RS at priority 65532, above any ACL.
ACLS = (
    Acl(f"inport == @{PORT_GROUP} && udp.src == 67 && udp.dst == 68", "DHCPv4 server reply"),
    Acl(f"inport == @{PORT_GROUP} && udp.src == 547 && udp.dst == 546", "DHCPv6 server reply"),
    Acl(f"inport == @{PORT_GROUP} && (icmp4.type == 5 || icmp6.type == 137)", "ICMP/ICMPv6 Redirect"),
    Acl(f"inport == @{PORT_GROUP} && !ip4 && !ip6 && !arp", "an ethertype other than IPv4, IPv6 and ARP"),
)


def switch_name(network_id: str) -> str:
    return SWITCH_PREFIX + network_id


def switch_intent(network: Network) -> SwitchIntent:
    return SwitchIntent(switch_name(network.id), network.id, network.revision_number, network.name)


def port_intent(port: Port) -> PortIntent:
    # The guard of the port as if it were up: a disabled port keeps its addresses, and `enabled` stops it.
    guard = guard_of(dataclasses.replace(port, admin_state_up=True))
    fixed = " ".join(f.ip_address for f in port.fixed_ips)
    own = f"{guard.mac} {fixed}".strip()
    if not guard.enforced:
        return PortIntent(port.id, port.network_id, (own, "unknown"), (), port.admin_state_up,
                          port.revision_number)  # fmt: skip
    by_mac: dict[str, list[Binding]] = {}
    for binding in guard.bindings:
        by_mac.setdefault(binding.mac, []).append(binding)
    other_macs = sorted(m for m in by_mac if m != guard.mac)
    security = tuple(_entry(mac, by_mac[mac]) for mac in [guard.mac, *other_macs] if mac in by_mac)
    return PortIntent(port.id, port.network_id, (own, *other_macs), security, port.admin_state_up,
                      port.revision_number)  # fmt: skip


def _entry(mac: str, bindings: Iterable[Binding]) -> str:
    """``MAC addr ...``: hosts bare, networks in CIDR form (never with host bits, which OVN would read as a host)."""
    texts = [str(b.network.network_address) if b.network.num_addresses == 1 else str(b.network) for b in bindings]
    return " ".join([mac, *texts])
