"""Alembic migrations shipped inside the package, configured in code (no alembic.ini).

A worker starting on a database already at the newest revision asks the database which revision
it is at and stops there: importing alembic and loading its scripts cost a fifth of a cold
start, for nothing. ``HEAD`` names that revision; a test pins it to alembic's own head, so a new
migration cannot be forgotten here.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent
HEAD = "0003"


def at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [HEAD]


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade inside the caller's transaction (which already holds the migration lock)."""
    if revision in ("head", HEAD) and at_head(connection):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
