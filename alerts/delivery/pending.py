"""Work other than steps that the database says is due and no queue holds.

Release requests never sent, escalations and auto-releases due, the speech of alerts
released lately, e-mails waiting for a retry, recordings waiting for their download.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rq.job import Job
from sqlalchemy import select

from alerts.delivery.recovery import HeldWork
from alerts.delivery.schedule import (
    reconcile_period,
    render_job_id,
    this_slot,
)
from alerts.lifecycle import NOTICE_QUEUE
from alerts.models import (
    Alert,
    AlertState,
    AuditEvent,
    Channel,
    Delivery,
    DeliveryStatus,
    Recording,
    RecordingStatus,
    Urgency,
)
from alerts.notices import (
    ESCALATED,
    RELEASE_REQUESTED,
    release_timers,
)
from alerts.recordings import RECORDING_QUEUE, download_job_id
from core.extensions import db, redis_connection
from core.queue import (
    RESULT_TTL_SECONDS,
    PendingJob,
    enqueue_jobs,
)

log = logging.getLogger(__name__)

# An alert awaiting release this long without its release request: the job was lost
# (at most; two reconciler periods when those are shorter).
RELEASE_REQUEST_GRACE = timedelta(seconds=30)
# A recording still pending this long, with no download job: the job was lost.
RECORDING_GRACE = timedelta(minutes=2)
# The job ids of the alert's level 1 (alerts.notices, alerts.raising).
NOTIFY_JOB_PREFIX = "notify-coordinators-"


def enqueue_other_work(now: datetime, work: HeldWork) -> int:
    """Put back on a queue the work other than steps that the database says is due.

    Release requests never sent, escalations and auto-releases due, the speech of alerts
    released lately, e-mails waiting for a retry, recordings waiting for their download:
    each under its own job id (or, when that id is spent, one per reconciler slot), so two
    reconcilers never double it, and each job re-checks the database. Expiry needs no job:
    the reconciler closes expired alerts itself.
    """
    slot = this_slot(now)
    # Due again although its job ran (the database says so): a new id per slot.
    due = [*_release_work(now), *_email_work(now, work.deliveries)]
    due += _recording_work(now, work.recordings)
    # Only lost when Redis has no record of its job: a render that ran is not redone.
    if_lost = _speech_work(now)
    db.session.rollback()  # read only: end the transaction before talking to Redis
    due = [job for job in due if not _is_waiting(job.job_id, work.job_ids)]
    if_lost = [job for job in if_lost if not _is_waiting(job.job_id, work.job_ids)]
    if not due and not if_lost:
        return 0
    connection = redis_connection()
    check = connection.pipeline(transaction=False)
    for job in (*due, *if_lost):
        check.exists(Job.key_for(job.job_id))
    known = check.execute()
    jobs = [
        PendingJob(job.queue, job.func, job.args, job_id=f"{job.job_id}-r{slot}") if ran else job
        for job, ran in zip(due, known[: len(due)], strict=True)
    ]
    jobs += [job for job, ran in zip(if_lost, known[len(due) :], strict=True) if not ran]
    if not jobs:
        return 0
    enqueued = enqueue_jobs(jobs)
    if enqueued:
        log.warning(
            "reconcile enqueues lost work count=%d ids=%s",
            enqueued,
            [job.job_id for job in jobs][:20],
        )
    return enqueued


def _is_waiting(job_id: str, held: set[str]) -> bool:
    """Tell whether a job of this id (or a later try or copy of it) is queued or running."""
    return job_id in held or any(other.startswith(f"{job_id}-") for other in held)


def _release_work(now: datetime) -> list[PendingJob]:
    """Return the level-1 jobs lost for alerts awaiting release (see `enqueue_other_work`)."""
    alerts = db.session.scalars(
        select(Alert).where(Alert.state == AlertState.AWAITING_RELEASE, Alert.expires_at > now)
    ).all()
    if not alerts:
        return []
    done = set(
        db.session.execute(
            select(AuditEvent.subject_id, AuditEvent.action).where(
                AuditEvent.subject_type == Alert.__tablename__,
                AuditEvent.subject_id.in_([alert.id for alert in alerts]),
                AuditEvent.action.in_((RELEASE_REQUESTED, ESCALATED)),
            )
        ).all()
    )
    jobs = []
    for alert in alerts:
        if (alert.id, RELEASE_REQUESTED) not in done:
            # Raised while Redis was down, or its job lost: the coordinators never heard.
            grace = min(RELEASE_REQUEST_GRACE, timedelta(seconds=2 * reconcile_period()))
            if alert.created_at <= now - grace:
                jobs.append(
                    PendingJob(
                        NOTICE_QUEUE,
                        "alerts.jobs.notify_coordinators",
                        (alert.id,),
                        job_id=f"{NOTIFY_JOB_PREFIX}{alert.id}",
                    )
                )
            continue
        timers = release_timers(alert)
        if timers.escalate_at <= now and (alert.id, ESCALATED) not in done:
            jobs.append(
                PendingJob(
                    NOTICE_QUEUE,
                    "alerts.jobs.escalate_to_steering",
                    (alert.id,),
                    job_id=f"escalate-{alert.id}",
                )
            )
        if timers.auto_release_at is not None and timers.auto_release_at <= now:
            jobs.append(
                PendingJob(
                    NOTICE_QUEUE,
                    "alerts.jobs.auto_release",
                    (alert.id,),
                    job_id=f"auto-release-{alert.id}",
                )
            )
    return jobs


def _speech_work(now: datetime) -> list[PendingJob]:
    """Return the render jobs of alerts released within a job result's lifetime.

    Whether an alert's audio is rendered is not cheap to know (one cache lookup per text
    and language); whether its render job ran is: Redis keeps a finished job's record for
    `RESULT_TTL_SECONDS`, so within that time a missing record means Redis lost it. A
    render run again finds its audio in the cache.
    """
    alerts = db.session.execute(
        select(Alert.id, Alert.urgency).where(
            Alert.state == AlertState.DELIVERING,
            Alert.released_at > now - timedelta(seconds=RESULT_TTL_SECONDS),
        )
    ).all()
    return [
        PendingJob(
            "urgent" if urgency == Urgency.URGENT else "default",
            "alerts.jobs.render_alert_audio",
            (alert_id,),
            job_id=render_job_id(alert_id),
        )
        for alert_id, urgency in alerts
    ]


def _email_work(now: datetime, held: set[int]) -> list[PendingJob]:
    """Return the tries of e-mails that failed for now and whose retry job Redis lost.

    A planned e-mail step is `_enqueue_due`'s. Counted as the second try: how many tries
    went before is not recorded.
    """
    rows = db.session.execute(
        select(Delivery.id, Alert.urgency)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(
            Delivery.channel == Channel.EMAIL,
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.error_code.is_not(None),
            Delivery.updated_at < now - timedelta(seconds=reconcile_period()),
        )
    ).all()
    return [
        PendingJob(
            "urgent" if urgency == Urgency.URGENT else "default",
            "alerts.jobs.deliver_email",
            (delivery_id, 2),
            job_id=f"email-{delivery_id}-lost",
        )
        for delivery_id, urgency in rows
        if delivery_id not in held
    ]


def _recording_work(now: datetime, held: set[int]) -> list[PendingJob]:
    """Return the downloads of recordings still pending whose job Redis lost."""
    recording_ids = db.session.scalars(
        select(Recording.id).where(
            Recording.status == RecordingStatus.PENDING,
            Recording.created_at < now - RECORDING_GRACE,
        )
    ).all()
    return [
        PendingJob(
            RECORDING_QUEUE,
            "alerts.jobs.download_recording",
            (recording_id,),
            job_id=download_job_id(recording_id),
        )
        for recording_id in recording_ids
        if recording_id not in held
    ]
