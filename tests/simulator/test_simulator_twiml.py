"""The strict TwiML interpreter, verb by verb, against small Flask apps of the tests' own."""

from __future__ import annotations

import io
import uuid
import wave
from dataclasses import dataclass, field

import pytest
from flask import Flask, redirect, request
from twilio.request_validator import RequestValidator

from simulator import clock as clock_module
from simulator.calls import (
    SIMULATOR_ACCOUNT_SID,
    CallContext,
    Failed,
    GatherPrompt,
    GatherTimedOut,
    HungUp,
    Paused,
    Played,
    Pressed,
    Recorded,
    RecordedSilence,
    RecordPrompt,
    Redirected,
    Rejected,
    Said,
)
from simulator.clock import InstantClock, RealClock
from simulator.transport import WsgiTransport
from simulator.twiml import run_call
from tests.support import silence_wav
from tests.twilio_payloads import MEMBER_NUMBER, PLP_NUMBER

BASE_URL = "https://voice.example.test"
TOKEN = "token-of-the-tests-own-app"

# --- A small app of the tests' own, a person, a recorder ----------------------------------


@dataclass
class Seen:
    """One request the app received."""

    method: str
    path: str
    query: str
    params: dict[str, str]  # the form of a POST, the query of a GET
    signed: bool  # the X-Twilio-Signature is valid for TOKEN over the public URL


class TwimlApp:
    """A Flask app serving, at each path, what a test set for it (TwiML by default)."""

    def __init__(self) -> None:
        self.flask = Flask("twiml_test_app")
        self.flask.config["TESTING"] = True
        self.pages: dict[str, object] = {}
        self.seen: list[Seen] = []
        self.flask.add_url_rule("/<path:path>", "serve", self.serve, methods=["GET", "POST"])

    def serve(self, path: str):
        """Record the request and answer what the test set for its path."""
        query = request.query_string.decode()
        url = BASE_URL + request.path + (f"?{query}" if query else "")
        params = dict(request.form) if request.method == "POST" else dict(request.args)
        signature = request.headers.get("X-Twilio-Signature", "")
        signed = RequestValidator(TOKEN).validate(url, request.form, signature)
        self.seen.append(Seen(request.method, request.path, query, params, signed))
        page = self.pages.get("/" + path, ("not found", 404, {"Content-Type": "text/plain"}))
        if callable(page):
            return page()
        if isinstance(page, str):
            return page, 200, {"Content-Type": "text/xml"}
        return page

    def paths(self) -> list[str]:
        """Return the paths requested, in order."""
        return [seen.path for seen in self.seen]


@dataclass
class Script:
    """A person who presses the given keys at each Gather and speaks the given audio."""

    keys: list[str] = field(default_factory=list)
    audio: list[bytes | None] = field(default_factory=list)
    gathers: list[GatherPrompt] = field(default_factory=list)
    records: list[RecordPrompt] = field(default_factory=list)

    def press(self, prompt: GatherPrompt) -> str:
        """Press the next keys of the script, or nothing."""
        self.gathers.append(prompt)
        return self.keys.pop(0) if self.keys else ""

    def record(self, prompt: RecordPrompt) -> bytes | None:
        """Speak the next audio of the script, or nothing."""
        self.records.append(prompt)
        return self.audio.pop(0) if self.audio else None


class Recordings:
    """Stores recorded audio as the simulator would, at Twilio-shaped URLs."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def __call__(self, audio: bytes) -> tuple[str, float]:
        """Store `audio`; return its URL and duration."""
        url = f"{BASE_URL}/recordings/RE{uuid.uuid4().hex}"
        self.stored[url] = audio
        with wave.open(io.BytesIO(audio)) as read:
            return url, read.getnframes() / read.getframerate()


def twiml(*verbs: str) -> str:
    """Return a TwiML document of `verbs`."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


def context(direction: str = "outbound-api", answered_by: str | None = None) -> CallContext:
    """Return the context of a new call from the PLP to a member (or inbound, reversed)."""
    outbound = direction == "outbound-api"
    return CallContext(
        sid="CA" + uuid.uuid4().hex,
        account_sid=SIMULATOR_ACCOUNT_SID,
        from_=PLP_NUMBER if outbound else MEMBER_NUMBER,
        to=MEMBER_NUMBER if outbound else PLP_NUMBER,
        direction=direction,
        answered_by=answered_by,
    )


def call(
    app: TwimlApp,
    person: Script | None = None,
    *,
    answer: str = "/answer",
    ctx: CallContext | None = None,
    **options,
):
    """Run a call whose answer URL is `answer` on `app`; return its outcome."""
    transport = WsgiTransport(app.flask, base_url=BASE_URL, token=TOKEN)
    return run_call(
        ctx or context(),
        BASE_URL + answer,
        transport,
        person or Script(),
        InstantClock(),
        **options,
    )


@pytest.fixture
def phone_app() -> TwimlApp:
    """A small TwiML app of the test's own."""
    return TwimlApp()


