"""`portsec pair lint` on the seed network: table and JSON output, exit status 0 and 3, embedded and served."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.cli import run
from tests.server import serve
from tests.test_cli_seed import _seed_ports, ok

VIP_ROW = (
    "| info     | vip   | server1, server2 | 192.168.1.10 | VIP 192.168.1.10 is carried by 2 ports: each may send "
    "as it (expected for keepalived/VRRP failover) |     |"
)


@pytest.fixture
def seeded(tmp_path, monkeypatch):
    """The seed network with its keepalived VIP on server1 and server2."""
    db_url = f"sqlite:///{tmp_path}/portsec.db"
    monkeypatch.setenv("PORTSEC_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping of the table, whatever the terminal
    _seed_ports()
    ok("port set server1 --allowed-address ip-address=192.168.1.10")
    ok("port set server2 --allowed-address ip-address=192.168.1.10")
    return db_url


def lint(args: str = "") -> tuple[int, list[dict]]:
    result = run(f"pair lint {args} -f json")
    assert result.code in (0, 3), result.err
    return result.code, json.loads(result.out)


def test_the_seed_keepalived_pair_is_an_info_vip_and_the_exit_status_is_0(seeded):
    result = run("pair lint")
    assert (result.code, result.err) == (0, "")
    assert (
        result.out.splitlines()[1]
        == "| Severity | Check | Ports            | Address      | Why" + " " * 97 + "| Fix |"
    )
    assert VIP_ROW in result.out.splitlines()
    assert lint() == (0, [{
        "Severity": "info", "Check": "vip", "Ports": ["server1", "server2"], "Address": "192.168.1.10",
        "Why": "VIP 192.168.1.10 is carried by 2 ports: each may send as it (expected for keepalived/VRRP failover)",
        "Fix": "",
    }])  # fmt: skip
    assert lint("--network net1") == lint()
    assert lint("server2") == lint()
    ids = [ok(f"port show {name} -f value -c id").strip() for name in ("server1", "server2")]
    net = ok("network show net1 -f value -c id").strip()
    (long,) = lint("--long")[1]
    assert (long["Network"], long["Port IDs"]) == (net, ids)


def test_a_range_over_other_ports_is_high_exits_3_and_its_fix_command_clears_it(seeded):
    ok("port create --network net1 --fixed-ip ip-address=192.168.1.50 --allowed-address ip-address=192.168.1.0/24 web1")
    code, findings = lint("--network net1")
    assert code == 3
    high = [f for f in findings if f["Severity"] == "high"]
    assert [(f["Check"], f["Ports"][0], f["Address"]) for f in high] == [("impersonation", "web1", "192.168.1.0/24")]
    unnamed = ok("port list --fixed-ip ip-address=192.168.1.2 -f value -c ID").strip()
    assert sorted(high[0]["Ports"][1:]) == sorted([unnamed, "server1", "server2"])  # an unnamed port by its ID
    assert "server1 (pair 192.168.1.10, fixed IP 192.168.1.138)" in high[0]["Why"]
    assert high[0]["Fix"] == "portsec port unset web1 --allowed-address ip-address=192.168.1.0/24"
    assert [f["Check"] for f in findings] == ["impersonation", "vip"]

    # the shared VIP is still info, and a port's own lint shows what involves it: server1 is a victim of web1
    assert [f["Check"] for f in lint("server1")[1]] == ["impersonation", "vip"]

    table = run("pair lint")
    assert table.code == 3 and "| high     | impersonation | web1, " in table.out

    fix = shlex.split(high[0]["Fix"])
    assert fix[0] == "portsec"
    ok(shlex.join(fix[1:]))
    code, findings = lint()
    assert (code, [f["Check"] for f in findings]) == (0, ["vip"])


def test_any_source_and_a_foreign_mac_are_high_host_bits_medium(seeded):
    # fixed IPs given: one picked at random could fall inside sloppy's /30 and be covered by it
    ok("port create --network net1 --fixed-ip ip-address=192.168.1.61 --allowed-address ip-address=::/0 anywhere")
    ok(
        "port create --network net1 --fixed-ip ip-address=192.168.1.62 "
        "--allowed-address ip-address=192.168.1.77,mac-address=fa:16:3e:7b:e9:03 thief"
    )
    ok(
        "port create --network net1 --fixed-ip ip-address=192.168.1.63 --allowed-address ip-address=192.168.1.201/30 sloppy"
    )
    code, findings = lint()
    assert code == 3
    assert [(f["Severity"], f["Check"], f["Ports"], f["Address"]) for f in findings] == [
        ("high", "any-source", ["anywhere"], "::/0"),
        ("high", "foreign-mac", ["thief", "server2"], "192.168.1.77"),
        ("medium", "host-bits", ["sloppy"], "192.168.1.201/30"),
        ("info", "vip", ["server1", "server2"], "192.168.1.10"),
    ]
    for finding in findings[:3]:  # every fix is a command that runs
        for command in finding["Fix"].split(" && "):
            ok(shlex.join(shlex.split(command)[1:]))
    assert [f["Check"] for f in lint()[1]] == ["vip"]


def test_only_medium_and_low_findings_exit_0(seeded):
    ok(
        "port create --network net1 --allowed-address ip-address=192.168.1.201/30 --allowed-address ip-address=10.9.0.0/16 r"
    )
    code, findings = lint()
    assert code == 0
    assert [(f["Severity"], f["Check"]) for f in findings] == [
        ("medium", "host-bits"), ("low", "outside-subnets"), ("info", "vip"),
    ]  # fmt: skip


def test_ports_unchecked_as_impersonators_still_count_as_victims(seeded):
    ok("port create --network net1 --device-owner network:dhcp --fixed-ip ip-address=192.168.1.3 dhcp")
    ok("port create --network net1 --disable-port-security --fixed-ip ip-address=192.168.1.4 off")
    ok("port create --network net1 --fixed-ip ip-address=192.168.1.100 --allowed-address ip-address=192.168.1.0/29 vm")
    unnamed = ok("port list --fixed-ip ip-address=192.168.1.2 -f value -c ID").strip()
    code, findings = lint()
    assert code == 3
    assert [(f["Check"], f["Ports"]) for f in findings if f["Check"] != "vip"] == [
        ("impersonation", ["vm", unnamed, "dhcp", "off"]),
        ("unchecked", ["dhcp", "off"]),
    ]


def test_a_name_shared_with_another_network_is_replaced_by_the_id_in_the_fix(seeded):
    ok("network create net2")
    ok("port create --network net2 twin")
    ok("port create --network net1 --allowed-address ip-address=0.0.0.0/0 twin")
    twin_id = ok("port list --network net1 --name twin -f value -c ID").strip()
    code, findings = lint("--network net1")
    assert code == 3
    assert findings[0]["Fix"] == f"portsec port unset {twin_id} --allowed-address ip-address=0.0.0.0/0"
    ok(findings[0]["Fix"].removeprefix("portsec "))
    assert lint("--network net1")[0] == 0


def test_errors_exit_1_and_port_and_network_are_exclusive(seeded):
    for args in ("noport", "--network nonet"):
        result = run(f"pair lint {args}")
        assert result.code == 1 and "found for" in result.err
    with pytest.raises(SystemExit) as usage:
        run("pair lint server1 --network net1")
    assert usage.value.code == 2
    assert "exit status: 3 when a high finding exists" in run("help pair lint").out


def test_against_a_server_the_lint_says_the_same(seeded):
    ok("port create --network net1 --allowed-address ip-address=192.168.1.128/25 wide")
    embedded = lint()
    with serve(seeded) as url:
        assert lint(f"--endpoint {url}") == embedded
        assert lint(f"--endpoint {url} --network net1") == embedded
        result = run(f"--endpoint {url} pair lint wide -f value -c Severity -c Check")
    assert embedded[0] == 3
    assert (result.code, result.out) == (3, "high impersonation\n")
