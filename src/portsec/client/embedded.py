"""The client the CLI uses with no server: service calls on a local database.

It speaks in Neutron's JSON shapes, like the HTTP API, so the CLI formats the
same dicts whether it runs embedded or against a server.
"""

from __future__ import annotations

import builtins  # `list` below is a method of the class
from collections.abc import Mapping, Sequence
from typing import Any

from portsec.domain.model import Context
from portsec.service import agents, ports, quotas, sources, vips
from portsec.service.common import Limits, Listing
from portsec.service.registry import RESOURCES
from portsec.store.database import Database, now


class EmbeddedClient:
    def __init__(self, db: Database, ctx: Context, limits: Limits | None = None) -> None:
        self.db = db
        self.ctx = ctx
        self.limits = limits or Limits()

    def create(self, resource: str, body: Mapping[str, Any]) -> dict[str, Any]:
        r = RESOURCES[resource]
        made = self.db.run(lambda tx: r.service.create(tx, self.ctx, dict(body), self.limits))
        return r.view(made, self.ctx)

    def get(self, resource: str, resource_id: str) -> dict[str, Any]:
        r = RESOURCES[resource]
        with self.db.transaction(write=False) as tx:
            return r.view(r.service.get(tx, self.ctx, resource_id), self.ctx)

    def list(self, resource: str, filters: Mapping[str, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
        r = RESOURCES[resource]
        with self.db.transaction(write=False) as tx:
            return [r.view(item, self.ctx) for item in r.service.list_(tx, self.ctx, Listing(filters=filters or {}))]

    def update(self, resource: str, resource_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        r = RESOURCES[resource]
        item = self.db.run(lambda tx: r.update(tx, self.ctx, resource_id, dict(body), self.limits, None))
        return r.view(item, self.ctx)

    def delete(self, resource: str, resource_id: str) -> None:
        with self.db.transaction() as tx:
            RESOURCES[resource].service.delete(tx, self.ctx, resource_id)

    def project_id(self) -> str:
        return self.ctx.project_id

    def get_quota(self, project_id: str, which: str = "") -> dict[str, Any]:
        """``which``: "" (the limits), "default" or "details", as the API's paths say."""
        if which == "default":
            return quotas.default(self.ctx, self.limits.quotas, project_id)
        with self.db.transaction(write=False) as tx:
            show = quotas.details if which == "details" else quotas.show
            return dict(show(tx, self.ctx, self.limits.quotas, project_id))

    def update_quota(self, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        request = {"quota": dict(body)}
        return self.db.run(lambda tx: quotas.update(tx, self.ctx, self.limits.quotas, project_id, request))

    def delete_quota(self, project_id: str) -> None:
        self.db.run(lambda tx: quotas.delete(tx, self.ctx, project_id))

    def list_agents(self, filters: Mapping[str, Sequence[Any]] | None = None) -> builtins.list[dict[str, Any]]:
        down_time = agents.down_time_from_environment()
        with self.db.transaction(write=False) as tx:
            return agents.list_(tx, self.ctx, Listing(filters=filters or {}), now(), down_time)

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        with self.db.transaction(write=False) as tx:
            return agents.get(tx, self.ctx, agent_id, now(), agents.down_time_from_environment())

    def update_agent(self, agent_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        down_time = agents.down_time_from_environment()
        return self.db.run(lambda tx: agents.update(tx, self.ctx, agent_id, dict(body), tx.now, down_time))

    def delete_agent(self, agent_id: str) -> None:
        self.db.run(lambda tx: agents.delete(tx, self.ctx, agent_id))

    def list_vips(self, network_id: str | None = None, ip_address: str | None = None) -> builtins.list[dict[str, Any]]:
        with self.db.transaction(write=False) as tx:
            return vips.list_(tx, self.ctx, network_id, ip_address)

    def get_vip(self, ip_address: str, network_id: str | None = None) -> dict[str, Any]:
        with self.db.transaction(write=False) as tx:
            return vips.show(tx, self.ctx, ip_address, network_id)

    def port_sources(self, port_id: str) -> builtins.list[dict[str, Any]]:
        """The sources the agent sampled for the port (a port the caller cannot see is its PortNotFound)."""
        with self.db.transaction(write=False) as tx:
            ports.get(tx, self.ctx, port_id)
            return sources.of_port(tx, port_id)
