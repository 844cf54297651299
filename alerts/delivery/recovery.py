"""Claims in doubt: what Redis says is held, and the steps dead workers left half done.

A step is claimed (`QUEUED`, no SID) before it is handed to the carrier. When the worker
holding the claim is provably dead, or the claim is old and no queue holds it (Redis lost
it), the reconciler settles it here: from the batch's handover record, else by asking the
carrier what it took for the member's number, and only what neither can tell is failed
"interrupted".
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.worker import Worker
from sqlalchemy import or_, select, update

from alerts.delivery import handover
from alerts.delivery.provider import (
    ProviderError,
    get_provider,
)
from alerts.delivery.schedule import (
    BATCH_JOB_PREFIX,
    DELIVERY_JOB_ID,
    INTERRUPTED_MESSAGE,
    interrupted_after,
)
from alerts.models import (
    Channel,
    Delivery,
    DeliveryStatus,
)
from core.extensions import db, redis_connection
from core.queue import (
    QUEUE_NAMES,
)

log = logging.getLogger(__name__)

RECORDING_JOB_ID = re.compile(r"^recording-(\d+)(?:-|$)")


@dataclass
class HeldWork:
    """What Redis says is being done: deliveries and recordings held, claims orphaned."""

    deliveries: set[int] = field(default_factory=set)  # queued, scheduled, or run by a live worker
    orphaned: set[int] = field(default_factory=set)  # run by a worker that is provably dead
    recordings: set[int] = field(default_factory=set)
    job_ids: set[str] = field(default_factory=set)  # every job id waiting or running


def held_deliveries(connection: redis.Redis | None = None) -> set[int]:
    """Return the ids of deliveries that a queue, RQ's schedule or a live worker holds."""
    return held_work(connection).deliveries


def held_work(connection: redis.Redis | None = None) -> HeldWork:
    """Return what the queues, RQ's schedule and the workers hold, and what dead workers held.

    A started job whose worker is provably dead (its heartbeat expired in RQ's started
    registry, or its process is gone from this host) holds nothing: its deliveries are
    `orphaned`, and the reconciler settles their claims at once instead of waiting
    `INTERRUPTED_AFTER`.
    """
    connection = connection or redis_connection()
    work = HeldWork()
    workers: dict[str, bool] = {}
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=connection)
        waiting = [
            *queue.get_job_ids(),
            *ScheduledJobRegistry(queue=queue).get_job_ids(cleanup=False),
        ]
        started = StartedJobRegistry(queue=queue)
        running = started.get_job_ids(cleanup=False)
        expired = set(started.get_expired_job_ids())
        if expired:
            # A job whose worker stopped sending heartbeats (killed) goes to the failed
            # registry, so that RQ's own view agrees.
            started.cleanup()
        work.job_ids.update(waiting, running)
        _hold(work.deliveries, work.recordings, waiting, connection)
        dead_jobs = []
        live_jobs = []
        for job in Job.fetch_many(running, connection=connection):
            if job is None:
                continue
            if job.id in expired or _worker_is_dead(connection, job.worker_name, workers):
                dead_jobs.append(job.id)
            else:
                live_jobs.append(job.id)
        _hold(work.deliveries, work.recordings, live_jobs, connection)
        _hold(work.orphaned, set(), dead_jobs, connection)
    work.orphaned -= work.deliveries
    return work


def _hold(deliveries: set[int], recordings: set[int], job_ids, connection) -> None:
    batches = []
    for job_id in job_ids:
        match = DELIVERY_JOB_ID.match(job_id)
        if match:
            deliveries.add(int(match[1]))
        elif job_id.startswith(BATCH_JOB_PREFIX):
            batches.append(job_id)
        elif match := RECORDING_JOB_ID.match(job_id):
            recordings.add(int(match[1]))
    for job in Job.fetch_many(batches, connection=connection):
        if job is not None and job.args:
            deliveries.update(job.args[0])


