"""keepalived in a VM's namespace: the seed document's VRRP pair, for the failover tests of both backends."""

from __future__ import annotations

import os
import signal
import subprocess
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
