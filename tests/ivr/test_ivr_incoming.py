"""Calls to the PLP number: by caller ID, PIN and lockout, every menu's keys, on parsed TwiML."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from alerts.lifecycle import cancel_alert, release_alert
from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertState,
    AuditEvent,
    PinFailure,
    Recording,
    RecordingStatus,
    Urgency,
    utcnow,
)
from alerts.people.lockout import MAX_FAILURES
from alerts.raising import raise_alert
from alerts.wording import plp_names
from core.extensions import db
from core.urls import public_url
from ivr import inbound, twiml, voice
from ivr.menus import MAX_RETRIES
from prompts import text
from tests.ivr_support import gather_of, parse, post, query, said, verbs, words
from tests.twilio_payloads import call_sid, voice_form
from tests.world import DECIDER_PIN, OFFICER_PIN, PEOPLE_OF_A

MESSAGE = "Cambriolage en cours rue de la Station"
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123"


def running_alert(world, text_: str = MESSAGE, **fields) -> Alert:
    """An alert for PLP A raised and released at once by its coordinator."""
    alert = raise_alert(
        author=world.coord_a, targets=[world.a], text=text_, origin=AlertOrigin.SMS, **fields
    )
    db.session.commit()
    assert alert.state == AlertState.DELIVERING
    return alert


def awaiting_alert(world, text_: str = MESSAGE) -> Alert:
    """An officer's alert for PLP A, awaiting release."""
    alert = raise_alert(
        author=world.officer1, targets=[world.a], text=text_, origin=AlertOrigin.SMS
    )
    db.session.commit()
    return alert


def dial(client, caller: str, sid: str | None = None):
    """Call the PLP number from `caller`; return the parsed answer."""
    return parse(post(client, "/ivr/incoming", voice_form(caller, sid)))


def step(client, person, url: str, digits: str | None = None, sid: str = "", **extra):
    """POST the next request of a call from `person` to the action `url`."""
    form = voice_form(person.phone, sid or None, **extra)
    if digits is not None:
        form["Digits"] = digits
    return parse(post(client, url, form))


def logged_in(client, person, pin: str = DECIDER_PIN) -> str:
    """Give the right PIN on a new call of `person`; return the call's SID."""
    sid = call_sid()
    dial(client, person.phone, sid)
    step(client, person, public_url("ivr.incoming_pin", tries=0), pin, sid)
    return sid


def menu_url(tries: int = 0) -> str:
    return public_url("ivr.incoming_menu", tries=tries)


def fr(key: str, **values) -> str:
    return text(key, "fr", **values)


def spelled(alert: Alert) -> str:
    return " ".join(alert.reference)


# --- Who calls --------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["+32470123999", "anonymous", "", "+3222999999"])
def test_a_stranger_hears_a_polite_message_that_says_nothing(client, world, caller):
    """Unknown, withheld or unparsable caller ID: the polite message in fr and nl, hang up."""
    running_alert(world)
    root = dial(client, caller)
    assert verbs(root) == ["Say", "Say", "Hangup"]
    assert said(root) == [text("voice.stranger", "fr"), text("voice.stranger", "nl")]
    assert [say.get("language") for say in root.iter("Say")] == ["fr-FR", "nl-NL"]
    assert all(world.a.name not in w and MESSAGE not in w for w in said(root))


@pytest.mark.parametrize("who", ["coord_a", "steering_a", "officer1"])
def test_a_coordinator_steering_member_or_officer_is_asked_for_a_pin(client, world, who):
    """The PIN is gathered until #, no fixed length, sent to the PIN URL."""
    person = getattr(world, who)
    gather = gather_of(dial(client, person.phone))
    assert said(gather) == [fr("voice.pin_prompt")]
    assert gather.get("finishOnKey") == "#"
    assert gather.get("numDigits") is None
    assert gather.get("timeout") == str(twiml.PIN_TIMEOUT_SECONDS)
    assert query(gather.get("action")) == {"tries": "0"}


def test_a_coordinator_without_a_pin_hears_what_members_hear(client, world):
    """No PIN set yet: no PIN prompt (it could only fail); the running alerts, as a member."""
    world.coord_a.pin_hash = None
    db.session.commit()
    alert = running_alert(world)
    gather = gather_of(dial(client, world.coord_a.phone))
    assert MESSAGE in said(gather)
    assert query(gather.get("action")) == {"alert": str(alert.id), "tries": "0"}


