"""Carrier status polling: deliveries whose status callbacks were lost are asked about.

Unit tests with the provider fake on SQLite; the simulator provider's answers from its
store; and the running system (real carrier process, workers, web) where the carrier
loses every status callback of some members and the reconciler's polling recovers them.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from alerts import jobs
from alerts.cascade import OPEN_STATUSES
from alerts.delivery import polling
from alerts.delivery.provider import (
    CallRequest,
    CarrierStatus,
    ProviderUnavailableError,
    SmsRequest,
    UnknownSidError,
    set_provider,
)
from alerts.models import (
    Alert,
    AlertOrigin,
    AlertState,
    CascadeStep,
    Channel,
    Charter,
    CloseReason,
    Delivery,
    DeliveryStatus,
    Membership,
    utcnow,
)
from alerts.planning import plan_deliveries
from alerts.raising import raise_alert
from core.extensions import db
from simulator import store
from simulator.adapters.provider import SimulatorProvider
from simulator.behaviour import Behaviour
from tests.cascade_harness import (
    ANSWER_1,
    SYSTEM_TEST,
    WAIT_SECONDS,
    Profile,
    carrier_calls,
    enrol,
    problems_by_member,
    the_plp,
)
from tests.twilio_payloads import call_sid, message_sid

PACED_FAST = pytest.mark.app_settings(CALLS_PER_SECOND="1000", SMS_PER_SECOND="1000")
# Later than both channels' bound: every open delivery made now is stale then.
LATER = timedelta(minutes=4)


def fresh(delivery: Delivery) -> Delivery:
    db.session.expire_all()
    return db.session.get(Delivery, delivery.id)


def stale(delivery: Delivery, age: timedelta) -> Delivery:
    """Set the delivery's last news `age` ago (what a lost callback leaves)."""
    db.session.execute(
        update(Delivery).where(Delivery.id == delivery.id).values(updated_at=utcnow() - age)
    )
    db.session.commit()
    return fresh(delivery)


# --- Polling, with the provider fake ----------------------------------------------------


def test_a_queued_sms_whose_callback_was_lost_becomes_delivered(app, make_delivery, provider):
    """The SMS's callbacks never came: polling records "delivered" and its price, and closes."""
    sms = make_delivery(Channel.SMS)
    provider.message_statuses[sms.provider_sid] = CarrierStatus(
        "delivered", price="-0.0075", price_unit="eur"
    )

    assert polling.poll_stale_statuses(utcnow() + LATER) == 1

    sms = fresh(sms)
    assert (sms.status, sms.cost, sms.cost_unit) == (
        DeliveryStatus.DELIVERED,
        Decimal("0.00750"),
        "EUR",
    )
    assert sms.finished_at is not None
    assert provider.status_fetches == [sms.provider_sid]
    # As after a callback: the member's only delivery is over, so is the alert.
    assert db.session.get(Alert, sms.alert_id).close_reason == CloseReason.EXHAUSTED


def test_an_undelivered_sms_keeps_the_carrier_error(app, make_delivery, provider):
    """The fetched ErrorCode is recorded as a callback's would be."""
    sms = make_delivery(Channel.SMS, status=DeliveryStatus.SENT)
    provider.message_statuses[sms.provider_sid] = CarrierStatus(
        "undelivered", error_code="30003", error_message="Unreachable destination handset"
    )

    assert polling.poll_stale_statuses(utcnow() + LATER) == 1

    sms = fresh(sms)
    assert (sms.status, sms.error_code, sms.error_message) == (
        DeliveryStatus.UNDELIVERED,
        "30003",
        "Unreachable destination handset",
    )


TWO_CALLS = {
    "urgent_steps": [
        {"after_minutes": 0, "channel": "call", "phone": 1},
        {"after_minutes": 3, "channel": "call", "phone": 1},
    ]
}


