"""The resources portsec serves, once: the API's routes, the embedded client and the CLI all read them here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portsec.domain import errors
from portsec.domain.model import Context
from portsec.domain.resources import PLURALS
from portsec.service import networks, ports, subnets, views
from portsec.service.common import Limits
from portsec.store.database import Tx


@dataclass(frozen=True)
class Resource:
    name: str
    service: Any  # the module with create/get/list_/update/delete
    view: Callable[[Any, Context], dict[str, Any]]
    not_found: Callable[[str], errors.NeutronError]
    update_checks_limits: bool = False  # a port's update checks its pairs against the maximum

    @property
    def plural(self) -> str:
        return PLURALS[self.name]

    def update(self, tx: Tx, ctx: Context, item_id: str, body: Any, limits: Limits, if_revision: int | None) -> Any:
        extra = {"limits": limits} if self.update_checks_limits else {}
        return self.service.update(tx, ctx, item_id, body, if_revision=if_revision, **extra)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("network", networks, lambda n, _ctx: views.network(n), lambda i: errors.NetworkNotFound(net_id=i)),
        Resource("subnet", subnets, lambda s, _ctx: views.subnet(s), lambda i: errors.SubnetNotFound(subnet_id=i)),
        Resource("port", ports, views.port, lambda i: errors.PortNotFound(port_id=i), update_checks_limits=True),
    )
}
