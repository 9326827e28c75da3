"""Agents: the row each native agent registers and heartbeats, Neutron's agent API over it, and the CLIs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from portsec.api.app import create_app
from portsec.domain import agents as rules
from portsec.domain import errors
from portsec.domain.model import Context
from portsec.heartbeat import Heartbeat
from portsec.service import agents
from portsec.service.common import Listing
from portsec.store import agents as store
from portsec.store.database import Database
from tests.cli import run
from tests.conftest import dump
from tests.dataplane import Dataplane, wait_for
from tests.server import serve

T0 = datetime(2026, 12, 1, 12, 0, 0)
ADMIN = Context.admin()
MEMBER = {"X-Project-Id": "alice", "X-Roles": "member"}
OPENSTACK = str(Path(sys.executable).with_name("openstack"))
PORTSEC = str(Path(sys.executable).with_name("portsec"))
KEYS = {
    "id", "agent_type", "binary", "topic", "host", "admin_state_up", "created_at", "started_at",
    "heartbeat_timestamp", "alive", "configurations", "description", "availability_zone", "resources_synced",
}  # fmt: skip


def _register(db: Database, host: str, devices: int = 0) -> str:
    config = rules.configurations("br-int", devices)
    return db.run(lambda tx: agents.register(tx, rules.AGENT_TYPE, rules.BINARY, rules.TOPIC, host, config))


def _heard_at(db: Database, agent_id: str, when: datetime) -> None:
    """The agent's last heartbeat was at ``when`` (what a stopped agent leaves behind)."""
    db.run(lambda tx: store.update(tx.conn, agent_id, {"heartbeat_timestamp": when}))


def _list(db: Database, now: datetime, down_time: float = rules.AGENT_DOWN_TIME, **filters: list[str]) -> list[Any]:
    with db.transaction(write=False) as tx:
        return agents.list_(tx, ADMIN, Listing(filters=filters), now, down_time)


# -- store and service, with a clock of our own --------------------------------------------------------------------


def test_an_agent_registers_once_per_type_and_host(db: Database) -> None:
    first = _register(db, "compute-1")
    _heard_at(db, first, T0)
    assert _register(db, "compute-1", devices=3) == first  # a restart: the same row
    second = _register(db, "compute-2")
    assert second != first
    found = {a["host"]: a for a in _list(db, datetime.now())}
    assert set(found) == {"compute-1", "compute-2"}
    restarted = found["compute-1"]
    assert restarted["started_at"] > "2026-12-01 12:00:00"  # started_at and the heartbeat moved on
    assert restarted["configurations"] == {"integration_bridge": "br-int", "devices": 3}
    assert (restarted["agent_type"], restarted["binary"], restarted["topic"]) == (
        "Open vSwitch agent", "neutron-openvswitch-agent", "N/A",
    )  # fmt: skip
    assert restarted["admin_state_up"] is True and restarted["availability_zone"] is None
    assert set(restarted) == KEYS


def test_alive_is_a_heartbeat_at_most_down_time_old(sqlite_db: Database) -> None:
    agent_id = _register(sqlite_db, "compute-1")
    _heard_at(sqlite_db, agent_id, T0)

    def alive(now: datetime, down_time: float = 75) -> bool:
        return bool(_list(sqlite_db, now, down_time)[0]["alive"])

    assert alive(T0 + timedelta(seconds=75))
    assert not alive(T0 + timedelta(seconds=76))
    assert not alive(T0 + timedelta(seconds=11), down_time=10)  # agent_down_time is configurable
    shown = _list(sqlite_db, T0)[0]
    assert shown["heartbeat_timestamp"] == "2026-12-01 12:00:00"  # Neutron's format: no T, no Z


