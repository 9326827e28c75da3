"""The agent's loop: follow the change log and OVSDB, and keep br-int's flows equal to the compiler's.

One round: read what changed (ports in the change log after the last sequence
number seen, interfaces plugged, unplugged or renumbered), compile those ports,
diff against what is installed, send one atomic bundle, then report port status.
A full sync (start, Open vSwitch restart) adds the whole table in one bundle
that keeps unchanged flows, then removes stale ones, so a restart of either
side loses no packet.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from portsec.agent.flowtable import BRIDGE, FlowTable
from portsec.agent.ofctl import Bridge, OfctlError
from portsec.agent.ovsdb import Interface, InterfaceMonitor, Vsctl, default_target
from portsec.agent.packetin import Copy, PacketInListener
from portsec.changefeed import ChangeFeed
from portsec.domain import agents as agent_rows
from portsec.domain.model import Context, Port
from portsec.guards import guard_of
from portsec.heartbeat import Heartbeat
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import Flow, cookie_audits, cookie_port_tag, cookie_reason, port_tag
from portsec.openflow.pipeline import METERS, bridge_flows
from portsec.service import bindings, sources, vips
from portsec.service import ports as port_service
from portsec.service.common import Listing
from portsec.store.database import Database

LOG = logging.getLogger(__name__)
ADMIN = Context.admin()
CHUNK = 500  # ids per query: well under SQLite's bound-parameter limit
FIRST_VLAN, LAST_VLAN = 1, 4094
INCREMENTAL, FULL = "incremental", "full"  # the kinds of bundle: a round's few flow mods, a full sync
SAMPLE_FLUSH = 1.0  # seconds between writes of the sources audit flows saw
MAX_SAMPLES = 4096  # distinct (port, reason, MAC, source) kept between two writes; more are not counted
VIP_RECHECK = 1.0  # seconds during which an owner's repeated announcements are not checked against the database


@dataclass
class AgentConfig:
    bridge: str = "br-int"
    ovsdb: str | None = None  # default: unix:$OVS_RUNDIR/db.sock
    rundir: str | None = None  # OVS_RUNDIR for ovs-ofctl (where <bridge>.mgmt is)
    host: str = field(default_factory=socket.gethostname)
    poll_interval: float = 0.05  # change-log poll, for writers that neither share our process nor NOTIFY
    canary_interval: float = 1.0  # how often to check that Open vSwitch kept our flows
    report_interval: float = agent_rows.REPORT_INTERVAL  # seconds between heartbeats to the agents table


@dataclass(frozen=True)
class Applied:
    """One bundle that reached the switch: which ports, when (wall clock), how many flow mods."""

    ports: tuple[str, ...]
    at: float
    mods: int
    kind: str = INCREMENTAL
    seconds: float = 0.0  # from sending the bundle to the switch's acknowledgement
    commits: tuple[float, ...] = ()  # wall-clock times of the commits it carries out, when they woke the agent
    cause: str | None = None  # a full sync's: start, ovs-restart, ovsdb-monitor, error


class Agent:
    def __init__(self, db: Database, config: AgentConfig | None = None) -> None:
        self.db = db
        self.config = config or AgentConfig()
        target = self.config.ovsdb or default_target(self.config.rundir)
        self.bridge = Bridge(self.config.bridge, self.config.rundir)
        self.vsctl = Vsctl(target)
        self.feed = ChangeFeed(db)  # the change log, shared with the other backends' way of following it
        self.wake = self.feed.wake  # commits, and OVSDB's interface changes, wake the loop
        self.monitor = InterfaceMonitor(target, self.wake.set)
        self.table = FlowTable()
        self.ports: dict[str, Port] = {}
        self.plugged: dict[str, Interface] = {}
        self.vlans: dict[str, int] = {}  # network id -> local VLAN on br-int
        self.tags: dict[str, int] = {}  # OVSDB port name -> tag as set
        self.listeners: list[Callable[[Applied], None]] = []
        self.heartbeat = Heartbeat(db, self.config.host, self.config.report_interval)
        # Packets the flows copy here (VIP announcements, what audit flows would drop), from their own thread.
        self.copies: deque[Copy] = deque(maxlen=MAX_SAMPLES)
        self.packet_in = PacketInListener(self.bridge.mgmt, self._copied)
        self.by_tag: dict[int, str] = {}  # the port part of a cookie -> port id
        self.vip_owners: dict[tuple[str, str], tuple[str, float]] = {}  # (network, VIP) -> (port, checked at)
        self.vip_moved: list[Callable[[str, str, str], None]] = []  # (network, VIP, new holder) on each move
        self.samples: dict[tuple[str, str, str, str], list[float]] = {}  # -> [packets, last seen]
        self.samples_flushed = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.vsctl.prepare_bridge(self.config.bridge)
        self.tags = self.vsctl.port_tags()
        self.monitor.start()
        if not self.monitor.ready.wait(10):
            raise RuntimeError(f"no answer from OVSDB at {self.monitor.target}")

    def stop(self) -> None:
        self.packet_in.stop()
        self.monitor.stop()
        self.vsctl.close()
        self.bridge.close()
        self.feed.close()

    def run_once(self) -> None:
        """One full sync, then return (recovery, scripting)."""
        self.start()
        try:
            self.sync()
        finally:
            self.stop()

    def run(self, stop: threading.Event) -> None:
        """Sync, then follow changes until ``stop``; no single failure ends it.

        While Open vSwitch, OVSDB or the database is away, the switch keeps the
        flows it has (a port added meanwhile stays dropped: fail closed) and the
        agent retries a full sync every second until it succeeds.
        """
        self.start()
        self.packet_in.start()
        self.feed.follow(stop)
        try:
            self.heartbeat.beat(self._configurations())  # registered before the first sync, which may wait for OVS
            self._resync_when_possible(stop)
            self.heartbeat.beat(self._configurations())  # and now with the ports it enforces
            next_canary = time.monotonic() + self.config.canary_interval
            while not stop.is_set():
                if self.heartbeat.due():
                    self.heartbeat.beat(self._configurations())
                self.feed.wait(self.config.poll_interval)
                try:
                    if not self.monitor.alive:
                        LOG.warning("OVSDB monitor ended; restarting it and resyncing")
                        self._restart_monitor()
                        self.sync("ovsdb-monitor")
                    elif time.monotonic() >= next_canary:
                        next_canary = time.monotonic() + self.config.canary_interval
                        if not self.bridge.has_canary():
                            LOG.warning("%s lost its flows (Open vSwitch restarted?); reinstalling", self.config.bridge)
                            self.sync("ovs-restart")
                            continue
                    self.step()
                except Exception as err:  # the agent must outlive any one failure of what it talks to
                    LOG.warning("%s; full resync in 1 s", err)
                    stop.wait(1.0)
                    self._resync_when_possible(stop, "error")
        finally:
            try:
                self._observe(flush=True)  # the last second's samples
            except Exception as err:  # the database may be what went away
                LOG.warning("sampled sources not written at stop: %s", err)
            self.stop()

    def _restart_monitor(self) -> None:
        self.monitor.start()
        if not self.monitor.ready.wait(10):
            # Without the interfaces a sync would take every port's flows away: refuse to.
            raise RuntimeError(f"no answer from OVSDB at {self.monitor.target}")

    def _resync_when_possible(self, stop: threading.Event, cause: str = "start") -> None:
        while not stop.is_set():
            try:
                if not self.monitor.alive:
                    self._restart_monitor()
                self.sync(cause)
                return
            except Exception as err:
                LOG.warning("full sync failed (%s); retrying in 1 s", err)
                stop.wait(1.0)

    # -- rounds ----------------------------------------------------------------------------------

    def sync(self, cause: str = "start") -> None:
        """Everything from scratch: all ports, all interfaces, the whole table in one bundle.

        The collector stays off meanwhile: a sync builds a million objects and frees them by reference
        count (flows hold no cycles), so each full collection it would set off walks them all for nothing
        (10,000 ports x 3 pairs: 0.3-0.8 s of a 3 s compile).
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._sync(cause)
        finally:
            if enabled:
                gc.enable()

    def _sync(self, cause: str) -> None:
        gc.unfreeze()  # what the last full sync froze may be garbage now (see the end)
        with self.db.transaction(write=False) as tx:
            commits = self.feed.restart(tx)  # whatever they changed, this reads it
            self.ports = {p.id: p for p in port_service.list_(tx, ADMIN)}
        self.by_tag = {port_tag(p): p for p in self.ports}
        self.vip_owners.clear()
        self.plugged = self.monitor.interfaces()
        here = self.plugged.keys() & self.ports.keys()
        self._set_tags(here)
        desired: dict[str, list[Flow]] = {BRIDGE: list(bridge_flows())}

        def texts() -> Iterator[str]:  # compiled while ovs-ofctl reads, one port's lines at a time
            yield "\n".join(f.text() for f in desired[BRIDGE])
            for port_id in here:
                flows = desired[port_id] = self._flows(port_id)
                if flows:
                    yield "\n".join([f.text() for f in flows])

        try:
            self.bridge.set_meters(METERS)  # before any flow that copies through them
        except OfctlError as err:  # a datapath without meters: enforcement must not wait for the copies' bound
            LOG.warning("cannot set the meters of the copies to the agent (%s): they may be unbounded or lost", err)
        started = time.perf_counter()
        try:
            self.bridge.add_all(texts(), meanwhile=lambda: self.table.reset(desired))
            # The switch now holds every flow wanted, and maybe stale ones (ports deleted or changed while the
            # agent was away, flows it did not install): as many flows as wanted means none is stale.
            if self.bridge.flow_count() != len(self.table.installed):
                self.bridge.replace_all(f.text() for flows in desired.values() for f in flows)
        except Exception:
            self.table.reset({})  # what the switch holds is unknown now: the next sync starts over
            raise
        seconds = time.perf_counter() - started
        self._applied(tuple(desired), sum(map(len, desired.values())), FULL, seconds, commits, cause)
        self._report(self.ports.keys())
        LOG.info("full sync: %d ports plugged, %d flows", len(desired) - 1, len(self.table.installed))
        # What a full sync built (the flow table, the ports, OVSDB's rows) lives until the next one: out of the
        # collector's sight, or each full collection walks it again and pauses a round for up to a second
        # (bench/agent.py: convergence p99 68 -> 34 ms at 10,000 ports). The next sync gives it back first.
        gc.freeze()

    def step(self) -> None:
        """Only what changed since the last round; nothing at all when nothing did."""
        self._observe()
        with self.db.transaction(write=False) as tx:
            rows, commits = self.feed.take(tx)
        changed = {r.resource_id for r in rows if r.resource == "port"}
        for iface_id, iface in self.monitor.take_dirty().items():
            if iface != self.plugged.get(iface_id):
                changed.add(iface_id)
                if iface is None:
                    del self.plugged[iface_id]
                else:
                    self.plugged[iface_id] = iface
        if not changed:
            return
        self._load(changed)
        desired = {port_id: self._flows(port_id) for port_id in changed}
        self._set_tags(p for p in changed if p in self.plugged and p in self.ports)
        batch = self.table.diff(desired)
        if batch:
            started = time.perf_counter()
            self.bridge.apply(batch.deletes, batch.adds)
            seconds = time.perf_counter() - started
            self.table.commit(desired)
            mods = len(batch.deletes) + len(batch.adds)
            self._applied(tuple(sorted(batch.owners)), mods, INCREMENTAL, seconds, commits)
        self._report(changed)

    # -- helpers ---------------------------------------------------------------------------------

    def _load(self, port_ids: Iterable[str]) -> None:
        ids = sorted(port_ids)
        found: dict[str, Port] = {}
        with self.db.transaction(write=False) as tx:
            for i in range(0, len(ids), CHUNK):
                listing = Listing(filters={"id": ids[i : i + CHUNK]})
                found.update((p.id, p) for p in port_service.list_(tx, ADMIN, listing))
        for port_id in ids:
            if port_id in found:
                self.ports[port_id] = found[port_id]
                self.by_tag[port_tag(port_id)] = port_id
            else:
                self.ports.pop(port_id, None)

    def _flows(self, port_id: str) -> list[Flow]:
        port, iface = self.ports.get(port_id), self.plugged.get(port_id)
        if port is None or iface is None:
            return []
        return list(compile_port_flows(guard_of(port), iface.ofport))

    def _vlan(self, network_id: str) -> int:
        if network_id not in self.vlans:
            # A network with no port plugged here any more gives its VLAN back, as with Neutron's agent.
            here = {self.ports[p].network_id for p in self.plugged if p in self.ports}
            self.vlans = {n: v for n, v in self.vlans.items() if n in here}
            used = set(self.vlans.values())
            free = next((v for v in range(FIRST_VLAN, LAST_VLAN + 1) if v not in used), None)
            if free is None:
                raise RuntimeError("no local VLAN left on the bridge for another network")
            self.vlans[network_id] = free
        return self.vlans[network_id]

    def _set_tags(self, port_ids: Iterable[str]) -> None:
        """Each plugged port on its network's local VLAN, so NORMAL never forwards across networks."""
        ids = list(port_ids)
        # Keep the tags an earlier run chose, so a restart moves no port between VLANs.
        for port_id in ids:
            tag = self.tags.get(self.plugged[port_id].name)
            network = self.ports[port_id].network_id
            if tag is not None and network not in self.vlans and tag not in self.vlans.values():
                self.vlans[network] = tag
        wanted = {self.plugged[p].name: self._vlan(self.ports[p].network_id) for p in ids}
        todo = [(name, tag) for name, tag in wanted.items() if self.tags.get(name) != tag]
        self.vsctl.set_tags(todo)
        self.tags.update(todo)

    def _configurations(self) -> dict[str, Any]:
        """What the heartbeat reports: the bridge, and how many ports it holds flows for."""
        return agent_rows.configurations(self.config.bridge, len(self.plugged.keys() & self.ports.keys()))

    def _applied(
        self, owners: tuple[str, ...], mods: int, kind: str = INCREMENTAL, seconds: float = 0.0,
        commits: Iterable[float] = (), cause: str | None = None,
    ) -> None:  # fmt: skip
        ports = tuple(o for o in owners if o != BRIDGE)
        event = Applied(ports, time.time(), mods, kind, seconds, tuple(commits), cause)
        for listener in self.listeners:
            listener(event)

    # -- what the flows copy here ----------------------------------------------------------------

    def _copied(self, copy: Copy) -> None:
        """From the packet-in thread: queue it (bounded) and wake the loop, which owns the ports."""
        self.copies.append(copy)
        self.wake.set()

    def _observe(self, flush: bool = False) -> None:
        """VIP announcements become owner moves; what audit flows would drop becomes sampled sources."""
        while self.copies:
            copy = self.copies.popleft()
            port = self.ports.get(self.by_tag.get(cookie_port_tag(copy.cookie), ""))
            reason = cookie_reason(copy.cookie)
            if port is None or reason is None:
                continue  # a port deleted since, or not a copy of ours
            if cookie_audits(copy.cookie):
                key = (port.id, reason, copy.frame.mac, copy.frame.source)
                if key in self.samples:
                    self.samples[key][0] += 1
                    self.samples[key][1] = copy.at
                elif len(self.samples) < MAX_SAMPLES:
                    self.samples[key] = [1, copy.at]
            elif reason == "vip" and copy.frame.claimed is not None:
                self._announced(port, copy.frame.claimed, copy.at)
        if self.samples and (flush or time.monotonic() - self.samples_flushed >= SAMPLE_FLUSH):
            found = [sources.Sample(p, r, m, ip, int(n), at) for (p, r, m, ip), (n, at) in self.samples.items()]
            self.samples.clear()
            self.samples_flushed = time.monotonic()
            self.db.run(lambda tx: sources.record(tx, found))

    def _announced(self, port: Port, address: str, at: float) -> None:
        """``port`` sent an ARP or NA for ``address``, one of its VIPs: it holds it now."""
        key = (port.network_id, address)
        owner = self.vip_owners.get(key)
        if owner is not None and owner[0] == port.id and time.monotonic() - owner[1] < VIP_RECHECK:
            return  # the holder repeating itself (keepalived sends several); another host's agent may have
            # recorded a move away meanwhile, so after VIP_RECHECK the database is asked again
        host = self.config.host
        claim = self.db.run(lambda tx: vips.record(tx, port.network_id, address, port.id, at, host))
        self.vip_owners[key] = (port.id, time.monotonic())
        if claim.written and claim.previous is not None:
            LOG.info("VIP %s on network %s moved from port %s to %s", address, port.network_id, claim.previous, port.id)
            for listener in self.vip_moved:
                listener(port.network_id, address, port.id)

    def _report(self, port_ids: Iterable[str]) -> None:
        """ACTIVE once a port's flows are in; DOWN when its interface left this host's bridge or it is disabled."""
        todo = []
        for port_id in port_ids:
            port = self.ports.get(port_id)
            if port is None:
                continue
            if port_id in self.plugged and self.table.by_owner.get(port_id) and port.admin_state_up:
                if port.status != bindings.ACTIVE or not port.host_id:
                    todo.append((port_id, bindings.ACTIVE))
            elif port.status == bindings.ACTIVE and port.host_id in ("", self.config.host):
                todo.append((port_id, bindings.DOWN))
        if not todo:
            return
        host = self.config.host
        reported = self.db.run(lambda tx: [bindings.report(tx, p, s, host) for p, s in todo])
        for port in reported:
            if port is not None:
                self.ports[port.id] = port
