"""The life of an alert: raised, released or rejected, delivered, closed.

An alert moves through explicit states (`TRANSITIONS`), and `transition` is the one
place that changes `Alert.state`: it records an `AlertTransition` (who, when) and an
audit event, and refuses an illegal move with `IllegalTransition`. The move is a
compare-and-set in the database (`UPDATE ... WHERE state = <the state we saw>`), so when
two coordinators answer at the same moment the first decision wins and the second gets
a clear refusal, on PostgreSQL as on SQLite.

These functions add to the session and leave the commit to the caller (a request, a
command or a job is one transaction); the work they start (planning's jobs, the SMS
notices) is enqueued after that commit, never before. Errors are `AlertError`s whose
message is safe to show to the officer or coordinator who asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from alerts.delivery.schedule import enqueue_alert_audio
from alerts.models import (
    Alert,
    AlertState,
    AlertTarget,
    AlertTransition,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Membership,
    Partnership,
    Person,
    Role,
    record_audit,
    utcnow,
)
from alerts.tracking import reached_person_ids
from core.extensions import db
from core.queue import enqueue_after_commit
from prompts import text

if TYPE_CHECKING:
    from alerts.planning import PlanSummary

from alerts import planning
from alerts.errors import AlertError, IllegalTransition, NotAllowed
from alerts.wording import text_for

log = logging.getLogger(__name__)

TRANSITIONS: Mapping[AlertState, frozenset[AlertState]] = MappingProxyType(
    {
        AlertState.AWAITING_RELEASE: frozenset(
            {AlertState.RELEASED, AlertState.REJECTED, AlertState.CLOSED}
        ),
        AlertState.RELEASED: frozenset({AlertState.DELIVERING, AlertState.CLOSED}),
        AlertState.DELIVERING: frozenset({AlertState.CLOSED}),
        AlertState.REJECTED: frozenset(),
        AlertState.CLOSED: frozenset(),
    }
)

DECIDER_ROLES = (Role.COORDINATOR, Role.STEERING)
NOTICE_QUEUE = "urgent"
MAX_TEXT_LENGTH = 1000  # spoken in a call and sent in an SMS: a paragraph, not a report
ALL_CLEAR_QUEUE = "default"
NOTICE_MAX_WAIT_SECONDS = 30  # pacing: a notice waits this long for a slot, else reschedules

# What a refusal says the alert is, by its state ("alert K7RM is already released").
_STATE_WORDS = MappingProxyType(
    {
        AlertState.AWAITING_RELEASE: "awaiting release",
        AlertState.RELEASED: "already released",
        AlertState.REJECTED: "rejected",
        AlertState.DELIVERING: "already released and being delivered",
        AlertState.CLOSED: "closed",
    }
)
_VERBS = MappingProxyType(
    {
        AlertState.AWAITING_RELEASE: "put back to await release",
        AlertState.RELEASED: "released",
        AlertState.REJECTED: "rejected",
        AlertState.DELIVERING: "delivered",
        AlertState.CLOSED: "closed",
    }
)


# ---------------------------------------------------------------------------------------
# Transitions


def transition(
    alert: Alert,
    to: AlertState,
    *,
    actor: Person | None,
    reason: CloseReason | None = None,
    now: datetime | None = None,
) -> None:
    """Move `alert` to state `to`, recording who and when; raise `IllegalTransition` if illegal.

    `reason` is required to close and refused otherwise. `actor` None is the system.
    """
    now = now or utcnow()
    if (to == AlertState.CLOSED) != (reason is not None):
        raise ValueError("a reason is given when, and only when, an alert is closed")
    seen = alert.state
    if to not in TRANSITIONS[seen]:
        raise IllegalTransition(_refusal(alert, seen, to))

    values: dict[str, object] = {"state": to}
    if to == AlertState.RELEASED:
        values.update(released_at=now, released_by_id=actor.id if actor else None)
    elif to == AlertState.CLOSED:
        values.update(closed_at=now, close_reason=reason)
    # Compare-and-set: a concurrent decision committed since we read `seen` makes this
    # match no row (PostgreSQL re-checks the WHERE after the other commit), and we refuse.
    result = db.session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.state == seen)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(alert)
        raise IllegalTransition(_refusal(alert, alert.state, to))
    for key, value in values.items():
        # Already written by the UPDATE: set without marking the object dirty.
        set_committed_value(alert, key, value)

    db.session.add(
        AlertTransition(
            alert_id=alert.id,
            from_state=seen,
            to_state=to,
            actor_id=actor.id if actor else None,
            at=now,
        )
    )
    details = {"reference": alert.reference, "from": seen.value, "to": to.value}
    if reason is not None:
        details["reason"] = reason.value
    record_audit(
        f"alert.{to.value}",
        actor=actor_label(actor),
        actor_id=actor.id if actor else None,
        subject=alert,
        **details,
    )
    log.info(
        "alert transition alert_id=%s ref=%s from=%s to=%s actor_id=%s reason=%s",
        alert.id,
        alert.reference,
        seen.value,
        to.value,
        actor.id if actor else None,
        reason.value if reason else None,
    )


def _refusal(alert: Alert, state: AlertState, to: AlertState) -> str:
    return f"alert {alert.reference} is {_STATE_WORDS[state]}: it cannot be {_VERBS[to]}"


def actor_label(actor: Person | None) -> str:
    """Return how the audit log names `actor` (`person:<id>`, or `system`)."""
    return f"person:{actor.id}" if actor is not None else "system"


# ---------------------------------------------------------------------------------------
# Level 1: the coordinators' decision


def decides_for(person: Person, plp: Partnership) -> bool:
    """Return whether `person` is a coordinator or steering member of `plp`."""
    return (
        db.session.scalar(
            select(Membership.id).where(
                Membership.person_id == person.id,
                Membership.partnership_id == plp.id,
                Membership.role.in_(DECIDER_ROLES),
            )
        )
        is not None
    )


def can_decide(person: Person | None, alert: Alert) -> bool:
    """Tell whether `person` is a coordinator or steering member of a PLP the alert targets."""
    if person is None:
        return False
    return (
        db.session.scalar(
            select(Membership.id)
            .join(AlertTarget, AlertTarget.partnership_id == Membership.partnership_id)
            .where(
                AlertTarget.alert_id == alert.id,
                Membership.person_id == person.id,
                Membership.role.in_(DECIDER_ROLES),
            )
            .limit(1)
        )
        is not None
    )


def deciders(alert: Alert) -> list[Person]:
    """Return the coordinators and steering members of the alert's PLPs, once each."""
    return list(
        db.session.scalars(
            select(Person)
            .where(
                Person.id.in_(
                    select(Membership.person_id)
                    .join(AlertTarget, AlertTarget.partnership_id == Membership.partnership_id)
                    .where(AlertTarget.alert_id == alert.id, Membership.role.in_(DECIDER_ROLES))
                )
            )
            .order_by(Person.id)
        )
    )


