"""A whole data plane for tests: a database, a real Open vSwitch, the agent running on it, VMs as namespaces."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portsec.agent.agent import Agent, AgentConfig
from portsec.agent.ofctl import Bridge
from portsec.client.embedded import EmbeddedClient
from portsec.domain.model import Context
from portsec.guards import guard_from_view
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.flows import DROP_REASONS, port_cookie_match
from portsec.store.database import Database
from tests import ovs

# Sends one raw Ethernet frame (hex in argv) from inside a namespace: no scapy import there, so it is quick.
_SEND = "import socket,sys; s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(('eth0',0)); s.send(bytes.fromhex(sys.argv[1]))"


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Dataplane:
    db: Database
    sw: ovs.Switch
    client: EmbeddedClient
    agent: Agent
    stack: ExitStack
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    # -- the agent ---------------------------------------------------------------------------

    def start_agent(self) -> None:
        self.stop = threading.Event()
        self.agent = Agent(self.db, self.agent.config)
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop,), daemon=True)
        self.thread.start()
        wait_for(lambda: self.agent.table.installed, what="the agent's first sync")

    def stop_agent(self) -> None:
        self.stop.set()
        self.agent.wake.set()  # it may be asleep until its next poll
        if self.thread is not None:
            self.thread.join(timeout=10)
            assert not self.thread.is_alive(), "the agent did not stop"
        self.thread = None

    # -- resources ---------------------------------------------------------------------------

    def network(self, name: str, cidrs: list[str]) -> dict[str, Any]:
        net = self.client.create("network", {"name": name})
        for i, cidr in enumerate(cidrs):
            body = {"network_id": net["id"], "cidr": cidr, "ip_version": 6 if ":" in cidr else 4, "name": f"{name}-{i}"}
            self.client.create("subnet", body)
        return net

    def port(self, net: dict[str, Any], name: str, mac: str, ips: list[str], **extra: Any) -> dict[str, Any]:
        body = {"network_id": net["id"], "name": name, "mac_address": mac, **extra}
        if ips:
            subnets = self.client.list("subnet", {"network_id": [net["id"]]})

            def subnet_of(ip: str) -> str:
                return next(s["id"] for s in subnets if (":" in ip) == (s["ip_version"] == 6))

            body["fixed_ips"] = [{"subnet_id": subnet_of(ip), "ip_address": ip} for ip in ips]
        return self.client.create("port", body)

    def update(self, port: dict[str, Any], **body: Any) -> dict[str, Any]:
        return self.client.update("port", port["id"], body)

    def vm(self, port: dict[str, Any], addresses: list[str]) -> ovs.VM:
        machine = self.stack.enter_context(ovs.vm(self.sw, port["id"], port["mac_address"], addresses))
        self.converged(port)
        return machine

    # -- what the switch does ------------------------------------------------------------------

    def converged(self, port: dict[str, Any]) -> None:
        """The port's current flows are on the switch, and the agent reported it ACTIVE."""

        def done() -> bool:
            current = self.client.get("port", port["id"])
            iface = self.agent.plugged.get(port["id"])
            if iface is None or current["status"] != "ACTIVE":
                return False
            want = set(compile_port_flows(guard_from_view(current), iface.ofport))
            return set(self.agent.table.flows_of(port["id"])) == want

        wait_for(done, what=f"port {port['name']} to converge")

    def drops(self, port: dict[str, Any]) -> dict[str, int]:
        self.sw.revalidate()
        found = dict.fromkeys(DROP_REASONS, 0)
        for c in Bridge(self.sw.bridge, str(self.sw.rundir)).counters(port_cookie_match(port["id"])):
            if c.reason in found:
                found[c.reason] += c.packets
        return found

    def allowed(self, port: dict[str, Any]) -> int:
        self.sw.revalidate()
        counters = Bridge(self.sw.bridge, str(self.sw.rundir)).counters(port_cookie_match(port["id"]))
        return sum(c.packets for c in counters if c.reason == "allow")

    def send(self, machine: ovs.VM, frame: bytes) -> None:
        machine.sh(sys.executable, "-c", _SEND, frame.hex())


@contextmanager
def dataplane(
    tmp_path: Path, sw: ovs.Switch, url: str | None = None, poll_interval: float = 0.05
) -> Iterator[Dataplane]:
    db = Database(url or f"sqlite:///{tmp_path}/portsec.db")
    db.migrate()
    config = AgentConfig(sw.bridge, sw.db, str(sw.rundir), host="test-host", poll_interval=poll_interval)
    with ExitStack() as stack:
        plane = Dataplane(db, sw, EmbeddedClient(db, Context.admin()), Agent(db, config), stack)
        plane.start_agent()
        try:
            yield plane
        finally:
            stack.close()  # unplug the VMs first
            plane.stop_agent()
            db.dispose()
