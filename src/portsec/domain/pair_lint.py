"""The pair lint: which allowed address pairs let a port send as another port, and which are merely odd.

A pure function of ports and subnets (``lint_pairs``); the CLI reads them and
prints the findings. Each finding names the ports involved, why it matters, and
the `portsec` command that removes the risk.

Who is checked: ports with port security on that are not trusted (``network:*``).
The others may send from any address anyway, so their pairs change nothing, but
their addresses still count as what a checked port may impersonate.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from portsec.domain.address_ranges import AddressRange, RangeIndex, address_range
from portsec.domain.addresses import normalize_mac
from portsec.domain.model import AllowedPair, Port, Subnet


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SEVERITY_RANK = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2, Severity.INFO: 3}

# What each finding checked, as the Check column and JSON show it.
IMPERSONATION = "impersonation"  # a pair covers another port's fixed IP or pair
ANY_SOURCE = "any-source"  # 0.0.0.0/0 or ::/0
FOREIGN_MAC = "foreign-mac"  # a pair's MAC is another port's MAC
HOST_BITS = "host-bits"  # 10.0.0.5/24: backends disagree on what it allows
REDUNDANT = "redundant"  # the port's own fixed IP and MAC again
OUTSIDE_SUBNETS = "outside-subnets"  # in no subnet of the network
VIP = "vip"  # a host pair carried by two or more ports
SHARED_RANGE = "shared-range"  # a CIDR pair carried by two or more ports
UNCHECKED = "unchecked"  # port security off or trusted: not checked as impersonators

# How many victims a finding's text names before "and N more" (its ports list has them all).
NAMED_IN_TEXT = 5


@dataclass(frozen=True)
class Finding:
    """One risk or fact about pairs. ``port_ids[0]`` is the port whose pair it is (for shared
    pairs and unchecked ports, all of them are alike); ``ports`` are the same ports as a user
    names them. ``fix`` is a portsec command, empty when nothing needs fixing."""

    severity: Severity
    check: str
    network_id: str
    port_ids: tuple[str, ...]
    ports: tuple[str, ...]
    address: str
    why: str
    fix: str = ""


@dataclass(frozen=True)
class Impersonation:
    """``port_id``'s ``pair`` covers ``victim_address`` (a fixed IP or pair, as written) of ``victim_id``."""

    port_id: str
    pair: AllowedPair
    victim_id: str
    victim_address: str


# An address a port holds, which another port's pair may cover: (port ID, address as written, "fixed IP" or "pair").
Owned = tuple[str, str, str]


class _Addresses:
    """Every fixed IP and pair of one network and family, one position each, and an index of their ranges.

    Parallel lists rather than an object per address: a lint of 10,000 ports holds
    40,000 addresses, and the garbage collector walks every small object it is given.
    """

    __slots__ = ("holders", "index", "kinds", "ranges", "written")

    def __init__(self) -> None:
        self.ranges: list[AddressRange] = []
        self.holders: list[str] = []  # port IDs
        self.written: list[str] = []  # the address as the port has it
        self.kinds: list[str] = []  # "fixed IP" or "pair"
        self.index = RangeIndex(())

    def add(self, r: AddressRange, port_id: str, written: str, kind: str) -> None:
        self.ranges.append(r)
        self.holders.append(port_id)
        self.written.append(written)
        self.kinds.append(kind)

    def owned(self, position: int) -> Owned:
        return (self.holders[position], self.written[position], self.kinds[position])


def _key(r: AddressRange) -> AddressRange:
    """The range without how it was written: 10.0.0.5/24 and 10.0.0.0/24 are one pair to the switch."""
    return r._replace(host_bits=False) if r.host_bits else r


@dataclass
class _NetworkFacts:
    """What the checks of one network look up, built once per lint."""

    id: str
    ports: list[Port]
    addresses: dict[int, _Addresses] = field(default_factory=dict)  # by IP version
    # Tuples of IDs, grown by copying (nearly all have one): the collector stops following a tuple of
    # strings, while it walks every set and list on each full collection.
    carriers: dict[AddressRange, tuple[str, ...]] = field(default_factory=dict)  # pair range -> ports with it
    mac_owners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # port MAC -> ports
    subnets: dict[int, list[AddressRange]] = field(default_factory=dict)
    # Each address is parsed once per lint, here, in the order of the port's fixed_ips and pairs.
    fixed_ranges: dict[str, tuple[AddressRange, ...]] = field(default_factory=dict)
    pair_ranges: dict[str, tuple[AddressRange, ...]] = field(default_factory=dict)
    canonical_macs: dict[str, str] = field(default_factory=dict)

    def mac(self, text: str) -> str:
        """Canonical MAC; remembered, as a lint asks for the same few tens of thousands again and again."""
        canonical = self.canonical_macs.get(text)
        if canonical is None:
            canonical = self.canonical_macs[text] = normalize_mac(text)
        return canonical


