"""Level 1: the coordinators' decision (SMS and release call), escalation, auto-release, expiry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from alerts.delivery.pacing import PacingBusy, wait_for_slot
from alerts.delivery.provider import CallRequest, ProviderError, SmsRequest, get_provider
from alerts.delivery.schedule import retry_delay
from alerts.lifecycle import (
    NOTICE_MAX_WAIT_SECONDS,
    NOTICE_QUEUE,
    AlertError,
    close_alert,
    release_alert,
)
from alerts.models import (
    Alert,
    AlertState,
    AuditEvent,
    CloseReason,
    Membership,
    Person,
    Role,
    record_audit,
    utcnow,
)
from alerts.tracking import member_count
from alerts.wording import text_for
from core.extensions import db
from core.queue import (
    PendingJob,
    enqueue_after_commit,
    enqueue_again,
    enqueue_jobs,
)
from core.urls import public_url

log = logging.getLogger(__name__)
# The coordinators' release call: paced as the cascade's steps, then rescheduled, not lost.
RELEASE_CALL_MAX_WAIT_SECONDS = 10.0
# The audit events that say level 1 happened: the reconciler redoes what has none.
RELEASE_REQUESTED, ESCALATED = "alert.release_requested", "alert.escalated"


@dataclass(frozen=True)
class ReleaseTimers:
    """When an alert awaiting release is escalated to the steering committee, auto-released."""

    escalate_at: datetime
    auto_release_at: datetime | None


def release_timers(alert: Alert) -> ReleaseTimers:
    """Return the alert's level-1 timers: the shortest of its targets' charters."""
    charters = [target.partnership.charter for target in alert.targets]
    escalate_after = min(c.escalate_to_steering_after_minutes for c in charters)
    auto_after = [
        c.auto_release_after_minutes for c in charters if c.auto_release_after_minutes is not None
    ]
    auto_release_at = alert.created_at + timedelta(minutes=min(auto_after)) if auto_after else None
    return ReleaseTimers(
        escalate_at=alert.created_at + timedelta(minutes=escalate_after),
        auto_release_at=auto_release_at,
    )


def _audited(alert: Alert, action: str) -> bool:
    return (
        db.session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.subject_type == Alert.__tablename__,
                AuditEvent.subject_id == alert.id,
                AuditEvent.action == action,
            )
        )
        is not None
    )


def notify_coordinators(alert_id: int) -> str:
    """Text and call the coordinators for their decision; start the escalation and expiry timers."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state != AlertState.AWAITING_RELEASE:
        return "moot"
    if _audited(alert, RELEASE_REQUESTED):  # a copy re-enqueued by the reconciler
        return "moot"
    members = member_count(t.partnership_id for t in alert.targets)
    coordinators = _people_with_role(alert, Role.COORDINATOR)
    jobs = _notices(alert, coordinators, "sms.release_request", "release-request", members=members)
    # And a call each (ivr.release: press 1 to release, 2 to reject), paced as the cascade's.
    jobs.extend(
        PendingJob(
            "urgent",
            "alerts.jobs.place_release_call",
            (alert.id, person.id),
            job_id=release_call_job_id(alert.id, person.id),
        )
        for person in coordinators
        if person.call_opt_out_at is None
    )
    timers = release_timers(alert)
    jobs.append(
        PendingJob(
            "urgent",
            "alerts.jobs.escalate_to_steering",
            (alert.id,),
            job_id=f"escalate-{alert.id}",
            at=timers.escalate_at,
        )
    )
    if timers.auto_release_at is not None:
        jobs.append(
            PendingJob(
                "urgent",
                "alerts.jobs.auto_release",
                (alert.id,),
                job_id=f"auto-release-{alert.id}",
                at=timers.auto_release_at,
            )
        )
    jobs.append(
        PendingJob(
            "urgent",
            "alerts.jobs.expire_alert",
            (alert.id,),
            job_id=f"expire-{alert.id}",
            at=alert.expires_at,
        )
    )
    record_audit(
        RELEASE_REQUESTED,
        actor="system",
        subject=alert,
        reference=alert.reference,
        coordinators=[p.id for p in coordinators],
    )
    # Enqueued before the audit event commits: with Redis down this raises, the event is
    # rolled back, and the reconciler, finding none, runs this job again.
    enqueue_jobs(jobs)
    db.session.commit()
    log.info(
        "coordinators notified alert_id=%s ref=%s coordinators=%d texted=%d called=%d",
        alert.id,
        alert.reference,
        len(coordinators),
        sum(1 for p in coordinators if p.can_receive_sms),
        sum(1 for p in coordinators if p.call_opt_out_at is None),
    )
    return f"notified {len(coordinators)}"


