"""The SMS grammar through /sms/incoming: signed requests, every command and refusal.

The world (tests/world.py): zone Z1 with PLP-A and PLP-B, zone Z2 with PLP-C;
officer1 of Z1 (PIN 4829), coord_a and steering_a of PLP-A, coord_b of PLP-B (PIN 7351),
members.
Each reply is read from the TwiML: one <Message> at most, compared with the prompt it
must be, in the sender's language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from xml.etree import ElementTree

import pytest
import redis as redis_lib
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertState,
    AuditEvent,
    Delivery,
    PinFailure,
    utcnow,
)
from alerts.people.lockout import LOCK, MAX_FAILURES, locked_until
from alerts.sms import inbound as sms_inbound
from alerts.sms.handlers import LOCAL_TIME
from alerts.sms.inbound import FLOOD_LIMIT
from alerts.sms.message import MAX_SEGMENTS, fit
from alerts.sms.segments import is_gsm7, sms_length
from alerts.tracking import alert_counts
from core.extensions import db
from core.webhooks import signing_token
from prompts import CATALOG, LANGUAGES, text
from tests.lifecycle_support import queued_job_ids
from tests.twilio_payloads import message_sid, signed_post, sms_form
from tests.world import OFFICER_PIN, PEOPLE_OF_A

STRANGER = "+32475000999"


def replies(response) -> list[str]:
    """Return the bodies of the TwiML <Message>s of a 200 answer."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response"
    assert all(child.tag == "Message" for child in root)
    return [message.text or "" for message in root]


def texted(client, from_: str, body: str, **extra) -> str | None:
    """Text `body` from `from_`; return the app's answer (None: no <Message>)."""
    answers = replies(signed_post(client, "/sms/incoming", sms_form(from_, body, **extra)))
    assert len(answers) <= 1
    if answers:
        assert sms_length(answers[0]).segments <= MAX_SEGMENTS
    return answers[0] if answers else None