def test_the_alive_filter_is_applied_in_the_query(db: Database) -> None:
    live, dead = _register(db, "live"), _register(db, "dead")
    _heard_at(db, live, T0)
    _heard_at(db, dead, T0 - timedelta(minutes=5))
    assert [a["host"] for a in _list(db, T0, alive=["true"])] == ["live"]
    assert [a["host"] for a in _list(db, T0, alive=["False"])] == ["dead"]
    with pytest.raises(errors.InvalidInput):
        _list(db, T0, alive=["maybe"])


def test_a_heartbeat_is_one_update_and_a_deleted_row_comes_back(db: Database) -> None:
    clock = [100.0]
    beat = Heartbeat(db, "compute-1", interval=30, clock=lambda: clock[0])
    assert beat.due()
    beat.beat(rules.configurations("br-int", 0))
    first = beat.agent_id
    assert first is not None and not beat.due()
    clock[0] += 30
    assert beat.due()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0])

    # Every engine: the heartbeat writes on the database's no-wait connection, not its pool.
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        beat.beat(rules.configurations("br-int", 2))
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE", "DELETE")] == ["UPDATE"]
    assert _list(db, datetime.now())[0]["configurations"]["devices"] == 2

    with db.transaction() as tx:
        agents.delete(tx, ADMIN, first)
    beat.beat(rules.configurations("br-int", 2))  # no row to update: registers again, with a new id
    assert beat.agent_id not in (None, first)
    assert [a["id"] for a in _list(db, datetime.now())] == [beat.agent_id]


def test_a_heartbeat_that_cannot_be_written_is_logged_not_raised(tmp_path: Path, caplog: Any) -> None:
    db = Database(f"sqlite:///{tmp_path}/never-migrated.db", wait=0.1)  # no agents table
    beat = Heartbeat(db, "compute-1", interval=30, clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="portsec.heartbeat"):
        beat.beat({})
    assert beat.agent_id is None and "agent heartbeat not written" in caplog.text
    db.dispose()


# -- the API ------------------------------------------------------------------------------------------------------


@pytest.fixture
def api(sqlite_db: Database) -> TestClient:
    return TestClient(create_app(sqlite_db, agent_down_time=75))


def test_list_show_filter_and_fields(api: TestClient, sqlite_db: Database) -> None:
    assert api.get("/v2.0/agents").json() == {"agents": []}
    one, two = _register(sqlite_db, "compute-1", devices=4), _register(sqlite_db, "compute-2")
    listed = api.get("/v2.0/agents").json()["agents"]
    assert sorted(a["id"] for a in listed) == sorted([one, two])
    assert all(set(a) == KEYS and a["alive"] is True for a in listed)

    by_host = api.get("/v2.0/agents", params={"host": "compute-1", "agent_type": "Open vSwitch agent"})
    assert [a["id"] for a in by_host.json()["agents"]] == [one]
    assert api.get("/v2.0/agents", params={"agent_type": "DHCP agent"}).json() == {"agents": []}
    projected = api.get("/v2.0/agents", params=[("host", "compute-1"), ("fields", "id"), ("fields", "alive")])
    assert projected.json() == {"agents": [{"id": one, "alive": True}]}
    refused = api.get("/v2.0/agents", params={"load": "1"})
    assert refused.status_code == 400 and refused.json()["NeutronError"]["type"] == "HTTPBadRequest"
    page = api.get("/v2.0/agents", params={"limit": 1}).json()
    assert len(page["agents"]) == 1 and page["agents_links"][0]["rel"] == "next"

    shown = api.get(f"/v2.0/agents/{one}").json()["agent"]
    assert shown["configurations"] == {"integration_bridge": "br-int", "devices": 4}
    assert api.get(f"/v2.0/agents/{one}", params={"fields": "host"}).json() == {"agent": {"host": "compute-1"}}
    missing = api.get("/v2.0/agents/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "NeutronError": {"type": "AgentNotFound", "message": "Agent nope could not be found.", "detail": ""}
    }


