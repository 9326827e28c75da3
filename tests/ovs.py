"""Real Open vSwitch in a private directory, and network namespaces as VMs on its br-int.

Everything here is started by the test and ended by PID (daemons) or by name
(namespaces, veths it created); nothing outside the sandbox is touched.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
_names = itertools.count()


def available() -> bool:
    return shutil.which("ovs-vswitchd") is not None and os.geteuid() == 0


def run(*argv: str, env: dict[str, str] | None = None, check: bool = True, input: str | None = None) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, input=input)
    if check and done.returncode != 0:
        shown = " ".join(argv[:8]) + (" ..." if len(argv) > 8 else "")
        raise RuntimeError(f"{shown} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


@dataclass
class Switch:
    """One ovsdb-server + ovs-vswitchd (userspace datapath) with bridge ``bridge``."""

    rundir: Path
    bridge: str = "br-int"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "OVS_RUNDIR": str(self.rundir)}

    @property
    def db(self) -> str:
        return f"unix:{self.rundir}/db.sock"

    def vsctl(self, *args: str) -> str:
        return run("ovs-vsctl", f"--db={self.db}", "--timeout=10", *args, env=self.env)

    def ofctl(self, *args: str, input: str | None = None) -> str:
        return run("ovs-ofctl", "-O", "OpenFlow14", *args, env=self.env, input=input)

    def appctl(self, *args: str) -> str:
        return run("ovs-appctl", "-t", str(self.rundir / "ovs-vswitchd.ctl"), *args, env=self.env)

    def pid(self, daemon: str) -> int:
        return int((self.rundir / f"{daemon}.pid").read_text())

    def start_ovsdb(self) -> None:
        run("ovsdb-server", str(self.rundir / "conf.db"), f"--remote=punix:{self.rundir}/db.sock",
            f"--pidfile={self.rundir}/ovsdb-server.pid", "--detach", f"--log-file={self.rundir}/ovsdb-server.log",
            f"--unixctl={self.rundir}/ovsdb-server.ctl", env=self.env)  # fmt: skip

    def restart_ovsdb(self) -> None:
        _stop(self.rundir / "ovsdb-server.pid")
        self.start_ovsdb()

    def start_vswitchd(self) -> None:
        run("ovs-vswitchd", self.db, f"--pidfile={self.rundir}/ovs-vswitchd.pid", "--detach",
            f"--log-file={self.rundir}/ovs-vswitchd.log", f"--unixctl={self.rundir}/ovs-vswitchd.ctl",
            "--disable-system", env=self.env)  # fmt: skip

    def stop_vswitchd(self) -> None:
        _stop(self.rundir / "ovs-vswitchd.pid")

    def restart_vswitchd(self) -> None:
        self.stop_vswitchd()
        self.start_vswitchd()
        self.vsctl("--timeout=10", "wait-until", "bridge", self.bridge)

    def revalidate(self) -> None:
        """Make flow counters current (they otherwise lag the datapath by up to ~0.5 s)."""
        self.appctl("revalidator/wait")

    def ofport(self, iface: str) -> int:
        return wait_ofport(self.vsctl, iface)


def wait_ofport(vsctl: Callable[..., str], iface: str) -> int:
    """The interface's OpenFlow port, once ovs-vswitchd has given it one (right after add-port, or while
    it is still starting, the column is empty)."""
    for _ in range(200):
        value = vsctl("get", "Interface", iface, "ofport").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
        time.sleep(0.05)
    raise RuntimeError(f"{iface} got no OpenFlow port in 10 s (ofport {value!r})")


def _stop(pidfile: Path) -> None:
    with suppress(FileNotFoundError, ProcessLookupError, ValueError):
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _running(pid):
                return
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Alive and not a zombie: a detached daemon that exited waits, as a zombie, for an init that may reap late."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def switch(bridge: str = "br-int") -> Iterator[Switch]:
    """A private Open vSwitch with ``bridge`` (datapath_type=netdev, fail_mode=secure, OpenFlow 1.0-1.4)."""
    rundir = Path(tempfile.mkdtemp(prefix="portsec-ovs-"))
    sw = Switch(rundir, bridge)
    try:
        run("ovsdb-tool", "create", str(rundir / "conf.db"), SCHEMA)
        sw.start_ovsdb()
        sw.vsctl("--no-wait", "init")
        sw.start_vswitchd()
        sw.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev", "fail_mode=secure",
                 "protocols=OpenFlow10,OpenFlow13,OpenFlow14")  # fmt: skip
        yield sw
    finally:
        # The userspace datapath's tap device for the bridge lives in the host namespace: remove it.
        with suppress(RuntimeError):
            sw.vsctl("--if-exists", "del-br", bridge)
        sw.stop_vswitchd()
        _stop(rundir / "ovsdb-server.pid")
        shutil.rmtree(rundir, ignore_errors=True)


@dataclass
class VM:
    """A network namespace joined to br-int by a veth pair, as Nova/os-vif would plug a VM."""

    name: str
    tap: str
    mac: str
    ofport: int = 0
    addresses: list[str] = field(default_factory=list)

    def sh(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)} failed: {done.stdout}{done.stderr}")
        return done

    def ping(self, address: str, count: int = 1, wait: float = 1.0) -> bool:
        flag = "-6" if ":" in address else "-4"
        return self.sh("ping", flag, "-c", str(count), "-W", str(wait), "-i", "0.2", address,
                       check=False).returncode == 0  # fmt: skip


def _wait_addresses_usable(machine: VM) -> None:
    """IPv6 addresses are tentative for a moment after the link comes up; a ping then sends nothing."""
    for _ in range(100):
        if not machine.sh("ip", "-6", "addr", "show", "dev", "eth0", "tentative").stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{machine.name}: IPv6 addresses stayed tentative")


@contextmanager
def vm(sw: Switch, port_id: str, mac: str, addresses: list[str], name: str | None = None) -> Iterator[VM]:
    """A namespace with ``addresses`` (CIDRs) on eth0, plugged into br-int with iface-id ``port_id``."""
    n = next(_names)
    ns = name or f"psvm{os.getpid() % 10000}x{n}"
    with plugged(run, sw.vsctl, sw.bridge, VM(ns, f"pstap{os.getpid() % 10000}x{n}", mac, addresses=addresses),
                 port_id) as machine:  # fmt: skip
        yield machine


@contextmanager
def plugged(
    host: Callable[..., str], vsctl: Callable[..., str], bridge: str, machine: VM, port_id: str
) -> Iterator[VM]:
    """``machine``'s namespace made, joined by a veth to ``bridge`` (whose switch ``host`` runs commands beside,
    ``vsctl`` configures) with iface-id ``port_id``, as Nova/os-vif would plug a VM; all of it removed after."""
    ns, tap, mac = machine.name, machine.tap, machine.mac
    try:
        run("ip", "netns", "add", ns)
        host("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        machine.sh("ip", "link", "set", "eth0", "address", mac)
        # The userspace datapath does not fill in checksums that the kernel left to offload.
        host("ethtool", "-K", tap, "tx", "off")
        machine.sh("ethtool", "-K", "eth0", "tx", "off")
        machine.sh("sysctl", "-qw", "net.ipv6.conf.eth0.dad_transmits=0")
        for address in machine.addresses:
            machine.sh("ip", "addr", "add", address, "dev", "eth0")
        machine.sh("ip", "link", "set", "lo", "up")
        machine.sh("ip", "link", "set", "eth0", "up")
        # The host end carries no addresses: its own IPv6 chatter would reach the VM around the switch.
        host("sysctl", "-qw", f"net.ipv6.conf.{tap}.disable_ipv6=1")
        host("ip", "link", "set", tap, "up")
        _wait_addresses_usable(machine)
        vsctl("add-port", bridge, tap, "--", "set", "Interface", tap, f"external_ids:iface-id={port_id}",
              f"external_ids:attached-mac={mac}", "external_ids:iface-status=active")  # fmt: skip
        machine.ofport = wait_ofport(vsctl, tap)
        yield machine
    finally:
        with suppress(RuntimeError):
            vsctl("--if-exists", "del-port", bridge, tap)
        host("ip", "link", "del", tap, check=False)
        run("ip", "netns", "del", ns, check=False)
