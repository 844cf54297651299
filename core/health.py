"""GET /healthz: the state of the database and Redis, for load balancers and monitoring."""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from datetime import datetime

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import DuplicateJobError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.clock import utcnow
from core.embedded_redis import EmbeddedRedisError
from core.extensions import db, redis_connection
from core.heartbeat import HEARTBEAT_JOB_ID, HEARTBEAT_KEY
from core.queue import QUEUE_NAMES, get_queue

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)

# A heartbeat job is enqueued when the last one is older than this: a monitor polling
# /healthz every minute then sees whether workers really run jobs.
HEARTBEAT_INTERVAL_SECONDS = 30


@bp.get("/healthz")
def healthz():
    """Answer 200 when the database and Redis work, else 503 naming what is down."""
    checks = {"database": _database_state(), "redis": _redis_state()}
    down = [name for name, check in checks.items() if check["status"] != "ok"]
    body = {"status": "down" if down else "ok", "down": down, **checks}
    return jsonify(body), 503 if down else 200


def _database_state() -> dict:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as err:
        log.warning("healthz database down error=%s", type(err).__name__)
        return {"status": "down", "error": _describe(err)}
    expected = _migration_heads()
    if current != expected:
        return {
            "status": "not_migrated",
            "error": "the schema is not up to date: run `flask --app wsgi db upgrade`",
            "revision": sorted(current),
            "expected": sorted(expected),
        }
    return {
        "status": "ok",
        "backend": db.engine.url.get_backend_name(),
        "revision": sorted(current),
    }


def _migration_heads() -> set[str]:
    heads = current_app.extensions.get("migration_heads")
    if heads is None:
        directory = current_app.extensions["migrate"].directory
        heads = set(ScriptDirectory(directory).get_heads())
        current_app.extensions["migration_heads"] = heads
    return heads


def _redis_state() -> dict:
    settings = current_app.extensions["settings"]
    try:
        connection = redis_connection()
        connection.ping()
        state = {
            "status": "ok",
            "embedded": settings.embedded_redis,
            "workers": Worker.count(connection=connection),
            "queued": {name: get_queue(name).count for name in QUEUE_NAMES},
            "last_job_seconds_ago": _heartbeat_age(connection),
        }
    except (RedisError, EmbeddedRedisError, OSError) as err:
        log.warning("healthz redis down error=%s", type(err).__name__)
        return {"status": "down", "embedded": settings.embedded_redis, "error": _describe(err)}
    if state["last_job_seconds_ago"] is None or (
        state["last_job_seconds_ago"] > HEARTBEAT_INTERVAL_SECONDS
    ):
        with suppress(DuplicateJobError):  # one is already waiting for a worker
            get_queue("urgent").enqueue(
                "core.heartbeat.record_heartbeat",
                job_id=HEARTBEAT_JOB_ID,
                unique=True,
                result_ttl=0,
                failure_ttl=300,
                ttl=300,
            )
    return state


def _heartbeat_age(connection) -> float | None:
    raw = connection.get(HEARTBEAT_KEY)
    if raw is None:
        return None
    at = datetime.fromisoformat(json.loads(raw)["at"])
    return round((utcnow() - at).total_seconds(), 1)


def _describe(err: Exception) -> str:
    # The first line only: driver messages can run long, and never carry the password.
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
