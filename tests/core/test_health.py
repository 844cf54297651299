"""GET /healthz: 200 only while the work is being done, else 503 with machine-readable reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask_migrate import stamp
from rq import Queue
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler

from alerts.delivery.pacing import pace_key
from alerts.delivery.reconciler import reconcile
from alerts.models import Channel, DeliveryStatus, utcnow
from core import health
from core.app import create_app
from core.heartbeat import HEARTBEAT_JOB_ID, HEARTBEAT_KEY
from core.queue import QUEUE_NAMES
from tests.support import TWILIO_SETTINGS, app_config, run_queued_jobs

PUBLIC = {"REMOTE_ADDR": "203.0.113.7"}  # a client on the Internet
TOKEN = "health-token-for-the-monitor-0123"


def work_is_done(redis_conn) -> None:
    """Make Redis say what a running system says: a fresh heartbeat, reconciler, scheduler."""
    redis_conn.set(HEARTBEAT_KEY, json.dumps({"at": datetime.now(UTC).isoformat()}))
    redis_conn.set(health.RECONCILE_LAST_KEY, datetime.now(UTC).isoformat())
    scheduler = RQScheduler(list(QUEUE_NAMES), connection=redis_conn)
    assert scheduler.acquire_locks() == set(QUEUE_NAMES)  # RQ's own locks, as a worker takes


@pytest.fixture
def healthy(app, redis_conn):
    """An app whose schema is migrated and whose workers, reconciler and scheduler run."""
    stamp()  # the tables exist (create_all); record them as migrated to the head
    work_is_done(redis_conn)
    return app


def reasons_of(client, **kwargs) -> list[str]:
    """Return the reasons /healthz gives (asserting the status code agrees with them)."""
    response = client.get("/healthz", **kwargs)
    body = response.get_json()
    assert response.status_code == (503 if body["reasons"] else 200)
    assert body["status"] == ("down" if body["reasons"] else "ok")
    return body["reasons"]


def test_healthy(client, healthy, request):
    """With the schema migrated and the work running, /healthz answers 200 with the details."""
    database = request.node.callspec.params["database_url"]  # this variant's: sqlite, postgresql
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ok" and body["down"] == [] and body["reasons"] == []
    assert body["database"]["status"] == "ok"
    assert body["database"]["backend"] == database
    assert body["database"]["revision"] == ["0002_recording_status"]
    assert body["redis"]["status"] == "ok"
    assert body["work"]["workers"] == 0
    assert body["work"]["last_job_seconds_ago"] < 5
    assert body["work"]["last_reconcile_seconds_ago"] < 5
    assert body["work"]["queues_without_scheduler"] == []
    assert body["deliveries"]["overdue_first_contacts"] == 0
    assert body["provider"] == {"status": "ok", "provider": "simulator"}


def test_a_fresh_system_without_worker_is_down(client, app, redis_conn):
    """Nothing ever ran: no reconciler, no scheduler; /healthz says so instead of `ok`."""
    stamp()
    assert reasons_of(client) == [health.RECONCILER_STALE, health.SCHEDULER_GONE]


def test_heartbeat_job_is_enqueued_once(client, redis_conn, app):
    """Without a recent heartbeat, /healthz enqueues one heartbeat job, never two."""
    client.get("/healthz")
    client.get("/healthz")
    queue = Queue("urgent", connection=redis_conn)
    assert queue.job_ids == [HEARTBEAT_JOB_ID]


def test_heartbeat_job_waiting_two_minutes_means_no_worker(client, healthy, redis_conn):
    """A stale beat is not down while its job is fresh; once the job waited 2 min, it is."""
    old_beat = datetime.now(UTC) - timedelta(minutes=10)  # nobody polled for ten minutes
    redis_conn.set(HEARTBEAT_KEY, json.dumps({"at": old_beat.isoformat()}))
    assert reasons_of(client) == []  # the job is enqueued now: a worker has time to run it
    job = Job.fetch(HEARTBEAT_JOB_ID, connection=redis_conn)
    job.enqueued_at = datetime.now(UTC) - timedelta(seconds=health.WORKER_STALE_SECONDS + 5)
    job.save()
    assert reasons_of(client) == [health.NO_WORKER]
    run_queued_jobs()  # a worker comes back and runs it
    assert reasons_of(client) == []


def test_failed_heartbeat_job_is_down_and_tried_again(client, healthy, redis_conn):
    """A heartbeat job that failed is reported, and a new one is enqueued for the next poll."""
    redis_conn.delete(HEARTBEAT_KEY)
    client.get("/healthz")
    job = Job.fetch(HEARTBEAT_JOB_ID, connection=redis_conn)
    job.set_status(JobStatus.FAILED)
    assert reasons_of(client) == [health.HEARTBEAT_FAILED]
    retried = Job.fetch(HEARTBEAT_JOB_ID, connection=redis_conn)
    assert retried.get_status() == JobStatus.QUEUED
    assert reasons_of(client) == []  # waiting, not yet late


def test_stale_or_missing_reconciler_is_down(client, healthy, redis_conn):
    """The reconciler's last run older than two minutes, or never recorded: down."""
    stale = datetime.now(UTC) - timedelta(seconds=health.RECONCILER_STALE_SECONDS + 5)
    redis_conn.set(health.RECONCILE_LAST_KEY, stale.isoformat())
    assert reasons_of(client) == [health.RECONCILER_STALE]
    redis_conn.delete(health.RECONCILE_LAST_KEY)
    assert reasons_of(client) == [health.RECONCILER_STALE]


