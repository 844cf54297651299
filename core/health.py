"""GET /healthz: is the work being done? For load balancers, monitors and the operator.

`ok` (200) only when the database and Redis answer AND the work runs: a worker ran a
job lately, the reconciler ran within two minutes, RQ's scheduler holds every queue,
no first contact of a released alert is overdue by more than a minute, and the carrier
is the one the operator configured. Otherwise `down` (503) with a short machine-readable
reason per problem in `reasons`.

It is polled: a handful of queries and Redis commands, one database connection. The
public sees the status and the reasons only; the details (database backend and
revision, errors that may name hosts, counts) go to loopback clients and to requests
with `Authorization: Bearer <HEALTH_TOKEN>`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from sqlalchemy import func, select
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
# A heartbeat job waiting longer than this for a worker: no worker runs jobs.
WORKER_STALE_SECONDS = 120
# Written by the reconciler (alerts/delivery/reconciler.py) after each run: ISO time.
RECONCILE_LAST_KEY = "plp:reconcile:last"
RECONCILER_STALE_SECONDS = 120  # two periods of a minute (or two of a longer period)
# A first contact (step 0) still planned this long after it was due is overdue. Later
# steps are left out: the charter holds them back behind the member's earlier calls.
OVERDUE_SECONDS = 60
# The carrier pacer's keys (alerts/delivery/pacing.py): present while sends are booked.
# A paced wave (300 members at 1 call a second) leaves first contacts planned for
# minutes: while the pacer is busy, a backlog is being worked through, not forgotten.
PACER_KEYS = ("plp:pace:call", "plp:pace:sms")
TWILIO_API_BASE_DEFAULT = "https://api.twilio.com"

# Each reason: short, stable, machine-readable (monitors match on them).
DATABASE_DOWN = "database_down"
DATABASE_NOT_MIGRATED = "database_not_migrated"
REDIS_DOWN = "redis_down"
NO_WORKER = "no_worker"
HEARTBEAT_FAILED = "heartbeat_failed"
RECONCILER_STALE = "reconciler_stale"
SCHEDULER_GONE = "scheduler_gone"
DELIVERIES_OVERDUE = "deliveries_overdue"
SIMULATOR_WHILE_TWILIO_INTENDED = "simulator_while_twilio_intended"

_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@bp.get("/healthz")
def healthz():
    """Answer 200 when the work is being done, else 503 with the reasons it is not."""
    now = utcnow()
    database, deliveries = _database_state(now)
    redis_state, work = _redis_state(now)
    if deliveries.get("status") == "down" and work.get("pacer_busy"):
        deliveries.update(status="ok", reasons=[])  # a paced backlog being worked through
    checks = {
        "database": database,
        "redis": redis_state,
        "work": work,
        "deliveries": deliveries,
        "provider": _provider_state(),
    }
    reasons = [reason for check in checks.values() for reason in check.pop("reasons")]
    down = [name for name, check in checks.items() if check["status"] != "ok"]
    body = {"status": "down" if reasons else "ok", "down": down, "reasons": reasons}
    if _may_see_details():
        body.update(checks)
    else:
        body.update({name: {"status": check["status"]} for name, check in checks.items()})
    response = jsonify(body)
    response.status_code = 503 if reasons else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def _may_see_details() -> bool:
    """Tell whether this client may see hosts, errors and counts: loopback, or the token."""
    token = current_app.extensions["settings"].health_token
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    # Behind a proxy on this host every client looks like loopback: a forwarded request
    # is never taken for a local one.
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _database_state(now: datetime) -> tuple[dict, dict]:
    """Return the database's state, and whether first contacts are overdue (one connection)."""
    deliveries = db.metadata.tables["delivery"]
    cutoff = now - timedelta(seconds=OVERDUE_SECONDS)
    unknown = {"status": "unknown", "reasons": []}
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
            expected = _migration_heads()
            if current != expected:
                return {
                    "status": "not_migrated",
                    "reasons": [DATABASE_NOT_MIGRATED],
                    "error": "the schema is not up to date: run `flask --app wsgi db upgrade`",
                    "revision": sorted(current),
                    "expected": sorted(expected),
                }, unknown
            # One range of the index on (status, due_at).
            count, oldest = connection.execute(
                select(func.count(), func.min(deliveries.c.due_at)).where(
                    deliveries.c.status == "planned",
                    deliveries.c.due_at < cutoff,
                    deliveries.c.step == 0,
                )
            ).one()
    except SQLAlchemyError as err:
        log.warning("healthz database down error=%s", type(err).__name__)
        return {"status": "down", "reasons": [DATABASE_DOWN], "error": _describe(err)}, unknown
    database = {
        "status": "ok",
        "reasons": [],
        "backend": db.engine.url.get_backend_name(),
        "revision": sorted(current),
    }
    if isinstance(oldest, str):  # SQLite returns min() of a timestamp as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    overdue = {
        "status": "down" if count else "ok",
        "reasons": [DELIVERIES_OVERDUE] if count else [],
        "overdue_first_contacts": count,
        "oldest_overdue_seconds": _age(oldest, now) if oldest is not None else None,
    }
    return database, overdue


def _migration_heads() -> set[str]:
    heads = current_app.extensions.get("migration_heads")
    if heads is None:
        directory = current_app.extensions["migrate"].directory
        heads = set(ScriptDirectory(directory).get_heads())
        current_app.extensions["migration_heads"] = heads
    return heads


