"""Who may do what, through the HTTP API: Neutron's newest default policy, cell by cell.

Every expected cell is derived from Neutron's own defaults (neutron/conf/policies/
network.py, subnet.py, port.py and base.py at the reference commit; reference
neutron-api.md §5), cited per row group, not from portsec's code. Roles are
Keystone's: admin > manager > member > reader, a higher one implying the lower.

The callers: a reader, a member, a manager and an admin of project alpha, and a
member of project beta. The resources, made by an admin before each case:

    alpha-net    alpha's private network (the callers' own), with alpha-subnet
    beta-net     beta's private network (another project's), with beta-subnet
    shared-net   gamma's shared network (owned by another project), with shared-subnet
    alpha-port   alpha's port on alpha-net
    beta-port    beta's port on beta-net
    shared-port  alpha's port on shared-net
    guest-port   beta's port on alpha-net (another project's port on the callers' network)

A refused request answers 403 PolicyNotAuthorized where the caller can see the
resource and 404 where it cannot, and changes nothing.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portsec.api.app import create_app
from portsec.api.auth import NoAuth, TokenAuth, noauth_context
from portsec.api.identity import Identity
from portsec.domain import errors
from portsec.service import ports
from portsec.service.common import Listing
from portsec.store.database import Database
from tests.conftest import dump

CALLERS = {
    "reader": {"X-Project-Id": "alpha", "X-Roles": "reader"},
    "member": {"X-Project-Id": "alpha", "X-Roles": "member"},
    "manager": {"X-Project-Id": "alpha", "X-Roles": "manager"},
    "admin": {"X-Project-Id": "alpha", "X-Roles": "admin"},
    "beta-member": {"X-Project-Id": "beta", "X-Roles": "member"},
}
NETWORKS = {  # name: (project, shared, subnet cidr prefix)
    "alpha-net": ("alpha", False, "10.0.0"),
    "beta-net": ("beta", False, "10.1.0"),
    "shared-net": ("gamma", True, "10.2.0"),
}
PORTS = {  # name: (project, network)
    "alpha-port": ("alpha", "alpha-net"),
    "beta-port": ("beta", "beta-net"),
    "shared-port": ("alpha", "shared-net"),
    "guest-port": ("beta", "alpha-net"),
}
# For list rows: 200 means the item is in the caller's list, 404 that it is not.
SEEN, HIDDEN = 200, 404


def _subnet(network: str) -> str:
    return network.replace("-net", "-subnet")


def _network_of(target: str) -> str:
    return PORTS[target][1] if target in PORTS else target


def _create(api: TestClient, resource: str, body: dict[str, Any]) -> str:
    response = api.post(f"/v2.0/{resource}s", json={resource: body})
    assert response.status_code == 201, response.text
    return str(response.json()[resource]["id"])


def _build_world(api: TestClient) -> dict[str, str]:
    ids: dict[str, str] = {}
    for name, (project, shared, prefix) in NETWORKS.items():
        ids[name] = _create(api, "network", {"name": name, "project_id": project, "shared": shared})
        # The pool stops short of .200, the address the "fixed ip" rows ask for: the world's own ports (random
        # addresses) never take it first.
        pool = [{"start": f"{prefix}.2", "end": f"{prefix}.199"}]
        subnet = {"network_id": ids[name], "cidr": f"{prefix}.0/24", "ip_version": 4, "project_id": project,
                  "allocation_pools": pool}  # fmt: skip
        ids[_subnet(name)] = _create(api, "subnet", subnet)
    for name, (project, network) in PORTS.items():
        ids[name] = _create(api, "port", {"name": name, "project_id": project, "network_id": ids[network]})
    return ids


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The world, built once in a SQLite file that each case copies."""
    path = tmp_path_factory.mktemp("policy") / "world.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    ids = _build_world(TestClient(create_app(db, auth=NoAuth())))
    db.dispose()
    return path, ids


@dataclass
class World:
    db: Database
    api: TestClient
    ids: dict[str, str]