def _notices(alert: Alert, people, key: str, job_prefix: str, **values) -> list[PendingJob]:
    """Return one paced SMS job per person who can receive it: `key` with the alert's text."""
    return [
        PendingJob(
            "urgent",
            "alerts.jobs.send_notice",
            (person.id, text_for(alert, key, person.language, message=alert.text, **values)),
            job_id=f"{job_prefix}-{alert.id}-{person.id}",
        )
        for person in people
        if person.can_receive_sms
    ]


def escalate_to_steering(alert_id: int) -> str:
    """Text the steering committee about an alert still awaiting a coordinator's answer."""

    alert = db.session.get(Alert, alert_id)
    now = utcnow()
    if alert is None or alert.state != AlertState.AWAITING_RELEASE or alert.expires_at <= now:
        return "moot"
    if _audited(alert, ESCALATED):  # a copy re-enqueued by the reconciler
        return "moot"
    minutes = max(1, round((now - alert.created_at) / timedelta(minutes=1)))
    steering = _people_with_role(alert, Role.STEERING)
    jobs = _notices(alert, steering, "sms.escalation", "escalation", minutes=minutes)
    record_audit(
        ESCALATED,
        actor="system",
        subject=alert,
        reference=alert.reference,
        minutes=minutes,
        steering=[p.id for p in steering],
    )
    enqueue_jobs(jobs)  # before the commit, as in notify_coordinators
    db.session.commit()
    log.info(
        "alert escalated to steering alert_id=%s ref=%s minutes=%s steering=%d",
        alert.id,
        alert.reference,
        minutes,
        len(steering),
    )
    return f"escalated {len(steering)}"


def auto_release(alert_id: int) -> str:
    """Release an alert nobody answered, when its charter says so."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state != AlertState.AWAITING_RELEASE:
        return "moot"
    try:
        summary = release_alert(alert, by=None)
    except AlertError as err:  # expired, or decided a moment ago
        db.session.rollback()
        log.info("auto release refused alert_id=%s: %s", alert_id, err)
        return "moot"
    db.session.commit()
    return f"released {summary.members}"


def expire_alert(alert_id: int) -> str:
    """Close an alert whose time is over (EXPIRED); tell the author if it was never sent."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.state not in LIVE_STATES:
        return "moot"
    now = utcnow()
    if alert.expires_at > now:  # run early (clock skew): the reconciler closes it later
        return "not yet"
    return "expired" if expire_now(alert, now) else "moot"


LIVE_STATES = (AlertState.AWAITING_RELEASE, AlertState.RELEASED, AlertState.DELIVERING)


def expire_now(alert: Alert, now: datetime) -> bool:
    never_sent = alert.state == AlertState.AWAITING_RELEASE
    author = alert.author
    try:
        close_alert(alert, CloseReason.EXPIRED, now=now)
    except AlertError as err:  # closed a moment ago by someone else
        db.session.rollback()
        log.info("alert not expired alert_id=%s: %s", alert.id, err)
        return False
    if never_sent and author is not None and author.can_receive_sms:
        enqueue_after_commit(
            "urgent",
            "alerts.jobs.send_notice",
            author.id,
            text_for(alert, "sms.expired", author.language),
            job_id=f"notice-{alert.id}-expired-{author.id}",
        )
    db.session.commit()
    return True


def _people_with_role(alert: Alert, role: Role) -> list[Person]:
    partnership_ids = [target.partnership_id for target in alert.targets]
    return list(
        db.session.scalars(
            select(Person)
            .where(
                Person.id.in_(
                    select(Membership.person_id).where(
                        Membership.partnership_id.in_(partnership_ids), Membership.role == role
                    )
                )
            )
            .order_by(Person.id)
        )
    )


# ---------------------------------------------------------------------------------------
# The release call and the notices: paced, retried, never lost


def release_call_job_id(alert_id: int, person_id: int) -> str:
    """Return the job id of the release call to one coordinator: one call per alert."""
    return f"release-call-{alert_id}-{person_id}"


