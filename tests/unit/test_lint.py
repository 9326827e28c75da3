"""The pair lint on crafted networks (every check, every severity), and its range index against all pairs."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portsec.domain.address_ranges import RangeIndex, address_range
from portsec.domain.model import AllowedPair, FixedIp, Port, Subnet
from portsec.domain.pair_lint import Finding, Impersonation, Severity, impersonations, lint_pairs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def mac(n: int) -> str:
    return f"fa:16:3e:00:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"


def port(
    name: str,
    n: int,
    fixed: tuple[str, ...] = (),
    pairs: tuple[str | tuple[str, str], ...] = (),
    network: str = "net",
    security: bool = True,
    owner: str = "compute:nova",
) -> Port:
    """Port ``n`` (ID ``p<n>``, MAC from n); a pair is an IP (the port's MAC) or (IP, MAC)."""
    allowed = tuple(AllowedPair(mac(n), p) if isinstance(p, str) else AllowedPair(p[1], p[0]) for p in pairs)
    return Port(
        id=f"p{n}", network_id=network, project_id="admin", name=name, mac_address=mac(n), admin_state_up=True,
        status="DOWN", device_id="", device_owner=owner, port_security_enabled=security, host_id="",
        vnic_type="normal", description="", revision_number=1, created_at=T0, updated_at=T0,
        fixed_ips=tuple(FixedIp("s4", ip) for ip in fixed), allowed_address_pairs=allowed,
    )  # fmt: skip


def subnet(cidr: str, network: str = "net") -> Subnet:
    return Subnet(
        id=f"s-{cidr}", network_id=network, project_id="admin", name="", ip_version=6 if ":" in cidr else 4,
        cidr=cidr, gateway_ip=None, allocation_pools=(), enable_dhcp=True, dns_nameservers=(), host_routes=(),
        ipv6_ra_mode=None, ipv6_address_mode=None, description="", revision_number=1, created_at=T0, updated_at=T0,
    )  # fmt: skip


# One network with one case of every check, and a second network whose addresses repeat the first's.
CRAFTED = [
    port("server1", 1, ("10.0.0.11",), ("10.0.0.10",)),  # keepalived pair: the VIP
    port("server2", 2, ("10.0.0.12",), ("10.0.0.10",)),
    port("router", 3, ("10.0.0.1",), ("10.0.0.0/28",)),  # covers .2, .10, .11, .12 of others
    port("anything", 4, ("10.0.0.40",), ("0.0.0.0/0", "::/0")),
    port("thief", 5, ("10.0.0.50",), (("10.0.0.51", mac(1)),)),  # server1's MAC
    port("sloppy", 6, ("10.0.0.60",), ("10.0.0.65/30",)),  # 10.0.0.64/30 to OVS, 10.0.0.65 to OVN
    port("self", 7, ("10.0.0.70",), ("10.0.0.70",)),
    port("vmrouter", 8, ("10.0.0.80",), ("192.168.50.0/24",)),
    port("dhcp", 9, ("10.0.0.2",), ("0.0.0.0/0",), owner="network:dhcp"),  # trusted: not checked
    port("off", 10, ("10.0.0.90",), security=False),
    port("elsewhere", 11, ("10.0.0.5",), ("10.0.0.10",), network="net2"),  # same VIP, other network
]
SUBNETS = [subnet("10.0.0.0/24"), subnet("2001:db8::/64"), subnet("10.0.0.0/24", "net2")]


def summary(findings: tuple[Finding, ...]) -> list[tuple[str, str, tuple[str, ...], str]]:
    return [(f.severity.value, f.check, f.ports, f.address) for f in findings]


def by_check(findings: tuple[Finding, ...], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def test_every_check_on_a_crafted_network_most_severe_first():
    assert summary(lint_pairs(CRAFTED, SUBNETS)) == [
        ("high", "any-source", ("anything",), "0.0.0.0/0"),
        ("high", "any-source", ("anything",), "::/0"),
        ("high", "foreign-mac", ("thief", "server1"), "10.0.0.51"),
        ("high", "impersonation", ("router", "dhcp", "server1", "server2"), "10.0.0.0/28"),
        ("medium", "host-bits", ("sloppy",), "10.0.0.65/30"),
        ("low", "outside-subnets", ("vmrouter",), "192.168.50.0/24"),
        ("low", "redundant", ("self",), "10.0.0.70"),
        ("info", "unchecked", ("dhcp", "off"), ""),
        ("info", "vip", ("server1", "server2"), "10.0.0.10"),
    ]


def test_a_shared_vip_is_info_not_high_and_a_covering_range_names_each_victim_address():
    findings = lint_pairs(CRAFTED, SUBNETS)
    assert not [f for f in findings if f.severity is Severity.HIGH and f.ports[0] in ("server1", "server2")]
    (vip,) = by_check(findings, "vip")
    assert (vip.port_ids, vip.fix) == (("p1", "p2"), "")
    assert "keepalived" in vip.why
    (cover,) = by_check(findings, "impersonation")
    assert cover.why == (
        "pair 10.0.0.0/28 lets router send as 3 other ports that do not carry it: dhcp (fixed IP 10.0.0.2), "
        "server1 (pair 10.0.0.10, fixed IP 10.0.0.11), server2 (pair 10.0.0.10, fixed IP 10.0.0.12)"
    )
    assert cover.fix == "portsec port unset router --allowed-address ip-address=10.0.0.0/28"


def test_ports_that_carry_the_same_range_are_not_victims_of_it():
    routers = [port("r1", 1, ("10.0.0.1",), ("10.0.0.0/24",)), port("r2", 2, ("10.0.0.2",), ("10.0.0.0/24",))]
    assert summary(lint_pairs(routers, [subnet("10.0.0.0/24")])) == [
        ("info", "shared-range", ("r1", "r2"), "10.0.0.0/24")
    ]


def test_fix_commands_name_the_pair_precisely():
    findings = lint_pairs(CRAFTED, SUBNETS)
    assert [(f.check, f.fix) for f in findings if f.fix] == [
        ("any-source", "portsec port unset anything --allowed-address ip-address=0.0.0.0/0"),
        ("any-source", "portsec port unset anything --allowed-address ip-address=::/0"),
        ("foreign-mac", f"portsec port unset thief --allowed-address ip-address=10.0.0.51,mac-address={mac(1)}"),
        ("impersonation", "portsec port unset router --allowed-address ip-address=10.0.0.0/28"),
        # the /30 is what the OVS firewall and portsec allowed: the rewrite keeps that meaning, unambiguously
        ("host-bits", "portsec port unset sloppy --allowed-address ip-address=10.0.0.65/30 && "
         "portsec port set sloppy --allowed-address ip-address=10.0.0.64/30"),
        ("outside-subnets", "portsec port unset vmrouter --allowed-address ip-address=192.168.50.0/24"),
        ("redundant", "portsec port unset self --allowed-address ip-address=10.0.0.70"),
    ]  # fmt: skip


def test_unnamed_and_ambiguous_ports_appear_by_id_and_odd_names_are_quoted():
    ports = [
        port("", 1, ("10.0.0.1",), ("0.0.0.0/0",)),
        port("web", 2, ("10.0.0.2",), ("0.0.0.0/0",)),
        port("web", 3, ("10.0.0.3",), network="net2"),
        port("my vm", 4, ("10.0.0.4",), ("0.0.0.0/0",)),
        port("db", 5, ("10.0.0.5",), ("0.0.0.0/0",)),
    ]
    fixes = sorted(f.fix for f in lint_pairs(ports, ambiguous_names={"db"}))
    assert fixes == [
        "portsec port unset 'my vm' --allowed-address ip-address=0.0.0.0/0",
        "portsec port unset p1 --allowed-address ip-address=0.0.0.0/0",
        "portsec port unset p2 --allowed-address ip-address=0.0.0.0/0",
        "portsec port unset p5 --allowed-address ip-address=0.0.0.0/0",
    ]


def test_the_mac_is_given_when_the_ip_alone_would_remove_another_pair():
    twice = port("vrrp", 1, ("10.0.0.1",), (("0.0.0.0/0", mac(1)), ("0.0.0.0/0", "00:00:5e:00:01:01")))
    fixes = sorted(f.fix for f in lint_pairs([twice], [subnet("10.0.0.0/24")]))
    assert fixes == [
        "portsec port unset vrrp --allowed-address ip-address=0.0.0.0/0,mac-address=00:00:5e:00:01:01",
        f"portsec port unset vrrp --allowed-address ip-address=0.0.0.0/0,mac-address={mac(1)}",
    ]


def test_host_bits_with_the_network_already_there_only_removes():
    both = port("both", 1, ("10.0.0.1",), ("10.0.0.64/30", "10.0.0.65/30"))
    (finding,) = by_check(lint_pairs([both], [subnet("10.0.0.0/24")]), "host-bits")
    assert finding.fix == "portsec port unset both --allowed-address ip-address=10.0.0.65/30"


def test_ipv6_pairs_are_checked_like_ipv4():
    ports = [
        port("a", 1, ("2001:db8::1",), ("2001:db8::/126", "2001:db8::1")),
        port("b", 2, ("2001:db8::2",)),
        port("c", 3, ("2001:db8::3",), ("2001:db8::5/64",)),
    ]
    assert summary(lint_pairs(ports, [subnet("2001:db8::/64")])) == [
        ("high", "impersonation", ("a", "b", "c"), "2001:db8::/126"),  # ::0 to ::3
        ("high", "impersonation", ("c", "a", "b"), "2001:db8::5/64"),
        ("medium", "host-bits", ("c",), "2001:db8::5/64"),
        ("low", "redundant", ("a",), "2001:db8::1"),
    ]


def test_a_clean_network_has_no_findings_and_addresses_in_other_networks_do_not_count():
    ports = [port("a", 1, ("10.0.0.1",), ("10.0.0.100",)), port("b", 2, ("10.0.0.100",), network="other")]
    assert lint_pairs(ports, [subnet("10.0.0.0/24"), subnet("10.0.0.0/24", "other")]) == ()


# --- the range index against all pairs ---------------------------------------------------------------------------

V4 = [f"10.0.0.{i}" for i in range(0, 16)]
V6 = [f"2001:db8::{i:x}" for i in range(0, 16)]
PREFIXES = {4: [32, 32, 31, 30, 28, 24, 0], 6: [128, 128, 127, 126, 124, 64, 0]}


@st.composite
def addresses(draw: st.DrawFn, with_prefix: bool) -> str:
    version = draw(st.sampled_from([4, 4, 6]))
    address = draw(st.sampled_from(V4 if version == 4 else V6))
    prefix = draw(st.sampled_from(PREFIXES[version])) if with_prefix else None
    if prefix is None or (prefix in (32, 128) and draw(st.booleans())):  # a host, written with or without /32
        return address
    return f"{address}/{prefix}"


@st.composite
def networks(draw: st.DrawFn) -> list[Port]:
    """A few ports on two networks, addresses from a small space so that they overlap often."""
    count = draw(st.integers(0, 8))
    ports = []
    for n in range(count):
        pairs = draw(st.lists(addresses(with_prefix=True), max_size=3, unique=True))
        macs = [draw(st.sampled_from([mac(n), mac(n), mac((n + 1) % max(count, 1))])) for _ in pairs]
        ports.append(
            port(
                f"p{n}", n,
                tuple(draw(st.lists(addresses(with_prefix=False), max_size=2, unique=True))),
                tuple(zip(pairs, macs, strict=True)),
                network=draw(st.sampled_from(["n1", "n1", "n2"])),
                security=draw(st.booleans()) or draw(st.booleans()),
                owner=draw(st.sampled_from(["compute:nova", "compute:nova", "network:router_interface"])),
            )
        )  # fmt: skip
    return ports


def all_pairs_reference(ports: list[Port]) -> set[Impersonation]:
    """The definition, with ipaddress, every pair of every checked port against every address of every port."""
    found = set()
    for a in ports:
        if not a.port_security_enabled or a.device_owner.startswith("network:"):
            continue
        for pair in a.allowed_address_pairs:
            covering = ipaddress.ip_network(pair.ip_address, strict=False)
            if covering.prefixlen == 0:
                continue
            for b in ports:
                carried = {ipaddress.ip_network(q.ip_address, strict=False) for q in b.allowed_address_pairs}
                if b.id == a.id or b.network_id != a.network_id or covering in carried:
                    continue
                for held in [f.ip_address for f in b.fixed_ips] + [q.ip_address for q in b.allowed_address_pairs]:
                    net = ipaddress.ip_network(held, strict=False)
                    if net.version == covering.version and net.subnet_of(covering):  # type: ignore[arg-type]
                        found.add(Impersonation(a.id, pair, b.id, held))
    return found


@settings(max_examples=400, deadline=None)
@given(networks())
def test_the_range_index_finds_exactly_what_all_pairs_find(ports):
    expected = all_pairs_reference(ports)
    assert impersonations(ports) == expected
    # and the findings the lint prints say the same: one per (port, pair address), its victims after the port
    reported = {
        (f.port_ids[0], f.address, victim)
        for f in lint_pairs(ports)
        if f.check == "impersonation"
        for victim in f.port_ids[1:]
    }
    assert reported == {(i.port_id, i.pair.ip_address, i.victim_id) for i in expected}


@given(addresses(with_prefix=True))
def test_address_range_is_the_network_ipaddress_makes(text):
    r, net = address_range(text), ipaddress.ip_network(text, strict=False)
    assert (r.version, r.first, r.last, r.prefixlen) == (
        net.version, int(net.network_address), int(net.broadcast_address), net.prefixlen,
    )  # fmt: skip
    assert r.host_bits == (ipaddress.ip_interface(text).ip != net.network_address)
    assert r.text() == (str(net.network_address) if r.is_host else str(net))


@given(st.lists(addresses(with_prefix=True)), addresses(with_prefix=True))
def test_range_index_inside_is_a_filter_of_everything(texts, outer_text):
    outer = address_range(outer_text)
    ranges = [r for r in map(address_range, texts) if r.version == outer.version]  # one index per family
    index = RangeIndex(ranges)
    expected = [i for i, r in enumerate(ranges) if r.within(outer)]
    found = index.inside(outer)
    assert sorted(found) == expected
    assert [ranges[i].first for i in found] == sorted(ranges[i].first for i in found)  # in address order


@pytest.mark.parametrize("text", ["10.0.0.256", "10.0.0.1/33", "2001:db8::/129", "not-an-ip", "10.0.0.1/x"])
def test_address_range_refuses_what_is_not_an_address(text):
    with pytest.raises(ValueError):
        address_range(text)
