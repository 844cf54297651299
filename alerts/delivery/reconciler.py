"""The reconciler: what the database says is due, put back on a queue whatever Redis lost."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime

import redis
from flask import Flask
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import exists, select, update

from alerts.delivery import handover
from alerts.delivery.closing import close_if_over
from alerts.delivery.provider import (
    ProviderError,
    get_provider,
)
from alerts.delivery.schedule import (
    BATCH_JOB_PREFIX,
    DELIVERY_JOB_ID,
    INTERRUPTED_AFTER,
    INTERRUPTED_MESSAGE,
    OPEN,
    RECONCILE_LOCK_KEY,
    RECONCILE_PERIOD_SECONDS,
    SCHEDULE_HORIZON,
    next_slot,
    reconcile_job,
    step_job_id,
)
from alerts.models import (
    Alert,
    AlertState,
    Delivery,
    DeliveryStatus,
    Urgency,
    utcnow,
)
from alerts.notices import LIVE_STATES, expire_now
from core.extensions import db, redis_connection
from core.queue import (
    QUEUE_NAMES,
    PendingJob,
    enqueue_jobs,
)

log = logging.getLogger(__name__)


def reconcile() -> int:
    """Put back on a queue every due step no queue holds; return how many were enqueued.

    Also: schedules the steps coming due within `SCHEDULE_HORIZON`, fails claims
    abandoned by a killed worker, closes expired alerts and alerts whose cascades are
    all over. Runs every minute; one at a time (a Redis lock).
    """
    connection = redis_connection()
    now = utcnow()
    token = secrets.token_hex(8)
    if not connection.set(RECONCILE_LOCK_KEY, token, nx=True, ex=RECONCILE_PERIOD_SECONDS - 5):
        log.info("reconcile skipped: another one is running")
        return 0
    try:
        expired = _expire_overdue(now)
        held = held_deliveries(connection)
        interrupted = _fail_interrupted(now, held)
        enqueued = _enqueue_due(now, held)
        closed = _close_finished(now)
    finally:
        if connection.get(RECONCILE_LOCK_KEY) == token.encode():
            connection.delete(RECONCILE_LOCK_KEY)
        enqueue_jobs([reconcile_job(next_slot(now))])
    log.info(
        "reconciled enqueued=%d interrupted=%d expired=%d closed=%d held=%d",
        enqueued,
        interrupted,
        expired,
        closed,
        len(held),
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
    from alerts.recordings import start_purging  # noqa: PLC0415 (recordings imports jobs)

    start_purging()


def start_reconciler() -> None:
    """Run the reconciler now and keep it running every minute (the worker calls this)."""
    now = utcnow()
    this_minute = int(now.timestamp()) // RECONCILE_PERIOD_SECONDS
    enqueue_jobs([reconcile_job(this_minute, at_once=True), reconcile_job(this_minute + 1)])


def held_deliveries(connection: redis.Redis | None = None) -> set[int]:
    """Return the ids of deliveries that a queue, RQ's schedule or a live worker holds."""
    connection = connection or redis_connection()
    held: set[int] = set()
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=connection)
        job_ids: Iterable[str] = [
            *queue.get_job_ids(),
            *ScheduledJobRegistry(queue=queue).get_job_ids(cleanup=False),
            # cleanup: a job whose worker stopped sending heartbeats (killed) is moved to
            # the failed registry first, so its delivery counts as held by no one.
            *StartedJobRegistry(queue=queue).get_job_ids(cleanup=True),
        ]
        batches = []
        for job_id in job_ids:
            match = DELIVERY_JOB_ID.match(job_id)
            if match:
                held.add(int(match[1]))
            elif job_id.startswith(BATCH_JOB_PREFIX):
                batches.append(job_id)
        for job in Job.fetch_many(batches, connection=connection):
            if job is not None and job.args:
                held.update(job.args[0])
    return held


def _expire_overdue(now: datetime) -> int:
    alerts = db.session.scalars(
        select(Alert).where(Alert.state.in_(LIVE_STATES), Alert.expires_at <= now)
    ).all()
    return sum(1 for alert in alerts if expire_now(alert, now))


def _fail_interrupted(now: datetime, held: set[int]) -> int:
    abandoned = [
        delivery_id
        for delivery_id in db.session.scalars(
            select(Delivery.id).where(
                Delivery.status == DeliveryStatus.QUEUED,
                Delivery.provider_sid.is_(None),
                Delivery.updated_at < now - INTERRUPTED_AFTER,
            )
        )
        if delivery_id not in held
    ]
    if not abandoned:
        return 0
    abandoned = _recover_handovers(abandoned, now)
    if not abandoned:
        return 0
    failed = db.session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(abandoned),
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.provider_sid.is_(None),
        )
        .values(
            status=DeliveryStatus.FAILED,
            error_code="interrupted",
            error_message=INTERRUPTED_MESSAGE,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    handover.forget(abandoned)
    log.warning(
        "claimed steps abandoned: marked failed, not sent again count=%d ids=%s",
        failed,
        abandoned[:20],
    )
    return failed


def _recover_handovers(abandoned: list[int], now: datetime) -> list[int]:
    """Settle what a batch's record says of abandoned claims; return those still in doubt.

    Claimed but never handed to the carrier: planned again (enqueued by this reconcile
    run). Handed over with a SID the batch did not save: the SID is saved. "sending", or
    nothing known (a single step's claim, or Redis lost the record): in doubt.
    """
    states = handover.states(abandoned)
    table = Delivery.__table__
    doubt, replan, sids = [], [], []
    for delivery_id, state in zip(abandoned, states, strict=True):
        if state == handover.CLAIMED:
            replan.append(delivery_id)
        elif state not in (None, handover.SENDING):
            sids.append({"b_id": delivery_id, "b_sid": state, "b_at": now})
        else:
            doubt.append(delivery_id)
    if replan:
        db.session.execute(
            update(table)
            .where(
                table.c.id.in_(replan),
                table.c.status == DeliveryStatus.QUEUED,
                table.c.provider_sid.is_(None),
            )
            .values(status=DeliveryStatus.PLANNED, updated_at=now)
        )
    if sids:
        handover.write_sids(sids)
    db.session.commit()
    settled = [*replan, *(row["b_id"] for row in sids)]
    if settled:
        handover.forget(settled)
        log.warning(
            "abandoned batch claims recovered planned_again=%d sids_saved=%d",
            len(replan),
            len(sids),
        )
    return doubt


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
    from alerts.lifecycle import AlertError  # noqa: PLC0415 (lifecycle imports planning)

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
