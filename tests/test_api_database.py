"""The database never blocks the server: a real `portsec serve`, a database held by someone else.

While a write waits for a lock, discovery and reads of the same worker keep answering; the write
answers 503 with Retry-After and Neutron's body within the configured bound, and works again once the
lock is gone. The same on PostgreSQL for lock waits and for a server restart.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from portsec.store.database import ENV_WAIT
from tests import postgres
from tests.cli import run
from tests.server import serve

WAIT = 5  # seconds the servers below may wait for the database (PORTSEC_DATABASE_WAIT)
PROMPT = 1.0  # a request that needs no lock answers within this (it takes milliseconds)
SLACK = 5.0  # beyond WAIT, for a loaded machine: a refused write answers within WAIT + SLACK
BULK = 1000  # ports in one bulk create (the most one may hold), with PAIRS pairs each: seconds of work
PAIRS = 25
BURST = 20  # writers waiting at once: more than the threads and connections a worker gives to writes


@pytest.fixture(autouse=True)
def bounded_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WAIT, str(WAIT))


def _network(http: httpx.Client, cidr: str = "10.0.0.0/24") -> dict[str, Any]:
    net = http.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    subnet = {"network_id": net["id"], "cidr": cidr, "ip_version": 4}
    assert http.post("/v2.0/subnets", json={"subnet": subnet}).status_code == 201
    return dict(net)


def _update_port(endpoint: str, port_id: str) -> httpx.Response:
    with httpx.Client(base_url=endpoint, timeout=WAIT + SLACK) as own:
        return own.put(f"/v2.0/ports/{port_id}", json={"port": {"name": "renamed"}})


def _assert_busy(response: httpx.Response) -> None:
    """What a client relies on: 503, when to come back, and Neutron's error body."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    fault = response.json()["NeutronError"]
    assert fault["type"] == "DatabaseBusy" and fault["message"] and fault["detail"] == ""


def _refused_burst(endpoint: str, http: httpx.Client, network_id: str) -> list[httpx.Response]:
    """BURST creates sent at once into a held lock: reads answer meanwhile, each create within the bound."""
    limits = httpx.Limits(max_connections=BURST)  # one connection each: all are sent at once
    with (
        httpx.Client(base_url=endpoint, timeout=WAIT + SLACK, limits=limits) as writer,
        ThreadPoolExecutor(BURST) as pool,
    ):
        create = {"port": {"network_id": network_id}}
        writes = [pool.submit(writer.post, "/v2.0/ports", json=create) for _ in range(BURST)]
        _assert_reads_answer_while(writes, http, network_id)
        refused = [write.result() for write in writes]
    assert all(response.elapsed.total_seconds() < WAIT + SLACK for response in refused)
    return refused


def _assert_reads_answer_while(writes: list[Future[httpx.Response]], http: httpx.Client, network_id: str) -> None:
    time.sleep(0.5)  # the writes have reached the server and wait for the lock
    for path in ("/", "/v2.0/ports", f"/v2.0/networks/{network_id}"):
        assert http.get(path, timeout=PROMPT).status_code == 200, path
    assert not any(write.done() for write in writes)  # they answered while the writes were still waiting


