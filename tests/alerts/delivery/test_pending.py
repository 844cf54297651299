"""The reconciler's other work: a speech render is redone only when Redis lost its job."""

from __future__ import annotations

from datetime import timedelta

from rq import SimpleWorker

from alerts.delivery.pending import enqueue_other_work
from alerts.delivery.recovery import HeldWork
from alerts.delivery.schedule import render_job_id
from alerts.models import AlertState, utcnow
from core.queue import AliasedJob, PendingJob, enqueue_jobs, get_queue


def _delivering(make_alert):
    return make_alert(state=AlertState.DELIVERING, released_at=utcnow() - timedelta(seconds=30))


def test_a_render_that_ran_is_not_redone(app, make_alert, redis_conn):
    """Redis keeps the finished render's record: the reconciler enqueues no copy of it."""
    alert = _delivering(make_alert)
    render = PendingJob(
        "urgent", "alerts.jobs.render_alert_audio", (alert.id,), job_id=render_job_id(alert.id)
    )
    enqueue_jobs([render])
    SimpleWorker([get_queue("urgent")], connection=redis_conn, job_class=AliasedJob).work(
        burst=True
    )
    assert get_queue("urgent").fetch_job(render_job_id(alert.id)).get_status() == "finished"
    assert enqueue_other_work(utcnow(), HeldWork()) == 0
    assert get_queue("urgent").get_job_ids() == []


def test_a_render_whose_job_redis_lost_is_enqueued_once(app, make_alert, redis_conn):
    """No record of the render job (Redis emptied): it is enqueued under its own id, once."""
    alert = _delivering(make_alert)
    assert enqueue_other_work(utcnow(), HeldWork()) == 1
    assert get_queue("urgent").get_job_ids() == [render_job_id(alert.id)]
    held = HeldWork(job_ids={render_job_id(alert.id)})
    assert enqueue_other_work(utcnow(), held) == 0