def _check_decider(person: Person | None, alert: Alert, verb: str) -> None:
    if not can_decide(person, alert):
        raise NotAllowed(
            f"only a coordinator or steering member of {_plp_codes(alert)} may {verb} "
            f"alert {alert.reference}"
        )


def release_alert(alert: Alert, *, by: Person | None, now: datetime | None = None) -> PlanSummary:
    """Release the alert to the members: plan every delivery, then start delivering.

    `by` None is an automatic release (the charter's timer). The first decision wins: a
    later one gets `IllegalTransition`. The other deciders and the author are told by
    SMS after the commit. Caller commits.
    """
    now = now or utcnow()
    if by is not None:
        _check_decider(by, alert, "release")
    _check_open(alert, AlertState.RELEASED, now)
    transition(alert, AlertState.RELEASED, actor=by, now=now)
    # Enqueued before planning's jobs: the speech is ready when the first calls connect.
    enqueue_alert_audio(alert)
    summary = planning.plan_deliveries(alert, now=now)
    transition(alert, AlertState.DELIVERING, actor=by, now=now)
    log.info(
        "alert released alert_id=%s ref=%s by=%s members=%s deliveries=%s unreachable=%s",
        alert.id,
        alert.reference,
        by.id if by else "auto",
        summary.members,
        summary.deliveries,
        summary.unreachable,
    )
    if not _has_planned_deliveries(alert):
        # Nobody to reach (no member, or none with a usable channel): no status callback
        # will ever come to close it.
        close_alert(alert, CloseReason.EXHAUSTED, actor=by, now=now)

    if by is None:
        _notify(
            alert,
            "released",
            [*deciders(alert), alert.author],
            "sms.released_auto",
            members=summary.members,
        )
    else:
        _notify(
            alert,
            "released",
            [*deciders(alert), alert.author],
            "sms.released_by",
            skip=by,
            name=by.name,
            members=summary.members,
        )
    return summary


def reject_alert(alert: Alert, *, by: Person, now: datetime | None = None) -> None:
    """Reject an alert awaiting release; tell the other deciders and the author. Caller commits."""
    now = now or utcnow()
    _check_decider(by, alert, "reject")
    transition(alert, AlertState.REJECTED, actor=by, now=now)
    _notify(
        alert,
        "rejected",
        [*deciders(alert), alert.author],
        "sms.rejected_by",
        skip=by,
        name=by.name,
    )


def _check_open(alert: Alert, to: AlertState, now: datetime) -> None:
    if alert.state == AlertState.AWAITING_RELEASE and alert.expires_at <= now:
        raise AlertError(f"alert {alert.reference} has expired: it cannot be {_VERBS[to]}")


def _has_planned_deliveries(alert: Alert) -> bool:
    return (
        db.session.scalar(
            select(Delivery.id)
            .where(Delivery.alert_id == alert.id, Delivery.status == DeliveryStatus.PLANNED)
            .limit(1)
        )
        is not None
    )


