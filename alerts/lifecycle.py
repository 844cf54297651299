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
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from alerts.models import (
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    AlertTransition,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Membership,
    Officer,
    Partnership,
    Person,
    Role,
    Urgency,
    Zone,
    record_audit,
    utcnow,
)
from alerts.people.directory import DirectoryError, normalize_code
from alerts.tracking import reached_person_ids
from core.extensions import db
from core.queue import enqueue_after_commit, savepoint
from prompts import LANGUAGES, text
from prompts.speech import enqueue_alert_audio

if TYPE_CHECKING:
    from alerts.planning import PlanSummary

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

# Typed back in an SMS ("OUI K7RM"): no letters mistaken for digits or for each other
# (no B/8, G/6, I/1/L, O/0/Q, S/5, Z/2), upper case only. 22**4 = 234,256 references.
REFERENCE_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
REFERENCE_LENGTH = 4
MAX_TEXT_LENGTH = 1000  # spoken in a call and sent in an SMS: a paragraph, not a report
DECIDER_ROLES = (Role.COORDINATOR, Role.STEERING)
NOTICE_QUEUE = "urgent"
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


class AlertError(ValueError):
    """A request about an alert that cannot be met; the message is safe to show its author."""


class IllegalTransition(AlertError):  # noqa: N818 (the design's name: reads as what it is)
    """The alert's state does not allow this move (already decided, already closed...)."""


class NotAllowed(AlertError):  # noqa: N818 (the design's name: reads as what it is)
    """The person may not do this to this alert."""


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
        actor=_actor_label(actor),
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


def _actor_label(actor: Person | None) -> str:
    return f"person:{actor.id}" if actor is not None else "system"


# ---------------------------------------------------------------------------------------
# Raising an alert


def resolve_targets(codes: Sequence[str], *, officer: Officer | None) -> list[Partnership]:
    """Return the PLPs that PLP and zone codes designate (a zone: all its PLPs), once each.

    An officer may only target PLPs of their own zone (`NotAllowed`); an unknown code is
    an `AlertError`.
    """
    if not codes:
        raise AlertError("no target given: name a PLP or a zone")
    found: dict[int, Partnership] = {}
    for raw in codes:
        try:
            code = normalize_code(raw)
        except DirectoryError as err:
            raise AlertError(f"target {raw!r}: not a PLP or zone code ({err})") from None
        plp = db.session.scalar(select(Partnership).where(Partnership.code == code))
        if plp is not None:
            plps = [plp]
        else:
            zone = db.session.scalar(select(Zone).where(Zone.code == code))
            if zone is None:
                raise AlertError(f"target {code}: no PLP or zone has this code")
            plps = list(
                db.session.scalars(
                    select(Partnership)
                    .where(Partnership.zone_id == zone.id)
                    .order_by(Partnership.code)
                )
            )
            if not plps:
                raise AlertError(f"target {code}: the zone has no PLP")
        for plp in plps:
            found.setdefault(plp.id, plp)
    targets = list(found.values())
    if officer is not None:
        _check_officer_zone(officer, targets)
    return targets


def _check_officer_zone(officer: Officer, targets: Sequence[Partnership]) -> None:
    foreign = [p.code for p in targets if p.zone_id != officer.zone_id]
    if foreign:
        raise NotAllowed(
            f"an officer of zone {officer.zone.code} may only alert its PLPs, "
            f"not {', '.join(foreign)}"
        )


def raise_alert(
    *,
    author: Person,
    targets: Sequence[Partnership],
    text: str,
    origin: AlertOrigin,
    urgency: Urgency = Urgency.URGENT,
    exercise: bool = False,
    language: str | None = None,
    now: datetime | None = None,
) -> Alert:
    """Create an alert for `targets`: awaiting release when an officer raised it.

    A coordinator or steering member of every target releases it at once; an officer's
    alert waits for a coordinator (who is notified after the commit), unless no target's
    charter requires a release. Anyone else is refused (`NotAllowed`). Caller commits.
    """
    now = now or utcnow()
    message = " ".join((text or "").split())  # one paragraph: line breaks come from pasting
    if not message:
        raise AlertError("the alert has no text")
    if len(message) > MAX_TEXT_LENGTH:
        raise AlertError(f"the alert text has {len(message)} characters; at most {MAX_TEXT_LENGTH}")
    if urgency == Urgency.GENERAL:
        raise AlertError("general bulletins are not alerts: choose urgent or non-urgent")
    targets = list({p.id: p for p in targets}.values())
    if not targets:
        raise AlertError("no target given: name a PLP or a zone")
    if language is not None and language not in LANGUAGES:
        raise AlertError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")

    decider = all(_decides_for(author, plp) for plp in targets)
    officer = author.officer if author.officer is not None and author.officer.active else None
    if not decider:
        if officer is None:
            raise NotAllowed(
                "only a police officer, or a coordinator of every targeted PLP, may raise an alert"
            )
        _check_officer_zone(officer, targets)

    charters = [plp.charter for plp in targets]
    alert = Alert(
        origin=origin,
        author_id=author.id,
        urgency=urgency,
        state=AlertState.AWAITING_RELEASE,
        text=message,
        language=language or targets[0].language,
        exercise=exercise,
        created_at=now,
        expires_at=now + timedelta(minutes=min(c.alert_expiry_minutes for c in charters)),
    )
    alert.targets = [AlertTarget(partnership=plp) for plp in targets]
    _insert_with_reference(alert)
    db.session.add(
        AlertTransition(
            alert_id=alert.id,
            from_state=None,
            to_state=AlertState.AWAITING_RELEASE,
            actor_id=author.id,
            at=now,
        )
    )
    record_audit(
        "alert.raise",
        actor=_actor_label(author),
        actor_id=author.id,
        subject=alert,
        reference=alert.reference,
        targets=[p.code for p in targets],
        urgency=urgency.value,
        exercise=exercise,
        origin=origin.value,
    )
    log.info(
        "alert raised alert_id=%s ref=%s author_id=%s targets=%s urgency=%s exercise=%s",
        alert.id,
        alert.reference,
        author.id,
        ",".join(p.code for p in targets),
        urgency.value,
        exercise,
    )

    if decider:
        release_alert(alert, by=author, now=now)
    elif not any(c.requires_release for c in charters):
        # Every target's charter lets police alerts through without a coordinator's yes.
        release_alert(alert, by=None, now=now)
    else:
        enqueue_after_commit(
            NOTICE_QUEUE,
            "alerts.jobs.notify_coordinators",
            alert.id,
            job_id=f"notify-coordinators-{alert.id}",
        )
    return alert


def _insert_with_reference(alert: Alert, tries: int = 20) -> None:
    """Give `alert` an unused reference and insert it (a savepoint retries a collision)."""
    for _ in range(tries):
        reference = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
        if db.session.scalar(select(Alert.id).where(Alert.reference == reference)) is not None:
            continue
        alert.reference = reference
        try:
            # Another request may take the same reference between the check and the insert.
            with savepoint():
                db.session.add(alert)
        except IntegrityError:
            continue
        return
    raise AlertError("no free alert reference could be found; try again")


# ---------------------------------------------------------------------------------------
# Level 1: the coordinators' decision


def _decides_for(person: Person, plp: Partnership) -> bool:
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
    from alerts import planning  # noqa: PLC0415 (planning imports the models this one does)

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
        actor=_actor_label(by),
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
