"""The step jobs: one planned delivery (or a batch of them) handed to the carrier, at most once."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from alerts.cascade import (
    Attempt,
    Verdict,
    check_step,
    held_by_earlier_calls,
)
from alerts.delivery import handover
from alerts.delivery.closing import after_delivery, has_confirmed
from alerts.delivery.pacing import PacingBusy, wait_for_slot
from alerts.delivery.provider import (
    CallRequest,
    OptedOutError,
    ProviderConfigurationError,
    ProviderError,
    SmsNotSupportedError,
    SmsRequest,
    get_provider,
)
from alerts.delivery.schedule import (
    ERROR_MESSAGE_LENGTH,
    INTERRUPTED_AFTER,
    OPEN_VALUES,
    queue_for,
    retry_delay,
    step_job_id,
)
from alerts.email.delivery import deliver_email
from alerts.models import (
    Acknowledgement,
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    Person,
    PhoneType,
    record_audit,
    utcnow,
)
from alerts.wording import text_for
from core.extensions import db
from core.queue import (
    enqueue_again,
)
from core.urls import public_url
from prompts import LANGUAGES

log = logging.getLogger(__name__)

# A batch sends its claimed steps only this long after claiming them, well before the
# reconciler would take them back (the rest go back to the queue).
CLAIM_SEND_LIMIT = INTERRUPTED_AFTER / 2
# A step waits this long for its pacing slot, else it is rescheduled (alerts.delivery.pacing).
PACING_MAX_WAIT_SECONDS = 10.0
# A batch saves its SIDs this many at a time (each commit costs as much as a send).
SIDS_PER_COMMIT = 10


def run_cascade_step(delivery_id: int, try_number: int = 1) -> str:
    """Carry out one planned step, or record why it is moot; return the delivery's status."""
    # One query for the delivery, its alert and person: a worker forks per job, and each
    # query of a fresh work horse costs a round trip and a statement compilation.
    delivery = db.session.scalars(
        select(Delivery)
        .options(joinedload(Delivery.alert), joinedload(Delivery.person))
        .where(Delivery.id == delivery_id)
    ).one_or_none()
    if delivery is None:
        log.warning("cascade step for a missing delivery delivery_id=%s", delivery_id)
        return "missing"
    alert, person, channel = delivery.alert, delivery.person, delivery.channel
    alert_id, person_id, queue = alert.id, person.id, queue_for(alert)
    context = (
        f"delivery_id={delivery_id} alert_id={alert_id} person_id={person_id} "
        f"step={delivery.step} channel={channel.value} try={try_number}"
    )
    if delivery.status != DeliveryStatus.PLANNED:
        log.info("cascade step already handled %s status=%s", context, delivery.status.value)
        status = delivery.status.value
        db.session.rollback()
        return status

    now = utcnow()
    check = check_step(
        alert_open=alert.state == AlertState.DELIVERING,
        expires_at=alert.expires_at,
        confirmed=has_confirmed(alert_id, person_id),
        opted_out=_opted_out(person, channel),
        due_at=delivery.due_at,
        now=now,
        held_until=_held_until(delivery, now),
    )
    if check.verdict == Verdict.WAIT:
        log.info("cascade step waits %s reason=%r until=%s", context, check.reason, check.at)
        db.session.rollback()
        _reschedule(delivery_id, queue, check.at, try_number)
        return DeliveryStatus.PLANNED.value
    if check.verdict != Verdict.SEND:
        status = (
            DeliveryStatus.CANCELED if check.verdict == Verdict.CANCEL else DeliveryStatus.SKIPPED
        )
        if _settle_planned(delivery_id, status, check.reason, now):
            db.session.commit()
            log.info("cascade step %s %s reason=%r", status.value, context, check.reason)
            after_delivery(alert_id, person_id)
        else:
            db.session.rollback()
        return status.value

    # Built while the rows are loaded: the claim's commit expires them.
    request = _carrier_request(delivery) if channel != Channel.EMAIL else None
    if not _claim(delivery_id, now):
        db.session.rollback()
        log.info("cascade step taken by another worker %s", context)
        return "taken"
    db.session.commit()  # the claim is visible to every other worker before any send

    if request is None:
        status = deliver_email(delivery_id)
    else:
        status = _send(delivery_id, request, queue, try_number, context)
    if status not in OPEN_VALUES:
        # Failed at once, or an e-mail sent: this may have been the cascade's last step.
        after_delivery(alert_id, person_id)
    return status


