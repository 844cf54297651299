"""The simulated carrier end to end: every behaviour through the app's real webhooks.

The app's provider is the simulator; each call or SMS it accepts gets a Delivery row
holding the returned SID, committed before the network starts (`SIMULATOR_AUTOSTART`
off, then `start_pending()`), as a sending job commits it right after the provider
returns. The status callbacks then update the row through the app's real /ivr/status
and /sms/status. The answer URL, /ivr/incoming and /sms/incoming are small blueprints
of these tests, signed-checked by the app's real decorator (the app's own come later).
"""

from __future__ import annotations

import dataclasses
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Blueprint, Flask, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.serving import make_server

from alerts.delivery.provider import (
    CallRequest,
    InvalidNumberError,
    OptedOutError,
    SmsNotSupportedError,
    SmsRequest,
    get_provider,
    set_provider,
)
from alerts.delivery.twilio_provider import error_for
from alerts.models import Channel, Delivery, DeliveryStatus
from core.extensions import db, redis_url
from core.webhooks import twilio_signed
from prompts import text
from simulator import carrier, config, store
from simulator.adapters.cli import run_carrier
from simulator.adapters.provider import SimulatorProvider
from simulator.behaviour import Behaviour
from simulator.calls import SIMULATOR_ACCOUNT_SID
from simulator.clock import Latency
from simulator.messaging import message_replies
from simulator.network import Network, reserve_carrier_slot
from simulator.transport import HttpTransport, TransportResponse, WsgiTransport
from tests.support import FLASK, PROJECT_ROOT, TEST_SECRET, subprocess_env

SIMULATOR_SETTINGS = {
    "SIMULATOR_MODE": "thread",
    "SIMULATOR_LATENCY": "zero",
    "SIMULATOR_AUTOSTART": False,
    "CALLS_PER_SECOND": 1000,
    "SMS_PER_SECOND": 1000,
}
pytestmark = pytest.mark.app_settings(**SIMULATOR_SETTINGS)

NUMBER = "+32470555001"
LANDLINE = "+3225110102"
WAIT_SECONDS = 20  # a bound for lives that take milliseconds: reached only on a bug

# --- What later issues bring to the app: call TwiML and an SMS endpoint -------------------

phone = Blueprint("test_phone", __name__)


def received() -> dict[str, list]:
    """Return what the test endpoints of this app received."""
    return current_app.extensions.setdefault(
        "test_phone", {"answers": [], "digits": [], "sms": [], "inbound_calls": []}
    )


def twiml(response) -> Response:
    """Return a TwiML response as the app's helper does."""
    return Response(str(response), content_type="text/xml")


def alert_menu() -> VoiceResponse:
    """Say an alert and gather one key (1 confirms), then say goodbye."""
    base = current_app.extensions["settings"].public_base_url
    response = VoiceResponse()
    gather = response.gather(num_digits=1, timeout=5, action=f"{base}/test/digits")
    gather.say("Alerte: cambriolage rue de la Station. Appuyez sur 1.", language="fr-FR")
    response.say("Au revoir.", language="fr-FR")
    return response


@phone.post("/test/answer")
@twilio_signed
def answer():
    """The alert call's TwiML."""
    received()["answers"].append(request.form.to_dict())
    return twiml(alert_menu())


@phone.post("/test/broken")
@twilio_signed
def broken():
    """An answer URL Twilio would refuse: not TwiML."""
    return "oops", 200, {"Content-Type": "text/plain"}


@phone.post("/test/digits")
@twilio_signed
def digits():
    """Record the key pressed, thank and hang up."""
    received()["digits"].append(request.form["Digits"])
    response = VoiceResponse()
    response.say("Merci.", language="fr-FR")
    response.hangup()
    return twiml(response)


