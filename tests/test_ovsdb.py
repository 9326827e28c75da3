"""The agent's OVSDB side through ovsdbapp, on a real ovsdb-server: interfaces, local VLAN tags, the bridge, errors."""

from __future__ import annotations

import threading
import time

import pytest
from ovsdbapp.exceptions import OvsdbAppException, OvsdbConnectionUnavailable

from portsec.agent.local import local_ofport
from portsec.agent.ovsdb import Interface, InterfaceMonitor, Vsctl, ovsdb_answers
from tests import ovs
from tests.dataplane import wait_for

NOWHERE = "unix:/nonexistent/portsec/db.sock"


def test_nothing_answering_is_a_typed_error_everywhere() -> None:
    assert not ovsdb_answers(NOWHERE)
    with pytest.raises(OvsdbConnectionUnavailable, match="nonexistent"):
        Vsctl(NOWHERE).prepare_bridge("br-int")
    with pytest.raises(OvsdbConnectionUnavailable):
        InterfaceMonitor(NOWHERE, lambda: None).start()
    assert issubclass(OvsdbAppException, RuntimeError)  # what `portsec agent` reports as "is Open vSwitch running?"
    ofport, where = local_ofport("p1", NOWHERE)
    assert ofport is None and where.startswith("a placeholder: the port has no interface on the local Open vSwitch;")


@pytest.mark.ovs
def test_the_monitor_follows_an_interface_whose_ofport_comes_later_and_ends_with_ovsdb(sw: ovs.Switch) -> None:
    woke = threading.Event()
    monitor = InterfaceMonitor(sw.db, woke.set)
    monitor.start()
    try:
        assert monitor.ready.wait(10) and monitor.alive
        # The row first appears without an ofport (ovs-vswitchd assigns it a moment later): not plugged yet.
        sw.vsctl("--no-wait", "add-port", sw.bridge, "psmon1", "--", "set", "Interface", "psmon1", "type=patch",
                 "options:peer=psmon-none", "ofport_request=61", "external_ids:iface-id=port-a")  # fmt: skip
        plugged = Interface("psmon1", 61, "port-a")
        wait_for(lambda: monitor.interfaces().get("port-a") == plugged, what="port-a with its ofport")
        assert monitor.take_dirty() == {}  # interfaces() read everything: nothing left over
        sw.vsctl("set", "Interface", "psmon1", "external_ids:iface-id=port-b")
        moved = wait_for(lambda: monitor.take_dirty() or None, what="the move")
        assert moved == {"port-a": None, "port-b": Interface("psmon1", 61, "port-b")}
        sw.vsctl("del-port", sw.bridge, "psmon1")
        wait_for(lambda: monitor.take_dirty() == {"port-b": None}, what="the unplug")
        woke.clear()
        sw.restart_ovsdb()
        assert woke.wait(10), "losing OVSDB must wake the agent"
        wait_for(lambda: not monitor.alive, what="the monitor to end")
        monitor.start()
        assert monitor.ready.wait(10) and monitor.alive and monitor.interfaces() == {}
    finally:
        monitor.stop()
        sw.vsctl("--if-exists", "del-port", sw.bridge, "psmon1")


@pytest.mark.ovs
def test_tags_of_many_ports_are_applied_before_set_tags_returns(sw: ovs.Switch) -> None:
    names = [f"pstag{i}" for i in range(50)]
    for name in names:
        sw.vsctl("--no-wait", "add-port", sw.bridge, name, "--", "set", "Interface", name, "type=patch",
                 f"options:peer={name}-none")  # fmt: skip
    vsctl = Vsctl(sw.db)
    try:
        vsctl.prepare_bridge(sw.bridge)
        assert sw.vsctl("get", "Bridge", sw.bridge, "fail_mode").strip() == "secure"
        before = int(sw.vsctl("get", "Open_vSwitch", ".", "next_cfg"))
        vsctl.set_tags([(name, 100 + i) for i, name in enumerate(names)])
        # One transaction (next_cfg moved once), and ovs-vswitchd had applied it when set_tags returned.
        cur_cfg, next_cfg = (int(v) for v in sw.vsctl("get", "Open_vSwitch", ".", "cur_cfg", "next_cfg").split())
        assert next_cfg == before + 1 and cur_cfg >= next_cfg
        assert {n: t for n, t in vsctl.port_tags().items() if n in names} == {n: 100 + i for i, n in enumerate(names)}
        vsctl.set_tags([("no-such-port", 5)])  # a port gone meanwhile is no error
    finally:
        vsctl.close()
        for name in names:
            sw.vsctl("--if-exists", "del-port", sw.bridge, name)


@pytest.mark.ovs
def test_the_bridge_is_prepared_whether_it_exists_or_not(sw: ovs.Switch) -> None:
    vsctl = Vsctl(sw.db)
    bridge = f"brpsnew{int(time.time()) % 10000}"
    try:
        sw.vsctl("set", "Bridge", sw.bridge, "protocols=OpenFlow15")
        vsctl.prepare_bridge(sw.bridge)
        protocols = sw.vsctl("get", "Bridge", sw.bridge, "protocols").strip()
        assert protocols == "[OpenFlow10, OpenFlow13, OpenFlow14, OpenFlow15]"  # the operator's are kept
        vsctl.prepare_bridge(bridge)  # on a connection that loads the rows of that name only
        assert sw.vsctl("get", "Bridge", bridge, "fail_mode").strip() == "secure"
        assert set(sw.vsctl("list-br").split()) >= {sw.bridge, bridge}, "the other bridges stay"
    finally:
        vsctl.close()
        sw.vsctl("--if-exists", "del-br", bridge)


@pytest.mark.ovs
def test_local_ofport_reads_the_interface_of_the_port(sw: ovs.Switch) -> None:
    sw.vsctl("add-port", sw.bridge, "psofp", "--", "set", "Interface", "psofp", "type=patch",
             "options:peer=psofp-none", "ofport_request=44", "external_ids:iface-id=port-c")  # fmt: skip
    try:
        sw.vsctl("wait-until", "Interface", "psofp", "ofport=44")
        assert local_ofport("port-c", sw.db) == (
            44,
            "its interface on the local Open vSwitch, external_ids:iface-id=port-c",
        )
        assert local_ofport("port-d", sw.db) == (
            None,
            "a placeholder: the port has no interface on the local Open vSwitch",
        )
    finally:
        sw.vsctl("--if-exists", "del-port", sw.bridge, "psofp")
