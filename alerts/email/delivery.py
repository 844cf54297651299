"""The e-mail job: turn one planned e-mail delivery into a sent, skipped or failed one.

`deliver_email` is enqueued by name (`"alerts.jobs.deliver_email"`) and also called
directly by the cascade step that reaches the e-mail channel. It skips a delivery made
moot (alert over, already confirmed, no address, opted out), composes and sends the
message, and retries what the relay says may work later (the delays of
`RETRY_DELAYS["email"]` in alerts.delivery.schedule), under the job ids
`email-<delivery_id>-<try>`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq.exceptions import DuplicateJobError
from sqlalchemy import select

from alerts.delivery.schedule import retry_delay
from alerts.email.compose import alert_email
from alerts.email.links import confirmation_url
from alerts.email.smtp import MailError, PermanentMailError, TransientMailError, send_email
from alerts.models import (
    Acknowledgement,
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    Urgency,
    utcnow,
)
from core.extensions import db
from core.queue import get_queue

log = logging.getLogger(__name__)

_ERROR_MESSAGE_LENGTH = 500  # Delivery.error_message

_PENDING = (DeliveryStatus.PLANNED, DeliveryStatus.QUEUED)


def deliver_email(delivery_id: int, try_number: int = 1) -> str:
    """Send one e-mail delivery, skipping it when moot; retry transient failures later.

    Return the delivery's status afterwards (for RQ's job result).
    """
    # FOR UPDATE: the same try run twice at once (a reconciler re-enqueued it) waits here,
    # then sees SENT. The lock lasts the SMTP exchange, bounded by its timeout.
    delivery = db.session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        log.warning("email delivery not found delivery_id=%s try=%s", delivery_id, try_number)
        return "missing"
    if delivery.channel != Channel.EMAIL:
        raise ValueError(f"delivery {delivery_id} is a {delivery.channel} delivery, not e-mail")
    context = f"delivery_id={delivery.id} alert_id={delivery.alert_id} try={try_number}"
    if delivery.status not in _PENDING:
        status = delivery.status
        log.info("email delivery already handled %s status=%s", context, status)
        db.session.rollback()  # releases the row lock
        return status.value

    moot = _moot_reason(delivery)
    if moot is not None:
        status, reason = moot
        _finish(delivery, status, message=reason)
        db.session.commit()
        log.info("email delivery %s %s reason=%r", status.value, context, reason)
        return status.value

    return _attempt(delivery, try_number, context)


def _attempt(delivery: Delivery, try_number: int, context: str) -> str:
    """Compose and send the delivery's e-mail; record the outcome; schedule a retry."""
    urgent = delivery.alert.urgency == Urgency.URGENT
    try:
        message = alert_email(
            delivery.alert, delivery.person, confirmation_url(delivery.alert_id, delivery.person_id)
        )
        outbox_file = send_email(message)
    except TransientMailError as err:
        delay = retry_delay("email", try_number)
        if delay is None:
            _finish(delivery, DeliveryStatus.FAILED, code=err.code, message=_describe(err))
            db.session.commit()
            log.warning(
                "email delivery failed after retries %s code=%s detail=%r",
                context,
                err.code,
                err.detail,
            )
            return DeliveryStatus.FAILED.value
        delivery.error_code = err.code
        delivery.error_message = _describe(err)
        # The error is committed before the next try is scheduled: a job never runs
        # ahead of the database.
        db.session.commit()
        _schedule_retry(delivery.id, try_number + 1, delay, urgent=urgent)
        log.warning(
            "email delivery will retry %s code=%s delay_s=%d detail=%r",
            context,
            err.code,
            delay.total_seconds(),
            err.detail,
        )
        return delivery.status.value
    except PermanentMailError as err:
        _finish(delivery, DeliveryStatus.FAILED, code=err.code, message=_describe(err))
        db.session.commit()
        log.warning("email delivery failed %s code=%s detail=%r", context, err.code, err.detail)
        return DeliveryStatus.FAILED.value

    now = utcnow()
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = now
    # E-mail has no delivery receipts: once the relay took it, nothing more will be known.
    delivery.finished_at = now
    delivery.to_address = delivery.person.email
    delivery.error_code = None
    delivery.error_message = None
    db.session.commit()
    log.info("email delivery sent %s outbox=%s", context, outbox_file.name if outbox_file else "")
    return DeliveryStatus.SENT.value


def _moot_reason(delivery: Delivery) -> tuple[DeliveryStatus, str] | None:
    """Return why the delivery should not be sent (status, reason), or None to send it."""
    alert, person = delivery.alert, delivery.person
    if alert.state in (AlertState.CLOSED, AlertState.REJECTED):
        return DeliveryStatus.SKIPPED, f"alert {alert.state.value}"
    if alert.expires_at <= utcnow():
        return DeliveryStatus.SKIPPED, "alert expired"
    acknowledged = db.session.scalar(
        select(Acknowledgement.id).where(
            Acknowledgement.alert_id == alert.id, Acknowledgement.person_id == person.id
        )
    )
    if acknowledged is not None:
        # CANCELED, not SKIPPED: the model's word for "confirmed elsewhere before this step".
        return DeliveryStatus.CANCELED, "already confirmed"
    if not person.email:
        return DeliveryStatus.SKIPPED, "no e-mail address"
    if person.email_opt_out_at is not None:
        return DeliveryStatus.SKIPPED, "opted out of e-mail"
    return None


def _finish(
    delivery: Delivery, status: DeliveryStatus, *, message: str, code: str | None = None
) -> None:
    delivery.status = status
    delivery.error_code = code
    delivery.error_message = message[:_ERROR_MESSAGE_LENGTH]
    delivery.finished_at = utcnow()


def _describe(err: MailError) -> str:
    described = f"{err.message}: {err.detail}" if err.detail else err.message
    return described[:_ERROR_MESSAGE_LENGTH]


def _schedule_retry(delivery_id: int, try_number: int, delay: timedelta, *, urgent: bool):
    queue = get_queue("urgent" if urgent else "default")
    job_id = f"email-{delivery_id}-{try_number}"
    try:
        # unique: a try that ran twice schedules the next one once.
        queue.enqueue_in(
            delay, "alerts.jobs.deliver_email", delivery_id, try_number, job_id=job_id, unique=True
        )
    except DuplicateJobError:
        log.info("email retry already scheduled delivery_id=%s try=%s", delivery_id, try_number)
