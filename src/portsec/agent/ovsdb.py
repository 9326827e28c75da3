"""The OVSDB side of the agent: which interface is which port (and at which ofport), local VLAN tags, the bridge.

Everything goes through ovsdbapp on an IDL that monitors only the columns read
here. Interfaces are followed by a RowEvent on the Interface table (ofport
arrives after the row: ovs-vswitchd assigns it); bridge settings and local VLAN
tags are ovsdbapp commands, the tags of many ports in one transaction which, as
ovs-vsctl's, returns once ovs-vswitchd applied it (``cur_cfg``). Failures are
ovsdbapp's typed errors, all of them RuntimeErrors: ``OvsdbConnectionUnavailable``
when nothing answers, ``TimeoutException`` when OVSDB or ovs-vswitchd does not.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

from ovsdbapp import exceptions
from ovsdbapp.backend.ovs_idl import connection, event, idlutils, transaction
from ovsdbapp.schema.open_vswitch import impl_idl

from ovs import jsonrpc, stream

LOG = logging.getLogger(__name__)
DEFAULT_RUNDIR = "/var/run/openvswitch"
SCHEMA = "Open_vSwitch"
TIMEOUT = 10  # seconds for a connection's first dump, a transaction, ovs-vswitchd applying it (ovs-vsctl --timeout)
# What the commands read and write: local VLAN tags, on a connection kept open; a bridge (add_br of a new one
# writes its internal port and interface too), on one of its own that loads only the rows of that name.
TAG_COLUMNS = {"Open_vSwitch": ["cur_cfg", "next_cfg"], "Port": ["name", "tag"]}
BRIDGE_COLUMNS = {
    "Open_vSwitch": ["bridges", "cur_cfg", "next_cfg"],
    "Bridge": ["name", "ports", "fail_mode", "protocols"],
    "Port": ["name", "interfaces"],
    "Interface": ["name", "type", "ofport"],
}
INTERFACE_COLUMNS = ["name", "ofport", "external_ids"]
PROTOCOLS = {"OpenFlow10", "OpenFlow13", "OpenFlow14"}  # 1.4 for bundles


def default_target(rundir: str | None = None) -> str:
    return f"unix:{rundir or os.environ.get('OVS_RUNDIR') or DEFAULT_RUNDIR}/db.sock"


def ovsdb_answers(target: str) -> bool:
    try:
        _schema(target, timeout=2)
    except exceptions.OvsdbConnectionUnavailable:
        return False
    return True


def _schema(target: str, timeout: float = TIMEOUT) -> Any:
    """The server's Open_vSwitch schema (an ``ovs.db.idl.SchemaHelper``).

    As ovsdbapp's ``idlutils.get_schema_helper``, with a typed error and no
    error logged when nothing listens (``portsec serve`` on a host without
    Open vSwitch says so itself).
    """
    error, conn = stream.Stream.open_block(stream.Stream.open(target), int(timeout * 1000))
    if error:
        raise exceptions.OvsdbConnectionUnavailable(db_schema=SCHEMA, error=f"{target}: {os.strerror(error)}")
    rpc = jsonrpc.Connection(conn)
    try:
        error, reply = rpc.transact_block(jsonrpc.Message.create_request("get_schema", [SCHEMA]))
    finally:
        rpc.close()
    if error or reply.error:
        trouble = f"{target}: {os.strerror(error) if error else reply.error}"
        raise exceptions.OvsdbConnectionUnavailable(db_schema=SCHEMA, error=trouble)
    return idlutils.create_schema_helper(reply.result)


class _Idl(connection.OvsdbIdl):
    def cooperative_yield(self) -> None:
        """Nothing: no eventlet here to yield to (ovsdbapp sleeps 0 s per row: a second per 10,000 rows loaded)."""


def _idl(target: str, columns: dict[str, list[str]], idl: type[_Idl] = _Idl, **idl_args: Any) -> Any:
    """An IDL (not yet connected) of ``columns``; raises OvsdbConnectionUnavailable when nothing answers."""
    helper = _schema(target)
    for table, names in columns.items():
        helper.register_columns(table, names)
    return idl(target, helper, **idl_args)


def _start(conn: connection.Connection) -> None:
    """Start ``conn``: its IDL connects and loads its tables, or OvsdbConnectionUnavailable."""
    try:
        conn.start()
    except exceptions.TimeoutException:  # raised bare by idlutils.wait_for_change: it has no message
        conn.idl.close()
        raise exceptions.OvsdbConnectionUnavailable(db_schema=SCHEMA, error=f"no database in {TIMEOUT} s") from None


class _Transaction(impl_idl.OvsVsctlTransaction):
    """ovs-vsctl's transaction (bumps ``next_cfg``, then waits for ovs-vswitchd's ``cur_cfg``), except that
    ovs-vswitchd not applying it in time is an error: ovsdbapp only logs it."""

    def post_commit(self, txn: Any) -> None:
        transaction.Transaction.post_commit(self, txn)
        try:
            self.do_post_commit(txn)
        except impl_idl.VswitchdInterfaceAddException as err:  # as ovs-vsctl: a warning
            LOG.warning("%s", err)


class _Vswitch(impl_idl.OvsdbIdl):
    """ovsdbapp's Open_vSwitch commands on a connection of their own (ovsdbapp keeps one per class)."""

    ovsdb_connection: Any = None

    def create_transaction(self, check_error: bool = False, log_errors: bool = True, **kwargs: Any) -> _Transaction:
        return _Transaction(self, self.ovsdb_connection, kwargs.get("timeout"), check_error, log_errors)


