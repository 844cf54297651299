"""Tracking: an alert's counts and a member's timeline, from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from alerts.models import (
    AckChannel,
    Acknowledgement,
    Channel,
    Delivery,
    DeliveryStatus,
    PhoneType,
    utcnow,
)
from alerts.tracking import AlertCounts, TimelineEntry, alert_counts, member_timeline
from core.extensions import db
from tests.twilio_payloads import call_sid

S = DeliveryStatus
CALL, SMS, EMAIL = Channel.CALL, Channel.SMS, Channel.EMAIL


@pytest.fixture
def alert(make_alert):
    """An alert being delivered."""
    return make_alert()


def add(alert, person, channel, step, status, **fields) -> Delivery:
    """Add one delivery of `alert` to `person`."""
    if "provider_sid" not in fields and status not in (S.PLANNED, S.SKIPPED, S.CANCELED):
        fields["provider_sid"] = call_sid() if channel == CALL else None
    delivery = Delivery(
        alert=alert,
        person=person,
        channel=channel,
        step=step,
        attempt=1,
        status=status,
        to_address=person.phone,
        due_at=utcnow(),
        **fields,
    )
    db.session.add(delivery)
    return delivery


def acknowledge(alert, person, channel=AckChannel.CALL, **fields) -> Acknowledgement:
    """Record a confirmation directly (the counts read rows, not how they came)."""
    ack = Acknowledgement(alert_id=alert.id, person_id=person.id, channel=channel, **fields)
    db.session.add(ack)
    return ack


def test_counts_classify_every_member_once(alert, make_alert, make_person):
    """Each member is confirmed, reached, unreachable or pending, by the documented rules."""
    people = [make_person(f"P{n}") for n in range(1, 15)]
    p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14 = people
    add(alert, p1, CALL, 1, S.IN_PROGRESS, answered_by="human")
    add(alert, p1, CALL, 2, S.CANCELED, error_message="confirmed")  # stopped, never sent
    acknowledge(alert, p1)  # -> confirmed
    add(alert, p2, CALL, 1, S.COMPLETED, answered_by="human")  # -> reached
    add(alert, p3, CALL, 1, S.COMPLETED, answered_by="machine_end_beep")
    add(alert, p3, CALL, 2, S.PLANNED)  # -> reached (voicemail)
    add(alert, p4, CALL, 1, S.COMPLETED)  # -> reached (no AMD)
    add(alert, p5, SMS, 0, S.DELIVERED, provider_sid=None)  # -> reached
    add(alert, p6, EMAIL, 4, S.SENT)  # -> reached
    add(alert, p7, CALL, 1, S.IN_PROGRESS)  # -> pending (AMD unknown)
    add(alert, p8, CALL, 1, S.NO_ANSWER)
    add(alert, p8, SMS, 0, S.UNDELIVERED)  # -> unreachable
    add(alert, p9, CALL, 0, S.SKIPPED, error_message="no usable channel")  # -> unreachable
    add(alert, p10, CALL, 1, S.COMPLETED, answered_by="fax")  # -> unreachable
    add(alert, p11, CALL, 1, S.PLANNED)  # -> pending
    add(alert, p12, SMS, 0, S.SENT)
    add(alert, p12, CALL, 1, S.RINGING)  # -> pending (sent: no receipt yet)
    add(alert, p14, SMS, 0, S.SENT)  # -> unreachable (no receipt, cascade over)
    add(alert, p13, CALL, 1, S.CANCELED, provider_sid=call_sid())  # -> unreachable
    other = make_alert()
    add(other, p2, CALL, 1, S.PLANNED)  # another alert: not counted
    db.session.commit()

    assert alert_counts(alert.id) == AlertCounts(
        members=14, planned=18, attempted=14, reached=5, confirmed=1, unreachable=5, pending=3
    )


def test_counts_of_an_alert_without_deliveries_are_zero(alert):
    """An alert not yet planned counts nothing."""
    assert alert_counts(alert.id) == AlertCounts(0, 0, 0, 0, 0, 0, 0)


def test_confirmation_wins_over_every_other_state(alert, make_person):
    """A confirmed member is only counted as confirmed, whatever their deliveries say."""
    person = make_person()
    add(alert, person, SMS, 0, S.DELIVERED)
    add(alert, person, CALL, 1, S.NO_ANSWER)
    acknowledge(alert, person, AckChannel.SMS)
    db.session.commit()
    counts = alert_counts(alert.id)
    assert (counts.confirmed, counts.reached, counts.unreachable, counts.pending) == (1, 0, 0, 0)


def test_counts_take_one_query(app, alert, make_person):
    """alert_counts is a single grouped SQL statement, whatever the number of members."""
    for n in range(30):
        add(alert, make_person(f"M{n}"), CALL, 1, S.COMPLETED if n % 2 else S.PLANNED)
    db.session.commit()
    alert_id = alert.id
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        counts = alert_counts(alert_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert counts.members == 30
    assert len(statements) == 1
    assert "GROUP BY" in statements[0].upper()


def test_member_timeline_in_time_order(alert, make_person):
    """A member's steps, sends, endings and confirmation come in time order."""
    person = make_person(phone_type=PhoneType.MOBILE)
    t0 = utcnow().replace(microsecond=0)
    add(alert, person, SMS, 0, S.DELIVERED, sent_at=t0, finished_at=t0 + timedelta(seconds=5))
    call = add(
        alert,
        person,
        CALL,
        1,
        S.COMPLETED,
        answered_by="human",
        sent_at=t0,
        finished_at=t0 + timedelta(seconds=40),
    )
    later = add(alert, person, CALL, 2, S.PLANNED)
    later.due_at = t0 + timedelta(minutes=3)
    db.session.flush()
    acknowledge(alert, person, AckChannel.CALL, delivery_id=call.id, at=t0 + timedelta(seconds=30))
    db.session.commit()

    timeline = member_timeline(alert.id, person.id)
    assert [(e.at - t0, e.event, e.channel, e.step) for e in timeline] == [
        (timedelta(0), "sent", "sms", 0),
        (timedelta(0), "sent", "call", 1),
        (timedelta(seconds=5), "delivered", "sms", 0),
        (timedelta(seconds=30), "confirmed", "call", 1),
        (timedelta(seconds=40), "completed", "call", 1),
        (timedelta(minutes=3), "due", "call", 2),
    ]
    assert timeline[4] == TimelineEntry(
        at=t0 + timedelta(seconds=40),
        event="completed",
        channel="call",
        step=1,
        to_address=person.phone,
        detail="human",
    )


def test_timeline_of_a_stranger_is_empty(alert, make_person):
    """Someone the alert never addressed has an empty timeline."""
    assert member_timeline(alert.id, make_person().id) == []
