"""A persistent OpenFlow 1.4 connection to br-int, for the agent's incremental bundles.

``ovs-ofctl`` costs ~13 ms a call here, nearly all of it connecting; an open
connection turns a bundle around in well under a millisecond, which is what
the convergence target needs. Only one message shape is ever sent (a flow mod
with the match fields of :mod:`portsec.openflow.pipeline` and one instruction,
inside ONF bundle messages), so it is encoded here, in a page; os-ken could
encode it too, but at ~0.45 ms a message and with eventlet, oslo.config and
ncclient in tow. The full sync still goes through ``ovs-ofctl replace-flows``,
which diffs against the switch in C.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from collections.abc import Iterable

from portsec.openflow.flows import PROTOCOLS, Flow

VERSION = 0x05  # OpenFlow 1.4
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY, FLOW_MOD, BARRIER_REQUEST, BARRIER_REPLY = 0, 1, 2, 3, 14, 20, 21
BUNDLE_CONTROL, BUNDLE_ADD = 33, 34
OPEN_REQUEST, COMMIT_REQUEST, DISCARD_REQUEST = 0, 4, 6
ATOMIC_ORDERED = 0x3
ADD, DELETE_STRICT = 0, 4
ANY, NORMAL, NO_BUFFER = 0xFFFFFFFF, 0xFFFFFFFA, 0xFFFFFFFF

# ovs-ofctl field -> (OXM field number, width in bytes, kind); tp_* and icmp_type depend on the protocol.
_OXM = {
    "in_port": (0, 4, "int"),
    "dl_dst": (3, 6, "mac"),
    "dl_src": (4, 6, "mac"),
    "vlan_tci": (6, 2, "int"),  # OXM_OF_VLAN_VID: 0x1000 is "a tag is present", as in vlan_tci's CFI bit
    "nw_src": (11, 4, "ip"),
    "nw_dst": (12, 4, "ip"),
    "arp_spa": (22, 4, "ip"),
    "arp_tpa": (23, 4, "ip"),
    "arp_sha": (24, 6, "mac"),
    "ipv6_src": (26, 16, "ip"),
    "ipv6_dst": (27, 16, "ip"),
    "nd_target": (31, 16, "ip"),
    "nd_tll": (33, 6, "mac"),
}
_PORTS = {6: (13, 14), 17: (15, 16)}  # TCP_SRC/DST, UDP_SRC/DST
_ICMP_TYPE = {1: 19, 58: 29}  # ICMPV4_TYPE, ICMPV6_TYPE


class OpenFlowError(RuntimeError):
    pass


def _oxm(field: int, value: bytes, mask: bytes | None = None) -> bytes:
    body = value + (mask or b"")
    return struct.pack("!HBB", 0x8000, field << 1 | (mask is not None), len(body)) + body


def _value(kind: str, width: int, text: str) -> tuple[bytes, bytes | None]:
    if kind == "mac":
        return bytes.fromhex(text.replace(":", "")), None
    if kind == "ip":
        net = ipaddress.ip_network(text, strict=False)
        mask = None if net.prefixlen == net.max_prefixlen else net.netmask.packed
        return net.network_address.packed, mask
    value, _, mask_text = text.partition("/")
    packed = int(value, 0).to_bytes(width, "big")
    return packed, int(mask_text, 0).to_bytes(width, "big") if mask_text else None


def encode_match(f: Flow) -> bytes:
    fields = b""
    proto = None
    if f.protocol:
        dl_type, proto = PROTOCOLS[f.protocol]
        fields += _oxm(5, struct.pack("!H", dl_type))
        if proto is not None:
            fields += _oxm(10, bytes([proto]))
    for name, text in f.match:
        if name in ("tp_src", "tp_dst"):
            if proto not in _PORTS:
                raise OpenFlowError(f"{name} needs tcp or udp: {f}")
            fields += _oxm(_PORTS[proto][name == "tp_dst"], struct.pack("!H", int(text)))
        elif name == "icmp_type":
            if proto not in _ICMP_TYPE:
                raise OpenFlowError(f"icmp_type needs icmp or icmp6: {f}")
            fields += _oxm(_ICMP_TYPE[proto], bytes([int(text)]))
        elif name == "dl_type":
            fields += _oxm(5, struct.pack("!H", int(text, 0)))
        else:
            number, width, kind = _OXM[name]
            fields += _oxm(number, *_value(kind, width, text))
    length = 4 + len(fields)
    return struct.pack("!HH", 1, length) + fields + b"\0" * (-length % 8)


def _instructions(actions: str) -> bytes:
    if actions == "drop":
        return b""
    if actions.startswith("goto_table:"):
        return struct.pack("!HHB3x", 1, 8, int(actions.split(":", 1)[1]))
    if actions == "NORMAL":
        return struct.pack("!HH4x", 4, 24) + struct.pack("!HHIH6x", 0, 16, NORMAL, 0)
    raise OpenFlowError(f"no encoding for actions={actions}")


def encode_flow_mod(f: Flow, command: int, xid: int) -> bytes:
    instructions = _instructions(f.actions) if command == ADD else b""
    body = (
        struct.pack("!QQBBHHHIIIHH", f.cookie, 0, f.table, command, 0, 0, f.priority, NO_BUFFER, ANY, ANY, 0, 0)
        + encode_match(f)
        + instructions
    )
    return struct.pack("!BBHI", VERSION, FLOW_MOD, 8 + len(body), xid) + body


class OpenFlowConnection:
    """Bundles over one long-lived connection to ``<rundir>/<bridge>.mgmt``; reconnects when it drops."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._xids = itertools.count(1)
        self._bundles = itertools.count(1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            sock.sendall(struct.pack("!BBHI", VERSION, HELLO, 8, next(self._xids)))
            version, kind, _, _, _ = self._read(sock)
        except OSError as err:
            sock.close()
            raise OpenFlowError(f"OpenFlow connection to {self.path}: {err}") from None
        if kind != HELLO or version < VERSION:
            sock.close()
            raise OpenFlowError(f"{self.path} does not speak OpenFlow 1.4 (bundles); add it to the bridge's protocols")
        return sock

    @staticmethod
    def _read(sock: socket.socket) -> tuple[int, int, int, int, bytes]:
        header = _read_exactly(sock, 8)
        version, kind, length, xid = struct.unpack("!BBHI", header)
        return version, kind, length, xid, _read_exactly(sock, length - 8)

    def bundle(self, deletes: Iterable[Flow], adds: Iterable[Flow]) -> None:
        """Deletes then adds, as one ordered, atomic bundle; returns once the switch committed it."""
        mods = [(f, DELETE_STRICT) for f in deletes] + [(f, ADD) for f in adds]
        if not mods:
            return
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self._sock = self._connect()
                self._send(self._sock, mods)
                return
            except (OSError, ConnectionError) as err:
                self.close()  # the switch went away (restart?): one fresh connection, then give up
                if attempt == 2:
                    raise OpenFlowError(f"OpenFlow connection to {self.path}: {err}") from None

    def _send(self, sock: socket.socket, mods: list[tuple[Flow, int]]) -> None:
        """Open, add, barrier; then commit, or discard if the switch refused any message.

        Open vSwitch answers a bad flow mod at add time and would still commit
        the rest of the bundle; the barrier makes those answers arrive before
        the decision, so a bundle goes in whole or not at all.
        """
        bundle_id = next(self._bundles) & 0xFFFFFFFF
        messages = [_control(bundle_id, OPEN_REQUEST, next(self._xids))]
        for f, command in mods:
            xid = next(self._xids)
            inner = encode_flow_mod(f, command, xid)
            body = struct.pack("!IHH", bundle_id, 0, ATOMIC_ORDERED) + inner
            messages.append(struct.pack("!BBHI", VERSION, BUNDLE_ADD, 8 + len(body), xid) + body)
        barrier = next(self._xids)
        messages.append(struct.pack("!BBHI", VERSION, BARRIER_REQUEST, 8, barrier))
        sock.sendall(b"".join(messages))
        errors = self._until(sock, barrier)
        decision = next(self._xids)
        sock.sendall(_control(bundle_id, DISCARD_REQUEST if errors else COMMIT_REQUEST, decision))
        errors += self._until(sock, decision)
        if errors:
            raise OpenFlowError(f"bundle refused by the switch: {', '.join(errors)}")

    def _until(self, sock: socket.socket, last: int) -> list[str]:
        """Read until the reply to ``last``; the errors the switch sent on the way."""
        errors = []
        while True:
            _, kind, _, xid, body = self._read(sock)
            if kind == ECHO_REQUEST:
                sock.sendall(struct.pack("!BBHI", VERSION, ECHO_REPLY, 8 + len(body), xid) + body)
                continue
            if kind == ERROR:
                err_type, code = struct.unpack("!HH", body[:4])
                errors.append(f"type {err_type} code {code} (xid {xid})")
            if xid == last:
                return errors


def _control(bundle_id: int, kind: int, xid: int) -> bytes:
    return struct.pack("!BBHIIHH", VERSION, BUNDLE_CONTROL, 16, xid, bundle_id, kind, ATOMIC_ORDERED)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the switch")
        data += chunk
    return data
