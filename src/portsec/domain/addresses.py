"""MAC and IP address rules, with Neutron's validator messages.

Validators return ``None`` when the value is good and the message Neutron
would give otherwise, so callers decide how the message is wrapped (Neutron
wraps some as "Invalid input for X. Reason: ...", raises others bare).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import uuid
from typing import Any

import netaddr

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

INVALID_MACS = frozenset({0, 0xFFFFFFFFFFFF})
MULTICAST_V4 = ipaddress.ip_network("224.0.0.0/4")
MULTICAST_V6 = ipaddress.ip_network("ff00::/8")
_WHITESPACE = re.compile(r"\s")


def mac_error(data: Any) -> str | None:
    """Neutron's validate_mac_address: any form netaddr accepts, not 00.. or ff.."""
    ok = isinstance(data, str) and not _WHITESPACE.search(data) and netaddr.valid_mac(data)
    if ok and int(netaddr.EUI(data)) in INVALID_MACS:
        ok = False
    return None if ok else f"'{data}' is not a valid MAC address"


_CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def normalize_mac(mac: str) -> str:
    """Lower-case, colon separated, two hex digits per octet."""
    if _CANONICAL_MAC.fullmatch(mac):  # what the store holds: no need for netaddr's parser
        return mac
    return str(netaddr.EUI(mac, dialect=netaddr.mac_unix_expanded)).lower()


def is_multicast_mac(mac: str) -> bool:
    return bool(int(netaddr.EUI(mac)) >> 40 & 0x01)


def ip_error(data: Any) -> str | None:
    """Neutron's validate_ip_address: strict dotted quad or an IPv6 address."""
    if not isinstance(data, str) or _WHITESPACE.search(data):
        return f"'{data}' is not a valid IP address"
    if ":" not in data and data.count(".") != 3:
        return f"'{data}' is not a valid IP address"
    try:
        if "%" not in data:  # no IPv6 zone index
            ipaddress.ip_address(data)
            return None
    except ValueError:
        pass
    # Leading zeros: Neutron names the form it would accept instead.
    parts = data.split(".")
    if ":" not in data and all(p.isdigit() for p in parts):
        try:
            canonical = str(ipaddress.ip_address(".".join(str(int(p)) for p in parts)))
        except ValueError:
            return f"'{data}' is not a valid IP address"
        return f"'{data}' is not an accepted IP address, '{canonical}' is recommended"
    return f"'{data}' is not a valid IP address"


def subnet_error(data: Any) -> str | None:
    """Neutron's validate_subnet: a CIDR, IPv4 written as its network address."""
    if not isinstance(data, str) or _WHITESPACE.search(data):
        return f"'{data}' is not a valid IP subnet"
    try:
        net = ipaddress.ip_network(data, strict=False)
    except ValueError:
        return f"'{data}' is not a valid IP subnet"
    if "/" not in data or (net.version == 4 and str(net) != data):
        return f"'{data}' isn't a recognized IP subnet cidr, '{net}' is recommended"
    return None


def pair_ip_error(data: Any) -> str | None:
    """An allowed-address-pair IP: a host address or a CIDR (host bits allowed).

    The prefix must be a length: ``ipaddress`` also takes a netmask or a hostmask
    (``/255.255.255.0``, ``/0.0.0.255``), which Neutron refuses.
    """
    if isinstance(data, str) and "/" in data:
        prefix = data.split("/", 1)[1]
        if not (prefix.isascii() and prefix.isdigit()):
            return f"'{data}' is not a valid IP subnet"
        try:
            ipaddress.ip_network(data, strict=False)
        except ValueError:
            return f"'{data}' is not a valid IP subnet"
        address = data.split("/", 1)[0]
        return None if ip_error(address) is None else f"'{data}' is not a valid IP subnet"
    return ip_error(data)


def parse_network(text: str) -> IPNetwork:
    """A host address or CIDR (host bits allowed) as the network it covers.

    A full sync parses every address of 10,000 ports: the address goes through the C
    parser (``inet_pton``) and the network is made from integers, three times faster
    than ipaddress's string parser, which handles anything else (and says what is wrong).
    """
    address, slash, prefix = text.partition("/")
    v6 = ":" in address
    try:
        packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, address)
    except OSError:
        return ipaddress.ip_network(text, strict=False)
    if slash and not prefix.isdigit():
        return ipaddress.ip_network(text, strict=False)
    value = int.from_bytes(packed, "big")
    if v6:
        return ipaddress.IPv6Network((value, int(prefix) if slash else 128), strict=False)
    return ipaddress.IPv4Network((value, int(prefix) if slash else 32), strict=False)


def multicast_error(ip_or_cidr: str) -> str | None:
    """Pairs must not cover multicast; 0.0.0.0/0 and ::/0 mean "any" and are allowed."""
    net = parse_network(ip_or_cidr)
    if net.prefixlen == 0:
        return None
    mcast = MULTICAST_V4 if net.version == 4 else MULTICAST_V6
    if "/" not in ip_or_cidr:
        if net.network_address in mcast:
            return f"IP {ip_or_cidr} is a multicast address, which is not supported."
        return None
    if net.overlaps(mcast):  # type: ignore[arg-type]
        return f"Subnet {ip_or_cidr} overlaps with multicast range {mcast}, which is not supported."
    return None


def uuid_error(data: Any) -> str | None:
    if isinstance(data, str):
        try:
            uuid.UUID(data.replace("urn:", "").replace("uuid:", ""))
            return None
        except ValueError:
            pass
    return f"'{data}' is not a valid UUID"


def eui64(prefix: IPNetwork, mac: str) -> IPAddress:
    """SLAAC / link-local address of ``mac`` in a /64 (RFC 4291 modified EUI-64)."""
    return ipaddress.ip_address(str(netaddr.EUI(mac).ipv6(int(prefix.network_address))))


def link_local_network(mac: str) -> ipaddress.IPv6Network:
    """The link-local address of ``mac`` as a /128 (made from integers: no text to parse)."""
    return ipaddress.IPv6Network((int(link_local(mac)), 128))


def link_local(mac: str) -> ipaddress.IPv6Address:
    """fe80::/64 with the modified EUI-64 of ``mac`` (universal/local bit flipped, ff:fe in the middle)."""
    value = int(normalize_mac(mac).replace(":", ""), 16)
    interface_id = (value >> 24 << 40 | 0xFFFE << 24 | value & 0xFFFFFF) ^ 0x0200000000000000
    return ipaddress.IPv6Address(0xFE80 << 112 | interface_id)
