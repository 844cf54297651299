"""RQ jobs of an alert: its cascade steps, the level-1 notices and timers, the reconciler.

Every job takes ids, reloads its rows, and returns early when the state makes the work
moot; it is enqueued after the commit that made it due (`enqueue_after_commit`). Job ids
are deterministic: `delivery-<id>` for the step of one (alert, member, step), with a
suffix for a later try of the same step (`delivery-<id>-<try>-<ms>`), so the reconciler
can tell which deliveries some queue still holds.

At most once per step. A step job claims its delivery (`UPDATE ... SET status='queued'
WHERE status='planned'`) and commits the claim before it talks to the carrier: of two
workers running the same step, one gets the row and the other returns. A worker killed
between the claim and the carrier's answer leaves a QUEUED delivery without a SID; the
reconciler marks it FAILED "interrupted" and never sends it again: a member may miss one
step, but is never called twice for it.

None lost. `reconcile` runs every minute (a chain of `reconcile-<minute>` jobs that the
worker command starts): it re-enqueues every planned step that is due but that no queue,
schedule or running worker holds (after a Redis restart that lost everything, after a
killed worker), enqueues the later steps of the cascade as they come due
(`SCHEDULE_HORIZON`), closes expired alerts, and alerts whose cascades are all over.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from flask import Flask, current_app
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import bindparam, event, exists, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, joinedload

from alerts.cascade import (
    OPEN_STATUSES,
    Attempt,
    Verdict,
    check_step,
    held_by_earlier_calls,
    next_step,
)
from alerts.delivery.pacing import PacingBusy, wait_for_slot
from alerts.delivery.provider import (
    CallRequest,
    OptedOutError,
    ProviderConfigurationError,
    ProviderError,
    SmsNotSupportedError,
    SmsRequest,
    get_provider,
)
from alerts.models import (
    Acknowledgement,
    Alert,
    AlertState,
    Channel,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Membership,
    Person,
    PhoneType,
    Role,
    Urgency,
    record_audit,
    utcnow,
)
from core.extensions import QUEUE_NAMES, db, get_queue, redis_connection
from core.urls import public_url
from prompts import LANGUAGES

log = logging.getLogger(__name__)

PENDING_JOBS = "plp.pending_jobs"  # key in Session.info: jobs waiting for the commit
RESULT_TTL_SECONDS = 600  # a finished job's result, for inspection; 50,000 jobs fit
ENQUEUE_CHUNK = 1000  # jobs per Redis round trip: the first calls start while the rest go in
# Steps due within this are put on a queue (or RQ's schedule); later ones wait for the
# reconciler. More than one reconciler period, so each step is scheduled ahead of its time.
SCHEDULE_HORIZON = timedelta(minutes=2)
RECONCILE_PERIOD_SECONDS = 60
RECONCILE_QUEUE = "urgent"  # and at the front: a busy fan-out must not delay the schedule
RECONCILE_LOCK_KEY = "plp:reconcile:lock"
# A claim older than this without a SID: the worker died between claim and carrier.
INTERRUPTED_AFTER = timedelta(minutes=5)
# A batch sends its claimed steps only this long after claiming them, well before the
# reconciler would take them back (the rest go back to the queue).
CLAIM_SEND_LIMIT = INTERRUPTED_AFTER / 2
INTERRUPTED_MESSAGE = "interrupted: the worker stopped before the carrier answered"
# A step waits this long for its pacing slot, else it is rescheduled (see alerts.delivery.pacing).
PACING_MAX_WAIT_SECONDS = 10.0
# Delays before try 2, 3, ... of a step the carrier could not take (rate limit, outage);
# after the last, the step is FAILED. Tests shrink this.
CARRIER_RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
)
_ERROR_MESSAGE_LENGTH = 500
_OPEN = tuple(OPEN_STATUSES)
_OPEN_VALUES = frozenset(status.value for status in OPEN_STATUSES)
# Job ids that carry a delivery: the step jobs, and the mailer's retries (alerts.email.mailer).
_DELIVERY_JOB_ID = re.compile(r"^(?:delivery|email)-(\d+)(?:-|$)")
# Job ids of `run_cascade_batch` jobs: their deliveries are the job's argument.
BATCH_JOB_PREFIX = "steps-"
# Steps per batch job at release: the first wave goes out in batches (a few queries per
# batch instead of per step). At most about a second of the slower channel's pace, so a
# batch's claimed steps never wait long for their pacing slots.
BATCH_MAX = 50
# A batch saves its SIDs this many at a time (each commit costs as much as a send).
SIDS_PER_COMMIT = 10
# Where a batch's claimed steps stand, in Redis, until their SIDs are in the database:
# delivery id -> "claimed" (not handed to the carrier yet), "sending" (being handed
# over) or the carrier's SID. After a killed worker the reconciler sends the "claimed"
# ones again, saves the SIDs, and marks only the "sending" ones (in doubt) interrupted.
HANDOVER_KEY = "plp:cascade:handover"
CLAIMED, SENDING = "claimed", "sending"


# ---------------------------------------------------------------------------------------
# Enqueueing after the commit


@dataclass(frozen=True)
class PendingJob:
    """A job to put on a queue: now, or on RQ's schedule when `at` is in the future."""

    queue: str
    func: Callable
    args: tuple
    job_id: str
    at: datetime | None = None
    at_front: bool = False


