"""GET /healthz: 200 with the state of database and Redis, 503 naming what is down."""

from __future__ import annotations

from flask_migrate import stamp
from rq import Queue

from core.app import create_app
from core.heartbeat import HEARTBEAT_JOB_ID
from tests.support import app_config


def test_healthy(client, redis_conn, app):
    """With the schema migrated and Redis up, /healthz answers 200 and says so for both."""
    stamp()  # the tables exist (create_all); record them as migrated to the head
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["database"]["status"] == "ok"
    assert body["database"]["backend"] in ("sqlite", "postgresql")
    assert body["database"]["revision"] == ["0002_recording_status"]
    assert body["redis"]["status"] == "ok"
    assert body["redis"]["workers"] == 0
    assert body["redis"]["last_job_seconds_ago"] is None


def test_heartbeat_job_is_enqueued_once(client, redis_conn, app):
    """Without a recent heartbeat, /healthz enqueues one heartbeat job, never two."""
    client.get("/healthz")
    client.get("/healthz")
    queue = Queue("urgent", connection=redis_conn)
    assert queue.job_ids == [HEARTBEAT_JOB_ID]


def test_unmigrated_database_is_down(client):
    """Tables made without migrations (no alembic_version) are reported as not migrated: 503."""
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["database"]
    assert body["database"]["status"] == "not_migrated"
    assert "db upgrade" in body["database"]["error"]


def test_database_down(tmp_path, redis_url, redis_conn):
    """An unreachable database gives 503 naming the database, and Redis still reported up."""
    app = create_app(app_config(tmp_path, "postgresql://nobody@127.0.0.1:1/none", redis_url))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["database"]
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
    assert "redis" in body["down"]
    assert body["redis"]["status"] == "down"
    assert "ConnectionError" in body["redis"]["error"]


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
