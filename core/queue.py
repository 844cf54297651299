"""The enqueue plumbing: jobs put on RQ's queues after the commit that made them due.

Jobs are named, not passed: `enqueue_after_commit("urgent", "alerts.jobs.reconcile", ...)`.
RQ stores a job's function as a dotted path anyway; naming it here means no module has
to import the job it starts (the root of the old import circle), and `alerts.jobs` is the
one registry every name points into (a test resolves every name used in the code).

A job stays a promise until the session's outermost transaction commits: rolled back,
it never runs. Nothing here knows the domain; `create_app` hands in the aliases that keep
jobs scheduled under an older path working (`register_job_aliases`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.utils import import_attribute
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.extensions import db, redis_connection

log = logging.getLogger(__name__)

# Workers take urgent work first: a red alert never waits behind a bulletin.
QUEUE_NAMES = ("urgent", "default", "low")
PENDING_JOBS = "plp.pending_jobs"  # key in Session.info: jobs waiting for the commit
RESULT_TTL_SECONDS = 600  # a finished job's result, for inspection; 50,000 jobs fit
ENQUEUE_CHUNK = 1000  # jobs per Redis round trip: the first calls start while the rest go in

# Old dotted path -> current one, for jobs that Redis still holds under a path that moved.
_ALIASES: dict[str, str] = {}


class AliasedJob(Job):
    """An RQ job whose function is looked up through the aliases of moved job paths.

    A job scheduled before an upgrade names the function where it lived then; RQ would
    fail it with an ImportError. Kept for one release after a move (see the README).
    """

    @property
    def func(self):
        """Return the job's function, following an alias when its path has moved."""
        name = self.func_name
        if name is None or self.instance is not None:
            return super().func
        return import_attribute(_ALIASES.get(name, name))


def register_job_aliases(aliases: Mapping[str, str]) -> None:
    """Let jobs enqueued under the old paths in `aliases` run the functions they now name."""
    _ALIASES.update(aliases)


def job_aliases() -> Mapping[str, str]:
    """Return the registered aliases (old path -> current path)."""
    return dict(_ALIASES)


def get_queue(name: str = "default") -> Queue:
    """Return the RQ queue `name` on the app's Redis."""
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    return Queue(name, connection=redis_connection(), job_class=AliasedJob)


@dataclass(frozen=True)
class PendingJob:
    """A job to put on a queue: now, or on RQ's schedule when `at` is in the future.

    `func` is the job's dotted path (`"alerts.jobs.run_cascade_step"`).
    """

    queue: str
    func: str
    args: tuple
    job_id: str
    at: datetime | None = None
    at_front: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.func, str) or "." not in self.func:
            raise TypeError(f"a job is named by its dotted path, not {self.func!r}")
        if self.queue not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {self.queue!r}; queues are {', '.join(QUEUE_NAMES)}")


def enqueue_after_commit(
    queue: str, func: str, *args: object, job_id: str, at: datetime | None = None
) -> None:
    """Enqueue job `func(*args)` as `job_id` once the session's transaction commits.

    Dropped if it rolls back. A job id already known to Redis is not enqueued again
    (already queued, or already run). `at` in the future schedules the job for then.
    """
    add_after_commit(PendingJob(queue=queue, func=func, args=args, job_id=job_id, at=at))


def add_after_commit(job: PendingJob) -> None:
    """Hold `job` until the session's outermost transaction commits."""
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
            _put(queue, [j for j in fresh if j.queue == name], now, pipe)
        pipe.execute()
        enqueued += len(fresh)
    log.debug("jobs enqueued count=%d of=%d", enqueued, len(jobs))
    return enqueued


def _put(queue: Queue, jobs: list[PendingJob], now: datetime, pipe) -> None:
    due = [j for j in jobs if j.at is None or j.at <= now]
    if due:
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    j.func,
                    args=j.args,
                    job_id=j.job_id,
                    result_ttl=RESULT_TTL_SECONDS,
                    at_front=j.at_front,
                )
                for j in due
            ],
            pipeline=pipe,
        )
    for j in jobs:
        if j.at is not None and j.at > now:
            scheduled = queue.create_job(
                j.func,
                args=j.args,
                job_id=j.job_id,
                result_ttl=RESULT_TTL_SECONDS,
                status=JobStatus.SCHEDULED,
            )
            scheduled.enqueue_at_front = j.at_front
            queue.schedule_job(scheduled, j.at, pipeline=pipe)


def enqueue_again(
    queue: str, func: str, args: tuple, *, base_id: str, try_number: int, at: datetime
) -> str:
    """Enqueue a later try of job `base_id` for `at`, under a new id; return that id.

    The running job still holds `base_id` (RQ would skip it as known): a later try is
    `<base_id>-<try>-<ms>`, which the reconciler still reads as the same work.
    """
    job_id = f"{base_id}-{try_number}-{int(at.timestamp() * 1000)}"
    enqueue_jobs([PendingJob(queue, func, tuple(args), job_id=job_id, at=at)])
    return job_id


@contextmanager
def savepoint() -> Iterator[None]:
    """Run the block in a savepoint of the session's transaction, flushed at its end.

    On an error inside, only the block's work is undone and the error propagates.
    """
    connection = db.session.connection()
    # pysqlite opens a transaction only before a write, so a SAVEPOINT after mere SELECTs
    # would be the outermost one and its RELEASE would commit on its own: the caller's
    # rollback would then leave the block's work in place.
    if (
        connection.dialect.name == "sqlite"
        and not connection.connection.driver_connection.in_transaction
    ):
        connection.exec_driver_sql("BEGIN")
    with db.session.begin_nested():
        yield