def enqueue_after_commit(
    queue: str, func: Callable, *args: object, job_id: str, at: datetime | None = None
) -> None:
    """Enqueue `func(*args)` as job `job_id` once the session's transaction commits.

    Dropped if it rolls back. A job id already known to Redis is not enqueued again
    (already queued, or already run). `at` in the future schedules the job for then.
    """
    if queue not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; queues are {', '.join(QUEUE_NAMES)}")
    _after_commit(PendingJob(queue=queue, func=func, args=args, job_id=job_id, at=at))


def _after_commit(job: PendingJob) -> None:
    db.session.info.setdefault(PENDING_JOBS, []).append(job)


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    # Fired for a savepoint's release too: only the outermost commit makes rows visible.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(PENDING_JOBS, None)
    if not pending:
        return
    try:
        enqueue_jobs(pending)
    except redis.RedisError:
        # The rows are committed: the reconciler enqueues what the database says is
        # due. Raising here would report a failure for work that is saved.
        log.exception(
            "enqueue after commit failed jobs=%d: the reconciler will enqueue them", len(pending)
        )


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction) -> None:
    # After a commit the list is already gone; after a rollback (or a close without a
    # commit) the jobs it held must never run. A savepoint rolled back inside a committed
    # transaction keeps its jobs: each job re-checks the database anyway.
    if transaction.parent is None:
        session.info.pop(PENDING_JOBS, None)


def enqueue_jobs(jobs: Sequence[PendingJob]) -> int:
    """Put `jobs` on their queues in bulk, skipping ids Redis already has; return how many."""
    connection = redis_connection()
    queues = {name: get_queue(name) for name in {job.queue for job in jobs}}
    now = datetime.now(UTC)
    seen: set[str] = set()
    enqueued = 0
    for start in range(0, len(jobs), ENQUEUE_CHUNK):
        chunk = []
        for job in jobs[start : start + ENQUEUE_CHUNK]:
            if job.job_id not in seen:
                seen.add(job.job_id)
                chunk.append(job)
        # One round trip to leave out what is already queued (or was already run): a
        # notice enqueued twice must not be texted twice.
        check = connection.pipeline(transaction=False)
        for job in chunk:
            check.exists(Job.key_for(job.job_id))
        fresh = [job for job, known in zip(chunk, check.execute(), strict=True) if not known]
        if not fresh:
            continue
        pipe = connection.pipeline(transaction=False)
        for name, queue in queues.items():
            now_jobs = [j for j in fresh if j.queue == name and (j.at is None or j.at <= now)]
            if now_jobs:
                queue.enqueue_many(
                    [
                        Queue.prepare_data(
                            j.func,
                            args=j.args,
                            job_id=j.job_id,
                            result_ttl=RESULT_TTL_SECONDS,
                            at_front=j.at_front,
                        )
                        for j in now_jobs
                    ],
                    pipeline=pipe,
                )
            for j in fresh:
                if j.queue == name and j.at is not None and j.at > now:
                    scheduled = queue.create_job(
                        j.func,
                        args=j.args,
                        job_id=j.job_id,
                        result_ttl=RESULT_TTL_SECONDS,
                        status=JobStatus.SCHEDULED,
                    )
                    scheduled.enqueue_at_front = j.at_front
                    queue.schedule_job(scheduled, j.at, pipeline=pipe)
        pipe.execute()
        enqueued += len(fresh)
    log.debug("jobs enqueued count=%d of=%d", enqueued, len(jobs))
    return enqueued


def queue_for(alert: Alert) -> str:
    """Return the queue of an alert's jobs: red alerts never wait behind green news."""
    return "urgent" if alert.urgency == Urgency.URGENT else "default"


def batch_size() -> int:
    """Return how many steps one batch job carries: `BATCH_MAX`, or a second of pacing."""
    settings = current_app.extensions["settings"]
    slowest = min(settings.calls_per_second, settings.sms_per_second)
    return max(1, min(BATCH_MAX, int(slowest)))


def batch_job_id(alert_id: int, delivery_ids: Sequence[int]) -> str:
    """Return the job id of a batch of an alert's steps (see `run_cascade_batch`)."""
    return f"{BATCH_JOB_PREFIX}{alert_id}-{delivery_ids[0]}-{len(delivery_ids)}"


