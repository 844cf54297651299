"""What an alert left behind, read back in tests: deliveries, transitions, audit, queued jobs."""

from __future__ import annotations

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from alerts.models import Alert, AlertTransition, AuditEvent, Delivery, Person
from core.extensions import db
from core.queue import get_queue


def deliveries_of(alert: Alert, person: Person | None = None) -> list[Delivery]:
    """Return the alert's deliveries (of one person), by person, step and attempt."""
    query = select(Delivery).where(Delivery.alert_id == alert.id)
    if person is not None:
        query = query.where(Delivery.person_id == person.id)
    return list(
        db.session.scalars(query.order_by(Delivery.person_id, Delivery.step, Delivery.attempt))
    )


def transitions_of(alert: Alert) -> list[tuple[str | None, str, int | None]]:
    """Return the alert's recorded transitions as (from, to, actor id)."""
    rows = db.session.scalars(
        select(AlertTransition)
        .where(AlertTransition.alert_id == alert.id)
        .order_by(AlertTransition.id)
    )
    return [
        (t.from_state.value if t.from_state else None, t.to_state.value, t.actor_id) for t in rows
    ]


def audit_actions(alert: Alert) -> list[str]:
    """Return the actions of the alert's audit events, oldest first."""
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.subject_type == "alert", AuditEvent.subject_id == alert.id)
            .order_by(AuditEvent.id)
        )
    )


def queued_job_ids(*queue_names: str) -> set[str]:
    """Return the ids of the jobs waiting in these queues (scheduled ones included)."""

    ids: set[str] = set()
    for name in queue_names or ("urgent", "default", "low"):
        queue = get_queue(name)
        ids.update(queue.job_ids)
        ids.update(ScheduledJobRegistry(queue=queue).get_job_ids())
    return ids
