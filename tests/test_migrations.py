"""The migrations build exactly the schema the code declares, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from portsec.store.schema import metadata


def test_migrated_schema_matches_the_declared_tables(db):
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_migrate_is_idempotent(db):
    db.migrate()
    db.migrate()
