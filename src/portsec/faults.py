"""Errors at the edges: the one table from Neutron error families to HTTP status codes, both ways.

The API turns an error into Neutron's body with this status; the HTTP client
turns a server's status back into the family (``remote_error``); the CLI prints
either the way the openstack client does ("ConflictException: 409: <message>").
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
# openstacksdk's exceptions.raise_from_response: these statuses have a class, any other is an HttpException.
_CLIENT_NAMES = {
    400: "BadRequestException",
    403: "ForbiddenException",
    404: "NotFoundException",
    409: "ConflictException",
    412: "PreconditionFailedException",
}


class RemoteError(errors.NeutronError):
    """An error a server answered, with its status; also an instance of its status's family (see remote_error)."""

    message = "%(msg)s"

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg=msg)
        self.status = status


def status_of(err: errors.NeutronError) -> int:
    if isinstance(err, RemoteError):
        return err.status
    for family, status in _STATUS:
        if isinstance(err, family):
            return status
    return 500


def family_of(status: int) -> type[errors.NeutronError]:
    """The family a status stands for (the table read backwards); NeutronError for the others."""
    return next((family for family, code in _STATUS if code == status), errors.NeutronError)


_REMOTE_CLASSES: dict[type[errors.NeutronError], type[RemoteError]] = {
    family: type(f"Remote{family.__name__}", (RemoteError, family), {})
    for family in (*(family for family, _ in _STATUS), errors.NeutronError)
}


def remote_error(status: int, message: str) -> RemoteError:
    """A server's answer as an error that callers catch by family (``except errors.NotFound``)."""
    return _REMOTE_CLASSES[family_of(status)](status, message)


def body_of(err: errors.NeutronError) -> dict[str, Any]:
    return {"NeutronError": {"type": err.type, "message": err.msg, "detail": ""}}


def cli_message(err: errors.NeutronError) -> str:
    status = status_of(err)
    return f"{_CLIENT_NAMES.get(status, 'HttpException')}: {status}: {err.msg}"
