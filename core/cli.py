"""Core commands: `flask --app wsgi worker|redis`, and the transaction helper every command uses.

Commands are thin: parse options, call one domain function, commit, print. Domain
errors become a one-line `Error: ...` and exit status 1; nothing is half-written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click
import redis
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from rq import SimpleWorker, Worker, worker_registration
from rq.exceptions import DequeueTimeout, StopRequested
from rq.worker.base import WorkerStatus

from core.extensions import db, worker_redis_connection
from core.queue import QUEUE_NAMES, AliasedJob

log = logging.getLogger(__name__)

# How often a worker sees to its upkeep (the domain's checks, RQ's scheduler, its own
# registration), and so the longest it blocks waiting for a job.
UPKEEP_SECONDS = 10
# A lost Redis is tried again after 0.5 s, then twice as long each time, at most this.
REDIS_BACKOFF_START, REDIS_BACKOFF_MAX = 0.5, 10.0
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)

redis_cli = AppGroup("redis", help="The embedded Redis server (used when REDIS_URL is unset).")


@contextmanager
def cli_transaction(*refusals: type[Exception]) -> Iterator[None]:
    """Commit on success; on a refusal roll back and exit with a one-line message."""
    try:
        yield
        db.session.commit()
    except refusals as err:
        db.session.rollback()
        raise click.ClickException(str(err)) from None
    except BaseException:
        db.session.rollback()
        raise


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--with-scheduler/--without-scheduler",
    default=True,
    show_default=True,
    help="Also run RQ's scheduler (delayed cascade steps).",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(QUEUE_NAMES),
    help="Queues to listen on, in priority order (default: all).",
)
@click.option(
    "--fork/--no-fork",
    default=True,
    show_default=True,
    help="Run each job in a forked work horse (isolation) or in this process "
    "(no fork per job: several times the throughput).",
)
@with_appcontext
def worker_command(burst: bool, with_scheduler: bool, queues: tuple[str, ...], fork: bool) -> None:
    """Run an RQ worker; every job runs inside this app's context."""
    app = current_app._get_current_object()
    connection = worker_redis_connection()  # not the jobs' client: RQ changes its timeout
    # The work horse is a fork: it must not reuse the parent's database connections.
    os.register_at_fork(after_in_child=lambda: _dispose_engines(app))
    worker_class = ForkingWorker if fork else InProcessWorker
    worker = worker_class(list(queues or QUEUE_NAMES), connection=connection, job_class=AliasedJob)
    # What the domain readies in a worker (create_app hands it in): the reconciler, which
    # re-enqueues what Redis lost, and what jobs share; and what it checks every few
    # seconds of the worker's loop (that the reconciler's chain is still in Redis).
    worker.upkeep = [
        lambda check=check: check(app) for check in app.extensions.get("worker_checks", ())
    ]
    worker.until_redis_answers(
        lambda: [prepare(app) for prepare in app.extensions.get("worker_setup", ())]
    )
    log.info(
        "worker starting queues=%s scheduler=%s", ",".join(queues or QUEUE_NAMES), with_scheduler
    )
    worker.work(burst=burst, with_scheduler=with_scheduler)