def test_the_caller_is_recognised_in_any_notation(client, world):
    """The caller ID in another notation of the same number is still the coordinator."""
    national = "0" + world.coord_a.phone.removeprefix("+32")
    assert said(gather_of(dial(client, national))) == [fr("voice.pin_prompt")]


# --- PIN and lockout ---------------------------------------------------------------------------


def test_a_wrong_pin_says_the_attempts_left_and_asks_again(client, world):
    """Wrong PIN: the attempts left, the PIN asked again; a failure recorded for the phone path."""
    gather = gather_of(step(client, world.coord_a, public_url("ivr.incoming_pin", tries=0), "1111"))
    assert said(gather) == [
        f"{fr('voice.pin_wrong', left=MAX_FAILURES - 1)} {fr('voice.pin_prompt')}"
    ]
    [failure] = db.session.scalars(select(PinFailure)).all()
    assert (failure.phone, failure.channel) == (world.coord_a.phone, "call")


def test_five_wrong_pins_lock_the_number_by_phone_and_sms(client, world):
    """The 5th wrong PIN locks: said, hang up, audited; calling again is refused at once."""
    url = public_url("ivr.incoming_pin", tries=0)
    for _ in range(MAX_FAILURES - 1):
        step(client, world.coord_a, url, "1111")
    root = step(client, world.coord_a, url, "1111")
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == fr("voice.pin_locked", minutes=15)
    assert (
        db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "pin.locked")
        )
        == 1
    )
    again = dial(client, world.coord_a.phone)
    assert verbs(again) == ["Say", "Hangup"]
    assert again[0].text.startswith(fr("voice.pin_locked", minutes=15)[:20])
    # Locked: even the right PIN is refused.
    assert verbs(step(client, world.coord_a, url, DECIDER_PIN)) == ["Say", "Hangup"]


def test_pin_failures_by_sms_count_for_the_phone(client, world):
    """Failures recorded by the SMS path lock the phone path too (one lockout)."""
    for _ in range(MAX_FAILURES):
        db.session.add(PinFailure(phone=world.coord_a.phone, channel="sms", at=utcnow()))
    db.session.commit()
    root = dial(client, world.coord_a.phone)
    assert verbs(root) == ["Say", "Hangup"]


@pytest.mark.parametrize("extra", [{}, {"FinishedOnKey": "#"}])
def test_no_pin_asks_again_then_says_goodbye(client, world, extra):
    """Silence (or # alone) at the PIN: asked again; after the last try, goodbye; no failure."""
    gather = gather_of(
        step(client, world.coord_a, public_url("ivr.incoming_pin", tries=0), "", **extra)
    )
    assert query(gather.get("action")) == {"tries": "1"}
    root = step(client, world.coord_a, public_url("ivr.incoming_pin", tries=MAX_RETRIES))
    assert said(root) == [fr("voice.no_input")]
    assert db.session.scalars(select(PinFailure)).all() == []


def test_the_right_pin_opens_the_coordinators_menu(client, world):
    """Right PIN: the menu of three choices, one key, to the menu URL."""
    root = step(client, world.coord_a, public_url("ivr.incoming_pin", tries=0), DECIDER_PIN)
    gather = gather_of(root)
    assert said(gather) == [fr("voice.coordinator_menu")]
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == menu_url(0)


@pytest.mark.parametrize(
    "path",
    ["menu?tries=0", "recorded", "review?rec=1&tries=0", "urgency?rec=1&tries=0", "pending"],
)
def test_the_menus_need_the_pin_of_this_call(client, world, path):
    """Without the PIN given on this call (another SID), every menu says goodbye, does nothing."""
    logged_in(client, world.coord_a)
    root = step(client, world.coord_a, f"/ivr/incoming/{path}", "1", sid=call_sid())
    assert (verbs(root), said(root)) == (["Say", "Hangup"], [fr("voice.goodbye")])


def test_a_member_cannot_reach_the_coordinators_menu(client, world):
    """A member posting to the menu URL (with any SID): goodbye."""
    root = step(client, world.member_a, menu_url(), "1", sid=call_sid())
    assert said(root) == [fr("voice.goodbye")]