def run_cascade_batch(delivery_ids: Sequence[int]) -> dict[str, int]:
    """Carry out many steps due at once (an alert's first wave); return counts by status.

    The same rules as `run_cascade_step`, with the reads and the claim done once for the
    batch instead of once per step: one query loads the deliveries with their alert and
    person, one the confirmations, one the earlier calls, and one UPDATE claims every
    step that may go, committed before anything is sent. Then each claimed step is paced
    and handed to the carrier with its SID committed at once, as a single step is (the
    carrier's callbacks are keyed by it). A step that is not simply due (early, held,
    moot, an e-mail) is left to `run_cascade_step`, in this job.
    """
    now = utcnow()
    deliveries = db.session.scalars(
        select(Delivery)
        .options(joinedload(Delivery.alert), joinedload(Delivery.person))
        .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PLANNED)
        .order_by(Delivery.id)
    ).all()
    counts: Counter[str] = Counter({"handled": len(delivery_ids) - len(deliveries)})
    confirmed, earlier = _batch_context(deliveries)
    ready: dict[int, tuple[CallRequest | SmsRequest, str, str, int, int]] = {}
    individual: list[int] = []
    for delivery in deliveries:
        alert, person = delivery.alert, delivery.person
        check = check_step(
            alert_open=alert.state == AlertState.DELIVERING,
            expires_at=alert.expires_at,
            confirmed=(alert.id, person.id) in confirmed,
            opted_out=_opted_out(person, delivery.channel),
            due_at=delivery.due_at,
            now=now,
            held_until=held_by_earlier_calls(
                delivery.step,
                delivery.due_at,
                earlier.get((alert.id, person.id), ()),
                now,
            ),
        )
        if check.verdict != Verdict.SEND or delivery.channel == Channel.EMAIL:
            individual.append(delivery.id)
            continue
        context = (
            f"delivery_id={delivery.id} alert_id={alert.id} person_id={person.id} "
            f"step={delivery.step} channel={delivery.channel.value} try=1 batch=1"
        )
        # Built while the rows are loaded: the claim's commit expires them.
        request = _carrier_request(delivery)
        ready[delivery.id] = (request, queue_for(alert), context, alert.id, person.id)
    claimed = _claim_many(list(ready), now)
    if claimed:
        # Before the commit: a claim Redis does not know of is, after a crash, in doubt.
        handover.mark_claimed(claimed)
    try:
        db.session.commit()  # the claims are visible to every other worker before any send
    except SQLAlchemyError:
        if claimed:  # not claimed after all: the record must not say so
            handover.forget(claimed)
        raise
    counts["taken"] += len(ready) - len(claimed)

    for delivery_id in individual:
        counts[run_cascade_step(delivery_id)] += 1
    sids: list[dict] = []
    remaining = sorted(claimed)
    while remaining:
        if utcnow() - now > CLAIM_SEND_LIMIT:
            # The reconciler may soon take these claims back: hand them back first.
            counts[DeliveryStatus.PLANNED.value] += _give_back(remaining, ready)
            break
        delivery_id = remaining.pop(0)
        request, queue, context, alert_id, person_id = ready[delivery_id]
        status = _send(delivery_id, request, queue, 1, context, sids=sids)
        counts[status] += 1
        if status not in OPEN_VALUES:
            after_delivery(alert_id, person_id)
        if len(sids) >= SIDS_PER_COMMIT:
            _save_sids(sids)
    _save_sids(sids)
    log.info("cascade batch done steps=%d %s", len(delivery_ids), dict(counts))
    return dict(counts)


def _batch_context(
    deliveries: Sequence[Delivery],
) -> tuple[set[tuple[int, int]], dict[tuple[int, int], list[Attempt]]]:
    """Return the (alert, person) pairs confirmed, and the earlier calls of each pair."""
    pairs = {(d.alert_id, d.person_id) for d in deliveries}
    if not pairs:
        return set(), {}
    alert_ids = {alert_id for alert_id, _ in pairs}
    person_ids = {person_id for _, person_id in pairs}
    confirmed = {
        (alert_id, person_id)
        for alert_id, person_id in db.session.execute(
            select(Acknowledgement.alert_id, Acknowledgement.person_id).where(
                Acknowledgement.alert_id.in_(alert_ids),
                Acknowledgement.person_id.in_(person_ids),
            )
        )
    }
    earlier = _earlier_calls(alert_ids, person_ids) if any(d.step > 0 for d in deliveries) else {}
    return confirmed, earlier


