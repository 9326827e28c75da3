"""Quotas: Neutron's per-project limits on creates (single, bulk, racing workers), its quota API, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from openstack.network.v2 import quota as sdk_quota
from openstackclient.common import quota as osc_quota

from portsec.api.app import create_app
from portsec.cli import quotas as cli_quotas
from portsec.domain import errors
from portsec.domain.quotas import QuotaDefaults
from portsec.service import networks
from portsec.service.common import Limits
from portsec.store.database import Database
from tests import postgres
from tests.cli import run
from tests.conftest import dump
from tests.server import serve

ALICE = {"X-Project-Id": "alice", "X-Roles": "member"}
BOB = {"X-Project-Id": "bob", "X-Roles": "member"}
DEFAULTS = {"network": 100, "subnet": 100, "port": 500}
OPENSTACK = str(Path(sys.executable).with_name("openstack"))


@pytest.fixture
def api(db):
    return TestClient(create_app(db))


def _post(api: TestClient, resource: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return api.post(f"/v2.0/{resource}s", json={resource: body}, headers=headers or {})


def _ok(api: TestClient, resource: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    response = _post(api, resource, body, headers)
    assert response.status_code == 201, response.text
    return response.json()[resource]


def _set(api: TestClient, project: str, **limits: Any) -> Any:
    response = api.put(f"/v2.0/quotas/{project}", json={"quota": limits})
    assert response.status_code == 200, response.text
    return response.json()["quota"]


def _over(resource: str) -> dict[str, Any]:
    return {
        "NeutronError": {
            "type": "OverQuota",
            "message": f"Quota exceeded for resources: ['{resource}'].",
            "detail": "",
        }
    }


# The check on create ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["network", "subnet", "port"])
def test_a_create_beyond_the_quota_is_refused_and_changes_nothing(api, db, resource):
    net = _ok(api, "network", {"name": "n1"})
    _ok(api, "subnet", {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4})
    other = _ok(api, "network", {"name": "n2"})
    used = {"network": 2, "subnet": 1, "port": 0}[resource]
    _set(api, "admin", **{resource: used})
    body = {
        "network": {"name": "n3"},
        "subnet": {"network_id": other["id"], "cidr": "10.1.0.0/24", "ip_version": 4},
        "port": {"network_id": net["id"]},
    }[resource]
    before = dump(db)
    refused = _post(api, resource, body)
    assert (refused.status_code, refused.json()) == (409, _over(resource))
    assert dump(db) == before
    _set(api, "admin", **{resource: -1})  # -1: no limit
    assert _post(api, resource, body).status_code == 201


def test_a_bulk_create_counts_every_item_all_or_nothing(api, db):
    net = _ok(api, "network", {"name": "n"})
    _ok(api, "subnet", {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4})
    _ok(api, "port", {"network_id": net["id"]})
    _set(api, "admin", port=3)
    before = dump(db)
    three = api.post("/v2.0/ports", json={"ports": [{"network_id": net["id"], "name": f"b{i}"} for i in range(3)]})
    assert (three.status_code, three.json()) == (409, _over("port"))
    assert dump(db) == before
    two = api.post("/v2.0/ports", json={"ports": [{"network_id": net["id"], "name": f"b{i}"} for i in range(2)]})
    assert [p["name"] for p in two.json()["ports"]] == ["b0", "b1"]
    assert _post(api, "port", {"network_id": net["id"]}).json() == _over("port")


def test_configured_defaults_apply_to_projects_without_their_own(db):
    api = TestClient(create_app(db, Limits(quotas=QuotaDefaults(network=2, subnet=-1, port=7))))
    assert api.get("/v2.0/quotas/alice", headers=ALICE).json() == {"quota": {"network": 2, "subnet": -1, "port": 7}}
    _ok(api, "network", {"name": "a"}, ALICE)
    _ok(api, "network", {"name": "b"}, ALICE)
    assert _post(api, "network", {"name": "c"}, ALICE).json() == _over("network")
    _ok(api, "network", {"name": "c"}, BOB)  # per project
    _set(api, "alice", network=3)
    _ok(api, "network", {"name": "c"}, ALICE)


def test_the_quota_of_the_resources_project_counts_not_the_callers(api):
    _set(api, "tenant-2", network=1)
    _ok(api, "network", {"name": "a", "project_id": "tenant-2"})
    assert _post(api, "network", {"name": "b", "tenant_id": "tenant-2"}).json() == _over("network")
    _ok(api, "network", {"name": "b"})  # the admin's own project is not tenant-2


def test_the_check_comes_after_body_validation_and_before_policy(api):
    bobs = _ok(api, "network", {"name": "bobs"}, BOB)
    _set(api, "alice", network=0, port=0)
    # A malformed body is refused as such, quota or not.
    bad = _post(api, "port", {"network_id": bobs["id"], "mac_address": "zz"}, ALICE)
    assert bad.status_code == 400 and bad.json()["NeutronError"]["type"] == "HTTPBadRequest"
    # Over quota wins over what policy or the plugin would say (403 for a shared network, 404 for bob's).
    assert _post(api, "network", {"name": "x", "shared": True}, ALICE).json() == _over("network")
    assert _post(api, "port", {"network_id": bobs["id"]}, ALICE).json() == _over("port")


def _wait_until_waiting_or_done(db: Database, thread: threading.Thread) -> None:
    """Until ``thread`` waits for a lock held by the caller's transaction (PostgreSQL shows it), or has finished."""
    while thread.is_alive():
        if db.engine.dialect.name != "postgresql":
            return  # SQLite: the writer lock makes it wait whenever it starts; nothing shows it
        with db.engine.connect() as conn:
            waiting = conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
        if waiting:
            return
        time.sleep(0.01)


