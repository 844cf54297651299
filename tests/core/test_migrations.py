"""Migrations: `flask db upgrade` builds the models' exact schema on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from core.app import PROJECT_ROOT
from core.extensions import db
from tests.support import FLASK, subprocess_env

TABLES = {
    "zone",
    "partnership",
    "person",
    "membership",
    "officer",
    "alert",
    "alert_target",
    "alert_transition",
    "recording",
    "delivery",
    "acknowledgement",
    "audit_event",
    "inbound_webhook",
    "pin_failure",
    "alembic_version",
}


def _flask(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FLASK, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0"),
    )


def _engine(database_url: str):
    return create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_upgrade_matches_the_models_and_downgrades(database_url):
    """Upgrade creates every table with no difference from the models; downgrade removes them."""
    upgrade = _flask(database_url, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    engine = _engine(database_url)
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == TABLES
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
        assert context.get_current_heads() == ("0002_recording_status",)

    again = _flask(database_url, "db", "upgrade")  # a second upgrade is a no-op
    assert again.returncode == 0, again.stderr

    downgrade = _flask(database_url, "db", "downgrade", "base")
    assert downgrade.returncode == 0, downgrade.stderr
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    engine.dispose()
