"""The service layer on both backends: Neutron's semantics, revisions, change log, atomicity."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from portsec.domain import errors
from portsec.domain.model import AllowedPair, Context
from portsec.service import networks, ports, subnets, views
from portsec.service.common import Limits, Listing
from portsec.store.database import Database
from portsec.store.schema import changes
from tests.conftest import dump


def _setup(db: Database, ctx: Context, net_body: dict[str, Any] | None = None) -> tuple[Any, Any]:
    with db.transaction() as tx:
        net = networks.create(tx, ctx, {"name": "net1", **(net_body or {})})
        sub = subnets.create(tx, ctx, {"network_id": net.id, "cidr": "192.168.1.0/24", "ip_version": 4, "name": "s1"})
    return net, sub


def _port(db: Database, ctx: Context, body: dict[str, Any], limits: Limits = Limits()) -> Any:
    with db.transaction() as tx:
        return ports.create(tx, ctx, body, limits)


def _update(db: Database, ctx: Context, port_id: str, body: dict[str, Any], **kw: Any) -> Any:
    with db.transaction() as tx:
        return ports.update(tx, ctx, port_id, body, **kw)


def _change_log(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(changes.c.resource, changes.c.operation, changes.c.revision_number).order_by(changes.c.seq)
        )
        return [tuple(r) for r in rows]


def test_port_defaults_and_generated_mac(db, admin):
    net, sub = _setup(db, admin)
    port = _port(db, admin, {"network_id": net.id})
    assert port.mac_address.startswith("fa:16:3e:") and len(port.mac_address) == 17
    assert port.status == "DOWN" and port.revision_number == 1 and port.port_security_enabled
    (fixed,) = port.fixed_ips
    assert fixed.subnet_id == sub.id and fixed.ip_address != "192.168.1.1"  # never the gateway
    body = views.port(port, admin)
    assert body["security_groups"] == [] and body["allowed_address_pairs"] == []
    assert body["tenant_id"] == body["project_id"] == "admin"


def test_pairs_get_port_mac_come_back_sorted_and_bump_revision_once(db, admin):
    net, _ = _setup(db, admin)
    port = _port(db, admin, {"network_id": net.id, "mac_address": "fa:16:3e:3e:e3:14"})
    pairs = [{"ip_address": "192.168.1.11", "mac_address": "fa:16:3e:00:00:11"}, {"ip_address": "192.168.1.10"}]
    updated = _update(db, admin, port.id, {"allowed_address_pairs": pairs})
    assert updated.allowed_address_pairs == (
        AllowedPair("fa:16:3e:00:00:11", "192.168.1.11"),
        AllowedPair("fa:16:3e:3e:e3:14", "192.168.1.10"),
    )
    assert updated.revision_number == 2
    with db.transaction() as tx:
        assert ports.get(tx, admin, port.id) == updated
    again = _update(db, admin, port.id, {"allowed_address_pairs": list(reversed(pairs))})
    assert again.revision_number == 2  # same set: nothing changed, no bump
    cleared = _update(db, admin, port.id, {"allowed_address_pairs": None})
    assert cleared.allowed_address_pairs == () and cleared.revision_number == 3


def test_change_log_follows_every_write_in_order(db, admin):
    net, _ = _setup(db, admin)
    port = _port(db, admin, {"network_id": net.id})
    _update(db, admin, port.id, {"name": "renamed"})
    _update(db, admin, port.id, {"name": "renamed"})  # no-op: no entry
    with db.transaction() as tx:
        ports.delete(tx, admin, port.id)
    assert _change_log(db) == [
        ("network", "create", 0),
        ("subnet", "create", 0),
        ("network", "update", 1),
        ("port", "create", 1),
        ("port", "update", 2),
        ("port", "delete", 2),
    ]


def test_port_security_resolution(db, admin):
    net, _ = _setup(db, admin, {"port_security_enabled": False})
    first = _port(db, admin, {"network_id": net.id})
    second = _port(db, admin, {"network_id": net.id, "port_security_enabled": True})
    assert not first.port_security_enabled and second.port_security_enabled
    dhcp = _port(db, admin, {"network_id": net.id, "device_owner": "network:dhcp", "port_security_enabled": True})
    assert not dhcp.port_security_enabled and dhcp.trusted
    # DHCP takes the lowest free address; the other two got random ones and may hold .2 or .3.
    taken = {first.fixed_ips[0].ip_address, second.fixed_ips[0].ip_address}
    lowest_free = next(f"192.168.1.{i}" for i in range(2, 255) if f"192.168.1.{i}" not in taken)
    assert dhcp.fixed_ips[0].ip_address == lowest_free


def test_disabling_port_security_needs_pairs_cleared_in_the_same_request(db, admin):
    net, _ = _setup(db, admin)
    port = _port(db, admin, {"network_id": net.id, "allowed_address_pairs": [{"ip_address": "10.9.9.9"}]})
    before = dump(db)
    with pytest.raises(errors.AddressPairAndPortSecurityRequired):
        _update(db, admin, port.id, {"port_security_enabled": False})
    with pytest.raises(errors.AddressPairAndPortSecurityRequired):
        _update(
            db, admin, port.id, {"port_security_enabled": False, "allowed_address_pairs": [{"ip_address": "1.1.1.1"}]}
        )
    assert dump(db) == before
    off = _update(db, admin, port.id, {"port_security_enabled": False, "allowed_address_pairs": []})
    assert not off.port_security_enabled and off.allowed_address_pairs == ()
    with pytest.raises(errors.AddressPairAndPortSecurityRequired):
        _update(db, admin, port.id, {"allowed_address_pairs": [{"ip_address": "1.1.1.1"}]})


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"mac_address": "fa:16:3e:3e:e3:14"}, errors.MacAddressInUse),
        ({"fixed_ips": [{"ip_address": "192.168.1.138"}]}, errors.IpAddressAlreadyAllocated),
        ({"fixed_ips": [{"ip_address": "10.0.0.5"}]}, errors.InvalidIpForNetwork),
        ({"fixed_ips": [{"ip_address": "192.168.1.255"}]}, errors.InvalidIpForNetwork),
        ({"fixed_ips": [{"subnet_id": "6a9d31e7-0b2e-43a2-8042-e33f944c2c38"}]}, errors.SubnetNotFound),
        ({"security_groups": ["6a9d31e7-0b2e-43a2-8042-e33f944c2c38"]}, errors.SecurityGroupNotFound),
        ({"port_security_enabled": False, "allowed_address_pairs": [{"ip_address": "1.1.1.1"}]},
         errors.AddressPairAndPortSecurityRequired),
        ({"allowed_address_pairs": [{"ip_address": f"10.0.0.{i}"} for i in range(11)]}, errors.AllowedAddressPairExhausted),
        ({"network_id": "6a9d31e7-0b2e-43a2-8042-e33f944c2c38"}, errors.NetworkNotFound),
    ],
)  # fmt: skip
def test_refused_creates_change_nothing(db, admin, body, kind):
    net, _ = _setup(db, admin)
    _port(
        db,
        admin,
        {"network_id": net.id, "mac_address": "fa:16:3e:3e:e3:14", "fixed_ips": [{"ip_address": "192.168.1.138"}]},
    )
    before = dump(db)
    with pytest.raises(kind):
        _port(db, admin, {"network_id": net.id, **body})
    assert dump(db) == before


def test_if_match_revision(db, admin):
    net, _ = _setup(db, admin)
    port = _port(db, admin, {"network_id": net.id})
    with pytest.raises(errors.RevisionNumberConstraintFailed, match="Constrained to 0, but current revision is 1"):
        _update(db, admin, port.id, {"name": "x"}, if_revision=0)
    assert _update(db, admin, port.id, {"name": "x"}, if_revision=1).revision_number == 2


def test_fixed_ip_update_keeps_releases_and_claims(db, admin):
    net, sub = _setup(db, admin)
    port = _port(db, admin, {"network_id": net.id, "fixed_ips": [{"ip_address": "192.168.1.50"}]})
    moved = _update(db, admin, port.id, {"fixed_ips": [{"subnet_id": sub.id}, {"ip_address": "192.168.1.60"}]})
    assert [f.ip_address for f in moved.fixed_ips] == ["192.168.1.50", "192.168.1.60"]
    other = _port(db, admin, {"network_id": net.id, "fixed_ips": [{"ip_address": "192.168.1.70"}]})
    _update(db, admin, port.id, {"fixed_ips": [{"ip_address": "192.168.1.60"}]})
    # 192.168.1.50 was released and may be taken again
    _update(db, admin, other.id, {"fixed_ips": [{"ip_address": "192.168.1.50"}]})


def test_projects_do_not_see_each_other(db):
    alice, bob = Context("alice", False, ("member", "reader")), Context("bob", False, ("member", "reader"))
    net, _ = _setup(db, alice)
    port = _port(db, alice, {"network_id": net.id})
    with db.transaction() as tx:
        assert ports.list_(tx, bob) == []
        with pytest.raises(errors.PortNotFound):
            ports.get(tx, bob, port.id)
        with pytest.raises(errors.NetworkNotFound):
            ports.create(tx, bob, {"network_id": net.id})
    with pytest.raises(errors.PolicyNotAuthorized, match="binding:host_id"):
        _update(db, alice, port.id, {"binding:host_id": "hv1"})
    assert "binding:host_id" not in views.port(port, alice)


def test_shared_network_member_cannot_set_pairs(db, admin):
    net, _ = _setup(db, admin, {"shared": True})
    bob = Context("bob", False, ("member", "reader"))
    port = _port(db, bob, {"network_id": net.id})
    with pytest.raises(errors.PolicyNotAuthorized, match="allowed_address_pairs"):
        _update(db, bob, port.id, {"allowed_address_pairs": [{"ip_address": "1.1.1.1"}]})


def test_list_filters_and_pages(db, admin):
    net, _ = _setup(db, admin)
    made = [_port(db, admin, {"network_id": net.id, "name": f"p{i}"}) for i in range(5)]
    with db.transaction(write=False) as tx:
        assert [p.name for p in ports.list_(tx, admin, Listing({"name": ["p1", "p3"]}, sort=[("name", True)]))] == [
            "p1",
            "p3",
        ]
        ip = made[2].fixed_ips[0].ip_address
        assert [p.id for p in ports.list_(tx, admin, Listing({"fixed_ips": [f"ip_address={ip}"]}))] == [made[2].id]
        first = ports.list_(tx, admin, Listing(sort=[("name", False)], limit=2))
        second = ports.list_(tx, admin, Listing(sort=[("name", False)], limit=2, marker=first[-1].id))
        assert [p.name for p in first + second] == ["p4", "p3", "p2", "p1"]


def test_network_and_subnet_in_use(db, admin):
    net, sub = _setup(db, admin)
    _port(db, admin, {"network_id": net.id})
    with pytest.raises(errors.SubnetInUse), db.transaction() as tx:
        subnets.delete(tx, admin, sub.id)
    with pytest.raises(errors.NetworkInUse), db.transaction() as tx:
        networks.delete(tx, admin, net.id)


def test_ipv6_slaac_gets_eui64(db, admin):
    net, _ = _setup(db, admin)
    with db.transaction() as tx:
        subnets.create(tx, admin, {"network_id": net.id, "cidr": "2001:db8::/64", "ip_version": 6,
                                   "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"})  # fmt: skip
    port = _port(db, admin, {"network_id": net.id, "mac_address": "fa:16:3e:3e:e3:14"})
    assert "2001:db8::f816:3eff:fe3e:e314" in [f.ip_address for f in port.fixed_ips]
    assert len(port.fixed_ips) == 2