def test_two_transactions_racing_for_the_last_slot_cannot_both_take_it(db, admin):
    """B counts while A, which took the last slot, has not committed: B must wait for A, then see it."""
    limits = Limits(quotas=QuotaDefaults(network=1))
    outcome: dict[str, Any] = {}

    def b() -> None:
        try:
            outcome["b"] = db.run(lambda tx: networks.create(tx, admin, {"name": "b"}, limits))
        except errors.OverQuota as err:
            outcome["b"] = err

    with db.transaction() as tx:
        networks.create(tx, admin, {"name": "a"}, limits)
        racer = threading.Thread(target=b)
        racer.start()
        _wait_until_waiting_or_done(db, racer)
    racer.join(timeout=60)
    assert isinstance(outcome["b"], errors.OverQuota)
    with db.transaction(write=False) as tx:
        assert [n.name for n in networks.list_(tx, admin)] == ["a"]


@pytest.mark.postgresql
def test_workers_racing_for_the_last_slots(postgres_url):
    url = postgres.fresh_database(postgres_url, "quota_race")
    with serve(url, workers=4) as endpoint, httpx.Client(base_url=endpoint + "/v2.0", timeout=60) as http:
        net = http.post("/networks", json={"network": {"name": "n"}}).json()["network"]
        http.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})
        assert http.put("/quotas/admin", json={"quota": {"port": 10}}).status_code == 200

        def create(client: int) -> list[int]:
            with httpx.Client(base_url=endpoint + "/v2.0", timeout=60) as own:
                body = {"network_id": net["id"], "name": f"c{client}"}
                return [own.post("/ports", json={"port": body}).status_code for _ in range(5)]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(create, range(8)) for s in batch]
        assert sorted(statuses) == [201] * 10 + [409] * 30
        assert len(http.get("/ports").json()["ports"]) == 10
        assert http.get("/quotas/admin/details").json()["quota"]["port"] == {"limit": 10, "used": 10, "reserved": 0}


# The quota API ------------------------------------------------------------------------------------------------------


