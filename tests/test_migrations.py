"""The migrations build exactly the schema the code declares, on both backends, from nothing or from 0001."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from portsec.domain.model import Context
from portsec.domain.quotas import QuotaDefaults
from portsec.service import networks, quotas
from portsec.store import schema
from portsec.store.database import Database, _alembic_config, now
from portsec.store.schema import metadata
from tests import postgres

_counter = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def empty(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Database]:
    """A database nothing has touched: no tables, no Alembic version."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/portsec.db"
    else:
        url = postgres.fresh_database(request.getfixturevalue("postgres_url"), f"m{next(_counter)}")
    database = Database(url)
    yield database
    database.dispose()


def _head() -> str:
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def _version(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _schema(db: Database) -> dict[str, Any]:
    """Every table with its columns, keys, indexes and constraints, and the recorded version."""
    inspector = sa.inspect(db.engine)
    tables = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(repr(fk) for fk in inspector.get_foreign_keys(table)),
            "indexes": sorted(repr(i) for i in inspector.get_indexes(table)),
            "unique": sorted(repr(u) for u in inspector.get_unique_constraints(table)),
        }
    return {"tables": tables, "version": _version(db)}


def test_migrated_schema_matches_the_declared_tables(db):
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_migrate_builds_an_empty_database_and_a_second_run_changes_nothing(empty):
    assert _schema(empty) == {"tables": {}, "version": None}
    empty.migrate()
    built = _schema(empty)
    assert set(built["tables"]) == {t.name for t in metadata.sorted_tables} | {"alembic_version"}
    assert built["version"] == _head()
    with empty.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []

    empty.migrate()
    again = Database(empty.url)  # another process starting on the same database
    again.migrate()
    again.dispose()
    assert _schema(empty) == built


def test_a_database_at_0001_upgrades_with_its_data(empty):
    """What a user of the first release has: the 0001 tables with rows in them, and no quotas table."""
    with empty.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
    assert _version(empty) == "0001"
    assert "quotas" not in sa.inspect(empty.engine).get_table_names()
    admin = Context.admin()
    row = {"id": "6d0b5b7e-1f4e-4a8e-9a51-3c3c1e0e0001", "project_id": admin.project_id, "name": "kept",
           "description": "", "revision_number": 0, "created_at": now(), "updated_at": now(), "admin_state_up": True,
           "status": "ACTIVE", "shared": False, "port_security_enabled": True, "mtu": 1500}  # fmt: skip
    with empty.engine.begin() as conn:
        conn.execute(schema.networks.insert().values(row))

    empty.migrate()

    assert _version(empty) == _head()
    with empty.transaction(write=False) as tx:
        assert networks.get(tx, admin, row["id"]).name == "kept"
        assert quotas.details(tx, admin, QuotaDefaults(), admin.project_id)["network"] == {
            "limit": 100, "used": 1, "reserved": 0
        }  # fmt: skip
