"""Faults in the middle of a cascade: every member still gets each step once, none twice.

A worker SIGKILLed in the middle of a 1,000-member fan-out; Redis flushed between steps,
then the reconciler; every status callback delivered twice and out of order; two workers
racing on the same steps. After each, the database and the carrier agree that every
member had exactly the attempts the policy says: none twice, none missing (a step whose
worker died between its claim and the carrier's answer is failed "interrupted", never
sent twice).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select, update

from alerts import jobs
from alerts.cascade import OPEN_STATUSES
from alerts.delivery import schedule
from alerts.models import (
    AlertOrigin,
    CascadeStep,
    Channel,
    Charter,
    Delivery,
    DeliveryStatus,
    utcnow,
)
from alerts.raising import raise_alert
from core.extensions import db, redis_connection
from core.queue import QUEUE_NAMES
from simulator import store
from simulator.adapters.cli import run_carrier
from simulator.behaviour import Behaviour
from simulator.transport import HttpTransport, TransportResponse
from tests.cascade_harness import (
    ANSWER_1,
    SYSTEM_TEST,
    Profile,
    carrier_contacts,
    enrol,
    problems_by_member,
    the_plp,
)

pytestmark = SYSTEM_TEST

ONE_CALL = Charter(urgent_steps=(CascadeStep(0, "call", 1),))
SECOND_CALL, EMAIL = 6, 10
SHORT_CHARTER = Charter(
    urgent_steps=(
        CascadeStep(0, "sms"),
        CascadeStep(0, "call", 1),
        CascadeStep(SECOND_CALL / 60, "call", 1),
        CascadeStep(EMAIL / 60, "email"),
    )
)
# Room between the waves: Redis is flushed after the first and well before the second.
FLUSH_CHARTER = Charter(
    urgent_steps=(
        CascadeStep(0, "sms"),
        CascadeStep(0, "call", 1),
        CascadeStep(15 / 60, "call", 1),
        CascadeStep(18 / 60, "email"),
    )
)
TERMINAL_WORDS = frozenset({"completed", "busy", "no-answer", "failed", "delivered", "undelivered"})


def raise_for_plp(coordinator, text: str = "Cambriolage en cours, soyez vigilants.") -> int:
    """Raise (and so release) an urgent alert for the test PLP; return its id."""
    alert = raise_alert(author=coordinator, targets=[the_plp()], text=text, origin=AlertOrigin.WEB)
    db.session.commit()
    return alert.id


def count_deliveries(alert_id: int, *conditions) -> int:
    """Return how many deliveries of the alert match `conditions`, as committed."""
    return db.session.scalar(
        select(func.count(Delivery.id)).where(Delivery.alert_id == alert_id, *conditions)
    )


def statuses(alert_id: int) -> dict[str, int]:
    """Return how many deliveries of the alert are in each status (for failure messages)."""
    return dict(
        db.session.execute(
            select(Delivery.status, func.count(Delivery.id))
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.status)
        ).all()
    )


@pytest.mark.slow
def test_a_worker_killed_mid_fan_out_loses_no_member_and_calls_none_twice(app, system):
    """SIGKILL one of two workers during a 1,000-member fan-out: each member is called once."""
    profile = Profile(
        "busy", 1000, Behaviour("busy"), email=False, attempts={Channel.CALL: 1}, steps=(0,)
    )
    coordinator, members = enrol([profile], charter=ONE_CALL)
    # No carrier: the calls wait at the carrier, which records each one it was handed.
    victim, _survivor = system.start_workers(2)
    alert_id = raise_for_plp(coordinator)
    assert system.wait_until(
        lambda: count_deliveries(alert_id, Delivery.provider_sid.is_not(None)) >= 150
    )
    system.kill(victim)
    system.workers.remove(victim)
    system.start_workers(2, scheduler=False)
    queue = Queue("urgent", connection=redis_connection())
    # Drained: nothing queued, and no job started but the killed one.
    assert system.wait_until(
        lambda: queue.count == 0 and len(StartedJobRegistry(queue=queue).get_job_ids()) <= 1,
        seconds=240,
    ), statuses(alert_id)
    # Time passes: RQ gives up the killed job, the claim is old; the reconciler acts.
    later = time.time() + 3600
    for name in QUEUE_NAMES:
        StartedJobRegistry(name, connection=redis_connection()).cleanup(timestamp=later)
    db.session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.QUEUED, Delivery.provider_sid.is_(None))
        .values(updated_at=utcnow() - schedule.INTERRUPTED_AFTER - timedelta(seconds=1))
    )
    db.session.commit()
    jobs.reconcile()
    assert system.wait_until(
        lambda: (
            count_deliveries(alert_id, Delivery.status == DeliveryStatus.PLANNED) == 0
            and count_deliveries(
                alert_id, Delivery.status == DeliveryStatus.QUEUED, Delivery.provider_sid.is_(None)
            )
            == 0
        )
    )
    interrupted = count_deliveries(alert_id, Delivery.error_code == "interrupted")
    assert interrupted <= 1  # at most the step the killed worker was carrying
    contacts = carrier_contacts([m.phone for m in members] + [coordinator.phone])
    assert max(c[Channel.CALL] for c in contacts.values()) == 1  # nobody called twice
    called = sum(c[Channel.CALL] for c in contacts.values())
    with_sid = count_deliveries(alert_id, Delivery.provider_sid.is_not(None))
    assert with_sid == len(contacts) - interrupted  # none missing (the coordinator is one)
    assert with_sid <= called <= with_sid + interrupted


@pytest.mark.slow
def test_redis_flushed_mid_cascade_then_reconciled_misses_no_step(app, system):
    """Redis loses everything after the first calls; the reconciler brings the rest back."""
    profile = Profile(
        "never answers",
        20,
        Behaviour("no_answer"),
        attempts={Channel.SMS: 1, Channel.CALL: 2, Channel.EMAIL: 1},
        steps=(0, 1, 2, 3),
    )
    coordinator, members = enrol([profile], charter=FLUSH_CHARTER)
    system.start_carrier(8)
    system.start_workers(2)
    alert_id = raise_for_plp(coordinator)
    first_wave = (Delivery.step.in_((0, 1)), Delivery.status.in_(OPEN_STATUSES))
    assert system.wait_until(lambda: count_deliveries(alert_id, *first_wave) == 0)
    assert system.wait_until(lambda: store.pending_requests() == 0)
    before = carrier_contacts([m.phone for m in members] + [coordinator.phone])

    redis_connection().flushdb()  # a Redis restart that lost everything
    for member in members:  # the people are not in Redis: only the simulator's memory of them
        store.set_behaviour(member.phone, profile.behaviour)
    store.set_behaviour(coordinator.phone, ANSWER_1)
    later_steps = (Delivery.step.in_((2, 3)), Delivery.status == DeliveryStatus.PLANNED)
    assert count_deliveries(alert_id, *later_steps) == 2 * len(members)  # none ran yet
    assert jobs.reconcile() == 2 * len(members)  # the second calls and the e-mails

    assert system.wait_for_end(alert_id)
    after = carrier_contacts([m.phone for m in members])
    problems = {}
    for member in members:
        total = before[member.phone] + after[member.phone]
        if total != {Channel.SMS: 1, Channel.CALL: 2}:
            problems[member.phone] = dict(total)
    assert problems == {}
    # The database agrees (the carrier's counts checked above span the flush).
    db_problems = {
        name: issue
        for name, issue in problems_by_member(alert_id, members, system.relay).items()
        if not all(text.startswith("carrier took") for text in issue)
    }
    assert db_problems == {}


class UnrulyCallbacks:
    """A transport that delivers every status callback twice and out of order.

    Callbacks of a call or message are held until its final one; then the final one is
    posted first, the earlier ones after it in reverse order, and the whole lot again.
    The TwiML requests of a call pass through untouched.
    """

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport
        self.held: dict[str, list[tuple[str, dict]]] = {}
        self.posted = 0
        self._lock = threading.Lock()

    def post(self, url: str, params: dict[str, str]) -> TransportResponse:
        """Hold a status callback until its final one; pass anything else through."""
        if not urlsplit(url).path.endswith(("/ivr/status", "/sms/status")):
            return self.transport.post(url, params)
        sid = params.get("CallSid") or params["MessageSid"]
        word = params.get("CallStatus") or params["MessageStatus"]
        with self._lock:
            held = self.held.setdefault(sid, [])
            held.append((url, params))
            if word not in TERMINAL_WORDS:
                return TransportResponse(204, "", b"")
            batch = list(reversed(held)) * 2
            del self.held[sid]
        for batch_url, batch_params in batch:
            response = self.transport.post(batch_url, batch_params)
            assert response.status == 204, response.body
            self.posted += 1
        return TransportResponse(204, "", b"")

    def get(self, url: str) -> TransportResponse:
        """Pass a GET through."""
        return self.transport.get(url)


@pytest.mark.slow
def test_callbacks_twice_and_out_of_order_change_no_outcome(app, system):
    """Each status callback twice, the final one first: every member's outcome is unchanged."""
    profiles = [
        Profile(
            "confirms at once",
            10,
            ANSWER_1,
            attempts={Channel.SMS: 1, Channel.CALL: 1},
            confirmed_by="call",
        ),
        Profile(
            "voicemail",
            5,
            Behaviour("voicemail"),
            attempts={Channel.SMS: 1, Channel.CALL: 2, Channel.EMAIL: 1},
        ),
        Profile(
            "never answers",
            5,
            Behaviour("no_answer"),
            attempts={Channel.SMS: 1, Channel.CALL: 2, Channel.EMAIL: 1},
        ),
    ]
    profiles = [replace(p, steps=(0, 1, 2, 3)) for p in profiles]
    coordinator, members = enrol(profiles, charter=SHORT_CHARTER)
    transport = UnrulyCallbacks(HttpTransport(10, token=None))
    stop = threading.Event()

    def carrier_loop():
        with app.app_context():
            run_carrier(app, stop, workers=8, zero_latency=True, transport=transport)

    carrier = threading.Thread(target=carrier_loop)
    carrier.start()
    try:
        system.start_workers(2)
        alert_id = raise_for_plp(coordinator)
        assert system.wait_for_end(alert_id)
    finally:
        stop.set()
        carrier.join(30)
    assert transport.held == {}
    assert transport.posted >= 2 * 4 * len(members)  # each life's callbacks, twice
    assert problems_by_member(alert_id, members, system.relay) == {}
    voicemail = db.session.scalars(
        select(Delivery.answered_by).where(
            Delivery.alert_id == alert_id,
            Delivery.channel == Channel.CALL,
            Delivery.to_address.in_([m.phone for m in members if m.profile.name == "voicemail"]),
        )
    ).all()
    assert set(voicemail) == {"machine_end_beep"}