def recording(app: Flask, endpoint: str, kind: str) -> None:
    """Wrap the app's own view `endpoint` to keep each form it is posted, as it arrives."""
    view = app.view_functions[endpoint]

    def recorded(*args, **kwargs):
        received()[kind].append(request.form.to_dict())
        return view(*args, **kwargs)

    app.view_functions[endpoint] = recorded


# --- Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def simulator(app) -> Iterator[SimulatorProvider]:
    """The app's provider: the simulator, with the test endpoints on the app."""
    app.register_blueprint(phone)
    # The PLP number's real webhooks answer; the test keeps what the carrier posted them.
    recording(app, "ivr.incoming_call", "inbound_calls")
    recording(app, "messaging.incoming_sms", "sms")
    provider = SimulatorProvider(app)
    set_provider(app, provider)
    yield provider
    network = app.extensions.get("simulator_network")
    if network is not None:
        network.close()


def base(app: Flask) -> str:
    """Return the app's public base URL."""
    return app.extensions["settings"].public_base_url


def call_request(app: Flask, to: str, *, answer: str = "/test/answer") -> CallRequest:
    """Return a call request as the sending job builds it."""
    return CallRequest(
        to=to, answer_url=base(app) + answer, status_callback_url=base(app) + "/ivr/status"
    )


def sms_request(app: Flask, to: str, body: str = "Alerte PLP: cambriolage") -> SmsRequest:
    """Return an SMS request as the sending job builds it."""
    return SmsRequest(to=to, body=body, status_callback_url=base(app) + "/sms/status")


def carry(provider: SimulatorProvider) -> None:
    """Start the lives held back and wait until they have ended."""
    provider.network.start_pending()
    assert provider.network.wait_idle(WAIT_SECONDS)


def delivered(
    provider, make_delivery, make_person, channel: Channel, *, to: str, place: Callable[[], object]
) -> Delivery:
    """Place a request, commit its Delivery with the SID, carry it; return the fresh row."""
    sent = place()
    person = make_person(phone=to)
    delivery = make_delivery(channel, person=person, provider_sid=sent.sid)
    carry(provider)
    db.session.expire_all()
    return db.session.get(Delivery, delivery.id)


@pytest.fixture
def call(app, simulator, make_delivery, make_person):
    """Factory: a call to a number of the given behaviour, carried to its end."""

    def make(behaviour: Behaviour, *, to: str = NUMBER, answer: str = "/test/answer"):
        store.set_behaviour(to, behaviour)
        request_ = call_request(app, to, answer=answer)
        return delivered(
            simulator,
            make_delivery,
            make_person,
            Channel.CALL,
            to=to,
            place=lambda: simulator.place_call(request_),
        )

    return make


@pytest.fixture
def sms(app, simulator, make_delivery, make_person):
    """Factory: an SMS to a number of the given behaviour, carried to its end."""

    def make(behaviour: Behaviour, *, to: str = NUMBER, body: str = "Alerte PLP"):
        store.set_behaviour(to, behaviour)
        request_ = sms_request(app, to, body)
        return delivered(
            simulator,
            make_delivery,
            make_person,
            Channel.SMS,
            to=to,
            place=lambda: simulator.send_sms(request_),
        )

    return make


def carried_call(app: Flask, sid: str, to: str = NUMBER) -> dict:
    """Return the request the provider hands the network for a call to `to`."""
    return {
        "kind": "call",
        "sid": sid,
        "from": config.plp_number(),
        "to": to,
        "answer_url": base(app) + "/test/answer",
        "status_callback_url": base(app) + "/ivr/status",
        "machine_detection": True,
        "timeout_seconds": 30,
    }


def event_kinds(sid: str) -> list[str]:
    """Return the kinds of the events the store kept for a call."""
    return [event["kind"] for event in store.get_call(sid)["events"]]


# --- Calls ------------------------------------------------------------------------------------


def test_the_simulator_is_the_provider_without_twilio_credentials(app):
    """PHONE_PROVIDER=simulator builds the simulator provider through the registry."""
    set_provider(app, None)
    assert isinstance(get_provider(app), SimulatorProvider)
    get_provider(app).network.close()