@PACED_FAST
def test_a_call_stuck_in_progress_completes_and_releases_the_next_call(
    app, make_plp, make_person, make_alert, provider
):
    """The first call's last callbacks were lost: the second call waits, polling frees it."""
    plp = make_plp()
    plp.charter_json = TWO_CALLS
    person = make_person(phone="+32470111222")
    db.session.add(Membership(person=person, partnership=plp))
    now = utcnow()
    alert = make_alert(plp=plp, released_at=now, expires_at=now + timedelta(hours=2))
    plan_deliveries(alert, now=now)
    db.session.commit()
    first, second = db.session.scalars(
        select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.step)
    ).all()
    placed = now - timedelta(minutes=5)
    first.status, first.provider_sid, first.sent_at = (
        DeliveryStatus.IN_PROGRESS,
        call_sid(),
        placed,
    )
    first.answered_by = "human"
    first.due_at = placed
    first.updated_at = placed + timedelta(seconds=20)  # answered; no news since
    second.due_at = placed + timedelta(minutes=3)  # due two minutes ago
    db.session.commit()
    sid = first.provider_sid

    # Before polling: the open first call holds the second back (up to LONGEST_CALL).
    assert jobs.run_cascade_step(second.id) == "planned"
    assert provider.calls == []

    provider.call_statuses[sid] = CarrierStatus(
        "completed", answered_by="human", duration_seconds=95, price="-0.030", price_unit="EUR"
    )
    assert polling.poll_stale_statuses(utcnow()) == 1

    first = fresh(first)
    assert (first.status, first.duration_seconds, first.cost) == (
        DeliveryStatus.COMPLETED,
        95,
        Decimal("0.03000"),
    )
    # The charter's gap from the first call is long past: the second call goes out now.
    assert jobs.run_cascade_step(second.id) == "queued"
    assert [call.to for call in provider.calls] == [person.phone]
    assert db.session.get(Alert, alert.id).state == AlertState.DELIVERING


@pytest.mark.parametrize(
    ("channel", "current", "carrier_says"),
    [
        (Channel.CALL, DeliveryStatus.IN_PROGRESS, "ringing"),
        (Channel.CALL, DeliveryStatus.RINGING, "queued"),
        (Channel.SMS, DeliveryStatus.SENT, "queued"),
    ],
)
def test_polling_never_moves_a_delivery_backwards(
    make_delivery, provider, channel, current, carrier_says
):
    """An older status from the carrier (a lagging replica) changes no status and no detail."""
    delivery = make_delivery(channel, status=current, answered_by="human")
    statuses = provider.call_statuses if channel == Channel.CALL else provider.message_statuses
    statuses[delivery.provider_sid] = CarrierStatus(
        carrier_says, answered_by="machine_start", error_code="30008"
    )
    later = utcnow() + LATER

    assert polling.poll_stale_statuses(later) == 0

    delivery = fresh(delivery)
    assert (delivery.status, delivery.answered_by, delivery.error_code) == (
        current,
        "human",
        None,
    )
    assert delivery.updated_at == later  # asked at `later`: back of the line
    assert provider.status_fetches == [delivery.provider_sid]


def test_a_sid_unknown_to_the_carrier_is_left_and_logged_once(app, make_delivery, provider, caplog):
    """A 404: the delivery stays queued, asked again later, the warning written once."""
    call = make_delivery(Channel.CALL)
    caplog.set_level(logging.INFO, logger="alerts.delivery.polling")

    assert polling.poll_stale_statuses(utcnow() + LATER) == 0
    assert polling.poll_stale_statuses(utcnow() + 2 * LATER) == 0

    assert fresh(call).status == DeliveryStatus.QUEUED
    assert fresh(call).finished_at is None
    assert provider.status_fetches == [call.provider_sid, call.provider_sid]
    unknown = [r for r in caplog.records if "does not know this sid" in r.getMessage()]
    assert len(unknown) == 1


def test_a_carrier_error_stops_the_run_and_the_next_run_recovers(app, make_delivery, provider):
    """The carrier down: no exception, nothing recorded, the rest not asked; next run: all."""
    older = stale(make_delivery(Channel.SMS), timedelta(minutes=10))
    newer = stale(make_delivery(Channel.SMS), timedelta(minutes=5))
    for sms in (older, newer):
        provider.message_statuses[sms.provider_sid] = CarrierStatus("delivered")
    provider.fail_next(ProviderUnavailableError("down"))

    assert polling.poll_stale_statuses(utcnow()) == 0
    assert provider.status_fetches == [older.provider_sid]
    assert fresh(older).status == DeliveryStatus.QUEUED

    assert polling.poll_stale_statuses(utcnow()) == 2
    assert {fresh(older).status, fresh(newer).status} == {DeliveryStatus.DELIVERED}


