"""The coordinator's release call: placed with the release request; 1 releases, 2 rejects."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from alerts import jobs, notices
from alerts.delivery.provider import InvalidNumberError, RateLimitedError
from alerts.lifecycle import reject_alert, release_alert
from alerts.models import AlertOrigin, AlertState, AuditEvent, Delivery, utcnow
from alerts.raising import raise_alert
from alerts.wording import plp_names
from core.extensions import db
from core.urls import public_url
from ivr.menus import MAX_RETRIES
from prompts import text
from tests.ivr_support import gather_of, parse, post, query, said, verbs
from tests.lifecycle_support import audit_actions, queued_job_ids
from tests.twilio_payloads import answered_call_form, call_sid, call_status_form, signed_post
from tests.world import PEOPLE_OF_A

MESSAGE = "Cambriolage en cours rue de la Station"


@pytest.fixture
def awaiting(world):
    """An officer's alert for PLP A, awaiting a coordinator's decision."""
    alert = raise_alert(
        author=world.officer1, targets=[world.a], text=MESSAGE, origin=AlertOrigin.SMS
    )
    db.session.commit()
    assert alert.state == AlertState.AWAITING_RELEASE
    return alert


def answer_url(alert, person) -> str:
    return public_url("ivr.release_call", alert_id=alert.id, person_id=person.id)


def gather_url(alert, person, tries: int = 0) -> str:
    return public_url("ivr.release_gather", alert_id=alert.id, person_id=person.id, tries=tries)


def answer(client, alert, person, **extra):
    """The release call to `person` answered: POST its answer URL, parse the TwiML."""
    return parse(post(client, answer_url(alert, person), answered_call_form(person.phone, **extra)))


def press(client, alert, person, digits: str | None, tries: int = 0, **extra):
    form = answered_call_form(person.phone, **extra)
    if digits is not None:
        form["Digits"] = digits
    return parse(post(client, gather_url(alert, person, tries), form))


def decision_words(alert, members: int, language: str = "fr") -> list[str]:
    return [
        text(
            "voice.release_intro",
            language,
            exercise="",
            plp=plp_names(alert),
            ref=" ".join(alert.reference),
        ),
        MESSAGE,
        text("voice.release_reach", language, members=members),
        text("voice.release_prompt", language),
    ]


# --- Placing the calls ----------------------------------------------------------------------


def test_notify_coordinators_enqueues_one_release_call_per_coordinator(app, world, awaiting):
    """Beside the SMS, one call job per coordinator (not the steering committee)."""
    jobs.notify_coordinators(awaiting.id)
    ids = queued_job_ids("urgent")
    assert f"release-call-{awaiting.id}-{world.coord_a.id}" in ids
    assert f"release-call-{awaiting.id}-{world.steering_a.id}" not in ids
    assert f"release-request-{awaiting.id}-{world.coord_a.id}" in ids


def test_a_coordinator_who_opted_out_of_calls_is_only_texted(app, world, awaiting):
    """call_opt_out_at set: no release call job, the SMS still goes."""
    world.coord_a.call_opt_out_at = utcnow()
    db.session.commit()
    jobs.notify_coordinators(awaiting.id)
    ids = queued_job_ids("urgent")
    assert f"release-call-{awaiting.id}-{world.coord_a.id}" not in ids
    assert f"release-request-{awaiting.id}-{world.coord_a.id}" in ids


def test_the_job_places_one_call_to_the_release_url_and_no_delivery(app, world, awaiting, provider):
    """The call goes to the coordinator with the release URLs; audited with its SID; no Delivery."""
    assert notices.place_release_call(awaiting.id, world.coord_a.id) == "placed"
    [call] = provider.calls
    assert call.to == world.coord_a.phone
    assert call.answer_url == answer_url(awaiting, world.coord_a)
    assert call.status_callback_url == public_url("ivr.release_call_status")
    assert call.machine_detection is True
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "alert.release_call")
    ).one()
    assert event.details["call_sid"] == provider.sent[0][1].sid
    assert event.details["person_id"] == world.coord_a.id
    assert db.session.scalar(select(func.count(Delivery.id))) == 0


@pytest.mark.parametrize("state", [AlertState.REJECTED, AlertState.CLOSED])
def test_the_job_calls_nobody_once_decided(app, world, awaiting, provider, state):
    """Decided (or closed) before the job ran: moot, no call."""
    awaiting.state = state
    db.session.commit()
    assert notices.place_release_call(awaiting.id, world.coord_a.id) == "moot"
    assert provider.calls == []


def test_a_refusal_that_may_pass_is_retried_later(app, world, awaiting, provider):
    """A rate limit: a later try is scheduled; nothing audited as failed."""
    provider.fail_next(RateLimitedError("busy", code="20429"))
    assert notices.place_release_call(awaiting.id, world.coord_a.id) == "retrying"
    retries = [i for i in queued_job_ids("urgent") if i.startswith(f"release-call-{awaiting.id}-")]
    assert len(retries) == 1 and retries[0].split("-")[4] == "2"
    assert "alert.release_call_failed" not in audit_actions(awaiting)


def test_a_final_refusal_is_audited(app, world, awaiting, provider):
    """An invalid number: failed at once, with an audit event."""
    provider.fail_next(InvalidNumberError("invalid", code="21211"))
    assert notices.place_release_call(awaiting.id, world.coord_a.id) == "failed"
    assert "alert.release_call_failed" in audit_actions(awaiting)


# --- The call -------------------------------------------------------------------------------


def test_unsigned_requests_are_refused(client, world, awaiting):
    """Without the signature: 403, nothing decided."""
    response = client.post(
        f"/ivr/release/{awaiting.id}/{world.coord_a.id}/gather?tries=0", data={"Digits": "1"}
    )
    assert response.status_code == 403
    db.session.refresh(awaiting)
    assert awaiting.state == AlertState.AWAITING_RELEASE


def test_the_coordinator_hears_the_message_the_plp_and_the_member_count(client, world, awaiting):
    """Answered by a person: intro (PLP, ref), message, members reached, the question."""
    root = answer(client, awaiting, world.coord_a, AnsweredBy="human")
    gather = gather_of(root)
    assert said(gather) == decision_words(awaiting, PEOPLE_OF_A)
    assert gather.get("numDigits") == "1"
    assert query(gather.get("action")) == {"tries": "0"}


def test_a_dutch_coordinator_hears_dutch(client, world):
    """PLP B's coordinator speaks Dutch: the call is in Dutch."""
    alert = raise_alert(
        author=world.officer1, targets=[world.b], text=MESSAGE, origin=AlertOrigin.SMS
    )
    db.session.commit()
    root = answer(client, alert, world.coord_b)
    first = gather_of(root).find("Say")
    assert first.text.startswith(
        text("voice.release_intro", "nl", exercise="", plp="x", ref="y")[:20]
    )
    assert first.get("language") == "nl-NL"