# ---------------------------------------------------------------------------------------
# Ending


def may_manage(person: Person | None, alert: Alert) -> bool:
    """Tell whether `person` may cancel the alert or send its all-clear.

    Its author, an officer of the zone of a targeted PLP, or a coordinator or steering
    member of a targeted PLP.
    """
    if person is None:
        return False
    if person.id == alert.author_id or can_decide(person, alert):
        return True
    officer = person.officer
    return (
        officer is not None
        and officer.active
        and any(target.partnership.zone_id == officer.zone_id for target in alert.targets)
    )


def cancel_alert(alert: Alert, *, by: Person | None, now: datetime | None = None) -> None:
    """Close the alert as cancelled; its planned deliveries are not sent. Caller commits.

    `by` None is an operator at the command line.
    """
    if by is not None and not may_manage(by, alert):
        raise NotAllowed(
            f"only the author, the zone's police or a coordinator of "
            f"{_plp_codes(alert)} may cancel alert {alert.reference}"
        )
    close_alert(alert, CloseReason.CANCELLED, actor=by, now=now)


def close_alert(
    alert: Alert,
    reason: CloseReason,
    *,
    actor: Person | None = None,
    now: datetime | None = None,
) -> None:
    """Close the alert for `reason` and skip its deliveries not yet sent. Caller commits."""
    now = now or utcnow()
    transition(alert, AlertState.CLOSED, actor=actor, reason=reason, now=now)
    skipped = db.session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.status == DeliveryStatus.PLANNED)
        .values(
            status=DeliveryStatus.SKIPPED,
            finished_at=now,
            updated_at=now,
            error_message=f"alert closed: {reason.value}",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    log.info(
        "alert closed alert_id=%s ref=%s reason=%s skipped=%s",
        alert.id,
        alert.reference,
        reason.value,
        skipped,
    )


def send_all_clear(alert: Alert, *, by: Person, text: str, now: datetime | None = None) -> int:
    """Text the all-clear to everyone the alert reached (mobiles); return how many. Caller commits.

    Sent once per alert, by its author, the zone's police or a coordinator.
    """
    now = now or utcnow()
    message = " ".join((text or "").split())
    if not message:
        raise AlertError("the all-clear has no text")
    if len(message) > MAX_TEXT_LENGTH:
        raise AlertError(f"the all-clear has {len(message)} characters; at most {MAX_TEXT_LENGTH}")
    if not may_manage(by, alert):
        raise NotAllowed(
            f"only the author, the zone's police or a coordinator of "
            f"{_plp_codes(alert)} may send the all-clear of alert {alert.reference}"
        )
    if alert.released_at is None:
        raise AlertError(
            f"alert {alert.reference} was never released: "
            "nobody received it, there is nothing to clear"
        )
    if alert.all_clear_text is not None:
        raise AlertError(f"the all-clear of alert {alert.reference} was already sent")

    alert.all_clear_text = message
    recipients = list(
        db.session.scalars(
            select(Person).where(Person.id.in_(reached_person_ids(alert.id))).order_by(Person.id)
        )
    )
    texted = [p for p in recipients if p.can_receive_sms]
    for person in texted:
        body = text_for(alert, "sms.all_clear", person.language, message=message)
        _enqueue_notice(ALL_CLEAR_QUEUE, person, body, job_id=f"all-clear-{alert.id}-{person.id}")
    record_audit(
        "alert.all_clear",
        actor=actor_label(by),
        actor_id=by.id,
        subject=alert,
        reference=alert.reference,
        reached=len(recipients),
        texted=len(texted),
    )
    log.info(
        "alert all-clear alert_id=%s ref=%s reached=%s texted=%s",
        alert.id,
        alert.reference,
        len(recipients),
        len(texted),
    )
    return len(texted)


# ---------------------------------------------------------------------------------------
# Notices: short SMS about an alert to the people who decide about it


def _plp_codes(alert: Alert) -> str:
    return ", ".join(target.partnership.code for target in alert.targets)


def _notify(
    alert: Alert,
    event: str,
    people: Sequence[Person | None],
    key: str,
    *,
    skip: Person | None = None,
    **values: object,
) -> None:
    """Text `key` to `people` (once each, not to `skip`, mobiles only) after the commit."""
    seen = {skip.id} if skip is not None else set()
    for person in people:
        if person is None or person.id in seen:
            continue
        seen.add(person.id)
        if not person.can_receive_sms:
            continue
        body = text(key, person.language, ref=alert.reference, **values)
        _enqueue_notice(NOTICE_QUEUE, person, body, job_id=f"notice-{alert.id}-{event}-{person.id}")


def _enqueue_notice(queue: str, person: Person, body: str, *, job_id: str) -> None:
    enqueue_after_commit(queue, "alerts.jobs.send_notice", person.id, body, job_id=job_id)
