"""Unbound extensions, bound to an app by `create_app`: database, migrations, Redis and RQ.

Nothing here opens a connection at import time. The Redis connection is made on first
use and kept per app in `app.extensions["redis"]`.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from core.embedded_redis import EmbeddedRedis

log = logging.getLogger(__name__)

# Named constraints: Alembic needs names to alter them, and SQLite's batch mode
# (which rebuilds tables) loses unnamed ones.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _render_item(type_, obj, _autogen_context):
    """Write app-defined column types as plain SQLAlchemy types in new migrations.

    A migration must not import the app: it has to keep working after models change.
    """
    if type_ == "type" and type(obj).__name__ == "UTCDateTime":
        return "sa.DateTime(timezone=True)"
    return False


db = SQLAlchemy(model_class=Base)
# render_as_batch: SQLite alters tables by rebuilding them; Alembic's batch mode does that.
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """Enforce foreign keys and let the web server and worker share the SQLite file."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # SQLite's advice for WAL: no fsync per commit, only at checkpoints. A crash of the
        # app loses nothing; a power cut may lose the last commits, never the file. Each
        # cascade step commits twice (its claim, the carrier's SID): this halves their cost.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def init_redis(app: Flask) -> None:
    """Record how this app reaches Redis; connect lazily on first use."""
    settings = app.extensions["settings"]
    embedded = EmbeddedRedis(app.instance_path) if settings.redis_url is None else None
    app.extensions["redis"] = {"url": settings.redis_url, "embedded": embedded, "client": None}


def redis_url(app: Flask | None = None) -> str:
    """Return the Redis URL of the app, starting the embedded server if it is the one."""
    state = (app or current_app).extensions["redis"]
    if state["embedded"] is not None:
        return state["embedded"].ensure_running()
    return state["url"]


def redis_connection(app: Flask | None = None) -> redis.Redis:
    """Return the app's Redis client (one connection pool per process)."""
    app = app or current_app
    state = app.extensions["redis"]
    if state["client"] is None:
        state["client"] = redis.Redis.from_url(
            redis_url(app),
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
        )
    return state["client"]