def test_an_answering_machine_hears_how_to_answer(client, world, awaiting):
    """Voicemail: the machine version (ref, how to reply), no menu."""
    root = answer(client, awaiting, world.coord_a, AnsweredBy="machine_end_beep")
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text(
        "voice.release_machine",
        "fr",
        exercise="",
        plp=plp_names(awaiting),
        ref=" ".join(awaiting.reference),
    )


def test_pressing_1_releases_the_alert(client, world, awaiting):
    """1: released by this coordinator; the members count is said; goodbye."""
    root = press(client, awaiting, world.coord_a, "1")
    assert verbs(root) == ["Say", "Say", "Hangup"]
    db.session.expire_all()
    assert awaiting.state == AlertState.DELIVERING
    assert awaiting.released_by_id == world.coord_a.id
    assert said(root) == [
        text("voice.released", "fr", members=PEOPLE_OF_A),
        text("voice.goodbye", "fr"),
    ]


def test_pressing_2_rejects_the_alert(client, world, awaiting):
    """2: rejected by this coordinator; goodbye."""
    root = press(client, awaiting, world.coord_a, "2")
    db.session.expire_all()
    assert awaiting.state == AlertState.REJECTED
    assert said(root) == [text("voice.rejected", "fr"), text("voice.goodbye", "fr")]


def test_pressing_0_repeats_everything(client, world, awaiting):
    """0: the whole message again, the count of tries up by one."""
    gather = gather_of(press(client, awaiting, world.coord_a, "0"))
    assert said(gather) == decision_words(awaiting, PEOPLE_OF_A)
    assert query(gather.get("action")) == {"tries": "1"}


