"""An agent's row in the agents table: registered at start, then a heartbeat every report_interval seconds.

Neutron's agents report their state over RPC and the server writes the row;
portsec's native agent shares the database, so it writes its own row (and the
OVN backend writes one for each live chassis, as ML2/OVN lists them): an insert or
update at start, then one UPDATE per heartbeat (timestamp and configurations).
A heartbeat that finds no row (an admin deleted it) registers again, as
Neutron's server does on the next report. A failed write is only logged: the
data plane must not stop because the heartbeat could not be written, and the
row going stale (alive: false) is then the right signal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from portsec.domain import agents as rules
from portsec.service import agents
from portsec.store.database import Database, WouldWait

LOG = logging.getLogger(__name__)
BUSY_RETRY = 1.0  # seconds before a heartbeat that found the database taken tries again


class Heartbeat:
    def __init__(
        self,
        db: Database,
        host: str,
        interval: float = rules.REPORT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        agent_type: str = rules.AGENT_TYPE,
        binary: str = rules.BINARY,
    ) -> None:
        self.db = db
        self.host = host
        self.agent_type = agent_type
        self.binary = binary
        self.interval = interval
        self.clock = clock
        self.agent_id: str | None = None  # None until this process has registered
        self.next_at = 0.0

    def due(self) -> bool:
        return self.clock() >= self.next_at

    def beat(self, configurations: dict[str, Any]) -> None:
        """Register (first time, or after the row was deleted) or one heartbeat UPDATE; never raises."""
        self.next_at = self.clock() + self.interval
        try:
            agent_id = self.agent_id
            # At once or not now: the agent's loop must never wait for the database's write lock (SQLite's busy
            # handler sleeps in steps of up to 100 ms; a heartbeat queued behind writers held a round ~400 ms).
            if agent_id is not None and self.db.run_at_once(lambda tx: agents.heartbeat(tx, agent_id, configurations)):
                return
            self.agent_id = self.db.run_at_once(
                lambda tx: agents.register(tx, self.agent_type, self.binary, rules.TOPIC, self.host, configurations)
            )
            LOG.info("registered as %s %s on host %s", self.agent_type, self.agent_id, self.host)
        except WouldWait:
            self.next_at = self.clock() + BUSY_RETRY  # the database was taken: again soon, well within down time
        except Exception as err:  # the flows matter more than the heartbeat: log, and try at the next interval
            LOG.warning("agent heartbeat not written: %s", err)