def test_quota_api_bodies(api):
    assert "quotas" in {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert api.get("/v2.0/extensions/quota_details").json()["extension"]["name"] == "Quota details management support"
    assert api.get("/v2.0/quotas/alice").json() == {"quota": DEFAULTS}
    assert api.get("/v2.0/quotas").json() == {"quotas": []}  # only projects with their own quotas
    net = _ok(api, "network", {"name": "a"}, ALICE)
    _ok(api, "subnet", {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}, ALICE)

    assert _set(api, "alice", network=5, port="20", check_limit=True) == {"network": 5, "subnet": 100, "port": 20}
    assert api.get("/v2.0/quotas/alice", headers=ALICE).json() == {"quota": {"network": 5, "subnet": 100, "port": 20}}
    assert api.get("/v2.0/quotas/alice/default", headers=ALICE).json() == {"quota": DEFAULTS}
    assert api.get("/v2.0/quotas/alice/details", headers=ALICE).json() == {
        "quota": {
            "network": {"limit": 5, "used": 1, "reserved": 0},
            "subnet": {"limit": 100, "used": 1, "reserved": 0},
            "port": {"limit": 20, "used": 0, "reserved": 0},
        }
    }
    assert api.get("/v2.0/quotas").json() == {
        "quotas": [{"network": 5, "subnet": 100, "port": 20, "project_id": "alice", "tenant_id": "alice"}]
    }
    assert api.get("/v2.0/quotas/project", headers=ALICE).json() == {"project": {"project_id": "alice"}}
    assert api.get("/v2.0/quotas/tenant", headers=ALICE).json() == {"tenant": {"tenant_id": "alice"}}

    deleted = api.delete("/v2.0/quotas/alice")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.get("/v2.0/quotas/alice").json() == {"quota": DEFAULTS}
    assert api.get("/v2.0/quotas").json() == {"quotas": []}
    again = api.delete("/v2.0/quotas/alice")
    assert again.status_code == 404
    assert again.json()["NeutronError"] == {
        "type": "TenantQuotaNotFound",
        "message": "Quota for project alice could not be found.",
        "detail": "",
    }


def _refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["NeutronError"]
    return response.status_code, error["type"], error["message"]


@pytest.mark.parametrize("who", [ALICE, {"X-Project-Id": "alice", "X-Roles": "manager,member"}])
def test_a_project_reads_its_own_quotas_only_an_admin_changes_them(api, db, who):
    assert api.get("/v2.0/quotas/alice", headers=who).status_code == 200
    assert api.get("/v2.0/quotas/alice/details", headers=who).status_code == 200
    policy = (403, "PolicyNotAuthorized", "rule:get_quota is disallowed by policy")
    assert _refusal(api.get("/v2.0/quotas/bob", headers=who)) == policy
    assert _refusal(api.get("/v2.0/quotas/bob/default", headers=who)) == policy
    assert _refusal(api.get("/v2.0/quotas", headers=who)) == policy
    assert _refusal(api.get("/v2.0/quotas/bob/details", headers=who)) == (
        403,
        "AdminRequired",
        "User does not have admin privileges: Only admin is authorized to access quotas for another project.",
    )
    before = dump(db)
    update = (403, "PolicyNotAuthorized", "rule:update_quota is disallowed by policy")
    assert _refusal(api.put("/v2.0/quotas/alice", json={"quota": {"network": 500}}, headers=who)) == update
    # Neutron checks the policy before it reads the body.
    assert _refusal(api.put("/v2.0/quotas/alice", content=b"{not json", headers=who)) == update
    delete = (403, "PolicyNotAuthorized", "rule:delete_quota is disallowed by policy")
    assert _refusal(api.delete("/v2.0/quotas/alice", headers=who)) == delete
    assert dump(db) == before


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        ({"quota": {"network": "abc"}}, "InvalidInput", "Invalid input for operation: 'abc' is not an integer."),
        ({"quota": {"network": 2.5}}, "InvalidInput", "Invalid input for operation: '2.5' is not an integer."),
        ({"quota": {"network": True}}, "InvalidInput", "Invalid input for operation: 'True' is not an integer."),
        ({"quota": {"network": None}}, "InvalidInput", "Invalid input for operation: 'None' is not an integer."),
        ({"quota": {"subnet": -2}}, "HTTPBadRequest", "Invalid input for subnet. Reason: '-2' is too small - must be at least '-1'."),
        ({"quota": {"port": 2**31}}, "HTTPBadRequest", "Invalid input for port. Reason: '2147483648' is too large - must be no larger than '2147483647'."),
        ({"quota": {"router": 10}}, "HTTPBadRequest", "Unrecognized attribute(s) 'router'"),
        ({"quota": [1]}, "HTTPBadRequest", "Object 'quota' contains invalid data"),
        ({"quotas": {"network": 1}}, "HTTPBadRequest", "Unable to find 'quota' in request body"),
        ({"quota": {"network": 1}, "extra": 1}, "HTTPBadRequest", "Unrecognized attribute(s) 'extra'"),
    ],
)  # fmt: skip
def test_bad_quota_bodies_get_neutrons_400_and_change_nothing(api, db, body, kind, message):
    before = dump(db)
    assert _refusal(api.put("/v2.0/quotas/alice", json=body)) == (400, kind, message)
    assert dump(db) == before