# --- Requests: parameters, signatures, status ----------------------------------------------


def test_answer_request_carries_twilios_call_parameters_signed(phone_app):
    """The answer URL is POSTed, signed, with CallSid, From, To, ... and AnsweredBy when set."""
    phone_app.pages["/answer"] = twiml("<Hangup/>")
    ctx = context(answered_by="human")
    call(phone_app, ctx=ctx)
    [seen] = phone_app.seen
    assert (seen.method, seen.signed) == ("POST", True)
    assert seen.params == {
        "CallSid": ctx.sid,
        "AccountSid": SIMULATOR_ACCOUNT_SID,
        "From": PLP_NUMBER,
        "To": MEMBER_NUMBER,
        "Caller": PLP_NUMBER,
        "Called": MEMBER_NUMBER,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
        "AnsweredBy": "human",
    }


def test_answered_by_is_absent_without_detection(phone_app):
    """A call placed without answering-machine detection sends no AnsweredBy."""
    phone_app.pages["/answer"] = twiml("<Hangup/>")
    call(phone_app)
    assert "AnsweredBy" not in phone_app.seen[0].params


def test_inbound_call_is_ringing_at_first_request_then_in_progress(phone_app):
    """An inbound call's first request says ringing, the next ones in-progress."""
    phone_app.pages["/answer"] = twiml("<Redirect>/next</Redirect>")
    phone_app.pages["/next"] = twiml("<Hangup/>")
    call(phone_app, ctx=context("inbound"))
    assert [(s.params["CallStatus"], s.params["Direction"]) for s in phone_app.seen] == [
        ("ringing", "inbound"),
        ("in-progress", "inbound"),
    ]


# --- Say, Play, Pause, Hangup ----------------------------------------------------------------


def test_say_speaks_with_its_voice_and_language_then_the_call_completes(phone_app):
    """<Say> is recorded with voice, language, loop; speech takes words/2.5 s; the end hangs up."""
    phone_app.pages["/answer"] = twiml(
        '<Say voice="Polly.Celine" language="fr-FR" loop="2">Alerte au quartier du parc</Say>'
    )
    outcome = call(phone_app)
    assert outcome.events == [
        Said("Alerte au quartier du parc", "Polly.Celine", "fr-FR", 2),
        HungUp("carrier"),
    ]
    assert outcome.error is None
    assert outcome.duration_seconds == pytest.approx(2 * 5 / 2.5)


def test_say_defaults_and_ssml_are_accepted(phone_app):
    """<Say> defaults to man/en-US/once; SSML tags inside it are spoken as their text."""
    phone_app.pages["/answer"] = twiml(
        '<Say>Press <emphasis level="strong">one</emphasis><break time="1s"/> now</Say>'
    )
    outcome = call(phone_app)
    assert outcome.events[0] == Said("Press one now", "man", "en-US", 1)


def test_speech_rate_is_configurable(phone_app):
    """With 5 words per second, ten words take two seconds."""
    phone_app.pages["/answer"] = twiml("<Say>" + "mot " * 10 + "</Say>")
    assert call(phone_app, speech_rate=5.0).duration_seconds == pytest.approx(2.0)


def test_say_looping_forever_ends_with_the_person_hanging_up(phone_app):
    """A <Say loop="0"> repeats until the person hangs up; the verbs after it never run."""
    phone_app.pages["/answer"] = twiml('<Say loop="0">Encore</Say>', "<Redirect>/never</Redirect>")
    outcome = call(phone_app)
    assert outcome.events == [Said("Encore", "man", "en-US", 0), HungUp("person")]
    assert outcome.error is None
    assert phone_app.paths() == ["/answer"]


def test_play_fetches_the_audio_and_lasts_its_length(phone_app):
    """<Play> GETs its audio (signed), plays it loop times for its length."""
    phone_app.pages["/answer"] = twiml('<Play loop="3">/audio/alert.wav</Play>')
    phone_app.pages["/audio/alert.wav"] = (silence_wav(2.0), 200, {"Content-Type": "audio/x-wav"})
    outcome = call(phone_app)
    assert outcome.events == [Played(f"{BASE_URL}/audio/alert.wav", 3), HungUp("carrier")]
    assert outcome.duration_seconds == pytest.approx(6.0)
    assert [(s.method, s.path, s.signed) for s in phone_app.seen[1:]] == [
        ("GET", "/audio/alert.wav", True)
    ]


def test_play_digits_plays_tones_without_a_url(phone_app):
    """<Play digits="12w#"> plays DTMF tones and fetches nothing."""
    phone_app.pages["/answer"] = twiml('<Play digits="12w#"/>')
    outcome = call(phone_app)
    assert outcome.events[0] == Played("", 1, "12w#")
    assert phone_app.paths() == ["/answer"]