@contextmanager
def _sqlite_write_lock(path: Path) -> Iterator[None]:
    """Another process's writer: holds the database file's write lock until the end of the ``with``."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_sqlite_reads_answer_while_writes_wait_and_the_writes_get_503(tmp_path: Path) -> None:
    path = tmp_path / "portsec.db"
    with serve(f"sqlite:///{path}") as endpoint, httpx.Client(base_url=endpoint, timeout=30) as http:
        net = _network(http)
        with _sqlite_write_lock(path):
            refused = _refused_burst(endpoint, http, net["id"])
        for response in refused:
            _assert_busy(response)
        assert http.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).status_code == 201
        assert len(http.get("/v2.0/ports").json()["ports"]) == 1  # the refused write left nothing behind


def test_a_bulk_create_does_not_block_discovery_of_the_same_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTSEC_QUOTA_PORT", "-1")  # no port quota: the default (Neutron's 500) is below BULK
    database, args = f"sqlite:///{tmp_path}/portsec.db", ["--max-allowed-address-pairs", str(PAIRS)]
    with serve(database, args=args) as endpoint, httpx.Client(base_url=endpoint, timeout=30) as http:
        net = _network(http, cidr="10.0.0.0/16")
        pairs = [{"ip_address": f"172.16.{i}.0/24"} for i in range(PAIRS)]
        body = {"ports": [{"network_id": net["id"], "allowed_address_pairs": pairs} for _ in range(BULK)]}
        with ThreadPoolExecutor(1) as pool:
            bulk = pool.submit(lambda: httpx.post(endpoint + "/v2.0/ports", json=body, timeout=300))
            answered = 0
            while not bulk.done():
                assert http.get("/", timeout=PROMPT).status_code == 200
                answered += 1
                time.sleep(0.05)
            assert bulk.result().status_code == 201
        assert answered >= 3  # GET / was asked, and answered, while the bulk create ran


def test_embedded_cli_reports_a_busy_database_as_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WAIT, "1")
    path = tmp_path / "portsec.db"
    assert run(f"--database-url sqlite:///{path} network create before").code == 0
    with _sqlite_write_lock(path):
        refused = run(f"--database-url sqlite:///{path} network create during")
    assert refused.code == 1
    assert refused.err.startswith("HttpException: 503: "), refused.err
    assert "Traceback" not in refused.err + refused.out


@contextmanager
def _postgresql_session(url: str) -> Iterator[psycopg.Connection[Any]]:
    """Another client of the same database, in a transaction held until the end of the ``with``."""
    with psycopg.connect(url) as other:
        yield other
        other.rollback()


@pytest.mark.postgresql
def test_postgresql_writes_behind_a_table_lock_get_503_while_reads_answer(postgres_url: str) -> None:
    url = postgres.fresh_database(postgres_url, "table_lock")
    with serve(url) as endpoint, httpx.Client(base_url=endpoint, timeout=30) as http:
        net = _network(http)
        with _postgresql_session(url) as other:
            other.execute("LOCK TABLE ports IN EXCLUSIVE MODE")  # readers pass, writers wait
            refused = _refused_burst(endpoint, http, net["id"])
        for response in refused:
            _assert_busy(response)
        assert http.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).status_code == 201


@pytest.mark.postgresql
def test_postgresql_update_behind_a_row_lock_gets_503(postgres_url: str) -> None:
    url = postgres.fresh_database(postgres_url, "row_lock")
    with serve(url) as endpoint, httpx.Client(base_url=endpoint, timeout=30) as http:
        net = _network(http)
        port = http.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).json()["port"]
        with _postgresql_session(url) as other:
            other.execute("SELECT 1 FROM ports WHERE id = %s FOR UPDATE", (port["id"],))
            refused = _update_port(endpoint, port["id"])
        _assert_busy(refused)
        assert refused.elapsed.total_seconds() < WAIT + SLACK
        assert _update_port(endpoint, port["id"]).status_code == 200


@pytest.mark.postgresql
def test_postgresql_restart_answers_503_while_down_and_works_after() -> None:
    with postgres.server() as admin:  # its own server: this test stops it
        url = postgres.fresh_database(admin, "restart")
        with serve(url) as endpoint, httpx.Client(base_url=endpoint, timeout=WAIT + SLACK) as http:
            net = _network(http)
            create = {"port": {"network_id": net["id"]}}
            assert http.post("/v2.0/ports", json=create).status_code == 201
            with postgres.stopped(url):
                _assert_busy(http.post("/v2.0/ports", json=create))
                _assert_busy(http.get("/v2.0/ports"))
                _assert_busy(http.get(f"/v2.0/networks/{net['id']}"))
                assert http.get("/").status_code == 200  # discovery needs no database
            assert http.post("/v2.0/ports", json=create).status_code == 201
            assert len(http.get("/v2.0/ports").json()["ports"]) == 2
            with postgres.stopped(url):
                pass  # a restart that no request saw: the pool's connections are all dead
            assert http.post("/v2.0/ports", json=create).status_code == 201
            assert http.get(f"/v2.0/networks/{net['id']}").status_code == 200
