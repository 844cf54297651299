"""The cascade's RQ jobs on real Redis and both databases, the carrier faked (FakeProvider)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import redis as redis_lib
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from alerts import jobs
from alerts.confirmation import confirm
from alerts.delivery import closing, handover, reconciler, schedule, steps
from alerts.delivery.pacing import reserve_slot
from alerts.delivery.provider import (
    InvalidNumberError,
    OptedOutError,
    ProviderConfigurationError,
    ProviderUnavailableError,
    RateLimitedError,
    SmsNotSupportedError,
    set_provider,
)
from alerts.email.smtp import OUTBOX_DIR
from alerts.models import (
    AckChannel,
    Alert,
    AlertState,
    AuditEvent,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Membership,
    Person,
    PhoneType,
    Role,
    Urgency,
    utcnow,
)
from alerts.planning import plan_deliveries
from alerts.wording import text_for
from core import queue
from core.extensions import db, redis_connection
from core.queue import QUEUE_NAMES, get_queue, savepoint
from core.urls import public_url
from simulator.adapters.provider import SimulatorProvider
from tests.support import run_queued_jobs
from tests.twilio_payloads import call_status_form, signed_post, sms_status_form

pytestmark = pytest.mark.app_settings(CALLS_PER_SECOND="1000", SMS_PER_SECOND="1000")


@pytest.fixture
def released(app, make_plp, make_person, make_alert):
    """Factory: an alert to new members (one per keyword set), released and planned now."""

    def make(
        *members: dict,
        urgency: Urgency = Urgency.URGENT,
        exercise: bool = False,
        charter: dict | None = None,
    ) -> tuple[Alert, list[Person]]:
        plp = make_plp(f"PLP-{len(db.session.scalars(select(Alert)).all())}")
        plp.charter_json = charter or {}
        people = []
        for fields in members or ({},):
            person = make_person(**fields)
            db.session.add(
                Membership(person=person, partnership=plp, role=fields.get("role", Role.MEMBER))
            )
            people.append(person)
        now = utcnow()
        alert = make_alert(
            plp=plp,
            urgency=urgency,
            exercise=exercise,
            released_at=now,
            expires_at=now + timedelta(hours=2),
        )
        plan_deliveries(alert, now=now)
        db.session.commit()
        return alert, people

    return make


def step(person: Person, number: int) -> Delivery:
    return db.session.scalars(
        select(Delivery).where(Delivery.person_id == person.id, Delivery.step == number)
    ).one()


def fresh(delivery: Delivery) -> Delivery:
    db.session.expire_all()
    return db.session.get(Delivery, delivery.id)


def all_job_ids() -> set[str]:
    ids: set[str] = set()
    for name in QUEUE_NAMES:
        queue = get_queue(name)
        ids.update(queue.get_job_ids())
        ids.update(ScheduledJobRegistry(queue=queue).get_job_ids(cleanup=False))
    return ids


# --- The step job: sending ---------------------------------------------------------------


def test_call_step_places_one_call_to_the_alert_call_endpoint(app, released, provider):
    """The call goes to the member with the IVR's answer and status URLs; the SID is kept."""
    _alert, [person] = released()
    delivery = step(person, 1)

    assert jobs.run_cascade_step(delivery.id) == "queued"

    [call] = provider.calls
    assert call.to == person.phone
    assert call.answer_url == public_url("ivr.alert_call", delivery_id=delivery.id)
    assert call.status_callback_url == public_url("ivr.call_status", delivery=delivery.id)
    delivery = fresh(delivery)
    assert delivery.provider_sid == provider.sent[0][1].sid
    assert delivery.status == DeliveryStatus.QUEUED
    assert delivery.sent_at is not None


def test_sms_step_texts_the_alert_in_the_member_language(app, released, provider):
    """The SMS carries the alert's words, in the member's language, with the status URL."""
    alert, [person] = released({"language": "nl"}, exercise=True)

    jobs.run_cascade_step(step(person, 0).id)

    [sms] = provider.messages
    assert sms.to == person.phone
    assert sms.body == text_for(alert, "sms.alert", "nl", message=alert.text)
    assert sms.body.startswith(text_for(alert, "sms.exercise_prefix", "nl"))
    assert sms.status_callback_url == public_url(
        "messaging.message_status", delivery=step(person, 0).id
    )


