"""Password auth against the built-in identity endpoint: the real openstack client, then tokens in-process."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from portsec.api.app import create_app
from portsec.api.auth import TokenAuth
from portsec.api.identity import (
    DEFAULT_ITERATIONS,
    Identity,
    IdentityConfigError,
    Unauthorized,
    derived_id,
    hash_password,
)
from tests.cli import SEED_PAIR_TABLE
from tests.server import serve

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
CONFIG = {
    "secret": "a-test-secret-shared-by-the-workers",
    "projects": [{"name": "alpha"}, {"name": "beta"}],
    "users": [
        {"name": "alice", "password": "alice-pw", "roles": {"alpha": ["member"]}},
        {"name": "bob", "password_hash": hash_password("bob-pw", iterations=1000), "roles": {"beta": ["member"]}},
        {"name": "root", "password": "root-pw", "roles": {"alpha": ["admin"], "beta": ["admin"]}},
        {"name": "nova", "password": "nova-pw", "roles": {"alpha": ["service"]}},
    ],
}
UNAUTHORIZED = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}
FORBIDDEN_VALIDATE = {
    "error": {
        "code": 403,
        "title": "Forbidden",
        "message": "You are not authorized to perform the requested action: identity:validate_token.",
    }
}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("identity")
    (tmp / "identity.yaml").write_text(yaml.safe_dump(CONFIG))
    # Two workers: a token issued by one must be accepted by the other.
    with serve(f"sqlite:///{tmp}/portsec.db", workers=2, args=["--identity-config", str(tmp / "identity.yaml")]) as url:
        yield url


def openstack(
    endpoint: str,
    command: str,
    user: str = "alice",
    password: str | None = None,
    project: str = "alpha",
    auth_url: str | None = None,
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_AUTH_URL=auth_url or f"{endpoint}/v3",
        OS_USERNAME=user,
        OS_PASSWORD=password or f"{user}-pw",
        OS_PROJECT_NAME=project,
        OS_USER_DOMAIN_NAME="Default",
        OS_PROJECT_DOMAIN_NAME="Default",
    )
    return subprocess.run([OPENSTACK, *command.split()], capture_output=True, text=True, timeout=120, env=env)


def ok(endpoint: str, command: str, **who: str) -> str:
    done = openstack(endpoint, command, **who)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_seed_with_password_auth(endpoint):
    ok(endpoint, "network create net1")
    ok(endpoint, "subnet create --network net1 --subnet-range 192.168.1.0/24 subnet1")
    ok(
        endpoint,
        "port create --network net1 --mac-address fa:16:3e:3e:e3:14 --fixed-ip subnet=subnet1,ip-address=192.168.1.138 server1",
    )
    assert ok(endpoint, "port set server1 --allowed-address ip-address=192.168.1.10") == ""
    assert ok(endpoint, "port show server1 -c allowed_address_pairs") == SEED_PAIR_TABLE
    port_id = ok(endpoint, "port show server1 -f value -c id").strip()
    alpha = ok(endpoint, "port show server1 -f value -c project_id").strip()

    wrong = openstack(endpoint, "port list", password="not-her-password")
    assert wrong.returncode == 1
    assert "The request you have made requires authentication. (HTTP 401)" in wrong.stderr

    # Project beta's member sees none of alpha's ports, by name or by id, and cannot change them.
    assert port_id not in ok(endpoint, "port list -f value -c ID", user="bob", project="beta")
    hidden = openstack(endpoint, f"port show {port_id}", user="bob", project="beta")
    assert hidden.returncode == 1 and f"No Port found for {port_id}" in hidden.stderr
    refused = openstack(endpoint, f"port set {port_id} --name stolen", user="bob", project="beta")
    assert refused.returncode == 1
    assert ok(endpoint, "port show server1 -f value -c name").strip() == "server1"

    # binding:host_id is the admin's: alice (member) is refused, root (admin) may set it.
    host = openstack(endpoint, "port set server1 --host hv1")
    assert host.returncode == 1
    assert "ForbiddenException: 403" in host.stderr and "binding:host_id) is disallowed by policy" in host.stderr
    ok(endpoint, f"port set {port_id} --host hv1", user="root")
    assert ok(endpoint, f"port show {port_id} -f value -c binding_host_id", user="root").strip() == "hv1"
    assert ok(endpoint, f"port show {port_id} -f value -c project_id", user="root").strip() == alpha


def portsec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PORTSEC_"))}
    return subprocess.run([str(Path(sys.executable).with_name("portsec")), *args], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_portsec_cli_logs_in_with_a_password(endpoint):
    login = {"OS_AUTH_URL": f"{endpoint}/v3", "OS_USERNAME": "bob", "OS_PASSWORD": "bob-pw", "OS_PROJECT_NAME": "beta"}
    made = portsec("--endpoint", endpoint, "network", "create", "cli-net", "-f", "value", "-c", "project_id", env=login)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == derived_id("project", "Default", "beta"), "it acts in the token's project"
    # The network endpoint comes from the token's catalog when only the identity URL is given.
    listed = portsec("--os-auth-url", f"{endpoint}/v3", "network", "list", "-f", "value", "-c", "Name", env=login)
    assert listed.returncode == 0, listed.stderr
    assert "cli-net" in listed.stdout.split()
    wrong = portsec("--endpoint", endpoint, "network", "list", env={**login, "OS_PASSWORD": "nope"})
    assert wrong.returncode == 1
    assert "refused user bob in project beta" in wrong.stderr
    # Without a token the identity-enabled server refuses, and says so.
    anonymous = portsec("--endpoint", endpoint, "network", "list")
    assert anonymous.returncode == 1 and "requires authentication" in anonymous.stderr


def test_portsec_cli_prints_refusals_as_openstack_does(endpoint):
    """One line per refusal, named by its status as the openstack client names it: no traceback, no httpx log."""
    login = {
        "OS_AUTH_URL": f"{endpoint}/v3",
        "OS_USERNAME": "alice",
        "OS_PASSWORD": "alice-pw",
        "OS_PROJECT_NAME": "alpha",
    }
    forbidden = portsec("--endpoint", endpoint, "network", "create", "--share", "shared-net", env=login)
    assert (forbidden.returncode, forbidden.stderr.splitlines()) == (
        1,
        ["ForbiddenException: 403: (rule:create_network and rule:create_network:shared) is disallowed by policy"],
    )
    # No token for a server that needs one: openstack says "HttpException: 401: ..." for a bad token.
    anonymous = portsec("--endpoint", endpoint, "network", "list")
    assert (anonymous.returncode, anonymous.stderr.splitlines()) == (
        1,
        ["HttpException: 401: The request you have made requires authentication."],
    )
    wrong = portsec("--endpoint", endpoint, "network", "list", env={**login, "OS_PASSWORD": "nope"})
    assert (wrong.returncode, wrong.stderr.splitlines()) == (
        1,
        [f"HttpException: 401: The identity service at {endpoint}/v3 refused user alice in project alpha."],
    )
    missing = portsec("--endpoint", endpoint, "network", "show", "no-such-net", env=login)
    assert (missing.returncode, missing.stderr.splitlines()) == (1, ["No Network found for no-such-net"])


def test_identity_discovery_at_v3_slash(endpoint):
    # The root lists the network API alone, as Neutron's (issue 12): identity is found where OS_AUTH_URL points.
    done = openstack(endpoint, "network create rootnet -f value -c name", auth_url=f"{endpoint}/v3/")
    assert (done.returncode, done.stdout) == (0, "rootnet\n"), done.stderr


def test_v2_needs_a_valid_token(endpoint):
    assert httpx.get(endpoint + "/").status_code == 200  # version discovery stays open
    for headers in ({}, {"X-Auth-Token": "notused"}, {"X-Auth-Token": "e30.AAAA"}):
        response = httpx.get(endpoint + "/v2.0/ports", headers=headers)
        assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
        assert response.headers["WWW-Authenticate"] == f'Keystone uri="{endpoint}/v3"'
    # noauth headers mean nothing once identity is on
    assert httpx.get(endpoint + "/v2.0/ports", headers={"X-Project-Id": "alpha"}).status_code == 401


# In-process: token contents, expiry, tampering, the config file ------------------------------------------------


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def api(sqlite_db, clock):
    identity = dataclasses.replace(Identity.from_mapping(CONFIG), clock=clock)
    return TestClient(create_app(sqlite_db, auth=TokenAuth(identity)), base_url="http://portsec.test:9696")


def password_body(user: str, password: str, project: str | None = "alpha", domain: str = "Default"):
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"name": domain}, "password": password}},
        }
    }
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


def test_token_body_and_catalog(api):
    response = api.post("/v3/auth/tokens", json=password_body("alice", "alice-pw"))
    assert response.status_code == 201
    token = response.json()["token"]
    assert response.headers["X-Subject-Token"]
    assert token["user"]["name"] == "alice" and token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["name"] == "alpha"
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]  # member implies reader
    assert token["methods"] == ["password"]
    assert token["issued_at"] == "2027-01-15T08:00:00.000000Z"
    assert token["expires_at"] == "2027-01-15T09:00:00.000000Z"  # Keystone's default hour
    network = next(s for s in token["catalog"] if s["type"] == "network")
    assert {e["url"] for e in network["endpoints"]} == {"http://portsec.test:9696"}
    assert "public" in {e["interface"] for e in network["endpoints"]}


def test_token_acts_in_its_project(api):
    alice = {
        "X-Auth-Token": api.post("/v3/auth/tokens", json=password_body("alice", "alice-pw")).headers["X-Subject-Token"]
    }
    network = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=alice).json()["network"]
    project = api.post("/v3/auth/tokens", json=password_body("alice", "alice-pw")).json()["token"]["project"]
    assert network["project_id"] == project["id"]
    checked = api.get("/v3/auth/tokens", headers={**alice, "X-Subject-Token": alice["X-Auth-Token"]})
    assert checked.status_code == 200 and checked.json()["token"]["user"]["name"] == "alice"


def test_token_expires(api, clock):
    token = api.post("/v3/auth/tokens", json=password_body("alice", "alice-pw")).headers["X-Subject-Token"]
    assert api.get("/v2.0/networks", headers={"X-Auth-Token": token}).status_code == 200
    clock.now += 3600
    expired = api.get("/v2.0/networks", headers={"X-Auth-Token": token})
    assert (expired.status_code, expired.json()) == (401, UNAUTHORIZED)


def test_tampered_or_foreign_token_is_refused(api):
    token = api.post("/v3/auth/tokens", json=password_body("alice", "alice-pw")).headers["X-Subject-Token"]
    payload, signature = token.split(".")
    other = Identity.from_mapping({**CONFIG, "secret": "another-server"})
    foreign, _ = other.authenticate(password_body("root", "root-pw"))
    for bad in (payload + "." + signature[::-1], payload[:-2] + "." + signature, foreign, "", "...."):
        assert api.get("/v2.0/networks", headers={"X-Auth-Token": bad}).status_code == 401


def other_spellings(token: str) -> list[str]:
    """The same bytes written otherwise: padding, junk the lenient decoder skips, unused low bits set."""
    payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 32 bytes are 43 characters whose last one carries 2 unused bits: setting one decodes to the same signature.
    same_bytes = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]
    return [
        f"{payload}.{signature}=",
        f"{payload}.{signature}==",
        f"{payload}.{signature}**",
        f"{payload}.{signature[:10]}*{signature[10:]}",
        f"{payload}.{same_bytes}",
        f"{payload}=.{signature}",
        f"{payload}.{signature}.",
    ]


def test_a_token_has_one_spelling(api):
    token = api.post("/v3/auth/tokens", json=password_body("alice", "alice-pw")).headers["X-Subject-Token"]
    assert api.get("/v2.0/networks", headers={"X-Auth-Token": token}).status_code == 200
    for spelling in other_spellings(token):
        refused = api.get("/v2.0/networks", headers={"X-Auth-Token": spelling})
        assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED), spelling


def issue(api, user: str, project: str = "alpha") -> str:
    response = api.post("/v3/auth/tokens", json=password_body(user, f"{user}-pw", project=project))
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def test_only_admin_service_or_owner_may_read_a_token(api):
    alice, bob = issue(api, "alice"), issue(api, "bob", project="beta")

    def check(caller: str, subject: str):
        return api.get("/v3/auth/tokens", headers={"X-Auth-Token": caller, "X-Subject-Token": subject})

    refused = check(bob, alice)
    assert (refused.status_code, refused.json()) == (403, FORBIDDEN_VALIDATE)
    assert "X-Subject-Token" not in refused.headers
    for caller in (issue(api, "root"), issue(api, "nova"), issue(api, "alice")):  # admin, service, the same user
        allowed = check(caller, alice)
        assert allowed.status_code == 200 and allowed.json()["token"]["user"]["name"] == "alice"
    # As Keystone: the subject is validated first, so an unknown one is 404 for anyone with a valid token.
    assert check(bob, "e30.AAAA").status_code == 404
    assert check("e30.AAAA", alice).status_code == 401


def test_openapi_documents_the_forbidden_token_check(api):
    responses = api.get("/openapi.json").json()["paths"]["/v3/auth/tokens"]["get"]["responses"]
    assert {"200", "401", "403", "404"} <= set(responses)
    assert responses["403"]["content"]["application/json"]["schema"]["required"] == ["error"]


@pytest.fixture
def key_derivations(monkeypatch):
    """The pbkdf2 runs of each login, as (iterations, salt length): what its time is made of."""
    runs: list[tuple[int, int]] = []
    real = hashlib.pbkdf2_hmac

    def counted(name: str, password: bytes, salt: bytes, iterations: int, *args: object) -> bytes:
        runs.append((iterations, len(salt)))
        return real(name, password, salt, iterations, *args)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    return runs


@pytest.mark.parametrize(
    "body",
    [
        password_body("bob", "wrong", project="beta"),  # known user (password_hash), wrong password
        password_body("alice", "wrong"),  # known user (plain password), wrong password
        password_body("nobody", "x"),  # unknown user
        password_body("alice", "alice-pw", domain="Other"),  # unknown in that domain
        password_body("alice", "alice-pw", project="beta"),  # found, right password, no role in the project
        password_body("alice", "alice-pw", project="nowhere"),  # found, no such project
    ],
)
def test_every_refused_login_costs_one_key_derivation(api, key_derivations, body):
    """Usernames cannot be told apart by timing: every refusal runs the same pbkdf2 as a real check."""
    assert api.post("/v3/auth/tokens", json=body).status_code == 401
    assert key_derivations == [(1000, 16)]  # bob's hash: the most iterations in the file


def test_plain_passwords_cost_the_default_derivation(key_derivations):
    identity = Identity.from_mapping(
        {
            "secret": "s",
            "projects": [{"name": "p"}],
            "users": [{"name": "u", "password": "pw", "roles": {"p": ["member"]}}],
        }
    )
    key_derivations.clear()  # the file's plain password is hashed once, at load
    for name in ("u", "nobody"):
        with pytest.raises(Unauthorized):
            identity.authenticate(password_body(name, "wrong", project="p"))
    identity.authenticate(password_body("u", "pw", project="p"))
    assert key_derivations == [(DEFAULT_ITERATIONS, 16)] * 3


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (password_body("alice", "wrong"), 401),
        (password_body("alice", "alice-pw", project="beta"), 401),  # no role there
        (password_body("nobody", "x"), 401),
        (password_body("alice", "alice-pw", domain="Other"), 401),
        (password_body("bob", "bob-pw", project="beta"), 201),  # password_hash
        (password_body("alice", "alice-pw", project=None), 400),  # unscoped
        ({"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}}}, 400),
        ({"auth": "x"}, 400),
        ([], 400),
    ],
)
def test_password_auth_outcomes(api, body, status):
    response = api.post("/v3/auth/tokens", json=body)
    assert response.status_code == status
    if status != 201:
        assert "X-Subject-Token" not in response.headers and response.json()["error"]["code"] == status


def test_malformed_auth_bodies(api):
    assert api.post("/v3/auth/tokens", content=b"{nope").status_code == 400
    assert api.post("/v3/auth/tokens", content=b"[" * 60_000).status_code == 400  # deeper than the parser goes
    assert api.post("/v3/auth/tokens", content=b"x" * 100_000).status_code == 413


@pytest.mark.parametrize(
    "config",
    [
        {"projects": [], "users": []},  # no secret
        {"secret": "s", "users": [{"name": "u"}]},  # no password
        {"secret": "s", "users": [{"name": "u", "password": "p", "roles": {"nope": ["member"]}}]},
        {"secret": "s", "projects": "alpha"},
        {"secret": "s", "token_expiration": -1},
        {"secret": "s", "users": [{"name": "u", "password_hash": "pbkdf2_sha256$1000$nothex$00"}]},
        {"secret": "s", "users": [{"name": "u", "password_hash": "md5$abc"}]},
    ],
)
def test_bad_config_is_refused(config):
    with pytest.raises(IdentityConfigError):
        Identity.from_mapping(config)


def test_serve_refuses_a_bad_identity_file(tmp_path):
    (tmp_path / "identity.yaml").write_text("users: [{name: u}]\n")
    portsec = str(Path(sys.executable).with_name("portsec"))
    done = subprocess.run(
        [
            portsec,
            "--database-url",
            f"sqlite:///{tmp_path}/p.db",
            "serve",
            "--identity-config",
            str(tmp_path / "identity.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "--identity-config" in done.stderr