def _carrier_request(delivery: Delivery) -> CallRequest | SmsRequest:
    """Return what to ask the carrier for this call or SMS delivery."""
    if delivery.channel == Channel.CALL:
        return CallRequest(
            to=delivery.to_address,
            answer_url=public_url("ivr.alert_call", delivery_id=delivery.id),
            # The delivery id lets a callback that beats the SID's commit find its row.
            status_callback_url=public_url("ivr.call_status", delivery=delivery.id),
        )
    alert, person = delivery.alert, delivery.person
    language = person.language if person.language in LANGUAGES else alert.language
    return SmsRequest(
        to=delivery.to_address,
        body=text_for(alert, "sms.alert", language, message=alert.text),
        status_callback_url=public_url("messaging.message_status", delivery=delivery.id),
    )


def _send(
    delivery_id: int,
    request: CallRequest | SmsRequest,
    queue: str,
    try_number: int,
    context: str,
    *,
    sids: list[dict] | None = None,
) -> str:
    """Hand a claimed call or SMS to the carrier, paced; record the SID or the refusal.

    The SID is committed at once, or, given `sids`, added to it for the batch to save
    (`_save_sids`): then the callback URL's delivery id covers the moments in between.
    """
    channel = Channel.CALL if isinstance(request, CallRequest) else Channel.SMS
    try:
        wait_for_slot(channel.value, max_wait=PACING_MAX_WAIT_SECONDS)
    except PacingBusy as busy:
        # A paced wait is not a failed try: the same try runs when a slot is free.
        _unclaim(delivery_id)
        db.session.commit()
        if sids is not None:
            handover.forget([delivery_id])
        _reschedule(delivery_id, queue, utcnow() + timedelta(seconds=busy.retry_after), try_number)
        log.info("cascade step paced %s retry_after=%.3f", context, busy.retry_after)
        return DeliveryStatus.PLANNED.value
    provider = get_provider()
    if sids is not None:
        handover.mark_sending(delivery_id)
    try:
        if isinstance(request, CallRequest):
            sent = provider.place_call(request)
        else:
            sent = provider.send_sms(request)
    except ProviderError as err:
        status = _refused(delivery_id, err, queue, try_number, context)
        if sids is not None:
            handover.forget([delivery_id])
        return status
    if sids is not None:
        handover.mark_sent(delivery_id, sent.sid)
        sids.append({"b_id": delivery_id, "b_sid": sent.sid, "b_at": utcnow()})
        log.info("cascade step sent %s sid=%s", context, sent.sid)
        return DeliveryStatus.QUEUED.value
    # Committed at once: the carrier's status callbacks are keyed by this SID.
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(provider_sid=sent.sid, sent_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    log.info("cascade step sent %s sid=%s", context, sent.sid)
    return DeliveryStatus.QUEUED.value


def _refused(
    delivery_id: int, err: ProviderError, queue: str, try_number: int, context: str
) -> str:
    """Record the carrier's refusal: try again later when it may pass, else FAILED."""
    now = utcnow()
    delivery = db.session.get(Delivery, delivery_id)
    delivery.error_code = err.code
    delivery.error_message = err.message[:ERROR_MESSAGE_LENGTH]
    delay = retry_delay("step", try_number) if err.retryable else None
    if delay is not None:
        delivery.status = DeliveryStatus.PLANNED
        db.session.commit()
        _reschedule(delivery_id, queue, now + delay, try_number + 1)
        log.warning(
            "cascade step will retry %s code=%s delay_s=%d error=%s",
            context,
            err.code,
            delay.total_seconds(),
            err,
        )
        return DeliveryStatus.PLANNED.value

    person = delivery.person
    if isinstance(err, SmsNotSupportedError) and delivery.to_address == person.phone:
        # A landline after all: it gets calls, never an SMS again (Twilio 21614).
        person.phone_type = PhoneType.FIXED
    elif isinstance(err, OptedOutError) and person.sms_opt_out_at is None:
        # The member texted STOP to the carrier: record it, as the carrier enforces it.
        person.sms_opt_out_at = now
    elif isinstance(err, ProviderConfigurationError):
        record_audit(
            "carrier.misconfigured",
            actor="system",
            subject=delivery,
            code=err.code,
            message=err.message,
        )
    delivery.status = DeliveryStatus.FAILED
    delivery.finished_at = now
    db.session.commit()
    log.warning(
        "cascade step failed %s code=%s error=%s detail=%r", context, err.code, err, err.detail
    )
    return DeliveryStatus.FAILED.value


def _claim(delivery_id: int, now: datetime) -> bool:
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PLANNED)
        .values(status=DeliveryStatus.QUEUED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _save_sids(sids: list[dict]) -> None:
    """Save the carrier's SIDs of a batch's sent steps (unless a callback already did)."""
    if not sids:
        return
    handover.write_sids(sids)
    db.session.commit()
    handover.forget(row["b_id"] for row in sids)
    sids.clear()


def _give_back(delivery_ids: list[int], ready: dict) -> int:
    """Put claimed steps back to planned and on the queue again; return how many."""
    for delivery_id in delivery_ids:
        _unclaim(delivery_id)
    db.session.commit()
    handover.forget(delivery_ids)
    for delivery_id in delivery_ids:
        _reschedule(delivery_id, ready[delivery_id][1], utcnow(), 1)
    log.warning("cascade batch gave back steps not sent in time count=%d", len(delivery_ids))
    return len(delivery_ids)


def _claim_many(delivery_ids: list[int], now: datetime) -> set[int]:
    """Claim the steps still planned among `delivery_ids`; return the ids claimed."""
    if not delivery_ids:
        return set()
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PLANNED)
        .values(status=DeliveryStatus.QUEUED, updated_at=now)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(claimed.scalars())


