"""The agent's Prometheus metrics: convergence, bundles, resyncs, flows per table, drops, Open vSwitch's state.

Most are recorded from the agent's :class:`Applied` events, in the agent's own
thread, at O(tables) per round. Drops are the switch's flow counters and are
read on a timer (``drop_interval``), in this process, for two reasons:
- a counter must never go down, yet the switch's sums do whenever flows leave
  (a port deleted, Open vSwitch restarted). Only one reader that remembers the
  last sum can turn them into increments; with ``--workers N`` a scrape reaches
  any worker, and each would remember differently. So the agent's process adds
  what grew, and every worker reports that one counter.
- it stays cheap: one ``dump-aggregate`` per reason, summed inside Open vSwitch,
  whatever the number of ports (per-port labels, opt-in, dump the drop flows of
  each reason instead: one series per port and reason).
A drop counted between two reads by a flow that left before the second is lost;
the counter undercounts then, never overcounts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from portsec import metrics
from portsec.agent.agent import Agent, Applied
from portsec.agent.ofctl import Bridge
from portsec.openflow.flows import COOKIE_MARK, DROP_REASONS, REASON_CODE, cookie_port_tag, port_tag

LOG = logging.getLogger(__name__)
REASONS = (*DROP_REASONS, "unknown-port")  # every drop reason a flow's cookie carries; unknown-port is bridge-wide
DROP_INTERVAL = 5.0  # seconds between reads of the drop counters

CONVERGENCE = Histogram(
    "portsec_agent_convergence_seconds",
    "From a commit to the change log to the switch's acknowledgement of the bundle that carries it out",
    buckets=metrics.FAST_BUCKETS,
)
BUNDLE = Histogram(
    "portsec_agent_bundle_apply_seconds",
    "Time to apply one bundle, until the switch acknowledges it: incremental (a round) or full (a full sync)",
    ["kind"], buckets=metrics.FAST_BUCKETS,
)  # fmt: skip
RESYNCS = Counter("portsec_agent_resyncs_total", "Full syncs of the bridge completed, by cause", ["cause"])
# Gauges written by the agent's process alone: "max" over processes is its value.
FLOWS = Gauge("portsec_agent_flows", "Flows the agent has installed, per OpenFlow table", ["table"],
              multiprocess_mode="max")  # fmt: skip
OVS_CONNECTED = Gauge(
    "portsec_agent_ovs_connected",
    "1 when the last read of the bridge's flows and the OVSDB monitor both worked, else 0",
    multiprocess_mode="max",
)

VIP_MOVES = Counter(
    "portsec_vip_moves_total",
    "VIPs (host allowed address pairs) that changed hands: a port sent ARP or NA for one another port held last",
)

_dropped: dict[bool, Counter] = {}  # one name, with or without the port label: made on first use


def dropped_counter(per_port: bool) -> Counter:
    """portsec_port_dropped_packets_total, by reason, and by port when asked for (cardinality: ports x reasons)."""
    if per_port not in _dropped:
        for other in _dropped.values():  # a process reports one of the two shapes: the one asked for last
            REGISTRY.unregister(other)
        _dropped.clear()
        labels = ["port", "reason"] if per_port else ["reason"]
        _dropped[per_port] = Counter(
            "portsec_port_dropped_packets", "Packets dropped by portsec's flows, by reason (from the flows' counters)",
            labels,
        )  # fmt: skip
    return _dropped[per_port]


def reason_cookie_match(reason: str) -> str:
    """The ovs-ofctl ``cookie=VALUE/MASK`` of every flow that drops for ``reason``, whichever port owns it."""
    return f"cookie={COOKIE_MARK | REASON_CODE[reason]:#x}/{0xFF000000000000FF:#x}"


class DropReader:
    """Turns the switch's drop counters (sums that fall when flows leave) into increments of a counter."""

    def __init__(self, bridge: Bridge, per_port: bool, port_ids: Callable[[], Iterable[str]]) -> None:
        self.bridge = bridge
        self.per_port = per_port
        self.port_ids = port_ids  # to name a port by its ID rather than by its cookie's 12 digits
        self.counter = dropped_counter(per_port)
        self.last: dict[tuple[str, ...], int] = {}
        for reason in REASONS if not per_port else ():
            self.counter.labels(reason)  # every reason shows, at 0, from the first scrape

    def read(self) -> dict[tuple[str, ...], int]:
        """Packets dropped per label values, as the switch counts them now."""
        if not self.per_port:
            return {(reason,): self.bridge.packets(reason_cookie_match(reason)) for reason in REASONS}
        names = {port_tag(port_id): port_id for port_id in self.port_ids()}
        found: dict[tuple[str, ...], int] = {}
        for reason in REASONS:
            for c in self.bridge.counters(reason_cookie_match(reason)):
                tag = cookie_port_tag(c.cookie)
                port = names.get(tag, f"{tag:012x}") if tag else ""  # "": the bridge-wide unknown-port flow
                found[port, reason] = found.get((port, reason), 0) + c.packets
        return found

    def update(self) -> None:
        now = self.read()
        for labels, packets in now.items():
            grown = packets - self.last.get(labels, 0)
            if grown > 0:  # a fall is flows that left, not packets un-dropped
                self.counter.labels(*labels).inc(grown)
        self.last = now


class AgentMetrics:
    """Records one agent's metrics while it runs: :meth:`start` after making the agent, :meth:`stop` at the end."""

    def __init__(self, agent: Agent, per_port: bool = False, drop_interval: float = DROP_INTERVAL) -> None:
        self.agent = agent
        self.drops = DropReader(agent.bridge, per_port, lambda: tuple(agent.ports))
        self.drop_interval = drop_interval
        self.tables: set[int] = set()  # every table ever reported: one that empties reads 0, not its last value
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.agent.listeners.append(self.applied)
        self.agent.vip_moved.append(self.vip_moved)
        self._thread = threading.Thread(target=self._read_drops, name="portsec-agent-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.applied in self.agent.listeners:
            self.agent.listeners.remove(self.applied)
        if self.vip_moved in self.agent.vip_moved:
            self.agent.vip_moved.remove(self.vip_moved)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def applied(self, event: Applied) -> None:
        """Called by the agent, in its thread, after each bundle the switch acknowledged."""
        BUNDLE.labels(event.kind).observe(event.seconds)
        if event.cause is not None:
            RESYNCS.labels(event.cause).inc()
        for committed in event.commits:
            CONVERGENCE.observe(max(0.0, event.at - committed))
        per_table = dict(self.agent.table.per_table)
        self.tables.update(per_table)
        for table in self.tables:
            FLOWS.labels(str(table)).set(per_table.get(table, 0))

    def vip_moved(self, network_id: str, address: str, port_id: str) -> None:
        """Called by the agent when it recorded that a VIP changed hands (not for its first holder)."""
        VIP_MOVES.inc()

    def _read_drops(self) -> None:
        while True:
            try:
                self.drops.update()
                OVS_CONNECTED.set(1 if self.agent.monitor.alive else 0)
            except Exception as err:  # Open vSwitch away: say so, and try again next time
                LOG.debug("cannot read the drop counters: %s", err)
                OVS_CONNECTED.set(0)
            if self._stop.wait(self.drop_interval):
                return


def expose(agent: Agent, bind: str, port: int, per_port: bool = False) -> AgentMetrics:
    """A standalone agent's metrics: recorded from now on, served over HTTP at ``bind:port``."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=bind)  # a daemon thread; the default registry, which these metrics are in
    recorder = AgentMetrics(agent, per_port)
    recorder.start()
    return recorder
