"""Quota overrides and usage counts, and the lock that makes "count, then create" safe across workers.

SQLite needs no lock: a writer holds the database's write lock from BEGIN
IMMEDIATE to commit. On PostgreSQL two transactions could both count the last
free slot, so a creating transaction first takes a transaction-scoped advisory
lock of its project; the count that follows (READ COMMITTED: a new snapshot per
statement) sees every create that won the lock before it.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portsec.domain.quotas import RESOURCES, UNLIMITED
from portsec.store.schema import networks, ports, quotas, subnets

_TABLES = {"network": networks, "subnet": subnets, "port": ports}
# The first key of PostgreSQL's two-key advisory locks (a key space apart from the change log's one-key locks).
QUOTA_LOCK = 0x71756F74


def _project_key(project_id: str) -> int:
    """A stable 32-bit signed key per project (a collision only makes two projects wait for each other)."""
    key = zlib.crc32(project_id.encode())
    return key - 2**32 if key >= 2**31 else key


def _count(project_id: str, resource: str) -> sa.ScalarSelect[int]:
    table = _TABLES[resource]
    return sa.select(sa.func.count()).select_from(table).where(table.c.project_id == project_id).scalar_subquery()


def lock(conn: Connection, project_id: str) -> None:
    """Until commit, no other transaction creates in (or changes the quotas of) this project."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(QUOTA_LOCK, _project_key(project_id))))


def _limit(resource: str) -> sa.ColumnElement[int]:
    """The limit of ``:project_id`` for ``resource``: its own, else ``:default``."""
    override = sa.select(quotas.c.limit).where(
        quotas.c.project_id == sa.bindparam("project_id"), quotas.c.resource == resource
    )
    return sa.func.coalesce(override.scalar_subquery(), sa.bindparam("default"))


def _create_statements(resource: str) -> tuple[sa.Select[Any], sa.Select[Any], sa.Select[Any]]:
    """Built once per resource, since every create runs them.

    PostgreSQL, two statements: the limit, taking the project's lock in the same
    round trip unless the limit is -1; then, only when limited, the count, in a
    snapshot taken after the lock (READ COMMITTED: one per statement), so it sees
    every create that held the lock before. SQLite, one: its writer holds the
    database's write lock already; the count sits in a CASE, which is evaluated
    only when the limit is not -1.
    """
    table = _TABLES[resource]
    limit = _limit(resource)
    lock = sa.select(sa.func.pg_advisory_xact_lock(QUOTA_LOCK, sa.bindparam("key"))).where(limit != UNLIMITED)
    count = sa.select(sa.func.count()).select_from(table).where(table.c.project_id == sa.bindparam("project_id"))
    both = sa.select(limit, sa.case((limit == UNLIMITED, 0), else_=count.scalar_subquery()))
    return sa.select(limit, lock.scalar_subquery()), count, both


_CREATE = {resource: _create_statements(resource) for resource in RESOURCES}


def limit_and_usage(conn: Connection, project_id: str, resource: str, default: int) -> tuple[int, int]:
    """The project's limit for ``resource`` and how many it has (this transaction's own rows included;
    0 when the limit is -1, since nothing is over it). On PostgreSQL the project stays locked until commit
    unless unlimited."""
    limit_and_lock, count, both = _CREATE[resource]
    params = {"project_id": project_id, "default": default}
    if conn.dialect.name != "postgresql":
        limit, used = conn.execute(both, params).one()
        return int(limit), int(used)
    limit = int(conn.execute(limit_and_lock, {**params, "key": _project_key(project_id)}).one()[0])
    return (limit, 0) if limit == UNLIMITED else (limit, int(conn.execute(count, params).scalar_one()))


def usage(conn: Connection, project_id: str) -> dict[str, int]:
    row = conn.execute(sa.select(*(_count(project_id, r) for r in RESOURCES))).one()
    return dict(zip(RESOURCES, map(int, row), strict=True))


def overrides(conn: Connection, project_id: str) -> dict[str, int]:
    rows = conn.execute(sa.select(quotas.c.resource, quotas.c.limit).where(quotas.c.project_id == project_id))
    return {resource: limit for resource, limit in rows}


def all_overrides(conn: Connection) -> dict[str, dict[str, int]]:
    """Every project with an override: project -> its overrides, ordered by project."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for project_id, resource, limit in conn.execute(sa.select(quotas).order_by(quotas.c.project_id)):
        found[project_id][resource] = limit
    return dict(found)


def set_limit(conn: Connection, project_id: str, resource: str, limit: int) -> None:
    """Update, else insert: callers hold ``lock``, so no other writer inserts the same row meanwhile."""
    where = (quotas.c.project_id == project_id) & (quotas.c.resource == resource)
    if conn.execute(quotas.update().where(where).values(limit=limit)).rowcount == 0:
        conn.execute(quotas.insert().values(project_id=project_id, resource=resource, limit=limit))


def delete(conn: Connection, project_id: str) -> int:
    """Remove the project's overrides; returns how many there were."""
    return int(conn.execute(quotas.delete().where(quotas.c.project_id == project_id)).rowcount)