def step_job_id(delivery_id: int) -> str:
    """Return the job id of a delivery's step: one per (alert, member, step)."""
    return f"delivery-{delivery_id}"


# ---------------------------------------------------------------------------------------
# The step job


def run_cascade_step(delivery_id: int, try_number: int = 1) -> str:
    """Carry out one planned step, or record why it is moot; return the delivery's status."""
    # One query for the delivery, its alert and person: a worker forks per job, and each
    # query of a fresh work horse costs a round trip and a statement compilation.
    delivery = db.session.scalars(
        select(Delivery)
        .options(joinedload(Delivery.alert), joinedload(Delivery.person))
        .where(Delivery.id == delivery_id)
    ).one_or_none()
    if delivery is None:
        log.warning("cascade step for a missing delivery delivery_id=%s", delivery_id)
        return "missing"
    alert, person, channel = delivery.alert, delivery.person, delivery.channel
    alert_id, person_id, queue = alert.id, person.id, queue_for(alert)
    context = (
        f"delivery_id={delivery_id} alert_id={alert_id} person_id={person_id} "
        f"step={delivery.step} channel={channel.value} try={try_number}"
    )
    if delivery.status != DeliveryStatus.PLANNED:
        log.info("cascade step already handled %s status=%s", context, delivery.status.value)
        status = delivery.status.value
        db.session.rollback()
        return status

    now = utcnow()
    check = check_step(
        alert_open=alert.state == AlertState.DELIVERING,
        expires_at=alert.expires_at,
        confirmed=_confirmed(alert_id, person_id),
        opted_out=_opted_out(person, channel),
        due_at=delivery.due_at,
        now=now,
        held_until=_held_until(delivery, now),
    )
    if check.verdict == Verdict.WAIT:
        log.info("cascade step waits %s reason=%r until=%s", context, check.reason, check.at)
        db.session.rollback()
        _reschedule(delivery_id, queue, check.at, try_number)
        return DeliveryStatus.PLANNED.value
    if check.verdict != Verdict.SEND:
        status = (
            DeliveryStatus.CANCELED if check.verdict == Verdict.CANCEL else DeliveryStatus.SKIPPED
        )
        if _settle_planned(delivery_id, status, check.reason, now):
            db.session.commit()
            log.info("cascade step %s %s reason=%r", status.value, context, check.reason)
            _after_delivery(alert_id, person_id)
        else:
            db.session.rollback()
        return status.value

    # Built while the rows are loaded: the claim's commit expires them.
    request = _carrier_request(delivery) if channel != Channel.EMAIL else None
    if not _claim(delivery_id, now):
        db.session.rollback()
        log.info("cascade step taken by another worker %s", context)
        return "taken"
    db.session.commit()  # the claim is visible to every other worker before any send

    if request is None:
        from alerts.email.mailer import deliver_email  # noqa: PLC0415 (mailer is heavy; e-mail only)

        status = deliver_email(delivery_id)
    else:
        status = _send(delivery_id, request, queue, try_number, context)
    if status not in _OPEN_VALUES:
        # Failed at once, or an e-mail sent: this may have been the cascade's last step.
        _after_delivery(alert_id, person_id)
    return status


