"""The identity file is read again when it changes: removing a user or a role revokes access, as the README says."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from portsec.api import identity
from portsec.api.identity import IdentityConfigError, IdentityFile, Unauthorized, hash_password
from tests.server import serve

# No `secret:` in the file: `portsec serve` makes one and gives it to every worker, and reloads must keep it.
PROJECTS = [{"name": "alpha"}]
ALICE = {"name": "alice", "password": "alice-pw", "roles": {"alpha": ["member"]}}
CAROL = {"name": "carol", "password": "carol-pw", "roles": {"alpha": ["member"]}}
DAVE = {"name": "dave", "password": "dave-pw", "roles": {"alpha": ["member"]}}
# A cheap hash sets the cost of every check in the file (plain passwords are hashed alike): logins stay fast.
ROOT = {"name": "root", "password_hash": hash_password("root-pw", iterations=1000), "roles": {"alpha": ["admin"]}}
# Every worker looks at the file again at its first request this long after its previous look.
PAST_THE_NEXT_LOOK = identity.RELOAD_INTERVAL + 0.5
REQUESTS = 16  # each on a new connection, 4 at a time, so that both workers answer some
HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10)  # a new connection each request


def write(path: Path, *users: dict[str, Any]) -> None:
    # Written in place (same inode), as an editor or `cat >` does; only size and times tell the change.
    path.write_text(yaml.safe_dump({"projects": PROJECTS, "users": list(users)}))


def password_body(user: str) -> dict[str, Any]:
    password = {"user": {"name": user, "domain": {"name": "Default"}, "password": f"{user}-pw"}}
    scope = {"project": {"name": "alpha", "domain": {"name": "Default"}}}
    return {"auth": {"identity": {"methods": ["password"], "password": password}, "scope": scope}}


def each_worker(request: Callable[[], httpx.Response]) -> set[int]:
    """The status codes of many identical requests spread over the workers."""
    with ThreadPoolExecutor(4) as pool:
        return {response.status_code for response in pool.map(lambda _: request(), range(REQUESTS))}


def logins(url: str, user: str) -> set[int]:
    return each_worker(lambda: HTTP.post(f"{url}/v3/auth/tokens", json=password_body(user)))


def uses(url: str, token: str) -> set[int]:
    return each_worker(lambda: HTTP.get(f"{url}/v2.0/networks", headers={"X-Auth-Token": token}))


def token(url: str, user: str) -> str:
    response = HTTP.post(f"{url}/v3/auth/tokens", json=password_body(user))
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def test_every_worker_follows_the_file(tmp_path):
    path = tmp_path / "identity.yaml"
    write(path, ALICE, CAROL, ROOT)
    with serve(f"sqlite:///{tmp_path}/portsec.db", workers=2, args=["--identity-config", str(path)]) as url:
        alice, carol, root = token(url, "alice"), token(url, "carol"), token(url, "root")
        assert uses(url, alice) == uses(url, carol) == {200}
        assert logins(url, "dave") == {401}

        write(path, {**ALICE, "roles": {}}, ROOT, DAVE)  # alice loses her role, carol is gone, dave is new
        time.sleep(PAST_THE_NEXT_LOOK)
        assert uses(url, alice) == {401}
        assert uses(url, carol) == {401}
        assert logins(url, "alice") == logins(url, "carol") == {401}
        assert logins(url, "dave") == {201}
        # The secret stays the one serve gave its workers: a token from before the reload, or from any worker
        # after it, is good on every worker.
        assert uses(url, root) == {200}
        assert uses(url, token(url, "dave")) == {200}

        path.write_text("users: [{name: nameless-password}]\n")  # invalid: the previous identity stays
        time.sleep(PAST_THE_NEXT_LOOK)
        assert uses(url, root) == {200}
        assert logins(url, "dave") == {201}
        assert logins(url, "carol") == {401}


# In-process: when the file is looked at, and what a bad version does -------------------------------------------


class Monotonic:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


def can_log_in(source: IdentityFile, user: str) -> bool:
    try:
        source.current().authenticate(password_body(user))
    except Unauthorized:
        return False
    return True


def test_the_file_is_looked_at_once_an_interval(tmp_path, monotonic, monkeypatch):
    path = tmp_path / "identity.yaml"
    write(path, ALICE)
    source = IdentityFile(path, "serve-secret", monotonic=monotonic)
    looks: list[Path] = []
    real_state = identity._file_state

    def counted_state(p: Path) -> Any:
        looks.append(p)
        return real_state(p)

    monkeypatch.setattr(identity, "_file_state", counted_state)
    write(path, ALICE, DAVE)
    for _ in range(5):
        assert not can_log_in(source, "dave")  # not looked at yet: a stat per request would be wasted
    assert looks == []
    monotonic.now += identity.RELOAD_INTERVAL
    assert can_log_in(source, "dave") and can_log_in(source, "alice")
    assert looks == [path]


def test_an_unchanged_file_is_not_parsed_again(tmp_path, monotonic):
    path = tmp_path / "identity.yaml"
    write(path, ALICE)
    source = IdentityFile(path, "serve-secret", monotonic=monotonic)
    before = source.current()
    os.utime(path)  # touched: stat changes, the content does not
    monotonic.now += identity.RELOAD_INTERVAL
    assert source.current() is before  # plain passwords are not hashed again


def test_a_same_size_edit_that_stat_cannot_see_is_found_by_content(tmp_path, monotonic, monkeypatch):
    path = tmp_path / "identity.yaml"
    write(path, ALICE)
    source = IdentityFile(path, "serve-secret", monotonic=monotonic)
    # A coarse file clock: the edit below leaves inode, size and times as they were at the last look.
    monkeypatch.setattr(identity, "_file_state", lambda _p: source._state)
    write(path, {**ALICE, "roles": {"alpha": ["reader"]}})  # "member" -> "reader": same size
    monotonic.now += identity.RELOAD_INTERVAL
    (alice,) = source.current().users.values()
    assert alice.roles == {identity.derived_id("project", "Default", "alpha"): ("reader",)}


@pytest.mark.parametrize(
    "break_it",
    [
        lambda path: path.write_text("users: [{name: nameless-password}]\n"),
        lambda path: path.write_text("{not yaml"),
        lambda path: path.unlink(),
    ],
    ids=["invalid", "not-yaml", "deleted"],
)
def test_a_bad_version_keeps_the_previous_identity_and_logs_once(tmp_path, monotonic, caplog, break_it):
    path = tmp_path / "identity.yaml"
    write(path, ALICE)
    source = IdentityFile(path, "serve-secret", monotonic=monotonic)
    break_it(path)
    with caplog.at_level(logging.ERROR, logger="portsec.api.identity"):
        for _ in range(4):
            monotonic.now += identity.RELOAD_INTERVAL
            assert can_log_in(source, "alice")
    assert len(caplog.records) == 1, caplog.text
    assert "previous users and roles stay in force" in caplog.text and str(path) in caplog.text
    write(path, DAVE)  # fixed: read again
    monotonic.now += identity.RELOAD_INTERVAL
    assert can_log_in(source, "dave") and not can_log_in(source, "alice")


def test_the_fallback_secret_holds_across_reloads(tmp_path, monotonic):
    path = tmp_path / "identity.yaml"
    write(path, ALICE)
    source = IdentityFile(path, "serve-secret", monotonic=monotonic)
    issued, _ = source.current().authenticate(password_body("alice"))
    write(path, ALICE, DAVE)
    monotonic.now += identity.RELOAD_INTERVAL
    assert source.current().validate(issued).user.name == "alice"


def test_a_bad_file_at_start_is_refused(tmp_path):
    with pytest.raises(IdentityConfigError):
        IdentityFile(tmp_path / "missing.yaml", "serve-secret")