def test_play_without_fetching_when_asked(phone_app):
    """With check_play=False, a <Play> URL is not fetched."""
    phone_app.pages["/answer"] = twiml("<Play>/audio/missing.mp3</Play>")
    outcome = call(phone_app, check_play=False)
    assert outcome.error is None
    assert phone_app.paths() == ["/answer"]


def test_pause_is_silent_for_its_length(phone_app):
    """<Pause> lasts 1 s by default, `length` seconds when set."""
    phone_app.pages["/answer"] = twiml("<Pause/>", '<Pause length="3"/>')
    outcome = call(phone_app)
    assert outcome.events == [Paused(1), Paused(3), HungUp("carrier")]
    assert outcome.duration_seconds == pytest.approx(4.0)


def test_hangup_ends_the_call_before_later_verbs(phone_app):
    """After <Hangup> nothing runs: the app hung up."""
    phone_app.pages["/answer"] = twiml("<Say>Au revoir</Say>", "<Hangup/>", "<Say>Jamais</Say>")
    outcome = call(phone_app)
    assert outcome.events == [Said("Au revoir", "man", "en-US", 1), HungUp("app")]


# --- Gather --------------------------------------------------------------------------------


GATHER = (
    '<Gather numDigits="1" action="/confirm" timeout="7">'
    '<Say language="fr-FR">Appuyez sur 1</Say><Pause length="2"/></Gather>'
    "<Say>Rien reçu</Say>"
)


def test_gather_with_digits_posts_them_to_the_action(phone_app):
    """A key pressed during <Gather> is POSTed as Digits, with the call's parameters."""
    phone_app.pages["/answer"] = twiml(GATHER)
    phone_app.pages["/confirm"] = twiml("<Say>Merci</Say>")
    person = Script(keys=["1"])
    ctx = context()
    outcome = call(phone_app, person, ctx=ctx)
    assert outcome.events == [
        Said("Appuyez sur 1", "man", "fr-FR", 1),
        Paused(2),
        Pressed("1"),
        Said("Merci", "man", "en-US", 1),
        HungUp("carrier"),
    ]
    confirm = phone_app.seen[1]
    assert (confirm.method, confirm.path, confirm.signed) == ("POST", "/confirm", True)
    assert confirm.params["Digits"] == "1"
    assert (confirm.params["CallSid"], confirm.params["CallStatus"]) == (ctx.sid, "in-progress")


def test_gather_prompt_tells_the_person_what_was_asked(phone_app):
    """The person is given numDigits, timeout, finishOnKey and what was heard in the Gather."""
    phone_app.pages["/answer"] = twiml(GATHER)
    person = Script()
    call(phone_app, person)
    assert person.gathers == [GatherPrompt(1, 7, "#", [Said("Appuyez sur 1", "man", "fr-FR", 1)])]


def test_gather_without_input_times_out_and_goes_on(phone_app):
    """No key: the Gather times out, no action request, the next verb runs."""
    phone_app.pages["/answer"] = twiml(GATHER)
    outcome = call(phone_app, Script())
    assert outcome.events == [
        Said("Appuyez sur 1", "man", "fr-FR", 1),
        Paused(2),
        GatherTimedOut(),
        Said("Rien reçu", "man", "en-US", 1),
        HungUp("carrier"),
    ]
    assert phone_app.paths() == ["/answer"]
    # 3 words, the pause, the 7 s timeout, 2 words
    assert outcome.duration_seconds == pytest.approx(3 / 2.5 + 2 + 7 + 2 / 2.5)


def test_gather_finish_on_key_ends_input(phone_app):
    """Keys up to finishOnKey are submitted; the key itself and later keys are not."""
    phone_app.pages["/answer"] = twiml('<Gather action="/pin"><Say>Code</Say></Gather>')
    phone_app.pages["/pin"] = twiml("<Hangup/>")
    outcome = call(phone_app, Script(keys=["1234#56"]))
    assert Pressed("1234#") in outcome.events
    assert phone_app.seen[1].params["Digits"] == "1234"
    assert phone_app.seen[1].params["FinishedOnKey"] == "#"


def test_gather_num_digits_cuts_extra_keys(phone_app):
    """With numDigits=2, the third key is not submitted."""
    phone_app.pages["/answer"] = twiml('<Gather numDigits="2" action="/two"/>')
    phone_app.pages["/two"] = twiml("<Hangup/>")
    call(phone_app, Script(keys=["123"]))
    assert phone_app.seen[1].params["Digits"] == "12"


def test_gather_custom_finish_on_key(phone_app):
    """finishOnKey="*" ends input at *; an empty finishOnKey submits # as a digit."""
    phone_app.pages["/answer"] = twiml('<Gather finishOnKey="*" action="/a"/>')
    phone_app.pages["/a"] = twiml('<Gather finishOnKey="" numDigits="3" action="/b"/>')
    phone_app.pages["/b"] = twiml("<Hangup/>")
    call(phone_app, Script(keys=["9*", "1#2"]))
    assert [s.params.get("Digits") for s in phone_app.seen[1:]] == ["9", "1#2"]


