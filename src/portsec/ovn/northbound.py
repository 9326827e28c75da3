"""OVN's Northbound database through ovsdbapp: make it hold portsec's intent, in one transaction per batch.

Only rows portsec owns are touched: Logical_Switches whose external_ids name a
portsec network, the ports on them, and portsec's port group with its ACLs.

A write is computed inside the transaction (ovsdbapp runs a command against the
IDL in its connection thread, and runs it again on the fresh contents if the
database changed under it), so what is compared is what is committed. A port's
row is written only when its content differs from the intent, and never when the
row carries a newer portsec revision than the intent (a stale writer, such as a
second server behind in the change log, never overwrites a newer one).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ovsdbapp.backend.ovs_idl import command, connection, idlutils, transaction
from ovsdbapp.schema.ovn_northbound import impl_idl

from portsec.ovn.intent import ACLS, NETWORK_KEY, PORT_GROUP, REVISION_KEY, PortIntent, SwitchIntent, switch_name

LOG = logging.getLogger(__name__)
TABLES = ("NB_Global", "Logical_Switch", "Logical_Switch_Port", "Port_Group", "ACL")
WHY_KEY = "portsec:why"
SECONDS_PER_PORT = 0.005  # added to a transaction's time limit for each port it writes


@dataclass(frozen=True)
class Drift:
    """One difference between the store's intent and NB: ``kind`` switch/port/port-group/acl, and what it was."""

    kind: str
    name: str
    found: str  # missing, extra, changed (with the columns), stale (NB is newer: left alone)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.found}"


@dataclass
class Intent:
    """What a reconcile aims at: ``None`` for a row that must not exist. ``full`` also removes every portsec row
    not named here, and checks the port group and its ACLs."""

    switches: dict[str, SwitchIntent | None] = field(default_factory=dict)
    ports: dict[str, PortIntent | None] = field(default_factory=dict)
    full: bool = False


class _Idl(connection.OvsdbIdl):
    """The NB IDL, telling ``on_port`` the name of every Logical_Switch_Port whose ``up`` changes."""

    on_port: Callable[[str], None] | None = None

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        if self.on_port is None or row._table.name != "Logical_Switch_Port":
            return
        if event != "update" or "up" in getattr(updates, "_data", {"up": None}):
            self.on_port(row.name)