def test_email_step_is_sent_by_the_mailer(app, released, provider):
    """The e-mail step hands over to the mailer, which writes the message (no relay set)."""
    _alert, [person] = released(
        {"email": "member@example.be"},
        charter={"urgent_steps": [{"after_minutes": 0, "channel": "email"}]},
    )
    delivery = step(person, 0)

    assert jobs.run_cascade_step(delivery.id) == "sent"

    assert fresh(delivery).status == DeliveryStatus.SENT
    outbox = list((Path(app.instance_path) / OUTBOX_DIR).glob("*.eml"))
    assert len(outbox) == 1
    assert "member@example.be" in outbox[0].read_text()
    assert provider.calls == [] and provider.messages == []


def test_planned_jobs_run_by_a_worker_send_sms_and_call_once_each(app, released, provider):
    """A worker runs the queued steps: one SMS and one call; running again sends nothing."""
    _alert, [person] = released()

    run_queued_jobs()
    run_queued_jobs()

    assert [m.to for m in provider.messages] == [person.phone]
    assert [c.to for c in provider.calls] == [person.phone]


# --- The step job: idempotent, at most once ------------------------------------------------


def test_running_a_step_twice_contacts_the_member_once(app, released, provider):
    """The second run finds the step handled and sends nothing."""
    _alert, [person] = released()
    delivery = step(person, 1)

    jobs.run_cascade_step(delivery.id)
    assert jobs.run_cascade_step(delivery.id) == "queued"

    assert len(provider.calls) == 1


def test_workers_racing_on_one_step_place_one_call(app, released, provider):
    """Five workers run the same step at once: one claims it, the others return."""
    _alert, [person] = released()
    delivery_id = step(person, 1).id
    db.session.commit()
    barrier = threading.Barrier(5)
    results: list[str] = []

    def worker():
        with app.app_context():
            barrier.wait(timeout=10)
            results.append(jobs.run_cascade_step(delivery_id))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(provider.calls) == 1
    assert len(results) == 5
    assert results.count("queued") >= 1
    assert set(results) <= {"queued", "taken"}


def test_a_step_claimed_by_a_dead_worker_is_failed_never_resent(app, released, provider):
    """A claim without SID older than 5 minutes, the carrier unreachable: interrupted, no call."""
    _alert, [person] = released()
    delivery = step(person, 1)
    long_ago = utcnow() - timedelta(minutes=6)
    delivery.status, delivery.updated_at = DeliveryStatus.QUEUED, long_ago
    db.session.commit()
    redis_connection().flushdb()
    provider.fail_next(ProviderUnavailableError("carrier down"))  # cannot be asked

    jobs.reconcile()

    delivery = fresh(delivery)
    assert (delivery.status, delivery.error_code) == (DeliveryStatus.FAILED, "interrupted")
    assert f"delivery-{delivery.id}" not in all_job_ids()
    jobs.run_cascade_step(delivery.id)
    assert provider.calls == []


# --- The step job: moot steps ---------------------------------------------------------------


def test_step_of_a_confirmed_member_is_canceled_without_contact(app, released, provider):
    """The member confirmed by SMS: the call step is canceled (a planned step confirm missed)."""
    alert, [person, _other] = released({}, {})
    delivery = step(person, 1)
    confirm(alert, person, AckChannel.SMS)
    db.session.commit()
    # As if confirm() had missed this step (it cancels the planned ones it sees).
    delivery = fresh(delivery)
    delivery.status, delivery.error_message = DeliveryStatus.PLANNED, None
    db.session.commit()

    assert jobs.run_cascade_step(delivery.id) == "canceled"

    assert fresh(delivery).error_message == "already confirmed"
    assert provider.calls == []


@pytest.mark.parametrize("how", ["closed", "expired"])
def test_step_of_an_alert_that_is_over_is_skipped(app, released, provider, how):
    """A cancelled or expired alert calls nobody."""
    alert, [person] = released()
    if how == "closed":
        alert.state = AlertState.CLOSED
    else:
        alert.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    delivery = step(person, 1)

    assert jobs.run_cascade_step(delivery.id) == "skipped"

    assert provider.calls == []
    assert fresh(delivery).status == DeliveryStatus.SKIPPED


def test_sms_step_after_the_member_texted_stop_is_skipped(app, released, provider):
    """An opt-out recorded after the release holds for the steps not yet run."""
    _alert, [person] = released()
    person.sms_opt_out_at = utcnow()
    db.session.commit()
    delivery = step(person, 0)

    assert jobs.run_cascade_step(delivery.id) == "skipped"

    assert provider.messages == []
    assert fresh(delivery).error_message == "channel opted out"


