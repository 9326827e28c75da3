"""Our cells against python-openstackclient's for the same Neutron JSON.

Both go through cliff's formatters, so equal cells mean byte-identical output in
every format (-f table|json|yaml|value|csv).
"""

from __future__ import annotations

from typing import Any

import pytest
from cliff.columns import FormattableColumn
from openstack.network.v2 import network as sdk_network
from openstack.network.v2 import port as sdk_port
from openstack.network.v2 import subnet as sdk_subnet
from openstackclient.network.v2 import network as osc_network
from openstackclient.network.v2 import port as osc_port
from openstackclient.network.v2 import subnet as osc_subnet
from osc_lib import utils

from portsec.cli import show
from portsec.client.embedded import EmbeddedClient
from portsec.domain.model import Context


def _cells(values: tuple[Any, ...]) -> list[Any]:
    return [(v.human_readable(), v.machine_readable()) if isinstance(v, FormattableColumn) else v for v in values]


@pytest.fixture
def resources(sqlite_db) -> dict[str, Any]:
    client = EmbeddedClient(sqlite_db, Context.admin())
    net = client.create("network", {"name": "net1"})
    sub = client.create(
        "subnet",
        {"name": "s1", "network_id": net["id"], "cidr": "192.168.1.0/24", "ip_version": 4,
         "dns_nameservers": ["8.8.8.8", "1.1.1.1"], "host_routes": [{"destination": "10.0.0.0/8", "nexthop": "192.168.1.254"}]},
    )  # fmt: skip
    port = client.create(
        "port",
        {"name": "server1", "network_id": net["id"], "mac_address": "fa:16:3e:3e:e3:14",
         "allowed_address_pairs": [{"ip_address": "192.168.1.10"}, {"ip_address": "10.1.0.0/16", "mac_address": "fa:16:3e:00:00:11"}]},
    )  # fmt: skip
    return {"network": client.get("network", net["id"]), "subnet": sub, "port": port}


def test_port_show(resources):
    obj = sdk_port.Port.existing(**resources["port"])
    columns, attrs = osc_port._get_columns(obj)
    theirs = utils.get_item_properties(obj, attrs, formatters=osc_port._formatters)
    ours = show.show("port", resources["port"])
    assert ours[0] == columns
    assert _cells(ours[1]) == _cells(theirs)


def test_network_show(resources):
    obj = sdk_network.Network.existing(**resources["network"])
    columns, attrs = osc_network._get_columns_network(obj)
    theirs = utils.get_item_properties(obj, attrs, formatters=osc_network._formatters)
    ours = show.show("network", resources["network"])
    assert ours[0] == columns
    assert _cells(ours[1]) == _cells(theirs)


def test_subnet_show(resources):
    obj = sdk_subnet.Subnet.existing(**resources["subnet"])
    columns, attrs = osc_subnet._get_columns(obj)
    theirs = utils.get_item_properties(obj, attrs, formatters=osc_subnet._formatters)
    ours = show.show("subnet", resources["subnet"])
    assert ours[0] == columns
    assert _cells(ours[1]) == _cells(theirs)


@pytest.mark.parametrize(
    ("resource", "sdk_class", "attrs", "formatters", "ours"),
    [
        ("port", sdk_port.Port, ("id", "name", "mac_address", "fixed_ips", "status"), osc_port._list_formatters, show.PORT_LIST),
        ("port", sdk_port.Port, ("security_group_ids", "device_owner", "tags", "trunk_details"), osc_port._list_formatters, show.PORT_LIST_LONG),
        ("network", sdk_network.Network, ("id", "name", "subnet_ids"), osc_network._formatters, show.NETWORK_LIST),
        ("subnet", sdk_subnet.Subnet, ("id", "name", "network_id", "cidr"), osc_subnet._formatters, show.SUBNET_LIST),
    ],
)  # fmt: skip
def test_list_cells(resources, resource, sdk_class, attrs, formatters, ours):
    obj = sdk_class.existing(**resources[resource])
    theirs = utils.get_item_properties(obj, attrs, formatters=formatters)
    _, rows = show.table(ours, [resources[resource]])
    assert _cells(rows[0]) == _cells(theirs)