def checked(port: Port) -> bool:
    """Only these ports are restricted to their bindings, so only their pairs can widen anything."""
    return port.port_security_enabled and not port.trusted


def lint_pairs(
    ports: Iterable[Port], subnets: Iterable[Subnet] = (), ambiguous_names: Iterable[str] = ()
) -> tuple[Finding, ...]:
    """Every finding about the pairs of ``ports``, most severe first.

    A port is compared only with ports of its own network. ``ambiguous_names`` are
    names that do not identify one port (the CLI knows of ports beyond those given);
    such ports, and unnamed ones, appear by ID in the findings and fix commands.
    """
    ports = list(ports)
    labels = _labels(ports, frozenset(ambiguous_names))
    findings: list[Finding] = []
    for facts in _facts_by_network(ports, subnets).values():
        findings += _lint_network(facts, labels)
    return tuple(sorted(findings, key=_finding_order))


def impersonations(ports: Iterable[Port]) -> frozenset[Impersonation]:
    """Every (checked port, pair, other port, address) where the pair covers the address and the
    other port does not carry the same pair; ``0.0.0.0/0`` and ``::/0`` aside (any-source says more)."""
    found: set[Impersonation] = set()
    for facts in _facts_by_network(list(ports), ()).values():
        for port in filter(checked, facts.ports):
            for i, pair in enumerate(port.allowed_address_pairs):
                for victim_id, address, _kind in _covered(facts, port, facts.pair_ranges[port.id][i]):
                    found.add(Impersonation(port.id, pair, victim_id, address))
    return frozenset(found)


def _labels(ports: Sequence[Port], ambiguous: frozenset[str]) -> dict[str, str]:
    """A port's name when it names only that port (what `find` needs), else its ID."""
    uses: dict[str, int] = defaultdict(int)
    for port in ports:
        uses[port.name] += 1
    return {p.id: p.name if p.name and uses[p.name] == 1 and p.name not in ambiguous else p.id for p in ports}


def _facts_by_network(ports: Sequence[Port], subnets: Iterable[Subnet]) -> dict[str, _NetworkFacts]:
    by_network: dict[str, _NetworkFacts] = {}
    for port in ports:
        by_network.setdefault(port.network_id, _NetworkFacts(port.network_id, [])).ports.append(port)
    for facts in by_network.values():
        _index_addresses(facts)
    for subnet in subnets:
        if subnet.network_id in by_network:
            r = address_range(subnet.cidr)
            by_network[subnet.network_id].subnets.setdefault(r.version, []).append(r)
    return by_network


def _index_addresses(facts: _NetworkFacts) -> None:
    """Every port's fixed IPs and pairs into per-family range indexes; pair carriers; MAC owners."""
    table = facts.addresses = {4: _Addresses(), 6: _Addresses()}
    for port in facts.ports:
        mac = facts.mac(port.mac_address)
        facts.mac_owners[mac] = (*facts.mac_owners.get(mac, ()), port.id)
        fixed = facts.fixed_ranges[port.id] = tuple([address_range(f.ip_address) for f in port.fixed_ips])
        for f, r in zip(port.fixed_ips, fixed, strict=True):
            table[r.version].add(r, port.id, f.ip_address, "fixed IP")
        pairs = facts.pair_ranges[port.id] = tuple([address_range(p.ip_address) for p in port.allowed_address_pairs])
        for p, r in zip(port.allowed_address_pairs, pairs, strict=True):
            table[r.version].add(r, port.id, p.ip_address, "pair")
            key = _key(r)
            carried = facts.carriers.get(key, ())
            if port.id not in carried:  # the same range twice, with two MACs, is one port carrying it
                facts.carriers[key] = (*carried, port.id)
    for addresses in table.values():
        addresses.index = RangeIndex(addresses.ranges)


