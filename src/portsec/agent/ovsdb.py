"""The OVSDB side of the agent: which interface is which port (and at which ofport), and local VLAN tags.

Interfaces are followed with ``ovsdb-client monitor`` on the Interface table,
as Neutron's OVS agent does (its ``SimpleInterfaceMonitor``): one long-lived
process streaming JSON rows, no polling. Bridge settings go through
``ovs-vsctl``; local VLAN tags go as direct OVSDB transactions
(``ovsdb-client transact``) of many ports each, then wait for ovs-vswitchd
to apply them (``Vsctl.set_tags``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)
DEFAULT_RUNDIR = "/var/run/openvswitch"
TAGS_PER_TRANSACTION = 500  # keeps each ovsdb-client argument well under the kernel's 128 KiB


def default_target(rundir: str | None = None) -> str:
    return f"unix:{rundir or os.environ.get('OVS_RUNDIR') or DEFAULT_RUNDIR}/db.sock"


def ovsdb_answers(target: str) -> bool:
    try:
        done = subprocess.run(["ovsdb-client", "--timeout=2", "list-dbs", target], capture_output=True, check=False)
    except FileNotFoundError:  # Open vSwitch is not installed
        return False
    return done.returncode == 0


@dataclass(frozen=True)
class Interface:
    name: str
    ofport: int
    iface_id: str


def _value(cell: Any) -> Any:
    """OVSDB JSON: ``["set", []]`` is no value, ``["map", [[k, v], ...]]`` a dict."""
    if isinstance(cell, list) and cell and cell[0] == "set":
        return cell[1][0] if cell[1] else None
    if isinstance(cell, list) and cell and cell[0] == "map":
        return dict(cell[1])
    return cell


def _iface_id(row: dict[str, Any] | None) -> str | None:
    return (row.get("external_ids") or {}).get("iface-id") if row else None


def _interface(row: dict[str, Any]) -> Interface | None:
    iface_id, ofport = _iface_id(row), row["ofport"]
    if iface_id and isinstance(ofport, int) and ofport > 0:
        return Interface(row["name"], ofport, iface_id)
    return None


class InterfaceMonitor:
    """The Interface table, kept current by ``ovsdb-client monitor``; ``on_change`` runs after each update."""

    def __init__(self, target: str, on_change: Callable[[], None]) -> None:
        self.target = target
        self.on_change = on_change
        self._rows: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()  # iface-ids whose interface changed since take_dirty()
        self._row_of: dict[str, str] = {}  # iface-id -> uuid of its Interface row
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        self.ready.clear()
        with self._lock:
            self._rows.clear()
        self._proc = subprocess.Popen(
            ["ovsdb-client", "monitor", self.target, "Open_vSwitch", "Interface", "name,ofport,external_ids",
             "--format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self._proc,), name="ovsdb-monitor", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=5)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                update = json.loads(line)
            except ValueError:
                continue
            self._apply(update.get("headings", []), update.get("data", []))
            self.ready.set()
            self.on_change()
        self.on_change()  # the monitor ended (ovsdb-server went away): let the agent notice

    def _apply(self, headings: list[str], data: list[list[Any]]) -> None:
        with self._lock:
            uuid = ""
            for raw in data:
                row = dict(zip(headings, raw, strict=False))
                uuid = row["row"] or uuid  # a "new" row follows its "old" row and names no uuid
                old = _iface_id(self._rows.get(uuid))
                if row["action"] == "delete":
                    self._rows.pop(uuid, None)
                elif row["action"] in ("initial", "insert", "new"):
                    self._rows[uuid] = {k: _value(row[k]) for k in ("name", "ofport", "external_ids")}
                new = _iface_id(self._rows.get(uuid))
                if old and self._row_of.get(old) == uuid:
                    del self._row_of[old]
                if new:
                    self._row_of[new] = uuid
                self._dirty.update(i for i in (old, new) if i)

    def interfaces(self) -> dict[str, Interface]:
        """Plugged ports: iface-id -> interface, for interfaces with an ofport."""
        with self._lock:
            self._dirty.clear()
            found = (_interface(row) for row in self._rows.values())
            return {i.iface_id: i for i in found if i is not None}

    def take_dirty(self) -> dict[str, Interface | None]:
        """The iface-ids changed since the last call, each with its interface now (None: unplugged)."""
        with self._lock:
            now = {i: self._interface_of(i) for i in self._dirty}
            self._dirty.clear()
            return now

    def _interface_of(self, iface_id: str) -> Interface | None:
        uuid = self._row_of.get(iface_id)
        return _interface(self._rows[uuid]) if uuid else None


@dataclass
class Vsctl:
    target: str

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["ovs-vsctl", f"--db={self.target}", "--timeout=10", *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"ovs-vsctl {' '.join(args[:3])}: {done.stderr.strip()}")
        return done.stdout

    def prepare_bridge(self, bridge: str) -> None:
        """The bridge exists, fails closed with no controller, and speaks OpenFlow 1.4 (for bundles)."""
        protocols = self.run("--may-exist", "add-br", bridge, "--", "get", "Bridge", bridge, "protocols")
        wanted = {p.strip(' "') for p in protocols.strip().strip("[]").split(",") if p.strip()}
        wanted |= {"OpenFlow10", "OpenFlow13", "OpenFlow14"}
        self.run("set", "Bridge", bridge, "fail_mode=secure", f"protocols={','.join(sorted(wanted))}")

    def port_tags(self) -> dict[str, int]:
        out = json.loads(self.run("--format=json", "--columns=name,tag", "list", "Port"))
        return {name: tag for name, tag in ((r[0], _value(r[1])) for r in out["data"]) if isinstance(tag, int)}

    def transact(self, *ops: Any) -> list[Any]:
        done = subprocess.run(["ovsdb-client", "transact", self.target, json.dumps(["Open_vSwitch", *ops])],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"ovsdb-client transact: {done.stderr.strip()[-500:]}")
        results: list[Any] = json.loads(done.stdout)
        failed = [r["error"] for r in results if isinstance(r, dict) and "error" in r]
        if failed:
            raise RuntimeError(f"ovsdb-client transact: {failed[0]}")
        return results

    def set_tags(self, tags: Iterable[tuple[str, int]], timeout: float = 30.0) -> None:
        """Set local VLAN tags and wait until ovs-vswitchd applied them, as ovs-vsctl would.

        Direct OVSDB transactions, ``TAGS_PER_TRANSACTION`` ports each: ovs-vsctl
        spends seconds per thousand commands on a bridge of thousands of ports.
        """
        todo = list(tags)
        wanted = 0
        for i in range(0, len(todo), TAGS_PER_TRANSACTION):
            ops: list[Any] = [
                {"op": "update", "table": "Port", "where": [["name", "==", name]], "row": {"tag": tag}}
                for name, tag in todo[i : i + TAGS_PER_TRANSACTION]
            ]
            ops.append({"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]})
            ops.append({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]})
            wanted = self.transact(*ops)[-1]["rows"][0]["next_cfg"]
        if not todo:
            return
        # Until ovs-vswitchd reconfigured, NORMAL would still forward these ports on their old VLAN.
        deadline = time.monotonic() + timeout
        while True:
            select = {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["cur_cfg"]}
            if self.transact(select)[0]["rows"][0]["cur_cfg"] >= wanted:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("ovs-vswitchd did not apply the local VLAN tags")
            time.sleep(0.002)