def test_a_limit_below_what_is_in_use_needs_force(api):
    for name in ("a", "b"):
        _ok(api, "network", {"name": name}, ALICE)
    assert _refusal(api.put("/v2.0/quotas/alice", json={"quota": {"network": 1}})) == (
        400,
        "HTTPBadRequest",
        "Quota limit 1 for network must be greater than or equal to already used 2",
    )
    assert _set(api, "alice", network=2)["network"] == 2
    assert _set(api, "alice", network=1, force=True)["network"] == 1
    assert _post(api, "network", {"name": "c"}, ALICE).json() == _over("network")


def test_project_ids_the_store_cannot_take_are_refused(api):
    assert api.get("/v2.0/quotas/a%00b").status_code == 400
    assert api.put("/v2.0/quotas/a%00b", json={"quota": {"port": 1}}).status_code == 400
    long = "p" * 256
    assert _refusal(api.put(f"/v2.0/quotas/{long}", json={"quota": {"port": 1}}))[:2] == (400, "HTTPBadRequest")
    assert api.get(f"/v2.0/quotas/{long}").json() == {"quota": DEFAULTS}


def test_openapi_describes_the_quota_routes(api):
    described = api.get("/openapi.json").json()
    paths = described["paths"]
    assert {"get", "put", "delete"} <= set(paths["/v2.0/quotas/{project_id}"])
    assert "get" in paths["/v2.0/quotas/{project_id}/details"] and "get" in paths["/v2.0/quotas"]
    update = described["components"]["schemas"]["QuotaUpdate"]
    assert {"network", "subnet", "port", "force"} <= set(update["properties"])
    assert update["additionalProperties"] is False


# The CLI -----------------------------------------------------------------------------------------------------------


def _rows(limits: dict[str, Any]) -> str:
    """``quota show -f value`` for these limits: every row of openstacksdk's Quota, None where absent."""
    names = {"networks": "network", "subnets": "subnet", "ports": "port"}
    return "".join(f"{row} {limits.get(names.get(row, ''))}\n" for row, _ in cli_quotas.QUOTA_ROWS)


def test_cli_quota_commands(tmp_path):
    db = f"--database-url sqlite:///{tmp_path}/portsec.db"
    assert run(f"{db} quota show -f value").out == _rows(DEFAULTS)
    assert run(f"{db} quota set --networks 1 --ports 3 admin").out == ""
    assert run(f"{db} quota show admin -f value").out == _rows({"network": 1, "subnet": 100, "port": 3})
    assert run(f"{db} network create a").code == 0
    refused = run(f"{db} network create b")
    assert refused.code == 1
    assert "ConflictException: 409: Quota exceeded for resources: ['network']." in refused.err
    assert run(f"{db} quota show --usage -f csv").out == (
        '"Resource","Limit","In Use","Reserved"\n"networks",1,1,0\n"ports",3,0,0\n"subnets",100,0,0\n'
    )
    below = run(f"{db} quota set --networks 0")
    assert "BadRequestException: 400: Quota limit 0 for network must be greater than or equal to already used 1" in (
        below.err
    )
    assert run(f"{db} quota set --networks 0 --force").code == 0
    assert run(f"{db} quota show --default -f value").out == _rows(DEFAULTS)
    assert run(f"{db} quota delete admin").out == ""
    assert run(f"{db} quota show -f value").out == _rows(DEFAULTS)
    gone = run(f"{db} quota delete --network admin")
    assert "NotFoundException: 404: Quota for project admin could not be found." in gone.err