def test_gather_only_finish_key_is_empty_and_goes_on(phone_app):
    """Pressing only the finishing key is an empty result: the next verb runs."""
    phone_app.pages["/answer"] = twiml(GATHER.replace('numDigits="1" ', ""))
    outcome = call(phone_app, Script(keys=["#"]))
    assert outcome.events[2:] == [
        Pressed("#"),
        Said("Rien reçu", "man", "en-US", 1),
        HungUp("carrier"),
    ]
    assert phone_app.paths() == ["/answer"]


def test_gather_action_on_empty_result_posts_empty_digits(phone_app):
    """With actionOnEmptyResult, a timed-out Gather still requests its action, Digits empty."""
    phone_app.pages["/answer"] = twiml(
        '<Gather actionOnEmptyResult="true" action="/empty"/><Say>Jamais</Say>'
    )
    phone_app.pages["/empty"] = twiml("<Hangup/>")
    outcome = call(phone_app, Script())
    assert outcome.events == [GatherTimedOut(), HungUp("app")]
    assert phone_app.seen[1].params["Digits"] == ""


def test_gather_partial_input_is_submitted_after_the_timeout(phone_app):
    """Keys without the finishing key are submitted once the timeout passes after them."""
    phone_app.pages["/answer"] = twiml('<Gather timeout="4" action="/p"/>')
    phone_app.pages["/p"] = twiml("<Hangup/>")
    outcome = call(phone_app, Script(keys=["42"]))
    assert phone_app.seen[1].params["Digits"] == "42"
    assert outcome.duration_seconds == pytest.approx(2 * 0.5 + 4)


def test_gather_default_action_is_the_current_document(phone_app):
    """Without action, the digits go to the document's own URL (after a redirect, the new one)."""
    menu = twiml("<Gather numDigits='1'/>")
    phone_app.pages["/answer"] = twiml("<Redirect>/menu?step=1</Redirect>")
    phone_app.pages["/menu"] = lambda: (
        twiml("<Hangup/>") if "Digits" in request.form else menu,
        200,
        {"Content-Type": "text/xml"},
    )
    call(phone_app, Script(keys=["3"]))
    assert [(s.path, s.query) for s in phone_app.seen] == [
        ("/answer", ""),
        ("/menu", "step=1"),
        ("/menu", "step=1"),
    ]
    assert phone_app.seen[2].params["Digits"] == "3"


def test_gather_method_get_sends_parameters_in_the_query(phone_app):
    """method="GET" requests the action with the parameters in its query string, signed."""
    phone_app.pages["/answer"] = twiml('<Gather numDigits="1" action="/g?x=1" method="GET"/>')
    phone_app.pages["/g"] = twiml("<Hangup/>")
    call(phone_app, Script(keys=["5"]))
    seen = phone_app.seen[1]
    assert (seen.method, seen.signed, seen.params["x"], seen.params["Digits"]) == (
        "GET",
        True,
        "1",
        "5",
    )


def test_gather_speech_only_asks_no_keys(phone_app):
    """input="speech" asks the person for no keys: the Gather times out."""
    phone_app.pages["/answer"] = twiml('<Gather input="speech"/>')
    person = Script(keys=["1"])
    outcome = call(phone_app, person)
    assert (person.gathers, outcome.events[0]) == ([], GatherTimedOut())


def test_gather_prompt_looping_forever_without_keys_ends_with_person_hanging_up(phone_app):
    """A Gather whose prompt loops forever and gets no key ends when the person hangs up."""
    phone_app.pages["/answer"] = twiml('<Gather><Say loop="0">Appuyez</Say></Gather><Say>x</Say>')
    outcome = call(phone_app, Script())
    assert outcome.events == [Said("Appuyez", "man", "en-US", 0), HungUp("person")]


# --- Record --------------------------------------------------------------------------------


RECORD = (
    '<Say>Parlez après le bip</Say><Record action="/recorded" maxLength="30" '
    'recordingStatusCallback="/recording-status" finishOnKey="#"/><Say>Rien</Say>'
)


def test_record_posts_the_recording_to_the_action_then_the_status_callback(phone_app):
    """A recording goes to action (RecordingUrl, RecordingDuration), then to the callback."""
    phone_app.pages["/answer"] = twiml(RECORD)
    phone_app.pages["/recorded"] = twiml("<Say>Merci</Say>")
    phone_app.pages["/recording-status"] = ("", 204, {})
    recordings = Recordings()
    ctx = context()
    outcome = call(phone_app, Script(audio=[silence_wav(4.0)]), ctx=ctx, recorder=recordings)
    [url] = recordings.stored
    sid = url.rsplit("/", 1)[1]
    assert outcome.events == [
        Said("Parlez après le bip", "man", "en-US", 1),
        Recorded(url, 4.0),
        Said("Merci", "man", "en-US", 1),
        HungUp("carrier"),
    ]
    assert outcome.error is None
    assert phone_app.paths() == ["/answer", "/recorded", "/recording-status"]
    action, status = phone_app.seen[1].params, phone_app.seen[2].params
    assert (action["RecordingUrl"], action["RecordingDuration"], action["RecordingSid"]) == (
        url,
        "4",
        sid,
    )
    assert action["CallSid"] == ctx.sid
    assert {
        k: status[k]
        for k in (
            "RecordingSid",
            "RecordingUrl",
            "RecordingStatus",
            "RecordingDuration",
            "CallSid",
            "AccountSid",
        )
    } == {
        "RecordingSid": sid,
        "RecordingUrl": url,
        "RecordingStatus": "completed",
        "RecordingDuration": "4",
        "CallSid": ctx.sid,
        "AccountSid": SIMULATOR_ACCOUNT_SID,
    }
    assert all(seen.signed for seen in phone_app.seen)