def _worker_is_dead(connection: redis.Redis, name: str | None, seen: dict[str, bool]) -> bool:
    """Tell whether worker `name` is provably dead: stopped, or its process gone from here."""
    if not name:
        return False
    if name not in seen:
        pid, hostname, death = connection.hmget(
            Worker.redis_worker_namespace_prefix + name, "pid", "hostname", "death"
        )
        seen[name] = death is not None or (
            pid is not None
            and hostname is not None
            and hostname.decode() == socket.gethostname()
            and not _process_alive(int(pid))
        )
    return seen[name]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fail_interrupted(now: datetime, held: set[int], orphaned: Iterable[int] = ()) -> int:
    """Settle claims no live worker holds; mark failed those whose send cannot be known.

    A claim is abandoned when its worker is provably dead (`orphaned`), or when it is
    older than `INTERRUPTED_AFTER` and held by no one (Redis lost what held it). The
    batch's handover record settles what it knows; the carrier is asked about the rest
    (`_ask_carrier`); only what neither can tell is failed "interrupted".
    """
    orphaned = sorted(orphaned)
    old = Delivery.updated_at < now - interrupted_after()
    abandoned = [
        delivery_id
        for delivery_id in db.session.scalars(
            select(Delivery.id).where(
                Delivery.status == DeliveryStatus.QUEUED,
                Delivery.provider_sid.is_(None),
                or_(old, Delivery.id.in_(orphaned)) if orphaned else old,
                # An e-mail waiting for its retry is put back on a queue, not failed.
                ~((Delivery.channel == Channel.EMAIL) & Delivery.error_code.is_not(None)),
            )
        )
        if delivery_id not in held
    ]
    if not abandoned:
        return 0
    abandoned = _recover_handovers(abandoned, now)
    if not abandoned:
        return 0
    abandoned = _ask_carrier(abandoned, now)
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
    doubt, replan, sids = [], [], []
    for delivery_id, state in zip(abandoned, states, strict=True):
        if state == handover.CLAIMED:
            replan.append(delivery_id)
        elif state not in (None, handover.SENDING):
            sids.append({"b_id": delivery_id, "b_sid": state, "b_at": now})
        else:
            doubt.append(delivery_id)
    if _settle(replan, sids, now):
        log.warning(
            "abandoned batch claims recovered planned_again=%d sids_saved=%d",
            len(replan),
            len(sids),
        )
    return doubt


def _ask_carrier(doubt: list[int], now: datetime) -> list[int]:
    """Ask the carrier whether claimed steps in doubt went out; return those it cannot tell.

    The carrier lists what it took for the member's number since the claim: a call or SMS
    no delivery has the SID of is this step's (its SID is saved; its callbacks follow);
    nothing means it never left (planned again, sent by this reconcile run). A carrier
    that cannot be asked leaves the step in doubt.
    """
    try:
        provider = get_provider()
    except ProviderError as err:
        log.warning("carrier cannot be asked about claims in doubt: %s", err)
        return doubt
    find_recent = getattr(provider, "find_recent", None)
    if find_recent is None:  # a provider without a list query
        log.warning("carrier cannot be asked about claims in doubt provider=%s", provider.name)
        return doubt
    rows = db.session.execute(
        select(Delivery.id, Delivery.channel, Delivery.to_address, Delivery.updated_at).where(
            Delivery.id.in_(doubt)
        )
    ).all()
    db.session.rollback()  # read only: no transaction open while the carrier answers
    unknown, replan, found = [], [], {}
    for row in rows:
        if row.channel == Channel.EMAIL or row.to_address is None:
            unknown.append(row.id)
            continue
        try:
            # A margin for the clocks of the claiming worker and the carrier.
            found[row.id] = find_recent(
                row.to_address, row.channel.value, row.updated_at - timedelta(seconds=5)
            )
        except ProviderError as err:
            log.warning("carrier not asked delivery_id=%s: %s", row.id, err)
            unknown.append(row.id)
    every_sid = {sid for sids in found.values() for sid in sids}
    used = set(
        db.session.scalars(
            select(Delivery.provider_sid).where(Delivery.provider_sid.in_(every_sid))
        )
        if every_sid
        else ()
    )
    adopted = []
    for delivery_id, sids in found.items():
        fresh = [sid for sid in sids if sid not in used]
        if fresh:
            used.add(fresh[0])
            adopted.append({"b_id": delivery_id, "b_sid": fresh[0], "b_at": now})
        else:
            replan.append(delivery_id)
    if _settle(replan, adopted, now):
        log.warning(
            "claims in doubt settled with the carrier sids_adopted=%d planned_again=%d",
            len(adopted),
            len(replan),
        )
    return unknown


def _settle(replan: list[int], sids: list[dict], now: datetime) -> bool:
    """Plan `replan` again and save `sids` (claims still without a SID), commit, forget them.

    Return whether anything was settled.
    """
    table = Delivery.__table__
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
    handover.forget(settled)
    return bool(settled)