def _settle_planned(
    delivery_id: int, status: DeliveryStatus, reason: str | None, now: datetime
) -> bool:
    settled = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PLANNED)
        .values(status=status, error_message=reason, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return settled.rowcount == 1


def _reschedule(delivery_id: int, queue: str, at: datetime, try_number: int) -> None:
    """Enqueue the step again for `at`, under a new id (the running job holds the first)."""
    enqueue_again(
        queue,
        "alerts.jobs.run_cascade_step",
        (delivery_id, try_number),
        base_id=step_job_id(delivery_id),
        try_number=try_number,
        at=at,
    )


def _unclaim(delivery_id: int) -> None:
    db.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.provider_sid.is_(None),
        )
        .values(status=DeliveryStatus.PLANNED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _held_until(delivery: Delivery, now: datetime) -> datetime | None:
    """Return until when the member's earlier calls hold this step back (see the policy)."""
    if delivery.step == 0:
        return None
    pair = (delivery.alert_id, delivery.person_id)
    earlier = _earlier_calls({delivery.alert_id}, {delivery.person_id}).get(pair, [])
    return held_by_earlier_calls(delivery.step, delivery.due_at, earlier, now)


def _earlier_calls(alert_ids, person_ids) -> dict[tuple[int, int], list[Attempt]]:
    """Return the call steps of these alerts and people, by (alert, person)."""
    rows = db.session.execute(
        select(
            Delivery.alert_id,
            Delivery.person_id,
            Delivery.id,
            Delivery.step,
            Delivery.channel,
            Delivery.due_at,
            Delivery.status,
            Delivery.sent_at,
        ).where(
            Delivery.alert_id.in_(alert_ids),
            Delivery.person_id.in_(person_ids),
            Delivery.channel == Channel.CALL,
        )
    )
    calls: dict[tuple[int, int], list[Attempt]] = defaultdict(list)
    for alert_id, person_id, *attempt in rows:
        calls[(alert_id, person_id)].append(Attempt(*attempt))
    return calls


def _opted_out(person: Person, channel: Channel) -> bool:
    # Checked again when the step runs: a member may text STOP after the planning.
    opted_out_at = {
        Channel.SMS: person.sms_opt_out_at,
        Channel.CALL: person.call_opt_out_at,
        Channel.EMAIL: person.email_opt_out_at,
    }[channel]
    return opted_out_at is not None
