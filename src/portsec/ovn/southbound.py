"""OVN's Southbound database, read only: on which chassis (and so which host) each port is bound."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.ovn_southbound import impl_idl

TABLES = ("Chassis", "Chassis_Private", "Encap", "Port_Binding")


@dataclass(frozen=True)
class Chassis:
    name: str
    hostname: str
    encap_ip: str | None
    nb_cfg: int  # the last NB_Global.nb_cfg its ovn-controller has caught up with


class Southbound:
    def __init__(self, target: str, timeout: float = 10.0) -> None:
        self.target = target
        idl = connection.OvsdbIdl.from_server(target, "OVN_Southbound", helper_tables=TABLES)
        self.connection = connection.Connection(idl=idl, timeout=timeout)
        # One connection per ovsdbapp API class (a class attribute): a class per instance lets a process hold several.
        api_class = type("PortsecSouthbound", (impl_idl.OvnSbApiIdlImpl,), {"_ovsdb_connection": None})
        self.api = api_class(self.connection)  # it indexes Port_Binding by logical_port, a schema index

    def close(self) -> None:
        self.connection.stop(timeout=5)

    def hosts(self, ports: Iterable[str]) -> dict[str, str]:
        """The hostname of the chassis each bound port is on (ports bound nowhere are left out)."""
        table = self.api.tables["Port_Binding"]
        found = {}
        with self.connection.lock:
            for name in ports:
                for binding in idlutils.index_lookup_all(table, logical_port=name):
                    chassis: Any = binding.chassis[0] if binding.chassis else None
                    if chassis is not None:
                        found[name] = chassis.hostname or chassis.name
        return found

    def chassis(self) -> list[Chassis]:
        """Every chassis registered in SB, with how far its ovn-controller has caught up (Chassis_Private)."""
        with self.connection.lock:
            caught_up = {p.name: p.nb_cfg for p in self.api.tables["Chassis_Private"].rows.values()}
            return [
                Chassis(c.name, c.hostname or c.name, c.encaps[0].ip if c.encaps else None, caught_up.get(c.name, 0))
                for c in self.api.tables["Chassis"].rows.values()
            ]