def _api(target: str, columns: dict[str, list[str]], conditions: dict[str, list[Any]] | None = None) -> _Vswitch:
    """The commands on a connection of their own, its IDL loaded with ``columns`` of the rows that match
    ``conditions`` (all rows of a table without one); OvsdbConnectionUnavailable when nothing answers."""
    conn = connection.Connection(_idl(target, columns), TIMEOUT)
    for table, condition in (conditions or {}).items():
        conn.idl.cond_change(table, condition)
    api = _Vswitch(conn, start=False)  # its indexes (lookups by name) before the rows come
    _start(conn)
    return api


def ofports_of(target: str, iface_id: str) -> list[int]:
    """The ofports of the interfaces plugged with ``external_ids:iface-id=iface_id`` (OvsdbConnectionUnavailable
    when nothing answers)."""
    match = ["external_ids", "includes", ["map", [["iface-id", iface_id]]]]
    api = _api(target, {"Interface": ["ofport", "external_ids"]}, {"Interface": [match]})
    try:
        found = api.db_find("Interface", ("external_ids", "=", {"iface-id": iface_id}), columns=["ofport"])
        rows = found.execute(check_error=True, log_errors=False)
    finally:
        api.ovsdb_connection.stop(timeout=5)
    return [r["ofport"] for r in rows if isinstance(r["ofport"], int) and r["ofport"] > 0]


@dataclass(frozen=True)
class Interface:
    name: str
    ofport: int
    iface_id: str


def _interface(row: Any) -> Interface | None:
    """The interface of a (frozen) Interface row, if it is a plugged port: an iface-id and an ofport."""
    iface_id, ofport = row.external_ids.get("iface-id"), row.ofport[0] if row.ofport else 0
    return Interface(row.name, ofport, iface_id) if iface_id and ofport > 0 else None


