"""What tempest and neutron-tempest-plugin found, each answer checked against a real Neutron (issue 12)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from portsec.api.app import create_app

ALICE = {"X-Project-Id": "alice", "X-Roles": "member"}


@pytest.fixture
def api(db):
    return TestClient(create_app(db))


def _network(api, headers=None, **attrs):
    response = api.post("/v2.0/networks", json={"network": {"name": "n", **attrs}}, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()["network"]


def _subnet(api, network_id, cidr, headers=None, **attrs):
    body = {"network_id": network_id, "cidr": cidr, "ip_version": 6 if ":" in cidr else 4, **attrs}
    response = api.post("/v2.0/subnets", json={"subnet": body}, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()["subnet"]


def _ids(api, path, headers=None):
    response = api.get(path, headers=headers or {})
    assert response.status_code == 200, response.text
    collection = path.split("?")[0].rsplit("/", 1)[1]
    return {item["id"] for item in response.json()[collection]}


# 1. shared is a subnet filter: it follows the network ---------------------------------------------------


def test_subnets_filter_by_their_networks_shared(api):
    shared = _subnet(api, _network(api, shared=True)["id"], "10.0.1.0/24")
    private = _subnet(api, _network(api)["id"], "10.0.2.0/24")
    assert _ids(api, "/v2.0/subnets?shared=False") == {private["id"]}
    assert _ids(api, "/v2.0/subnets?shared=True") == {shared["id"]}
    assert _ids(api, "/v2.0/subnets?shared=false&fields=id") == {private["id"]}
    # A project member sees the shared subnet and its own.
    mine = _subnet(api, _network(api, ALICE)["id"], "10.0.3.0/24", ALICE)
    assert _ids(api, "/v2.0/subnets?shared=False", ALICE) == {mine["id"]}
    assert _ids(api, "/v2.0/subnets?shared=True", ALICE) == {shared["id"]}


def test_subnet_shared_filter_refuses_a_non_boolean(api):
    response = api.get("/v2.0/subnets?shared=maybe")
    assert response.status_code == 400
    assert (
        response.json()["NeutronError"]["message"]
        == "Invalid input for operation: 'maybe' cannot be converted to boolean."
    )


# 2. every attribute a resource shows filters by its shown value -----------------------------------------


def test_router_external_filters_by_its_shown_value(api):
    networks = {_network(api)["id"], _network(api)["id"]}
    assert _ids(api, "/v2.0/networks?router:external=False") == networks
    assert _ids(api, "/v2.0/networks?router:external=True") == set()
    # Neutron's hook reads the first value only.
    assert _ids(api, "/v2.0/networks?router:external=false&router:external=true") == networks


def test_router_external_filter_refuses_a_non_boolean(api):
    response = api.get("/v2.0/networks?router:external=yes-please")
    assert response.status_code == 400


def test_subnetpool_id_filter_matches_no_string(api):
    # Every subnet shows subnetpool_id null, and no query-string value equals null (Neutron: column IN (values)).
    _subnet(api, _network(api)["id"], "10.0.1.0/24")
    assert _ids(api, "/v2.0/subnets?subnetpool_id=None") == set()


def test_port_security_groups_filter_matches_no_group(api):
    network = _network(api)
    api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}})
    group = "3f1e4a52-1b89-4f6a-9a77-7b0d1c2e3f40"
    assert _ids(api, f"/v2.0/ports?security_groups={group}") == set()


@pytest.mark.parametrize(
    ("collection", "attribute"),
    [
        ("networks", "router:external"),
        ("networks", "shared"),
        ("networks", "mtu"),
        ("networks", "port_security_enabled"),
        ("networks", "admin_state_up"),
        ("networks", "status"),
        ("networks", "description"),
        ("networks", "revision_number"),
        ("subnets", "ip_version"),
        ("subnets", "cidr"),
        ("subnets", "gateway_ip"),
        ("subnets", "enable_dhcp"),
        ("subnets", "network_id"),
        ("ports", "mac_address"),
        ("ports", "device_owner"),
        ("ports", "status"),
        ("ports", "binding:vnic_type"),
        ("ports", "ip_allocation"),
        ("ports", "admin_state_up"),
    ],
)
def test_each_filterable_attribute_finds_the_resource_by_its_shown_value(api, collection, attribute):
    network = _network(api)
    subnet = _subnet(api, network["id"], "10.0.9.0/24")
    port = api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}).json()["port"]
    shown = {"networks": network, "subnets": subnet, "ports": port}[collection]
    shown = api.get(f"/v2.0/{collection}/{shown['id']}").json()[collection[:-1]]
    value = shown[attribute]
    text = str(value) if not isinstance(value, str) else value
    response = api.get(f"/v2.0/{collection}", params={attribute: text})
    assert response.status_code == 200, response.text
    assert shown["id"] in {item["id"] for item in response.json()[collection]}


def test_hidden_binding_filters_stay_refused_for_members(api):
    response = api.get("/v2.0/ports?binding:host_id=hv1", headers=ALICE)
    assert response.status_code == 400
    assert response.json()["NeutronError"]["message"] == "['binding:host_id'] is invalid attribute for filtering"


# 3. the root lists the network API only -----------------------------------------------------------------


def test_root_lists_only_the_network_api(api):
    assert api.get("/").json() == {
        "versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": "http://testserver/v2.0/"}]}]
    }


def test_root_with_identity_lists_only_the_network_api_and_v3_still_discovers(sqlite_db):
    from portsec.api.auth import TokenAuth
    from portsec.api.identity import Identity

    config = {"secret": "s" * 32, "projects": [{"name": "alpha"}], "users": []}
    api = TestClient(create_app(sqlite_db, auth=TokenAuth(Identity.from_mapping(config))), base_url="http://h:9696")
    assert api.get("/").json() == {
        "versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": "http://h:9696/v2.0/"}]}]
    }
    for path in ("/v3", "/v3/"):
        version = api.get(path).json()["version"]
        assert (version["id"], version["links"]) == ("v3.14", [{"rel": "self", "href": "http://h:9696/v3/"}])


# 4. writable MTU (net-mtu-writable) ---------------------------------------------------------------------


def _error(response, status):
    assert response.status_code == status, response.text
    return response.json()["NeutronError"]


def test_net_mtu_writable_is_listed_as_neutron_lists_it(api):
    assert api.get("/v2.0/extensions/net-mtu-writable").json() == {
        "extension": {
            "alias": "net-mtu-writable",
            "name": "Network MTU (writable)",
            "description": "Provides a writable MTU attribute for a network resource.",
            "updated": "2017-07-12T00:00:00-00:00",
            "links": [],
        }
    }


def test_mtu_is_set_on_create_and_update(api):
    assert _network(api)["mtu"] == 1500
    network = _network(api, ALICE, mtu=1400)
    assert network["mtu"] == 1400
    updated = api.put(f"/v2.0/networks/{network['id']}", json={"network": {"mtu": "1300"}}, headers=ALICE)
    assert updated.status_code == 200, updated.text
    assert updated.json()["network"]["mtu"] == 1300
    assert updated.json()["network"]["revision_number"] == network["revision_number"] + 1
    # 0 means the largest, as when none is given.
    reset = api.put(f"/v2.0/networks/{network['id']}", json={"network": {"mtu": 0}}, headers=ALICE)
    assert reset.json()["network"]["mtu"] == 1500


@pytest.mark.parametrize(
    ("mtu", "message"),
    [
        (9000, "Invalid input for operation: Requested MTU is too big, maximum is 1500."),
        (-1, "Invalid input for mtu. Reason: '-1' should be non-negative."),
        ("abc", "Invalid input for operation: 'abc' is not an integer."),
    ],
)
def test_mtu_values_neutron_refuses(api, mtu, message):
    assert _error(api.post("/v2.0/networks", json={"network": {"mtu": mtu}}), 400)["message"] == message
    network = _network(api)
    assert _error(api.put(f"/v2.0/networks/{network['id']}", json={"network": {"mtu": mtu}}), 400)["message"] == message


def test_subnet_create_needs_an_mtu_its_ip_version_can_use(api):
    tiny = _network(api, mtu=67)
    body = {"network_id": tiny["id"], "cidr": "10.0.0.0/24", "ip_version": 4}
    error = _error(api.post("/v2.0/subnets", json={"subnet": body}), 409)
    assert error == {
        "type": "NetworkMTUSubnetConflict",
        "message": f"MTU of {tiny['id']} is not valid, subnet requires a minimum of 68",
        "detail": "",
    }
    small = _network(api, mtu=1279)
    _subnet(api, small["id"], "10.0.1.0/24")
    body = {"network_id": small["id"], "cidr": "2001:db8::/64", "ip_version": 6}
    error = _error(api.post("/v2.0/subnets", json={"subnet": body}), 409)
    assert error["message"] == f"MTU of {small['id']} is not valid, subnet requires a minimum of 1280"
    assert (
        api.get(f"/v2.0/networks/{small['id']}").json()["network"]["revision_number"] == small["revision_number"] + 1
    )  # one subnet only


def test_network_mtu_update_must_suit_its_subnets(api):
    v4 = _network(api)
    _subnet(api, v4["id"], "10.0.0.0/24")
    error = _error(api.put(f"/v2.0/networks/{v4['id']}", json={"network": {"mtu": 67}}), 409)
    assert error["message"] == f"MTU of {v4['id']} is not valid, subnet requires a minimum of 68"
    assert api.put(f"/v2.0/networks/{v4['id']}", json={"network": {"mtu": 68}}).json()["network"]["mtu"] == 68
    v6 = _network(api)
    _subnet(api, v6["id"], "2001:db8::/64")
    error = _error(api.put(f"/v2.0/networks/{v6['id']}", json={"network": {"mtu": 1279}}), 409)
    assert error["message"] == f"MTU of {v6['id']} is not valid, subnet requires a minimum of 1280"
    assert api.get(f"/v2.0/networks/{v6['id']}").json()["network"]["mtu"] == 1500
    # Neutron checks the requested value: 0 is below every minimum, although it would mean 1500.
    error = _error(api.put(f"/v2.0/networks/{v6['id']}", json={"network": {"mtu": 0}}), 409)
    assert error["message"] == f"MTU of {v6['id']} is not valid, subnet requires a minimum of 68"


def test_mtu_policy_is_admin_or_owner(api):
    network = _network(api, ALICE)
    assert api.put(f"/v2.0/networks/{network['id']}", json={"network": {"mtu": 1400}}).status_code == 200  # admin
    bob = {"X-Project-Id": "bob", "X-Roles": "member"}
    refused = api.put(f"/v2.0/networks/{network['id']}", json={"network": {"mtu": 1300}}, headers=bob)
    assert refused.status_code == 404  # another project's network is not even visible


def test_cli_network_create_and_set_mtu(tmp_path, monkeypatch):
    from tests.cli import run

    monkeypatch.setenv("PORTSEC_DATABASE_URL", f"sqlite:///{tmp_path}/portsec.db")
    created = run("network create net1 --mtu 1400 -f value -c mtu")
    assert (created.code, created.out) == (0, "1400\n"), created.err
    assert run("network set net1 --mtu 1300").code == 0
    assert run("network show net1 -f value -c mtu").out == "1300\n"
    refused = run("network set net1 --mtu 9000")
    assert refused.code == 1
    assert "Requested MTU is too big, maximum is 1500" in refused.err


# 5. deleting an automatic-address (SLAAC, DHCPv6-stateless) subnet ----------------------------------------


def _changes(db, port_id):
    import sqlalchemy as sa

    from portsec.store.schema import changes

    with db.engine.connect() as conn:
        stmt = sa.select(changes.c.revision_number, changes.c.operation).where(changes.c.resource_id == port_id)
        return [tuple(row) for row in conn.execute(stmt.order_by(changes.c.seq))]


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_deleting_an_auto_address_subnet_takes_the_address_off_its_ports(api, db, mode):
    network = _network(api)
    auto = _subnet(api, network["id"], "2001:db8::/64", ipv6_ra_mode=mode, ipv6_address_mode=mode)
    only = api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}).json()["port"]
    assert [f["subnet_id"] for f in only["fixed_ips"]] == [auto["id"]]
    v4 = _subnet(api, network["id"], "10.0.0.0/24")
    both = api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}).json()["port"]
    assert {f["subnet_id"] for f in both["fixed_ips"]} == {auto["id"], v4["id"]}

    assert api.delete(f"/v2.0/subnets/{auto['id']}").status_code == 204
    after_only = api.get(f"/v2.0/ports/{only['id']}").json()["port"]
    assert (after_only["fixed_ips"], after_only["revision_number"]) == ([], only["revision_number"] + 1)
    after_both = api.get(f"/v2.0/ports/{both['id']}").json()["port"]
    assert [f["subnet_id"] for f in after_both["fixed_ips"]] == [v4["id"]]
    assert after_both["revision_number"] == both["revision_number"] + 1
    assert _changes(db, only["id"])[-1] == (only["revision_number"] + 1, "update")
    assert api.get(f"/v2.0/subnets/{auto['id']}").status_code == 404


def test_a_stateful_or_ipv4_address_still_blocks_the_subnet_delete(api):
    network = _network(api)
    stateful = _subnet(
        api, network["id"], "2001:db8::/64", ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful"
    )
    v4 = _subnet(api, network["id"], "10.0.0.0/24")
    port = api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}).json()["port"]
    for subnet in (stateful, v4):
        assert _error(api.delete(f"/v2.0/subnets/{subnet['id']}"), 409)["type"] == "SubnetInUse"
    assert api.get(f"/v2.0/ports/{port['id']}").json()["port"]["fixed_ips"] == port["fixed_ips"]


def test_a_router_interface_keeps_an_auto_address_subnet(api):
    network = _network(api)
    auto = _subnet(api, network["id"], "2001:db8::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    body = {"network_id": network["id"], "device_owner": "network:router_interface"}
    assert api.post("/v2.0/ports", json={"port": body}).status_code == 201
    assert _error(api.delete(f"/v2.0/subnets/{auto['id']}"), 409)["type"] == "SubnetInUse"


# 8. ipv6_ra_mode and ipv6_address_mode are checked on create as Neutron checks them (tempest's
#    NetworksTestDHCPv6.test_dhcpv6_invalid_options): Neutron's _validate_subnet, in its order.

_INVALID = "Invalid input for operation: "


@pytest.mark.parametrize(
    ("cidr", "attrs", "message"),
    [
        ("2001:db8::/64", {"ipv6_ra_mode": "dhcpv6-stateless", "ipv6_address_mode": "dhcpv6-stateful"},
         "ipv6_ra_mode set to 'dhcpv6-stateless' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid. "
         "If both attributes are set, they must be the same value."),
        ("2001:db8::/64", {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateless"},
         "ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateless' is not valid. "
         "If both attributes are set, they must be the same value."),
        # Neutron's InvalidInput adds a period to a message that already ends in one.
        ("2001:db8::/64", {"ipv6_ra_mode": "slaac", "enable_dhcp": False},
         "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.."),
        ("2001:db8::/64", {"ipv6_address_mode": "dhcpv6-stateful", "enable_dhcp": False},
         "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.."),
        # The DHCP check comes before the combination check.
        ("2001:db8::/64", {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful", "enable_dhcp": False},
         "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.."),
        ("2001:db8::/80", {"ipv6_address_mode": "slaac"},
         "Invalid CIDR 2001:db8::/80 for IPv6 address mode. OpenStack uses the EUI-64 address format, "
         "which requires the prefix to be /64.."),
        ("2001:db8::/56", {"ipv6_ra_mode": "dhcpv6-stateless"},
         "Invalid CIDR 2001:db8::/56 for IPv6 address mode. OpenStack uses the EUI-64 address format, "
         "which requires the prefix to be /64.."),
        ("10.0.0.0/24", {"ipv6_ra_mode": "slaac"}, "ipv6_ra_mode is not valid when ip_version is 4."),
        ("10.0.0.0/24", {"ipv6_address_mode": "dhcpv6-stateful"}, "ipv6_address_mode is not valid when ip_version is 4."),
    ],
)  # fmt: skip
def test_ipv6_modes_neutron_refuses(api, cidr, attrs, message):
    network = _network(api)
    body = {"network_id": network["id"], "cidr": cidr, "ip_version": 6 if ":" in cidr else 4, **attrs}
    error = _error(api.post("/v2.0/subnets", json={"subnet": body}), 400)
    assert (error["type"], error["message"]) == ("InvalidInput", _INVALID + message)
    assert api.get(f"/v2.0/subnets?network_id={network['id']}").json()["subnets"] == []


@pytest.mark.parametrize(
    ("cidr", "attrs"),
    [
        ("2001:db8::/64", {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        ("2001:db8::/64", {"ipv6_ra_mode": "dhcpv6-stateless"}),
        ("2001:db8::/64", {"ipv6_address_mode": "dhcpv6-stateless"}),
        # A stateful subnet allocates: any prefix length.
        ("2001:db8::/80", {"ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful"}),
        ("2001:db8::/64", {"enable_dhcp": False}),
    ],
)
def test_ipv6_modes_neutron_accepts(api, cidr, attrs):
    subnet = _subnet(api, _network(api)["id"], cidr, **attrs)
    assert (subnet["ipv6_ra_mode"], subnet["ipv6_address_mode"]) == (
        attrs.get("ipv6_ra_mode"),
        attrs.get("ipv6_address_mode"),
    )