@pytest.mark.parametrize("digits", ["*", "9", "3", "12"])
def test_another_key_says_so_and_asks_again(client, world, awaiting, digits):
    """*, 9, 3, 12: "not a valid choice", then the message and question again; nothing decided."""
    gather = gather_of(press(client, awaiting, world.coord_a, digits))
    assert said(gather) == [
        text("voice.invalid_choice", "fr"),
        *decision_words(awaiting, PEOPLE_OF_A),
    ]
    db.session.expire_all()
    assert awaiting.state == AlertState.AWAITING_RELEASE


@pytest.mark.parametrize("extra", [{}, {"FinishedOnKey": "#"}])
def test_silence_or_a_lone_hash_asks_the_question_again(client, world, awaiting, extra):
    """No key (timeout), or # alone (empty input): only the question again."""
    gather = gather_of(press(client, awaiting, world.coord_a, "", **extra))
    assert said(gather) == [text("voice.release_prompt", "fr")]
    assert query(gather.get("action")) == {"tries": "1"}


def test_after_the_last_try_the_call_ends_undecided(client, world, awaiting):
    """Silence at the last try: no-input goodbye; another wrong key: goodbye."""
    root = press(client, awaiting, world.coord_a, None, tries=MAX_RETRIES)
    assert (verbs(root), said(root)) == (["Say", "Hangup"], [text("voice.no_input", "fr")])
    root = press(client, awaiting, world.coord_a, "0", tries=MAX_RETRIES)
    assert said(root) == [text("voice.goodbye", "fr")]
    db.session.expire_all()
    assert awaiting.state == AlertState.AWAITING_RELEASE


def test_the_first_decision_wins_and_the_later_one_hears_it(client, world, awaiting):
    """Released by the steering member first: the coordinator's 2 is refused and told."""
    release_alert(awaiting, by=world.steering_a)
    db.session.commit()
    root = press(client, awaiting, world.coord_a, "2")
    assert said(root) == [text("voice.was_released", "fr"), text("voice.goodbye", "fr")]
    db.session.expire_all()
    assert awaiting.released_by_id == world.steering_a.id


def test_a_call_answered_after_a_rejection_says_so(client, world, awaiting):
    """Rejected by SMS meanwhile: answering the call says it was rejected, no menu."""
    reject_alert(awaiting, by=world.steering_a)
    db.session.commit()
    root = answer(client, awaiting, world.coord_a)
    assert verbs(root) == ["Say", "Say", "Hangup"]
    assert said(root)[0] == text("voice.was_rejected", "fr")


def test_a_replayed_1_hears_the_release_again(client, world, awaiting):
    """Twilio retries the request after the release: told it is sent, nothing twice."""
    press(client, awaiting, world.coord_a, "1")
    root = press(client, awaiting, world.coord_a, "1")
    assert said(root)[0] == text("voice.was_released", "fr")
    transitions = [t.to_state for t in awaiting.transitions]
    assert transitions.count(AlertState.RELEASED) == 1


def test_a_person_who_no_longer_decides_is_refused(client, world, awaiting):
    """The URL of a person who is not a decider of the PLP: refused, nothing decided."""
    root = press(client, awaiting, world.member_a, "1")
    assert said(root)[0] == text("voice.not_allowed", "fr")
    db.session.expire_all()
    assert awaiting.state == AlertState.AWAITING_RELEASE


@pytest.mark.parametrize("route", ["", "/gather?tries=0"])
def test_unknown_rows_get_a_goodbye(client, route):
    """An alert or person that does not exist: 200, goodbye, hang up."""
    root = parse(
        signed_post(client, f"/ivr/release/99999/99999{route}", answered_call_form(Digits="1"))
    )
    assert verbs(root) == ["Say", "Hangup"]


def test_status_callbacks_are_taken_and_change_nothing(client, world, awaiting):
    """The release call's status callbacks answer 204; no delivery is touched or created."""
    response = signed_post(
        client,
        "/ivr/release/status",
        call_status_form(call_sid(), "completed", to=world.coord_a.phone),
    )
    assert response.status_code == 204
    assert db.session.scalar(select(func.count(Delivery.id))) == 0
