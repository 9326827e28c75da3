"""Name-or-ID lookup, the way openstacksdk's find() does it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, cast

from cliff.command import Command

from portsec import faults
from portsec.domain import errors
from portsec.domain.resources import PLURALS

LOG = logging.getLogger(__name__)
VALUES_PER_QUERY = 50  # values of one filter in one list request: they all go in its query string


class CommandError(Exception):
    """A failure found on the client side; printed as is."""


class Client(Protocol):
    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def get(self, resource: str, resource_id: str) -> dict[str, Any]: ...
    def list(self, resource: str, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def update(self, resource: str, resource_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, resource: str, resource_id: str) -> None: ...


def list_where(client: Client, resource: str, key: str, values: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every ``resource`` whose ``key`` is one of ``values``, asked VALUES_PER_QUERY values at a time."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), VALUES_PER_QUERY):
        yield from client.list(resource, {key: wanted[start : start + VALUES_PER_QUERY]})


def find(client: Client, resource: str, name_or_id: str) -> dict[str, Any]:
    """By ID first; else by exact name; two matches or none is an error."""
    try:
        return client.get(resource, name_or_id)
    except (errors.NotFound, errors.BadRequest, errors.NotAuthorized):
        pass
    matches = [
        item
        for item in client.list(resource, {"name": [name_or_id]})
        if name_or_id in (item.get("id"), item.get("name"))
    ]
    label = resource.capitalize()
    if len(matches) > 1:
        raise CommandError(f"More than one {label} exists with the name '{name_or_id}'.")
    if not matches:
        raise CommandError(f"No {label} found for {name_or_id}")
    return matches[0]


def client_of(cmd: Command) -> Client:
    """The client the application opened (embedded database or server)."""
    return cast(Client, cast(Any, cmd.app).client)


def delete_each(client: Client, resource: str, names: Sequence[str]) -> None:
    """Delete every named resource that can be; report the others, as OSC does."""
    failed = 0
    for name in names:
        try:
            client.delete(resource, find(client, resource, name)["id"])
        except (errors.NeutronError, CommandError) as err:
            failed += 1
            message = faults.cli_message(err) if isinstance(err, errors.NeutronError) else str(err)
            LOG.error(f"Failed to delete {resource} with name or ID '{name}': {message}")
    if failed:
        raise CommandError(f"{failed} of {len(names)} {PLURALS[resource]} failed to delete.")
