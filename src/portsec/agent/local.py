"""What the local Open vSwitch says about one port: its ofport, and what its flows dropped, per reason.

One implementation for `portsec trace` / `portsec port drops` and for the API's
``/v2.0/ports/{id}/trace`` and ``/drops``: both read the switch of the host they
run on, so the answer is the same whichever is asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ovsdbapp.exceptions import OvsdbAppException

from portsec.agent.ofctl import Bridge, OfctlError
from portsec.agent.ovsdb import default_target, ofports_of
from portsec.openflow.flows import DROP_REASONS, port_cookie_match

PLACEHOLDER_OFPORT = 1  # traced from when the port has no interface here: the flows differ only in in_port
ENV_BRIDGE, ENV_OVSDB = "PORTSEC_BRIDGE", "PORTSEC_OVSDB"  # set by `portsec serve` for its workers


@dataclass(frozen=True)
class LocalSwitch:
    """Where the local switch is: the integration bridge, OVS_RUNDIR (its sockets), and an OVSDB target."""

    bridge: str = "br-int"
    rundir: str | None = None
    ovsdb: str | None = None

    @classmethod
    def from_environment(cls) -> LocalSwitch:
        env = os.environ
        return cls(env.get(ENV_BRIDGE) or "br-int", env.get("OVS_RUNDIR"), env.get(ENV_OVSDB))


def switch_environment(bridge: str, ovsdb: str | None) -> dict[str, str]:
    """What `portsec serve` hands its workers so that :meth:`LocalSwitch.from_environment` finds its switch."""
    return {ENV_BRIDGE: bridge, **({ENV_OVSDB: ovsdb} if ovsdb else {})}


def port_drops(switch: LocalSwitch, port_id: str) -> dict[str, int]:
    """Packets dropped by the port's flows, per reason (every reason, in DROP_REASONS order).

    Raises OfctlError when the bridge cannot be read (no Open vSwitch, no such bridge, no ovs-ofctl).
    """
    try:
        counters = Bridge(switch.bridge, switch.rundir).counters(port_cookie_match(port_id))
    except OSError as err:  # ovs-ofctl itself is missing: the same trouble as a switch that does not answer
        raise OfctlError(f"ovs-ofctl: {err.strerror or err}") from None
    dropped = dict.fromkeys(DROP_REASONS, 0)
    for c in counters:
        if c.reason in dropped:
            dropped[c.reason] += c.packets
    return dropped


def choose_ofport(port_id: str, given: int | None, ovsdb: str | None, given_how: str) -> tuple[int, str]:
    """The ofport to trace from, and where it came from: given (``given_how``), the local interface, or a
    placeholder."""
    if given is not None:
        return given, given_how
    found, where = local_ofport(port_id, ovsdb)
    return (found if found is not None else PLACEHOLDER_OFPORT), where


def local_ofport(port_id: str, ovsdb: str | None = None) -> tuple[int | None, str]:
    """The ofport of the interface plugged in with ``external_ids:iface-id=port_id``, and where it came from."""
    target = ovsdb or default_target()
    try:
        ofports = ofports_of(target, port_id)
    except OvsdbAppException:  # ovsdbapp's message is a paragraph of advice: say what is missing, in one clause
        return None, _placeholder(f"no Open vSwitch database answers at {target}")
    if not ofports:
        return None, _placeholder(None)
    return ofports[0], f"its interface on the local Open vSwitch, external_ids:iface-id={port_id}"


def _placeholder(trouble: str | None) -> str:
    return "a placeholder: the port has no interface on the local Open vSwitch" + (f"; {trouble}" if trouble else "")
