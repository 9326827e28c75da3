"""Neutron's answers for the small cases a review found: netmask pairs, If-Match spellings, negative limits."""

from __future__ import annotations

import os
import subprocess

import pytest
from fastapi.testclient import TestClient

from portsec.api.app import create_app
from tests.conftest import dump
from tests.server import PORTSEC


@pytest.fixture
def api(sqlite_db):
    return TestClient(create_app(sqlite_db))


@pytest.fixture
def port(api):
    network = api.post("/v2.0/networks", json={"network": {"name": "net1"}}).json()["network"]
    return api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}).json()["port"]


@pytest.mark.parametrize("pair", ["10.0.0.1/255.255.255.0", "10.0.0.1/0.0.0.255", "2001:db8::1/ffff::"])
def test_a_pair_in_netmask_form_is_refused_and_not_stored(api, port, sqlite_db, pair):
    before = dump(sqlite_db)
    answer = api.put(f"/v2.0/ports/{port['id']}", json={"port": {"allowed_address_pairs": [{"ip_address": pair}]}})
    assert answer.status_code == 400
    assert answer.json()["NeutronError"] == {
        "type": "HTTPBadRequest",
        "message": f"'{pair}' is not a valid IP subnet",
        "detail": "",
    }
    assert dump(sqlite_db) == before


def test_if_match_not_a_number_ends_in_one_period(api, port):
    answer = api.put(
        f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}}, headers={"If-Match": "revision_number=abc"}
    )
    assert answer.status_code == 400
    assert answer.json()["NeutronError"]["message"] == (
        "Bad if-match request: Revision number etag must be in the format of revision_number=<int>."
    )


def test_if_match_minus_one_is_a_failed_constraint(api, port):
    """Neutron parses the revision with int(): -1 is a number that never matches (412), not a bad header."""
    answer = api.put(
        f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}}, headers={"If-Match": "revision_number=-1"}
    )
    assert answer.status_code == 412
    assert answer.json()["NeutronError"] == {
        "type": "RevisionNumberConstraintFailed",
        "message": "Constrained to -1, but current revision is 1",
        "detail": "",
    }
    assert api.get(f"/v2.0/ports/{port['id']}").json()["port"]["name"] == ""


@pytest.mark.parametrize("value", ["-1", "ten"])
def test_max_allowed_address_pairs_must_be_a_count(tmp_path, value):
    url = f"sqlite:///{tmp_path}/p.db"
    flag = subprocess.run([PORTSEC, "--database-url", url, "--max-allowed-address-pairs", value, "network", "list"],
                          capture_output=True, text=True)  # fmt: skip
    env = subprocess.run([PORTSEC, "--database-url", url, "network", "list"], capture_output=True, text=True,
                         env={**os.environ, "PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS": value})  # fmt: skip
    for result in (flag, env):
        assert result.returncode == 2
        assert "argument --max-allowed-address-pairs:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p.db").exists()