@pytest.fixture
def world(template: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[World]:
    source, ids = template
    shutil.copy(source, tmp_path / "world.db")
    db = Database(f"sqlite:///{tmp_path / 'world.db'}")
    yield World(db, TestClient(create_app(db, auth=NoAuth())), ids)
    db.dispose()


# What a port request sets, by name; an address is taken from the target network's subnet.
def _port_attributes(name: str, network: str, ids: dict[str, str]) -> dict[str, Any]:
    prefix = NETWORKS[network][2]
    return {
        "pairs": {"allowed_address_pairs": [{"ip_address": "192.0.2.10"}]},
        "port security off": {"port_security_enabled": False},
        "mac": {"mac_address": "fa:16:3e:0a:0b:0c"},
        "fixed ip": {"fixed_ips": [{"ip_address": f"{prefix}.200"}]},
        "fixed subnet": {"fixed_ips": [{"subnet_id": ids[_subnet(network)]}]},
        "host": {"binding:host_id": "hv1"},
        "dhcp owner": {"device_owner": "network:dhcp"},
    }[name]


def _request(action: str, target: str, ids: dict[str, str]) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, body) for one row's action on its target."""
    verb, _, rest = action.partition(" ")
    kind, _, attribute = rest.partition(" with ")
    plural = kind.split()[-1].rstrip("s") + "s"  # "shared network" -> "networks"
    if verb == "list":
        return "GET", f"/v2.0/{plural}", None
    if verb == "create":
        return "POST", f"/v2.0/{plural}", _create_body(kind, target, attribute, ids)
    path = f"/v2.0/{plural}/{ids[target]}"
    if verb == "show":
        return "GET", path, None
    if verb == "delete":
        return "DELETE", path, None
    body = _port_attributes(attribute, _network_of(target), ids) if attribute else {"name": "renamed"}
    return "PUT", path, {plural[:-1]: body}


def _create_body(kind: str, target: str, attribute: str, ids: dict[str, str]) -> dict[str, Any]:
    if kind == "network":
        return {"network": {"name": "new"}}
    if kind == "shared network":
        return {"network": {"name": "new", "shared": True}}
    if kind == "subnet":
        return {"subnet": {"network_id": ids[target], "cidr": "10.9.0.0/24", "ip_version": 4}}
    extra = _port_attributes(attribute, target, ids) if attribute else {}
    return {"port": {"network_id": ids[target], **extra}}


@dataclass(frozen=True)
class Row:
    action: str
    target: str
    expected: tuple[int, int, int, int, int]  # reader, member, manager, admin, beta-member


def _rows(action: str, cells: dict[str, tuple[int, int, int, int, int]]) -> list[Row]:
    return [Row(action, target, expected) for target, expected in cells.items()]


# Creating on a network that only its owner's member (or an admin) may use: the pattern of many port rows.
NET_OWNER_MEMBER_CREATE = {
    "alpha-net": (403, 201, 201, 201, 404),
    "beta-net": (404, 404, 404, 201, 201),
    "shared-net": (403, 403, 403, 201, 403),
}
# update_port (admin or the port's project member) AND an attribute rule of admin or network-owner member.
NET_OWNER_MEMBER_UPDATE = {
    "alpha-port": (403, 200, 200, 200, 404),
    "beta-port": (404, 404, 404, 200, 200),
    "shared-port": (403, 403, 403, 200, 404),
    "guest-port": (403, 403, 403, 200, 403),
}