def test_cli_default_quotas_come_from_options_and_environment(tmp_path, monkeypatch, capsys):
    db = f"--database-url sqlite:///{tmp_path}/portsec.db"
    monkeypatch.setenv("PORTSEC_QUOTA_SUBNET", "-5")  # any negative value: no limit, as in Neutron
    assert run(f"{db} --quota-network 1 quota show -f value").out == _rows({"network": 1, "subnet": -1, "port": 500})
    assert run(f"{db} --quota-network 1 network create a").code == 0
    assert "Quota exceeded for resources: ['network']." in run(f"{db} --quota-network 1 network create b").err
    with pytest.raises(SystemExit) as usage_error:  # argparse refuses it before anything runs
        run(f"{db} --quota-port many quota show")
    assert usage_error.value.code == 2
    assert "argument --quota-port: invalid quota: 'many'" in capsys.readouterr().err


def test_cli_quota_commands_over_http(tmp_path, monkeypatch):
    """The same commands against a noauth server: the caller's project comes from the server ("who am I")."""
    with serve(f"sqlite:///{tmp_path}/portsec.db") as endpoint:
        monkeypatch.setenv("PORTSEC_ENDPOINT", endpoint)
        assert run("--project-id alice quota show -f value").out == _rows(DEFAULTS)
        refused = run("--project-id alice quota set --networks 3")
        assert "ForbiddenException: 403: rule:update_quota is disallowed by policy" in refused.err
        assert run("quota set --networks 3 alice").out == ""  # no project header: the admin
        assert run("--project-id alice quota show -f value").out == _rows({**DEFAULTS, "network": 3})
        other = run("--project-id alice quota show admin")
        assert "ForbiddenException: 403: rule:get_quota is disallowed by policy" in other.err
        assert run("quota delete alice").out == ""
        assert run("quota show alice -f value").out == _rows(DEFAULTS)


def _osc_show(quota: dict[str, Any], *args: str) -> tuple[Any, list[Any]]:
    """What openstackclient's `quota show` makes of this Neutron body (the network service only)."""

    class Network:
        @staticmethod
        def get_quota(_project: str, details: bool = False) -> Any:
            return (sdk_quota.QuotaDetails if details else sdk_quota.Quota).existing(**quota)

        @staticmethod
        def get_quota_default(_project: str) -> Any:
            return sdk_quota.QuotaDefault.existing(**quota)

    manager = types.SimpleNamespace(
        auth_ref=types.SimpleNamespace(project_id="p", project_name="p"),
        network=Network,
        is_network_endpoint_enabled=lambda: True,
        is_compute_endpoint_enabled=lambda: False,
        is_volume_endpoint_enabled=lambda: False,
    )
    command = osc_quota.ShowQuota(types.SimpleNamespace(client_manager=manager), None)
    columns, rows = command.take_action(command.get_parser("quota show").parse_args(list(args)))
    return columns, list(rows)


