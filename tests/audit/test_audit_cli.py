"""``itb-cds audit migrate``: the schema comes from the migrations inside the package."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from cds_service.audit.cli import audit_app


def test_migrate_creates_the_schema_on_an_empty_database(
        backend: str, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITB_CDS_SPOOL_PATH", str(tmp_path / "cli.spool"))
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near

    first = CliRunner().invoke(audit_app, ["migrate", "--database-url", database_url])
    again = CliRunner().invoke(audit_app, ["migrate", "--database-url", database_url])
    verified = CliRunner().invoke(audit_app, ["verify", "--database-url", database_url])

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert verified.exit_code == 0 and "0 entries" in verified.output
    engine = create_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"audit_entry", "audit_head", "audit_card", "jwt_replay", "alembic_version"} <= tables