def audits(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def alerts() -> list[Alert]:
    db.session.expire_all()
    return list(db.session.scalars(select(Alert).order_by(Alert.id)))


def officer_alert(client, world, body="ALERTE 4829 PLP-A Cambriolage en cours rue du Parc"):
    """Have officer1 raise an alert for PLP-A by SMS; return it."""
    reply = texted(client, world.officer1.phone, body)
    alert = alerts()[-1]
    assert reply == text(
        "sms.cmd.raised", "fr", ref=alert.reference, plps="PLP-A", members=PEOPLE_OF_A
    )
    return alert


def released_alert(client, world) -> Alert:
    """An officer's alert for PLP-A released by coord_a by SMS."""
    alert = officer_alert(client, world)
    texted(client, world.coord_a.phone, f"OUI {alert.reference}")
    db.session.refresh(alert)
    assert alert.state == AlertState.DELIVERING
    return alert


# --- The officer's ALERTE ---------------------------------------------------------------------


def test_officer_alert_awaits_release_and_the_reply_gives_ref_plps_members(client, world):
    """ALERTE <pin> <plp> <text>: an alert awaiting release; the coordinators are notified."""
    alert = officer_alert(client, world)
    assert alert.state == AlertState.AWAITING_RELEASE
    assert alert.origin == AlertOrigin.SMS
    assert alert.author_id == world.officer1.id
    assert alert.text == "Cambriolage en cours rue du Parc"
    assert [t.partnership.code for t in alert.targets] == ["PLP-A"]
    assert f"notify-coordinators-{alert.id}" in queued_job_ids("urgent")
    (event,) = audits("sms.command")
    assert event.details["command"] == "alert"
    assert event.details["outcome"] == "ok"
    assert event.actor_id == world.officer1.id
    assert OFFICER_PIN not in str(event.details)


def test_officer_alert_to_a_zone_and_a_list_counts_each_member_once(client, world):
    """A zone code stands for its PLPs; a member of two PLPs counts once."""
    reply = texted(client, world.officer1.phone, "alarm 4829 z1 Vol de voiture")
    alert = alerts()[-1]
    assert sorted(t.partnership.code for t in alert.targets) == ["PLP-A", "PLP-B"]
    # A: 6 people; B: coord_b, both_ab (already counted), member_b.
    assert reply == text(
        "sms.cmd.raised", "fr", ref=alert.reference, plps="PLP-A, PLP-B", members=8
    )
    texted(client, world.officer1.phone, "ALERTE 4829 PLP-A , plp-b Deux PLP")
    assert sorted(t.partnership.code for t in alerts()[-1].targets) == ["PLP-A", "PLP-B"]


def test_officer_reply_is_in_the_officers_language(client, world):
    """An officer registered in Dutch gets the Dutch reply."""
    world.officer1.language = "nl"
    db.session.commit()
    reply = texted(client, world.officer1.phone, "ALARM 4829 PLP-B inbraak")
    alert = alerts()[-1]
    assert reply == text("sms.cmd.raised", "nl", ref=alert.reference, plps="PLP-B", members=3)


@pytest.mark.parametrize(
    ("body", "key", "values"),
    [
        ("ALERTE 4829 PLP-X Cambriolage", "sms.cmd.unknown_target", {"code": "PLP-X"}),
        ("ALERTE 4829 PLP-A,NOPE Cambriolage", "sms.cmd.unknown_target", {"code": "NOPE"}),
        ("ALERTE 4829 PLP-C Cambriolage", "sms.cmd.outside_zone", {"code": "PLP-C", "zone": "Z1"}),
        ("ALERTE 4829 Z2 Cambriolage", "sms.cmd.outside_zone", {"code": "Z2", "zone": "Z1"}),
        ("ALERTE 4829 PLP-A", "sms.cmd.empty_message", {}),
        ("ALERTE 4829", "sms.cmd.no_target", {}),
        ("ALERTE 4829 Cambriolage: rue X", "sms.cmd.no_target", {}),
    ],
)
def test_officer_refusals_say_why_and_raise_nothing(client, world, body, key, values):
    """Unknown target, outside the zone, no target, empty message: refused, saying why."""
    assert texted(client, world.officer1.phone, body) == text(key, "fr", **values)
    assert alerts() == []
    (event,) = audits("sms.refused")
    assert event.details["command"] == "alert"
    assert event.details["outcome"] == key.rsplit(".", 1)[1]


def test_officer_alert_too_long_is_refused(client, world):
    """A text over the lifecycle's 1,000 characters is refused with the limit."""
    reply = texted(client, world.officer1.phone, "ALERTE 4829 PLP-A " + "x" * 1001)
    assert reply == text("sms.cmd.text_too_long", "fr", max=1000)
    assert alerts() == []


def test_alert_without_pin_gives_the_format_and_counts_no_failure(client, world):
    """ALERTE without a PIN answers with the format; no PIN failure is recorded."""
    reply = texted(client, world.officer1.phone, "ALERTE PLP-A Cambriolage")
    assert reply == fit(
        f"{text('sms.cmd.pin_missing', 'fr')} {text('sms.cmd.usage_officer', 'fr')}"
    )
    assert db.session.scalar(select(func.count()).select_from(PinFailure)) == 0


@pytest.mark.parametrize("sender", ["stranger", "member_a", "landline_a"])
def test_alert_from_someone_not_allowed_gets_the_generic_refusal(client, world, sender):
    """An unknown number or a member: the same refusal, no detail, no PIN checked."""
    phone = STRANGER if sender == "stranger" else world.people[sender].phone
    reply = texted(client, phone, "ALERTE 4829 PLP-A Cambriolage")
    assert reply == text("sms.cmd.not_allowed", "fr")
    assert alerts() == []
    assert db.session.scalar(select(func.count()).select_from(PinFailure)) == 0
    (event,) = audits("sms.refused")
    assert event.details["outcome"] == "not_allowed"


def test_unknown_sender_refusal_does_not_depend_on_the_text(client, world):
    """Whether the target exists or the PIN is right, a stranger learns nothing."""
    answers = {
        texted(client, STRANGER, body)
        for body in ("ALERTE 4829 PLP-A x", "ALERTE 0000 NOPE x", "ALERTE 4829 PLP-C x")
    }
    assert answers == {text("sms.cmd.not_allowed", "fr")}


def test_wrong_pin_gives_attempts_left_then_locks_the_number(client, world):
    """Each wrong PIN tells the attempts left; the fifth locks; the right PIN then fails too."""
    phone = world.officer1.phone
    for left in range(MAX_FAILURES - 1, 0, -1):
        reply = texted(client, phone, "ALERTE 1111 PLP-A Cambriolage")
        assert reply == text("sms.cmd.pin_wrong", "fr", left=left)
    reply = texted(client, phone, "ALERTE 1111 PLP-A Cambriolage")
    (locked,) = audits("pin.locked")
    until = locked.details["until"]
    local = datetime.fromisoformat(until).astimezone(LOCAL_TIME).strftime("%H:%M")
    assert reply == text("sms.cmd.pin_locked", "fr", until=local)
    assert datetime.fromisoformat(until) - utcnow() <= LOCK
    # Locked: the right PIN is refused too, and nothing is raised.
    assert texted(client, phone, "ALERTE 4829 PLP-A Cambriolage") == reply
    assert alerts() == []
    outcomes = [e.details["outcome"] for e in audits("sms.refused")]
    assert outcomes == ["pin_wrong"] * 4 + ["pin_locked"] * 2


def test_lock_is_shared_with_the_phone_path(client, world):
    """Failures recorded by the phone path count for the SMS path (one PinFailure table)."""
    now = utcnow()
    db.session.add_all(
        PinFailure(phone=world.officer1.phone, channel="call", at=now - timedelta(seconds=s))
        for s in range(MAX_FAILURES)
    )
    db.session.commit()
    until = locked_until(world.officer1).astimezone(LOCAL_TIME).strftime("%H:%M")
    reply = texted(client, world.officer1.phone, "ALERTE 4829 PLP-A Cambriolage")
    assert reply == text("sms.cmd.pin_locked", "fr", until=until)
    assert alerts() == []


# --- The coordinator ----------------------------------------------------------------------


def test_coordinator_alert_is_for_their_plp_and_released_at_once(client, world):
    """ALERTE <pin> <text> from a coordinator: an alert for their PLP, already delivering."""
    reply = texted(client, world.coord_a.phone, "ALERTE 7351 Suspect: homme en veste rouge")
    alert = alerts()[-1]
    assert alert.state == AlertState.DELIVERING
    assert alert.text == "Suspect: homme en veste rouge"
    assert [t.partnership.code for t in alert.targets] == ["PLP-A"]
    assert alert.released_by_id == world.coord_a.id
    assert reply == text(
        "sms.cmd.raised_released", "fr", ref=alert.reference, plps="PLP-A", members=PEOPLE_OF_A
    )


def test_coordinator_alert_whose_first_word_looks_like_a_code_keeps_the_whole_text(client, world):
    """A first word that is not one of their PLPs is part of the message."""
    texted(client, world.coord_a.phone, "ALERTE 7351 ATTENTION cambriolage rue X")
    assert alerts()[-1].text == "ATTENTION cambriolage rue X"
    texted(client, world.coord_a.phone, "ALERTE 7351 PLP-A Cambriolage rue Y")
    assert alerts()[-1].text == "Cambriolage rue Y"


def test_coordinator_alert_with_wrong_pin_is_refused(client, world):
    """The coordinator's PIN is checked as the officer's."""
    reply = texted(client, world.coord_a.phone, "ALERTE 1111 Cambriolage")
    assert reply == text("sms.cmd.pin_wrong", "fr", left=MAX_FAILURES - 1)
    assert alerts() == []


def test_yes_releases_and_the_others_are_told_first_answer_wins(client, world):
    """OUI <ref>: released; the others get a notice; a later NON is told it was released."""
    alert = officer_alert(client, world)
    reply = texted(client, world.coord_a.phone, f"oui {alert.reference.lower()}")
    db.session.refresh(alert)
    assert alert.state == AlertState.DELIVERING
    assert alert.released_by_id == world.coord_a.id
    assert reply == text("sms.cmd.released", "fr", ref=alert.reference, members=PEOPLE_OF_A)
    jobs = queued_job_ids("urgent")
    for person in (world.steering_a, world.officer1):
        assert f"notice-{alert.id}-released-{person.id}" in jobs
    assert f"notice-{alert.id}-released-{world.coord_a.id}" not in jobs

    late = texted(client, world.steering_a.phone, f"NON {alert.reference}")
    assert late == text(
        "sms.cmd.already_released", "fr", ref=alert.reference, name=world.coord_a.name
    )
    db.session.refresh(alert)
    assert alert.state == AlertState.DELIVERING


def test_a_late_yes_from_a_coordinator_who_is_a_member_also_confirms(client, world):
    """The second coordinator's OUI: told it was released, and their yes confirms it."""
    alert = released_alert(client, world)
    reply = texted(client, world.steering_a.phone, f"OUI {alert.reference}")
    assert reply == (
        text("sms.cmd.already_released", "fr", ref=alert.reference, name=world.coord_a.name)
        + " "
        + text("sms.cmd.confirmed", "fr", ref=alert.reference)
    )
    ack = db.session.scalar(
        select(Acknowledgement).where(Acknowledgement.person_id == world.steering_a.id)
    )
    assert ack.channel == AckChannel.SMS


def test_no_rejects_and_a_later_yes_is_told(client, world):
    """NON <ref>: rejected (in Dutch for a Dutch coordinator); a later OUI is refused."""
    texted(client, world.officer1.phone, "ALERTE 4829 PLP-B inbraak")
    alert = alerts()[-1]
    reply = texted(client, world.coord_b.phone, f"NEE {alert.reference}")
    assert reply == text("sms.cmd.rejected", "nl", ref=alert.reference)
    db.session.refresh(alert)
    assert alert.state == AlertState.REJECTED
    assert f"notice-{alert.id}-rejected-{world.officer1.id}" in queued_job_ids("urgent")
    again = texted(client, world.coord_b.phone, f"JA {alert.reference}")
    assert again == text(
        "sms.cmd.already_rejected", "nl", ref=alert.reference, name=world.coord_b.name
    )


def test_no_from_a_member_or_of_another_plp_is_refused(client, world):
    """Only a coordinator or steering member of the alert's PLP decides."""
    alert = officer_alert(client, world)
    for person in (world.member_a, world.coord_b):
        reply = texted(client, person.phone, f"NON {alert.reference}")
        assert reply == text("sms.cmd.not_decider", person.language, ref=alert.reference)
    db.session.refresh(alert)
    assert alert.state == AlertState.AWAITING_RELEASE


def test_yes_and_no_with_unknown_or_missing_ref(client, world):
    """An unknown reference is named; NON without one asks for it."""
    assert texted(client, world.coord_a.phone, "OUI KKKK") == text(
        "sms.cmd.unknown_ref", "fr", ref="KKKK"
    )
    assert texted(client, world.coord_a.phone, "NON") == text(
        "sms.cmd.ref_missing", "fr", word="NON"
    )
    assert texted(client, world.coord_b.phone, "nee") == text(
        "sms.cmd.ref_missing", "nl", word="NEE"
    )


def test_yes_after_expiry_is_refused(client, world):
    """An alert past its expiry cannot be released."""
    alert = officer_alert(client, world)
    alert.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    reply = texted(client, world.coord_a.phone, f"OUI {alert.reference}")
    assert reply == text("sms.expired", "fr", ref=alert.reference)
    db.session.refresh(alert)
    assert alert.state == AlertState.AWAITING_RELEASE


def test_a_coordinator_confirming_an_alert_awaiting_release_is_told_how_to_release(client, world):
    """1 <ref> from a decider while the alert awaits release: the reply says OUI/NON <ref>."""
    alert = officer_alert(client, world)
    reply = texted(client, world.coord_a.phone, f"1 {alert.reference}")
    assert reply == text("sms.cmd.awaiting_release", "fr", ref=alert.reference)


def test_a_bare_yes_from_a_coordinator_says_how_to_release(client, world):
    """OUI without the reference, with an alert awaiting their decision: the reply names it."""
    alert = officer_alert(client, world)
    reply = texted(client, world.coord_a.phone, "Oui")
    assert reply == text("sms.cmd.awaiting_release", "fr", ref=alert.reference)
    db.session.refresh(alert)
    assert alert.state == AlertState.AWAITING_RELEASE


# --- Members: 1 / OK / OUI ---------------------------------------------------------------------


def test_member_confirms_the_latest_running_alert(client, world):
    """1 confirms the alert sent to the member; a repeat is thanked, nothing counted twice."""
    alert = released_alert(client, world)
    assert texted(client, world.member_a.phone, "1") == text(
        "sms.cmd.confirmed", "fr", ref=alert.reference
    )
    assert texted(client, world.member_a.phone, "ok") == text(
        "sms.cmd.already_confirmed", "fr", ref=alert.reference
    )
    acks = list(
        db.session.scalars(
            select(Acknowledgement).where(Acknowledgement.person_id == world.member_a.id)
        )
    )
    assert [(a.alert_id, a.channel) for a in acks] == [(alert.id, AckChannel.SMS)]
    planned = db.session.scalars(
        select(Delivery.status).where(
            Delivery.person_id == world.member_a.id, Delivery.alert_id == alert.id
        )
    ).all()
    assert "planned" not in planned  # the cascade stopped for them


@pytest.mark.parametrize("word", ["OUI", "Yes", "ja", "OK", "1"])
def test_member_confirms_with_every_affirmative_word_and_a_ref(client, world, word):
    """OUI/YES/JA/OK/1 followed by the reference confirm that alert."""
    alert = released_alert(client, world)
    reply = texted(client, world.both_ab.phone, f"{word} {alert.reference}")
    assert reply == text("sms.cmd.confirmed", "nl", ref=alert.reference)


def test_confirmation_with_nothing_running_says_so(client, world):
    """1 with no alert being delivered to the member."""
    assert texted(client, world.member_a.phone, "1") == text("sms.cmd.nothing_running", "fr")
    officer_alert(client, world)  # awaiting release: not sent to members yet
    assert texted(client, world.member_a.phone, "1") == text("sms.cmd.nothing_running", "fr")


def test_confirmation_refusals(client, world):
    """An alert not sent to the member, not sent yet, over; an unknown sender."""
    alert = released_alert(client, world)
    assert texted(client, world.member_c.phone, f"1 {alert.reference}") == text(
        "sms.cmd.not_addressed", "fr", ref=alert.reference
    )
    waiting = officer_alert(client, world, "ALERTE 4829 PLP-A Deuxième alerte")
    assert texted(client, world.member_a.phone, f"1 {waiting.reference}") == text(
        "sms.cmd.not_sent_yet", "fr", ref=waiting.reference
    )
    alert.state = AlertState.CLOSED
    alert.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert texted(client, world.member_a.phone, f"1 {alert.reference}") == text(
        "sms.cmd.alert_over", "fr", ref=alert.reference
    )
    assert texted(client, STRANGER, "1") == text("sms.cmd.not_allowed", "fr")


# --- STATUT ---------------------------------------------------------------------------------


def test_status_gives_the_counts_in_one_segment(client, world):
    """STATUT <ref> for the officer and the coordinator: the counts of alert_counts."""
    alert = released_alert(client, world)
    texted(client, world.member_a.phone, "1")
    counts = alert_counts(alert.id)
    assert counts.confirmed == 1
    for person in (world.officer1, world.coord_a):
        reply = texted(client, person.phone, f"statut {alert.reference}")
        assert reply == text(
            "sms.cmd.status",
            "fr",
            ref=alert.reference,
            state=text("sms.cmd.state.delivering", "fr"),
            confirmed=counts.confirmed,
            reached=counts.reached,
            pending=counts.pending,
            unreachable=counts.unreachable,
            members=counts.members,
        )
        assert sms_length(reply).segments == 1


def test_status_refusals(client, world):
    """A member, a stranger, an unknown or missing reference."""
    alert = officer_alert(client, world)
    assert texted(client, world.member_a.phone, f"STATUT {alert.reference}") == text(
        "sms.cmd.not_allowed", "fr"
    )
    assert texted(client, STRANGER, f"STATUS {alert.reference}") == text(
        "sms.cmd.not_allowed", "fr"
    )
    assert texted(client, world.officer1.phone, "STATUT KKKK") == text(
        "sms.cmd.unknown_ref", "fr", ref="KKKK"
    )
    assert texted(client, world.officer1.phone, "STATUT") == text(
        "sms.cmd.ref_missing", "fr", word="STATUT"
    )


def test_status_tells_nobody_whether_a_reference_exists(client, world):
    """A member gets the same refusal for a real and a made-up reference; so does an
    officer of another zone, who hears of a real alert of zone Z1 as of an unknown one."""
    alert = officer_alert(client, world)
    refused = text("sms.cmd.not_allowed", "fr")
    assert texted(client, world.member_a.phone, f"STATUT {alert.reference}") == refused
    assert texted(client, world.member_a.phone, "STATUT KKKK") == refused
    assert texted(client, world.officer2.phone, f"STATUT {alert.reference}") == text(
        "sms.cmd.unknown_ref", "fr", ref=alert.reference
    )
    assert texted(client, world.officer2.phone, "STATUT KKKK") == text(
        "sms.cmd.unknown_ref", "fr", ref="KKKK"
    )


# --- STOP / START / HELP / anything else --------------------------------------------------------


def test_stop_with_the_carriers_opt_out_marks_the_person_and_sends_no_second_reply(client, world):
    """STOP (OptOutType=STOP): SMS opt-out recorded, calls untouched, no reply (Twilio's)."""
    assert texted(client, world.member_a.phone, "STOP", OptOutType="STOP") is None
    db.session.refresh(world.member_a)
    assert world.member_a.sms_opt_out_at is not None
    assert world.member_a.call_opt_out_at is None
    assert texted(client, world.member_a.phone, "START", OptOutType="START") is None
    db.session.refresh(world.member_a)
    assert world.member_a.sms_opt_out_at is None
    assert [e.details["command"] for e in audits("sms.command")] == ["stop", "start"]


def test_opt_out_words_the_carrier_did_not_handle_are_answered(client, world):
    """ARRÊT (no OptOutType): the app records it and answers, in the person's language."""
    assert texted(client, world.member_b.phone, "Arrêt") == text("sms.cmd.opted_out", "nl")
    db.session.refresh(world.member_b)
    assert world.member_b.sms_opt_out_at is not None
    assert texted(client, world.member_b.phone, "start") == text("sms.cmd.opted_in", "nl")
    db.session.refresh(world.member_b)
    assert world.member_b.sms_opt_out_at is None


def test_a_yes_the_carrier_took_as_opt_in_confirms_and_opts_in(client, world):
    """Twilio's default opt-in list has YES: the person takes SMS again, and YES confirms."""
    alert = released_alert(client, world)
    world.member_a.sms_opt_out_at = utcnow()
    db.session.commit()
    reply = texted(client, world.member_a.phone, "YES", OptOutType="START")
    assert reply == text("sms.cmd.confirmed", "fr", ref=alert.reference)
    db.session.refresh(world.member_a)
    assert world.member_a.sms_opt_out_at is None


@pytest.mark.parametrize(
    ("who", "body", "expected"),
    [
        ("member_a", "AIDE", ("sms.cmd.usage_member", "fr")),
        ("member_b", "HELP", ("sms.cmd.usage_member", "nl")),
        ("coord_a", "aide", ("sms.cmd.usage_coordinator", "fr")),
        ("officer1", "Hilfe", ("sms.cmd.usage_officer", "fr")),
        ("stranger", "HULP", ("sms.cmd.usage_member", "nl")),
        ("stranger", "HILFE", ("sms.cmd.usage_member", "de")),
        ("stranger", "Bonjour", ("sms.cmd.usage_member", "fr")),
        ("member_a", "2", ("sms.cmd.usage_member", "fr")),
        ("coord_a", "Qui est de garde ?", ("sms.cmd.usage_coordinator", "fr")),
    ],
)
def test_help_and_unknown_text_get_the_usage_of_the_senders_role(
    client, world, who, body, expected
):
    """The usage fits the sender (officer, coordinator, member) and their language."""
    phone = STRANGER if who == "stranger" else world.people[who].phone
    opt_out_type = "HELP" if body == "HELP" else None
    assert texted(client, phone, body, OptOutType=opt_out_type) == text(*expected)


def test_unknown_text_is_audited(client, world):
    """Anything else is in the audit log as a refusal."""
    texted(client, world.member_a.phone, "Bonjour")
    (event,) = audits("sms.refused")
    assert (event.details["command"], event.details["outcome"]) == ("unknown", "unknown")
    assert event.actor_id == world.member_a.id


# --- Safety: signature, dedup, flood, malformed -------------------------------------------------


def test_unsigned_request_is_refused_and_changes_nothing(client, world):
    """No valid X-Twilio-Signature: 403, no alert, no audit."""
    form = sms_form(world.officer1.phone, "ALERTE 4829 PLP-A Cambriolage")
    assert client.post("/sms/incoming", data=form).status_code == 403
    bad = signed_post(client, "/sms/incoming", form, token="not-the-token")
    assert bad.status_code == 403
    assert alerts() == []
    assert audits("sms.command") == []


def test_a_retried_message_is_handled_once(client, world):
    """The same MessageSid twice: one alert, one audit; the retry gets no reply."""
    sid = message_sid()
    body = "ALERTE 4829 PLP-A Cambriolage"
    first = texted(client, world.officer1.phone, body, sid=sid)
    assert first is not None
    assert texted(client, world.officer1.phone, body, sid=sid) is None
    assert len(alerts()) == 1
    assert len(audits("sms.command")) == 1


def test_a_retried_confirmation_counts_once(client, world):
    """A retried "1": one acknowledgement, no second reply."""
    released_alert(client, world)
    sid = message_sid()
    assert texted(client, world.member_a.phone, "1", sid=sid) is not None
    assert texted(client, world.member_a.phone, "1", sid=sid) is None
    count = db.session.scalar(select(func.count()).select_from(Acknowledgement))
    assert count == 1


def test_a_flood_is_ignored_with_one_warning(client, world, monkeypatch):
    """Beyond 20 messages in a minute: one warning, then silence; others are not affected."""
    monkeypatch.setattr(sms_inbound, "_clock", lambda: 1_800_000_000.0)
    phone = world.member_a.phone
    usage = text("sms.cmd.usage_member", "fr")
    for _ in range(FLOOD_LIMIT):
        assert texted(client, phone, "Bonjour") == usage
    assert texted(client, phone, "Bonjour") == text("sms.cmd.flood", "fr")
    for _ in range(3):
        assert texted(client, phone, "Bonjour") is None
    assert len(audits("sms.flood")) == 1
    assert len(audits("sms.refused")) == FLOOD_LIMIT
    assert texted(client, world.member_b.phone, "Bonjour") == text("sms.cmd.usage_member", "nl")
    # The next minute, the sender is heard again.
    monkeypatch.setattr(sms_inbound, "_clock", lambda: 1_800_000_060.0)
    assert texted(client, phone, "Bonjour") == usage


def test_a_flooding_officer_cannot_raise_an_alert(client, world, monkeypatch):
    """An ignored message does nothing, even a valid ALERTE."""
    monkeypatch.setattr(sms_inbound, "_clock", lambda: 1_800_000_000.0)
    for _ in range(FLOOD_LIMIT + 1):
        texted(client, world.officer1.phone, "INFO")
    assert texted(client, world.officer1.phone, "ALERTE 4829 PLP-A Cambriolage") is None
    assert alerts() == []


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_a_form_without_its_identity_is_a_400(client, world, missing):
    """Without MessageSid or From: 400 with the reason, nothing done."""
    form = sms_form(world.officer1.phone, "ALERTE 4829 PLP-A Cambriolage")
    del form[missing]
    form.pop("SmsMessageSid", None)
    response = signed_post(client, "/sms/incoming", form)
    assert response.status_code == 400
    assert missing.encode() in response.data
    assert alerts() == []


def test_a_missing_body_is_an_empty_text(client, world):
    """No Body field: the usage reply."""
    answers = replies(signed_post(client, "/sms/incoming", sms_form(world.member_a.phone, None)))
    assert answers == [text("sms.cmd.usage_member", "fr")]


def test_a_huge_body_is_answered_within_two_segments(client, world):
    """A megabyte of text is not a server error; the reply is at most two segments."""
    form = sms_form(world.officer1.phone, "ALERTE 4829 PLP-A " + "é" * 1_000_000)
    response = signed_post(client, "/sms/incoming", form)
    # Read whole: Werkzeug applies no memory limit to a URL-encoded form, and the app
    # sets no MAX_CONTENT_LENGTH. The view answers that the text is too long.
    assert client.application.config["MAX_CONTENT_LENGTH"] is None
    assert replies(response) == [text("sms.cmd.text_too_long", "fr", max=1000)]
    assert alerts() == []
    # A smaller one is cut at Twilio's 1,600 characters too: still too long.
    form = sms_form(world.officer1.phone, "ALERTE 4829 PLP-A " + "é" * 5000)
    assert replies(signed_post(client, "/sms/incoming", form)) == [
        text("sms.cmd.text_too_long", "fr", max=1000)
    ]


def test_a_nul_in_the_text_is_dropped(client, world):
    """Control characters (PostgreSQL cannot store NUL) are removed from the text."""
    texted(client, world.officer1.phone, "ALERTE 4829 PLP-A Cambrio\x00lage\x07 rue X")
    assert alerts()[-1].text == "Cambriolage rue X"


def test_an_unexpected_failure_is_answered_with_an_apology(client, world, monkeypatch):
    """A bug in a command is a short apology in the sender's language, not a 500."""

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(sms_inbound, "_dispatch", broken)
    reply = texted(client, world.member_b.phone, "1")
    assert reply == text("sms.cmd.apology", "nl")
    assert audits("sms.command") == []


def test_the_flood_limit_fails_open_when_redis_is_down(client, world, monkeypatch):
    """Without Redis the count is unknown: the message is handled (an alert matters more)."""

    def down():
        raise redis_lib.ConnectionError("down")

    monkeypatch.setattr(sms_inbound, "redis_connection", down)
    reply = texted(client, world.officer1.phone, "ALERTE 4829 PLP-A Cambriolage")
    alert = alerts()[-1]
    assert reply == text(
        "sms.cmd.raised", "fr", ref=alert.reference, plps="PLP-A", members=PEOPLE_OF_A
    )


def test_stop_from_an_unknown_number_is_audited_without_reply(client, world):
    """The carrier's STOP from a number not in the roster: nothing to mark, no second reply."""
    assert texted(client, STRANGER, "STOP", OptOutType="STOP") is None
    (event,) = audits("sms.command")
    assert (event.actor, event.details["command"]) == (f"sms:{STRANGER}", "stop")


def test_every_sms_command_prompt_is_plain_gsm7():
    """The replies' own words stay in the GSM 7-bit alphabet: 160 characters a segment."""
    outside = {
        (language, key): [c for c in template if not is_gsm7(c)]
        for language in LANGUAGES
        for key, template in CATALOG[language].items()
        if key.startswith("sms.cmd.") and not is_gsm7(template)
    }
    assert outside == {}


def test_fit_cuts_a_long_reply_to_two_segments():
    """fit() keeps a short text and cuts a long one, GSM-7 or not, with "..."."""
    assert fit("Merci.") == "Merci."
    for char in ("a", "é", "€", "ç", "🚨"):
        cut = fit(char * 2000)
        assert sms_length(cut).segments == 2
        assert cut.endswith("...")
    assert sms_length(fit("a" * 400, 1)).segments == 1


# --- Property: no input is a server error --------------------------------------------------------

FIELDS = ["MessageSid", "SmsSid", "From", "To", "Body", "OptOutType", "AccountSid", "NumMedia"]
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def identifies_a_message(form: dict[str, str]) -> bool:
    """Whether a form has Twilio's message SID and sender: at most 64 printable characters."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    return all(0 < len(value) <= 64 and value.isprintable() for value in (sid, sender))


@PROPERTY
@given(
    form=st.dictionaries(
        st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)),
        st.text(max_size=400),
        max_size=8,
    )
)
@example(form={"MessageSid": "SM" + "0" * 32, "From": STRANGER, "Body": "Bonjour"})
@example(form={"MessageSid": "SM" + "0" * 32, "Body": "Bonjour"})
def test_no_form_is_a_server_error(client, world, form):
    """Any signed form (fields missing, any Unicode): 200 if it says who sent what, else 400."""
    response = signed_post(client, "/sms/incoming", form)
    if identifies_a_message(form):
        assert len(replies(response)) <= 1  # a 200 with TwiML
    else:
        assert response.status_code == 400, response.data
        assert response.get_data(as_text=True).startswith("Malformed webhook: ")


@PROPERTY
@given(
    sender=st.sampled_from(["officer1", "coord_a", "member_a", "member_b", "stranger"]),
    body=st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda word, rest: f"{word} {rest}",
            st.sampled_from(["ALERTE 4829", "ALERTE 7351", "OUI", "NON", "1", "STATUT", "STOP"]),
            st.text(max_size=200),
        ),
    ),
)
def test_no_text_is_a_server_error(client, world, redis_conn, sender, body):
    """Any text from any sender is answered 200 with at most one reply of two segments."""
    redis_conn.flushdb()  # the flood limit is not what this tests
    phone = STRANGER if sender == "stranger" else world.people[sender].phone
    response = signed_post(client, "/sms/incoming", sms_form(phone, body))
    answers = replies(response)
    assert len(answers) <= 1
    assert all(sms_length(answer).segments <= MAX_SEGMENTS for answer in answers)


@PROPERTY
@given(
    raw=st.binary(max_size=2000),
    content_type=st.sampled_from(
        ["application/octet-stream", "application/x-www-form-urlencoded", "text/plain", ""]
    ),
)
def test_no_raw_body_is_a_server_error(client, world, raw, content_type):
    """A body that is not a form (signed as an empty form) is never a 5xx."""

    settings_ = client.application.extensions["settings"]
    url = settings_.public_base_url + "/sms/incoming"
    signature = RequestValidator(signing_token(settings_)).compute_signature(url, {})
    response = client.post(
        "/sms/incoming",
        data=raw,
        headers={"X-Twilio-Signature": signature, "Content-Type": content_type},
    )
    assert response.status_code < 500, response.data
