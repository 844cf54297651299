"""End to end by SMS: the officer's ALERTE, the coordinator's OUI, the members' 1, STATUT.

Everything goes through the running system of tests/cascade_harness.py: the texts are
typed on simulated phones (`simulator.carrier.inbound_sms`), the carrier process posts
them, signed, to the app's /sms/incoming over HTTP, real workers send the notices and
the alert, and the members' phones reply "1" to the alert's SMS on their own. What each
person was answered is read from the carrier (the SMS it carried back), the rest from
the database.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertState,
    CascadeStep,
    Charter,
    Membership,
    Officer,
    Partnership,
    Person,
    PhoneType,
    Role,
    Zone,
)
from alerts.people.pins import hash_pin
from alerts.tracking import alert_counts
from core.extensions import db
from prompts import text
from simulator import carrier, store
from simulator.behaviour import Behaviour
from tests.cascade_harness import SYSTEM_TEST, answers_to, texts_to

pytestmark = SYSTEM_TEST

OFFICER, OFFICER_PIN = "+32470990001", "4829"
COORDINATOR, COORDINATOR_PIN = "+32470990002", "7351"
MEMBERS = 8
# A member who never takes the call but answers the alert's SMS with "1".
REPLIES_1 = Behaviour("no_answer", sms_reply="1", reply_after=1)
CHARTER = Charter(urgent_steps=(CascadeStep(0, "sms"), CascadeStep(0, "call", 1)))


def enrol() -> list[Person]:
    """Create the zone, the PLP, its people and the officer; commit; return the members."""
    zone = Zone(code="ZP5344", name="Zone Test")
    plp = Partnership(
        code="PLP-SMS", name="Quartier SMS", zone=zone, language="fr", charter_json={}
    )
    plp.charter = CHARTER
    officer = Person(
        name="Agent Dupont",
        phone=OFFICER,
        phone_type=PhoneType.MOBILE,
        language="fr",
        pin_hash=hash_pin(OFFICER_PIN),
    )
    coordinator = Person(
        name="Coordinatrice Claes",
        phone=COORDINATOR,
        phone_type=PhoneType.MOBILE,
        language="fr",
        pin_hash=hash_pin(COORDINATOR_PIN),
    )
    members = [
        Person(
            name=f"Membre {n}", phone=f"+32471{n:06d}", phone_type=PhoneType.MOBILE, language="fr"
        )
        for n in range(1, MEMBERS + 1)
    ]
    db.session.add_all([zone, plp, officer, coordinator, *members])
    db.session.add(Officer(person=officer, zone=zone))
    db.session.add(Membership(person=coordinator, partnership=plp, role=Role.COORDINATOR))
    db.session.add_all(Membership(person=m, partnership=plp) for m in members)
    db.session.commit()
    # The coordinator decides by SMS only: the release request's call rings out.
    store.set_behaviour(COORDINATOR, Behaviour("no_answer"))
    store.set_behaviour(OFFICER, Behaviour("answer"))
    for member in members:
        store.set_behaviour(member.phone, REPLIES_1)
    return members


def test_officer_sms_coordinator_yes_members_confirm_and_status_matches(app, system):
    """ALERTE by SMS, OUI by SMS, every member replies 1, STATUT gives the database's counts."""
    members = enrol()
    coordinator = db.session.scalars(select(Person).where(Person.phone == COORDINATOR)).one()
    system.start_carrier(8)
    system.start_workers(2)

    # The officer texts the alert.
    carrier.inbound_sms(OFFICER, "ALERTE 4829 PLP-SMS Cambriolage en cours rue du Parc")
    assert system.wait_until(lambda: db.session.scalar(select(func.count(Alert.id))) == 1)
    alert = db.session.scalars(select(Alert)).one()
    ref, alert_id = alert.reference, alert.id
    assert alert.state == AlertState.AWAITING_RELEASE
    raised = text("sms.cmd.raised", "fr", ref=ref, plps="PLP-SMS", members=MEMBERS + 1)
    assert system.wait_until(lambda: answers_to(OFFICER) == [raised])

    # The coordinator is asked (the worker's notice), and answers OUI <ref>.
    assert system.wait_until(lambda: any(ref in body for body in texts_to(COORDINATOR)))
    carrier.inbound_sms(COORDINATOR, f"oui {ref}")
    released = text("sms.cmd.released", "fr", ref=ref, members=MEMBERS + 1)
    assert system.wait_until(lambda: answers_to(COORDINATOR) == [released])

    # Every member replies 1 to the alert's SMS on their own; the coordinator texts 1.
    carrier.inbound_sms(COORDINATOR, "1")
    everyone = [*members, coordinator]
    confirmed = text("sms.cmd.confirmed", "fr", ref=ref)
    # The replies may come after the cascade is over (closed "exhausted": still confirmable).
    assert system.wait_until(
        lambda: all(answers_to(person.phone)[-1:] == [confirmed] for person in everyone)
    ), {person.phone: answers_to(person.phone) for person in everyone}
    assert system.wait_for_end(alert_id), "the alert did not end"
    acks = dict(
        db.session.execute(
            select(Acknowledgement.person_id, Acknowledgement.channel).where(
                Acknowledgement.alert_id == alert_id
            )
        ).all()
    )
    assert {acks.get(person.id) for person in everyone} == {AckChannel.SMS}
    assert answers_to(COORDINATOR) == [released, confirmed]
    for member in members:
        assert answers_to(member.phone) == [confirmed]
        assert len(texts_to(member.phone)) == 1  # the alert, once
    final = db.session.get(Alert, alert_id)
    assert final.state == AlertState.CLOSED

    # STATUT from the officer: the counts the database gives.
    carrier.inbound_sms(OFFICER, f"STATUT {ref}")
    assert system.wait_until(lambda: len(answers_to(OFFICER)) == 2)
    status = answers_to(OFFICER)[1]
    counts = alert_counts(alert_id)
    assert counts.confirmed == MEMBERS + 1
    numbers = [int(n) for n in re.findall(r"\d+", status.split(":", 1)[1])]
    assert numbers == [
        counts.confirmed,
        counts.reached,
        counts.pending,
        counts.unreachable,
        counts.members,
    ]
    assert status == text(
        "sms.cmd.status",
        "fr",
        ref=ref,
        state=text("sms.cmd.state.closed", "fr"),
        confirmed=counts.confirmed,
        reached=counts.reached,
        pending=counts.pending,
        unreachable=counts.unreachable,
        members=counts.members,
    )
    # The officer was told of the release by the lifecycle's notice.
    assert system.wait_until(
        lambda: any(ref in body and "Claes" in body for body in texts_to(OFFICER))
    )
