"""Tracking an alert: who was reached, who confirmed, who cannot be reached.

Everything is computed from the database (the source of truth), in SQL: `alert_counts`
is one query grouping the alert's deliveries by person, cheap enough for a dashboard to
poll every second during an alert to 10,000 members.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select

from alerts.cascade import OPEN_STATUSES
from alerts.models import (
    Acknowledgement,
    Channel,
    Delivery,
    DeliveryStatus,
    Membership,
)
from core.extensions import db

# The cascade's own notion of "may still reach the member": a member the cascade is over
# for is never shown as pending (a sent SMS without a receipt included).
_OPEN = tuple(OPEN_STATUSES)


def reached_condition() -> ColumnElement[bool]:
    """Return the SQL condition "this delivery reached its person" (see `alert_counts`)."""
    answered = or_(Delivery.answered_by == "human", Delivery.answered_by.like("machine%"))
    return or_(
        and_(
            Delivery.channel == Channel.CALL,
            or_(
                and_(
                    Delivery.status.in_((DeliveryStatus.IN_PROGRESS, DeliveryStatus.COMPLETED)),
                    answered,
                ),
                # Without answering-machine detection Twilio leaves AnsweredBy out.
                and_(Delivery.status == DeliveryStatus.COMPLETED, Delivery.answered_by.is_(None)),
            ),
        ),
        and_(Delivery.channel == Channel.SMS, Delivery.status == DeliveryStatus.DELIVERED),
        and_(Delivery.channel == Channel.EMAIL, Delivery.status == DeliveryStatus.SENT),
    )


def _attempted_condition() -> ColumnElement[bool]:
    # Handed to the carrier or the mail relay. A CANCELED delivery with a SID is a call the
    # carrier cancelled; without one, the member confirmed before the step ran.
    return and_(
        Delivery.status.not_in((DeliveryStatus.PLANNED, DeliveryStatus.SKIPPED)),
        or_(Delivery.status != DeliveryStatus.CANCELED, Delivery.provider_sid.is_not(None)),
    )


@dataclass(frozen=True)
class AlertCounts:
    """An alert's progress; see `alert_counts` for what each number counts."""

    members: int
    planned: int
    attempted: int
    reached: int
    confirmed: int
    unreachable: int
    pending: int


def alert_counts(alert_id: int) -> AlertCounts:
    """Return the alert's counts, from one grouped query.

    - members: distinct people with a delivery of the alert (everyone it addresses,
      unreachable members included: planning gives them one SKIPPED delivery);
    - planned: delivery rows (one per member and cascade step) written at release;
    - attempted: deliveries handed to the carrier or the mail relay;
    - confirmed: members who confirmed (acknowledgements);
    - reached: members not confirmed, but reached: a call answered (in progress or
      completed with AnsweredBy human or machine_*, or completed without detection), an
      SMS delivered, or an e-mail sent;
    - unreachable: members not confirmed, not reached, whose every delivery is over
      (`alerts.cascade.OPEN_STATUSES`: an SMS sent without a delivery receipt is over);
    - pending: the others (not confirmed, not reached, a delivery still planned or under
      way).

    confirmed + reached + unreachable + pending == members.
    """
    per_person = (
        select(
            Delivery.person_id.label("person_id"),
            func.count().label("steps"),
            func.sum(case((_attempted_condition(), 1), else_=0)).label("attempted"),
            func.max(case((reached_condition(), 1), else_=0)).label("reached"),
            func.max(case((Delivery.status.in_(_OPEN), 1), else_=0)).label("open"),
        )
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.person_id)
        .subquery()
    )
    confirmed = Acknowledgement.id.is_not(None)
    not_confirmed = Acknowledgement.id.is_(None)
    row = db.session.execute(
        select(
            func.count(),
            func.sum(per_person.c.steps),
            func.sum(per_person.c.attempted),
            func.sum(case((confirmed, 1), else_=0)),
            func.sum(case((and_(not_confirmed, per_person.c.reached == 1), 1), else_=0)),
            func.sum(
                case(
                    (and_(not_confirmed, per_person.c.reached == 0, per_person.c.open == 0), 1),
                    else_=0,
                )
            ),
        ).select_from(
            per_person.outerjoin(
                Acknowledgement,
                and_(
                    Acknowledgement.alert_id == alert_id,
                    Acknowledgement.person_id == per_person.c.person_id,
                ),
            )
        )
    ).one()
    members, planned, attempted, n_confirmed, reached, unreachable = (int(v or 0) for v in row)
    return AlertCounts(
        members=members,
        planned=planned,
        attempted=attempted,
        reached=reached,
        confirmed=n_confirmed,
        unreachable=unreachable,
        pending=members - n_confirmed - reached - unreachable,
    )


def member_count(partnership_ids: Iterable[int]) -> int:
    """Return how many people the PLPs have, each once: the audience of an alert to them."""
    return db.session.scalar(
        select(func.count(func.distinct(Membership.person_id))).where(
            Membership.partnership_id.in_(list(partnership_ids))
        )
    )


def reached_person_ids(alert_id: int) -> Select:
    """Return a query of the ids of the people the alert reached or who confirmed it."""
    reached = select(Delivery.person_id).where(Delivery.alert_id == alert_id, reached_condition())
    confirmed = select(Acknowledgement.person_id).where(Acknowledgement.alert_id == alert_id)
    return reached.union(confirmed)


@dataclass(frozen=True)
class TimelineEntry:
    """One moment in a member's alert: a step due, sent, ended, or the confirmation."""

    at: datetime
    event: str  # "due", "sent", a DeliveryStatus value (where the step stands), "confirmed"
    channel: str | None  # Channel or AckChannel value
    step: int | None
    to_address: str | None = None
    detail: str | None = None  # who answered, or why it failed / was skipped


def member_timeline(alert_id: int, person_id: int) -> list[TimelineEntry]:
    """Return what happened to one member during an alert, in time order."""
    entries: list[TimelineEntry] = []
    deliveries = db.session.scalars(
        select(Delivery)
        .where(Delivery.alert_id == alert_id, Delivery.person_id == person_id)
        .order_by(Delivery.step, Delivery.attempt)
    )
    for delivery in deliveries:
        common = {
            "channel": delivery.channel.value,
            "step": delivery.step,
            "to_address": delivery.to_address,
        }
        if delivery.status == DeliveryStatus.PLANNED:
            entries.append(TimelineEntry(at=delivery.due_at, event="due", **common))
            continue
        if delivery.sent_at is not None:
            entries.append(TimelineEntry(at=delivery.sent_at, event="sent", **common))
        entries.append(
            TimelineEntry(
                at=delivery.finished_at or delivery.updated_at,
                event=delivery.status.value,
                detail=delivery.error_message or delivery.answered_by,
                **common,
            )
        )
    ack = db.session.scalar(
        select(Acknowledgement).where(
            Acknowledgement.alert_id == alert_id, Acknowledgement.person_id == person_id
        )
    )
    if ack is not None:
        step = db.session.scalar(select(Delivery.step).where(Delivery.id == ack.delivery_id))
        entries.append(
            TimelineEntry(at=ack.at, event="confirmed", channel=ack.channel.value, step=step)
        )
    # A stable sort: at the same instant, steps keep their order and the confirmation
    # comes after the step it answered.
    entries.sort(key=lambda entry: entry.at)
    return entries