def test_an_officer_hears_the_counts_of_their_latest_alerts(client, world):
    """Officer, right PIN: the counts of their alerts, newest first, then goodbye."""
    first, second = awaiting_alert(world, "Un"), awaiting_alert(world, "Deux")
    root = step(client, world.officer1, public_url("ivr.incoming_pin", tries=0), OFFICER_PIN)
    assert verbs(root) == ["Say", "Pause", "Say", "Pause", "Say", "Hangup"]
    zeros = {"confirmed": 0, "reached": 0, "pending": 0, "unreachable": 0}
    assert said(root) == [
        fr("voice.counts", ref=spelled(second), **zeros),
        fr("voice.counts", ref=spelled(first), **zeros),
        fr("voice.goodbye"),
    ]


def test_an_officer_without_alerts_hears_there_is_none(client, world):
    """No alert yet: said so, goodbye."""
    root = step(client, world.officer1, public_url("ivr.incoming_pin", tries=0), OFFICER_PIN)
    assert said(root) == [fr("voice.counts_none"), fr("voice.goodbye")]


# --- The coordinator's menu --------------------------------------------------------------------


def test_menu_1_asks_for_the_message_and_records_it(client, world):
    """1: the record prompt, <Record> up to 120 s ended by #, then the redirect for silence."""
    sid = logged_in(client, world.coord_a)
    root = step(client, world.coord_a, menu_url(), "1", sid)
    assert verbs(root) == ["Say", "Record", "Redirect"]
    assert root[0].text == fr("voice.record_prompt")
    record = root[1]
    assert record.get("maxLength") == "120"
    assert record.get("finishOnKey") == "#"
    assert record.get("action") == public_url("ivr.incoming_recorded")
    assert root[2].text == public_url("ivr.incoming_recorded", silence=1)


def test_menu_2_presents_the_first_alert_awaiting_release(client, world):
    """2: the oldest alert awaiting release, its members count and the question."""
    alert = awaiting_alert(world)
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, menu_url(), "2", sid))
    assert said(gather)[1:] == [
        MESSAGE,
        fr("voice.release_reach", members=PEOPLE_OF_A),
        fr("voice.release_prompt"),
    ]
    assert query(gather.get("action")) == {"alert": str(alert.id), "tries": "0"}


def test_menu_2_without_alerts_says_so_and_returns_to_the_menu(client, world):
    """2 with nothing awaiting: said so, then the menu again."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, menu_url(), "2", sid))
    assert said(gather) == [fr("voice.pending_none"), fr("voice.coordinator_menu")]


def test_menu_3_says_the_counts_of_the_latest_alert(client, world):
    """3: the latest alert's counts, then the menu."""
    alert = running_alert(world)
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, menu_url(), "3", sid))
    spoken = said(gather)
    assert spoken[0].startswith(f"Message {spelled(alert)}.")
    assert spoken[-1] == fr("voice.coordinator_menu")


def test_menu_3_without_any_alert(client, world):
    """3 with no alert ever: said so, then the menu."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, menu_url(), "3", sid))
    assert said(gather) == [fr("voice.counts_none"), fr("voice.coordinator_menu")]


@pytest.mark.parametrize("digits", ["*", "0", "9", "12"])
def test_menu_another_key_is_not_valid(client, world, digits):
    """*, 0, 9, 12: "not valid", the menu again with one more try counted."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, menu_url(), digits, sid))
    assert said(gather) == [fr("voice.invalid_choice"), fr("voice.coordinator_menu")]
    assert gather.get("action") == menu_url(1)


@pytest.mark.parametrize("extra", [{}, {"FinishedOnKey": "#"}])
def test_menu_silence_repeats_it_then_goodbye(client, world, extra):
    """No key (or # alone): the menu again; at the last try, the no-input goodbye."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, menu_url(), "", sid, **extra))
    assert said(gather) == [fr("voice.coordinator_menu")]
    root = step(client, world.coord_a, menu_url(MAX_RETRIES), None, sid)
    assert said(root) == [fr("voice.no_input")]
    root = step(client, world.coord_a, menu_url(MAX_RETRIES), "7", sid)
    assert said(root) == [fr("voice.goodbye")]


# --- Recording a message -----------------------------------------------------------------------


def recorded(client, world, sid, *, duration="4", sid_suffix="0123"):
    """POST the Record's action as Twilio does after a recording."""
    form = {
        "RecordingUrl": RECORDING_URL.removesuffix("0123") + sid_suffix,
        "RecordingSid": "RE" + sid_suffix.rjust(32, "0"),
        "RecordingDuration": duration,
    }
    return step(client, world.coord_a, public_url("ivr.incoming_recorded"), None, sid, **form)


