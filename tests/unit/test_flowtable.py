"""The agent's installed-flow table: what one round sends, and what it then believes is on the switch."""

from __future__ import annotations

from portsec.agent.flowtable import BRIDGE, FlowTable
from portsec.guards import guard_from_view
from portsec.openflow.compiler import compile_port_flows
from portsec.openflow.pipeline import bridge_flows


def _port(n: int, ip: str, pairs: tuple[str, ...] = ()) -> dict[str, object]:
    mac = f"fa:16:3e:00:00:{n:02x}"
    return {
        "id": f"{n:08x}-0000-4000-8000-000000000000", "network_id": "net", "mac_address": mac,
        "port_security_enabled": True, "fixed_ips": [{"ip_address": ip}],
        "allowed_address_pairs": [{"mac_address": mac, "ip_address": p} for p in pairs],
    }  # fmt: skip


def _flows(port: dict[str, object], ofport: int) -> list[object]:
    return list(compile_port_flows(guard_from_view(port), ofport))


def test_a_round_touches_only_the_port_that_changed() -> None:
    a, b = _port(1, "10.0.0.1"), _port(2, "10.0.0.2")
    table = FlowTable()
    first = {BRIDGE: list(bridge_flows()), a["id"]: _flows(a, 1), b["id"]: _flows(b, 2)}
    table.commit(first)
    a2 = _port(1, "10.0.0.1", ("10.0.0.100",))
    batch = table.diff({a["id"]: _flows(a2, 1)})
    assert not batch.deletes
    assert {f.reason for f in batch.adds} == {"allow", "vip"} and len(batch.adds) == 2  # the pair's ARP (a VIP) and IP
    assert all(dict(f.match)["in_port"] == "1" for f in batch.adds)


def test_an_ofport_handed_from_a_deleted_port_to_a_new_one_in_one_round() -> None:
    old, new = _port(1, "10.0.0.1"), _port(2, "10.0.0.2")
    table = FlowTable()
    table.commit({old["id"]: _flows(old, 5)})
    desired = {old["id"]: [], new["id"]: _flows(new, 5)}
    batch = table.diff(desired)
    added = {f.key for f in batch.adds}
    assert not {f.key for f in batch.deletes} & added, "a key the new port adds must not be deleted after it"
    table.commit(desired)
    assert set(table.flows_of(new["id"])) == set(_flows(new, 5))
    assert not table.flows_of(old["id"])
    assert {owner for owner, _ in table.installed.values()} == {new["id"]}


def test_an_empty_list_removes_a_port_and_a_repeat_round_sends_nothing() -> None:
    a = _port(1, "10.0.0.1")
    table = FlowTable()
    table.commit({a["id"]: _flows(a, 1)})
    assert not table.diff({a["id"]: _flows(a, 1)})
    batch = table.diff({a["id"]: []})
    assert set(batch.deletes) == set(_flows(a, 1)) and not batch.adds
    table.commit({a["id"]: []})
    assert not table.installed and not table.owners()