def test_step_run_before_its_time_waits_for_it(app, released, provider):
    """The 8-minute call run now sends nothing and is scheduled for its due time."""
    _alert, [person] = released()
    delivery = step(person, 3)

    assert jobs.run_cascade_step(delivery.id) == "planned"

    assert provider.calls == []
    assert fresh(delivery).status == DeliveryStatus.PLANNED
    registry = ScheduledJobRegistry(queue=get_queue("urgent"))
    [job_id] = [
        j for j in registry.get_job_ids(cleanup=False) if j.startswith(f"delivery-{delivery.id}-")
    ]
    assert abs(registry.get_scheduled_time(job_id) - delivery.due_at) < timedelta(seconds=1)


def scheduled_time(delivery: Delivery):
    registry = ScheduledJobRegistry(queue=get_queue("urgent"))
    [job_id] = [
        j for j in registry.get_job_ids(cleanup=False) if j.startswith(f"delivery-{delivery.id}-")
    ]
    return registry.get_scheduled_time(job_id)


def test_second_call_waits_while_the_first_is_still_ringing(app, released, provider):
    """Due at 3 minutes, but the member's first call (placed late) still rings: no overlap."""
    _alert, [person] = released()
    first, second = step(person, 1), step(person, 2)
    now = utcnow()
    first.status, first.sent_at, first.provider_sid = DeliveryStatus.RINGING, now, "CA" + "1" * 32
    second.due_at = now - timedelta(seconds=30)
    db.session.commit()

    assert jobs.run_cascade_step(second.id) == "planned"

    assert provider.calls == []
    assert fresh(second).status == DeliveryStatus.PLANNED
    assert now < scheduled_time(second) <= utcnow() + timedelta(seconds=15)


def test_second_call_keeps_the_charter_gap_from_the_first_call_placed_late(app, released, provider):
    """First call placed (late) 1 minute ago and unanswered: the 3-minute gap counts from it."""
    _alert, [person] = released()
    first, second = step(person, 1), step(person, 2)
    placed = utcnow() - timedelta(minutes=1)
    first.status, first.sent_at, first.provider_sid = (
        DeliveryStatus.NO_ANSWER,
        placed,
        "CA" + "2" * 32,
    )
    second.due_at = placed - timedelta(minutes=5)  # the charter's time, long past
    first.due_at = second.due_at - timedelta(minutes=3)
    db.session.commit()

    assert jobs.run_cascade_step(second.id) == "planned"

    assert provider.calls == []
    assert abs(scheduled_time(second) - (placed + timedelta(minutes=3))) < timedelta(seconds=1)


def test_second_call_after_the_first_ended_long_enough_ago_is_placed(app, released, provider):
    _alert, [person] = released()
    first, second = step(person, 1), step(person, 2)
    placed = utcnow() - timedelta(minutes=4)
    first.status, first.sent_at, first.provider_sid = (
        DeliveryStatus.NO_ANSWER,
        placed,
        "CA" + "3" * 32,
    )
    second.due_at = placed
    first.due_at = placed - timedelta(minutes=3)
    db.session.commit()

    assert jobs.run_cascade_step(second.id) == "queued"
    assert [c.to for c in provider.calls] == [second.to_address]


def test_missing_delivery_is_reported_not_raised(app):
    """A job for a delivery that no longer exists returns "missing"."""
    assert jobs.run_cascade_step(999_999) == "missing"


# --- The step job: carrier refusals ---------------------------------------------------------


def test_sms_to_a_landline_fails_and_marks_the_number_fixed(app, released, provider):
    """Twilio 21614: the SMS fails for good and the first number becomes a landline."""
    _alert, [person] = released()
    provider.fail_next(SmsNotSupportedError("not a mobile", code="21614"))
    delivery = step(person, 0)

    assert jobs.run_cascade_step(delivery.id) == "failed"

    delivery = fresh(delivery)
    assert (delivery.status, delivery.error_code) == (DeliveryStatus.FAILED, "21614")
    assert db.session.get(Person, person.id).phone_type == PhoneType.FIXED


def test_sms_to_a_number_that_opted_out_records_the_opt_out(app, released, provider):
    """Twilio 21610: the SMS fails and the member's SMS opt-out is recorded."""
    _alert, [person] = released()
    provider.fail_next(OptedOutError("opted out", code="21610"))

    jobs.run_cascade_step(step(person, 0).id)

    assert db.session.get(Person, person.id).sms_opt_out_at is not None
    assert fresh(step(person, 0)).status == DeliveryStatus.FAILED


def test_invalid_number_fails_with_the_carrier_code_and_message(app, released, provider):
    """A refused number fails the step, keeping what the carrier said; never retried."""
    _alert, [person] = released()
    provider.fail_next(InvalidNumberError("this number cannot be dialled", code="21211"))
    delivery = step(person, 1)

    jobs.run_cascade_step(delivery.id)

    delivery = fresh(delivery)
    assert (delivery.status, delivery.error_code, delivery.error_message) == (
        DeliveryStatus.FAILED,
        "21211",
        "this number cannot be dialled",
    )
    assert not any(j.startswith(f"delivery-{delivery.id}-") for j in all_job_ids())


