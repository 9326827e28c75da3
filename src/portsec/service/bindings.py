"""What the data plane reports back about ports: status, and the host they are bound to."""

from __future__ import annotations

from dataclasses import replace

from portsec.domain.model import Port
from portsec.service.common import save_update
from portsec.store import ports as store
from portsec.store.database import Tx

ACTIVE, DOWN = "ACTIVE", "DOWN"


def report(tx: Tx, port_id: str, status: str, host: str, rebind: bool = False) -> Port | None:
    """Set ``status`` (and ``binding:host_id`` when empty, or with ``rebind`` whenever the port is ACTIVE on
    ``host``: OVN says which chassis holds it); a port deleted meanwhile is ignored.

    Like Neutron, a status change is a change: the revision bumps and the
    change log records it.
    """
    old = store.get(tx.conn, port_id, for_update=True)
    if old is None:
        return None
    active_on = host if status == ACTIVE else ""
    new = replace(old, status=status, host_id=(active_on or old.host_id) if rebind else (old.host_id or active_on))
    return save_update(tx, "port", old, new, store.update)