def test_answer_and_press_1_completes_the_call_answered_by_a_human(app, call):
    """A person who answers and presses 1: completed, human, the key reaches the app."""
    delivery = call(Behaviour("answer", answer_after=3, keys=("1",)))
    assert delivery.status == DeliveryStatus.COMPLETED
    assert delivery.answered_by == "human"
    assert delivery.duration_seconds >= 1  # the message was spoken (simulated time)
    assert received()["digits"] == ["1"]
    answer_form = received()["answers"][0]
    assert answer_form["AnsweredBy"] == "human"
    assert answer_form["CallStatus"] == "in-progress"
    assert answer_form["AccountSid"] == SIMULATOR_ACCOUNT_SID
    kinds = event_kinds(delivery.provider_sid)
    assert kinds[:2] == ["said", "pressed"]
    assert store.get_call(delivery.provider_sid)["status"] == "completed"


def test_silent_person_completes_the_call_without_a_key(app, call):
    """A person who answers and presses nothing: completed, and no key reaches the app."""
    delivery = call(Behaviour("silent"))
    assert delivery.status == DeliveryStatus.COMPLETED
    assert delivery.answered_by == "human"
    assert received()["digits"] == []
    assert "gather_timed_out" in event_kinds(delivery.provider_sid)


def test_unanswered_call_ends_no_answer(app, call):
    """A phone that rings out: no-answer, and the TwiML is never fetched."""
    delivery = call(Behaviour("no_answer"))
    assert delivery.status == DeliveryStatus.NO_ANSWER
    assert delivery.duration_seconds == 0
    assert received()["answers"] == []


def test_a_person_slower_than_the_ringing_timeout_does_not_answer(app, call):
    """Answering after the call's ringing timeout is no answer, as on a real network."""
    delivery = call(Behaviour("answer", answer_after=45))
    assert delivery.status == DeliveryStatus.NO_ANSWER


def test_busy_line_ends_busy(app, call):
    """A busy line: busy."""
    delivery = call(Behaviour("busy"))
    assert delivery.status == DeliveryStatus.BUSY
    assert received()["answers"] == []


def test_voicemail_completes_answered_by_a_machine_after_its_greeting(app, call):
    """A voicemail: completed, AnsweredBy machine_end_beep, in the answer URL's form too."""
    delivery = call(Behaviour("voicemail", answer_after=20))
    assert delivery.status == DeliveryStatus.COMPLETED
    assert delivery.answered_by == "machine_end_beep"
    assert received()["answers"][0]["AnsweredBy"] == "machine_end_beep"
    assert received()["digits"] == []  # a machine presses nothing


def test_unreachable_phone_fails_the_call(app, call):
    """A phone the network cannot reach: failed."""
    delivery = call(Behaviour("failed"))
    assert delivery.status == DeliveryStatus.FAILED
    assert received()["answers"] == []


def test_landline_answers_calls(app, call):
    """A landline takes calls like anyone (only SMS are refused)."""
    delivery = call(Behaviour("landline", keys=("1",)), to=LANDLINE)
    assert delivery.status == DeliveryStatus.COMPLETED
    assert received()["digits"] == ["1"]


def test_interactive_person_presses_the_keys_pushed_by_the_page(
    app, simulator, make_delivery, make_person
):
    """An interactive person presses what the dev page pushed for the live call."""
    store.set_behaviour(NUMBER, Behaviour("interactive", answer_after=2))
    sent = simulator.place_call(call_request(app, NUMBER))
    make_delivery(Channel.CALL, person=make_person(phone=NUMBER), provider_sid=sent.sid)
    store.push_keys(sent.sid, "1")
    carry(simulator)
    assert received()["digits"] == ["1"]
    assert store.get_call(sent.sid)["live"] is False