TABLE = [
    # --- networks (neutron/conf/policies/network.py) ---
    # create_network: admin or project member.
    Row("create network", "-", (403, 201, 201, 201, 201)),
    # create_network:shared: admin only.
    Row("create shared network", "-", (403, 403, 403, 201, 403)),
    # get_network: admin, project reader, or rule:shared.
    *_rows("show network", {
        "alpha-net": (200, 200, 200, 200, 404),
        "beta-net": (404, 404, 404, 200, 200),
        "shared-net": (200, 200, 200, 200, 200),
    }),
    *_rows("list networks", {
        "alpha-net": (SEEN, SEEN, SEEN, SEEN, HIDDEN),
        "beta-net": (HIDDEN, HIDDEN, HIDDEN, SEEN, SEEN),
        "shared-net": (SEEN, SEEN, SEEN, SEEN, SEEN),
    }),
    # update_network: admin or project member; 403 where get_network lets the caller see it, else 404.
    *_rows("update network", {
        "alpha-net": (403, 200, 200, 200, 404),
        "beta-net": (404, 404, 404, 200, 200),
        "shared-net": (403, 403, 403, 200, 403),
    }),
    # delete_network: admin or project member. Every network has ports, so who passes the
    # policy meets 409 NetworkInUse: policy comes before the plugin's conflicts.
    *_rows("delete network", {
        "alpha-net": (403, 409, 409, 409, 404),
        "beta-net": (404, 404, 404, 409, 409),
        "shared-net": (403, 403, 403, 409, 403),
    }),
    # --- subnets (neutron/conf/policies/subnet.py) ---
    # create_subnet: admin or network-owner member (a shared network is not enough).
    *_rows("create subnet", {
        "alpha-net": (403, 201, 201, 201, 404),
        "beta-net": (404, 404, 404, 201, 201),
        "shared-net": (403, 403, 403, 201, 403),
    }),
    # get_subnet: admin, project reader, network-owner reader, or rule:shared.
    *_rows("show subnet", {
        "alpha-subnet": (200, 200, 200, 200, 404),
        "beta-subnet": (404, 404, 404, 200, 200),
        "shared-subnet": (200, 200, 200, 200, 200),
    }),
    *_rows("list subnets", {
        "alpha-subnet": (SEEN, SEEN, SEEN, SEEN, HIDDEN),
        "beta-subnet": (HIDDEN, HIDDEN, HIDDEN, SEEN, SEEN),
        "shared-subnet": (SEEN, SEEN, SEEN, SEEN, SEEN),
    }),
    # update_subnet: admin, project member, or network-owner member.
    *_rows("update subnet", {
        "alpha-subnet": (403, 200, 200, 200, 404),
        "beta-subnet": (404, 404, 404, 200, 200),
        "shared-subnet": (403, 403, 403, 200, 403),
    }),
    # delete_subnet: the same; every subnet has allocations, so who passes meets 409 SubnetInUse.
    *_rows("delete subnet", {
        "alpha-subnet": (403, 409, 409, 409, 404),
        "beta-subnet": (404, 404, 404, 409, 409),
        "shared-subnet": (403, 403, 403, 409, 403),
    }),
    # --- ports (neutron/conf/policies/port.py) ---
    # create_port: admin, network-owner member, or rule:shared. On a shared network portsec asks the
    # member role of the caller's project where Neutron asks no role (see service/policy.py): a reader writes nothing.
    *_rows("create port", {
        "alpha-net": (403, 201, 201, 201, 404),
        "beta-net": (404, 404, 404, 201, 201),
        "shared-net": (403, 201, 201, 201, 201),
    }),
    # create_port:allowed_address_pairs(:ip_address), :port_security_enabled, :mac_address,
    # :fixed_ips:ip_address, :device_owner (network:*): admin or network-owner member.
    *_rows("create port with pairs", NET_OWNER_MEMBER_CREATE),
    *_rows("create port with port security off", NET_OWNER_MEMBER_CREATE),
    *_rows("create port with mac", NET_OWNER_MEMBER_CREATE),
    *_rows("create port with fixed ip", NET_OWNER_MEMBER_CREATE),
    *_rows("create port with dhcp owner", NET_OWNER_MEMBER_CREATE),
    # create_port:fixed_ips and :fixed_ips:subnet_id: admin, network-owner member, or rule:shared.
    *_rows("create port with fixed subnet", {
        "alpha-net": (403, 201, 201, 201, 404),
        "beta-net": (404, 404, 404, 201, 201),
        "shared-net": (403, 201, 201, 201, 201),
    }),
    # create_port:binding:host_id: admin (or service).
    *_rows("create port with host", {
        "alpha-net": (403, 403, 403, 201, 404),
        "beta-net": (404, 404, 404, 201, 403),
        "shared-net": (403, 403, 403, 201, 403),
    }),
    # get_port: admin, network-owner reader, or project reader: alpha's callers see guest-port on their network.
    *_rows("show port", {
        "alpha-port": (200, 200, 200, 200, 404),
        "beta-port": (404, 404, 404, 200, 200),
        "shared-port": (200, 200, 200, 200, 404),
        "guest-port": (200, 200, 200, 200, 200),
    }),
    *_rows("list ports", {
        "alpha-port": (SEEN, SEEN, SEEN, SEEN, HIDDEN),
        "beta-port": (HIDDEN, HIDDEN, HIDDEN, SEEN, SEEN),
        "shared-port": (SEEN, SEEN, SEEN, SEEN, HIDDEN),
        "guest-port": (SEEN, SEEN, SEEN, SEEN, SEEN),
    }),
    # update_port: admin or project member (the port's project, not the network's).
    *_rows("update port", {
        "alpha-port": (403, 200, 200, 200, 404),
        "beta-port": (404, 404, 404, 200, 200),
        "shared-port": (403, 200, 200, 200, 404),
        "guest-port": (403, 403, 403, 200, 200),
    }),
    # delete_port: admin, network-owner member, or project member.
    *_rows("delete port", {
        "alpha-port": (403, 204, 204, 204, 404),
        "beta-port": (404, 404, 404, 204, 204),
        "shared-port": (403, 204, 204, 204, 404),
        "guest-port": (403, 204, 204, 204, 204),
    }),
    # update_port AND update_port:allowed_address_pairs(:ip_address), :port_security_enabled,
    # :fixed_ips(:ip_address), :device_owner (network:*): admin or network-owner member.
    *_rows("update port with pairs", NET_OWNER_MEMBER_UPDATE),
    *_rows("update port with port security off", NET_OWNER_MEMBER_UPDATE),
    *_rows("update port with fixed ip", NET_OWNER_MEMBER_UPDATE),
    *_rows("update port with dhcp owner", NET_OWNER_MEMBER_UPDATE),
    # update_port:mac_address: admin or network-owner manager.
    *_rows("update port with mac", {
        "alpha-port": (403, 403, 200, 200, 404),
        "beta-port": (404, 404, 404, 200, 403),
        "shared-port": (403, 403, 403, 200, 404),
        "guest-port": (403, 403, 403, 200, 403),
    }),
    # update_port:binding:host_id: admin (or service).
    *_rows("update port with host", {
        "alpha-port": (403, 403, 403, 200, 404),
        "beta-port": (404, 404, 404, 200, 403),
        "shared-port": (403, 403, 403, 200, 404),
        "guest-port": (403, 403, 403, 200, 403),
    }),
]  # fmt: skip
CASES = [
    pytest.param(row, caller, expected, id=f"{caller}: {row.action} {row.target}")
    for row in TABLE
    for caller, expected in zip(CALLERS, row.expected, strict=True)
]