class Northbound:
    def __init__(self, target: str, timeout: float = 10.0, on_port: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.timeout = timeout
        idl = _Idl.from_server(target, "OVN_Northbound", helper_tables=TABLES)
        idl.on_port = on_port
        self.connection = connection.Connection(idl=idl, timeout=timeout)
        # ovsdbapp keeps one connection per API class: a class per instance lets one process hold several.
        api_class = type("PortsecNorthbound", (impl_idl.OvnNbApiIdlImpl,), {"_ovsdb_connection": None})
        self.api = api_class(self.connection)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.connection.stop(timeout=5)

    def reconcile(self, intent: Intent, dry_run: bool = False) -> list[Drift]:
        """Make NB hold ``intent`` (or, with ``dry_run``, only say what differs); the differences found.

        The transaction may take as long as its size needs: a full sync of 10,000 ports writes for ~20 s
        through python-ovs on this machine, where a round's few ports take milliseconds.
        """
        cmd = _Reconcile(self.api, intent, dry_run)
        timeout = self.timeout + len(intent.ports) * SECONDS_PER_PORT
        txn = transaction.Transaction(self.api, self.connection, timeout, check_error=True)  # api.transaction()
        txn.add(cmd)  # would drop the timeout
        with self.lock:
            txn.commit()
        return cmd.drift

    def bump_nb_cfg(self) -> int:
        """NB_Global.nb_cfg plus one; every live ovn-controller echoes it in its Chassis_Private (liveness)."""
        cmd = _BumpNbCfg(self.api)
        with self.lock, self.api.transaction(check_error=True) as txn:
            txn.add(cmd)
        return int(cmd.result)

    def ports_up(self, names: Iterable[str]) -> dict[str, bool | None]:
        """``Logical_Switch_Port.up`` of each named port (None: no such row)."""
        with self.connection.lock:
            found: dict[str, bool | None] = {}
            for name in names:
                row = _port_row(self.api, name)
                found[name] = None if row is None else bool(row.up and row.up[0])
            return found

    def holds_portsec(self) -> bool:
        """Whether NB still has portsec's port group: False after NB was wiped (or while it is away)."""
        with self.connection.lock:
            return _port_group(self.api) is not None


def _port_row(api: Any, name: str) -> Any:
    return idlutils.row_by_value(api.idl, "Logical_Switch_Port", "name", name, None)


def _port_group(api: Any) -> Any:
    return idlutils.row_by_value(api.idl, "Port_Group", "name", PORT_GROUP, None)


def _revision(row: Any) -> int:
    try:
        return int(row.external_ids.get(REVISION_KEY, -1))
    except ValueError:
        return -1


class _BumpNbCfg(command.BaseCommand):  # type: ignore[misc]
    def run_idl(self, txn: Any) -> None:
        nb_global = next(iter(self.api.tables["NB_Global"].rows.values()))
        self.result = nb_global.nb_cfg + 1
        nb_global.nb_cfg = self.result


class _Reconcile(command.BaseCommand):  # type: ignore[misc]
    """Compare and write inside one NB transaction; ``drift`` says what differed."""

    def __init__(self, api: Any, intent: Intent, dry_run: bool) -> None:
        super().__init__(api)
        self.intent = intent
        self.dry_run = dry_run
        self.drift: list[Drift] = []

    def __str__(self) -> str:  # ovsdbapp puts commands in its errors: not 10,000 ports' intent
        kind = "full sync" if self.intent.full else "round"
        return f"reconcile({kind}: {len(self.intent.switches)} switches, {len(self.intent.ports)} ports)"

    __repr__ = __str__

    def run_idl(self, txn: Any) -> None:
        self.txn = txn
        self.drift = []  # run again from scratch when ovsdbapp retries on fresh contents
        tables = self.api.tables
        switches = {
            row.name: row for row in self._switch_rows(tables) if NETWORK_KEY in row.external_ids
        }  # fmt: skip
        group = self._port_group()
        # A full sync compares the group's members; a round only sets those of the ports it writes (an insert or
        # delete of an element is a no-op when it is there or gone already), never reading a 10k-member set.
        members = {r.uuid for r in group.ports} if group is not None and self.intent.full else None
        wanted_switches = dict(self.intent.switches)
        if self.intent.full:
            wanted_switches.update({name: None for name in switches if name not in wanted_switches})
        for name, wanted_switch in wanted_switches.items():
            self._switch(switches, name, wanted_switch)
        ports = self.intent.ports
        if self.intent.full:
            ports = dict(ports)
            for name, row in switches.items():
                if wanted_switches.get(name) is None:
                    continue  # its ports go with it
                ports.update({p.name: None for p in row.ports if p.name not in ports})
        for name, wanted_port in ports.items():
            self._port(switches, group, members, name, wanted_port)

    # -- rows ----------------------------------------------------------------------------------

    def _switch_rows(self, tables: Mapping[str, Any]) -> Iterable[Any]:
        if self.intent.full:
            return tables["Logical_Switch"].rows.values()
        names = set(self.intent.switches) | {p.switch for p in self.intent.ports.values() if p is not None}
        names |= {_switch_of(r) for r in self._port_rows(self.intent.ports)}
        rows = []
        for name in names:
            rows.extend(idlutils.rows_by_value(self.api.idl, "Logical_Switch", "name", name))
        return rows

    def _port_rows(self, names: Iterable[str]) -> list[Any]:
        return [row for row in (_port_row(self.api, n) for n in names) if row is not None]

    def _port_group(self) -> Any:
        group = _port_group(self.api)
        if not self.intent.full:
            return group
        if group is None:
            self.drift.append(Drift("port-group", PORT_GROUP, "missing"))
            if self.dry_run:
                return None
            group = self.txn.insert(self.api.tables["Port_Group"])
            group.name = PORT_GROUP
            group.acls = []
            group.ports = []
        have = {(a.direction, a.priority, a.match, a.action): a for a in group.acls}
        want = {acl.key(): acl for acl in ACLS}
        for key, row in have.items():
            if key not in want:
                self.drift.append(Drift("acl", row.match, "extra"))
                if not self.dry_run:
                    group.delvalue("acls", row)
        for key, acl in want.items():
            if key not in have:
                self.drift.append(Drift("acl", acl.match, "missing"))
                if not self.dry_run:
                    row = self.txn.insert(self.api.tables["ACL"])
                    row.direction, row.priority, row.match, row.action = key
                    row.external_ids = {WHY_KEY: acl.why}
                    group.addvalue("acls", row)
        return group

    def _switch(self, switches: dict[str, Any], name: str, want: SwitchIntent | None) -> None:
        row = switches.get(name)
        if want is None:
            if row is not None:
                self.drift.append(Drift("switch", name, "extra"))
                if not self.dry_run:
                    row.delete()  # its ports are rows it holds: they go with it
                switches.pop(name)
            return
        if row is None:
            self.drift.append(Drift("switch", name, "missing"))
            if self.dry_run:
                return
            row = self.txn.insert(self.api.tables["Logical_Switch"])
            row.name = name
            row.external_ids = want.external_ids
            row.ports = []
            switches[name] = row
        elif _without_revision(row.external_ids) != _without_revision(want.external_ids):
            if _revision(row) > want.revision:
                self.drift.append(Drift("switch", name, f"stale: NB has revision {_revision(row)}"))
                return
            self.drift.append(Drift("switch", name, "changed: external_ids"))
            if not self.dry_run:
                row.external_ids = want.external_ids

    def _port(self, switches: dict[str, Any], group: Any, members: set[uuid.UUID] | None, name: str,
              want: PortIntent | None) -> None:  # fmt: skip
        row = _port_row(self.api, name)
        if want is None:
            if row is not None:
                self.drift.append(Drift("port", name, "extra"))
                if not self.dry_run:
                    self._unplug(switches, row)
            return
        switch = switches.get(want.switch)
        if switch is None:
            if not self.dry_run:  # the network is not in NB (deleted meanwhile?): the next full sync decides
                LOG.warning("port %s: its switch %s is not in NB", name, want.switch)
            return
        if row is None:
            self.drift.append(Drift("port", name, "missing"))
            if self.dry_run:
                return
            row = self.txn.insert(self.api.tables["Logical_Switch_Port"])
            row.name = name
            self._write(row, want)
            switch.addvalue("ports", row)
            if group is not None and want.enforced:
                group.addvalue("ports", row)
            return
        changed = self._changed(row, want)
        if changed and _revision(row) > want.revision:
            self.drift.append(Drift("port", name, f"stale: NB has revision {_revision(row)}"))
            return
        if changed:
            self.drift.append(Drift("port", name, "changed: " + ", ".join(changed)))
            if not self.dry_run:
                row.verify("external_ids")
                self._write(row, want)
        if group is None:
            return
        if members is None:  # a round, which is never a dry run
            if changed:
                (group.addvalue if want.enforced else group.delvalue)("ports", row)
        elif (row.uuid in members) != want.enforced:
            self.drift.append(Drift("port", name, "changed: port group"))
            if not self.dry_run:
                (group.addvalue if want.enforced else group.delvalue)("ports", row)

    @staticmethod
    def _changed(row: Any, want: PortIntent) -> list[str]:
        changed = []
        if list(row.addresses) != list(want.addresses):
            changed.append("addresses")
        if list(row.port_security) != list(want.port_security):
            changed.append("port_security")
        if (row.enabled[0] if row.enabled else True) != want.enabled:
            changed.append("enabled")
        if row.type or row.options:
            changed.append("type")
        if row.external_ids.get(NETWORK_KEY) != want.network_id:
            changed.append("external_ids")
        return changed

    @staticmethod
    def _write(row: Any, want: PortIntent) -> None:
        row.addresses = list(want.addresses)
        row.port_security = list(want.port_security)
        row.enabled = [want.enabled]
        row.type = ""
        row.options = {}
        row.external_ids = want.external_ids

    @staticmethod
    def _unplug(switches: dict[str, Any], row: Any) -> None:
        """Take the port off its switch; OVSDB then removes the row, which nothing else holds."""
        holders = [switches[_switch_of(row)]] if _switch_of(row) in switches else list(switches.values())
        for switch in holders:
            if any(p.uuid == row.uuid for p in switch.ports):
                switch.delvalue("ports", row)
                return


def _switch_of(row: Any) -> str:
    return switch_name(row.external_ids.get(NETWORK_KEY, ""))


def _without_revision(external_ids: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in external_ids.items() if k != REVISION_KEY}