def test_a_run_asks_at_most_poll_max_oldest_first(app, make_delivery, provider, monkeypatch):
    """Five stale SMS, a bound of three: the three oldest now, the other two next run."""
    monkeypatch.setattr(polling, "POLL_MAX", 3)
    sms = [stale(make_delivery(Channel.SMS), timedelta(minutes=10 + age)) for age in range(5)]
    for one in sms:
        provider.message_statuses[one.provider_sid] = CarrierStatus("delivered")
    oldest_first = [one.provider_sid for one in reversed(sms)]

    assert polling.poll_stale_statuses(utcnow()) == 3
    assert provider.status_fetches == oldest_first[:3]

    assert polling.poll_stale_statuses(utcnow()) == 2
    assert provider.status_fetches == oldest_first


def test_only_open_stale_deliveries_with_a_sid_are_asked_about(app, make_delivery, provider):
    """Fresh news, a final status, no SID, or sent too long ago: the carrier is not asked."""
    wanted = stale(make_delivery(Channel.CALL, status=DeliveryStatus.RINGING), timedelta(minutes=4))
    stale(make_delivery(Channel.CALL, status=DeliveryStatus.IN_PROGRESS), timedelta(minutes=2))
    stale(make_delivery(Channel.SMS), timedelta(seconds=90))
    stale(make_delivery(Channel.CALL, status=DeliveryStatus.NO_ANSWER), timedelta(minutes=30))
    stale(make_delivery(Channel.SMS, status=DeliveryStatus.DELIVERED), timedelta(minutes=30))
    stale(make_delivery(Channel.CALL, provider_sid=None), timedelta(minutes=30))
    long_ago = utcnow() - polling.GIVE_UP_AFTER - timedelta(minutes=1)
    stale(make_delivery(Channel.SMS, sent_at=long_ago), timedelta(minutes=30))
    provider.call_statuses[wanted.provider_sid] = CarrierStatus("no-answer", duration_seconds=0)

    assert polling.poll_stale_statuses(utcnow()) == 1

    assert provider.status_fetches == [wanted.provider_sid]
    assert fresh(wanted).status == DeliveryStatus.NO_ANSWER


def test_a_status_the_carrier_words_oddly_is_ignored_and_logged(
    app, make_delivery, provider, caplog
):
    """A status word outside Twilio's table changes nothing, as for a callback."""
    call = make_delivery(Channel.CALL)
    provider.call_statuses[call.provider_sid] = CarrierStatus("teleported")

    assert polling.poll_stale_statuses(utcnow() + LATER) == 0

    assert fresh(call).status == DeliveryStatus.QUEUED
    assert "unknown call status ignored" in caplog.text


def test_the_polled_statuses_are_the_open_ones_of_the_status_tables():
    """Calls: queued, ringing, in progress; SMS: queued and sent (a receipt may follow)."""
    expected = {
        Channel.CALL: {DeliveryStatus.QUEUED, DeliveryStatus.RINGING, DeliveryStatus.IN_PROGRESS},
        Channel.SMS: {DeliveryStatus.QUEUED, DeliveryStatus.SENT},
    }
    polled = dict(polling.POLLED)
    assert polled == expected


def test_each_reconciler_run_polls_and_logs_the_count(app, make_delivery, provider, caplog):
    """The reconciler asks about a stale SMS and says how many statuses polling moved."""
    sms = stale(make_delivery(Channel.SMS), timedelta(minutes=10))
    provider.message_statuses[sms.provider_sid] = CarrierStatus("delivered")
    caplog.set_level(logging.INFO, logger="alerts.delivery.reconciler")

    jobs.reconcile()

    assert fresh(sms).status == DeliveryStatus.DELIVERED
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reconciled ")]
    assert line.endswith(" polled=1")


# --- The simulator provider answers from its store ----------------------------------------


