"""Addresses and CIDRs as integer ranges, and an index that finds the ranges inside a range.

The pair lint asks, for every allowed address pair of every port, "which other
ports' addresses does this CIDR cover?". Asked of all pairs against all
addresses that is quadratic; here each (network, family) keeps its addresses
sorted by first address, so one question is a bisection plus the answers.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import NamedTuple

_BITS = {4: 32, 6: 128}


class AddressRange(NamedTuple):
    """The addresses an IP or CIDR stands for: ``first`` to ``last`` inclusive, as integers.

    ``host_bits`` is True for a CIDR written with bits set after its prefix
    (``10.0.0.5/24``): the range is then the whole /24, which is what the OVS
    firewall and portsec enforce (OVN allows only the host). A named tuple, not a
    dataclass: a lint makes tens of thousands and hashes them, and tuples do both in C.
    """

    version: int
    first: int
    last: int
    prefixlen: int
    host_bits: bool = False

    @property
    def is_host(self) -> bool:
        return self.prefixlen == _BITS[self.version]

    @property
    def is_any(self) -> bool:
        """``0.0.0.0/0`` or ``::/0``: every source address of the family."""
        return self.prefixlen == 0

    def within(self, other: AddressRange) -> bool:
        return self.version == other.version and other.first <= self.first and self.last <= other.last

    def text(self) -> str:
        """The canonical form: an address for a host, else network/prefix."""
        if self.version == 4:  # inet_ntop: a tenth of what ipaddress costs, for the thousands of VIPs a lint names
            address = socket.inet_ntop(socket.AF_INET, self.first.to_bytes(4, "big"))
        else:
            address = str(ipaddress.IPv6Address(self.first))
        return address if self.is_host else f"{address}/{self.prefixlen}"


def address_range(text: str) -> AddressRange:
    """An address or CIDR as written in a fixed IP or pair (host bits allowed), as a range.

    ``socket.inet_pton`` (libc's parser, no I/O) rather than ``ipaddress``: on this
    project's machines ``ip_network`` costs about 11 us a call, ``inet_pton`` 0.5 us,
    and a lint of 10,000 ports parses 40,000 addresses within a one-second budget.
    Anything ``inet_pton`` refuses goes to ``ipaddress``, which decides.
    """
    address, _, prefix = text.partition("/")
    version, value = _address_value(address)
    bits = _BITS[version]
    prefixlen = int(prefix) if prefix else bits
    if not 0 <= prefixlen <= bits:
        raise ValueError(f"{text!r} does not appear to be an IPv4 or IPv6 network")
    host_mask = (1 << (bits - prefixlen)) - 1
    first = value & ~host_mask
    return AddressRange(version, first, first | host_mask, prefixlen, host_bits=bool(value & host_mask))


def _address_value(address: str) -> tuple[int, int]:
    family, version = (socket.AF_INET6, 6) if ":" in address else (socket.AF_INET, 4)
    try:
        return version, int.from_bytes(socket.inet_pton(family, address), "big")
    except OSError:
        parsed = ipaddress.ip_address(address)  # raises ValueError for what is not an address
        return parsed.version, int(parsed)


class RangeIndex:
    """Ranges of one address family sorted by first address; it answers with their positions in its input.

    ``inside(r)`` returns the positions of the ranges that lie within ``r``: every
    such range starts in ``[r.first, r.last]``, so two bisections bound the
    candidates, and a candidate is an answer unless it runs past ``r.last``. The
    cost is the log of the size plus the ranges starting inside ``r`` (nearly always
    the answers). Positions and plain lists of ints, rather than a tuple per range:
    tens of thousands of small objects made the garbage collector a third of a lint.
    """

    def __init__(self, ranges: Sequence[AddressRange]) -> None:
        firsts = [r.first for r in ranges]
        self._positions = sorted(range(len(ranges)), key=firsts.__getitem__)
        self._firsts = [firsts[k] for k in self._positions]
        self._lasts = [ranges[k].last for k in self._positions]

    def __len__(self) -> int:
        return len(self._positions)

    def inside(self, outer: AddressRange) -> list[int]:
        start = bisect_left(self._firsts, outer.first)
        stop = bisect_right(self._firsts, outer.last, lo=start)
        lasts, positions, last = self._lasts, self._positions, outer.last
        return [positions[k] for k in range(start, stop) if lasts[k] <= last]