def _redis_state(now: datetime) -> tuple[dict, dict]:
    """Return Redis's state, and whether workers, reconciler and scheduler run."""
    settings = current_app.extensions["settings"]
    try:
        connection = redis_connection()
        connection.ping()
        work = _work_state(connection, now)
    except (RedisError, EmbeddedRedisError, OSError) as err:
        log.warning("healthz redis down error=%s", type(err).__name__)
        return {
            "status": "down",
            "reasons": [REDIS_DOWN],
            "embedded": settings.embedded_redis,
            "error": _describe(err),
        }, {"status": "unknown", "reasons": []}
    redis_state = {
        "status": "ok",
        "reasons": [],
        "embedded": settings.embedded_redis,
        "queued": work.pop("queued"),
    }
    return redis_state, work


def _work_state(connection, now: datetime) -> dict:
    """Report whether workers, the reconciler and the scheduler run (all from Redis)."""
    lock_keys = [RQScheduler.get_locking_key(name) for name in QUEUE_NAMES]
    reads = connection.pipeline(transaction=False)
    reads.get(HEARTBEAT_KEY)
    reads.get(RECONCILE_LAST_KEY)
    for key in (*lock_keys, *PACER_KEYS):
        reads.exists(key)
    beat, reconciled, *flags = reads.execute()
    locks, pacers = flags[: len(lock_keys)], flags[len(lock_keys) :]
    reasons = []

    beat_age = _age(datetime.fromisoformat(json.loads(beat)["at"]), now) if beat else None
    waiting = _heartbeat_wait(connection, beat_age, now)
    if waiting == JobStatus.FAILED:
        reasons.append(HEARTBEAT_FAILED)
    elif waiting is not None and waiting > WORKER_STALE_SECONDS:
        reasons.append(NO_WORKER)

    reconcile_age = _age(datetime.fromisoformat(reconciled.decode()), now) if reconciled else None
    period = int(current_app.config.get("RECONCILE_PERIOD_SECONDS", 60))
    if reconcile_age is None or reconcile_age > max(RECONCILER_STALE_SECONDS, 2 * period):
        reasons.append(RECONCILER_STALE)

    unscheduled = [name for name, held in zip(QUEUE_NAMES, locks, strict=True) if not held]
    if unscheduled:
        reasons.append(SCHEDULER_GONE)

    return {
        "status": "ok" if not reasons else "down",
        "reasons": reasons,
        "workers": Worker.count(connection=connection),
        "queued": {name: get_queue(name).count for name in QUEUE_NAMES},
        "last_job_seconds_ago": beat_age,
        "heartbeat_waiting_seconds": waiting if waiting != JobStatus.FAILED else None,
        "last_reconcile_seconds_ago": reconcile_age,
        "queues_without_scheduler": unscheduled,
        "pacer_busy": any(pacers),
    }


def _heartbeat_wait(connection, beat_age: float | None, now: datetime):
    """Return how long the heartbeat job has waited (seconds), FAILED, or None (none waits).

    Enqueues one when the last beat is older than `HEARTBEAT_INTERVAL_SECONDS` and none
    waits. The wait is timed by the job's enqueue time (this host's clock, as `now`).
    """
    try:
        job = Job.fetch(HEARTBEAT_JOB_ID, connection=connection)
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        job, status = None, None
    if status in _PENDING:
        enqueued = job.enqueued_at or job.created_at
        if enqueued.tzinfo is None:
            enqueued = enqueued.replace(tzinfo=UTC)
        return _age(enqueued, now)
    failed = status == JobStatus.FAILED
    if failed:
        job.delete()  # tried again below: the next poll sees whether it failed again
    if failed or beat_age is None or beat_age > HEARTBEAT_INTERVAL_SECONDS:
        with suppress(DuplicateJobError):  # another web process enqueued it just now
            get_queue("urgent").enqueue(
                "core.heartbeat.record_heartbeat",
                job_id=HEARTBEAT_JOB_ID,
                unique=True,
                result_ttl=0,
                failure_ttl=300,
            )
    return JobStatus.FAILED if failed else None


def _provider_state() -> dict:
    settings = current_app.extensions["settings"]
    state = {"status": "ok", "reasons": [], "provider": settings.phone_provider}
    if settings.phone_provider == "simulator" and _twilio_intended(settings):
        state.update(status="down", reasons=[SIMULATOR_WHILE_TWILIO_INTENDED])
    return state


def _twilio_intended(settings) -> bool:
    """Tell whether any Twilio setting is set (in the settings, the environment, the config)."""
    if (
        settings.twilio_account_sid
        or settings.twilio_auth_tokens
        or settings.twilio_from_number
        or settings.twilio_messaging_service_sid
        or settings.twilio_api_base != TWILIO_API_BASE_DEFAULT
    ):
        return True
    # A misspelt name (TWILIO_AUTH_TOKE) says what was meant as well as a right one.
    names = [*current_app.config]
    if not current_app.testing:
        names.extend(os.environ)
    return any(name.startswith("TWILIO_") for name in names)


def _age(at: datetime, now: datetime) -> float:
    return round((now - at).total_seconds(), 1)


def _describe(err: Exception) -> str:
    # The first line only: driver messages can run long, and never carry the password.
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
