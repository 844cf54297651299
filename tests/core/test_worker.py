"""RQ jobs run by a real worker process (`flask --app wsgi worker`) on real Redis."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import redis as redis_lib
from rq import Queue
from rq.job import Job, JobStatus

from alerts.models import Partnership, Zone
from core.app import PROJECT_ROOT, create_app
from core.cli import UPKEEP_SECONDS, InProcessWorker
from core.extensions import (
    REDIS_SOCKET_TIMEOUT,
    db,
    redis_connection,
    worker_redis_connection,
)
from core.heartbeat import HEARTBEAT_KEY, record_heartbeat
from core.queue import AliasedJob
from tests.cascade_harness import PrivateRedis
from tests.support import FLASK, SERVER_REDIS_URL, app_config, subprocess_env
from tests.worker_jobs import count_zones, leave_a_zone_uncommitted

REDIS_KINDS = [
    pytest.param(
        "server",
        marks=pytest.mark.skipif(
            not SERVER_REDIS_URL, reason="REDIS_URL not set: Redis server variant skipped"
        ),
    ),
    "embedded",
]


@pytest.fixture(params=REDIS_KINDS)
def worker_redis_url(request):
    """The Redis the worker uses: the real server, or the embedded one."""
    if request.param == "server":
        return SERVER_REDIS_URL
    return request.getfixturevalue("embedded_redis").url


def test_worker_process_runs_a_job_in_the_app_context(tmp_path, worker_redis_url):
    """A job enqueued by the app is run by a separate worker process that reads the database."""
    database_url = f"sqlite:///{tmp_path / 'worker.db'}"
    app = create_app(app_config(tmp_path, database_url, worker_redis_url))
    connection = redis_lib.Redis.from_url(worker_redis_url)
    connection.flushdb()
    with app.app_context():
        db.create_all()
        zone = Zone(code="ZP1", name="Zone 1")
        db.session.add_all(
            [Partnership(code=c, name=c, zone=zone, charter_json={}) for c in ("PLP-A", "PLP-B")]
        )
        db.session.commit()
        job = Queue("urgent", connection=connection).enqueue(record_heartbeat)

    result = subprocess.run(
        [*FLASK, "worker", "--burst", "--without-scheduler"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(DATABASE_URL=database_url, REDIS_URL=worker_redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    beat = json.loads(connection.get(HEARTBEAT_KEY))
    assert beat["partnerships"] == 2  # read from the database through the app's session
    assert beat["pid"] != os.getpid()  # not run in the test process
    assert job.return_value()["pid"] == beat["pid"]
    connection.flushdb()
    connection.close()


def test_worker_takes_urgent_work_first(tmp_path, redis_url, redis_conn):
    """A worker on all queues runs urgent jobs before default and low ones."""
    database_url = f"sqlite:///{tmp_path / 'order.db'}"
    app = create_app(app_config(tmp_path, database_url, redis_url))
    with app.app_context():
        db.create_all()
    low = Queue("low", connection=redis_conn).enqueue(record_heartbeat)
    default = Queue("default", connection=redis_conn).enqueue(record_heartbeat)
    urgent = Queue("urgent", connection=redis_conn).enqueue(record_heartbeat)
    result = subprocess.run(
        [*FLASK, "worker", "--burst", "--without-scheduler"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(DATABASE_URL=database_url, REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for job in (low, default, urgent):
        job.refresh()
    started = sorted((urgent, default, low), key=lambda job: job.started_at)
    assert [job.id for job in started] == [urgent.id, default.id, low.id]


def test_in_process_worker_gives_each_job_a_fresh_session(tmp_path, redis_url, redis_conn):
    """`worker --no-fork` runs jobs in its own process, and one job's session never leaks."""
    database_url = f"sqlite:///{tmp_path / 'inprocess.db'}"
    app = create_app(app_config(tmp_path, database_url, redis_url))
    with app.app_context():
        db.create_all()
    queue = Queue("urgent", connection=redis_conn)
    leave = queue.enqueue(leave_a_zone_uncommitted, "ZPLEAK")
    count = queue.enqueue(count_zones)
    result = subprocess.run(
        [*FLASK, "worker", "--burst", "--without-scheduler", "--no-fork"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(DATABASE_URL=database_url, REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for job in (leave, count):
        job.refresh()
        assert job.get_status() == JobStatus.FINISHED, job.latest_result()
    zones, pid = count.return_value()
    assert pid == leave.return_value() != os.getpid()  # both in the worker itself
    assert zones == 0  # the first job's uncommitted zone was rolled back with its session


# --- A worker that outlives its scheduler and its Redis ------------------------------------

# RQ's scheduler and the worker's reconnection are seen to at each upkeep (UPKEEP_SECONDS,
# 10 s; core/cli.py reads no setting for it). The bounds below leave room for a loaded
# 2-core machine; each is reached only on a bug.
START_SECONDS = 30  # the worker process up, registered, its scheduler running
HEAL_SECONDS = 2 * UPKEEP_SECONDS + 5  # a dead scheduler restarted; a lost Redis found again
ON_TIME_SECONDS = 5  # a scheduled job started at most this long after it was due


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own (it gets killed), stopped after it."""
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def running_worker(tmp_path, private_redis):
    """Start `flask --app wsgi worker --with-scheduler` (the Procfile's) on the private Redis."""
    database_url = f"sqlite:///{tmp_path / 'resilient.db'}"
    with create_app(app_config(tmp_path, database_url, private_redis.url)).app_context():
        db.create_all()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*FLASK, "worker", "--with-scheduler", "--no-fork"],
            cwd=PROJECT_ROOT,
            env=subprocess_env(
                DATABASE_URL=database_url, REDIS_URL=private_redis.url, LOG_LEVEL="INFO"
            ),
            start_new_session=True,  # its scheduler dies with it
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = RunningWorker(process, log_path, private_redis)
    try:
        assert worker.wait_for(worker.scheduler_pid, START_SECONDS), worker.log()
        yield worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(20)


@dataclass
class RunningWorker:
    """A worker process of a test, its log and its Redis."""

    process: subprocess.Popen
    log_path: Path
    redis: PrivateRedis

    def connection(self) -> redis_lib.Redis:
        """Return a new client of the worker's Redis."""
        return redis_lib.Redis.from_url(self.redis.url, socket_timeout=2)

    def log(self) -> str:
        """Return what the worker logged (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def scheduler_pid(self) -> int | None:
        """Return the pid of RQ's scheduler if it is a live child of this worker, else None."""
        try:
            pid = Queue("urgent", connection=self.connection()).scheduler_pid
        except redis_lib.RedisError:
            return None
        children = {child.pid: child for child in psutil.Process(self.process.pid).children()}
        alive = pid in children and children[pid].status() != psutil.STATUS_ZOMBIE
        return pid if alive else None

    def wait_for(self, condition, seconds: float):
        """Poll `condition` until it returns something true, the worker dies or time is up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited:\n{self.log()}"
            if result := condition():
                return result
            time.sleep(0.2)
        return None


def finished(job: Job):
    """Return a check that `job` finished (False while Redis is away)."""

    def check() -> bool:
        try:
            return job.get_status(refresh=True) == JobStatus.FINISHED
        except redis_lib.RedisError:
            return False

    return check


def test_a_killed_scheduler_is_restarted_and_runs_scheduled_jobs_on_time(running_worker):
    """RQ's scheduler killed -9: the worker starts it again, and a delayed job runs when due."""
    worker = running_worker
    first = worker.scheduler_pid()
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    due = datetime.now(UTC) + timedelta(seconds=HEAL_SECONDS)
    job = Queue("urgent", connection=worker.connection()).enqueue_at(due, record_heartbeat)

    second = worker.wait_for(lambda: (pid := worker.scheduler_pid()) != first and pid, HEAL_SECONDS)
    print(f"scheduler killed: restarted after {time.monotonic() - killed_at:.1f} s")
    assert second, f"RQ's scheduler was not restarted:\n{worker.log()}"
    assert worker.wait_for(finished(job), HEAL_SECONDS + ON_TIME_SECONDS + 10), worker.log()
    job.refresh()
    late = (job.started_at.replace(tzinfo=UTC) - due).total_seconds()
    print(f"scheduled job started {late:.1f} s after due")
    assert -1 <= late <= ON_TIME_SECONDS  # not early (the scheduler's clock), not late
    assert job.return_value()["pid"] == worker.process.pid  # the worker ran it, in-process


def test_the_worker_outlives_its_redis_killed_and_restarted(running_worker):
    """Redis kill -9, then restarted empty on its port: the worker lives on and runs new jobs."""
    worker = running_worker
    worker.redis.kill()
    time.sleep(3)  # a few failed tries, its back-off growing
    assert worker.process.poll() is None, f"the worker exited with Redis:\n{worker.log()}"
    worker.redis.start()
    back_at = time.monotonic()
    queue = Queue("urgent", connection=worker.connection())
    job = queue.enqueue(record_heartbeat)
    scheduled = queue.enqueue_in(timedelta(seconds=2), record_heartbeat)

    assert worker.wait_for(finished(job), HEAL_SECONDS), worker.log()
    print(f"redis kill -9: a new job ran {time.monotonic() - back_at:.1f} s after the restart")
    # Its scheduler, restarted if it died with Redis, runs the delayed job too. (Its pid is
    # not asked of Redis here: a scheduler that lived on never writes it again.)
    assert worker.wait_for(finished(scheduled), HEAL_SECONDS), worker.log()
    # Redis forgot the worker: it registers again at its next upkeep.
    assert worker.wait_for(lambda: registered(worker), HEAL_SECONDS), worker.log()
    assert worker.process.poll() is None


def registered(worker: RunningWorker) -> bool:
    """Tell whether Redis lists the worker of `worker.process` among RQ's workers."""
    connection = worker.connection()
    return any(
        connection.hget(key, "pid") == str(worker.process.pid).encode()
        for key in connection.smembers("rq:workers")
    )


def test_rq_never_stretches_the_timeout_of_the_jobs_redis_client(app, redis_conn):
    """The worker loop gets its own client: RQ's long dequeue timeout stays on it."""
    jobs_client = redis_connection()
    worker = InProcessWorker(
        ["default"], connection=worker_redis_connection(), job_class=AliasedJob
    )
    assert worker.connection is not jobs_client
    stretched = worker.connection_timeout
    assert stretched > REDIS_SOCKET_TIMEOUT
    assert worker.connection.connection_pool.connection_kwargs["socket_timeout"] == stretched
    assert jobs_client.connection_pool.connection_kwargs["socket_timeout"] == REDIS_SOCKET_TIMEOUT
    # What it would do to a shared client: the reason for the separate one.
    InProcessWorker(["default"], connection=jobs_client, job_class=AliasedJob)
    assert jobs_client.connection_pool.connection_kwargs["socket_timeout"] == stretched