class ResilientWorker:
    """What PLP Alert's workers add to RQ's: they outlive Redis, and see to their upkeep.

    RQ's worker quits on a Redis timeout or any error outside a job, and restarts its
    scheduler at most every `maintenance_interval` (10 minutes). This one, mixed into
    RQ's forking and non-forking workers: waits for a lost Redis with capped exponential
    back-off (logged once per outage) and carries on where it was; blocks at most
    `UPKEEP_SECONDS` waiting for a job; and that often runs its `upkeep` checks (handed in
    by the domain through `app.extensions["worker_checks"]`), restarts RQ's scheduler if
    its process died (with Redis), and registers itself again if Redis forgot it.
    """

    upkeep: Sequence[Callable[[], None]] = ()
    _next_upkeep = 0.0
    _outage_since: float | None = None
    _backoff = REDIS_BACKOFF_START
    _with_scheduler = False

    @property
    def dequeue_timeout(self) -> int:
        """Block at most `UPKEEP_SECONDS` waiting for a job: the upkeep runs between waits."""
        return UPKEEP_SECONDS

    @property
    def should_run_maintenance_tasks(self) -> bool:
        """Tell whether the upkeep (or RQ's own maintenance) is due."""
        return time.monotonic() >= self._next_upkeep or super().should_run_maintenance_tasks

    def run_maintenance_tasks(self) -> None:
        """Run RQ's maintenance when due, then the upkeep checks."""
        if super().should_run_maintenance_tasks:
            super().run_maintenance_tasks()
        self._next_upkeep = time.monotonic() + UPKEEP_SECONDS
        self._register_again()
        self._restart_scheduler()
        for check in self.upkeep:
            try:
                check()
            except REDIS_ERRORS:
                raise
            except Exception:
                log.exception("worker upkeep check failed worker=%s", self.name)

    def work(
        self, burst: bool = False, logging_level: str | None = None, with_scheduler: bool = False
    ) -> bool:
        """Run the work loop (RQ's, less its exits on Redis errors); return whether it worked."""
        self._with_scheduler = with_scheduler and not burst  # burst: no scheduler process
        self.until_redis_answers(lambda: self.bootstrap(logging_level))
        if with_scheduler:
            self.until_redis_answers(lambda: self._start_scheduler(burst, logging_level))
        self._install_signal_handlers()
        completed = 0
        try:
            while not self._stop_requested:
                try:
                    self.check_for_suspension(burst)
                    result = self.dequeue_job_and_maintain_ttl(
                        None if burst else self.dequeue_timeout
                    )
                    if result is None:  # burst: the queues are empty
                        break
                    job, queue = result
                    self.execute_job(job, queue)
                    self.heartbeat()
                    completed += 1
                except REDIS_ERRORS as err:
                    self._wait_for_redis(err)
                except StopRequested:
                    break
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                self.teardown()
        return bool(completed)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None):
        """Wait for a job, running the upkeep between waits; Redis errors go to `work`."""
        self.set_state(WorkerStatus.IDLE)
        self.procline("Listening on " + ",".join(self.queue_names()))
        while True:
            self.heartbeat()
            self._redis_answers()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            try:
                result = self.queue_class.dequeue_any(
                    self._ordered_queues,
                    timeout,
                    connection=self.connection,
                    job_class=self.job_class,
                    serializer=self.serializer,
                    death_penalty_class=self.death_penalty_class,
                )
            except DequeueTimeout:
                if self._stop_requested:
                    return None
                continue
            if result is not None:
                job, queue = result
                self.reorder_queues(reference_queue=queue)
                job.redis_server_version = self.get_redis_server_version()
                self.log.info("Worker %s: %s: %s", self.name, queue.name, job.id)
            return result

    def request_stop(self, signum, frame) -> None:
        """Stop after the current job (warm shutdown), even while Redis is away."""
        self._stop_requested = True
        with contextlib.suppress(*REDIS_ERRORS):
            super().request_stop(signum, frame)

    def until_redis_answers(self, action: Callable[[], object]) -> None:
        """Run `action`, waiting with back-off while Redis does not answer."""
        while True:
            try:
                action()
            except REDIS_ERRORS as err:
                if self._stop_requested:
                    raise
                self._wait_for_redis(err)
            else:
                self._redis_answers()
                return

    def _wait_for_redis(self, err: Exception) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._backoff = REDIS_BACKOFF_START
            log.warning(
                "worker lost Redis, retrying with back-off worker=%s error=%s", self.name, err
            )
        deadline = time.monotonic() + self._backoff
        while time.monotonic() < deadline and not self._stop_requested:
            time.sleep(0.1)
        self._backoff = min(self._backoff * 2, REDIS_BACKOFF_MAX)

    def _redis_answers(self) -> None:
        if self._outage_since is not None:
            log.warning(
                "worker reached Redis again worker=%s after_s=%.1f",
                self.name,
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
            self._next_upkeep = 0.0  # see to the upkeep at once: Redis may have lost much

    def _register_again(self) -> None:
        """Register the worker again if Redis forgot it (flushed, restarted without data)."""
        if self.connection.hexists(self.key, "birth"):
            return
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()
        log.warning("worker registered again: Redis had forgotten it worker=%s", self.name)

    def _restart_scheduler(self) -> None:
        """Start RQ's scheduler again if its process died (as it does when Redis drops)."""
        scheduler = self.scheduler
        if not self._with_scheduler or scheduler is None:
            return
        process = scheduler._process  # RQ keeps no public handle on it
        if process is not None and process.is_alive():
            return
        if process is not None:
            process.join(0)
        if scheduler.acquire_locks(auto_start=True) and process is not None:
            log.warning("RQ scheduler restarted worker=%s", self.name)


class ForkingWorker(ResilientWorker, Worker):
    """RQ's forking worker (a work horse per job), resilient (see `ResilientWorker`)."""

    def execute_job(self, job, queue) -> None:
        """Run the job in a work horse; if Redis drops meanwhile, let the horse finish first."""
        try:
            super().execute_job(job, queue)
        except REDIS_ERRORS:
            if self._horse_pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self._horse_pid, 0)
            raise


class InProcessWorker(ResilientWorker, SimpleWorker):
    """RQ's non-forking worker, resilient, with a fresh database session for every job.

    A forked work horse starts each job with a clean copy of the session; in-process
    jobs share the worker's app context, so the session (its identity map and any open
    transaction) is removed after each job, success or failure.
    """

    def perform_job(self, *args, **kwargs):
        """Run the job, then drop the session it used."""
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            db.session.remove()


def _dispose_engines(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose(close=False)


@redis_cli.command("start")
@with_appcontext
def redis_start() -> None:
    """Start the embedded Redis server (when REDIS_URL is unset) and print its URL."""
    embedded = current_app.extensions["redis"]["embedded"]
    if embedded is None:
        click.echo("REDIS_URL is set: using that server, no embedded Redis to start")
        return
    click.echo(embedded.ensure_running())


@redis_cli.command("stop")
@with_appcontext
def redis_stop() -> None:
    """Stop the embedded Redis server, saving its data."""
    embedded = current_app.extensions["redis"]["embedded"]
    if embedded is None:
        click.echo("REDIS_URL is set: no embedded Redis to stop")
        return
    click.echo("embedded redis stopped" if embedded.stop() else "embedded redis was not running")


def register_commands(app: Flask) -> None:
    """Attach core's commands (`worker`, `redis`) to the app's CLI; create_app adds the rest."""
    for command in (redis_cli, worker_command):
        app.cli.add_command(command)
