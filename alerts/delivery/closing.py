"""The end of a cascade: a member's steps over, then the alert closed when everyone's are."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select

from alerts.cascade import (
    OPEN_STATUSES,
    Attempt,
    next_step,
)
from alerts.delivery.schedule import OPEN
from alerts.errors import AlertError
from alerts.lifecycle import close_alert
from alerts.models import (
    Acknowledgement,
    Alert,
    AlertState,
    CloseReason,
    Delivery,
    utcnow,
)
from core.extensions import db

log = logging.getLogger(__name__)


def after_status_change(change) -> None:
    """Act on a status callback once it is committed: close the alert when all is over.

    `change` is the `alerts.delivery.status.StatusChange` a record function returned (None when
    the callback applied to nothing).
    """
    if change is None or not change.changed or change.new in OPEN_STATUSES:
        return
    delivery = db.session.get(Delivery, change.delivery_id)
    if delivery is not None:
        after_delivery(delivery.alert_id, delivery.person_id)


def after_delivery(alert_id: int, person_id: int) -> None:
    """Close the alert if this member's cascade is over and so is everyone else's."""
    now = utcnow()
    try:
        # The member's few rows first: the alert-wide query runs only when theirs is over.
        if _member_over(alert_id, person_id, now) and close_if_over(alert_id, now):
            db.session.commit()
        else:
            db.session.rollback()
    except AlertError as err:
        # Closed by someone else in the meantime (a confirmation, another callback).
        db.session.rollback()
        log.info("alert not closed alert_id=%s: %s", alert_id, err)


def _member_over(alert_id: int, person_id: int, now: datetime) -> bool:
    rows = db.session.execute(
        select(
            Delivery.id, Delivery.step, Delivery.channel, Delivery.due_at, Delivery.status
        ).where(Delivery.alert_id == alert_id, Delivery.person_id == person_id)
    )
    attempts = [Attempt(*row) for row in rows]
    return next_step(attempts, confirmed=has_confirmed(alert_id, person_id), now=now).over


def close_if_over(alert_id: int, now: datetime) -> CloseReason | None:
    """Close a delivering alert with nothing left open; return why, None when not closed."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state != AlertState.DELIVERING:
        return None
    still_open = db.session.scalar(
        select(Delivery.id).where(Delivery.alert_id == alert_id, Delivery.status.in_(OPEN)).limit(1)
    )
    if still_open is not None:
        return None
    members = db.session.scalar(
        select(func.count(func.distinct(Delivery.person_id))).where(Delivery.alert_id == alert_id)
    )
    confirmed = db.session.scalar(
        select(func.count(Acknowledgement.id)).where(Acknowledgement.alert_id == alert_id)
    )
    reason = CloseReason.ALL_CONFIRMED if confirmed >= members else CloseReason.EXHAUSTED
    close_alert(alert, reason, now=now)
    log.info(
        "alert cascade over alert_id=%s reason=%s members=%s confirmed=%s",
        alert_id,
        reason.value,
        members,
        confirmed,
    )
    return reason


def has_confirmed(alert_id: int, person_id: int) -> bool:
    """Return whether `person_id` confirmed `alert_id` (on any channel)."""
    return (
        db.session.scalar(
            select(Acknowledgement.id).where(
                Acknowledgement.alert_id == alert_id, Acknowledgement.person_id == person_id
            )
        )
        is not None
    )