def test_invalid_number_is_refused_at_once_as_twilio_does(app, simulator):
    """An invalid number: InvalidNumberError 21211 with Twilio's message; nothing carried."""
    store.set_behaviour(NUMBER, Behaviour("invalid"))
    with pytest.raises(InvalidNumberError) as refused:
        simulator.place_call(call_request(app, NUMBER))
    assert refused.value.code == "21211"
    assert refused.value.message == error_for(21211).message
    with pytest.raises(InvalidNumberError):
        simulator.send_sms(sms_request(app, NUMBER))
    assert simulator.network.start_pending() == 0
    assert store.snapshot()["numbers"][NUMBER]["calls"] == []


def test_a_number_that_is_not_e164_is_refused_as_invalid(app, simulator):
    """A malformed number is refused with 21211, as Twilio refuses it."""
    with pytest.raises(InvalidNumberError):
        simulator.place_call(call_request(app, "0470 55 50 01"))


def test_twiml_twilio_would_refuse_is_recorded_and_the_call_still_ends(app, call):
    """A broken answer URL: the call's error is recorded; the app hears the call end."""
    delivery = call(Behaviour("answer"), answer="/test/broken")
    assert delivery.status == DeliveryStatus.COMPLETED
    stored = store.get_call(delivery.provider_sid)
    assert stored["error"] is not None
    assert "failed" in event_kinds(delivery.provider_sid)


def test_status_callbacks_the_app_refuses_are_recorded_never_raised(app, simulator):
    """Callbacks signed with a wrong token get 403: recorded as problems, the life ends."""
    store.set_behaviour(NUMBER, Behaviour("busy"))
    sent = simulator.place_call(call_request(app, NUMBER))
    network = Network(app, WsgiTransport(app, token="not-the-token"), zero_latency=True)
    try:
        network.carry(carried_call(app, sent.sid))
    finally:
        network.close()
    stored = store.get_call(sent.sid)
    assert stored["status"] == "busy"
    assert [p.split(":")[0] for p in stored["problems"]] == ["initiated callback", "busy callback"]
    assert "403" in stored["problems"][0]


def test_inbound_call_runs_the_plp_numbers_twiml(app, simulator):
    """A stranger calling the PLP number: /ivr/incoming gets Twilio's fields, and the
    caller hears the app's polite refusal, in French then Dutch, then the call ends."""
    sid = carrier.inbound_call(NUMBER, keys=("1",))
    carry(simulator)
    [form] = received()["inbound_calls"]
    assert form["Direction"] == "inbound"
    assert form["From"] == NUMBER
    assert form["To"] == config.plp_number()
    assert form["CallSid"] == sid
    call = store.get_call(sid)
    said = [e["text"] for e in call["events"] if e["kind"] == "said"]
    assert said == [text("voice.stranger", "fr"), text("voice.stranger", "nl")]
    assert call["status"] == "completed"


def test_stopping_the_carrier_ends_a_ringing_call_failed(
    app, simulator, make_delivery, make_person
):
    """Stopped while a phone rings (real time), the carrier reports the call failed."""
    store.set_behaviour(NUMBER, Behaviour("no_answer"))
    sent = simulator.place_call(call_request(app, NUMBER))
    delivery = make_delivery(Channel.CALL, person=make_person(phone=NUMBER), provider_sid=sent.sid)
    network = Network(app, WsgiTransport(app), latency=Latency(setup=(0, 0)))
    network.submit(carried_call(app, sent.sid))
    try:
        assert wait_until(lambda: store.get_call(sent.sid)["status"] == "ringing")
    finally:
        network.close()
    assert status_of(delivery.id) == DeliveryStatus.FAILED
    assert store.get_call(sent.sid)["error"] == "the carrier stopped during the call"