def test_carrier_configuration_error_fails_the_step_with_an_audit_event(app, released, provider):
    """Wrong credentials: the step fails and the operator finds an audit event."""
    _alert, [person] = released()
    provider.fail_next(
        ProviderConfigurationError("the carrier refused our credentials", code="20003")
    )
    delivery = step(person, 1)

    jobs.run_cascade_step(delivery.id)

    assert fresh(delivery).status == DeliveryStatus.FAILED
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "carrier.misconfigured")
    ).all()
    assert (event.subject_id, event.details["code"]) == (delivery.id, "20003")


def test_rate_limited_step_is_retried_later_then_failed(app, released, provider, monkeypatch):
    """A busy carrier: back to planned with a later try; after the last try, failed."""
    monkeypatch.setitem(schedule.RETRY_DELAYS, "step", (timedelta(seconds=30),))
    _alert, [person] = released()
    delivery = step(person, 1)
    provider.fail_next(RateLimitedError("slow down", code="20429"), times=2)

    assert jobs.run_cascade_step(delivery.id) == "planned"
    [retry] = [j for j in all_job_ids() if j.startswith(f"delivery-{delivery.id}-2-")]
    assert Job.fetch(retry, connection=redis_connection()).args == (delivery.id, 2)

    assert jobs.run_cascade_step(delivery.id, 2) == "failed"
    assert fresh(delivery).error_code == "20429"
    assert len(provider.calls) == 2


@pytest.mark.app_settings(CALLS_PER_SECOND="0.01", SMS_PER_SECOND="1000")
def test_step_without_a_pacing_slot_soon_is_put_back_and_rescheduled(app, released, provider):
    """At 0.01 calls/s the next slot is 100 s away: nothing is sent, the step waits."""
    _alert, [person] = released()
    delivery = step(person, 1)
    reserve_slot("call", max_wait=0)  # someone just took the slot

    assert jobs.run_cascade_step(delivery.id) == "planned"

    assert provider.calls == []
    assert fresh(delivery).status == DeliveryStatus.PLANNED
    assert any(j.startswith(f"delivery-{delivery.id}-1-") for j in all_job_ids())


# --- The end of the cascade -----------------------------------------------------------------

ONE_CALL = {"urgent_steps": [{"after_minutes": 0, "channel": "call", "phone": 1}]}


def test_last_call_ending_closes_the_alert_as_exhausted(app, client, released, provider):
    """The only step's call is not answered: the status callback closes the alert."""
    alert, [person] = released(charter=ONE_CALL)
    delivery = step(person, 0)
    jobs.run_cascade_step(delivery.id)
    sid = fresh(delivery).provider_sid

    response = signed_post(client, "/ivr/status", call_status_form(sid, "no-answer"))

    assert response.status_code == 204
    db.session.expire_all()
    alert = db.session.get(Alert, alert.id)
    assert (alert.state, alert.close_reason) == (AlertState.CLOSED, CloseReason.EXHAUSTED)


def test_alert_stays_open_while_a_member_has_steps_left(app, client, released, provider):
    """One member's cascade ending does not close the alert while another's runs."""
    alert, [first, second] = released({}, {}, charter=ONE_CALL)
    for person in (first, second):
        jobs.run_cascade_step(step(person, 0).id)

    signed_post(client, "/ivr/status", call_status_form(fresh(step(first, 0)).provider_sid, "busy"))
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).state == AlertState.DELIVERING

    signed_post(
        client, "/ivr/status", call_status_form(fresh(step(second, 0)).provider_sid, "completed")
    )
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).state == AlertState.CLOSED


def test_sms_status_callback_can_close_the_alert(app, client, released, provider):
    """An SMS-only cascade ends when its message is sent: the SMS callback closes it."""
    alert, [person] = released(charter={"urgent_steps": [{"after_minutes": 0, "channel": "sms"}]})
    jobs.run_cascade_step(step(person, 0).id)
    sid = fresh(step(person, 0)).provider_sid

    signed_post(client, "/sms/status", sms_status_form(sid, "sent"))

    db.session.expire_all()
    assert db.session.get(Alert, alert.id).close_reason == CloseReason.EXHAUSTED


