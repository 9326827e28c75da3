"""The seed documents, replayed with `portsec` in place of `openstack` / `neutron`."""

from __future__ import annotations

import json

import pytest

from tests.cli import SEED_PAIR_TABLE, run
from tests.conftest import dump


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    db_url = f"sqlite:///{tmp_path}/portsec.db"
    monkeypatch.setenv("PORTSEC_DATABASE_URL", db_url)
    return db_url


def ok(command: str) -> str:
    result = run(command)
    assert result.code == 0, result.err
    return result.out


def _seed_ports() -> dict[str, str]:
    ok("network create net1")
    ok("subnet create --network net1 --subnet-range 192.168.1.0/24 subnet1")
    ok("port create --network net1 --fixed-ip subnet=subnet1,ip-address=192.168.1.2 ''")
    ok(
        "port create --network net1 --mac-address fa:16:3e:3e:e3:14 --fixed-ip subnet=subnet1,ip-address=192.168.1.138 server1"
    )
    ok(
        "port create --network net1 --mac-address fa:16:3e:7b:e9:03 --fixed-ip subnet=subnet1,ip-address=192.168.1.136 server2"
    )
    return {name: ok(f"port show {name} -f value -c id").strip() for name in ("server1", "server2")}


def test_seed_000_allowed_address_pairs(embedded):
    ids = _seed_ports()
    subnet_id = ok("subnet show subnet1 -f value -c id").strip()

    listing = ok("port list")
    assert listing.splitlines()[1] == (
        "| ID                                   | Name    | MAC Address       | Fixed IP Addresses"
        + " " * 59
        + "| Status |"
    )
    row = f"| {ids['server1']} | server1 | fa:16:3e:3e:e3:14 | ip_address='192.168.1.138', subnet_id='{subnet_id}' | DOWN   |"
    assert row in listing.splitlines()
    assert "| fa:16:3e:" in listing and f"ip_address='192.168.1.2', subnet_id='{subnet_id}'   | DOWN" in listing

    assert ok("port set server1 --allowed-address ip-address=192.168.1.10") == ""
    assert ok("port set server2 --allowed-address ip-address=192.168.1.10") == ""
    assert ok("port show server1 -c allowed_address_pairs") == SEED_PAIR_TABLE
    assert "ip_address='192.168.1.10', mac_address='fa:16:3e:7b:e9:03'" in ok(
        "port show server2 -c allowed_address_pairs"
    )

    ok("port set server1 --allowed-address ip-address=192.168.1.11,mac-address=fa:16:3e:00:00:11")
    pairs = json.loads(ok("port show server1 -c allowed_address_pairs -f json"))["allowed_address_pairs"]
    assert pairs == [
        {"mac_address": "fa:16:3e:00:00:11", "ip_address": "192.168.1.11"},
        {"mac_address": "fa:16:3e:3e:e3:14", "ip_address": "192.168.1.10"},
    ]

    refused = run("port set server1 --disable-port-security")
    assert refused.code == 1
    assert refused.err.strip() == (
        "ConflictException: 409: Port Security must be enabled in order to have allowed address pairs on a port."
    )
    assert ok("port show server1 -f value -c port_security_enabled").strip() == "True"

    ok("port set server1 --no-allowed-address --disable-port-security")
    shown = json.loads(ok("port show server1 -f json -c allowed_address_pairs -c port_security_enabled"))
    assert shown == {"allowed_address_pairs": [], "port_security_enabled": False}


def test_seed_002_legacy_port_update(embedded):
    ids = _seed_ports()
    result = run(f"port-update {ids['server2']} --port-security-enabled=false")
    assert (result.code, result.out) == (0, f"Updated port: {ids['server2']}\n")
    assert ok("port show server2 -f value -c port_security_enabled").strip() == "False"
    with pytest.raises(SystemExit) as usage_error:  # argparse refuses it before anything runs
        run(f"port-update {ids['server1']} --port-security-enabled=maybe")
    assert usage_error.value.code == 2


