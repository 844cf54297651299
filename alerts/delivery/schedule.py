"""When and where cascade steps run: queues, job ids, batch sizes, and the timings."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from flask import current_app

from alerts.cascade import (
    OPEN_STATUSES,
)
from alerts.models import (
    Alert,
    Urgency,
)
from core.queue import PendingJob, add_after_commit, enqueue_after_commit

log = logging.getLogger(__name__)

# Steps due within this are put on a queue (or RQ's schedule); later ones wait for the
# reconciler. More than one reconciler period, so each step is scheduled ahead of its time.
SCHEDULE_HORIZON = timedelta(minutes=2)
RECONCILE_PERIOD_SECONDS = 60  # the default of `reconcile_period()`
RECONCILE_QUEUE = "urgent"  # and at the front: a busy fan-out must not delay the schedule
RECONCILE_LOCK_KEY = "plp:reconcile:lock"
# A claim older than this without a SID: the worker died between claim and carrier.
INTERRUPTED_AFTER = timedelta(minutes=5)
INTERRUPTED_MESSAGE = "interrupted: the worker stopped before the carrier answered"
ERROR_MESSAGE_LENGTH = 500
# Delays before try 2, 3, ... of work refused for now (the carrier rate-limited or down);
# after the last delay the work has failed. One table for every kind of work that retries;
# tests shrink an entry.
RETRY_DELAYS: dict[str, tuple[timedelta, ...]] = {
    "step": (
        timedelta(seconds=10),
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=2),
    ),
    "notice": (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5)),
    "release_call": (timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2)),
    # A greylisting relay usually accepts after a few minutes.
    "email": (
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=5),
        timedelta(minutes=15),
    ),
    # A recording the carrier is not done with yet, or the carrier busy.
    "recording": (
        timedelta(seconds=2),
        timedelta(seconds=10),
        timedelta(seconds=30),
        timedelta(minutes=2),
    ),
}
OPEN = tuple(OPEN_STATUSES)
OPEN_VALUES = frozenset(status.value for status in OPEN_STATUSES)
# Job ids that carry a delivery: the step jobs, and the mailer's retries (alerts.email.delivery).
DELIVERY_JOB_ID = re.compile(r"^(?:delivery|email)-(\d+)(?:-|$)")
# Job ids of `run_cascade_batch` jobs: their deliveries are the job's argument.
BATCH_JOB_PREFIX = "steps-"
# Steps per batch job at release: the first wave goes out in batches (a few queries per
# batch instead of per step). At most about a second of the slower channel's pace, so a
# batch's claimed steps never wait long for their pacing slots.
BATCH_MAX = 50


def retry_delay(kind: str, try_number: int) -> timedelta | None:
    """Return how long to wait before try `try_number + 1` of `kind`; None after the last."""
    delays = RETRY_DELAYS[kind]
    return delays[try_number - 1] if 1 <= try_number <= len(delays) else None


def render_job_id(alert_id: int) -> str:
    """Return the id of an alert's render job: one per alert."""
    return f"speech-{alert_id}"


def enqueue_alert_audio(alert: Alert) -> None:
    """Render the alert's speech in a job (`ivr.prerender`), after the release's commit."""
    enqueue_after_commit(
        queue_for(alert), "alerts.jobs.render_alert_audio", alert.id, job_id=render_job_id(alert.id)
    )


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


def keep_reconciling(now: datetime) -> None:
    """Make sure, after the commit, that a reconciler run is scheduled for the next minute."""
    add_after_commit(reconcile_job(next_slot(now)))


def reconcile_period() -> int:
    """Return the reconciler's period in seconds (tests shrink it: `RECONCILE_PERIOD_SECONDS`)."""
    return int(current_app.config.get("RECONCILE_PERIOD_SECONDS", RECONCILE_PERIOD_SECONDS))


def interrupted_after() -> timedelta:
    """Return how old an unheld claim must be to count as abandoned (tests shrink it)."""
    seconds = current_app.config.get("INTERRUPTED_AFTER_SECONDS")
    return INTERRUPTED_AFTER if seconds is None else timedelta(seconds=float(seconds))


def this_slot(now: datetime) -> int:
    """Return the reconciler's slot (one period) that `now` falls in."""
    return int(now.timestamp()) // reconcile_period()


def next_slot(now: datetime) -> int:
    """Return the reconciler's next slot after `now`."""
    return this_slot(now) + 1


def reconcile_job(slot: int, *, at_once: bool = False) -> PendingJob:
    """Return the reconciler's job for one `slot` (now when `at_once`)."""
    # One id per slot: whoever schedules a slot first wins, so chains started by two
    # workers merge into one instead of running twice as often.
    at = None if at_once else datetime.fromtimestamp(slot * reconcile_period(), UTC)
    return PendingJob(
        RECONCILE_QUEUE,
        "alerts.jobs.reconcile",
        (),
        job_id=f"reconcile-{slot}",
        at=at,
        at_front=True,
    )