def test_repeated_status_callback_changes_nothing(app, released, provider):
    """after_status_change of a callback that changed nothing does not close the alert."""
    alert, [person] = released(charter=ONE_CALL)
    delivery = step(person, 0)
    delivery.status = DeliveryStatus.NO_ANSWER
    db.session.commit()

    closing.after_status_change(None)

    db.session.expire_all()
    assert db.session.get(Alert, alert.id).state == AlertState.DELIVERING


# --- Enqueueing after commit ----------------------------------------------------------------


def test_job_enqueued_after_commit_only_and_once_per_id(app):
    """Nothing is queued before the commit; the same id twice is queued once."""
    for _ in range(2):
        queue.enqueue_after_commit("default", "alerts.jobs.reconcile", job_id="once")
    assert get_queue("default").get_job_ids() == []

    db.session.commit()

    assert get_queue("default").get_job_ids() == ["once"]


def test_job_id_already_known_to_redis_is_not_enqueued_again(app):
    """A job that already ran (its record kept) is not queued a second time."""
    get_queue("default").enqueue(jobs.reconcile, job_id="done-before")
    get_queue("default").empty()
    redis_connection().hset(Job.key_for("done-before"), "status", "finished")

    queue.enqueue_after_commit("default", "alerts.jobs.reconcile", job_id="done-before")
    db.session.commit()

    assert get_queue("default").get_job_ids() == []


def test_savepoint_release_does_not_enqueue_before_the_real_commit(app):
    """A savepoint's release is no commit: the job waits for the outer transaction."""

    queue.enqueue_after_commit("default", "alerts.jobs.reconcile", job_id="outer")
    with savepoint():
        pass
    assert get_queue("default").get_job_ids() == []
    db.session.commit()
    assert get_queue("default").get_job_ids() == ["outer"]


def test_unknown_queue_is_refused(app):
    """A queue name that does not exist is a programming error, caught at once."""
    with pytest.raises(ValueError, match="unknown queue"):
        queue.enqueue_after_commit("fast", "alerts.jobs.reconcile", job_id="x")


def test_redis_down_at_commit_keeps_the_plan_and_the_reconciler_enqueues_it(
    app, released, provider
):
    """The commit succeeds without Redis; the reconciler later queues the due steps."""
    state = app.extensions["redis"]
    working = state["client"]
    state["client"] = redis_lib.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        _alert, [person] = released()
    finally:
        state["client"].close()
        state["client"] = working
    assert all_job_ids() == set()

    assert jobs.reconcile() == 2

    assert {f"delivery-{step(person, n).id}" for n in (0, 1)} <= all_job_ids()


# --- The reconciler -------------------------------------------------------------------------


# --- The first wave in batches -----------------------------------------------------------


def first_wave(people: list[Person]) -> list[int]:
    return sorted(step(person, number).id for person in people for number in (0, 1))


def test_release_enqueues_the_first_wave_in_batches_and_later_steps_one_by_one(
    app, released, provider
):
    """Four members: their 8 first steps in one batch job; nothing else is due yet."""
    _alert, people = released({}, {}, {}, {})
    batches = [j for j in all_job_ids() if j.startswith(schedule.BATCH_JOB_PREFIX)]
    assert len(batches) == 1
    [job] = Job.fetch_many(batches, connection=redis_connection())
    assert sorted(job.args[0]) == first_wave(people)
    assert not any(j.startswith("delivery-") for j in all_job_ids())


def test_a_batch_texts_and_calls_each_member_once_and_a_second_run_sends_nothing(
    app, released, provider
):
    _alert, people = released({}, {}, {})
    ids = first_wave(people)

    counts = jobs.run_cascade_batch(ids)
    again = jobs.run_cascade_batch(ids)

    assert counts == {"handled": 0, "taken": 0, "queued": 6}
    assert again == {"handled": 6, "taken": 0}
    assert sorted(m.to for m in provider.messages) == sorted(p.phone for p in people)
    assert sorted(c.to for c in provider.calls) == sorted(p.phone for p in people)
    for delivery_id in ids:
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery.status == DeliveryStatus.QUEUED and delivery.provider_sid is not None