def run_cascade_batch(delivery_ids: Sequence[int]) -> dict[str, int]:
    """Carry out many steps due at once (an alert's first wave); return counts by status.

    The same rules as `run_cascade_step`, with the reads and the claim done once for the
    batch instead of once per step: one query loads the deliveries with their alert and
    person, one the confirmations, one the earlier calls, and one UPDATE claims every
    step that may go, committed before anything is sent. Then each claimed step is paced
    and handed to the carrier with its SID committed at once, as a single step is (the
    carrier's callbacks are keyed by it). A step that is not simply due (early, held,
    moot, an e-mail) is left to `run_cascade_step`, in this job.
    """
    now = utcnow()
    deliveries = db.session.scalars(
        select(Delivery)
        .options(joinedload(Delivery.alert), joinedload(Delivery.person))
        .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PLANNED)
        .order_by(Delivery.id)
    ).all()
    counts: Counter[str] = Counter({"handled": len(delivery_ids) - len(deliveries)})
    confirmed, earlier = _batch_context(deliveries)
    ready: dict[int, tuple[CallRequest | SmsRequest, str, str, int, int]] = {}
    individual: list[int] = []
    for delivery in deliveries:
        alert, person = delivery.alert, delivery.person
        check = check_step(
            alert_open=alert.state == AlertState.DELIVERING,
            expires_at=alert.expires_at,
            confirmed=(alert.id, person.id) in confirmed,
            opted_out=_opted_out(person, delivery.channel),
            due_at=delivery.due_at,
            now=now,
            held_until=held_by_earlier_calls(
                delivery.step,
                delivery.due_at,
                earlier.get((alert.id, person.id), ()),
                now,
            ),
        )
        if check.verdict != Verdict.SEND or delivery.channel == Channel.EMAIL:
            individual.append(delivery.id)
            continue
        context = (
            f"delivery_id={delivery.id} alert_id={alert.id} person_id={person.id} "
            f"step={delivery.step} channel={delivery.channel.value} try=1 batch=1"
        )
        # Built while the rows are loaded: the claim's commit expires them.
        request = _carrier_request(delivery)
        ready[delivery.id] = (request, queue_for(alert), context, alert.id, person.id)
    claimed = _claim_many(list(ready), now)
    if claimed:
        # Before the commit: a claim Redis does not know of is, after a crash, in doubt.
        redis_connection().hset(HANDOVER_KEY, mapping=dict.fromkeys(claimed, CLAIMED))
    try:
        db.session.commit()  # the claims are visible to every other worker before any send
    except SQLAlchemyError:
        if claimed:  # not claimed after all: the record must not say so
            redis_connection().hdel(HANDOVER_KEY, *claimed)
        raise
    counts["taken"] += len(ready) - len(claimed)

    for delivery_id in individual:
        counts[run_cascade_step(delivery_id)] += 1
    sids: list[dict] = []
    remaining = sorted(claimed)
    while remaining:
        if utcnow() - now > CLAIM_SEND_LIMIT:
            # The reconciler may soon take these claims back: hand them back first.
            counts[DeliveryStatus.PLANNED.value] += _give_back(remaining, ready)
            break
        delivery_id = remaining.pop(0)
        request, queue, context, alert_id, person_id = ready[delivery_id]
        status = _send(delivery_id, request, queue, 1, context, sids=sids)
        counts[status] += 1
        if status not in _OPEN_VALUES:
            _after_delivery(alert_id, person_id)
        if len(sids) >= SIDS_PER_COMMIT:
            _save_sids(sids)
    _save_sids(sids)
    log.info("cascade batch done steps=%d %s", len(delivery_ids), dict(counts))
    return dict(counts)


def _batch_context(
    deliveries: Sequence[Delivery],
) -> tuple[set[tuple[int, int]], dict[tuple[int, int], list[Attempt]]]:
    """Return the (alert, person) pairs confirmed, and the earlier calls of each pair."""
    pairs = {(d.alert_id, d.person_id) for d in deliveries}
    if not pairs:
        return set(), {}
    alert_ids = {alert_id for alert_id, _ in pairs}
    person_ids = {person_id for _, person_id in pairs}
    confirmed = {
        (alert_id, person_id)
        for alert_id, person_id in db.session.execute(
            select(Acknowledgement.alert_id, Acknowledgement.person_id).where(
                Acknowledgement.alert_id.in_(alert_ids),
                Acknowledgement.person_id.in_(person_ids),
            )
        )
    }
    earlier = _earlier_calls(alert_ids, person_ids) if any(d.step > 0 for d in deliveries) else {}
    return confirmed, earlier


def _carrier_request(delivery: Delivery) -> CallRequest | SmsRequest:
    """Return what to ask the carrier for this call or SMS delivery."""
    if delivery.channel == Channel.CALL:
        return CallRequest(
            to=delivery.to_address,
            answer_url=public_url("ivr.alert_call", delivery_id=delivery.id),
            # The delivery id lets a callback that beats the SID's commit find its row.
            status_callback_url=public_url("ivr.call_status", delivery=delivery.id),
        )
    from alerts.lifecycle import text_for  # noqa: PLC0415 (lifecycle imports planning, and jobs)

    alert, person = delivery.alert, delivery.person
    language = person.language if person.language in LANGUAGES else alert.language
    return SmsRequest(
        to=delivery.to_address,
        body=text_for(alert, "sms.alert", language, message=alert.text),
        status_callback_url=public_url("messaging.message_status", delivery=delivery.id),
    )