def test_record_prompt_tells_the_person_the_limits(phone_app):
    """The person is given maxLength, finishOnKey and playBeep."""
    phone_app.pages["/answer"] = twiml('<Record maxLength="20" playBeep="false"/>')
    person = Script()
    call(phone_app, person, recorder=Recordings())
    assert person.records == [RecordPrompt(20, "1234567890*#", False)]


def test_record_is_capped_at_max_length(phone_app):
    """A recording longer than maxLength is cut at maxLength."""
    phone_app.pages["/answer"] = twiml('<Record maxLength="3" action="/r"/>')
    phone_app.pages["/r"] = twiml("<Hangup/>")
    outcome = call(phone_app, Script(audio=[silence_wav(10.0)]), recorder=Recordings())
    assert outcome.events[0].duration_seconds == 3.0
    assert phone_app.seen[1].params["RecordingDuration"] == "3"


def test_record_of_silence_goes_on_without_the_action(phone_app):
    """Nothing said: Twilio drops the recording and runs the next verb; no request."""
    phone_app.pages["/answer"] = twiml(RECORD)
    outcome = call(phone_app, Script(audio=[None]), recorder=Recordings())
    assert outcome.events[1:] == [
        RecordedSilence(5),
        Said("Rien", "man", "en-US", 1),
        HungUp("carrier"),
    ]
    assert phone_app.paths() == ["/answer"]


def test_record_without_a_recorder_fails_the_call(phone_app):
    """Where nothing can store recordings, a <Record> fails the call, saying so."""
    phone_app.pages["/answer"] = twiml(RECORD)
    outcome = call(phone_app, Script(audio=[silence_wav(1.0)]))
    assert outcome.error == "<Record>: recording not supported here"
    assert outcome.events[-1] == Failed(outcome.error)


def test_failing_recording_callback_is_a_warning_not_a_failure(phone_app):
    """A recording status callback answered 500 is reported; the call goes on."""
    phone_app.pages["/answer"] = twiml(RECORD)
    phone_app.pages["/recorded"] = twiml("<Hangup/>")
    phone_app.pages["/recording-status"] = ("boom", 500, {"Content-Type": "text/plain"})
    outcome = call(phone_app, Script(audio=[silence_wav(1.0)]), recorder=Recordings())
    assert outcome.error is None
    assert outcome.events[-1] == HungUp("app")
    assert any("/recording-status answered HTTP 500" in w for w in outcome.warnings)


def test_recording_callback_is_sent_even_when_the_action_is_refused(phone_app):
    """The recording exists whatever the action answered: its callback still comes."""
    phone_app.pages["/answer"] = twiml(RECORD)
    phone_app.pages["/recorded"] = ("oops", 500, {"Content-Type": "text/plain"})
    phone_app.pages["/recording-status"] = ("", 204, {})
    outcome = call(phone_app, Script(audio=[silence_wav(1.0)]), recorder=Recordings())
    assert "/recorded answered HTTP 500" in outcome.error
    assert phone_app.paths() == ["/answer", "/recorded", "/recording-status"]


# --- Redirect, URLs, Reject ----------------------------------------------------------------


def test_redirect_moves_to_another_document(phone_app):
    """<Redirect> requests its URL (POST by default, GET when asked); later verbs never run."""
    phone_app.pages["/answer"] = twiml("<Redirect>/second</Redirect>", "<Say>Jamais</Say>")
    phone_app.pages["/second"] = twiml('<Redirect method="GET">/third</Redirect>')
    phone_app.pages["/third"] = twiml("<Hangup/>")
    outcome = call(phone_app)
    assert outcome.events == [
        Redirected(f"{BASE_URL}/second"),
        Redirected(f"{BASE_URL}/third"),
        HungUp("app"),
    ]
    assert [(s.method, s.path) for s in phone_app.seen] == [
        ("POST", "/answer"),
        ("POST", "/second"),
        ("GET", "/third"),
    ]
    assert phone_app.seen[2].params["CallSid"] == phone_app.seen[0].params["CallSid"]