def test_simulator_fetches_answer_what_the_store_says(app):
    """The call's and the message's current status come from the simulator's store."""
    simulator = SimulatorProvider(app)
    call, message = call_sid(), message_sid()
    store.save_call(
        {"sid": call, "direction": "outbound-api", "from": "+3225000000", "to": "+32470000001"}
    )
    store.update_call(call, status="completed", answered_by="machine_end_beep", duration=31)
    store.add_message(
        {"sid": message, "from": "+3225000000", "to": "+32470000001", "direction": "outbound"}
    )
    store.update_message(message, status="undelivered", error_code="30003")

    assert simulator.fetch_call_status(call) == CarrierStatus(
        "completed", answered_by="machine_end_beep", duration_seconds=31
    )
    assert simulator.fetch_message_status(message) == CarrierStatus(
        "undelivered", error_code="30003"
    )
    with pytest.raises(UnknownSidError):
        simulator.fetch_call_status(call_sid())
    with pytest.raises(UnknownSidError):
        simulator.fetch_message_status(message_sid())


@pytest.mark.app_settings(
    SIMULATOR_MODE="thread",
    SIMULATOR_LATENCY="zero",
    SIMULATOR_AUTOSTART=False,
    CALLS_PER_SECOND=1000,
    SMS_PER_SECOND=1000,
)
def test_callbacks_the_simulated_carrier_drops_are_recovered_by_polling(
    app, make_delivery, make_person
):
    """With a number's callbacks dropped, its call and SMS end unheard; polling records them."""
    simulator = SimulatorProvider(app)
    set_provider(app, simulator)
    number = "+32470555777"
    store.set_behaviour(number, ANSWER_1)
    store.set_callbacks_dropped(number, True)
    base = app.extensions["settings"].public_base_url
    person = make_person(phone=number)
    sent_call = simulator.place_call(
        CallRequest(number, f"{base}/ivr/answer-nowhere", f"{base}/ivr/status")
    )
    sent_sms = simulator.send_sms(SmsRequest(number, "Alerte PLP", f"{base}/sms/status"))
    call = make_delivery(Channel.CALL, person=person, provider_sid=sent_call.sid)
    sms = make_delivery(Channel.SMS, person=person, provider_sid=sent_sms.sid, step=1)
    try:
        simulator.network.start_pending()
        assert simulator.network.wait_idle(WAIT_SECONDS)
    finally:
        simulator.network.close()
    assert store.get_call(sent_call.sid)["status"] == "completed"
    assert store.get_message(sent_sms.sid)["status"] == "delivered"
    assert (fresh(call).status, fresh(sms).status) == (DeliveryStatus.QUEUED, DeliveryStatus.QUEUED)

    assert polling.poll_stale_statuses(utcnow() + LATER) == 2

    call, sms = fresh(call), fresh(sms)
    assert (call.status, call.answered_by) == (DeliveryStatus.COMPLETED, "human")
    assert sms.status == DeliveryStatus.DELIVERED


# --- The running system: the carrier loses the callbacks of some members ------------------

SECOND_CALL = 3  # seconds after the release
POLL_CHARTER = Charter(
    urgent_steps=(
        CascadeStep(0, "sms"),
        CascadeStep(0, "call", 1),
        CascadeStep(SECOND_CALL / 60, "call", 1),
    )
)
LOST_CONFIRMS = Profile(
    "callbacks lost, confirms",
    3,
    ANSWER_1,
    email=False,
    attempts={Channel.SMS: 1, Channel.CALL: 1},
    confirmed_by="call",
    steps=(0, 1, 2),
)
LOST_NEVER_ANSWERS = Profile(
    "callbacks lost, never answers",
    3,
    Behaviour("no_answer"),
    email=False,
    attempts={Channel.SMS: 1, Channel.CALL: 2},
    steps=(0, 1, 2),
)
CALLBACKS_ARRIVE = Profile(
    "callbacks arrive, never answers",
    2,
    Behaviour("no_answer"),
    email=False,
    attempts={Channel.SMS: 1, Channel.CALL: 2},
    steps=(0, 1, 2),
)


def system_test(test):
    """Mark `test` as a test of the running system (`cascade_harness.SYSTEM_TEST`)."""
    for mark in SYSTEM_TEST:
        test = mark(test)
    return test