@pytest.mark.parametrize(("row", "caller", "expected"), CASES)
def test_policy_table(world: World, row: Row, caller: str, expected: int) -> None:
    method, path, body = _request(row.action, row.target, world.ids)
    before = dump(world.db)
    response = world.api.request(method, path, json=body, headers=CALLERS[caller])
    if row.action.startswith("list"):
        assert response.status_code == 200, response.text
        listed = {item["id"] for item in response.json()[path.rsplit("/", 1)[1]]}
        assert (world.ids[row.target] in listed) == (expected == SEEN)
        return
    assert response.status_code == expected, response.text
    if expected >= 400:
        error = response.json()["NeutronError"]
        if expected == 403:
            assert error["type"] == "PolicyNotAuthorized" and error["message"].endswith(" is disallowed by policy")
        if expected == 404:
            assert error["type"] in ("NetworkNotFound", "SubnetNotFound", "PortNotFound")
        assert dump(world.db) == before


def _refusal(response: Any) -> str:
    assert response.status_code == 403, response.text
    error = response.json()["NeutronError"]
    assert error["type"] == "PolicyNotAuthorized"
    return str(error["message"])


def test_refusals_name_the_rules_neutron_checks(world: World) -> None:
    """oslo.policy's message: the action AND one rule per enforced attribute set AND one per sub-key sent."""
    api, ids = world.api, world.ids
    reader, member = CALLERS["reader"], CALLERS["member"]
    made = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=reader)
    assert _refusal(made) == "rule:create_network is disallowed by policy"
    shared = api.post("/v2.0/networks", json={"network": {"shared": True}}, headers=member)
    assert _refusal(shared) == "(rule:create_network and rule:create_network:shared) is disallowed by policy"
    pair = {"port": {"allowed_address_pairs": [{"ip_address": "192.0.2.9", "mac_address": "fa:16:3e:00:00:09"}]}}
    pairs = api.put(f"/v2.0/ports/{ids['shared-port']}", json=pair, headers=member)
    assert _refusal(pairs) == (
        "(rule:update_port and (rule:update_port:allowed_address_pairs and "
        "(rule:update_port:allowed_address_pairs:ip_address and rule:update_port:allowed_address_pairs:mac_address)))"
        " is disallowed by policy"
    )
    body = {
        "network_id": ids["shared-net"],
        "port_security_enabled": False,
        "mac_address": "fa:16:3e:00:00:0a",
        "fixed_ips": [{"ip_address": "10.2.0.77"}],
        "device_owner": "",  # equal to Neutron's default: not checked on create
    }
    created = api.post("/v2.0/ports", json={"port": body}, headers=member)
    assert _refusal(created) == (
        "(((rule:create_port and rule:create_port:mac_address) and "
        "(rule:create_port:fixed_ips and (rule:create_port:fixed_ips:ip_address))) and "
        "rule:create_port:port_security_enabled) is disallowed by policy"
    )
    assert _refusal(api.delete(f"/v2.0/ports/{ids['alpha-port']}", headers=reader)) == (
        "rule:delete_port is disallowed by policy"
    )