@pytest.mark.parametrize(
    ("reference", "resolved"),
    [
        ("next", "/ivr/alert/next"),
        ("../menu", "/ivr/menu"),
        ("/root", "/root"),
        ("step?n=2", "/ivr/alert/step?n=2"),
        (f"{BASE_URL}/absolute", "/absolute"),
        ("//voice.example.test/scheme-relative", "/scheme-relative"),
    ],
)
def test_relative_urls_resolve_against_the_document_url(phone_app, reference, resolved):
    """Relative action, Redirect and Play URLs resolve against the document's URL."""
    phone_app.pages["/ivr/alert/start"] = twiml(f"<Redirect>{reference}</Redirect>")
    path, _, query = resolved.partition("?")
    phone_app.pages[path] = twiml("<Hangup/>")
    outcome = call(phone_app, answer="/ivr/alert/start")
    assert outcome.error is None
    assert [(s.path, s.query) for s in phone_app.seen] == [("/ivr/alert/start", ""), (path, query)]


def test_http_redirect_is_followed_and_signed_for_its_url(phone_app):
    """A 302 from the app is followed with GET, signed for the new URL, as Twilio does."""
    phone_app.pages["/answer"] = lambda: redirect("/moved")
    phone_app.pages["/moved"] = twiml("<Say>Ici</Say>")
    outcome = call(phone_app)
    assert outcome.error is None
    assert [(s.method, s.path, s.signed) for s in phone_app.seen] == [
        ("POST", "/answer", True),
        ("GET", "/moved", True),
    ]


def test_redirect_loop_is_bounded(phone_app):
    """An app that redirects forever fails the call after max_steps documents."""
    phone_app.pages["/answer"] = twiml("<Redirect>/answer</Redirect>")
    outcome = call(phone_app, max_steps=7)
    assert len(phone_app.seen) == 7
    assert "more than 7 TwiML documents" in outcome.error
    assert outcome.events[-1] == Failed(outcome.error)


def test_gather_loop_is_bounded(phone_app):
    """A menu that re-prompts forever on every key fails the call after max_steps documents."""
    phone_app.pages["/answer"] = twiml("<Gather numDigits='1'/>")
    outcome = call(phone_app, Script(keys=["9"] * 100), max_steps=5)
    assert len(phone_app.seen) == 5
    assert "more than 5 TwiML documents" in outcome.error


def test_reject_refuses_an_inbound_call(phone_app):
    """<Reject reason="busy"> as an inbound call's first verb refuses it unanswered."""
    phone_app.pages["/answer"] = twiml('<Reject reason="busy"/>')
    outcome = call(phone_app, ctx=context("inbound"))
    assert outcome.events == [Rejected("busy")]
    assert outcome.error is None


def test_reject_on_an_outbound_call_fails(phone_app):
    """<Reject> only answers inbound calls: on an outbound call it fails the call."""
    phone_app.pages["/answer"] = twiml("<Reject/>")
    outcome = call(phone_app)
    assert "<Reject> answers an inbound call's first request only" in outcome.error


def test_unknown_attribute_is_a_warning(phone_app):
    """A miscased attribute is ignored as Twilio ignores it, and reported as a warning."""
    phone_app.pages["/answer"] = twiml('<Gather numdigits="1"/>')
    outcome = call(phone_app)
    assert outcome.error is None
    assert outcome.warnings == [
        f"{BASE_URL}/answer: <Gather> has an unknown attribute 'numdigits' (ignored)"
    ]


# --- Strictness: what Twilio refuses fails the call, with the reason -----------------------


