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


def test_head_names_alembic_s_newest_revision() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from cds_service.audit import migrations

    config = Config()
    config.set_main_option("script_location", str(migrations.SCRIPT_LOCATION))
    assert ScriptDirectory.from_config(config).get_heads() == [migrations.HEAD]


def test_a_worker_on_a_database_at_head_starts_without_loading_alembic(
        backend: str, database_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ITB_CDS_DATABASE_URL": database_url,
           "ITB_CDS_SPOOL_PATH": str(tmp_path / "w.spool")}
    probe = ("import sys\n"
             "from datetime import UTC, datetime\n"
             "from cds_service.config import Settings\n"
             "from cds_service.runtime import Runtime\n"
             "Runtime.start(Settings(), lambda: datetime.now(UTC))\n"
             "print('alembic' in sys.modules)\n")

    def start() -> str:
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                              text=True, timeout=120, check=True)
        return done.stdout.strip().splitlines()[-1]

    assert start() == "True"  # an empty database: the migrations ran
    assert start() == "False"  # at head: only asked the database
