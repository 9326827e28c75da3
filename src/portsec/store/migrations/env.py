"""Alembic environment: runs on the connection that portsec.store.database hands in."""

from alembic import context

from portsec.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
