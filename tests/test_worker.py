"""RQ jobs run by a real worker process (`flask --app wsgi worker`) on real Redis."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import redis as redis_lib
from rq import Queue
from rq.job import JobStatus

from alerts.models import Partnership, Zone
from core.app import PROJECT_ROOT, create_app
from core.extensions import db
from core.heartbeat import HEARTBEAT_KEY, record_heartbeat
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
