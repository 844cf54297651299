"""End to end: one urgent alert to 200 members, carried by real workers and the simulator.

Real Redis, real `flask worker` processes (RQ's scheduler runs the delayed steps), the
real carrier process (zero latency) calling the app's real webhooks over HTTP, and a real
SMTP relay. The charter keeps the default shape (SMS and a call at once, a call to the
second number, another call, then an e-mail) with seconds instead of minutes. Each member
has a behaviour; at the end every member's state and attempts per channel are exactly
what the policy says, both in the database and at the carrier and the relay.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

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
    Person,
    PhoneType,
)
from alerts.raising import raise_alert
from core.extensions import db
from simulator.behaviour import Behaviour
from tests.cascade_harness import (
    ANSWER_1,
    SYSTEM_TEST,
    Profile,
    enrol,
    problems_by_member,
    received_by_member,
    the_plp,
)

pytestmark = SYSTEM_TEST

# Seconds after the release: the default charter's 0, 3, 8 and 15 minutes, compressed.
SECOND_CALL, THIRD_CALL, EMAIL = 8, 13, 18
FAST_CHARTER = Charter(
    urgent_steps=(
        CascadeStep(0, "sms"),
        CascadeStep(0, "call", 1),
        CascadeStep(SECOND_CALL / 60, "call", 2),
        CascadeStep(THIRD_CALL / 60, "call", 1),
        CascadeStep(EMAIL / 60, "email"),
    )
)


PROFILES = (
    Profile(
        "confirms at once",
        60,
        ANSWER_1,
        attempts={Channel.SMS: 1, Channel.CALL: 1},
        confirmed_by="call",
    ),
    Profile(
        "hears it twice, then confirms",
        5,
        Behaviour("answer", keys=("0", "1")),
        attempts={Channel.SMS: 1, Channel.CALL: 1},
        confirmed_by="call",
    ),
    Profile(
        "confirms on the second call",
        25,
        Behaviour("no_answer"),
        phone2=ANSWER_1,
        attempts={Channel.SMS: 1, Channel.CALL: 2},
        confirmed_by="call",
    ),
    Profile(
        "never answers",
        25,
        Behaviour("no_answer"),
        attempts={Channel.SMS: 1, Channel.CALL: 3, Channel.EMAIL: 1},
    ),
    Profile(
        "voicemail",
        20,
        Behaviour("voicemail", answer_after=5),
        attempts={Channel.SMS: 1, Channel.CALL: 3, Channel.EMAIL: 1},
    ),
    Profile(
        "landline",
        15,
        Behaviour("landline", keys=("1",)),
        phone_type=PhoneType.FIXED,
        attempts={Channel.CALL: 1},
        confirmed_by="call",
        steps=(1, 2, 3, 4),
    ),
    # The roster says mobile; the carrier refuses the SMS (21614): failed, never retried.
    Profile(
        "landline registered as a mobile",
        5,
        Behaviour("landline", keys=("1",)),
        attempts={Channel.SMS: 1, Channel.CALL: 1},
        carrier={Channel.CALL: 1},
        confirmed_by="call",
    ),
    Profile(
        "opted out of SMS",
        10,
        ANSWER_1,
        opted_out=("sms",),
        attempts={Channel.CALL: 1},
        confirmed_by="call",
        steps=(1, 2, 3, 4),
    ),
    Profile(
        "sent STOP to the carrier",
        5,
        ANSWER_1,
        stopped_at_carrier=True,
        attempts={Channel.SMS: 1, Channel.CALL: 1},
        carrier={Channel.CALL: 1},
        confirmed_by="call",
    ),
    Profile("opted out of everything", 5, ANSWER_1, opted_out=("sms", "call", "email"), steps=(0,)),
    # Refused by the carrier when placed (21211): every step fails at once; e-mail works.
    Profile(
        "invalid number",
        10,
        Behaviour("invalid"),
        attempts={Channel.SMS: 1, Channel.CALL: 3, Channel.EMAIL: 1},
        carrier={},
    ),
    Profile(
        "e-mail only",
        15,
        ANSWER_1,
        opted_out=("sms", "call"),
        attempts={Channel.EMAIL: 1},
        steps=(4,),
    ),
)
MEMBERS = sum(profile.count for profile in PROFILES)


@pytest.mark.slow
def test_an_alert_to_200_members_reaches_each_exactly_as_the_policy_says(app, system):
    """200 members with mixed behaviours: each ends confirmed or not, with the expected attempts."""
    coordinator, members = enrol(PROFILES, charter=FAST_CHARTER)
    system.start_carrier()
    system.start_workers(4)
    alert = raise_alert(
        author=coordinator,
        targets=[the_plp()],
        text="Cambriolage en cours rue de la Station, soyez vigilants.",
        origin=AlertOrigin.SMS,
    )
    db.session.commit()
    alert_id = alert.id
    assert alert.state == AlertState.DELIVERING

    assert system.wait_for_end(alert_id), "the alert did not end"

    assert problems_by_member(alert_id, members, system.relay) == {}
    received = received_by_member(alert_id)
    assert received[coordinator.id].confirmed_by == "call"
    assert len(received) == MEMBERS + 1
    db.session.rollback()
    final = db.session.get(Alert, alert_id)
    assert (final.state, final.close_reason) == (AlertState.CLOSED, CloseReason.EXHAUSTED)


def test_what_the_carrier_learns_is_written_back_to_the_roster(app, system):
    """A refused SMS teaches the roster: 21614 marks the number fixed, 21610 an SMS opt-out."""
    profiles = [
        p
        for p in PROFILES
        if p.name in ("landline registered as a mobile", "sent STOP to the carrier")
    ]
    profiles = [replace(p, count=2) for p in profiles]
    coordinator, members = enrol(
        profiles, charter=Charter(urgent_steps=(CascadeStep(0, "sms"), CascadeStep(0, "call", 1)))
    )
    system.start_carrier(4)
    system.start_workers(1)
    alert = raise_alert(
        author=coordinator,
        targets=[the_plp()],
        text="Exercice de joignabilité.",
        origin=AlertOrigin.WEB,
        exercise=True,
    )
    db.session.commit()
    assert system.wait_for_end(alert.id)
    for member in members:
        person = db.session.get(Person, member.person_id)
        sms = db.session.scalars(
            select(Delivery).where(
                Delivery.person_id == member.person_id, Delivery.channel == Channel.SMS
            )
        ).one()
        assert sms.status == DeliveryStatus.FAILED
        if member.profile.stopped_at_carrier:
            assert (sms.error_code, person.sms_opt_out_at is not None) == ("21610", True)
            assert person.phone_type == PhoneType.MOBILE
        else:
            assert (sms.error_code, person.phone_type) == ("21614", PhoneType.FIXED)
            assert person.sms_opt_out_at is None