def test_a_batch_applies_every_rule_of_a_single_step(app, released, provider):
    """Confirmed (its steps canceled by the confirmation): untouched. Opted out of SMS
    since planning: skipped, the call goes. Held by a ringing call: waits. The rest go."""
    alert, [confirmed, stopped, plain, held] = released({}, {}, {}, {})
    confirm(alert, confirmed, AckChannel.SMS)
    stopped.sms_opt_out_at = utcnow()
    first, second = step(held, 1), step(held, 2)
    first.status, first.sent_at, first.provider_sid = (
        DeliveryStatus.RINGING,
        utcnow(),
        "CA" + "7" * 32,
    )
    second.due_at = utcnow()
    db.session.commit()
    ids = [step(p, n).id for p in (confirmed, stopped, plain) for n in (0, 1)] + [second.id]

    counts = jobs.run_cascade_batch(ids)

    db.session.expire_all()
    assert counts["handled"] == 2 and counts["skipped"] == 1 and counts["planned"] == 1
    assert counts["queued"] == 3  # the stopped member's call, the plain member's SMS and call
    assert {m.to for m in provider.messages} == {plain.phone}
    assert sorted(c.to for c in provider.calls) == sorted([stopped.phone, plain.phone])
    assert db.session.get(Delivery, second.id).status == DeliveryStatus.PLANNED
    assert step(stopped, 0).status == DeliveryStatus.SKIPPED
    assert {step(confirmed, n).status for n in (0, 1)} == {DeliveryStatus.CANCELED}


def test_workers_racing_on_one_batch_contact_each_member_once(app, released, provider):
    _alert, people = released({}, {}, {}, {}, {})
    ids = first_wave(people)
    db.session.commit()
    barrier = threading.Barrier(3)

    def worker():
        with app.app_context():
            barrier.wait(timeout=10)
            jobs.run_cascade_batch(ids)
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(c.to for c in provider.calls) == sorted(p.phone for p in people)
    assert sorted(m.to for m in provider.messages) == sorted(p.phone for p in people)


def test_the_reconciler_counts_the_steps_of_a_queued_batch_as_held(app, released, provider):
    """A batch still on its queue holds its steps: the reconciler enqueues none of them."""
    _alert, people = released({}, {})
    assert reconciler.held_deliveries() >= set(first_wave(people))
    assert jobs.reconcile() == 0

    run_queued_jobs()
    assert len(provider.calls) == 2 and len(provider.messages) == 2


def test_a_normal_batch_leaves_no_handover_record(app, released, provider):
    _alert, people = released({}, {})
    jobs.run_cascade_batch(first_wave(people))
    assert redis_connection().hlen(handover.HANDOVER_KEY) == 0


def abandon(delivery_ids: list[int], states: list[str]) -> None:
    """Leave steps as a batch killed mid-way does: claimed, no SID, its record in Redis."""
    redis_connection().flushdb()  # the killed batch's job is gone from every queue
    long_ago = utcnow() - schedule.INTERRUPTED_AFTER - timedelta(seconds=1)
    for delivery_id, state in zip(delivery_ids, states, strict=True):
        delivery = db.session.get(Delivery, delivery_id)
        delivery.status, delivery.updated_at = DeliveryStatus.QUEUED, long_ago
        if state:
            redis_connection().hset(handover.HANDOVER_KEY, delivery_id, state)
    db.session.commit()


def test_reconcile_after_a_killed_batch_resends_only_what_never_reached_the_carrier(
    app, released, provider
):
    """Claimed only: sent again. Handed over with a SID: the SID is saved, not resent.
    Being handed over, or unknown, and the carrier unreachable: interrupted, never resent."""
    _alert, people = released({}, {}, {}, {})
    claimed, with_sid, sending, unknown = (step(p, 1).id for p in people)
    sid = "CA" + "5" * 32
    abandon([claimed, with_sid, sending, unknown], [handover.CLAIMED, sid, handover.SENDING, ""])
    provider.fail_next(ProviderUnavailableError("carrier down"), times=2)  # the two in doubt

    jobs.reconcile()
    run_queued_jobs()

    db.session.expire_all()
    assert [c.to for c in provider.calls] == [people[0].phone]
    [call_sid] = [sent.sid for request, sent in provider.sent if request in provider.calls]
    assert fresh_status(claimed) == (DeliveryStatus.QUEUED, call_sid)
    assert fresh_status(with_sid) == (DeliveryStatus.QUEUED, sid)
    for delivery_id in (sending, unknown):
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.status, delivery.error_code) == (DeliveryStatus.FAILED, "interrupted")
    assert redis_connection().hlen(handover.HANDOVER_KEY) == 0


def fresh_status(delivery_id: int):
    delivery = db.session.get(Delivery, delivery_id)
    return delivery.status, delivery.provider_sid