def _send(
    delivery_id: int,
    request: CallRequest | SmsRequest,
    queue: str,
    try_number: int,
    context: str,
    *,
    sids: list[dict] | None = None,
) -> str:
    """Hand a claimed call or SMS to the carrier, paced; record the SID or the refusal.

    The SID is committed at once, or, given `sids`, added to it for the batch to save
    (`_save_sids`): then the callback URL's delivery id covers the moments in between.
    """
    channel = Channel.CALL if isinstance(request, CallRequest) else Channel.SMS
    try:
        wait_for_slot(channel.value, max_wait=PACING_MAX_WAIT_SECONDS)
    except PacingBusy as busy:
        # A paced wait is not a failed try: the same try runs when a slot is free.
        _unclaim(delivery_id)
        db.session.commit()
        if sids is not None:
            redis_connection().hdel(HANDOVER_KEY, delivery_id)
        _reschedule(delivery_id, queue, utcnow() + timedelta(seconds=busy.retry_after), try_number)
        log.info("cascade step paced %s retry_after=%.3f", context, busy.retry_after)
        return DeliveryStatus.PLANNED.value
    provider = get_provider()
    if sids is not None:
        _handover(delivery_id, SENDING)
    try:
        if isinstance(request, CallRequest):
            sent = provider.place_call(request)
        else:
            sent = provider.send_sms(request)
    except ProviderError as err:
        status = _refused(delivery_id, err, queue, try_number, context)
        if sids is not None:
            redis_connection().hdel(HANDOVER_KEY, delivery_id)
        return status
    if sids is not None:
        _handover(delivery_id, sent.sid)
        sids.append({"b_id": delivery_id, "b_sid": sent.sid, "b_at": utcnow()})
        log.info("cascade step sent %s sid=%s", context, sent.sid)
        return DeliveryStatus.QUEUED.value
    # Committed at once: the carrier's status callbacks are keyed by this SID.
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(provider_sid=sent.sid, sent_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    log.info("cascade step sent %s sid=%s", context, sent.sid)
    return DeliveryStatus.QUEUED.value


def _refused(
    delivery_id: int, err: ProviderError, queue: str, try_number: int, context: str
) -> str:
    """Record the carrier's refusal: try again later when it may pass, else FAILED."""
    now = utcnow()
    delivery = db.session.get(Delivery, delivery_id)
    delivery.error_code = err.code
    delivery.error_message = err.message[:_ERROR_MESSAGE_LENGTH]
    if err.retryable and try_number <= len(CARRIER_RETRY_DELAYS):
        delivery.status = DeliveryStatus.PLANNED
        db.session.commit()
        delay = CARRIER_RETRY_DELAYS[try_number - 1]
        _reschedule(delivery_id, queue, now + delay, try_number + 1)
        log.warning(
            "cascade step will retry %s code=%s delay_s=%d error=%s",
            context,
            err.code,
            delay.total_seconds(),
            err,
        )
        return DeliveryStatus.PLANNED.value

    person = delivery.person
    if isinstance(err, SmsNotSupportedError) and delivery.to_address == person.phone:
        # A landline after all: it gets calls, never an SMS again (Twilio 21614).
        person.phone_type = PhoneType.FIXED
    elif isinstance(err, OptedOutError) and person.sms_opt_out_at is None:
        # The member texted STOP to the carrier: record it, as the carrier enforces it.
        person.sms_opt_out_at = now
    elif isinstance(err, ProviderConfigurationError):
        record_audit(
            "carrier.misconfigured",
            actor="system",
            subject=delivery,
            code=err.code,
            message=err.message,
        )
    delivery.status = DeliveryStatus.FAILED
    delivery.finished_at = now
    db.session.commit()
    log.warning(
        "cascade step failed %s code=%s error=%s detail=%r", context, err.code, err, err.detail
    )
    return DeliveryStatus.FAILED.value


def _claim(delivery_id: int, now: datetime) -> bool:
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PLANNED)
        .values(status=DeliveryStatus.QUEUED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _save_sids(sids: list[dict]) -> None:
    """Save the carrier's SIDs of a batch's sent steps (unless a callback already did)."""
    if not sids:
        return
    _write_sids(sids)
    db.session.commit()
    redis_connection().hdel(HANDOVER_KEY, *(row["b_id"] for row in sids))
    sids.clear()


def _write_sids(sids: list[dict]) -> None:
    """Give each delivery ("b_id") its SID ("b_sid", "b_at") unless it has one already."""
    table = Delivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.provider_sid.is_(None))
        .values(provider_sid=bindparam("b_sid"), sent_at=bindparam("b_at")),
        sids,
    )


def _give_back(delivery_ids: list[int], ready: dict) -> int:
    """Put claimed steps back to planned and on the queue again; return how many."""
    for delivery_id in delivery_ids:
        _unclaim(delivery_id)
    db.session.commit()
    redis_connection().hdel(HANDOVER_KEY, *delivery_ids)
    for delivery_id in delivery_ids:
        _reschedule(delivery_id, ready[delivery_id][1], utcnow(), 1)
    log.warning("cascade batch gave back steps not sent in time count=%d", len(delivery_ids))
    return len(delivery_ids)


def _handover(delivery_id: int, state: str) -> None:
    redis_connection().hset(HANDOVER_KEY, delivery_id, state)


def _claim_many(delivery_ids: list[int], now: datetime) -> set[int]:
    """Claim the steps still planned among `delivery_ids`; return the ids claimed."""
    if not delivery_ids:
        return set()
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PLANNED)
        .values(status=DeliveryStatus.QUEUED, updated_at=now)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(claimed.scalars())