def test_a_request_not_yet_carried_goes_back_to_the_queue_on_stop(app):
    """Stopping the carrier process gives back a request waiting for the carrier's rate."""
    reserve_carrier_slot("sms", 0.01)  # the next free slot is 100 s away
    request_ = {
        "kind": "sms",
        "sid": "SM" + "5" * 32,
        "from": config.plp_number(),
        "to": NUMBER,
        "body": "Alerte",
        "status_callback_url": base(app) + "/sms/status",
    }
    network = Network(app, WsgiTransport(app), requeue_on_stop=True)
    network.submit(request_)
    network.close()
    assert store.pop_request(1) == request_
    assert store.get_message(request_["sid"]) is None  # nothing of its life happened


# --- SMS --------------------------------------------------------------------------------------


def test_sms_to_a_handset_is_delivered(app, sms):
    """An SMS to a mobile: delivered, and the store shows its statuses ended delivered."""
    delivery = sms(Behaviour("answer"))
    assert delivery.status == DeliveryStatus.DELIVERED
    assert store.get_message(delivery.provider_sid)["status"] == "delivered"


def test_sms_is_delivered_in_real_time_too(app, simulator, make_delivery, make_person):
    """With real latency (a fast network model) an SMS goes through the same statuses."""
    store.set_behaviour(NUMBER, Behaviour("answer"))
    sent = simulator.send_sms(sms_request(app, NUMBER))
    delivery = make_delivery(Channel.SMS, person=make_person(phone=NUMBER), provider_sid=sent.sid)
    fast = Latency(sms_sent=(0.01, 0.02), sms_delivered=(0.01, 0.02))
    network = Network(app, WsgiTransport(app), latency=fast)
    try:
        network.submit(
            {
                "kind": "sms",
                "sid": sent.sid,
                "from": config.plp_number(),
                "to": NUMBER,
                "body": "Alerte",
                "status_callback_url": base(app) + "/sms/status",
            }
        )
        assert network.wait_idle(WAIT_SECONDS)
    finally:
        network.close()
    assert status_of(delivery.id) == DeliveryStatus.DELIVERED


def test_sms_to_an_unreachable_handset_is_undelivered_with_twilios_error(app, sms):
    """An SMS to a phone that is off: undelivered, ErrorCode 30003."""
    delivery = sms(Behaviour("failed"))
    assert delivery.status == DeliveryStatus.UNDELIVERED
    assert delivery.error_code == "30003"


def test_sms_to_a_landline_is_refused_as_twilio_does(app, simulator):
    """An SMS to a landline: SmsNotSupportedError 21614 with Twilio's message."""
    store.set_behaviour(LANDLINE, Behaviour("landline"))
    with pytest.raises(SmsNotSupportedError) as refused:
        simulator.send_sms(sms_request(app, LANDLINE))
    assert refused.value.code == "21614"
    assert refused.value.message == error_for(21614).message
    assert simulator.network.start_pending() == 0


def test_sms_reply_is_posted_to_sms_incoming_signed(app, sms):
    """A person who texts back: their reply reaches /sms/incoming with Twilio's fields."""
    delivery = sms(Behaviour("answer", sms_reply="OK merci", reply_after=30))
    assert delivery.status == DeliveryStatus.DELIVERED
    [form] = received()["sms"]
    assert form["From"] == NUMBER
    assert form["To"] == config.plp_number()
    assert form["Body"] == "OK merci"
    assert form["NumSegments"] == "1"
    assert form["NumMedia"] == "0"
    assert form["SmsStatus"] == "received"
    assert form["MessageSid"].startswith("SM")
    assert "OptOutType" not in form
    # The app's TwiML answer goes back to the person as an SMS.
    messages = store.snapshot()["numbers"][NUMBER]["messages"]
    assert [m["body"] for m in messages[:2]] == ["Alerte PLP", "OK merci"]
    [answer] = messages[2:]
    assert (answer["by"], answer["direction"], answer["to"]) == ("app", "outbound", NUMBER)