def _covered(facts: _NetworkFacts, port: Port, r: AddressRange) -> list[Owned]:
    """Addresses of other ports inside ``r``, leaving out ports that carry the same pair (a shared VIP)."""
    if r.is_any:
        return []
    sharing = facts.carriers.get(_key(r), ())
    addresses = facts.addresses[r.version]
    holders = addresses.holders
    inside = addresses.index.inside(r)
    return [addresses.owned(k) for k in inside if holders[k] != port.id and holders[k] not in sharing]


def _lint_network(facts: _NetworkFacts, labels: dict[str, str]) -> list[Finding]:
    findings: list[Finding] = []
    for port in filter(checked, facts.ports):
        for pair, r in zip(port.allowed_address_pairs, facts.pair_ranges[port.id], strict=True):
            context = _PairContext(facts, labels, port, pair, r)
            for check in PAIR_CHECKS:  # a loop, not a list per pair: fewer objects for the collector to chase
                found = check(context)
                if found is not None:
                    findings.append(found)
    findings += _shared_pairs(facts, labels)
    findings += _unchecked_ports(facts, labels)
    return findings


class _PairContext:
    """One pair of one checked port, with what its checks look up (made once per pair: 30,000 in a big lint)."""

    __slots__ = ("facts", "labels", "mac", "own_mac", "pair", "port", "range", "who")

    def __init__(
        self, facts: _NetworkFacts, labels: dict[str, str], port: Port, pair: AllowedPair, r: AddressRange
    ) -> None:
        self.facts, self.labels, self.port, self.pair, self.range = facts, labels, port, pair, r
        self.who = labels[port.id]
        self.mac = facts.mac(pair.mac_address)
        self.own_mac = self.mac == facts.mac(port.mac_address)  # the pair sends as the port's own MAC

    def finding(self, severity: Severity, check: str, others: Sequence[str], why: str, fix: str) -> Finding:
        ids = (self.port.id, *others)
        return Finding(
            severity, check, self.facts.id, ids, tuple(self.labels[i] for i in ids), self.pair.ip_address, why, fix
        )

    def unset(self) -> str:
        """`port unset` of this pair; the MAC is given when the IP alone would remove other pairs too."""
        same_ip = [p for p in self.port.allowed_address_pairs if p.ip_address == self.pair.ip_address]
        spec = _pair_spec(self.pair.ip_address, None if self.own_mac and len(same_ip) == 1 else self.mac)
        return f"portsec port unset {shlex.quote(self.who)} --allowed-address {spec}"


def _pair_spec(ip: str, mac: str | None) -> str:
    return f"ip-address={ip}" + (f",mac-address={mac}" if mac else "")


def _any_source(c: _PairContext) -> Finding | None:
    if not c.range.is_any:
        return None
    why = (
        f"{c.pair.ip_address} lets {c.who} send from any IPv{c.range.version} source address with MAC {c.mac}: "
        "it can impersonate every port and host on the network"
    )
    return c.finding(Severity.HIGH, ANY_SOURCE, (), why, c.unset())


def _impersonation(c: _PairContext) -> Finding | None:
    covered = _covered(c.facts, c.port, c.range)
    if not covered:
        return None
    held: dict[str, list[str]] = {}  # victim -> its covered addresses; ports in address order
    for victim_id, address, kind in covered:
        held.setdefault(victim_id, []).append(f"{kind} {address}")
    victims = list(held)
    named = [f"{c.labels[v]} ({', '.join(held[v])})" for v in victims[:NAMED_IN_TEXT]]
    more = f" and {len(victims) - NAMED_IN_TEXT} more" if len(victims) > NAMED_IN_TEXT else ""
    widened = f" (host bits set: it covers all of {c.range.text()})" if c.range.host_bits else ""
    why = (
        f"pair {c.pair.ip_address}{widened} lets {c.who} send as {_count(len(victims), 'other port')} "
        f"that do not carry it: {', '.join(named)}{more}"
    )
    return c.finding(Severity.HIGH, IMPERSONATION, victims, why, c.unset())


