"""The alert call: pure TwiML builders, the /ivr/alert webhooks, and calls run by the simulator.

Builders and views are checked on parsed TwiML (elements and attributes); whole calls are
run by the simulator's strict interpreter (`simulator.twiml.run_call`), which refuses what
Twilio would refuse, against the app in process.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from alerts import recordings
from alerts.models import (
    AckChannel,
    Acknowledgement,
    AlertState,
    Channel,
    CloseReason,
    Recording,
    RecordingStatus,
    utcnow,
)
from core.extensions import db
from ivr import alert_call, twiml
from ivr import views as ivr_views
from ivr.menus import ALERT_MENU, Action, resolve
from prompts import LANGUAGES, text
from simulator.behaviour import Behaviour
from simulator.calls import (
    SIMULATOR_ACCOUNT_SID,
    CallContext,
    GatherTimedOut,
    HungUp,
    Pressed,
    Redirected,
    Said,
)
from simulator.clock import InstantClock
from simulator.documents import parse_document
from simulator.people import AnsweringMachine, ScriptedPerson
from simulator.transport import WsgiTransport
from simulator.twiml import run_call
from tests.twilio_payloads import PLP_NUMBER, answered_call_form, call_status_form, signed_post

ACTION = "https://plp.example.be/ivr/alert/7/gather?replays=0&silences=0"


def parse(response) -> ElementTree.Element:
    """Return the root element of a VoiceResponse or of a view's TwiML answer."""
    body = response.get_data() if hasattr(response, "get_data") else str(response).encode()
    return ElementTree.fromstring(body)


def verbs(root: ElementTree.Element) -> list[str]:
    """Return the tags of the document's top-level verbs."""
    return [child.tag for child in root]


def said(element: ElementTree.Element) -> list[str]:
    """Return the texts of the <Say> elements directly under `element`."""
    return [say.text for say in element.findall("Say")]


def query(url: str) -> dict[str, str]:
    """Return the query of `url` as a plain dict."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


# --- Pure builders --------------------------------------------------------------------------


def test_alert_message_gathers_one_key_around_the_spoken_alert():
    """The alert is said inside a one-key Gather, then a Redirect to the same action."""
    root = parse(twiml.alert_message("Intro.", "Cambriolage.", "Appuyez sur 1.", ACTION, "fr"))
    assert verbs(root) == ["Gather", "Redirect"]
    gather, redirect = root
    assert gather.attrib == {
        "numDigits": "1",
        "timeout": str(twiml.GATHER_TIMEOUT_SECONDS),
        "action": ACTION,
        "method": "POST",
    }
    assert said(gather) == ["Intro.", "Cambriolage.", "Appuyez sur 1."]
    # A pause between the parts: many members are elderly.
    assert [child.tag for child in gather] == ["Say", "Pause", "Say", "Pause", "Say"]
    assert {s.get("length") for s in gather.findall("Pause")} == {str(twiml.PAUSE_SECONDS)}
    voices = {(s.get("voice"), s.get("language")) for s in gather.findall("Say")}
    assert voices == {("Polly.Celine", "fr-FR")}
    assert (redirect.text, redirect.get("method")) == (ACTION, "POST")


def test_prompt_again_asks_only_the_question():
    """Asking again says only the prompt inside a one-key Gather, then redirects."""
    root = parse(twiml.prompt_again("Press 1.", ACTION, "en"))
    assert verbs(root) == ["Gather", "Redirect"]
    assert said(root[0]) == ["Press 1."]
    assert root[0].get("numDigits") == "1"
    assert root[1].text == ACTION


@pytest.mark.parametrize(
    "builder",
    [twiml.ack_confirmed, twiml.goodbye, twiml.machine_message, twiml.alert_over, twiml.apology],
)
def test_closing_builders_say_their_words_then_hang_up(builder):
    """Each closing builder says its words in the language's voice, then hangs up."""
    root = parse(builder("Tot ziens.", "nl"))
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == "Tot ziens."
    assert (root[0].get("voice"), root[0].get("language")) == ("Polly.Lotte", "nl-NL")