def _settle_planned(
    delivery_id: int, status: DeliveryStatus, reason: str | None, now: datetime
) -> bool:
    settled = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PLANNED)
        .values(status=status, error_message=reason, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return settled.rowcount == 1


def _reschedule(delivery_id: int, queue: str, at: datetime, try_number: int) -> None:
    """Enqueue the step again for `at`, under a new id (the running job holds the first)."""
    job_id = f"{step_job_id(delivery_id)}-{try_number}-{int(at.timestamp() * 1000)}"
    enqueue_jobs(
        [PendingJob(queue, run_cascade_step, (delivery_id, try_number), job_id=job_id, at=at)]
    )


def _unclaim(delivery_id: int) -> None:
    db.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.provider_sid.is_(None),
        )
        .values(status=DeliveryStatus.PLANNED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _held_until(delivery: Delivery, now: datetime) -> datetime | None:
    """Return until when the member's earlier calls hold this step back (see the policy)."""
    if delivery.step == 0:
        return None
    pair = (delivery.alert_id, delivery.person_id)
    earlier = _earlier_calls({delivery.alert_id}, {delivery.person_id}).get(pair, [])
    return held_by_earlier_calls(delivery.step, delivery.due_at, earlier, now)


def _earlier_calls(alert_ids, person_ids) -> dict[tuple[int, int], list[Attempt]]:
    """Return the call steps of these alerts and people, by (alert, person)."""
    rows = db.session.execute(
        select(
            Delivery.alert_id,
            Delivery.person_id,
            Delivery.id,
            Delivery.step,
            Delivery.channel,
            Delivery.due_at,
            Delivery.status,
            Delivery.sent_at,
        ).where(
            Delivery.alert_id.in_(alert_ids),
            Delivery.person_id.in_(person_ids),
            Delivery.channel == Channel.CALL,
        )
    )
    calls: dict[tuple[int, int], list[Attempt]] = defaultdict(list)
    for alert_id, person_id, *attempt in rows:
        calls[(alert_id, person_id)].append(Attempt(*attempt))
    return calls


def _confirmed(alert_id: int, person_id: int) -> bool:
    return (
        db.session.scalar(
            select(Acknowledgement.id).where(
                Acknowledgement.alert_id == alert_id, Acknowledgement.person_id == person_id
            )
        )
        is not None
    )


def _opted_out(person: Person, channel: Channel) -> bool:
    # Checked again when the step runs: a member may text STOP after the planning.
    opted_out_at = {
        Channel.SMS: person.sms_opt_out_at,
        Channel.CALL: person.call_opt_out_at,
        Channel.EMAIL: person.email_opt_out_at,
    }[channel]
    return opted_out_at is not None


# ---------------------------------------------------------------------------------------
# The end of a cascade


def after_status_change(change) -> None:
    """Act on a status callback once it is committed: close the alert when all is over.

    `change` is the `alerts.delivery.status.StatusChange` a record function returned (None when
    the callback applied to nothing).
    """
    if change is None or not change.changed or change.new in OPEN_STATUSES:
        return
    delivery = db.session.get(Delivery, change.delivery_id)
    if delivery is not None:
        _after_delivery(delivery.alert_id, delivery.person_id)


def _after_delivery(alert_id: int, person_id: int) -> None:
    """Close the alert if this member's cascade is over and so is everyone else's."""
    from alerts.lifecycle import AlertError  # noqa: PLC0415 (lifecycle imports planning)

    now = utcnow()
    try:
        # The member's few rows first: the alert-wide query runs only when theirs is over.
        if _member_over(alert_id, person_id, now) and _close_if_over(alert_id, now):
            db.session.commit()
        else:
            db.session.rollback()
    except AlertError as err:
        # Closed by someone else in the meantime (a confirmation, another callback).
        db.session.rollback()
        log.info("alert not closed alert_id=%s: %s", alert_id, err)


def _member_over(alert_id: int, person_id: int, now: datetime) -> bool:
    rows = db.session.execute(
        select(
            Delivery.id, Delivery.step, Delivery.channel, Delivery.due_at, Delivery.status
        ).where(Delivery.alert_id == alert_id, Delivery.person_id == person_id)
    )
    attempts = [Attempt(*row) for row in rows]
    return next_step(attempts, confirmed=_confirmed(alert_id, person_id), now=now).over


def _close_if_over(alert_id: int, now: datetime) -> CloseReason | None:
    """Close a delivering alert with nothing left open; return why, None when not closed."""
    from alerts.lifecycle import close_alert  # noqa: PLC0415 (lifecycle imports planning)

    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state != AlertState.DELIVERING:
        return None
    still_open = db.session.scalar(
        select(Delivery.id)
        .where(Delivery.alert_id == alert_id, Delivery.status.in_(_OPEN))
        .limit(1)
    )
    if still_open is not None:
        return None
    members = db.session.scalar(
        select(func.count(func.distinct(Delivery.person_id))).where(Delivery.alert_id == alert_id)
    )
    confirmed = db.session.scalar(
        select(func.count(Acknowledgement.id)).where(Acknowledgement.alert_id == alert_id)
    )
    reason = CloseReason.ALL_CONFIRMED if confirmed >= members else CloseReason.EXHAUSTED
    close_alert(alert, reason, now=now)
    log.info(
        "alert cascade over alert_id=%s reason=%s members=%s confirmed=%s",
        alert_id,
        reason.value,
        members,
        confirmed,
    )
    return reason


# ---------------------------------------------------------------------------------------
# Level 1: the coordinators' decision, and the alert's timers


def notify_coordinators(alert_id: int) -> str:
    """Text and call the coordinators for their decision; start the escalation and expiry timers."""
    from ivr.release import place_release_call, release_call_job_id  # noqa: PLC0415 (imports jobs)

    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state != AlertState.AWAITING_RELEASE:
        return "moot"
    members = _member_count(alert)
    coordinators = _people_with_role(alert, Role.COORDINATOR)
    jobs = _notices(alert, coordinators, "sms.release_request", "release-request", members=members)
    # And a call each (ivr.release: press 1 to release, 2 to reject), paced as the cascade's.
    jobs.extend(
        PendingJob(
            "urgent",
            place_release_call,
            (alert.id, person.id),
            job_id=release_call_job_id(alert.id, person.id),
        )
        for person in coordinators
        if person.call_opt_out_at is None
    )
    charters = [target.partnership.charter for target in alert.targets]
    escalate_after = min(c.escalate_to_steering_after_minutes for c in charters)
    jobs.append(
        PendingJob(
            "urgent",
            escalate_to_steering,
            (alert.id,),
            job_id=f"escalate-{alert.id}",
            at=alert.created_at + timedelta(minutes=escalate_after),
        )
    )
    auto_after = [
        c.auto_release_after_minutes for c in charters if c.auto_release_after_minutes is not None
    ]
    if auto_after:
        jobs.append(
            PendingJob(
                "urgent",
                auto_release,
                (alert.id,),
                job_id=f"auto-release-{alert.id}",
                at=alert.created_at + timedelta(minutes=min(auto_after)),
            )
        )
    jobs.append(
        PendingJob(
            "urgent", expire_alert, (alert.id,), job_id=f"expire-{alert.id}", at=alert.expires_at
        )
    )
    record_audit(
        "alert.release_requested",
        actor="system",
        subject=alert,
        reference=alert.reference,
        coordinators=[p.id for p in coordinators],
    )
    db.session.commit()
    enqueue_jobs(jobs)
    log.info(
        "coordinators notified alert_id=%s ref=%s coordinators=%d texted=%d called=%d",
        alert.id,
        alert.reference,
        len(coordinators),
        sum(1 for p in coordinators if p.can_receive_sms),
        sum(1 for p in coordinators if p.call_opt_out_at is None),
    )
    return f"notified {len(coordinators)}"


def _notices(alert: Alert, people, key: str, job_prefix: str, **values) -> list[PendingJob]:
    """Return one paced SMS job per person who can receive it: `key` with the alert's text."""
    from alerts.lifecycle import send_notice, text_for  # noqa: PLC0415 (lifecycle imports jobs)

    return [
        PendingJob(
            "urgent",
            send_notice,
            (person.id, text_for(alert, key, person.language, message=alert.text, **values)),
            job_id=f"{job_prefix}-{alert.id}-{person.id}",
        )
        for person in people
        if person.can_receive_sms
    ]


def escalate_to_steering(alert_id: int) -> str:
    """Text the steering committee about an alert still awaiting a coordinator's answer."""

    alert = db.session.get(Alert, alert_id)
    now = utcnow()
    if alert is None or alert.state != AlertState.AWAITING_RELEASE or alert.expires_at <= now:
        return "moot"
    minutes = max(1, round((now - alert.created_at) / timedelta(minutes=1)))
    steering = _people_with_role(alert, Role.STEERING)
    jobs = _notices(alert, steering, "sms.escalation", "escalation", minutes=minutes)
    record_audit(
        "alert.escalated",
        actor="system",
        subject=alert,
        reference=alert.reference,
        minutes=minutes,
        steering=[p.id for p in steering],
    )
    db.session.commit()
    enqueue_jobs(jobs)
    log.info(
        "alert escalated to steering alert_id=%s ref=%s minutes=%s steering=%d",
        alert.id,
        alert.reference,
        minutes,
        len(steering),
    )
    return f"escalated {len(steering)}"


def auto_release(alert_id: int) -> str:
    """Release an alert nobody answered, when its charter says so."""
    from alerts.lifecycle import AlertError, release_alert  # noqa: PLC0415 (imports jobs)

    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state != AlertState.AWAITING_RELEASE:
        return "moot"
    try:
        summary = release_alert(alert, by=None)
    except AlertError as err:  # expired, or decided a moment ago
        db.session.rollback()
        log.info("auto release refused alert_id=%s: %s", alert_id, err)
        return "moot"
    db.session.commit()
    return f"released {summary.members}"


def expire_alert(alert_id: int) -> str:
    """Close an alert whose time is over (EXPIRED); tell the author if it was never sent."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state not in _LIVE_STATES:
        return "moot"
    now = utcnow()
    if alert.expires_at > now:  # run early (clock skew): the reconciler closes it later
        return "not yet"
    return "expired" if _expire(alert, now) else "moot"


_LIVE_STATES = (AlertState.AWAITING_RELEASE, AlertState.RELEASED, AlertState.DELIVERING)


def _expire(alert: Alert, now: datetime) -> bool:
    from alerts.lifecycle import AlertError, close_alert, send_notice, text_for  # noqa: PLC0415

    never_sent = alert.state == AlertState.AWAITING_RELEASE
    author = alert.author
    try:
        close_alert(alert, CloseReason.EXPIRED, now=now)
    except AlertError as err:  # closed a moment ago by someone else
        db.session.rollback()
        log.info("alert not expired alert_id=%s: %s", alert.id, err)
        return False
    if never_sent and author is not None and author.can_receive_sms:
        enqueue_after_commit(
            "urgent",
            send_notice,
            author.id,
            text_for(alert, "sms.expired", author.language),
            job_id=f"notice-{alert.id}-expired-{author.id}",
        )
    db.session.commit()
    return True


def _people_with_role(alert: Alert, role: Role) -> list[Person]:
    partnership_ids = [target.partnership_id for target in alert.targets]
    return list(
        db.session.scalars(
            select(Person)
            .where(
                Person.id.in_(
                    select(Membership.person_id).where(
                        Membership.partnership_id.in_(partnership_ids), Membership.role == role
                    )
                )
            )
            .order_by(Person.id)
        )
    )


def _member_count(alert: Alert) -> int:
    partnership_ids = [target.partnership_id for target in alert.targets]
    return db.session.scalar(
        select(func.count(func.distinct(Membership.person_id))).where(
            Membership.partnership_id.in_(partnership_ids)
        )
    )


# ---------------------------------------------------------------------------------------
# The reconciler


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
        enqueue_jobs([_reconcile_job(_next_slot(now))])
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
    enqueue_jobs([_reconcile_job(this_minute, at_once=True), _reconcile_job(this_minute + 1)])


def keep_reconciling(now: datetime) -> None:
    """Make sure, after the commit, that a reconciler run is scheduled for the next minute."""
    _after_commit(_reconcile_job(_next_slot(now)))


def _next_slot(now: datetime) -> int:
    return int(now.timestamp()) // RECONCILE_PERIOD_SECONDS + 1


def _reconcile_job(slot: int, *, at_once: bool = False) -> PendingJob:
    # One id per minute: whoever schedules a minute first wins, so chains started by two
    # workers merge into one instead of running twice as often.
    at = None if at_once else datetime.fromtimestamp(slot * RECONCILE_PERIOD_SECONDS, UTC)
    return PendingJob(
        RECONCILE_QUEUE, reconcile, (), job_id=f"reconcile-{slot}", at=at, at_front=True
    )


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
            match = _DELIVERY_JOB_ID.match(job_id)
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
        select(Alert).where(Alert.state.in_(_LIVE_STATES), Alert.expires_at <= now)
    ).all()
    return sum(1 for alert in alerts if _expire(alert, now))


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
    redis_connection().hdel(HANDOVER_KEY, *abandoned)
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
    connection = redis_connection()
    states = connection.hmget(HANDOVER_KEY, abandoned)
    table = Delivery.__table__
    doubt, replan, sids = [], [], []
    for delivery_id, raw in zip(abandoned, states, strict=True):
        state = raw.decode() if raw is not None else None
        if state == CLAIMED:
            replan.append(delivery_id)
        elif state not in (None, SENDING):
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
        _write_sids(sids)
    db.session.commit()
    settled = [*replan, *(row["b_id"] for row in sids)]
    if settled:
        connection.hdel(HANDOVER_KEY, *settled)
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
    suffix = f"r{_next_slot(now) - 1}"
    jobs = [
        PendingJob(
            "urgent" if row.urgency == Urgency.URGENT else "default",
            run_cascade_step,
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

    open_delivery = exists().where(Delivery.alert_id == Alert.id, Delivery.status.in_(_OPEN))
    alert_ids = db.session.scalars(
        select(Alert.id).where(Alert.state == AlertState.DELIVERING, ~open_delivery)
    ).all()
    closed = 0
    for alert_id in alert_ids:
        try:
            if _close_if_over(alert_id, now):
                db.session.commit()
                closed += 1
        except AlertError as err:
            db.session.rollback()
            log.info("alert not closed alert_id=%s: %s", alert_id, err)
    return closed