def _foreign_mac(c: _PairContext) -> Finding | None:
    owners = [i for i in c.facts.mac_owners.get(c.mac, ()) if i != c.port.id]
    if not owners:
        return None
    names = ", ".join(c.labels[i] for i in owners)
    why = (
        f"pair {c.pair.ip_address} has MAC {c.mac}, the MAC of {names}: {c.who} may send as that MAC, "
        "and the switch then learns it on the wrong port and sends that port's traffic to it"
    )
    return c.finding(Severity.HIGH, FOREIGN_MAC, owners, why, c.unset())


def _host_bits(c: _PairContext) -> Finding | None:
    if not c.range.host_bits:
        return None
    network, host = c.range.text(), c.pair.ip_address.partition("/")[0]
    why = (
        f"{c.pair.ip_address} has host bits set: the OVS firewall (and portsec) allow all of {network}, "
        f"OVN only {host}; backends disagree on what it allows, so write the one that is meant"
    )
    return c.finding(Severity.MEDIUM, HOST_BITS, (), why, _rewrite(c, network))


def _rewrite(c: _PairContext, ip: str) -> str:
    """Remove the pair and add it back as ``ip`` (same MAC), unless the port already has that pair."""
    if AllowedPair(c.pair.mac_address, ip) in c.port.allowed_address_pairs:
        return c.unset()
    mac = None if c.own_mac else c.mac
    return f"{c.unset()} && portsec port set {shlex.quote(c.who)} --allowed-address {_pair_spec(ip, mac)}"


def _redundant(c: _PairContext) -> Finding | None:
    if not c.range.is_host or not c.own_mac:
        return None
    if c.range not in c.facts.fixed_ranges[c.port.id]:  # a host range has no host bits: equal means same address
        return None
    why = (
        f"{c.pair.ip_address} with MAC {c.mac} is already {c.who}'s fixed IP: the pair adds nothing now, "
        "and keeps the address allowed if the fixed IP is ever moved to another port"
    )
    return c.finding(Severity.LOW, REDUNDANT, (), why, c.unset())


def _outside_subnets(c: _PairContext) -> Finding | None:
    if c.range.is_any or any(c.range.within(s) for s in c.facts.subnets.get(c.range.version, ())):
        return None
    why = (
        f"{c.pair.ip_address} is in no subnet of the network: fine for a VM that routes other networks, "
        "worth knowing otherwise"
    )
    return c.finding(Severity.LOW, OUTSIDE_SUBNETS, (), why, c.unset())


PAIR_CHECKS = (_any_source, _impersonation, _foreign_mac, _host_bits, _redundant, _outside_subnets)


def _shared_pairs(facts: _NetworkFacts, labels: dict[str, str]) -> list[Finding]:
    """Each pair carried by two or more ports: expected (keepalived, VRRP), and worth seeing in one place."""
    findings = []
    for r, carriers in facts.carriers.items():
        if len(carriers) < 2 or r.is_any:  # any-source is high for each checked carrier already
            continue
        ids = tuple(sorted(carriers, key=lambda i: (labels[i], i)))
        if r.is_host:
            check, why = VIP, f"VIP {r.text()} is carried by {_count(len(ids), 'port')}: each may send as it "
            why += "(expected for keepalived/VRRP failover)"
        else:
            check, why = SHARED_RANGE, f"range {r.text()} is carried by {_count(len(ids), 'port')}: each may send "
            why += "as any address in it (expected for routers or appliances that fail over together)"
        findings.append(Finding(Severity.INFO, check, facts.id, ids, tuple(labels[i] for i in ids), r.text(), why))
    return findings


def _unchecked_ports(facts: _NetworkFacts, labels: dict[str, str]) -> list[Finding]:
    ids = tuple(sorted((p.id for p in facts.ports if not checked(p)), key=lambda i: (labels[i], i)))
    if not ids:
        return []
    one = len(ids) == 1
    why = (
        f"{_count(len(ids), 'port')} with port security off or trusted (network:*), not checked as "
        f"{'an impersonator' if one else 'impersonators'}: {'it sends' if one else 'they send'} from any "
        f"address anyway; {'its' if one else 'their'} addresses count for the others"
    )
    return [Finding(Severity.INFO, UNCHECKED, facts.id, ids, tuple(labels[i] for i in ids), "", why)]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _finding_order(f: Finding) -> tuple[int, str, str, str, str]:
    return (SEVERITY_RANK[f.severity], f.network_id, f.check, f.ports[0] if f.ports else "", f.address)