def the_recording() -> Recording:
    return db.session.scalars(select(Recording)).one()


def ready(recording: Recording) -> None:
    """Mark the recording downloaded, as the download job does."""
    recording.status = RecordingStatus.READY
    recording.path = f"recordings/{recording.token}.wav"
    db.session.commit()


def review_url(recording_id: int, tries: int = 0) -> str:
    return public_url("ivr.incoming_review", rec=recording_id, tries=tries)


def urgency_url(recording_id: int, tries: int = 0) -> str:
    return public_url("ivr.incoming_urgency", rec=recording_id, tries=tries)


def test_a_recording_is_kept_played_back_and_reviewed(client, world):
    """The recording is accepted (pending download), played back, then 1 send / 2 / 3 asked."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(recorded(client, world, sid))
    recording = the_recording()
    assert (recording.author_id, recording.duration_seconds) == (world.coord_a.id, 4)
    assert recording.status == RecordingStatus.PENDING
    assert verbs(gather) == ["Say", "Play", "Pause", "Say"]
    assert words(gather) == [
        fr("voice.record_playback"),
        recording.provider_url,
        fr("voice.record_review"),
    ]
    assert gather.get("action") == review_url(recording.id)


def test_the_same_recording_posted_twice_is_kept_once(client, world):
    """Twilio retries the action: one Recording row, the same review."""
    sid = logged_in(client, world.coord_a)
    first = gather_of(recorded(client, world, sid))
    second = gather_of(recorded(client, world, sid))
    assert first.get("action") == second.get("action")
    assert db.session.scalar(select(func.count(Recording.id))) == 1


@pytest.mark.parametrize("duration", ["0", ""])
def test_an_empty_recording_is_reported_and_a_new_one_offered(client, world, duration):
    """Duration 0 or missing: "nothing recorded", then 2 record again / 3 cancel; no row."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(recorded(client, world, sid, duration=duration))
    assert said(gather) == [fr("voice.record_empty"), fr("voice.record_again_prompt")]
    assert gather.get("action") == review_url(0)
    assert db.session.scalar(select(func.count(Recording.id))) == 0


def test_silence_into_the_recording_is_reported(client, world):
    """Twilio skips the action on silence; the redirect (no recording fields) says so."""
    sid = logged_in(client, world.coord_a)
    url = public_url("ivr.incoming_recorded", silence=1)
    gather = gather_of(step(client, world.coord_a, url, None, sid))
    assert said(gather)[0] == fr("voice.record_empty")


def test_review_2_records_again_and_3_cancels(client, world):
    """2: the record prompt again; 3: cancelled, back to the menu, no alert."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    again = step(client, world.coord_a, review_url(recording.id), "2", sid)
    assert verbs(again) == ["Say", "Record", "Redirect"]
    cancelled = gather_of(step(client, world.coord_a, review_url(recording.id), "3", sid))
    assert said(cancelled) == [fr("voice.record_cancelled"), fr("voice.coordinator_menu")]
    assert db.session.scalar(select(func.count(Alert.id))) == 0


@pytest.mark.parametrize(("digits", "first"), [("*", "invalid"), ("", None), ("9", "invalid")])
def test_review_other_keys_ask_again(client, world, digits, first):
    """*, 9: "not valid" and the question; no key: the question; tries counted."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    gather = gather_of(step(client, world.coord_a, review_url(recording.id), digits, sid))
    expected = [fr("voice.record_review")]
    if first:
        expected.insert(0, fr("voice.invalid_choice"))
    assert said(gather) == expected
    assert gather.get("action") == review_url(recording.id, 1)
    root = step(client, world.coord_a, review_url(recording.id, MAX_RETRIES), digits, sid)
    assert verbs(root) == ["Say", "Hangup"]


def test_after_an_empty_recording_1_is_not_a_choice(client, world):
    """On the retry menu (no recording), 1 is not valid: nothing can be sent."""
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, review_url(0), "1", sid))
    assert said(gather) == [fr("voice.invalid_choice"), fr("voice.record_again_prompt")]