@pytest.mark.slow
def test_two_workers_racing_on_the_same_steps_send_each_once(app, system):
    """Every step enqueued three times for four workers: each member gets one SMS, one call."""
    profile = Profile(
        "confirms at once",
        40,
        ANSWER_1,
        attempts={Channel.SMS: 1, Channel.CALL: 1},
        confirmed_by="call",
        steps=(0, 1),
    )
    coordinator, members = enrol(
        [profile], charter=Charter(urgent_steps=(CascadeStep(0, "sms"), CascadeStep(0, "call")))
    )
    alert_id = raise_for_plp(coordinator)
    queue = Queue("urgent", connection=redis_connection())
    delivery_ids = db.session.scalars(
        select(Delivery.id).where(Delivery.alert_id == alert_id)
    ).all()
    for copy in (1, 2):
        for delivery_id in delivery_ids:
            queue.enqueue(jobs.run_cascade_step, delivery_id, job_id=f"race-{copy}-{delivery_id}")
    system.start_carrier(8)
    system.start_workers(4)
    assert system.wait_for_end(alert_id)
    assert problems_by_member(alert_id, members, system.relay) == {}
    copies = [
        queue.fetch_job(f"race-{n}-{delivery_id}") for n in (1, 2) for delivery_id in delivery_ids
    ]
    assert system.wait_until(lambda: all(job.get_status() == "finished" for job in copies)), [
        (job.id, job.get_status(), getattr(job.latest_result(), "exc_string", None))
        for job in copies
        if job.get_status() != "finished"
    ]
    results = [
        queue.fetch_job(f"race-{copy}-{delivery_id}").return_value()
        for copy in (1, 2)
        for delivery_id in delivery_ids
    ]
    assert None not in results  # every copy ran to its end, and found the step taken or done