def test_a_batch_too_slow_to_send_gives_its_claims_back(app, released, provider, monkeypatch):
    """Past the send limit the batch stops sending and puts its claims back on the queue."""
    _alert, people = released({}, {})
    monkeypatch.setattr(steps, "CLAIM_SEND_LIMIT", timedelta(seconds=-1))

    counts = jobs.run_cascade_batch(first_wave(people))

    assert counts["planned"] == 4 and provider.calls == [] and provider.messages == []
    assert redis_connection().hlen(handover.HANDOVER_KEY) == 0
    db.session.expire_all()
    assert {db.session.get(Delivery, i).status for i in first_wave(people)} == {
        DeliveryStatus.PLANNED
    }
    monkeypatch.undo()
    run_queued_jobs()
    assert len(provider.calls) == 2 and len(provider.messages) == 2


def test_reconcile_after_redis_lost_everything_enqueues_each_due_step_once(app, released, provider):
    """Flushed Redis: the due steps are queued again; a second pass adds nothing."""
    _alert, [_person] = released()
    redis_connection().flushdb()

    assert jobs.reconcile() == 2
    assert jobs.reconcile() == 0

    run_queued_jobs()
    assert len(provider.calls) == 1 and len(provider.messages) == 1


def test_reconcile_schedules_steps_coming_due_and_leaves_later_ones(app, released, provider):
    """The 3-minute step, seen a minute and a half on, is scheduled for its time."""
    alert, [person] = released()
    for number in (0, 1):
        jobs.run_cascade_step(step(person, number).id)
    alert.released_at -= timedelta(seconds=90)
    for delivery in db.session.scalars(select(Delivery)):
        delivery.due_at -= timedelta(seconds=90)
    db.session.commit()

    jobs.reconcile()

    registry = ScheduledJobRegistry(queue=get_queue("urgent"))
    second_call = step(person, 2)
    assert registry.get_scheduled_time(
        f"delivery-{second_call.id}"
    ) - second_call.due_at < timedelta(seconds=1)
    assert f"delivery-{step(person, 3).id}" not in all_job_ids()


def test_reconcile_requeues_a_step_whose_finished_job_left_it_planned(app, released, provider):
    """A finished job record under the first id: the step is queued under a new id."""
    _alert, [person] = released()
    delivery = step(person, 1)
    get_queue("urgent").empty()
    redis_connection().hset(Job.key_for(f"delivery-{delivery.id}"), "status", "finished")

    jobs.reconcile()

    [job_id] = [j for j in all_job_ids() if j.startswith(f"delivery-{delivery.id}-r")]
    assert Job.fetch(job_id, connection=redis_connection()).args == (delivery.id,)


def test_reconcile_closes_expired_alerts_and_skips_their_steps(app, released, provider):
    """An alert past its expiry is closed EXPIRED; its planned steps are never sent."""
    alert, [_person] = released()
    alert.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    jobs.reconcile()
    run_queued_jobs()

    db.session.expire_all()
    assert db.session.get(Alert, alert.id).close_reason == CloseReason.EXPIRED
    assert provider.calls == [] and provider.messages == []


def test_reconcile_closes_an_alert_whose_cascades_are_all_over(app, released, provider):
    """Every delivery ended without a callback the cascade saw: the sweep closes the alert."""
    alert, [person] = released(charter=ONE_CALL)
    delivery = step(person, 0)
    delivery.status = DeliveryStatus.COMPLETED
    db.session.commit()

    jobs.reconcile()

    db.session.expire_all()
    assert db.session.get(Alert, alert.id).close_reason == CloseReason.EXHAUSTED


def test_reconcile_keeps_itself_scheduled_and_runs_one_at_a_time(app):
    """Each run schedules the next minute's run; a run while another holds the lock skips."""
    jobs.reconcile()
    scheduled = ScheduledJobRegistry(queue=get_queue("urgent")).get_job_ids(cleanup=False)
    assert [j for j in scheduled if j.startswith("reconcile-")]

    redis_connection().set(schedule.RECONCILE_LOCK_KEY, "someone else")
    assert jobs.reconcile() == 0
    assert redis_connection().get(schedule.RECONCILE_LOCK_KEY) == b"someone else"


def test_start_reconciler_twice_queues_one_chain(app):
    """Two workers starting in the same minute start one reconciler, not two."""
    reconciler.start_reconciler()
    reconciler.start_reconciler()

    queued = [j for j in get_queue("urgent").get_job_ids() if j.startswith("reconcile-")]
    scheduled = [
        j
        for j in ScheduledJobRegistry(queue=get_queue("urgent")).get_job_ids(cleanup=False)
        if j.startswith("reconcile-")
    ]
    assert len(queued) == 1 and len(scheduled) == 1


# --- Level 1: release requests, escalation, automatic release, expiry ------------------------


