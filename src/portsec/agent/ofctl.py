"""br-int's OpenFlow tables: bundles in, the canary and counters out.

Every change is one OpenFlow 1.4 ordered, atomic bundle: packets see the old
table or the new one, never a mix. A round's few flow mods go over the agent's
open connection (:mod:`portsec.agent.ofconn`); the full sync of every flow goes
through ``ovs-ofctl --bundle add-flows`` (and ``replace-flows`` when stale flows
must go), which keep unchanged flows with their counters; reads use ``ovs-ofctl
dump-flows``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from portsec.agent.ofconn import OpenFlowConnection
from portsec.agent.ovsdb import DEFAULT_RUNDIR
from portsec.openflow.flows import Flow, cookie, cookie_reason
from portsec.openflow.pipeline import CANARY

OPENFLOW = "OpenFlow14"  # bundles need 1.4; the agent adds it to the bridge's protocols
READ_TIMEOUT = 10.0  # seconds for a read of the switch (a dump of one port, the canary)


class OfctlError(RuntimeError):
    pass


@dataclass(frozen=True)
class Counter:
    cookie: int
    table: int
    packets: int

    @property
    def reason(self) -> str | None:
        return cookie_reason(self.cookie)


_DUMP_LINE = re.compile(r"cookie=(0x[0-9a-f]+).*?(?:table=(\d+), )?n_packets=(\d+)")
_AGGREGATE = re.compile(r"packet_count=(\d+)")
_ACTIVE = re.compile(r"\bactive=(\d+)")
_DITTO = re.compile(r"tables (\d+)\.\.\.(\d+): ditto")


@dataclass
class Bridge:
    name: str
    rundir: str | None = None  # OVS_RUNDIR: where br-int.mgmt is
    _conn: OpenFlowConnection | None = field(default=None, repr=False)

    @property
    def mgmt(self) -> str:
        return f"{self.rundir or os.environ.get('OVS_RUNDIR') or DEFAULT_RUNDIR}/{self.name}.mgmt"

    def apply(self, deletes: Iterable[Flow], adds: Iterable[Flow]) -> None:
        """Deletes then adds as one atomic bundle, over the agent's open OpenFlow connection."""
        if self._conn is None:
            self._conn = OpenFlowConnection(self.mgmt)
        self._conn.bundle(deletes, adds)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _run(self, *args: str, stdin: str | None = None) -> str:
        """A small read (canary, counters): a stuck ovs-vswitchd makes it fail after READ_TIMEOUT, not hang."""
        env = {**os.environ, "OVS_RUNDIR": self.rundir} if self.rundir else None
        try:
            done = subprocess.run(
                ["ovs-ofctl", "-O", OPENFLOW, *args], input=stdin, capture_output=True, text=True, env=env,
                check=False, timeout=READ_TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise OfctlError(f"ovs-ofctl {' '.join(args[:2])}: no answer in {READ_TIMEOUT:g} s") from None
        if done.returncode != 0:
            raise OfctlError(f"ovs-ofctl {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def add_all(self, flows: Iterable[str], meanwhile: Callable[[], None] = lambda: None) -> None:
        """Add ``flows`` (texts of one flow or more, a line each) in one atomic bundle. A flow the switch
        already holds (same table, priority and match) takes the new cookie and actions and keeps its
        counters (an add without reset_counts carries them over).

        The flows are written as they come, so ovs-ofctl parses while the caller still compiles,
        and ``meanwhile`` runs while Open vSwitch installs them.
        """
        self._bundle("add-flows", flows, meanwhile)

    def replace_all(self, flows: Iterable[str], meanwhile: Callable[[], None] = lambda: None) -> None:
        """Make the switch hold exactly ``flows``, atomically; identical flows are kept with their counters.

        ovs-ofctl dumps the switch and diffs in C: 10-20% slower than :meth:`add_all` at 10,000 ports.
        """
        self._bundle("replace-flows", flows, meanwhile)

    def _bundle(self, verb: str, flows: Iterable[str], meanwhile: Callable[[], None]) -> None:
        env = {**os.environ, "OVS_RUNDIR": self.rundir} if self.rundir else None
        argv = ["ovs-ofctl", "-O", OPENFLOW, "--bundle", verb, self.name, "-"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=env)  # fmt: skip
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for line in flows:
                proc.stdin.write(line + "\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ovs-ofctl gave up early; its exit status and message say why
        meanwhile()
        error = proc.stderr.read()
        if proc.wait() != 0:
            raise OfctlError(f"ovs-ofctl {verb}: {error.strip()}")

    def flow_count(self) -> int:
        """How many flows the bridge holds, in all tables: the sum of the tables' active counts, which the
        switch keeps (dump-aggregate would walk 234,000 flows for the same number: 0.18 s)."""
        total = last = 0
        for line in self._run("dump-tables", self.name).splitlines():
            active, ditto = _ACTIVE.search(line), _DITTO.search(line)
            if active:
                last = int(active.group(1))
                total += last
            elif ditto:  # "tables 2...23: ditto": each as the table before
                total += last * (int(ditto.group(2)) - int(ditto.group(1)) + 1)
        return total

    def set_meters(self, meters: dict[int, tuple[int, int]]) -> None:
        """Meters ``id -> (packets per second, burst)``, added or changed to match (they bound the copies of
        packets that flows send the agent; a restarted Open vSwitch has none)."""
        have = self._run("dump-meters", self.name)
        for meter, (rate, burst) in meters.items():
            spec = f"meter={meter} pktps burst stats bands=type=drop rate={rate} burst_size={burst}"
            found = re.search(rf"^meter={meter} .*?(?=^meter=|\Z)", have, re.M | re.S)
            if found is None:
                self._run("add-meter", self.name, spec)
            elif f"rate={rate} burst_size={burst}" not in found.group(0):
                self._run("mod-meter", self.name, spec)

    def has_canary(self) -> bool:
        """False after Open vSwitch restarted (or someone flushed br-int): everything must be reinstalled."""
        return f"cookie={cookie(None, 'canary'):#x}" in self._run("dump-flows", self.name, f"table={CANARY}")

    def packets(self, cookie_match: str) -> int:
        """Packets of all the flows whose cookie matches ``cookie=VALUE/MASK``, summed by the switch itself."""
        m = _AGGREGATE.search(self._run("dump-aggregate", self.name, cookie_match))
        if m is None:
            raise OfctlError("ovs-ofctl dump-aggregate: no packet_count in its answer")
        return int(m.group(1))

    def counters(self, cookie_match: str) -> list[Counter]:
        """Packet counts of the flows whose cookie matches ``cookie=VALUE/MASK``."""
        out = self._run("dump-flows", self.name, cookie_match)
        found = []
        for line in out.splitlines():
            m = _DUMP_LINE.search(line)
            if m:
                found.append(Counter(int(m.group(1), 16), int(m.group(2) or 0), int(m.group(3))))
        return found