def test_the_reconciler_records_its_runs(client, healthy, redis_conn):
    """A reconcile run writes the key /healthz reads (the reconciler spells it itself)."""
    redis_conn.delete(health.RECONCILE_LAST_KEY)
    reconcile()
    assert reasons_of(client) == []
    body = client.get("/healthz").get_json()
    assert body["work"]["last_reconcile_seconds_ago"] < 5


def test_missing_scheduler_is_down(client, healthy, redis_conn):
    """RQ's scheduler gone from a queue (its lock expired): down, naming the queue."""
    redis_conn.delete(RQScheduler.get_locking_key("low"))
    assert reasons_of(client) == [health.SCHEDULER_GONE]
    assert client.get("/healthz").get_json()["work"]["queues_without_scheduler"] == ["low"]


def planned(make_delivery, seconds_ago: float, step: int = 0):
    """A delivery still planned, due `seconds_ago`."""
    return make_delivery(
        Channel.SMS,
        status=DeliveryStatus.PLANNED,
        provider_sid=None,
        sent_at=None,
        step=step,
        due_at=utcnow() - timedelta(seconds=seconds_ago),
    )


def test_first_contact_overdue_by_a_minute_is_down(client, healthy, make_delivery):
    """A first contact planned and due more than a minute ago: down, with how late."""
    planned(make_delivery, seconds_ago=30)
    assert reasons_of(client) == []
    planned(make_delivery, seconds_ago=90)
    assert reasons_of(client) == [health.DELIVERIES_OVERDUE]
    deliveries = client.get("/healthz").get_json()["deliveries"]
    assert deliveries["overdue_first_contacts"] == 1
    assert 85 < deliveries["oldest_overdue_seconds"] < 120


def test_later_steps_and_paced_waves_are_not_overdue(client, healthy, make_delivery, redis_conn):
    """A later step held behind a call, or a backlog the pacer is sending: not down."""
    planned(make_delivery, seconds_ago=600, step=1)
    assert reasons_of(client) == []
    planned(make_delivery, seconds_ago=300)
    assert reasons_of(client) == [health.DELIVERIES_OVERDUE]
    redis_conn.set(pace_key("sms"), "1", px=2000)  # a send is booked: the wave is moving
    assert reasons_of(client) == []


def test_pacer_keys_are_the_pacers():
    """/healthz reads the keys the pacer writes."""
    assert (pace_key("call"), pace_key("sms")) == health.PACER_KEYS