@pytest.mark.slow
@system_test
def test_lost_callbacks_are_recovered_by_the_reconciler_polling(app, system, monkeypatch):
    """Every callback of six members is lost: the reconciler asks, and the alert ends right."""
    # Seconds, not minutes: the test's reconciler runs call the lost statuses stale soon.
    monkeypatch.setitem(polling.STALE_AFTER, Channel.CALL, timedelta(seconds=2))
    monkeypatch.setitem(polling.STALE_AFTER, Channel.SMS, timedelta(seconds=2))
    coordinator, members = enrol(
        [LOST_CONFIRMS, LOST_NEVER_ANSWERS, CALLBACKS_ARRIVE], charter=POLL_CHARTER
    )
    lost = [m for m in members if m.profile is not CALLBACKS_ARRIVE]
    for member in lost:
        store.set_callbacks_dropped(member.phone, True)
    system.start_carrier(8)
    system.start_workers(1)
    alert = raise_alert(
        author=coordinator,
        targets=[the_plp()],
        text="Cambriolage en cours rue de la Station, soyez vigilants.",
        origin=AlertOrigin.SMS,
    )
    db.session.commit()
    alert_id = alert.id
    lost_ids = [m.person_id for m in lost]

    # The carrier carried each lost member's first call and SMS to their end, and the app
    # heard nothing: those deliveries are still queued; the second calls wait behind them.
    def first_wave_over_at_the_carrier() -> bool:
        calls = carrier_calls()
        return all(
            len(calls.get(m.phone, [])) == 1 and not calls[m.phone][0]["live"] for m in lost
        ) and all(
            sid is not None and (store.get_message(sid) or {}).get("status") == "delivered"
            for sid in sids_of(alert_id, lost_ids, Channel.SMS)
        )

    assert system.wait_until(first_wave_over_at_the_carrier)
    first_wave = db.session.scalars(
        select(Delivery.status).where(
            Delivery.alert_id == alert_id,
            Delivery.person_id.in_(lost_ids),
            Delivery.step.in_((0, 1)),
        )
    ).all()
    assert set(first_wave) == {DeliveryStatus.QUEUED}
    assert len(first_wave) == 2 * len(lost)

    assert reconcile_until(system, lambda: db.session.get(Alert, alert_id).closed_at is not None)

    assert system.wait_for_end(alert_id)
    still_open = db.session.scalars(
        select(Delivery.id).where(Delivery.alert_id == alert_id, Delivery.status.in_(OPEN_STATUSES))
    ).all()
    assert still_open == []
    assert problems_by_member(alert_id, members, system.relay) == {}
    by_profile = {
        (m.profile.name, channel, status)
        for m in lost
        for channel, status in db.session.execute(
            select(Delivery.channel, Delivery.status).where(
                Delivery.alert_id == alert_id,
                Delivery.person_id == m.person_id,
                Delivery.status != DeliveryStatus.CANCELED,
            )
        )
    }
    assert by_profile == {
        (LOST_CONFIRMS.name, Channel.SMS, DeliveryStatus.DELIVERED),
        (LOST_CONFIRMS.name, Channel.CALL, DeliveryStatus.COMPLETED),
        (LOST_NEVER_ANSWERS.name, Channel.SMS, DeliveryStatus.DELIVERED),
        (LOST_NEVER_ANSWERS.name, Channel.CALL, DeliveryStatus.NO_ANSWER),
    }
    final = db.session.get(Alert, alert_id)
    assert (final.state, final.close_reason) == (AlertState.CLOSED, CloseReason.EXHAUSTED)


def sids_of(alert_id: int, person_ids: list[int], channel: Channel) -> list[str]:
    """Return the SIDs of the people's deliveries on `channel` (None: not sent yet)."""
    return list(
        db.session.scalars(
            select(Delivery.provider_sid).where(
                Delivery.alert_id == alert_id,
                Delivery.person_id.in_(person_ids),
                Delivery.channel == channel,
            )
        )
    )


def reconcile_until(system, condition, seconds: float = WAIT_SECONDS) -> bool:
    """Run the reconciler about once a second until `condition` holds or time is up."""
    last = [0.0]

    def reconciled_and_holds() -> bool:
        if time.monotonic() - last[0] >= 1.0:
            last[0] = time.monotonic()
            jobs.reconcile()
        return condition()

    return system.wait_until(reconciled_and_holds, seconds)
