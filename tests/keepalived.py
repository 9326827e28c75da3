"""keepalived in a VM's namespace: the seed document's VRRP pair, for the failover tests of both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests import ovs

VIP = "192.168.1.10"
CONFIG = """
global_defs {{
    script_user root
    enable_script_security
}}
vrrp_instance portsec {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""


class Keepalived:
    """keepalived in a VM's namespace, in the foreground, ended by its PID."""

    def __init__(self, machine: ovs.VM, workdir: Path, state: str, priority: int) -> None:
        self.dir = workdir / machine.name
        self.dir.mkdir()
        conf = self.dir / "keepalived.conf"
        conf.write_text(CONFIG.format(state=state, priority=priority, vip=VIP))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", machine.name, "keepalived", "--dont-fork", "--log-console", "--vrrp",
             "-f", str(conf), "-p", str(self.dir / "k.pid"), "-r", str(self.dir / "v.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


def holds_vip(machine: ovs.VM) -> bool:
    return f"{VIP}/24" in machine.sh("ip", "-4", "addr", "show", "dev", "eth0").stdout


def crash(daemon: Keepalived, machine: ovs.VM) -> None:
    """The master's VM dies: keepalived killed with no last advert, and the VM silent from then on.

    Both processes are stopped before the kill, or the VRRP child may still send its priority-0
    advert and the crash would behave like a clean stop (reference/ovn.md §3).
    """
    pids = [int((daemon.dir / name).read_text()) for name in ("v.pid", "k.pid")]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    machine.sh("ip", "link", "set", "eth0", "down")
    daemon.proc.wait(timeout=10)


# Prints "<wall clock> <sender MAC> <sender IP>" for every ARP frame the namespace's eth0 receives.
_SNIFF = (
    "import socket,sys,time\n"
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(0x0806)); s.bind(('eth0',0))\n"
    "print('ready',flush=True)\n"
    "while True:\n"
    "    f=s.recv(128); a=f[14:]\n"
    "    print(time.time(),':'.join('%02x'%b for b in a[8:14]),socket.inet_ntoa(a[14:18]),flush=True)\n"
)


class ArpWatch:
    """What one VM hears of ARP, each frame timed on arrival: the client's view of a failover."""

    def __init__(self, machine: ovs.VM) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", machine.name, sys.executable, "-c", _SNIFF],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> list[tuple[float, str, str]]:
        """Ends it (by its PID) and returns (time, sender MAC, sender IP) of each frame it heard."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        heard = []
        for line in out.splitlines():
            at, mac, ip = line.split()
            heard.append((float(at), mac, ip))
        return heard
