"""Alembic environment: always online, on the connection handed over in config.attributes."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from cds_service.audit.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through cds_service.audit.migrations.upgrade()")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
