"""The OVN backend's loop: follow the change log, keep OVN's Northbound equal to the store, report port status.

One round reads what changed since the last (ports and networks in the change
log), turns it into Northbound intent and writes it in one NB transaction. OVN
then does the rest on every hypervisor: ovn-northd compiles logical flows and
each ovn-controller installs the port security of the ports bound to it.

A full sync (at start, every ``sync_interval`` seconds, when portsec's rows are
gone from NB, after any failure) compares everything and repairs the drift:
missing, extra or changed rows, including rows someone edited by hand, as
Neutron's ovn-db-sync does. A port is ACTIVE once OVN reports it up
(``Logical_Switch_Port.up``: its chassis installed its flows), on the host of
that chassis when the Southbound database is given, and DOWN when it goes away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from portsec.changefeed import ChangeFeed
from portsec.domain import agents as agent_rows
from portsec.domain.model import Context, Port
from portsec.heartbeat import Heartbeat
from portsec.ovn.intent import port_intent, switch_intent, switch_name
from portsec.ovn.northbound import Drift, Intent, Northbound
from portsec.ovn.southbound import Southbound
from portsec.service import bindings
from portsec.service import networks as network_service
from portsec.service import ports as port_service
from portsec.service.common import Listing
from portsec.store.database import Database, Tx

LOG = logging.getLogger(__name__)
ADMIN = Context.admin()
CHUNK = 500  # ids per query: well under SQLite's bound-parameter limit
T = TypeVar("T")


@dataclass
class OvnConfig:
    nb: str
    sb: str | None = None  # without it, ports turn ACTIVE but binding:host_id is not learned
    sync_interval: float = 60.0  # seconds between full syncs that repair drift (Neutron's maintenance: 300)
    poll_interval: float = 0.05  # change-log poll, for writers that neither share our process nor NOTIFY
    canary_interval: float = 1.0  # how often to check that NB still holds portsec's rows
    report_interval: float = agent_rows.REPORT_INTERVAL  # heartbeats of the chassis' agent rows (with sb)
    timeout: float = 10.0  # an NB transaction's limit


class OvnBackend:
    def __init__(self, db: Database, config: OvnConfig) -> None:
        self.db = db
        self.config = config
        self.feed = ChangeFeed(db)
        self.ports: dict[str, Port] = {}
        self.nb: Northbound | None = None
        self.sb: Southbound | None = None
        self.transactions = 0  # NB transactions that changed something, since start (bench/ovn.py reads it)
        self._chassis: dict[str, Heartbeat] = {}  # the agent row of each chassis' host
        self._asked: int | None = None  # the NB_Global.nb_cfg a live ovn-controller has echoed by the next report
        self._moved: set[str] = set()  # ports whose `up` changed in NB since the last round
        self._moved_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to NB (and SB); raises when they do not answer (ovsdbapp reconnects once connected)."""
        if self.nb is None:
            self.nb = Northbound(self.config.nb, self.config.timeout, on_port=self._port_moved)
        if self.config.sb and self.sb is None:
            self.sb = Southbound(self.config.sb, self.config.timeout)

    def stop(self) -> None:
        for db in (self.nb, self.sb):
            if db is not None:
                db.close()
        self.feed.close()

    def run(self, stop: threading.Event) -> None:
        """Sync, then follow changes until ``stop``; no single failure ends it (NB away: retried every second)."""
        self.feed.follow(stop)
        try:
            self._sync_when_possible(stop, "start")
            now = time.monotonic()
            next_sync, next_canary = now + self.config.sync_interval, now + self.config.canary_interval
            next_report = now
            while not stop.is_set():
                self.feed.wait(self.config.poll_interval)
                try:
                    now = time.monotonic()
                    if now >= next_report:
                        next_report = now + self.config.report_interval
                        self._report_chassis()
                    if now >= next_canary:
                        next_canary = now + self.config.canary_interval
                        if not self._northbound.holds_portsec():
                            LOG.warning("portsec's rows are gone from OVN NB (database wiped?); restoring them")
                            self.sync("nb-lost")
                            continue
                    if now >= next_sync:
                        next_sync = now + self.config.sync_interval
                        self.sync("periodic")
                    self.step()
                except Exception as err:  # NB or the database away: the backend outlives it
                    LOG.warning("%s; full resync in 1 s", err)
                    stop.wait(1.0)
                    self._sync_when_possible(stop, "error")
        finally:
            self.stop()

    def _sync_when_possible(self, stop: threading.Event, cause: str) -> None:
        while not stop.is_set():
            try:
                self.start()
                self.sync(cause)
                return
            except Exception as err:
                LOG.warning("full sync with OVN NB failed (%s); retrying in 1 s", err)
                stop.wait(1.0)

    @property
    def _northbound(self) -> Northbound:
        if self.nb is None:
            raise RuntimeError("the OVN backend is not started")
        return self.nb

    # -- rounds ----------------------------------------------------------------------------------

    def sync(self, cause: str = "start", dry_run: bool = False) -> list[Drift]:
        """Compare everything with NB and repair it (or, ``dry_run``, only say what differs)."""
        with self.db.transaction(write=False) as tx:
            if not dry_run:
                self.feed.restart(tx)
            networks = network_service.list_(tx, ADMIN)
            ports = port_service.list_(tx, ADMIN)
        intent = Intent(
            {switch_name(n.id): switch_intent(n) for n in networks}, {p.id: port_intent(p) for p in ports}, full=True
        )
        drift = self._northbound.reconcile(intent, dry_run)
        if dry_run:
            return drift
        self.transactions += bool(drift)
        if drift and cause != "start":
            LOG.warning("OVN NB had drifted from portsec (%s); repaired: %s", cause, "; ".join(map(str, drift[:20])))
        self.ports = {p.id: p for p in ports}
        self._report(self.ports)
        return drift

    def step(self) -> None:
        """Only what changed since the last round; nothing at all when nothing did."""
        with self.db.transaction(write=False) as tx:
            rows, _ = self.feed.take(tx)  # the commits' times: the native agent's convergence figures only
            networks = {r.resource_id for r in rows if r.resource == "network"}
            ports = {r.resource_id for r in rows if r.resource == "port"}
            intent = self._intent(tx, networks, ports) if rows else None
        with self._moved_lock:
            moved, self._moved = self._moved, set()
        if intent is not None:
            self.transactions += bool(self._northbound.reconcile(intent))
        if ports or moved:
            self._report(ports | moved)

    def _intent(self, tx: Tx, network_ids: set[str], port_ids: set[str]) -> Intent:
        intent = Intent()
        found_networks = {n.id: n for n in _by_id(tx, network_service.list_, network_ids)}
        for network_id in network_ids:
            network = found_networks.get(network_id)
            intent.switches[switch_name(network_id)] = switch_intent(network) if network else None
        found_ports = {p.id: p for p in _by_id(tx, port_service.list_, port_ids)}
        for port_id in port_ids:
            found = found_ports.get(port_id)
            intent.ports[port_id] = port_intent(found) if found else None
            if found is None:
                self.ports.pop(port_id, None)
            else:
                self.ports[port_id] = found
        return intent

    # -- status ----------------------------------------------------------------------------------

    def _report_chassis(self) -> None:
        """A heartbeat for each chassis whose ovn-controller echoed the last NB_Global.nb_cfg, then ask again.

        As ML2/OVN does: a chassis row stays in SB when its ovn-controller dies, so a chassis counts as alive
        only while it keeps catching up with NB; one that stops, stops heartbeating and turns alive: false.
        """
        if self.sb is None:
            return
        for chassis in self.sb.chassis():
            if self._asked is not None and chassis.nb_cfg < self._asked:
                continue
            beat = self._chassis.get(chassis.hostname)
            if beat is None:
                beat = Heartbeat(self.db, chassis.hostname, self.config.report_interval,
                                 agent_type=agent_rows.OVN_AGENT_TYPE, binary=agent_rows.OVN_BINARY)  # fmt: skip
                self._chassis[chassis.hostname] = beat
            beat.beat(agent_rows.chassis_configurations(chassis.name, chassis.encap_ip))
        self._asked = self._northbound.bump_nb_cfg()

    def _port_moved(self, name: str) -> None:
        """From the NB connection's thread: a port's ``up`` changed."""
        with self._moved_lock:
            self._moved.add(name)
        self.feed.wake.set()

    def _report(self, port_ids: Iterable[str]) -> None:
        """ACTIVE (on its chassis' host) once OVN has it up; DOWN when it is not up any more."""
        ids = [p for p in port_ids if p in self.ports]
        if not ids:
            return
        up = self._northbound.ports_up(ids)
        hosts = self.sb.hosts(ids) if self.sb is not None else {}
        todo = []
        for port_id in ids:
            port = self.ports[port_id]
            host = hosts.get(port_id, "")
            if up.get(port_id) and port.admin_state_up:
                if port.status != bindings.ACTIVE or (host and host != port.host_id):
                    todo.append((port_id, bindings.ACTIVE, host))
            elif port.status == bindings.ACTIVE:
                todo.append((port_id, bindings.DOWN, ""))
        if not todo:
            return
        reported = self.db.run(lambda tx: [bindings.report(tx, p, s, h, rebind=True) for p, s, h in todo])
        self.ports.update((p.id, p) for p in reported if p is not None)


def _by_id(tx: Tx, list_: Callable[[Tx, Context, Listing], list[T]], ids: Iterable[str]) -> list[T]:
    wanted = sorted(ids)
    found: list[T] = []
    for i in range(0, len(wanted), CHUNK):
        found.extend(list_(tx, ADMIN, Listing(filters={"id": wanted[i : i + CHUNK]})))
    return found
