"""Errors at the edges: the one table from Neutron error families to HTTP status codes.

The API turns an error into Neutron's body with this status; the CLI prints it
the way the openstack client does ("ConflictException: 409: <message>").
"""

from __future__ import annotations

from typing import Any

from portsec.domain import errors

_STATUS: tuple[tuple[type[errors.NeutronError], int], ...] = (
    (errors.BadRequest, 400),
    (errors.NotAuthorized, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PreconditionFailed, 412),
    (errors.ServiceUnavailable, 503),
)
_CLIENT_NAMES = {
    400: "BadRequestException",
    403: "ForbiddenException",
    404: "NotFoundException",
    409: "ConflictException",
    412: "PreconditionFailedException",
}


def status_of(err: errors.NeutronError) -> int:
    for family, status in _STATUS:
        if isinstance(err, family):
            return status
    return 500


def body_of(err: errors.NeutronError) -> dict[str, Any]:
    return {"NeutronError": {"type": err.type, "message": err.msg, "detail": ""}}


def cli_message(err: errors.NeutronError) -> str:
    status = status_of(err)
    return f"{_CLIENT_NAMES.get(status, 'HttpException')}: {status}: {err.msg}"
