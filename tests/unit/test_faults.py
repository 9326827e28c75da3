"""A server's error through the HTTP client, printed as the openstack client prints it (reference §6.3)."""

import httpx
import pytest

from portsec import faults
from portsec.client.http import HTTPClient
from portsec.domain import errors

KEYSTONE_401 = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}


def neutron(kind: str, message: str) -> dict[str, dict[str, str]]:
    return {"NeutronError": {"type": kind, "message": message, "detail": ""}}


@pytest.mark.parametrize(
    ("status", "body", "family", "line"),
    [
        (400, neutron("HTTPBadRequest", "bad"), errors.BadRequest, "BadRequestException: 400: bad"),
        (401, KEYSTONE_401, errors.NeutronError,
         "HttpException: 401: The request you have made requires authentication."),
        (403, neutron("PolicyNotAuthorized", "no"), errors.NotAuthorized, "ForbiddenException: 403: no"),
        (404, neutron("PortNotFound", "gone"), errors.NotFound, "NotFoundException: 404: gone"),
        (409, neutron("MacAddressInUse", "taken"), errors.Conflict, "ConflictException: 409: taken"),
        (412, neutron("RevisionNumberConstraintFailed", "old"), errors.PreconditionFailed,
         "PreconditionFailedException: 412: old"),
        (413, neutron("HTTPRequestEntityTooLarge", "big"), errors.NeutronError, "HttpException: 413: big"),
        (500, neutron("HTTPInternalServerError", "oops"), errors.NeutronError, "HttpException: 500: oops"),
        (503, neutron("ServiceUnavailable", "later"), errors.ServiceUnavailable, "HttpException: 503: later"),
    ],
)  # fmt: skip
def test_a_server_error_keeps_its_status_and_family(status, body, family, line):
    client = HTTPClient("http://portsec.test")
    client.http = httpx.Client(
        base_url="http://portsec.test/v2.0", transport=httpx.MockTransport(lambda _r: httpx.Response(status, json=body))
    )
    with pytest.raises(errors.NeutronError) as caught:
        client.list("port")
    assert isinstance(caught.value, family)  # callers catch errors.NotFound etc. as with the embedded client
    assert faults.status_of(caught.value) == status
    assert faults.cli_message(caught.value) == line


def test_the_status_table_reads_both_ways():
    for family, status in faults._STATUS:
        assert faults.family_of(status) is family
        assert faults.status_of(family()) == status
    assert faults.family_of(418) is errors.NeutronError