@pytest.fixture
def awaiting(app, make_plp, make_person, make_alert):
    """An alert awaiting release for a PLP with a coordinator, a steering member, a member."""
    plp = make_plp()
    people = {}
    for role in (Role.COORDINATOR, Role.STEERING, Role.MEMBER):
        people[role] = make_person(name=role.value)
        db.session.add(Membership(person=people[role], partnership=plp, role=role))
    author = make_person(name="officer")
    alert = make_alert(
        plp=plp, state=AlertState.AWAITING_RELEASE, author_id=author.id, created_at=utcnow()
    )
    return alert, people, author


def notice_jobs(prefix: str) -> list[Job]:
    connection = redis_connection()
    return [
        Job.fetch(j, connection=connection) for j in sorted(all_job_ids()) if j.startswith(prefix)
    ]


def test_coordinators_get_the_release_request_and_the_timers_start(app, awaiting):
    """One SMS notice per coordinator; escalation and expiry scheduled, no auto-release."""
    alert, people, _author = awaiting
    coordinator = people[Role.COORDINATOR]

    jobs.notify_coordinators(alert.id)

    [notice] = notice_jobs(f"release-request-{alert.id}-")
    assert notice.args == (
        coordinator.id,
        text_for(alert, "sms.release_request", "fr", members=3, message=alert.text),
    )
    registry = ScheduledJobRegistry(queue=get_queue("urgent"))
    assert registry.get_scheduled_time(f"escalate-{alert.id}") - alert.created_at < timedelta(
        minutes=10, seconds=1
    )
    assert f"expire-{alert.id}" in registry.get_job_ids(cleanup=False)
    assert f"auto-release-{alert.id}" not in all_job_ids()


def test_auto_release_is_scheduled_when_the_charter_asks(app, awaiting):
    """A charter with auto_release_after_minutes schedules the automatic release."""
    alert, _people, _author = awaiting
    alert.targets[0].partnership.charter_json = {"auto_release_after_minutes": 5}
    db.session.commit()

    jobs.notify_coordinators(alert.id)

    registry = ScheduledJobRegistry(queue=get_queue("urgent"))
    assert abs(
        registry.get_scheduled_time(f"auto-release-{alert.id}")
        - (alert.created_at + timedelta(minutes=5))
    ) < timedelta(seconds=1)


def test_escalation_texts_the_steering_committee_while_still_awaiting(app, awaiting):
    """Nobody answered: the steering member gets the escalation SMS, not the coordinator."""
    alert, people, _author = awaiting

    jobs.escalate_to_steering(alert.id)

    [notice] = notice_jobs(f"escalation-{alert.id}-")
    assert notice.args[0] == people[Role.STEERING].id


def test_escalation_after_a_decision_does_nothing(app, awaiting):
    """Released (or rejected) in time: no escalation."""
    alert, _people, _author = awaiting
    alert.state = AlertState.REJECTED
    db.session.commit()

    assert jobs.escalate_to_steering(alert.id) == "moot"
    assert notice_jobs("escalation-") == []


def test_auto_release_releases_and_plans_the_alert(app, awaiting):
    """The timer releases an alert nobody answered: it is delivering, its steps queued."""
    alert, _people, _author = awaiting

    jobs.auto_release(alert.id)

    db.session.expire_all()
    alert = db.session.get(Alert, alert.id)
    assert alert.state == AlertState.DELIVERING
    assert any(j.startswith(("delivery-", schedule.BATCH_JOB_PREFIX)) for j in all_job_ids())


def test_expiry_closes_an_unreleased_alert_and_tells_its_author(app, awaiting):
    """Expired before anyone released it: closed EXPIRED, the author is texted."""
    alert, _people, author = awaiting
    alert.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert jobs.expire_alert(alert.id) == "expired"

    db.session.expire_all()
    assert db.session.get(Alert, alert.id).close_reason == CloseReason.EXPIRED
    [notice] = notice_jobs(f"notice-{alert.id}-expired-")
    assert notice.args == (author.id, text_for(alert, "sms.expired", author.language))


def test_expiry_job_run_early_leaves_the_alert_open(app, awaiting):
    """Before expires_at the expiry job changes nothing."""
    alert, _people, _author = awaiting

    assert jobs.expire_alert(alert.id) == "not yet"

    db.session.expire_all()
    assert db.session.get(Alert, alert.id).state == AlertState.AWAITING_RELEASE


def test_prepare_worker_builds_the_provider_once_and_starts_the_reconciler(app):
    """The worker's forks inherit the carrier built at start; the reconciler is queued."""
    set_provider(app, None)

    jobs.prepare_worker(app)

    assert isinstance(app.extensions["phone_provider"], SimulatorProvider)
    assert any(j.startswith("reconcile-") for j in get_queue("urgent").get_job_ids())
