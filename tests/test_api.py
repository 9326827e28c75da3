"""The HTTP API in-process: shapes, errors, filters, pages, If-Match, projects."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from portsec.api.app import create_app
from tests.conftest import dump

ALICE = {"X-Project-Id": "alice", "X-Roles": "member"}
BOB = {"X-Project-Id": "bob", "X-Roles": "member"}


@pytest.fixture
def api(db):
    return TestClient(create_app(db))


@pytest.fixture
def net(api):
    network = api.post("/v2.0/networks", json={"network": {"name": "net1"}}).json()["network"]
    api.post("/v2.0/subnets", json={"subnet": {"network_id": network["id"], "cidr": "192.168.1.0/24", "ip_version": 4}})
    return network


def test_discovery_and_extensions(api):
    assert api.get("/").json()["versions"][0]["id"] == "v2.0"
    aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert {"port-security", "allowed-address-pairs", "revision-if-match"} <= aliases
    assert "security-group" not in aliases  # only what is really implemented
    assert api.get("/v2.0/extensions/allowed-address-pairs").json()["extension"]["name"] == "Allowed Address Pairs"
    assert api.get("/v2.0/extensions/tag-ports-during-bulk-creation").status_code == 404


def test_port_lifecycle_and_error_bodies(api, net):
    created = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": "server1"}})
    assert created.status_code == 201
    port = created.json()["port"]
    assert port["revision_number"] == 1 and port["allowed_address_pairs"] == []
    body = {"port": {"allowed_address_pairs": [{"ip_address": "192.168.1.10"}]}}
    updated = api.put(f"/v2.0/ports/{port['id']}", json=body).json()["port"]
    assert updated["allowed_address_pairs"] == [{"mac_address": port["mac_address"], "ip_address": "192.168.1.10"}]
    refused = api.put(f"/v2.0/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    assert refused.status_code == 409
    assert refused.json() == {
        "NeutronError": {
            "type": "AddressPairAndPortSecurityRequired",
            "message": "Port Security must be enabled in order to have allowed address pairs on a port.",
            "detail": "",
        }
    }
    assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    missing = api.get(f"/v2.0/ports/{port['id']}")
    assert missing.status_code == 404 and missing.json()["NeutronError"]["type"] == "PortNotFound"


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"{not json", 400, "Body contains invalid data"),
        (b'{"network": {}}', 400, "Unable to find 'port' in request body"),
        (b'{"port": []}', 400, "Object 'port' contains invalid data"),
        (b'{"port": {"network_id": "x", "bogus": 1}}', 400, "Unrecognized attribute(s) 'bogus'"),
        (b'{"port": {"network_id": "nope"}}', 400, "Invalid input for network_id. Reason: 'nope' is not a valid UUID."),
        (b'{"ports": [{"name": "a"}]}', 400, "Failed to parse request. Required attribute 'network_id' not specified"),
        (b'{"port": {"name": "' + b"x" * 2_000_000 + b'"}}', 413, "Request is too large."),
    ],
)
def test_malformed_bodies_get_4xx_and_change_nothing(api, db, net, raw, status, message):
    before = dump(db)
    response = api.post("/v2.0/ports", content=raw, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["NeutronError"]["message"]) == (status, message)
    assert dump(db) == before


def test_bulk_create_is_all_or_nothing(api, db, net):
    before = dump(db)
    bad = {"ports": [{"network_id": net["id"], "name": "a"}, {"network_id": net["id"], "mac_address": "zz"}]}
    assert api.post("/v2.0/ports", json=bad).status_code == 400
    assert dump(db) == before
    good = {"ports": [{"network_id": net["id"], "name": "a"}, {"network_id": net["id"], "name": "b"}]}
    assert [p["name"] for p in api.post("/v2.0/ports", json=good).json()["ports"]] == ["a", "b"]


def test_filters_fields_sorting_and_pages(api, net):
    for i in range(5):
        api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": f"p{i}"}})
    listed = api.get("/v2.0/ports", params=[("name", "p1"), ("name", "p3"), ("fields", "id"), ("fields", "name")])
    assert sorted(p["name"] for p in listed.json()["ports"]) == ["p1", "p3"]
    assert all(set(p) == {"id", "name"} for p in listed.json()["ports"])
    assert api.get("/v2.0/ports", params={"foo": "1"}).json()["NeutronError"]["message"] == (
        "['foo'] is invalid attribute for filtering"
    )
    assert api.get("/v2.0/ports", params={"limit": "abc"}).json()["NeutronError"]["message"] == (
        "Bad limit request: Limit must be an integer 0 or greater and not 'abc'."
    )
    names, url = [], "/v2.0/ports?sort_key=name&sort_dir=asc&limit=2"
    while url:
        page = api.get(url).json()
        names += [p["name"] for p in page["ports"]]
        url = next((link["href"] for link in page.get("ports_links", []) if link["rel"] == "next"), None)
    assert names == ["p0", "p1", "p2", "p3", "p4"]


def test_if_match(api, net):
    port = api.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).json()["port"]
    stale = api.put(
        f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}}, headers={"If-Match": "revision_number=0"}
    )
    assert stale.status_code == 412
    assert stale.json()["NeutronError"]["message"] == "Constrained to 0, but current revision is 1"
    fresh = api.put(
        f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}}, headers={"If-Match": '"revision_number=1"'}
    )
    assert fresh.json()["port"]["revision_number"] == 2


def test_projects_cannot_see_or_change_each_others_ports(api):
    network = api.post("/v2.0/networks", json={"network": {"name": "a"}}, headers=ALICE).json()["network"]
    port = api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}, headers=ALICE).json()["port"]
    assert "binding:host_id" not in port
    assert api.get("/v2.0/ports", headers=BOB).json()["ports"] == []
    assert api.get(f"/v2.0/ports/{port['id']}", headers=BOB).status_code == 404
    assert api.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}}, headers=BOB).status_code == 404
    assert api.delete(f"/v2.0/ports/{port['id']}", headers=BOB).status_code == 404
    host = api.put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": "hv1"}}, headers=ALICE)
    assert host.status_code == 403 and host.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