def test_every_language_has_a_voice_twilio_accepts():
    """Every prompt language has a voice, and the strict interpreter accepts its <Say>."""
    assert set(twiml.VOICES) == set(LANGUAGES)
    for language in LANGUAGES:
        document = parse_document(ACTION, str(twiml.goodbye("...", language)).encode())
        assert document.warnings == ()
    assert len({voice.locale for voice in twiml.VOICES.values()}) == len(LANGUAGES)


def test_an_unknown_language_speaks_french():
    """A language with no voice falls back to French."""
    assert twiml.voice_for("xx") == twiml.VOICES["fr"]
    assert twiml.voice_for(None) == twiml.VOICES["fr"]


def test_xml_response_is_twiml():
    """The one response helper answers 200 with text/xml and the document."""
    response = ivr_views.xml_response(twiml.goodbye("Au revoir.", "fr"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert verbs(parse(response)) == ["Say", "Hangup"]


def test_the_menu_is_a_table_from_digit_to_choice():
    """1 confirms, 0 replays, another key is unknown (replayed too), no key is silence."""
    assert resolve(ALERT_MENU, "1") == Action.CONFIRM
    assert resolve(ALERT_MENU, "0") == Action.REPEAT
    assert resolve(ALERT_MENU, "7") == Action.UNKNOWN
    assert resolve(ALERT_MENU, "") == Action.SILENCE
    assert resolve(ALERT_MENU, None) == Action.SILENCE


# --- The webhooks ---------------------------------------------------------------------------


@pytest.fixture
def call_delivery(make_delivery):
    """A call delivery of a delivering alert, to a French-speaking member."""
    return make_delivery(Channel.CALL)


def call_form(delivery, **extra) -> dict[str, str]:
    """Return the form Twilio posts to an alert call's URLs."""
    return answered_call_form(delivery.to_address, delivery.provider_sid, **extra)


def answer(client, delivery, **extra):
    """POST the answered call's request to the alert call URL."""
    return signed_post(client, f"/ivr/alert/{delivery.id}", call_form(delivery, **extra))


def gather(client, delivery, query_string: str = "replays=0&silences=0", **extra):
    """POST the Gather's result to the alert call's action URL."""
    path = f"/ivr/alert/{delivery.id}/gather"
    settings = client.application.extensions["settings"]
    form = call_form(delivery, **extra)
    url = f"{settings.public_base_url}{path}?{query_string}"
    return signed_post(client, f"{path}?{query_string}", form, url=url)


def acknowledgements() -> list[Acknowledgement]:
    """Return every acknowledgement as committed."""
    db.session.expire_all()
    return list(db.session.scalars(select(Acknowledgement)))


def test_an_unsigned_request_is_refused(client, call_delivery):
    """Without Twilio's signature the alert call URL answers 403."""
    response = client.post(f"/ivr/alert/{call_delivery.id}", data=call_form(call_delivery))
    assert response.status_code == 403


def test_a_person_hears_the_alert_and_the_menu(app, client, call_delivery):
    """AnsweredBy human: the intro, the alert's text and the prompt, gathered to the action."""
    response = answer(client, call_delivery, AnsweredBy="human")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = parse(response)
    assert verbs(root) == ["Gather", "Redirect"]
    alert = call_delivery.alert
    plp = alert.targets[0].partnership.label
    assert said(root[0]) == [
        text("voice.alert_intro", "fr", exercise="", plp=plp),
        alert.text,
        text("voice.alert_prompt", "fr"),
    ]
    action = root[0].get("action")
    base = app.extensions["settings"].public_base_url
    assert action.startswith(f"{base}/ivr/alert/{call_delivery.id}/gather?")
    assert query(action) == {"replays": "0", "silences": "0"}
    assert root[1].text == action


def test_without_detection_the_caller_is_treated_as_a_person(client, call_delivery):
    """No AnsweredBy (detection not asked, or unknown): the menu, not the machine message."""
    root = parse(answer(client, call_delivery))
    assert verbs(root) == ["Gather", "Redirect"]


@pytest.mark.parametrize("answered_by", ["machine_end_beep", "machine_end_silence", "fax"])
def test_an_answering_machine_hears_how_to_confirm_and_no_menu(client, call_delivery, answered_by):
    """A machine gets the message with the reference and how to confirm, then a hang-up."""
    root = parse(answer(client, call_delivery, AnsweredBy=answered_by))
    assert verbs(root) == ["Say", "Hangup"]
    alert = call_delivery.alert
    assert root[0].text == text(
        "voice.machine_message",
        "fr",
        exercise="",
        plp=alert.targets[0].partnership.label,
        message=alert.text,
        ref=alert.reference,
    )


def test_the_call_speaks_the_members_language(client, make_delivery, make_person):
    """A Dutch-speaking member hears Dutch in the Dutch voice."""
    delivery = make_delivery(Channel.CALL, person=make_person(language="nl"))
    root = parse(answer(client, delivery, AnsweredBy="human"))
    first = root[0][0]
    plp = delivery.alert.targets[0].partnership.label
    assert first.text == text("voice.alert_intro", "nl", exercise="", plp=plp)
    assert (first.get("voice"), first.get("language")) == ("Polly.Lotte", "nl-NL")


def test_an_exercise_is_announced_as_one(client, make_alert, make_delivery):
    """An exercise alert's call opens with the exercise announcement."""
    delivery = make_delivery(Channel.CALL, alert=make_alert(exercise=True))
    root = parse(answer(client, delivery, AnsweredBy="human"))
    assert root[0][0].text.startswith(text("voice.exercise_prefix", "fr"))
    machine = parse(answer(client, delivery, AnsweredBy="machine_end_beep"))
    assert machine[0].text.startswith(text("voice.exercise_prefix", "fr"))


@pytest.mark.parametrize("state", [AlertState.CLOSED, AlertState.REJECTED])
def test_a_call_answered_after_the_alert_ended_says_so(client, make_alert, make_delivery, state):
    """An alert no longer delivering: the caller hears it is over, and no menu."""
    delivery = make_delivery(Channel.CALL, alert=make_alert(state=state))
    root = parse(answer(client, delivery, AnsweredBy="human"))
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text("voice.alert_over", "fr")


def test_a_call_answered_after_the_alert_expired_says_so(client, make_alert, make_delivery):
    """An expired alert (still delivering in the database): the caller hears it is over."""
    alert = make_alert(expires_at=utcnow() - timedelta(seconds=1))
    delivery = make_delivery(Channel.CALL, alert=alert)
    root = parse(answer(client, delivery, AnsweredBy="human"))
    assert root[0].text == text("voice.alert_over", "fr")


@pytest.mark.parametrize("digit", ["0", "7", "*"])
def test_zero_or_another_key_replays_the_alert_and_counts(client, call_delivery, digit):
    """0 or a key not in the menu replays the whole alert, with the replay counted."""
    root = parse(gather(client, call_delivery, "replays=1&silences=0", Digits=digit))
    assert verbs(root) == ["Gather", "Redirect"]
    assert said(root[0])[1] == call_delivery.alert.text
    assert query(root[0].get("action")) == {"replays": "2", "silences": "0"}


def test_replays_stop_after_the_third_with_a_goodbye(client, call_delivery):
    """After MAX_REPLAYS replays another 0 says goodbye and hangs up."""
    root = parse(gather(client, call_delivery, f"replays={alert_call.MAX_REPLAYS}", Digits="0"))
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text("voice.goodbye", "fr")


def test_silence_repeats_the_question_once_then_says_goodbye(client, call_delivery):
    """No key: the prompt is asked once more; no key again: no-input goodbye."""
    first = parse(gather(client, call_delivery, "replays=0&silences=0"))
    assert verbs(first) == ["Gather", "Redirect"]
    assert said(first[0]) == [text("voice.alert_prompt", "fr")]
    assert query(first[0].get("action")) == {"replays": "0", "silences": "1"}
    second = parse(gather(client, call_delivery, "replays=0&silences=1", Digits=""))
    assert verbs(second) == ["Say", "Hangup"]
    assert second[0].text == text("voice.no_input", "fr")


def test_a_query_that_is_not_a_count_counts_as_none(client, call_delivery):
    """replays=abc (never built by the app) is read as 0: a replay, not an error."""
    root = parse(gather(client, call_delivery, "replays=abc&silences=-1", Digits="0"))
    assert query(root[0].get("action")) == {"replays": "1", "silences": "0"}


def test_pressing_1_confirms_once_by_call(client, call_delivery):
    """1 records one acknowledgement by call for the delivery, thanks and hangs up; twice, once."""
    root = parse(gather(client, call_delivery, Digits="1"))
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text("voice.ack_confirmed", "fr")
    again = parse(gather(client, call_delivery, Digits="1"))
    assert again[0].text == text("voice.ack_confirmed", "fr")
    [ack] = acknowledgements()
    assert (ack.person_id, ack.alert_id) == (call_delivery.person_id, call_delivery.alert_id)
    assert (ack.channel, ack.delivery_id) == (AckChannel.CALL, call_delivery.id)


def test_pressing_1_after_the_alert_closed_confirms_nothing(client, make_alert, make_delivery):
    """1 on a closed alert: the caller hears it is over; no acknowledgement is written."""
    alert = make_alert(state=AlertState.CLOSED, close_reason=CloseReason.CANCELLED)
    delivery = make_delivery(Channel.CALL, alert=alert)
    root = parse(gather(client, delivery, Digits="1"))
    assert root[0].text == text("voice.alert_over", "fr")
    assert acknowledgements() == []


@pytest.mark.parametrize("route", ["", "/gather"])
def test_an_unknown_delivery_gets_a_goodbye_not_an_error(client, route):
    """A delivery id that does not exist: 200, a goodbye, a hang-up."""
    response = signed_post(client, f"/ivr/alert/999999{route}", answered_call_form())
    assert response.status_code == 200
    root = parse(response)
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text("voice.goodbye", "fr")


def test_an_sms_delivery_is_not_an_alert_call(client, make_delivery):
    """The id of an SMS delivery: a goodbye, no menu."""
    delivery = make_delivery(Channel.SMS)
    root = parse(answer(client, delivery, AnsweredBy="human"))
    assert verbs(root) == ["Say", "Hangup"]


def test_a_failure_inside_the_call_is_apologised_for(client, call_delivery, monkeypatch):
    """An exception while answering: the caller hears the apology and a hang-up, not a 500."""

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(alert_call, "public_url", broken)
    response = answer(client, call_delivery, AnsweredBy="human")
    assert response.status_code == 200
    root = parse(response)
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text("voice.apology", "fr")


def test_a_failure_in_a_status_callback_is_a_503_not_a_500(client, call_delivery, monkeypatch):
    """The apology is for callers: a failing status callback answers 503 for a retry."""

    def broken(_report):
        raise RuntimeError("boom")

    monkeypatch.setattr(ivr_views, "record_call_status", broken)
    form = call_status_form(call_delivery.provider_sid, "ringing", to=call_delivery.to_address)
    response = signed_post(client, "/ivr/status", form)
    assert response.status_code == 503


# --- Whole calls through the simulator's interpreter ------------------------------------------


def run(app, delivery, person, answered_by: str | None = "human"):
    """Run the alert call of `delivery` with `person` on the line; return its outcome."""
    context = CallContext(
        delivery.provider_sid,
        SIMULATOR_ACCOUNT_SID,
        PLP_NUMBER,
        delivery.to_address,
        "outbound-api",
        answered_by,
    )
    url = app.extensions["settings"].public_base_url + f"/ivr/alert/{delivery.id}"
    return run_call(context, url, WsgiTransport(app), person, InstantClock())


def test_simulated_person_hears_it_twice_then_confirms(app, call_delivery):
    """Pressing 0 then 1: the alert is said twice, the confirmation once, the app hangs up."""
    outcome = run(app, call_delivery, ScriptedPerson(Behaviour("answer", keys=("0", "1"))))
    assert outcome.error is None
    assert [e.digits for e in outcome.events if isinstance(e, Pressed)] == ["0", "1"]
    texts = [e.text for e in outcome.events if isinstance(e, Said)]
    assert texts.count(call_delivery.alert.text) == 2
    assert texts[-1] == text("voice.ack_confirmed", "fr")
    assert outcome.events[-1] == HungUp("app")
    assert [a.channel for a in acknowledgements()] == [AckChannel.CALL]


def test_simulated_silent_person_is_asked_again_then_left(app, call_delivery):
    """A person who presses nothing: asked twice in all, then goodbye; nothing confirmed."""
    outcome = run(app, call_delivery, ScriptedPerson(Behaviour("silent")))
    assert outcome.error is None
    assert sum(isinstance(e, GatherTimedOut) for e in outcome.events) == 2
    assert sum(isinstance(e, Redirected) for e in outcome.events) == 2
    texts = [e.text for e in outcome.events if isinstance(e, Said)]
    assert texts[-1] == text("voice.no_input", "fr")
    assert outcome.events[-1] == HungUp("app")
    assert acknowledgements() == []


def test_simulated_voicemail_gets_the_message_and_nothing_is_confirmed(app, call_delivery):
    """A voicemail hears the machine message (no menu); no acknowledgement is written."""
    outcome = run(app, call_delivery, AnsweringMachine(), answered_by="machine_end_beep")
    assert outcome.error is None
    [message] = [e for e in outcome.events if isinstance(e, Said)]
    assert call_delivery.alert.reference in message.text
    assert not any(isinstance(e, Pressed | GatherTimedOut) for e in outcome.events)
    assert acknowledgements() == []


def test_simulated_person_pressing_wrong_keys_is_let_go_after_three_replays(app, call_delivery):
    """Pressing 9 again and again: the alert is said 1 + 3 times, then goodbye."""
    outcome = run(app, call_delivery, ScriptedPerson(Behaviour("answer", keys=("9",) * 6)))
    assert outcome.error is None
    texts = [e.text for e in outcome.events if isinstance(e, Said)]
    assert texts.count(call_delivery.alert.text) == 1 + alert_call.MAX_REPLAYS
    assert texts[-1] == text("voice.goodbye", "fr")
    assert acknowledgements() == []


# --- A coordinator's recorded message -------------------------------------------------------


@pytest.fixture
def recorded_delivery(make_alert, make_delivery):
    """A call delivery of an alert whose message is a downloaded recording."""
    recording = Recording(
        provider_sid="RE" + "1" * 32,
        provider_url="https://api.twilio.com/Recordings/RE1",
        token="t" * 43,
        path=f"recordings/{'t' * 43}.wav",
        status=RecordingStatus.READY,
        duration_seconds=4,
    )
    db.session.add(recording)
    db.session.commit()
    return make_delivery(Channel.CALL, alert=make_alert(recording_id=recording.id))


def test_a_recorded_message_is_played_between_pauses(client, recorded_delivery):
    """The coordinator's intro, a pause, the recording played, a pause, the question."""
    gather = parse(answer(client, recorded_delivery, AnsweredBy="human"))[0]
    alert = recorded_delivery.alert
    assert verbs(gather) == ["Say", "Pause", "Play", "Pause", "Say"]
    plp = alert.targets[0].partnership.label
    assert gather[0].text == text("voice.coordinator_intro", "fr", exercise="", plp=plp)
    assert gather[2].text == recordings.recording_url(alert.recording)
    assert gather[4].text == text("voice.alert_prompt", "fr")


def test_a_voicemail_gets_the_recording_and_how_to_confirm(client, recorded_delivery):
    """Machine: intro, the recording, how to confirm with the spelled reference; no menu."""
    root = parse(answer(client, recorded_delivery, AnsweredBy="machine_end_beep"))
    alert = recorded_delivery.alert
    assert verbs(root) == ["Say", "Pause", "Play", "Pause", "Say", "Hangup"]
    assert root[2].text == recordings.recording_url(alert.recording)
    assert root[4].text == text("voice.machine_how_to_confirm", "fr", ref=" ".join(alert.reference))


@pytest.mark.parametrize("status", [RecordingStatus.PENDING, RecordingStatus.DELETED])
def test_a_recording_not_playable_falls_back_to_the_text(client, recorded_delivery, status):
    """Not downloaded (or deleted): the alert's text is said instead; the call goes on."""
    recording = recorded_delivery.alert.recording
    recording.status = status
    db.session.commit()
    gather = parse(answer(client, recorded_delivery, AnsweredBy="human"))[0]
    assert "Play" not in verbs(gather)
    assert said(gather)[1] == recorded_delivery.alert.text


def test_a_lone_hash_at_the_alert_menu_counts_as_no_key(client, call_delivery):
    """# alone submits nothing (Digits empty, FinishedOnKey #): the question once more."""
    root = parse(
        gather(client, call_delivery, "replays=0&silences=0", Digits="", FinishedOnKey="#")
    )
    assert said(root[0]) == [text("voice.alert_prompt", "fr")]
    assert query(root[0].get("action")) == {"replays": "0", "silences": "1"}