BIG_SAY = "<Say>" + "mot " * 17_000 + "</Say>"
REFUSED = [
    # (answer page, expected part of the reason)
    ("Bonjour", "not well-formed XML"),
    ("<Response><Say>x</Response>", "not well-formed XML"),
    ("<Response><Say>x</Say></Response><Response/>", "not well-formed XML"),
    ("", "not well-formed XML"),
    ('<!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Say>&a;</Say></Response>', "DOCTYPE"),
    (("<Response/>", 200, {"Content-Type": "application/json"}), "not TwiML"),
    (
        ("<Response/>", 200, {"Content-Type": "text/plain"}),
        "read the body aloud and hang up (Twilio error 12300)",
    ),
    (("<Response/>", 200, {"Content-Type": "audio/mpeg"}), "play it and hang up"),
    (("<Response/>", 200, {"Content-Type": ""}), "no Content-Type"),
    ("<Twiml><Say>x</Say></Twiml>", "root element is <Twiml>, not <Response> (Twilio error 12102)"),
    ("<response><Say>x</Say></response>", "not <Response>"),
    (twiml("<Speak>x</Speak>"), "<Speak> is not a TwiML verb"),
    (twiml("<say>x</say>"), "<say> is not a TwiML verb"),
    (twiml("<Dial>+3222222222</Dial>"), "<Dial> is TwiML the simulator does not run"),
    (twiml("<Gather><Gather/></Gather>"), "<Gather> inside <Gather> (only Say, Play, Pause)"),
    (twiml("<Gather><Record/></Gather>"), "<Record> inside <Gather>"),
    (twiml("<Gather><Redirect>/x</Redirect></Gather>"), "<Redirect> inside <Gather>"),
    (twiml("<Gather>Appuyez</Gather>"), "text directly inside <Gather>"),
    (twiml("<Say>Bonjour <Play>/a.wav</Play></Say>"), "<Play> inside <Say>"),
    (twiml("<Hangup><Say>x</Say></Hangup>"), "<Say> inside <Hangup>"),
    (twiml("<Hangup>now</Hangup>"), "text directly inside <Hangup>"),
    (twiml("<Redirect><Say>x</Say></Redirect>"), "<Say> inside <Redirect>"),
    (twiml("<Pause>3</Pause>"), "text directly inside <Pause>"),
    (twiml("<Play><Say>x</Say></Play>"), "<Say> inside <Play>"),
    (twiml("Bonjour<Say>x</Say>"), "text directly inside <Response>"),
    (twiml(BIG_SAY), "over 64 kB (Twilio error 11750)"),
    (twiml("<Say></Say>"), "<Say> with no text (Twilio error 13520)"),
    (twiml("<Play/>"), "<Play> with no URL"),
    (twiml('<Play digits="12a"/>'), "<Play digits='12a'>"),
    (twiml("<Redirect/>"), "<Redirect> with no URL"),
    (twiml("<Redirect>mailto:x@example.be</Redirect>"), "cannot be resolved to an http(s) URL"),
    (twiml("<Redirect>ftp://files.example.be/x</Redirect>"), "'ftp://files.example.be/x' cannot"),
    (twiml('<Gather action="javascript:alert(1)"/>'), "<Gather action> URL 'javascript:alert(1)'"),
    (twiml("<Play>file:///etc/passwd</Play>"), "<Play> URL 'file:///etc/passwd' cannot"),
    (twiml('<Record recordingStatusCallback="tel:+32470"/>'), "<Record recordingStatusCallback>"),
    (twiml('<Gather numDigits="0"/>'), "numDigits='0'>: expected a positive integer"),
    (twiml('<Gather numDigits="-1"/>'), "numDigits='-1'>: expected a positive integer"),
    (twiml('<Gather numDigits="one"/>'), "numDigits='one'>"),
    (twiml('<Gather timeout="soon"/>'), "timeout='soon'>: expected a positive integer"),
    (twiml('<Gather timeout="2.5"/>'), "timeout='2.5'>"),
    (twiml('<Gather method="PUT"/>'), "method='PUT'>: GET or POST"),
    (twiml('<Redirect method="get">/x</Redirect>'), "method='get'>: GET or POST"),
    (twiml('<Gather finishOnKey="##"/>'), "finishOnKey='##'>"),
    (twiml('<Gather input="keys"/>'), "input='keys'>"),
    (twiml('<Gather actionOnEmptyResult="yes"/>'), "actionOnEmptyResult='yes'>: true or false"),
    (twiml('<Say loop="-1">x</Say>'), "loop='-1'>: expected a non-negative integer"),
    (twiml('<Play loop="twice">/a.wav</Play>'), "loop='twice'>"),
    (twiml('<Pause length="long"/>'), "length='long'>"),
    (twiml('<Say language="fr-XX">x</Say>'), "language='fr-XX'> is not a language Twilio speaks"),
    (twiml('<Say language="french">x</Say>'), "language='french'>"),
    (twiml('<Say voice="robot">x</Say>'), "voice='robot'> is not a Twilio voice"),
    (twiml('<Record maxLength="0"/>'), "maxLength='0'>"),
    (twiml('<Record playBeep="1"/>'), "playBeep='1'>"),
    (twiml('<Record trim="cut"/>'), "trim='cut'>"),
    (twiml('<Reject reason="nope"/>'), "reason='nope'>"),
    (twiml("<Say>x</Say><Reject/>"), "<Reject> must be the first verb"),
    (("<Response/>", 500, {"Content-Type": "text/xml"}), "answered HTTP 500 (Twilio error 11200)"),
    (("nope", 404, {"Content-Type": "text/plain"}), "answered HTTP 404"),
    (("denied", 403, {"Content-Type": "text/plain"}), "answered HTTP 403"),
]


@pytest.mark.parametrize(("page", "reason"), REFUSED)
def test_refused_response_fails_the_call_with_its_reason(phone_app, page, reason):
    """A response Twilio would refuse fails the call before any verb runs, saying why."""
    phone_app.pages["/answer"] = page
    outcome = call(phone_app, Script(keys=["1"]), recorder=Recordings())
    assert outcome.error is not None
    assert reason in outcome.error
    assert f"{BASE_URL}/answer" in outcome.error
    assert outcome.events == [Failed(outcome.error)]