def test_stop_opts_out_at_the_carrier_and_start_reverses_it(
    app, simulator, make_delivery, make_person
):
    """STOP reaches the app with OptOutType=STOP and blocks SMS (21610); START unblocks."""
    carrier.inbound_sms(NUMBER, "stop")
    carry(simulator)
    assert received()["sms"][-1]["OptOutType"] == "STOP"
    assert store.is_opted_out(NUMBER)
    with pytest.raises(OptedOutError) as refused:
        simulator.send_sms(sms_request(app, NUMBER))
    assert refused.value.code == "21610"
    assert refused.value.message == error_for(21610).message
    # The carrier confirms the opt-out itself, as Twilio does; the app adds no reply.
    messages = store.snapshot()["numbers"][NUMBER]["messages"]
    assert not any(m.get("by") == "app" for m in messages)
    assert any(m.get("by") == "carrier" and "unsubscribed" in m["body"] for m in messages)

    carrier.inbound_sms(NUMBER, "START")
    carry(simulator)
    assert received()["sms"][-1]["OptOutType"] == "START"
    assert not store.is_opted_out(NUMBER)
    store.set_behaviour(NUMBER, Behaviour("answer"))
    delivery = delivered(
        simulator,
        make_delivery,
        make_person,
        Channel.SMS,
        to=NUMBER,
        place=lambda: simulator.send_sms(sms_request(app, NUMBER)),
    )
    assert delivery.status == DeliveryStatus.DELIVERED


def test_help_reaches_the_app_with_its_opt_out_type(app, simulator):
    """HELP reaches the app with OptOutType=HELP and opts nobody out."""
    carrier.inbound_sms(NUMBER, " Help ")
    carry(simulator)
    assert received()["sms"][-1]["OptOutType"] == "HELP"
    assert not store.is_opted_out(NUMBER)


def test_long_inbound_sms_reports_its_segments(app, simulator):
    """An inbound text of 200 GSM characters arrives as 2 segments."""
    carrier.inbound_sms(NUMBER, "ALERTE " + "x" * 193)
    carry(simulator)
    assert received()["sms"][-1]["NumSegments"] == "2"


# --- Messaging TwiML and the carrier's rate limit ------------------------------------------


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (TransportResponse(500, "text/plain", b"boom"), "HTTP 500"),
        (TransportResponse(200, "application/json", b"{}"), "12300"),
        (TransportResponse(200, "text/xml", b"<Response><Message>"), "12100"),
        (TransportResponse(200, "text/xml", b"<Reply/>"), "12102"),
        (TransportResponse(200, "text/xml", b"<Response><Say>hi</Say></Response>"), "12200"),
        (
            TransportResponse(200, "text/xml", b"<Response>" + b" " * 70_000 + b"</Response>"),
            "11750",
        ),
    ],
)
def test_messaging_twiml_twilio_would_refuse_is_reported(response, problem):
    """Each answer to an inbound SMS that Twilio would refuse is refused, saying why."""
    with pytest.raises(ValueError, match=problem):
        message_replies(response)


def test_messaging_twiml_replies_are_read():
    """<Message> text, <Body> and `to` are read; an empty answer sends nothing."""
    body = (
        b'<?xml version="1.0"?><Response><Message>Un</Message>'
        b'<Message to="+32470000009"><Body>Deux</Body></Message></Response>'
    )
    replies = message_replies(TransportResponse(200, "text/xml; charset=utf-8", body))
    assert replies == [(None, "Un"), ("+32470000009", "Deux")]
    assert message_replies(TransportResponse(204, "", b"")) == []


def test_the_carrier_spaces_what_it_takes_at_its_rate(app):
    """At 2 per second the carrier takes the first request now and the next half a second on."""
    first = reserve_carrier_slot("call", 2)
    second = reserve_carrier_slot("call", 2)
    other = reserve_carrier_slot("sms", 2)
    assert first == 0
    assert 0.3 < second <= 0.5
    assert other == 0  # channels are limited separately


# --- Queue mode: the carrier process -------------------------------------------------------


QUEUE_SETTINGS = {**SIMULATOR_SETTINGS, "SIMULATOR_MODE": "queue"}


