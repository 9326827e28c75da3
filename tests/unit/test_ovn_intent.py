"""What portsec writes to OVN's Northbound for a port: ML2/OVN's addresses and port_security, from the PortGuard."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pytest

from portsec.domain.model import AllowedPair, FixedIp, Port
from portsec.ovn.intent import ACLS, PORT_GROUP, port_intent, switch_name

NOW = datetime(2026, 12, 1)
MAC = "fa:16:3e:3e:e3:14"
LLA = "fe80::f816:3eff:fe3e:e314"


def _port(pairs: tuple[tuple[str, str], ...] = (), **extra: Any) -> Port:
    port = Port("p1", "net1", "proj", "server1", MAC, True, "DOWN", "", "compute:nova", True, "", "normal", "", 7,
                NOW, NOW, fixed_ips=(FixedIp("s1", "192.168.1.138"),),
                allowed_address_pairs=tuple(AllowedPair(ip_address=ip, mac_address=mac) for ip, mac in pairs))  # fmt: skip
    return dataclasses.replace(port, **extra)


def test_fixed_ips_and_same_mac_pairs_share_one_entry() -> None:
    intent = port_intent(_port((("192.168.1.10", MAC),)))
    assert intent.switch == switch_name("net1") == "portsec-net1"
    assert intent.addresses == (f"{MAC} 192.168.1.138",), "pair IPs are never in addresses (no ARP responder)"
    assert intent.port_security == (f"{MAC} 192.168.1.10 192.168.1.138 {LLA}",)
    assert intent.enabled and intent.enforced and intent.external_ids["portsec:revision_number"] == "7"


def test_a_pair_with_another_mac_is_an_entry_of_its_own_and_a_mac_in_addresses() -> None:
    intent = port_intent(_port((("10.0.0.5", "fa:16:3e:00:00:99"),)))
    assert intent.addresses == (f"{MAC} 192.168.1.138", "fa:16:3e:00:00:99")
    assert intent.port_security[1] == "fa:16:3e:00:00:99 10.0.0.5 fe80::f816:3eff:fe00:99"


@pytest.mark.parametrize(("cidr", "written"), [("10.0.0.5/24", "10.0.0.0/24"), ("10.0.0.5/32", "10.0.0.5"),
                                               ("0.0.0.0/0", "0.0.0.0/0"), ("2001:db8::1/64", "2001:db8::/64")])  # fmt: skip
def test_cidr_pairs_are_written_in_network_form(cidr: str, written: str) -> None:
    """OVN reads host bits as that host only; the native agent as the whole network: network form means one thing."""
    (entry,) = port_intent(_port(((cidr, MAC),))).port_security
    assert written in entry.split()


@pytest.mark.parametrize("extra", [{"port_security_enabled": False}, {"device_owner": "network:dhcp"}])
def test_no_port_security_means_no_entries_and_unknown(extra: dict[str, Any]) -> None:
    intent = port_intent(_port(((("192.168.1.10", MAC),) if not extra.get("port_security_enabled", True) else ()),
                               **extra))  # fmt: skip
    assert intent.port_security == () and "unknown" in intent.addresses and not intent.enforced


def test_admin_down_disables_the_port_and_keeps_its_addresses() -> None:
    intent = port_intent(_port(admin_state_up=False))
    assert not intent.enabled and intent.port_security == (f"{MAC} 192.168.1.138 {LLA}",)


def test_a_multicast_pair_mac_is_never_allowed() -> None:
    intent = port_intent(_port((("10.0.0.5", "01:00:5e:00:00:01"),)))
    assert all(not entry.startswith("01:") for entry in intent.port_security)


def test_the_acls_match_only_the_port_group() -> None:
    assert all(acl.match.startswith(f"inport == @{PORT_GROUP} && ") and acl.action == "drop" for acl in ACLS)
    assert len({acl.key() for acl in ACLS}) == len(ACLS)
