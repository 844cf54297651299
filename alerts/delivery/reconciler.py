"""The reconciler: what the database says is due, put back on a queue whatever Redis lost."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from flask import Flask
from rq.job import Job
from sqlalchemy import exists, select

from alerts.delivery.closing import close_if_over
from alerts.delivery.pending import enqueue_other_work
from alerts.delivery.polling import poll_stale_statuses
from alerts.delivery.provider import (
    ProviderError,
    get_provider,
)
from alerts.delivery.recovery import (  # noqa: F401 (held_deliveries: imported from here)
    fail_interrupted,
    held_deliveries,
    held_work,
)
from alerts.delivery.schedule import (
    OPEN,
    RECONCILE_LOCK_KEY,
    SCHEDULE_HORIZON,
    next_slot,
    reconcile_job,
    reconcile_period,
    step_job_id,
    this_slot,
)
from alerts.errors import AlertError
from alerts.models import (
    Alert,
    AlertState,
    Delivery,
    DeliveryStatus,
    Urgency,
    utcnow,
)
from alerts.notices import (
    LIVE_STATES,
    expire_now,
)
from alerts.recordings import start_purging
from core.extensions import db, redis_connection
from core.queue import (
    PendingJob,
    enqueue_jobs,
)

log = logging.getLogger(__name__)


def reconcile() -> int:
    """Put back on a queue every due step no queue holds; return how many were enqueued.

    Also: schedules the steps coming due within `SCHEDULE_HORIZON`, settles claims
    abandoned by a killed worker (asking the carrier about those in doubt), closes expired
    alerts and alerts whose cascades are all over, and puts back whatever other work the
    database knows and no queue holds (`pending.enqueue_other_work`). Runs every period
    (`reconcile_period`, a minute); one at a time (a Redis lock).
    """
    connection = redis_connection()
    now = utcnow()
    token = secrets.token_hex(8)
    lock_seconds = max(1, reconcile_period() - 5)
    if not connection.set(RECONCILE_LOCK_KEY, token, nx=True, ex=lock_seconds):
        log.info("reconcile skipped: another one is running")
        return 0
    try:
        expired = _expire_overdue(now)
        work = held_work(connection)
        held = work.deliveries
        interrupted = fail_interrupted(now, held, work.orphaned)
        enqueued = _enqueue_due(now, held)
        other = enqueue_other_work(now, work)
        polled = poll_stale_statuses(now)
        closed = _close_finished(now)
        redis_connection().set("plp:reconcile:last", utcnow().isoformat())  # for /healthz
    finally:
        if connection.get(RECONCILE_LOCK_KEY) == token.encode():
            connection.delete(RECONCILE_LOCK_KEY)
        enqueue_jobs([reconcile_job(next_slot(now))])
    log.info(
        "reconciled enqueued=%d other=%d interrupted=%d orphaned=%d expired=%d closed=%d held=%d"
        " polled=%d",
        enqueued,
        other,
        interrupted,
        len(work.orphaned),
        expired,
        closed,
        len(held),
        polled,
    )
    return enqueued


def prepare_worker(app: Flask) -> None:
    """Ready a worker process for the cascade: start the reconciler, build the carrier once.

    RQ runs each job in a fork of the worker: the phone provider built here is inherited
    by every fork, where it would otherwise be built again for each job (importing the
    carrier's library: a quarter of a second per step on a 2-core machine).
    """
    try:
        get_provider(app)
    except ProviderError as err:
        # Jobs report it per delivery (FAILED, audit event); the worker still starts.
        log.error("phone provider unavailable at worker start: %s", err)
    start_reconciler()
    start_purging()


def start_reconciler() -> int:
    """Run the reconciler now unless this period's run is known, and schedule the next one.

    Cheap (two EXISTS when both are known): every worker calls it at start and every few
    seconds of its loop (`keep_reconciler_scheduled`), so a Redis that lost the chain
    (FLUSHALL, a restart without its data) has it back within seconds. Returns how many
    reconciler jobs it enqueued.
    """
    slot = this_slot(utcnow())
    return enqueue_jobs([reconcile_job(slot, at_once=True), reconcile_job(slot + 1)])


def keep_reconciler_scheduled(_app: Flask) -> None:
    """Re-create the reconciler's chain if Redis lost it (a worker's loop calls this)."""
    this_run = reconcile_job(this_slot(utcnow()), at_once=True).job_id
    lost = not redis_connection().exists(Job.key_for(this_run))
    if start_reconciler() and lost:
        log.warning("reconciler chain was missing in Redis: re-created job_id=%s", this_run)


def _expire_overdue(now: datetime) -> int:
    alerts = db.session.scalars(
        select(Alert).where(Alert.state.in_(LIVE_STATES), Alert.expires_at <= now)
    ).all()
    return sum(1 for alert in alerts if expire_now(alert, now))


def _enqueue_due(now: datetime, held: set[int]) -> int:
    rows = db.session.execute(
        select(Delivery.id, Delivery.due_at, Alert.urgency)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(
            Delivery.status == DeliveryStatus.PLANNED,
            Delivery.due_at <= now + SCHEDULE_HORIZON,
            Alert.state == AlertState.DELIVERING,
        )
        .order_by(Delivery.due_at, Delivery.id)
    ).all()
    db.session.rollback()  # read only: end the transaction before talking to Redis
    todo = [row for row in rows if row.id not in held]
    if not todo:
        return 0
    # The first id of a step, unless a finished job still holds it (a step run early, or
    # paced, finished and left its record): then one id for this reconciler run.
    connection = redis_connection()
    check = connection.pipeline(transaction=False)
    for row in todo:
        check.exists(Job.key_for(step_job_id(row.id)))
    suffix = f"r{next_slot(now) - 1}"
    jobs = [
        PendingJob(
            "urgent" if row.urgency == Urgency.URGENT else "default",
            "alerts.jobs.run_cascade_step",
            (row.id,),
            job_id=f"{step_job_id(row.id)}-{suffix}" if known else step_job_id(row.id),
            at=row.due_at if row.due_at > now else None,
        )
        for row, known in zip(todo, check.execute(), strict=True)
    ]
    overdue = sum(1 for job in jobs if job.at is None)
    log.info("reconcile enqueues steps count=%d overdue=%d", len(jobs), overdue)
    return enqueue_jobs(jobs)


def _close_finished(now: datetime) -> int:
    open_delivery = exists().where(Delivery.alert_id == Alert.id, Delivery.status.in_(OPEN))
    alert_ids = db.session.scalars(
        select(Alert.id).where(Alert.state == AlertState.DELIVERING, ~open_delivery)
    ).all()
    closed = 0
    for alert_id in alert_ids:
        try:
            if close_if_over(alert_id, now):
                db.session.commit()
                closed += 1
        except AlertError as err:
            db.session.rollback()
            log.info("alert not closed alert_id=%s: %s", alert_id, err)
    return closed