def test_unset_removes_a_pair_by_ip_alone(embedded):
    _seed_ports()
    ok("port set server1 --allowed-address ip-address=192.168.1.10 --allowed-address ip-address=10.0.0.0/24")
    ok("port unset server1 --allowed-address ip-address=192.168.1.10")
    pairs = json.loads(ok("port show server1 -c allowed_address_pairs -f json"))["allowed_address_pairs"]
    assert pairs == [{"mac_address": "fa:16:3e:3e:e3:14", "ip_address": "10.0.0.0/24"}]
    missing = run("port unset server1 --allowed-address ip-address=192.168.1.99")
    assert (
        missing.code == 1 and "Port does not contain allowed-address-pair {'ip_address': '192.168.1.99'}" in missing.err
    )
    wrong_mac = run("port unset server1 --allowed-address ip-address=10.0.0.0/24,mac-address=fa:16:3e:00:00:99")
    assert wrong_mac.code == 1


BAD_INPUT = [
    ("port create --network net1 --mac-address fa:16:3e:zz:00:01 bad",
     "BadRequestException: 400: Invalid input for mac_address. Reason: 'fa:16:3e:zz:00:01' is not a valid MAC address."),
    ("port create --network net1 --fixed-ip ip-address=192.168.1.300 bad",
     "BadRequestException: 400: Invalid input for fixed_ips. Reason: '192.168.1.300' is not a valid IP address."),
    ("subnet create --network net1 --subnet-range 10.0.0.1/24 bad",
     "BadRequestException: 400: Invalid input for cidr. Reason: '10.0.0.1/24' isn't a recognized IP subnet cidr, '10.0.0.0/24' is recommended."),
    ("port set server1 --allowed-address ip-address=192.168.1.10 --allowed-address ip-address=192.168.1.10",
     "BadRequestException: 400: Request contains duplicate address pair: mac_address None ip_address 192.168.1.10."),
    ("port set server1 " + " ".join(f"--allowed-address ip-address=10.0.0.{i}" for i in range(11)),
     "BadRequestException: 400: The number of allowed address pair exceeds the maximum 10."),
    ("port set server1 --allowed-address ip-address=192.168.1.10,mac-address=01:00:5e:00:00:01",
     "BadRequestException: 400: MAC address 01:00:5e:00:00:01 is a multicast address, which is not supported."),
    ("port set offport --allowed-address ip-address=192.168.1.10",
     "ConflictException: 409: Port Security must be enabled in order to have allowed address pairs on a port."),
    ("port create --network nonet bad", "No Network found for nonet"),
    ("port show noport", "No Port found for noport"),
    ("port set noport --name x", "No Port found for noport"),
    ("port show ''", "More than one Port exists with the name ''."),
    ("port create --network net1 --mac-address fa:16:3e:3e:e3:14 dup",
     "ConflictException: 409: Unable to complete operation for network {net}. The mac address fa:16:3e:3e:e3:14 is in use."),
    ("port create --network net1 --fixed-ip ip-address=192.168.1.138 dup",
     "ConflictException: 409: IP address 192.168.1.138 already allocated in subnet {subnet}"),
    ("network delete net1",
     "ConflictException: 409: Unable to complete operation on network {net}. There are one or more ports still in use on the network."),
]  # fmt: skip


@pytest.mark.parametrize(("command", "message"), BAD_INPUT)
def test_bad_input_gets_neutrons_error_and_changes_nothing(embedded, command, message):
    from portsec.store.database import Database

    _seed_ports()
    ok("port create --network net1 ''")  # a second unnamed port: '' is now ambiguous
    ok("port create --network net1 --disable-port-security offport")
    ids = {
        "net": ok("network show net1 -f value -c id").strip(),
        "subnet": ok("subnet show subnet1 -f value -c id").strip(),
    }
    db = Database(embedded)
    before = dump(db)
    result = run(command)
    assert result.code == 1
    assert message.format(**ids) in result.err
    assert dump(db) == before
    db.dispose()


def test_output_formats(embedded):
    _seed_ports()
    ok("port set server1 --allowed-address ip-address=192.168.1.10")
    value = ok("port show server1 -f value -c allowed_address_pairs -c name")
    assert value == "[{'mac_address': 'fa:16:3e:3e:e3:14', 'ip_address': '192.168.1.10'}]\nserver1\n"
    assert "allowed_address_pairs:\n- ip_address: 192.168.1.10\n  mac_address: fa:16:3e:3e:e3:14\n" in ok(
        "port show server1 -f yaml -c allowed_address_pairs"
    )
    csv = ok("port list -f csv -c Name -c 'MAC Address' --name server2")
    assert csv == '"Name","MAC Address"\n"server2","fa:16:3e:7b:e9:03"\n'
    assert ok("network list -f value -c Name") == "net1\n"
