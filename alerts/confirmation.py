"""Confirmation: the one way a member's "I received it" is recorded, whatever the channel.

A keypress during a call, an SMS reply, a click on an e-mail link and a coordinator's
mark on the dashboard all call `confirm`. The first confirmation wins and is recorded
once, with its channel (an `Acknowledgement` is unique per alert and person); it stops
the member's cascade at once, and the last member to confirm closes the alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError

from alerts.lifecycle import AlertError, IllegalTransition, close_alert
from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertState,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Person,
    record_audit,
    utcnow,
)
from core.extensions import db
from core.queue import savepoint

log = logging.getLogger(__name__)

CONFIRMABLE_STATES = (AlertState.RELEASED, AlertState.DELIVERING)


def is_confirmable(alert: Alert, now: datetime | None = None) -> bool:
    """Tell whether a confirmation of `alert` is still taken.

    While it is delivered, and after its cascade ran out of steps (closed "exhausted"):
    the e-mail with its link is the last step, so the alert closes as soon as that e-mail
    is sent, and the member who clicks it later must still be heard. Never after it
    expires, whether or not a job has closed it yet (workers may be down).
    """
    now = now or utcnow()
    if now >= alert.expires_at:
        return False
    if alert.state in CONFIRMABLE_STATES:
        return True
    return alert.state == AlertState.CLOSED and alert.close_reason == CloseReason.EXHAUSTED


@dataclass(frozen=True)
class ConfirmResult:
    """The person's acknowledgement, and whether this call created it (False: a repeat)."""

    acknowledgement: Acknowledgement
    created: bool


def confirm(
    alert: Alert,
    person: Person,
    channel: AckChannel,
    *,
    delivery: Delivery | None = None,
    now: datetime | None = None,
) -> ConfirmResult:
    """Record that `person` confirmed `alert` on `channel`; stop their cascade. Caller commits.

    A repeat changes nothing and returns the first acknowledgement with `created` False.
    Refuses (`AlertError`) an alert not being delivered, a person it does not address,
    and a `delivery` of another alert or person.
    """
    now = now or utcnow()
    existing = _acknowledgement(alert, person)
    if existing is not None:
        return ConfirmResult(existing, created=False)
    if not is_confirmable(alert, now):
        raise AlertError(_not_confirmable(alert, now))
    if delivery is not None and (delivery.alert_id != alert.id or delivery.person_id != person.id):
        raise AlertError(
            f"delivery {delivery.id} is not one of alert {alert.reference} to this person"
        )
    if not is_addressed(alert, person):
        raise AlertError(f"alert {alert.reference} was not sent to this person")

    ack = Acknowledgement(
        alert_id=alert.id,
        person_id=person.id,
        channel=channel,
        delivery_id=delivery.id if delivery else None,
        at=now,
    )
    try:
        with savepoint():
            db.session.add(ack)
    except IntegrityError:
        # The same person confirmed on another channel at the same moment, and won.
        existing = _acknowledgement(alert, person)
        if existing is None:
            raise
        return ConfirmResult(existing, created=False)

    canceled = db.session.execute(
        update(Delivery)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.person_id == person.id,
            Delivery.status == DeliveryStatus.PLANNED,
        )
        .values(
            status=DeliveryStatus.CANCELED,
            finished_at=now,
            updated_at=now,
            error_message="confirmed",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    record_audit(
        "alert.confirm",
        actor=f"person:{person.id}",
        actor_id=person.id,
        subject=alert,
        reference=alert.reference,
        channel=channel.value,
        delivery_id=delivery.id if delivery else None,
        steps_canceled=canceled,
    )
    log.info(
        "alert confirmed alert_id=%s ref=%s person_id=%s channel=%s delivery_id=%s "
        "steps_canceled=%s",
        alert.id,
        alert.reference,
        person.id,
        channel.value,
        delivery.id if delivery else None,
        canceled,
    )
    if alert.state != AlertState.CLOSED and _everyone_confirmed(alert):
        try:
            close_alert(alert, CloseReason.ALL_CONFIRMED, now=now)
        except IllegalTransition:
            # Another confirmation, or the expiry, closed it first: nothing left to do.
            log.info("alert already closed alert_id=%s", alert.id)
    return ConfirmResult(ack, created=True)


def _acknowledgement(alert: Alert, person: Person) -> Acknowledgement | None:
    return db.session.scalar(
        select(Acknowledgement).where(
            Acknowledgement.alert_id == alert.id, Acknowledgement.person_id == person.id
        )
    )


def is_addressed(alert: Alert, person: Person) -> bool:
    """Tell whether the alert was sent to `person` (a delivery was planned for them)."""
    return (
        db.session.scalar(
            select(Delivery.id)
            .where(Delivery.alert_id == alert.id, Delivery.person_id == person.id)
            .limit(1)
        )
        is not None
    )


def _everyone_confirmed(alert: Alert) -> bool:
    """Tell whether every person the alert addresses (has a delivery) has confirmed."""
    # Stops at the first member without a confirmation: cheap while most have not.
    unconfirmed = db.session.scalar(
        select(Delivery.id)
        .where(
            Delivery.alert_id == alert.id,
            ~exists().where(
                Acknowledgement.alert_id == alert.id,
                Acknowledgement.person_id == Delivery.person_id,
            ),
        )
        .limit(1)
    )
    return unconfirmed is None


def _not_confirmable(alert: Alert, now: datetime) -> str:
    if alert.state in CONFIRMABLE_STATES and now >= alert.expires_at:
        return f"alert {alert.reference} has expired: no confirmation is needed any more"
    if alert.state == AlertState.AWAITING_RELEASE:
        return f"alert {alert.reference} has not been sent yet"
    if alert.state == AlertState.REJECTED:
        return f"alert {alert.reference} was rejected: there is nothing to confirm"
    return f"alert {alert.reference} is over: no confirmation is needed any more"