def test_a_silent_agent_turns_dead(api: TestClient, sqlite_db: Database) -> None:
    agent_id = _register(sqlite_db, "compute-1")
    _heard_at(sqlite_db, agent_id, datetime(2000, 1, 1))
    shown = api.get(f"/v2.0/agents/{agent_id}").json()["agent"]
    assert shown["alive"] is False and shown["heartbeat_timestamp"] == "2000-01-01 00:00:00"
    assert [a["id"] for a in api.get("/v2.0/agents?alive=false").json()["agents"]] == [agent_id]
    assert api.get("/v2.0/agents?alive=true").json() == {"agents": []}


def test_update_takes_admin_state_up_and_description_only(api: TestClient, sqlite_db: Database) -> None:
    agent_id = _register(sqlite_db, "compute-1")
    url = f"/v2.0/agents/{agent_id}"
    updated = api.put(url, json={"agent": {"admin_state_up": "false", "description": "maintenance"}})
    assert updated.status_code == 200
    assert (updated.json()["agent"]["admin_state_up"], updated.json()["agent"]["description"]) == (
        False, "maintenance",
    )  # fmt: skip
    assert api.get(url).json()["agent"]["admin_state_up"] is False
    for body, message in (
        ({"agent": {"host": "elsewhere"}}, "Cannot update read-only attribute host"),
        ({"agent": {"load": 3}}, "Unrecognized attribute(s) 'load'"),
        ({"agent": {"description": "x" * 256}}, f"Invalid input for description. Reason: '{'x' * 256}' exceeds "
                                                "maximum length of 255."),
        ({"agent": {"admin_state_up": "sometimes"}}, "Invalid input for operation: 'sometimes' cannot be converted "
                                                     "to boolean."),
        ({"network": {}}, "Unable to find 'agent' in request body"),
    ):  # fmt: skip
        refused = api.put(url, json=body)
        assert refused.status_code == 400 and refused.json()["NeutronError"]["message"] == message
    assert api.put("/v2.0/agents/nope", json={"agent": {"description": ""}}).status_code == 404


def test_delete(api: TestClient, sqlite_db: Database) -> None:
    agent_id = _register(sqlite_db, "compute-1")
    assert api.delete(f"/v2.0/agents/{agent_id}").status_code == 204
    gone = api.delete(f"/v2.0/agents/{agent_id}")
    assert gone.status_code == 404 and gone.json()["NeutronError"]["type"] == "AgentNotFound"


def test_agents_are_admin_only(api: TestClient, sqlite_db: Database) -> None:
    """Neutron: a member's list is empty, its show, update and delete 404 (here AgentNotFound); nothing changes."""
    agent_id = _register(sqlite_db, "compute-1")
    before = dump(sqlite_db)
    assert api.get("/v2.0/agents", headers=MEMBER).json() == {"agents": []}
    url = f"/v2.0/agents/{agent_id}"
    for response in (
        api.get(url, headers=MEMBER),
        api.put(url, json={"agent": {"admin_state_up": False}}, headers=MEMBER),
        api.delete(url, headers=MEMBER),
    ):
        assert response.status_code == 404
        assert response.json()["NeutronError"]["message"] == f"Agent {agent_id} could not be found."
    assert dump(sqlite_db) == before


def test_the_agent_extension_is_listed(api: TestClient) -> None:
    found = api.get("/v2.0/extensions/agent").json()["extension"]
    assert found == {
        "alias": "agent", "name": "agent", "description": "The agent management extension.",
        "updated": "2013-02-03T10:00:00-00:00", "links": [],
    }  # fmt: skip


# -- the CLIs -------------------------------------------------------------------------------------------------------