class _MonitorIdl(_Idl):
    """An IDL that hands row changes to RowEvents (``notify_handler``) and says once when its connection is lost.

    The IDL reconnects by itself, a second later, and reloads the table; but rows
    deleted meanwhile are never notified: its user had better start afresh.
    """

    def __init__(self, remote: str, helper: Any, on_lost: Callable[[], None]) -> None:
        super().__init__(remote, helper)
        self.notify_handler = _Handler()
        self.on_lost = on_lost
        self.connects = 0
        self.lost = False

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        self.notify_handler.notify(event, row, updates)

    def restart_fsm(self) -> None:  # the session (re)connected: the IDL asks for everything again
        self.connects += 1
        super().restart_fsm()
        if self.connects > 1:
            self._lose()

    def run(self) -> bool:
        changed: bool = super().run()
        if self.connects and not self._session.is_connected():  # python-ovs has no hook for a disconnection
            self._lose()
        return changed

    def _lose(self) -> None:
        if not self.lost:
            self.lost = True
            self.on_lost()


class _Handler(event.RowEventHandler):
    def _on_matching(self, event: str, row: Any, updates: Any = None) -> _Row:
        """What crosses to the notify thread: ``frozen_row``'s idea, for the columns read here only (half the cost
        of ``frozen_row``, which reads each column twice: that is seconds on a first load of 10,000 rows)."""
        return _Row(row.uuid, row.name, row.ofport, row.external_ids)

    def after_queued(self, callback: Callable[[], None]) -> None:
        """``callback`` runs on the notify thread once every notification queued before this call has run."""
        self.notifications.put((_Callback(callback), None, None, None))

    def stop(self) -> None:
        self.shutdown()
        atexit.unregister(self.shutdown)


class _Row(NamedTuple):
    uuid: UUID
    name: str
    ofport: list[int]
    external_ids: dict[str, str]


@dataclass
class _Callback:
    callback: Callable[[], None]
    ONETIME = False

    def run(self, *_: Any) -> None:
        self.callback()


class _InterfaceEvent(event.RowEvent):
    """Every change of an Interface row, to the monitor that registered it (on the handler's thread)."""

    def __init__(self, monitor: InterfaceMonitor, generation: int) -> None:
        super().__init__((self.ROW_CREATE, self.ROW_UPDATE, self.ROW_DELETE), "Interface", None)
        self.monitor, self.generation = monitor, generation

    def matches(self, event: str, row: Any, old: Any = None) -> bool:
        return True  # every change of the one table this IDL holds (ovsdbapp's own check formats a debug line)

    def run(self, event: str, row: Any, old: Any) -> None:
        self.monitor._apply(self.generation, event == self.ROW_DELETE, row)


class InterfaceMonitor:
    """The Interface table, kept current by a RowEvent on an IDL; ``on_change`` runs after each change.

    ``alive`` turns false (and ``on_change`` runs) when the connection is lost,
    ovsdb-server restarting say: the caller starts the monitor again and reads
    everything afresh.
    """

    def __init__(self, target: str, on_change: Callable[[], None]) -> None:
        self.target = target
        self.on_change = on_change
        self._rows: dict[UUID, tuple[str | None, Interface | None]] = {}  # row -> (its iface-id, its port if plugged)
        self._row_of: dict[str, UUID] = {}  # iface-id -> uuid of its Interface row
        self._dirty: set[str] = set()  # iface-ids whose interface changed since take_dirty()
        self._lock = threading.Lock()
        self._generation = 0  # of the connection whose events count: an earlier one's may still be queued
        self._conn: connection.Connection | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        """Connect and load the table (or OvsdbConnectionUnavailable); ``ready`` once every row is applied."""
        self.stop()
        self.ready.clear()
        with self._lock:
            self._generation += 1
            self._rows.clear()
            self._row_of.clear()
        idl = _idl(self.target, {"Interface": INTERFACE_COLUMNS}, _MonitorIdl, on_lost=self.on_change)
        idl.notify_handler.watch_event(_InterfaceEvent(self, self._generation))
        conn = connection.Connection(idl, TIMEOUT)
        try:
            _start(conn)  # returns once every row is notified
        except exceptions.OvsdbConnectionUnavailable:
            idl.notify_handler.stop()
            raise
        self._conn = conn
        idl.notify_handler.after_queued(self._loaded)

    def _loaded(self) -> None:
        self.ready.set()
        self.on_change()

    @property
    def alive(self) -> bool:
        conn = self._conn
        return conn is not None and conn.thread is not None and conn.thread.is_alive() and not conn.idl.lost

    def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.stop(timeout=5)
            conn.idl.notify_handler.stop()

    def _apply(self, generation: int, deleted: bool, row: Any) -> None:
        with self._lock:
            if generation != self._generation:
                return
            old = self._rows.pop(row.uuid, (None, None))[0]
            new = None if deleted else row.external_ids.get("iface-id") or None
            if not deleted:
                self._rows[row.uuid] = (new, _interface(row))
            if old and self._row_of.get(old) == row.uuid:
                del self._row_of[old]
            if new:
                self._row_of[new] = row.uuid
            self._dirty.update(i for i in (old, new) if i)
        self.on_change()

    def interfaces(self) -> dict[str, Interface]:
        """Plugged ports: iface-id -> interface, for interfaces with an ofport."""
        with self._lock:
            self._dirty.clear()
            return {i.iface_id: i for _, i in self._rows.values() if i is not None}

    def take_dirty(self) -> dict[str, Interface | None]:
        """The iface-ids changed since the last call, each with its interface now (None: unplugged)."""
        with self._lock:
            now = {i: self._interface_of(i) for i in self._dirty}
            self._dirty.clear()
            return now

    def _interface_of(self, iface_id: str) -> Interface | None:
        uuid = self._row_of.get(iface_id)
        return self._rows[uuid][1] if uuid else None