@pytest.mark.parametrize(
    "content_type",
    ["text/xml", "text/xml; charset=utf-8", "application/xml", "text/html; charset=UTF-8"],
)
def test_twiml_content_types_are_accepted(phone_app, content_type):
    """text/xml, application/xml and text/html (with parameters) are read as TwiML."""
    phone_app.pages["/answer"] = (twiml("<Say>Oui</Say>"), 200, {"Content-Type": content_type})
    assert call(phone_app).error is None


def test_document_of_exactly_64_kb_is_accepted(phone_app):
    """The 64 kB limit is inclusive: a document of exactly 65536 bytes runs."""
    head = twiml("<Say>x</Say>")
    page = head.replace("</Response>", "<!--" + "x" * (65536 - len(head) - 7) + "--></Response>")
    assert len(page.encode()) == 65536
    phone_app.pages["/answer"] = page
    assert call(phone_app).error is None


def test_later_document_refused_fails_the_call_after_what_ran(phone_app):
    """A refused action answer fails the call where it happens; earlier events are kept."""
    phone_app.pages["/answer"] = twiml('<Gather numDigits="1" action="/broken"/>')
    phone_app.pages["/broken"] = ("<Response><Oops/></Response>", 200, {"Content-Type": "text/xml"})
    outcome = call(phone_app, Script(keys=["1"]))
    assert outcome.events[0] == Pressed("1")
    assert outcome.events[-1] == Failed(
        f"{BASE_URL}/broken: <Oops> is not a TwiML verb (Twilio error 12200)"
    )


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (
            ("<Response/>", 200, {"Content-Type": "text/xml"}),
            "text/xml, not audio (Twilio error 12300)",
        ),
        (("missing", 404, {"Content-Type": "text/plain"}), "answered HTTP 404"),
    ],
)
def test_play_of_something_not_audio_fails_the_call(phone_app, audio, reason):
    """A <Play> URL that is not audio (or not there) fails the call, saying so."""
    phone_app.pages["/answer"] = twiml("<Play>/audio/a.mp3</Play>")
    phone_app.pages["/audio/a.mp3"] = audio
    outcome = call(phone_app)
    assert reason in outcome.error
    assert f"{BASE_URL}/audio/a.mp3" in outcome.error


def test_url_outside_the_app_is_unreachable(phone_app):
    """A URL the transport cannot reach fails the call (Twilio's HTTP retrieval failure)."""
    phone_app.pages["/answer"] = twiml("<Redirect>https://elsewhere.example.org/x</Redirect>")
    outcome = call(phone_app)
    assert "https://elsewhere.example.org/x is outside the app" in outcome.error
    assert "11200" in outcome.error


def test_app_exception_is_a_500_that_fails_the_call(phone_app):
    """An app that raises is answered 500, as a server would: the call fails, nothing escapes."""

    def broken():
        raise RuntimeError("database gone")

    phone_app.pages["/answer"] = broken
    outcome = call(phone_app)
    assert "answered HTTP 500" in outcome.error


# --- Transcript ------------------------------------------------------------------------------


def test_events_serialize_with_their_kind():
    """Each event's JSON form has its kind and its fields, as the store keeps it."""
    assert [
        event.to_json()
        for event in (
            Said("Bonjour", "Polly.Celine", "fr-FR", 1),
            Played("https://a/b.mp3", 2),
            Pressed("1#"),
            GatherTimedOut(),
            Recorded("https://a/RE1", 3.5),
            RecordedSilence(5),
            Paused(2),
            Redirected("https://a/next"),
            HungUp("person"),
            Rejected("busy"),
            Failed("why"),
        )
    ] == [
        {
            "kind": "said",
            "text": "Bonjour",
            "voice": "Polly.Celine",
            "language": "fr-FR",
            "loop": 1,
        },
        {"kind": "played", "url": "https://a/b.mp3", "loop": 2, "digits": ""},
        {"kind": "pressed", "digits": "1#"},
        {"kind": "gather_timed_out"},
        {"kind": "recorded", "url": "https://a/RE1", "duration_seconds": 3.5},
        {"kind": "recorded_silence", "seconds": 5},
        {"kind": "paused", "seconds": 2},
        {"kind": "redirected", "url": "https://a/next"},
        {"kind": "hung_up", "by": "person"},
        {"kind": "rejected", "reason": "busy"},
        {"kind": "failed", "reason": "why"},
    ]


# --- Clocks --------------------------------------------------------------------------------


def test_instant_clock_adds_up_without_waiting():
    """InstantClock's time is the sum of the sleeps; negative sleeps count as zero."""
    clock = InstantClock()
    for seconds in (1.5, 2, -3):
        clock.sleep(seconds)
    assert clock.now() == 3.5


def test_real_clock_sleeps_through_durations(monkeypatch):
    """RealClock sleeps for real (time.sleep), and not at all for zero."""
    slept = []
    monkeypatch.setattr(clock_module.time, "sleep", slept.append)
    clock = RealClock()
    clock.sleep(2.5)
    clock.sleep(0)
    assert slept == [2.5]