def test_portsec_network_agent_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/portsec.db"
    db = Database(url)
    db.migrate()
    live, dead = _register(db, "compute-1", devices=2), _register(db, "compute-2")
    _heard_at(db, dead, datetime(2000, 1, 1))
    db.dispose()
    cli = f"--database-url {url} network agent"

    listed = run(f"{cli} list -f value")  # machine-readable cells, as openstackclient's -f value prints them
    assert listed.code == 0, listed.err
    assert sorted(listed.out.splitlines()) == sorted(
        [
            f"{live} Open vSwitch agent compute-1 None True True neutron-openvswitch-agent",
            f"{dead} Open vSwitch agent compute-2 None False True neutron-openvswitch-agent",
        ]
    )
    table = run(f"{cli} list").out
    assert table.splitlines()[1] == (
        "| ID                                   | Agent Type         | Host      | Availability Zone | Alive | State "
        "| Binary                    |"
    )
    rows = {line.split("|")[1].strip(): line.split("|")[5].strip() for line in table.splitlines()[3:-1]}
    assert rows == {live: ":-)", dead: "XXX"}
    only = run(f"{cli} list --host compute-2 --agent-type open-vswitch -f value -c ID")
    assert only.out.split() == [dead]
    assert run(f"{cli} list --agent-type dhcp -f value").out == ""

    assert run(f"{cli} set {live} --disable --description drained").code == 0
    shown = run(f"{cli} show {live} -f value -c admin_state_up -c configuration -c description")
    assert shown.out.splitlines() == ["False", "{'integration_bridge': 'br-int', 'devices': 2}", "drained"]
    table = run(f"{cli} show {live}").out
    assert "| admin_state_up      | DOWN " in table and "| {'integration_bridge': 'br-int', 'devices': 2} |" in table
    missing = run(f"{cli} set nope --enable")
    assert missing.code == 1 and "NotFoundException: 404: Agent nope could not be found." in missing.err

    deleted = run(f"{cli} delete {dead} nope")
    assert deleted.code == 1 and "1 of 2 network agents failed to delete." in deleted.err
    assert run(f"{cli} list -f value -c ID").out.split() == [live]


def test_the_openstack_client_lists_and_shows_agents_as_portsec_does(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/portsec.db"
    db = Database(url)
    db.migrate()
    live, dead = _register(db, "compute-1", devices=2), _register(db, "compute-2")
    _heard_at(db, dead, datetime(2000, 1, 1))
    db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PORTSEC_"))}
    with serve(url) as endpoint:
        for command in ("network agent list", f"network agent show {live}", "network agent list --host compute-2"):
            theirs = subprocess.run(
                [OPENSTACK, "--os-auth-type", "none", "--os-endpoint", endpoint, *command.split()],
                capture_output=True, text=True, timeout=120, env=env,
            )  # fmt: skip
            ours = subprocess.run(
                [PORTSEC, "--endpoint", endpoint, *command.split()], capture_output=True, text=True, timeout=120,
                env=env,
            )  # fmt: skip
            assert theirs.returncode == ours.returncode == 0, theirs.stderr + ours.stderr
            assert ours.stdout == theirs.stdout, command
        table = theirs.stdout
        assert "XXX" in table and dead in table and live not in table


# -- the real agent -------------------------------------------------------------------------------------------------


@pytest.mark.ovs
def test_the_running_agent_registers_alive_with_its_port_count(plane: Dataplane) -> None:
    net = plane.network("net1", ["192.168.1.0/24"])
    port = plane.port(net, "vm1", "fa:16:3e:00:00:01", ["192.168.1.5"])
    plane.vm(port, ["192.168.1.5/24"])
    plane.stop_agent()
    plane.start_agent()  # a restart: the same row, whose first report after the sync counts the plugged port

    def registered() -> list[Any]:
        found = plane.client.list_agents({"host": ["test-host"]})
        return found if found and found[0]["configurations"]["devices"] == 1 else []

    (row,) = wait_for(registered, what="the agent's row with its port")
    assert row["alive"] is True and row["agent_type"] == "Open vSwitch agent"
    assert row["configurations"]["integration_bridge"] == plane.sw.bridge
    assert row["started_at"] >= row["created_at"]