@pytest.mark.parametrize(
    ("quota", "args"),
    [
        (DEFAULTS, ()),
        ({**DEFAULTS, "network": -1, "floatingip": 50, "router": 10}, ("--network",)),  # a Neutron with routers
        (DEFAULTS, ("--default",)),
        ({r: {"limit": n, "used": 2, "reserved": 0} for r, n in DEFAULTS.items()}, ("--usage",)),
        ({"network": {"limit": 0, "used": 0, "reserved": 1}, "port": {"limit": -1, "used": 9, "reserved": 0}}, ("--usage",)),
    ],
)  # fmt: skip
def test_quota_show_prints_what_openstackclient_prints(quota, args):
    class Client:
        def project_id(self) -> str:
            return "p"

        def get_quota(self, _project: str, _which: str = "") -> dict[str, Any]:
            return quota

    command = cli_quotas.ShowQuota(types.SimpleNamespace(client=Client()), None)
    ours = command.take_action(command.get_parser("quota show").parse_args(list(args)))
    assert (ours[0], list(ours[1])) == _osc_show(quota, *args)


# The real openstack client against `portsec serve` ------------------------------------------------------------------
#
# With --os-auth-type none no `openstack quota` command works: without a project it reads the project from the
# auth reference (none has none), and with one it asks Keystone's project API (/v3/projects), which portsec does
# not serve. With a password login against portsec's identity endpoint, `quota show` and `quota set` of the
# token's own project work (their project argument, `quota delete` and `quota list` need /v3/projects again).

IDENTITY = {
    "secret": "quota-test-secret",
    "projects": [{"name": "alpha"}],
    "users": [
        {"name": "alice", "password": "alice-pw", "roles": {"alpha": ["member"]}},
        {"name": "root", "password": "root-pw", "roles": {"alpha": ["admin"]}},
    ],
}


@pytest.fixture(scope="module")
def identity_endpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quota-identity")
    (tmp / "identity.yaml").write_text(yaml.safe_dump(IDENTITY))
    with serve(f"sqlite:///{tmp}/portsec.db", args=["--identity-config", str(tmp / "identity.yaml")]) as url:
        yield url


def _login(endpoint: str, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PORTSEC_"))}
    return {**env, "OS_AUTH_URL": f"{endpoint}/v3", "OS_USERNAME": user, "OS_PASSWORD": f"{user}-pw",
            "OS_PROJECT_NAME": "alpha", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}  # fmt: skip


def _run(tool: list[str], endpoint: str, user: str, command: str) -> subprocess.CompletedProcess[str]:
    env = _login(endpoint, user)
    return subprocess.run([*tool, *command.split()], capture_output=True, text=True, timeout=120, env=env)


def _openstack(endpoint: str, user: str, command: str) -> subprocess.CompletedProcess[str]:
    return _run([OPENSTACK], endpoint, user, command)


def _both(endpoint: str, user: str, command: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    """The same command by `openstack` and by `portsec --endpoint`, with the same login."""
    portsec = [str(Path(sys.executable).with_name("portsec")), "--endpoint", endpoint]
    return _openstack(endpoint, user, command), _run(portsec, endpoint, user, command)


def test_openstack_quota_show_and_set_with_a_password_login(identity_endpoint):
    for command in ("quota show --network", "quota show --network --default", "quota show --network --usage -f json"):
        theirs, ours = _both(identity_endpoint, "alice", command)
        assert theirs.returncode == ours.returncode == 0, theirs.stderr + ours.stderr
        assert ours.stdout == theirs.stdout, command

    member = _openstack(identity_endpoint, "alice", "quota set --networks 1")
    assert member.returncode == 1 and "ForbiddenException: 403" in member.stderr
    assert "rule:update_quota is disallowed by policy" in member.stderr

    admin = _openstack(identity_endpoint, "root", "quota set --networks 1 --ports 7")
    assert admin.returncode == 0, admin.stderr
    theirs, ours = _both(identity_endpoint, "alice", "quota show --network -f value")
    assert ours.stdout == theirs.stdout
    assert {"networks 1", "ports 7", "subnets 100"} <= set(theirs.stdout.splitlines())
    made = _openstack(identity_endpoint, "alice", "network create q1")
    assert made.returncode == 0, made.stderr
    over = _openstack(identity_endpoint, "alice", "network create q2")
    assert over.returncode == 1 and "Quota exceeded for resources: ['network']." in over.stderr