class Server:
    """The app served over HTTP by werkzeug in a thread, as gunicorn serves it."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def served(app, simulator) -> Iterator[Server]:
    """The app served over HTTP, its PUBLIC_BASE_URL the server's (bound to a free port)."""
    server = Server(app)
    settings = app.extensions["settings"]
    app.extensions["settings"] = dataclasses.replace(settings, public_base_url=server.url)
    server.thread.start()
    yield server
    server.server.shutdown()
    server.thread.join(WAIT_SECONDS)


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll `condition` until it holds or WAIT_SECONDS pass; return whether it held."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        db.session.rollback()  # end the read transaction: see what the app committed
        if condition():
            return True
        time.sleep(0.05)
    return False


def status_of(delivery_id: int) -> DeliveryStatus:
    """Return a delivery's status as committed now."""
    return db.session.get(Delivery, delivery_id, populate_existing=True).status


@pytest.mark.app_settings(**QUEUE_SETTINGS)
def test_queue_mode_carrier_reaches_the_app_over_http(app, served, make_delivery, make_person):
    """In queue mode a call waits in Redis; the carrier loop carries it over HTTP."""
    store.set_behaviour(NUMBER, Behaviour("answer", keys=("1",)))
    sent = get_provider(app).place_call(call_request(app, NUMBER))
    assert store.pending_requests() == 1
    delivery = make_delivery(Channel.CALL, person=make_person(phone=NUMBER), provider_sid=sent.sid)
    stop = threading.Event()

    def carrier_loop():
        with app.app_context():
            run_carrier(app, stop, workers=4, zero_latency=True, transport=HttpTransport(10))

    runner = threading.Thread(target=carrier_loop)
    runner.start()
    try:
        assert wait_until(lambda: status_of(delivery.id) == DeliveryStatus.COMPLETED)
    finally:
        stop.set()
        runner.join(WAIT_SECONDS)
    assert not runner.is_alive()
    assert db.session.get(Delivery, delivery.id).answered_by == "human"
    assert received()["digits"] == ["1"]
    assert store.pending_requests() == 0


def procfile(name: str) -> dict[str, list[str]]:
    """Return the processes of a Procfile of the project: name -> command."""
    entries = {}
    for line in (PROJECT_ROOT / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            process, command = line.split(":", 1)
            entries[process.strip()] = shlex.split(command)
    return entries


def test_procfile_dev_runs_the_procfile_and_the_carrier():
    """`make run`'s Procfile.dev: the Procfile's web and worker, plus the carrier process."""
    dev = procfile("Procfile.dev")
    assert {k: v for k, v in dev.items() if k != "carrier"} == procfile("Procfile")
    assert dev["carrier"] == ["flask", "--app", "wsgi", "simulator", "run"]


@pytest.mark.slow
@pytest.mark.app_settings(**QUEUE_SETTINGS)
def test_carrier_command_carries_queued_sms_and_stops_cleanly_on_sigterm(
    app, served, make_delivery, make_person
):
    """`flask simulator run` carries a queued SMS over HTTP, then exits 0 on SIGTERM."""
    store.set_behaviour(NUMBER, Behaviour("answer"))
    sent = get_provider(app).send_sms(sms_request(app, NUMBER))
    delivery = make_delivery(Channel.SMS, person=make_person(phone=NUMBER), provider_sid=sent.sid)
    settings = app.extensions["settings"]
    env = subprocess_env(
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url(app),
        PUBLIC_BASE_URL=served.url,
        SMS_PER_SECOND="1000",
        SECRET_KEY=TEST_SECRET,
    )
    process = subprocess.Popen(
        [*FLASK, *procfile("Procfile.dev")["carrier"][3:], "--latency", "zero", "--workers", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: status_of(delivery.id) == DeliveryStatus.DELIVERED)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 0, err
    assert "simulator carrier" in out
    assert "Traceback" not in err
