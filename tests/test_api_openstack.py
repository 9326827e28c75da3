"""The seed scenario with the real python-openstackclient against `portsec serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import SEED_PAIR_TABLE, run
from tests.server import serve

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with serve(f"sqlite:///{tmp_path_factory.mktemp('api')}/portsec.db") as url:
        yield url


def openstack(endpoint: str, command: str) -> subprocess.CompletedProcess[str]:
    args = [OPENSTACK, "--os-auth-type", "none", "--os-endpoint", endpoint, *command.split()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def ok(endpoint: str, command: str) -> str:
    done = openstack(endpoint, command)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_seed_with_the_real_openstack_client(endpoint, monkeypatch):
    ok(endpoint, "network create net1")
    ok(endpoint, "subnet create --network net1 --subnet-range 192.168.1.0/24 subnet1")
    ok(endpoint, "port create --network net1 --fixed-ip subnet=subnet1,ip-address=192.168.1.2 client")
    ok(
        endpoint,
        "port create --network net1 --mac-address fa:16:3e:3e:e3:14 --fixed-ip subnet=subnet1,ip-address=192.168.1.138 server1",
    )
    ok(
        endpoint,
        "port create --network net1 --mac-address fa:16:3e:7b:e9:03 --fixed-ip subnet=subnet1,ip-address=192.168.1.136 server2",
    )
    assert ok(endpoint, "port set server1 --allowed-address ip-address=192.168.1.10") == ""
    assert ok(endpoint, "port set server2 --allowed-address ip-address=192.168.1.10") == ""
    assert ok(endpoint, "port show server1 -c allowed_address_pairs") == SEED_PAIR_TABLE
    assert "mac_address='fa:16:3e:7b:e9:03'" in ok(endpoint, "port show server2 -c allowed_address_pairs")

    duplicate = openstack(endpoint, "port set server1 --allowed-address ip-address=192.168.1.10")
    assert duplicate.returncode == 1
    assert (
        "Request contains duplicate address pair: mac_address fa:16:3e:3e:e3:14 ip_address 192.168.1.10."
        in duplicate.stderr
    )

    refused = openstack(endpoint, "port set server1 --disable-port-security")
    assert refused.returncode == 1
    assert "ConflictException: 409" in refused.stderr
    assert "Port Security must be enabled in order to have allowed address pairs on a port." in refused.stderr
    ok(endpoint, "port set server1 --no-allowed-address --disable-port-security")
    shown = json.loads(ok(endpoint, "port show server1 -f json"))
    assert (shown["allowed_address_pairs"], shown["port_security_enabled"]) == ([], False)

    # `portsec --endpoint` prints what `openstack` prints for the same server.
    monkeypatch.setenv("PORTSEC_ENDPOINT", endpoint)
    for command in ("port list", "port show server2", "network show net1", "subnet show subnet1 -f yaml"):
        assert run(command).out == ok(endpoint, command), command