def test_review_1_asks_for_the_urgency(client, world):
    """1 (send): 1 urgent, 2 non-urgent asked."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    gather = gather_of(step(client, world.coord_a, review_url(recording.id), "1", sid))
    assert said(gather) == [fr("voice.urgency_prompt")]
    assert gather.get("action") == urgency_url(recording.id)


@pytest.mark.parametrize(("digits", "urgency"), [("1", Urgency.URGENT), ("2", Urgency.NON_URGENT)])
def test_urgency_sends_the_downloaded_recording_at_once(client, world, digits, urgency):
    """Downloaded: the alert is raised by phone for the coordinator's PLP, released, told."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    ready(recording)
    gather = gather_of(step(client, world.coord_a, urgency_url(recording.id), digits, sid))
    alert = db.session.scalars(select(Alert)).one()
    assert (alert.origin, alert.urgency, alert.recording_id) == (
        AlertOrigin.PHONE,
        urgency,
        recording.id,
    )
    assert alert.state == AlertState.DELIVERING
    assert alert.released_by_id == world.coord_a.id
    assert [t.partnership_id for t in alert.targets] == [world.a.id]
    assert alert.text == fr("sms.recorded_message")
    assert said(gather)[0] == fr("voice.record_sent", members=PEOPLE_OF_A, ref=spelled(alert))
    assert said(gather)[-1] == fr("voice.coordinator_menu")
    # Twilio replays the request: no second alert, the same answer.
    again = gather_of(step(client, world.coord_a, urgency_url(recording.id), digits, sid))
    assert said(again) == said(gather)
    assert db.session.scalar(select(func.count(Alert.id))) == 1


def test_urgency_waits_for_the_download_a_bounded_time(client, world):
    """Still downloading: "one moment", a pause, a redirect to check again; at 5, not ready."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    root = step(client, world.coord_a, urgency_url(recording.id), "1", sid)
    assert verbs(root) == ["Say", "Pause", "Redirect"]
    assert root[0].text == fr("voice.record_wait")
    assert query(root[2].text) == {"rec": str(recording.id), "urgency": "urgent", "waits": "1"}
    last = public_url("ivr.incoming_send", rec=recording.id, urgency="urgent", waits=5)
    gather = gather_of(step(client, world.coord_a, last, None, sid))
    assert said(gather)[0] == fr("voice.record_not_ready")
    ready(recording)
    done = gather_of(step(client, world.coord_a, root[2].text, None, sid))
    assert said(done)[0].startswith(fr("voice.record_sent", members=PEOPLE_OF_A, ref="")[:20])
    assert db.session.scalar(select(func.count(Alert.id))) == 1


def test_a_failed_recording_is_never_sent(client, world):
    """Download failed: said so, record again offered; no alert."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    recording.status = RecordingStatus.FAILED
    db.session.commit()
    gather = gather_of(step(client, world.coord_a, urgency_url(recording.id), "1", sid))
    assert said(gather) == [fr("voice.record_failed"), fr("voice.record_again_prompt")]
    assert db.session.scalar(select(func.count(Alert.id))) == 0


