"""A real two-hypervisor OVN on one machine (reference/ovn.md §3), started and ended by the tests.

central: the NB and SB ovsdb-servers and ovn-northd, in the root namespace, on unix
sockets in a private directory. hv1 and hv2: network namespaces, each with its own
ovsdb-server, ovs-vswitchd (userspace datapath) and ovn-controller, joined by a veth
underlay that carries Geneve. VMs are namespaces with a veth whose hypervisor end is
in br-int with ``external_ids:iface-id=<port id>``, as Nova plugs a VM.

Every daemon is ended by its PID; namespaces and veths are removed by the names made
here. Nothing outside the sandbox is touched, and no packet leaves these namespaces.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.ovs import SCHEMA, VM, _stop, plugged, run, wait_ofport

NB_SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
SB_SCHEMA = "/usr/share/ovn/ovn-sb.ovsschema"
UNDERLAY = "172.31.{}.{}"  # a private /24 per bed, inside the hypervisors' namespaces only
_names = itertools.count()
_tag = f"{os.getpid() % 10000}"


def available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(b) for b in ("ovn-northd", "ovn-controller", "ovs-vswitchd"))


@dataclass
class Central:
    """NB and SB databases and ovn-northd."""

    rundir: Path

    @property
    def nb(self) -> str:
        return f"unix:{self.rundir}/nb.sock"

    @property
    def sb(self) -> str:
        return f"unix:{self.rundir}/sb.sock"

    @property
    def env(self) -> dict[str, str]:
        d = str(self.rundir)
        return {**os.environ, "OVN_RUNDIR": d, "OVN_DBDIR": d, "OVN_LOGDIR": d, "OVS_RUNDIR": d}

    def nbctl(self, *args: str) -> str:
        return run("ovn-nbctl", f"--db={self.nb}", "--timeout=20", *args, env=self.env)

    def sbctl(self, *args: str) -> str:
        return run("ovn-sbctl", f"--db={self.sb}", "--timeout=20", *args, env=self.env)

    def trace(self, switch: str, microflow: str) -> str:
        return run("ovn-trace", f"--db={self.sb}", "--summary", switch, microflow, env=self.env)

    def start_db(self, which: str) -> None:
        """The ``nb`` or ``sb`` ovsdb-server (made anew if its file is gone: a wiped database)."""
        db = self.rundir / f"{which}.db"
        if not db.exists():
            run("ovsdb-tool", "create", str(db), NB_SCHEMA if which == "nb" else SB_SCHEMA)
        run("ovsdb-server", str(db), f"--remote=punix:{self.rundir}/{which}.sock",
            f"--pidfile={self.rundir}/{which}.pid", "--detach", f"--log-file={self.rundir}/{which}.log",
            f"--unixctl={self.rundir}/{which}.ctl", env=self.env)  # fmt: skip
        if which == "nb":
            self.nbctl("--no-wait", "init")
        else:
            self.sbctl("init")

    def stop_db(self, which: str) -> None:
        _stop(self.rundir / f"{which}.pid")

    def wipe_nb(self) -> None:
        """NB lost: the server stopped, its file deleted, a new empty one started."""
        self.stop_db("nb")
        (self.rundir / "nb.db").unlink()
        self.start_db("nb")

    def start(self) -> None:
        self.start_db("nb")
        self.start_db("sb")
        run("ovn-northd", f"--ovnnb-db={self.nb}", f"--ovnsb-db={self.sb}", f"--pidfile={self.rundir}/northd.pid",
            "--detach", f"--log-file={self.rundir}/northd.log", f"--unixctl={self.rundir}/northd.ctl",
            env=self.env)  # fmt: skip

    def stop(self) -> None:
        for pidfile in ("northd.pid", "sb.pid", "nb.pid"):
            _stop(self.rundir / pidfile)


@dataclass
class Hypervisor:
    """A namespace with its own Open vSwitch and ovn-controller, on the Geneve underlay at ``underlay_ip``."""

    name: str  # the namespace, and the chassis' system-id and hostname
    rundir: Path
    underlay_ip: str

    @property
    def env(self) -> dict[str, str]:
        d = str(self.rundir)
        return {**os.environ, "OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d, "OVS_SYSCONFDIR": d,
                "OVN_RUNDIR": d, "OVN_DBDIR": d, "OVN_LOGDIR": d, "OVN_SYSCONFDIR": d}  # fmt: skip

    @property
    def db(self) -> str:
        return f"unix:{self.rundir}/db.sock"

    def sh(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.name, *argv, env=self.env, check=check)

    def vsctl(self, *args: str) -> str:
        return run("ovs-vsctl", f"--db={self.db}", "--timeout=20", *args, env=self.env)

    def ofctl(self, *args: str) -> str:
        return run("ovs-ofctl", "-O", "OpenFlow15", *args, env=self.env)

    def appctl(self, *args: str) -> str:
        return self.sh("ovs-appctl", "-t", str(self.rundir / "ovs-vswitchd.ctl"), *args)

    def ofport(self, iface: str) -> int:
        return wait_ofport(self.vsctl, iface)

    def start(self, sb: str) -> None:
        d = self.rundir
        run("ip", "netns", "add", self.name)
        self.sh("ip", "link", "set", "lo", "up")
        run("ovsdb-tool", "create", str(d / "conf.db"), SCHEMA)
        self.sh("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                "--detach", f"--log-file={d}/ovsdb-server.log", f"--unixctl={d}/ovsdb-server.ctl")  # fmt: skip
        self.vsctl("--no-wait", "init")
        # Inside the namespace: its tap devices are made there, and native tunnelling reads its routes.
        self.sh("ovs-vswitchd", self.db, f"--pidfile={d}/ovs-vswitchd.pid", "--detach",
                f"--log-file={d}/ovs-vswitchd.log", f"--unixctl={d}/ovs-vswitchd.ctl", "--disable-system")  # fmt: skip
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:system-id={self.name}",
                   f"external_ids:hostname={self.name}", f"external_ids:ovn-remote={sb}",
                   "external_ids:ovn-encap-type=geneve", f"external_ids:ovn-encap-ip={self.underlay_ip}",
                   "external_ids:ovn-bridge-datapath-type=netdev")  # fmt: skip
        self.vsctl("--may-exist", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
                   "fail_mode=secure", "other-config:disable-in-band=true")  # fmt: skip
        self.vsctl("--may-exist", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev")
        self.sh("ovn-controller", self.db, f"--pidfile={d}/ovn-controller.pid", "--detach",
                f"--log-file={d}/ovn-controller.log")  # fmt: skip

    def join_underlay(self, nic: str, peer_ip: str, peer_mac: str) -> None:
        """``nic`` (already in this namespace) into br-phy, the underlay address on br-phy."""
        self.sh("ip", "link", "set", nic, "mtu", "9000", "up")
        self.sh("ethtool", "-K", nic, "tx", "off")
        self.vsctl("--may-exist", "add-port", "br-phy", nic)
        self.sh("ip", "link", "set", "br-phy", "mtu", "9000", "up")
        self.sh("ip", "addr", "add", f"{self.underlay_ip}/24", "dev", "br-phy")
        network = self.underlay_ip.rsplit(".", 1)[0] + ".0/24"
        if network not in self.appctl("ovs/route/show"):
            self.appctl("ovs/route/add", network, "br-phy")
        # The first packet to a new VTEP is lost while vswitchd resolves its MAC: tell it at once.
        self.appctl("tnl/neigh/set", "br-phy", peer_ip, peer_mac)
        self.appctl("tnl/neigh/aging", "3600")

    def br_phy_mac(self) -> str:
        return self.sh("cat", "/sys/class/net/br-phy/address").strip()

    def stop(self) -> None:
        d = self.rundir
        _stop(d / "ovn-controller.pid")
        with suppress(RuntimeError):
            self.vsctl("--if-exists", "del-br", "br-int")
        with suppress(RuntimeError):
            self.vsctl("--if-exists", "del-br", "br-phy")
        _stop(d / "ovs-vswitchd.pid")
        _stop(d / "ovsdb-server.pid")
        run("ip", "netns", "del", self.name, check=False)


@dataclass
class Bed:
    central: Central
    hvs: list[Hypervisor]

    def chassis_up(self, timeout: float = 30) -> None:
        """Every hypervisor registered as a chassis in SB, with its Geneve encap."""
        deadline = time.monotonic() + timeout
        names = {hv.name for hv in self.hvs}
        while time.monotonic() < deadline:
            out = self.central.sbctl("--bare", "--columns=name", "list", "Chassis")
            if names <= set(out.split()):
                return
            time.sleep(0.1)
        raise RuntimeError(f"chassis {names} not all registered in SB:\n{out}")

    def sync(self) -> None:
        """Return once every chassis has applied everything in NB so far."""
        self.central.nbctl("--wait=hv", "sync")


@contextmanager
def bed(hypervisors: int = 2) -> Iterator[Bed]:
    """central + ``hypervisors`` hypervisor namespaces on one Geneve underlay."""
    n = next(_names)
    root = Path(tempfile.mkdtemp(prefix="portsec-ovn-"))
    subnet = 200 + (os.getpid() + n) % 50
    central = Central(root / "central")
    central.rundir.mkdir()
    hvs = []
    for i in range(hypervisors):
        # The name is unique on the machine: the namespace, and the chassis' system-id and hostname.
        hv = Hypervisor(f"ps{_tag}h{n}x{i + 1}", root / f"hv{i + 1}", UNDERLAY.format(subnet, i + 1))
        hv.rundir.mkdir()
        hvs.append(hv)
    with ExitStack() as stack:
        try:
            stack.callback(central.stop)  # before starting: a start that fails half-way still ends what it began
            central.start()
            for hv in hvs:
                stack.callback(hv.stop)
                hv.start(central.sb)
            if hypervisors == 2:
                a, b = hvs
                ul_a, ul_b = f"psu{_tag}x{n}a", f"psu{_tag}x{n}b"
                run("ip", "link", "add", ul_a, "netns", a.name, "type", "veth", "peer", "name", ul_b,
                    "netns", b.name)  # fmt: skip
                mac_a, mac_b = a.br_phy_mac(), b.br_phy_mac()
                a.join_underlay(ul_a, b.underlay_ip, mac_b)
                b.join_underlay(ul_b, a.underlay_ip, mac_a)
            result = Bed(central, hvs)
            result.chassis_up()
            yield result
        finally:
            stack.close()
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def vm(hv: Hypervisor, port_id: str, mac: str, addresses: list[str]) -> Iterator[VM]:
    """A namespace with ``addresses`` on eth0, plugged into ``hv``'s br-int with iface-id ``port_id``."""
    n = next(_names)
    with plugged(hv.sh, hv.vsctl, "br-int", VM(f"ps{_tag}v{n}", f"pst{_tag}v{n}", mac, addresses=addresses),
                 port_id) as machine:  # fmt: skip
        yield machine


def installed(hv: Hypervisor, tap: str, timeout: float = 10) -> bool:
    """Whether ovn-controller marked the interface ``ovn-installed`` (its flows are in) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = hv.vsctl("--if-exists", "get", "Interface", tap, "external_ids:ovn-installed").strip()
        if value.strip('"') == "true":
            return True
        time.sleep(0.05)
    return False


def subprocess_in(ns: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
