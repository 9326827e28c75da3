"""Body processing order: unknown keys, then verb rules, then each attribute in map order."""

import pytest

from portsec.domain import errors
from portsec.domain.attributes import prepare_create, prepare_update
from portsec.domain.resources import NETWORK, PORT

NET = "0d6c7e4b-8f7a-4a51-9d3f-3a1c2b9e7f00"


def _create(body, project="p1", admin=True):
    return prepare_create(PORT, body, project, admin)


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        ({"network_id": NET, "bogus": 1, "zap": 2}, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus, zap'"),
        ({"network_id": NET, "status": "ACTIVE"}, "HTTPBadRequest", "Attribute 'status' not allowed in POST"),
        ({"name": "x"}, "HTTPBadRequest", "Failed to parse request. Required attribute 'network_id' not specified"),
        ({"network_id": "nope"}, "HTTPBadRequest", "Invalid input for network_id. Reason: 'nope' is not a valid UUID."),
        ({"network_id": NET, "name": "x" * 256}, "HTTPBadRequest",
         f"Invalid input for name. Reason: '{'x' * 256}' exceeds maximum length of 255."),
        ({"network_id": NET, "admin_state_up": "maybe"}, "InvalidInput",
         "Invalid input for operation: 'maybe' cannot be converted to boolean."),
        ({"network_id": NET, "port_security_enabled": None}, "InvalidInput",
         "Invalid input for operation: 'None' cannot be converted to boolean."),
        # name comes before mac_address in the map, so its error wins
        ({"network_id": NET, "name": 5, "mac_address": "zz"}, "HTTPBadRequest",
         "Invalid input for name. Reason: '5' is not a valid string."),
        ({"network_id": NET, "fixed_ips": [{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.1"}]}, "HTTPBadRequest",
         "Invalid input for fixed_ips. Reason: Duplicate IP address '10.0.0.1'."),
        ({"network_id": NET, "project_id": "a", "tenant_id": "b"}, "HTTPBadRequest", "'project_id' and 'tenant_id' do not match"),
    ],
)  # fmt: skip
def test_first_failure_is_reported_with_neutrons_words(body, kind, message):
    with pytest.raises(errors.NeutronError) as caught:
        _create(body)
    assert (caught.value.type, caught.value.msg) == (kind, message)


def test_defaults_are_filled_and_booleans_converted():
    values = _create({"network_id": NET, "admin_state_up": "yes", "tenant_id": "p1"})
    assert values["admin_state_up"] is True
    assert values["project_id"] == "p1"
    assert values["allowed_address_pairs"] == []
    assert values["name"] == ""


def test_a_member_cannot_create_in_another_project():
    with pytest.raises(errors.HTTPBadRequest, match="other than the authenticated project"):
        _create({"network_id": NET, "project_id": "other"}, admin=False)


def test_update_refuses_read_only_attributes():
    with pytest.raises(errors.HTTPBadRequest, match="Cannot update read-only attribute network_id"):
        prepare_update(PORT, {"network_id": NET})
    assert prepare_update(PORT, {"allowed_address_pairs": None}) == {"allowed_address_pairs": []}
    assert prepare_update(NETWORK, {"shared": "false"}) == {"shared": False}


def test_a_nul_character_is_refused_in_strings():
    """PostgreSQL cannot store it: refused as invalid input rather than failing in the database."""
    with pytest.raises(errors.HTTPBadRequest, match="contains a NUL character"):
        prepare_update(NETWORK, {"name": "a\x00b"})