@dataclass
class Vsctl:
    """ovs-vsctl's work as ovsdbapp commands; the tags' connection is kept from the first call until ``close``."""

    target: str
    _api: _Vswitch | None = field(default=None, init=False, repr=False)

    def api(self) -> _Vswitch:
        """The commands on the tags' connection (OvsdbConnectionUnavailable when nothing answers)."""
        if self._api is None:
            self._api = _api(self.target, TAG_COLUMNS)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.ovsdb_connection.stop(timeout=5)
            self._api = None

    def prepare_bridge(self, bridge: str) -> None:
        """The bridge exists, fails closed with no controller, and speaks OpenFlow 1.4 (for bundles)."""
        named = [["name", "==", bridge]]
        api = _api(self.target, BRIDGE_COLUMNS, {"Bridge": named, "Port": named, "Interface": named})
        try:
            found = api.db_list("Bridge", [bridge], ["protocols"], if_exists=True)
            found = found.execute(check_error=True, log_errors=False)
            protocols = sorted(PROTOCOLS.union(*(row["protocols"] for row in found)))
            with api.transaction(check_error=True, log_errors=False) as txn:
                added = txn.add(api.add_br(bridge))  # may exist; its result names the row either way
                txn.add(api.db_set("Bridge", added, ("fail_mode", "secure"), ("protocols", protocols), if_exists=False))
        finally:
            api.ovsdb_connection.stop(timeout=5)

    def port_tags(self) -> dict[str, int]:
        rows = self.api().db_list("Port", columns=["name", "tag"]).execute(check_error=True, log_errors=False)
        return {r["name"]: r["tag"] for r in rows if isinstance(r["tag"], int)}

    def set_tags(self, tags: Iterable[tuple[str, int]], timeout: float = 30.0) -> None:
        """Set local VLAN tags in one transaction, which returns once ovs-vswitchd applied them.

        Until then NORMAL would still forward these ports on their old VLAN.
        """
        todo = list(tags)
        if not todo:
            return
        api = self.api()
        try:
            with api.transaction(check_error=True, log_errors=False, timeout=timeout) as txn:
                for name, tag in todo:
                    txn.add(api.db_set("Port", name, ("tag", tag)))
        except exceptions.TimeoutException:
            raise exceptions.TimeoutException(
                commands=f"the local VLAN tags of {len(todo)} ports", timeout=timeout,
                cause="ovs-vswitchd did not apply them"
            ) from None  # fmt: skip