def test_validation_comes_before_policy_and_policy_before_revisions(world: World) -> None:
    api, port = world.api, f"/v2.0/ports/{world.ids['alpha-port']}"
    reader = CALLERS["reader"]
    malformed = api.put(port, json={"port": {"mac_address": "zz"}}, headers=reader)
    assert malformed.status_code == 400  # Neutron's body validation runs before its policy hook
    stale = api.put(port, json={"port": {"name": "x"}}, headers={**reader, "If-Match": "revision_number=99"})
    assert stale.status_code == 403  # the revision is compared by the plugin, after policy


def test_noauth_roles_imply_the_lower_ones() -> None:
    manager = noauth_context({"x-project-id": "alpha", "x-roles": "Manager"})
    assert set(manager.roles) == {"manager", "member", "reader"} and not manager.is_admin
    admin = noauth_context({"x-project-id": "alpha", "x-roles": "admin"})
    assert set(admin.roles) == {"admin", "manager", "member", "reader"} and admin.is_admin
    assert noauth_context({"x-project-id": "alpha", "x-roles": "reader"}).roles == ("reader",)
    assert set(noauth_context({}).roles) == {"admin", "manager", "member", "reader"}


def test_a_caller_without_a_known_role_reads_only_shared_networks(world: World) -> None:
    """get_network's rule:shared names no role; every other read needs reader (or a role that implies it)."""
    api, ids = world.api, world.ids
    stranger = {"X-Project-Id": "alpha", "X-Roles": "observer"}
    assert [n["id"] for n in api.get("/v2.0/networks", headers=stranger).json()["networks"]] == [ids["shared-net"]]
    assert [s["id"] for s in api.get("/v2.0/subnets", headers=stranger).json()["subnets"]] == [ids["shared-subnet"]]
    assert api.get("/v2.0/ports", headers=stranger).json()["ports"] == []
    assert api.get(f"/v2.0/networks/{ids['alpha-net']}", headers=stranger).status_code == 404
    assert api.get(f"/v2.0/ports/{ids['alpha-port']}", headers=stranger).status_code == 404


IDENTITY = {
    "secret": "policy-test-secret",
    "projects": [{"name": "alpha"}],
    "users": [
        {"name": "rita", "password": "rita-pw", "roles": {"alpha": ["reader"]}},
        {"name": "mia", "password": "mia-pw", "roles": {"alpha": ["member"]}},
    ],
}


def _token(api: TestClient, user: str) -> dict[str, str]:
    scope = {"project": {"name": "alpha", "domain": {"id": "default"}}}
    who = {"user": {"name": user, "domain": {"name": "Default"}, "password": f"{user}-pw"}}
    body = {"auth": {"identity": {"methods": ["password"], "password": who}, "scope": scope}}
    response = api.post("/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return {"X-Auth-Token": response.headers["X-Subject-Token"]}


def test_a_reader_token_reads_but_may_not_create(sqlite_db: Database) -> None:
    api = TestClient(create_app(sqlite_db, auth=TokenAuth(Identity.from_mapping(IDENTITY))))
    rita, mia = _token(api, "rita"), _token(api, "mia")
    network = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=mia).json()["network"]
    before = dump(sqlite_db)
    assert _refusal(api.post("/v2.0/networks", json={"network": {"name": "mine"}}, headers=rita)) == (
        "rule:create_network is disallowed by policy"
    )
    assert _refusal(api.post("/v2.0/ports", json={"port": {"network_id": network["id"]}}, headers=rita)) == (
        "rule:create_port is disallowed by policy"
    )
    assert dump(sqlite_db) == before
    assert api.get(f"/v2.0/networks/{network['id']}", headers=rita).status_code == 200