def place_release_call(alert_id: int, person_id: int, try_number: int = 1) -> str:
    """Call a coordinator about an alert awaiting release, paced; return what happened."""
    alert = db.session.get(Alert, alert_id)
    person = db.session.get(Person, person_id)
    if alert is None or alert.state != AlertState.AWAITING_RELEASE or alert.expires_at <= utcnow():
        db.session.rollback()
        return "moot"
    if person is None or person.call_opt_out_at is not None:
        db.session.rollback()
        return "skipped"
    request = CallRequest(
        to=person.phone,
        answer_url=public_url("ivr.release_call", alert_id=alert_id, person_id=person_id),
        status_callback_url=public_url("ivr.release_call_status"),
    )
    context = f"alert_id={alert_id} person_id={person_id} try={try_number}"
    db.session.rollback()  # nothing to write yet: no transaction held while paced
    try:
        wait_for_slot("call", max_wait=RELEASE_CALL_MAX_WAIT_SECONDS)
    except PacingBusy as busy:
        # A paced wait is not a failed try: the same try runs when a slot is free.
        _reschedule_release_call(
            alert_id, person_id, try_number, timedelta(seconds=busy.retry_after)
        )
        log.info("release call paced %s retry_after=%.3f", context, busy.retry_after)
        return "paced"
    try:
        sent = get_provider().place_call(request)
    except ProviderError as err:
        delay = retry_delay("release_call", try_number) if err.retryable else None
        if delay is not None:
            _reschedule_release_call(alert_id, person_id, try_number + 1, delay)
            log.warning("release call will retry %s code=%s error=%s", context, err.code, err)
            return "retrying"
        alert = db.session.get(Alert, alert_id)
        record_audit(
            "alert.release_call_failed",
            actor="system",
            subject=alert,
            person_id=person_id,
            code=err.code,
            message=err.message,
        )
        db.session.commit()
        log.warning("release call failed %s code=%s error=%s", context, err.code, err)
        return "failed"
    alert = db.session.get(Alert, alert_id)
    record_audit(
        "alert.release_call",
        actor="system",
        subject=alert,
        person_id=person_id,
        call_sid=sent.sid,
    )
    db.session.commit()
    log.info("release call placed %s call_sid=%s", context, sent.sid)
    return "placed"


def _reschedule_release_call(
    alert_id: int, person_id: int, try_number: int, delay: timedelta
) -> None:
    enqueue_again(
        "urgent",
        "alerts.jobs.place_release_call",
        (alert_id, person_id, try_number),
        base_id=release_call_job_id(alert_id, person_id),
        try_number=try_number,
        at=utcnow() + delay,
    )


def send_notice(person_id: int, body: str, try_number: int = 1) -> str:
    """Send one notice SMS to a person, paced; retry what the carrier says may pass later.

    Return what happened (for RQ's job result).
    """
    person = db.session.get(Person, person_id)
    if person is None or not person.can_receive_sms:
        log.info("notice not sent person_id=%s: no mobile or opted out", person_id)
        return "skipped"
    try:
        wait_for_slot("sms", max_wait=NOTICE_MAX_WAIT_SECONDS)
    except PacingBusy as busy:
        # A paced wait is not a failed try: the same try runs again when a slot is free.
        _schedule_notice(person_id, body, try_number, timedelta(seconds=busy.retry_after))
        return "paced"
    request = SmsRequest(
        to=person.phone,
        body=body,
        status_callback_url=public_url("messaging.message_status", notice=1),
    )
    try:
        sent = get_provider().send_sms(request)
    except ProviderError as err:
        delay = retry_delay("notice", try_number) if err.retryable else None
        if delay is not None:
            _schedule_notice(person_id, body, try_number + 1, delay)
            log.warning(
                "notice will retry person_id=%s try=%s code=%s error=%s",
                person_id,
                try_number,
                err.code,
                err,
            )
            return "retrying"
        log.warning(
            "notice failed person_id=%s try=%s code=%s error=%s",
            person_id,
            try_number,
            err.code,
            err,
        )
        return "failed"
    log.info("notice sent person_id=%s sid=%s", person_id, sent.sid)
    return "sent"


def _schedule_notice(person_id: int, body: str, try_number: int, delay: timedelta) -> None:
    enqueue_again(
        NOTICE_QUEUE,
        "alerts.jobs.send_notice",
        (person_id, body, try_number),
        base_id=f"notice-retry-{person_id}",
        try_number=try_number,
        at=utcnow() + delay,
    )
