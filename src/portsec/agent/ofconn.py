"""A persistent OpenFlow 1.4 connection to br-int, for the agent's incremental bundles.

``ovs-ofctl`` costs ~13 ms a call here, nearly all of it connecting; an open
connection turns a bundle around in well under a millisecond, which is what
the convergence target needs. Only one message shape is ever sent (a flow mod,
inside ONF bundle messages), so it is encoded here, in a page: its OXM fields
come from the field registry (:mod:`portsec.openflow.fields`), its instructions
from the flow's structured actions. os-ken could encode it too, but at ~0.45 ms
a message and with eventlet, oslo.config and ncclient in tow. The full sync
still goes through ``ovs-ofctl replace-flows``, which diffs against the switch in C.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import Iterable

from portsec.openflow.actions import Actions, Controller, GotoTable, Normal, Output, as_actions
from portsec.openflow.fields import FIELD, PROTOCOLS, Field
from portsec.openflow.flows import Flow

VERSION = 0x05  # OpenFlow 1.4
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY, FLOW_MOD, BARRIER_REQUEST, BARRIER_REPLY = 0, 1, 2, 3, 14, 20, 21
BUNDLE_CONTROL, BUNDLE_ADD = 33, 34
OPEN_REQUEST, COMMIT_REQUEST, DISCARD_REQUEST = 0, 4, 6
ATOMIC_ORDERED = 0x3
ADD, DELETE_STRICT = 0, 4
ANY, NORMAL, NO_BUFFER = 0xFFFFFFFF, 0xFFFFFFFA, 0xFFFFFFFF
OFPIT_GOTO_TABLE, OFPIT_APPLY_ACTIONS, OFPAT_OUTPUT = 1, 4, 0
OFPAT_EXPERIMENTER, NX_VENDOR_ID, NXAST_CONTROLLER2 = 0xFFFF, 0x00002320, 37
NXAC2PT_MAX_LEN, NXAC2PT_METER_ID = 0, 5


class OpenFlowError(RuntimeError):
    pass


def _oxm(field: Field, proto: int | None, value: int, mask: int, f: Flow) -> bytes:
    """One OXM TLV of the OpenFlow basic class; a mask only when the match is not exact."""
    number = field.oxm_number(proto)
    if number is None:  # a port or ICMP type outside the protocols that have one
        raise OpenFlowError(f"{field.name} needs {field.needs.words if field.needs else 'a protocol'}: {f}")
    if mask == field.full:
        return struct.pack("!HBB", 0x8000, number << 1, field.size) + value.to_bytes(field.size, "big")
    body = value.to_bytes(field.size, "big") + mask.to_bytes(field.size, "big")
    return struct.pack("!HBB", 0x8000, number << 1 | 1, len(body)) + body


def encode_match(f: Flow) -> bytes:
    """The OXM match of ``f``: its protocol's ethertype and IP protocol, then its fields, from the field registry."""
    fields = b""
    proto = None
    if f.protocol:
        dl_type, proto = PROTOCOLS[f.protocol]
        fields += _oxm(FIELD["dl_type"], proto, dl_type, 0xFFFF, f)
        if proto is not None:
            fields += _oxm(FIELD["nw_proto"], proto, proto, 0xFF, f)
    for name, text in f.match:
        field = FIELD[name]  # a Flow made by flow() or parse_flow() has only registered fields
        fields += _oxm(field, proto, *field.value_mask(text), f)
    length = 4 + len(fields)
    return struct.pack("!HH", 1, length) + fields + b"\0" * (-length % 8)


def _instructions(actions: Actions) -> bytes:
    """Apply-actions with the outputs (NORMAL is a port), then goto-table: the instructions of a flow mod."""
    outputs = b""
    goto = b""
    for action in actions.items:
        if isinstance(action, Normal | Output):
            port = NORMAL if isinstance(action, Normal) else action.port
            outputs += struct.pack("!HHIH6x", OFPAT_OUTPUT, 16, port, 0)
        elif isinstance(action, Controller):
            outputs += _controller(action)
        elif isinstance(action, GotoTable):
            goto = struct.pack("!HHB3x", OFPIT_GOTO_TABLE, 8, action.table)
        else:
            raise OpenFlowError(f"no encoding for actions={actions.text}")
    if outputs:
        outputs = struct.pack("!HH4x", OFPIT_APPLY_ACTIONS, 8 + len(outputs)) + outputs
    return outputs + goto


def _controller(action: Controller) -> bytes:
    """NXAST_CONTROLLER2 with its max_len and meter_id properties, each padded to 8 bytes."""
    properties = struct.pack("!HHH2xHHI", NXAC2PT_MAX_LEN, 6, action.max_len, NXAC2PT_METER_ID, 8, action.meter_id)
    header = struct.pack("!HHIH6x", OFPAT_EXPERIMENTER, 16 + len(properties), NX_VENDOR_ID, NXAST_CONTROLLER2)
    return header + properties


def encode_flow_mod(f: Flow, command: int, xid: int) -> bytes:
    instructions = _instructions(as_actions(f.actions)) if command == ADD else b""
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
        return connect(self.path, self.timeout)

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
            _, kind, _, xid, body = read_message(sock)
            if kind == ECHO_REQUEST:
                sock.sendall(echo_reply(xid, body))
                continue
            if kind == ERROR:
                err_type, code = struct.unpack("!HH", body[:4])
                errors.append(f"type {err_type} code {code} (xid {xid})")
            if xid == last:
                return errors


def connect(path: str, timeout: float) -> socket.socket:
    """A connection to ``path`` that said hello in OpenFlow 1.4 (or later)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(struct.pack("!BBHI", VERSION, HELLO, 8, 0))
        version, kind, _, _, _ = read_message(sock)
    except OSError as err:
        sock.close()
        raise OpenFlowError(f"OpenFlow connection to {path}: {err}") from None
    if kind != HELLO or version < VERSION:
        sock.close()
        raise OpenFlowError(f"{path} does not speak OpenFlow 1.4 (bundles); add it to the bridge's protocols")
    return sock


def read_message(sock: socket.socket) -> tuple[int, int, int, int, bytes]:
    """One message: version, type, length, xid and body."""
    header = _read_exactly(sock, 8)
    version, kind, length, xid = struct.unpack("!BBHI", header)
    return version, kind, length, xid, _read_exactly(sock, length - 8)


def echo_reply(xid: int, body: bytes) -> bytes:
    return struct.pack("!BBHI", VERSION, ECHO_REPLY, 8 + len(body), xid) + body


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