def test_the_network_owner_sees_guest_ports_on_its_network(db: Database) -> None:
    """The SQL behind lists, on both backends: the project's ports and every port on the project's networks."""
    ids = _build_world(TestClient(create_app(db, auth=NoAuth())))
    api = TestClient(create_app(db, auth=NoAuth()))
    listed = {p["name"] for p in api.get("/v2.0/ports", headers=CALLERS["reader"]).json()["ports"]}
    assert listed == {"alpha-port", "shared-port", "guest-port"}
    on_network = api.get("/v2.0/ports", params={"network_id": ids["alpha-net"]}, headers=CALLERS["member"])
    assert {p["name"] for p in on_network.json()["ports"]} == {"alpha-port", "guest-port"}
    page = api.get("/v2.0/ports", params={"limit": 1, "marker": ids["guest-port"]}, headers=CALLERS["member"])
    assert page.status_code == 200
    listed = {p["name"] for p in api.get("/v2.0/ports", headers=CALLERS["beta-member"]).json()["ports"]}
    assert listed == {"beta-port", "guest-port"}


# Item 6: nothing leaks ------------------------------------------------------------------------------------


def test_an_attribute_hidden_from_the_caller_is_no_filter(world: World) -> None:
    """binding:host_id is admin-only (get_port:binding:host_id): filtering on it would tell where a port runs.

    Neutron applies the filter for anyone (ML2's port result filter hook); portsec answers a
    non-admin as Neutron answers a filter on an attribute it does not know.
    """
    api, ids = world.api, world.ids
    assert api.put(f"/v2.0/ports/{ids['alpha-port']}", json={"port": {"binding:host_id": "hv1"}}).status_code == 200
    for host in ("hv1", "hv2"):
        response = api.get("/v2.0/ports", params={"binding:host_id": host}, headers=CALLERS["member"])
        assert response.status_code == 400
        assert response.json()["NeutronError"] == {
            "type": "HTTPBadRequest",
            "message": "['binding:host_id'] is invalid attribute for filtering",
            "detail": "",
        }
    by_admin = api.get("/v2.0/ports", params={"binding:host_id": "hv1"}, headers=CALLERS["admin"])
    assert [p["id"] for p in by_admin.json()["ports"]] == [ids["alpha-port"]]
    visible = api.get("/v2.0/ports", params={"binding:vnic_type": "normal"}, headers=CALLERS["member"])
    assert visible.status_code == 200 and len(visible.json()["ports"]) == 3
    member = noauth_context({"x-project-id": "alpha", "x-roles": "member"})
    with world.db.transaction(write=False) as tx, pytest.raises(errors.HTTPBadRequest):
        ports.list_(tx, member, Listing({"binding:host_id": ["hv1"]}))  # the embedded CLI gets the same answer


@pytest.mark.parametrize("entry", [{}, {"ip_address": "10.1.0.99"}], ids=["subnet only", "with an address"])
def test_an_invisible_subnet_in_fixed_ips_is_not_found(world: World, entry: dict[str, str]) -> None:
    """Another project's subnet answers like a random id: 404 SubnetNotFound, not "invalid subnet" (400)."""
    api, ids, member = world.api, world.ids, CALLERS["member"]
    before = dump(world.db)
    for subnet in (ids["beta-subnet"], str(uuid.uuid4())):
        fixed_ips = [{"subnet_id": subnet, **entry}]
        answers = [
            api.post(
                "/v2.0/ports", json={"port": {"network_id": ids["alpha-net"], "fixed_ips": fixed_ips}}, headers=member
            ),
            api.put(f"/v2.0/ports/{ids['alpha-port']}", json={"port": {"fixed_ips": fixed_ips}}, headers=member),
        ]
        for response in answers:
            assert response.status_code == 404, response.text
            assert response.json()["NeutronError"]["message"] == f"Subnet {subnet} could not be found."
    assert dump(world.db) == before
    # A subnet the caller may see, on another network, is still Neutron's 400.
    visible = [{"subnet_id": ids["shared-subnet"]}]
    wrong = api.post(
        "/v2.0/ports", json={"port": {"network_id": ids["alpha-net"], "fixed_ips": visible}}, headers=member
    )
    assert wrong.status_code == 400 and wrong.json()["NeutronError"]["type"] == "InvalidInput"
