"""The packets the flows copy to the agent: what a port announces for a VIP, what an audit would drop.

A second connection to ``<bridge>.mgmt``, read by its own thread, so that a
burst of copies never waits behind a bundle, nor a bundle behind them. Open
vSwitch sends a connection on the management socket no asynchronous message
until it asks, so the first thing said is OFPT_SET_ASYNC for packet-ins from
an action. The meters the flows name (:data:`~portsec.openflow.pipeline.METERS`)
bound how many copies come; each is timed on arrival, before any queue.

Only a handful of bytes of each frame matter (source MAC, the address claimed
or used), at fixed offsets: :func:`parse_frame` reads them with ``struct``
rather than pull a packet library into the agent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from portsec.agent.ofconn import ECHO_REQUEST, VERSION, OpenFlowError, connect, echo_reply, read_message

LOG = logging.getLogger(__name__)
PACKET_IN, SET_ASYNC = 10, 28
OFPACPT_PACKET_IN_SLAVE, OFPACPT_PACKET_IN_MASTER = 0, 1
OFPR_APPLY_ACTION = 1  # the reason of a packet-in sent by a controller action
ETH_ARP, ETH_IP, ETH_IPV6, ETH_VLAN = 0x0806, 0x0800, 0x86DD, 0x8100
ICMPV6, NEIGHBOR_ADVERTISEMENT = 58, 136
RECONNECT_SECONDS = 0.5


@dataclass(frozen=True)
class Frame:
    """What a copied frame says: its source MAC, the IP source it used (ARP's sender address, the IPv4 or
    IPv6 source; '' for other ethertypes) and the address it claims (ARP's sender, an NA's target)."""

    mac: str
    source: str
    claimed: str | None


@dataclass(frozen=True)
class Copy:
    """One packet-in: when it arrived (wall clock), the cookie of the flow that sent it, and the frame."""

    at: float
    cookie: int
    frame: Frame


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse_frame(data: bytes) -> Frame | None:
    """The fields of an Ethernet frame the agent needs; None when it is too short to hold them."""
    if len(data) < 14:
        return None
    mac = _mac(data[6:12])
    ethertype, offset = struct.unpack_from("!H", data, 12)[0], 14
    if ethertype == ETH_VLAN and len(data) >= 18:
        ethertype, offset = struct.unpack_from("!H", data, 16)[0], 18
    body = data[offset:]
    if ethertype == ETH_ARP and len(body) >= 28:
        spa = str(ipaddress.IPv4Address(body[14:18]))
        return Frame(mac, spa, spa)
    if ethertype == ETH_IP and len(body) >= 20:
        return Frame(mac, str(ipaddress.IPv4Address(body[12:16])), None)
    if ethertype == ETH_IPV6 and len(body) >= 40:
        source = str(ipaddress.IPv6Address(body[8:24]))
        if body[6] == ICMPV6 and len(body) >= 64 and body[40] == NEIGHBOR_ADVERTISEMENT:
            return Frame(mac, source, str(ipaddress.IPv6Address(body[48:64])))
        return Frame(mac, source, None)
    return Frame(mac, "", None)


def parse_packet_in(body: bytes) -> tuple[int, bytes]:
    """(cookie, frame) of an OpenFlow 1.4 packet-in body."""
    cookie = struct.unpack_from("!Q", body, 8)[0]
    match_length = struct.unpack_from("!H", body, 18)[0]
    start = 16 + match_length + (-match_length % 8) + 2  # the match, padded to 8 bytes, then 2 bytes of pad
    return cookie, body[start:]


def async_config() -> bytes:
    """Packet-ins from actions, whatever the connection's role; every other asynchronous message left as is."""
    mask = 1 << OFPR_APPLY_ACTION
    props = b"".join(struct.pack("!HHI", kind, 8, mask) for kind in (OFPACPT_PACKET_IN_SLAVE, OFPACPT_PACKET_IN_MASTER))
    return struct.pack("!BBHI", VERSION, SET_ASYNC, 8 + len(props), 0) + props


class PacketInListener:
    """Hands each copy to ``deliver`` from its own thread; reconnects (Open vSwitch restarted) until stopped."""

    def __init__(self, path: str, deliver: Callable[[Copy], None]) -> None:
        self.path = path
        self.deliver = deliver
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="packet-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sock = connect(self.path, timeout=5.0)
                self._sock.sendall(async_config())
                self._sock.settimeout(None)
                self.connected.set()
                self._read(self._sock)
            except (OSError, ConnectionError, OpenFlowError) as err:
                if not self._stop.is_set():
                    LOG.info("packet-in connection to %s: %s; reconnecting", self.path, err)
            finally:
                self.connected.clear()
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
            self._stop.wait(RECONNECT_SECONDS)

    def _read(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            _, kind, _, xid, body = read_message(sock)
            if kind == PACKET_IN:
                at = time.time()
                cookie, data = parse_packet_in(body)
                frame = parse_frame(data)
                if frame is not None:
                    self.deliver(Copy(at, cookie, frame))
            elif kind == ECHO_REQUEST:
                sock.sendall(echo_reply(xid, body))