@pytest.mark.app_settings(
    PHONE_PROVIDER="simulator", TWILIO_ACCOUNT_SID=TWILIO_SETTINGS["TWILIO_ACCOUNT_SID"]
)
def test_simulator_while_twilio_intended_is_down(client, healthy):
    """The simulator runs although a Twilio variable is set: down, nobody is really called."""
    assert reasons_of(client) == [health.SIMULATOR_WHILE_TWILIO_INTENDED]
    assert client.get("/healthz").get_json()["down"] == ["provider"]


def test_unmigrated_database_is_down(client, redis_conn):
    """Tables made without migrations (no alembic_version) are reported as not migrated: 503."""
    work_is_done(redis_conn)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["reasons"] == [health.DATABASE_NOT_MIGRATED]
    assert body["down"] == ["database", "deliveries"]
    assert body["database"]["status"] == "not_migrated"
    assert "db upgrade" in body["database"]["error"]


def test_database_down(tmp_path, redis_url, redis_conn):
    """An unreachable database gives 503 naming the database, and Redis still reported up."""
    work_is_done(redis_conn)
    app = create_app(app_config(tmp_path, "postgresql://nobody@127.0.0.1:1/none", redis_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["reasons"] == [health.DATABASE_DOWN]
    assert body["down"] == ["database", "deliveries"]
    assert body["database"]["status"] == "down"
    assert "OperationalError" in body["database"]["error"]
    assert body["redis"]["status"] == "ok"


def test_redis_down(tmp_path):
    """An unreachable Redis gives 503 naming Redis, with the error."""
    app = create_app(
        app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", "redis://127.0.0.1:1/0")
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert health.REDIS_DOWN in body["reasons"]
    assert "redis" in body["down"]
    assert body["redis"]["status"] == "down"
    assert "ConnectionError" in body["redis"]["error"]


def test_public_sees_reasons_but_no_connection_details(tmp_path, redis_url, redis_conn):
    """From the Internet: status and reasons only; no host, port, URL or error text."""
    work_is_done(redis_conn)
    app = create_app(app_config(tmp_path, "postgresql://nobody@127.0.0.1:1/none", redis_url))
    client = app.test_client()
    local = client.get("/healthz").get_data(as_text=True)
    assert "127.0.0.1" in local and "OperationalError" in local  # loopback: the details
    for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}, {"Authorization": "Bearer wrong"}):
        response = client.get("/healthz", environ_base=PUBLIC, headers=headers)
        assert response.status_code == 503
        body = response.get_json()
        assert body["reasons"] == [health.DATABASE_DOWN]
        assert body["database"] == {"status": "down"}
        text = response.get_data(as_text=True)
        for detail in ("127.0.0.1", ":1/", "nobody", "postgresql", redis_url, "://", "Error"):
            assert detail not in text, detail
    # A forwarded request reaching a local proxy is not a loopback client either.
    forwarded = client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert "error" not in forwarded.get_json()["database"]


def test_the_health_token_shows_the_details(tmp_path, redis_url, redis_conn):
    """`Authorization: Bearer <HEALTH_TOKEN>` shows the details to a remote monitor."""
    work_is_done(redis_conn)
    config = app_config(
        tmp_path, "postgresql://nobody@127.0.0.1:1/none", redis_url, HEALTH_TOKEN=TOKEN
    )
    client = create_app(config).test_client()
    body = client.get(
        "/healthz", environ_base=PUBLIC, headers={"Authorization": f"Bearer {TOKEN}"}
    ).get_json()
    assert "OperationalError" in body["database"]["error"]
    assert body["redis"]["embedded"] is False
    public = client.get("/healthz", environ_base=PUBLIC).get_json()
    assert public["redis"] == {"status": "ok"}


def test_embedded_redis_is_started_on_demand(tmp_path):
    """With REDIS_URL unset, /healthz starts the embedded server and reports it up."""
    config = app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", None)
    app = create_app(config)
    embedded = app.extensions["redis"]["embedded"]
    try:
        response = app.test_client().get("/healthz")
        body = response.get_json()
        assert body["redis"] == {**body["redis"], "status": "ok", "embedded": True}
        assert embedded.is_running()
    finally:
        embedded.stop()
    assert not embedded.is_running()
