"""Planning at release: delivery rows first, in one transaction; jobs only after the commit."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from alerts.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Membership,
    PhoneType,
    Urgency,
    utcnow,
)
from alerts.planning import UNREACHABLE_MESSAGE, PlanSummary, plan_deliveries
from core.extensions import db
from core.queue import get_queue


def member_of(plp, make_person, **fields):
    person = make_person(**fields)
    db.session.add(Membership(person=person, partnership=plp))
    db.session.commit()
    return person


def released(make_alert, plp, now, **fields):
    return make_alert(plp=plp, released_at=now, expires_at=now + timedelta(hours=2), **fields)


def deliveries_of(person) -> list[Delivery]:
    return list(
        db.session.scalars(
            select(Delivery).where(Delivery.person_id == person.id).order_by(Delivery.step)
        )
    )


def queued_ids(name: str = "urgent") -> list[str]:
    return get_queue(name).get_job_ids()


def scheduled_ids(name: str = "urgent") -> list[str]:
    return ScheduledJobRegistry(queue=get_queue(name)).get_job_ids(cleanup=False)


def test_each_member_gets_one_row_per_step_due_from_the_release(
    app, make_plp, make_person, make_alert
):
    """Default charter: five rows per reachable member, due 0, 0, 3, 8 and 15 minutes on."""
    plp = make_plp()
    person = member_of(plp, make_person, phone2="+3222000002", email="m@example.be")
    now = utcnow()
    alert = released(make_alert, plp, now)

    summary = plan_deliveries(alert, now=now)
    db.session.commit()

    assert summary == PlanSummary(members=1, deliveries=5, unreachable=0)
    rows = deliveries_of(person)
    assert [(d.step, d.channel, d.to_address, d.due_at - now) for d in rows] == [
        (0, Channel.SMS, person.phone, timedelta(0)),
        (1, Channel.CALL, person.phone, timedelta(0)),
        (2, Channel.CALL, "+3222000002", timedelta(minutes=3)),
        (3, Channel.CALL, person.phone, timedelta(minutes=8)),
        (4, Channel.EMAIL, "m@example.be", timedelta(minutes=15)),
    ]
    assert {d.status for d in rows} == {DeliveryStatus.PLANNED}
    assert {d.attempt for d in rows} == {1}


def test_due_steps_are_enqueued_after_commit_and_later_ones_left_to_the_reconciler(
    app, make_plp, make_person, make_alert
):
    """The two immediate steps go on the urgent queue; the 3, 8, 15-minute steps do not."""
    plp = make_plp()
    person = member_of(plp, make_person, email="m@example.be")
    now = utcnow()
    alert = released(make_alert, plp, now)

    plan_deliveries(alert, now=now)
    assert queued_ids() == []  # nothing before the commit
    db.session.commit()

    rows = deliveries_of(person)
    assert sorted(queued_ids()) == sorted(f"delivery-{d.id}" for d in rows[:2])
    scheduled = scheduled_ids()
    assert f"expire-{alert.id}" in scheduled
    assert any(job_id.startswith("reconcile-") for job_id in scheduled)
    assert not any(job_id.startswith("delivery-") for job_id in scheduled)


def test_rolled_back_planning_enqueues_nothing(app, make_plp, make_person, make_alert):
    """A release that rolls back leaves no row and no job."""
    plp = make_plp()
    member_of(plp, make_person)
    now = utcnow()
    alert = released(make_alert, plp, now)

    plan_deliveries(alert, now=now)
    db.session.rollback()
    db.session.commit()  # a later commit must not enqueue the dropped jobs either

    assert db.session.scalars(select(Delivery)).all() == []
    assert queued_ids() == [] and scheduled_ids() == []


def test_person_in_two_targeted_plps_is_planned_once(app, make_plp, make_person, make_alert):
    """Two memberships, one plan: the person is reached once."""
    park, station = make_plp("PLP-PARC"), make_plp("PLP-GARE")
    person = member_of(park, make_person)
    db.session.add(Membership(person=person, partnership=station))
    db.session.commit()
    now = utcnow()
    alert = released(make_alert, park, now)
    alert.targets.append(type(alert.targets[0])(partnership=station))
    db.session.commit()

    summary = plan_deliveries(alert, now=now)
    db.session.commit()

    assert summary.members == 1
    assert [d.step for d in deliveries_of(person)] == [0, 1, 2, 3]  # mobile, no e-mail


def test_member_without_a_usable_channel_is_recorded_unreachable_at_once(
    app, make_plp, make_person, make_alert
):
    """Everything opted out: one skipped row saying why, counted as unreachable."""
    plp = make_plp()
    now = utcnow()
    person = member_of(plp, make_person, sms_opt_out_at=now, call_opt_out_at=now)
    reachable = member_of(plp, make_person)
    alert = released(make_alert, plp, now)

    summary = plan_deliveries(alert, now=now)
    db.session.commit()

    assert summary == PlanSummary(members=2, deliveries=4, unreachable=1)
    [row] = deliveries_of(person)
    assert (row.status, row.error_message, row.step) == (
        DeliveryStatus.SKIPPED,
        UNREACHABLE_MESSAGE,
        0,
    )
    assert f"delivery-{row.id}" not in queued_ids()
    assert len(deliveries_of(reachable)) == 4


def test_landline_gets_no_sms_row(app, make_plp, make_person, make_alert):
    """A fixed first number is planned calls only."""
    plp = make_plp()
    person = member_of(plp, make_person, phone="+3222123456", phone_type=PhoneType.FIXED)
    now = utcnow()
    alert = released(make_alert, plp, now)

    plan_deliveries(alert, now=now)
    db.session.commit()

    assert {d.channel for d in deliveries_of(person)} == {Channel.CALL}


def test_non_urgent_alert_is_planned_on_the_default_queue(app, make_plp, make_person, make_alert):
    """Green news: e-mail only, on the default queue, never ahead of red alerts."""
    plp = make_plp()
    plp.charter_json = {"quiet_hours": None}  # the test may run at night
    db.session.commit()
    person = member_of(plp, make_person, email="m@example.be")
    now = utcnow()
    alert = released(make_alert, plp, now, urgency=Urgency.NON_URGENT)

    plan_deliveries(alert, now=now)
    db.session.commit()

    [row] = deliveries_of(person)
    assert row.channel == Channel.EMAIL
    assert queued_ids("default") == [f"delivery-{row.id}"]
    assert queued_ids("urgent") == []


def test_planning_an_alert_twice_adds_nothing(app, make_plp, make_person, make_alert):
    """A second call returns what the first planned and writes no row."""
    plp = make_plp()
    member_of(plp, make_person)
    member_of(plp, make_person, call_opt_out_at=utcnow(), sms_opt_out_at=utcnow())
    now = utcnow()
    alert = released(make_alert, plp, now)
    first = plan_deliveries(alert, now=now)
    db.session.commit()

    again = plan_deliveries(alert, now=now)
    db.session.commit()

    assert again == first == PlanSummary(members=2, deliveries=4, unreachable=1)
    assert len(db.session.scalars(select(Delivery)).all()) == 5


def test_general_bulletin_plans_no_delivery(app, make_plp, make_person, make_alert):
    """A general bulletin is public: no personal delivery row."""
    plp = make_plp()
    member_of(plp, make_person)
    now = utcnow()
    alert = released(make_alert, plp, now, urgency=Urgency.GENERAL)

    assert plan_deliveries(alert, now=now) == PlanSummary(0, 0, 0)
    db.session.commit()
    assert db.session.scalars(select(Delivery)).all() == []


def test_unreachable_row_names_the_charter_first_channel(app, make_plp, make_person, make_alert):
    """The skipped row of an unreachable member names the channel the charter starts with."""
    plp = make_plp()
    now = utcnow()
    person = member_of(plp, make_person, sms_opt_out_at=now, call_opt_out_at=now)
    alert = released(make_alert, plp, now)

    plan_deliveries(alert, now=now)
    db.session.commit()

    [row] = deliveries_of(person)
    assert (row.channel, row.status) == (Channel.SMS, DeliveryStatus.SKIPPED)