@pytest.mark.parametrize("digits", ["*", "3", ""])
def test_urgency_other_keys_ask_again(client, world, digits):
    """*, 3, nothing: the urgency question again; nothing sent."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    gather = gather_of(step(client, world.coord_a, urgency_url(recording.id), digits, sid))
    assert said(gather)[-1] == fr("voice.urgency_prompt")
    assert gather.get("action") == urgency_url(recording.id, 1)
    assert db.session.scalar(select(func.count(Alert.id))) == 0


def test_someone_elses_recording_cannot_be_sent(client, world):
    """A recording id of another author in the URL: refused, nothing sent."""
    sid = logged_in(client, world.coord_a)
    recorded(client, world, sid)
    recording = the_recording()
    recording.author_id = world.coord_b.id
    db.session.commit()
    gather = gather_of(step(client, world.coord_a, urgency_url(recording.id), "1", sid))
    assert said(gather)[0] == fr("voice.record_failed")
    assert db.session.scalar(select(func.count(Alert.id))) == 0


# --- Alerts awaiting release, by phone ---------------------------------------------------------


def pending_url(alert: Alert, tries: int = 0) -> str:
    return public_url("ivr.incoming_pending", alert=alert.id, tries=tries)


def test_pending_1_releases_and_presents_the_next(client, world):
    """1 releases the first; "next message" and the second alert follow."""
    first, second = awaiting_alert(world, "Premier"), awaiting_alert(world, "Second")
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, pending_url(first), "1", sid))
    db.session.expire_all()
    assert first.state == AlertState.DELIVERING
    assert second.state == AlertState.AWAITING_RELEASE
    spoken = said(gather)
    assert spoken[:2] == [fr("voice.released", members=PEOPLE_OF_A), fr("voice.next_alert")]
    assert "Second" in spoken
    assert query(gather.get("action")) == {"alert": str(second.id), "tries": "0"}


def test_pending_2_rejects_and_returns_to_the_menu_after_the_last(client, world):
    """2 rejects the only one; then "none awaiting" and the menu."""
    alert = awaiting_alert(world)
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, pending_url(alert), "2", sid))
    db.session.expire_all()
    assert alert.state == AlertState.REJECTED
    assert said(gather) == [
        fr("voice.rejected"),
        fr("voice.pending_none"),
        fr("voice.coordinator_menu"),
    ]


@pytest.mark.parametrize(("digits", "first"), [("0", None), ("*", "invalid"), ("", "prompt")])
def test_pending_other_keys(client, world, digits, first):
    """0 repeats, * is not valid, nothing asks the question again; tries counted."""
    alert = awaiting_alert(world)
    sid = logged_in(client, world.coord_a)
    gather = gather_of(step(client, world.coord_a, pending_url(alert), digits, sid))
    spoken = said(gather)
    if first == "invalid":
        assert spoken[0] == fr("voice.invalid_choice")
    elif first == "prompt":
        assert spoken == [fr("voice.release_prompt")]
    else:
        assert MESSAGE in spoken
    assert query(gather.get("action"))["tries"] == "1"
    # After the last try: on to the next (none), then the menu.
    root = gather_of(step(client, world.coord_a, pending_url(alert, MAX_RETRIES), digits, sid))
    assert said(root) == [fr("voice.pending_none"), fr("voice.coordinator_menu")]


def test_pending_decided_meanwhile_says_so(client, world):
    """Released by someone else in the meantime: 2 hears it was sent, nothing changes."""
    alert = awaiting_alert(world)
    sid = logged_in(client, world.coord_a)
    release_alert(alert, by=world.steering_a)
    db.session.commit()
    gather = gather_of(step(client, world.coord_a, pending_url(alert), "2", sid))
    assert said(gather)[0] == fr("voice.was_released")
    db.session.expire_all()
    assert alert.state != AlertState.REJECTED


# --- Members -----------------------------------------------------------------------------------


def member_url(alert: Alert, tries: int = 0) -> str:
    return public_url("ivr.incoming_member", alert=alert.id, tries=tries)


def test_a_member_hears_the_running_alert_with_press_1(client, world):
    """A member: intro, message, the question; to the member URL of that alert."""
    alert = running_alert(world)
    gather = gather_of(dial(client, world.member_a.phone))
    assert said(gather) == [
        fr("voice.alert_intro", exercise="", plp=plp_names(alert)),
        MESSAGE,
        fr("voice.alert_prompt"),
    ]
    assert query(gather.get("action")) == {"alert": str(alert.id), "tries": "0"}


def test_a_member_without_running_alerts_hears_so(client, world):
    """Nothing running (awaiting release does not count): said so, goodbye."""
    awaiting_alert(world)
    root = dial(client, world.member_a.phone)
    assert said(root) == [fr("voice.member_none"), fr("voice.goodbye")]


def test_a_member_confirms_by_pressing_1(client, world):
    """1: one acknowledgement, channel inbound_call; thanks and goodbye (no other alert)."""
    alert = running_alert(world)
    root = step(client, world.member_a, member_url(alert), "1")
    assert said(root) == [fr("voice.ack_thanks"), fr("voice.goodbye")]
    [ack] = db.session.scalars(select(Acknowledgement)).all()
    assert (ack.alert_id, ack.person_id, ack.channel) == (
        alert.id,
        world.member_a.id,
        AckChannel.INBOUND_CALL,
    )
    step(client, world.member_a, member_url(alert), "1")
    assert db.session.scalar(select(func.count(Acknowledgement.id))) == 1


def test_a_member_hears_each_running_alert_newest_first(client, world):
    """Two alerts: the newest first; after confirming it, the older one."""
    older, newer = running_alert(world, "Ancien"), running_alert(world, "Nouveau")
    first = gather_of(dial(client, world.member_a.phone))
    assert "Nouveau" in said(first)
    gather = gather_of(step(client, world.member_a, member_url(newer), "1"))
    assert said(gather)[0] == fr("voice.ack_thanks")
    assert "Ancien" in said(gather)
    assert query(gather.get("action")) == {"alert": str(older.id), "tries": "0"}


@pytest.mark.parametrize("digits", ["0", "*", "9"])
def test_a_member_replays_with_0_or_another_key(client, world, digits):
    """0, * or 9: the alert again, one more try; after the last, on to the next (none)."""
    alert = running_alert(world)
    gather = gather_of(step(client, world.member_a, member_url(alert), digits))
    assert MESSAGE in said(gather)
    assert query(gather.get("action"))["tries"] == "1"
    root = step(client, world.member_a, member_url(alert, MAX_RETRIES), digits)
    assert said(root) == [fr("voice.goodbye")]


@pytest.mark.parametrize("extra", [{}, {"FinishedOnKey": "#"}])
def test_a_silent_member_moves_on_to_the_next_alert(client, world, extra):
    """No key (or # alone): the next alert; after the last, goodbye; nothing confirmed."""
    older, newer = running_alert(world, "Ancien"), running_alert(world, "Nouveau")
    gather = gather_of(step(client, world.member_a, member_url(newer), "", **extra))
    assert query(gather.get("action")) == {"alert": str(older.id), "tries": "0"}
    root = step(client, world.member_a, member_url(older), "")
    assert said(root) == [fr("voice.goodbye")]
    assert db.session.scalar(select(func.count(Acknowledgement.id))) == 0


def test_a_member_of_another_plp_hears_nothing_of_this_one(client, world):
    """member_c (PLP C): no running alert of theirs; A's alert is not said."""
    running_alert(world)
    root = dial(client, world.member_c.phone)
    assert said(root) == [fr("voice.member_none"), fr("voice.goodbye")]


def test_a_member_pressing_1_after_the_alert_was_cancelled_hears_it_is_over(client, world):
    """Cancelled meanwhile: 1 is refused, said over; nothing confirmed."""
    alert = running_alert(world)
    cancel_alert(alert, by=world.coord_a)
    db.session.commit()
    root = step(client, world.member_a, member_url(alert), "1")
    assert said(root) == [fr("voice.alert_over"), fr("voice.goodbye")]
    assert db.session.scalar(select(func.count(Acknowledgement.id))) == 0


# --- Speech ------------------------------------------------------------------------------------


def test_rendered_speech_is_played_instead_of_said(client, world, monkeypatch):
    """When the speech cache has the words, <Play> their audio; otherwise <Say>."""
    cached = {fr("voice.pin_prompt"): "https://plp.example.be/media/speech/x.wav"}
    monkeypatch.setattr(voice, "cached_audio_url", lambda words, language: cached.get(words))
    gather = gather_of(dial(client, world.coord_a.phone))
    assert verbs(gather) == ["Play"]
    assert gather[0].text == "https://plp.example.be/media/speech/x.wav"


def test_a_failing_speech_cache_falls_back_to_say(client, world, monkeypatch):
    """The cache lookup raising: the words are said, the call goes on."""

    def broken(words, language):
        raise OSError("disk")

    monkeypatch.setattr(voice, "cached_audio_url", broken)
    gather = gather_of(dial(client, world.coord_a.phone))
    assert said(gather) == [fr("voice.pin_prompt")]


def test_a_failure_in_a_menu_is_apologised_for(client, world, monkeypatch):
    """An exception in the coordinator's menu: the apology and a hang-up, never a 500."""
    sid = logged_in(client, world.coord_a)

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(inbound, "_latest_alert", broken)
    root = step(client, world.coord_a, menu_url(), "3", sid)
    assert (verbs(root), said(root)) == (["Say", "Hangup"], [fr("voice.apology")])
