"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from core.app import PROJECT_ROOT

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_SECRET = "test-secret-key-not-for-production"
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def reset_postgres(url: str) -> None:
    """Drop every table (and Alembic's version table) of the test database."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for table in inspect(connection).get_table_names():
            connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    engine.dispose()


def database_url_for(kind: str, tmp_path: Path) -> str:
    """Return an empty database of `kind` for one test."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    reset_postgres(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


def app_config(tmp_path: Path, database_url: str, redis_url: str, **overrides) -> dict:
    """Return the config of a test app (no environment, no .env)."""
    return {
        "TESTING": True,
        "INSTANCE_PATH": tmp_path / "instance",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        "PHONE_PROVIDER": "simulator",
        **overrides,
    }


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Return an environment for running the app's commands in a child process."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "SMTP_", "FLASK_"))}
    env.update({"SECRET_KEY": TEST_SECRET, "PHONE_PROVIDER": "simulator",
                "PYTHONPATH": str(PROJECT_ROOT)})
    env.update(overrides)
    return env
