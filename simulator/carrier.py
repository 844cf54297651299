"""The simulated phone network: the life of every call and message, as Twilio lives it.

An outbound call goes queued -> initiated -> ringing -> in-progress -> completed (or busy,
no-answer, failed), each step a signed status callback with Twilio's parameters. When
the person picks up, answering-machine detection judges who answered (a voicemail is
`machine_end_beep` once its greeting is over), then the answer URL's TwiML runs
(`twiml.run_call`) with the person on the line. An SMS goes queued -> sent -> delivered
(or undelivered, with Twilio's ErrorCode), and the person may text back. Inbound
messages are POSTed to /sms/incoming as Twilio posts them; STOP and START are handled
by the carrier as Twilio's opt-out handles them: the number is blocked (or unblocked)
and the message still reaches the app, with `OptOutType`. Everything is recorded in the
store for the dev phone page.

Where lives run (`SIMULATOR_MODE`, a Flask config key):
- "queue" (the default outside tests): requests go to a Redis list that the carrier
  process (`flask --app wsgi simulator run`) carries over HTTP to PUBLIC_BASE_URL. RQ
  runs each job in a forked work horse that exits after the job: a thread started there
  would die with it, so the sending jobs hand the lives to another process.
- "thread" (the default in tests): a bounded pool of threads in this process, reaching
  the app through its WSGI interface. With `SIMULATOR_AUTOSTART = False` requests wait
  for `start_pending()`, so that a test commits the returned SID before any callback.

Time (`SIMULATOR_LATENCY`): "real" sleeps through the latency model (call setup, the
person's answer delay, detection, speech); "zero" only adds the durations up, so calls
still report realistic durations while no one waits. In both modes the carrier takes
`CALLS_PER_SECOND` calls and `SMS_PER_SECOND` messages per second, in real time, and
queues the rest as Twilio does, so that time-to-reach can be measured.
"""

from __future__ import annotations

import io
import logging
import math
import random
import threading
import time
import uuid
import wave
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree

from flask import Flask, current_app

from alerts.sms.segments import sms_length
from core.extensions import redis_connection
from simulator import store
from simulator.calls import (
    API_VERSION,
    SIMULATOR_ACCOUNT_SID,
    CallContext,
    GatherPrompt,
    Person,
    Pressed,
    RecordPrompt,
    Rejected,
)
from simulator.people import Behaviour, InteractivePerson, ScriptedPerson, behaviour_for, person_for
from simulator.transport import (
    Transport,
    TransportError,
    TransportResponse,
    WsgiTransport,
)
from simulator.twiml import run_call

log = logging.getLogger(__name__)

# The PLP number when TWILIO_FROM_NUMBER is not set (the dev page shows the same one).
SIMULATED_PLP_NUMBER = "+3225550100"
MODES = ("thread", "queue")
LATENCIES = ("real", "zero")
DEFAULT_WORKERS = 32  # lives carried at once; more wait in the queue
SETTLE_SECONDS = 0.3  # the least time from accepting a request to its first callback
WEBHOOK_TIMEOUT_SECONDS = 15.0  # Twilio waits 15 s for a webhook's answer
MAX_REPLY_BYTES = 64 * 1024  # https://www.twilio.com/docs/api/errors/11750
REPLY_TYPES = frozenset({"text/xml", "application/xml", "text/html"})

# Twilio's default opt-out keywords, matched against the whole trimmed message,
# case-insensitively: https://help.twilio.com/articles/223134027
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# What Twilio itself texts back when it handles STOP and START (default opt-out).
OPT_OUT_CONFIRMATION = (
    "You have successfully been unsubscribed. You will not receive any more messages "
    "from this number. Reply START to resubscribe."
)
OPT_IN_CONFIRMATION = (
    "You have successfully been re-subscribed to messages from this number. "
    "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)
OPTED_OUT_CODE = "21610"  # https://www.twilio.com/docs/api/errors/21610
UNREACHABLE_HANDSET_CODE = "30003"  # https://www.twilio.com/docs/api/errors/30003
# SIP answers Twilio reports with a call's final status.
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "failed": "480"}

_NETWORK_LOCK = threading.Lock()

_CARRIER_SLOT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX',
           math.ceil((after - now) / 1000) + 1000)
return string.format('%.0f', slot - now)
"""


class CarrierStopped(Exception):  # noqa: N818 (a state, like KeyboardInterrupt)
    """The carrier is shutting down: the life in this thread ends now."""


@dataclass(frozen=True)
class Latency:
    """How long each step of the network takes, in seconds: (shortest, longest)."""

    setup: tuple[float, float] = (0.5, 2.0)  # dialled until the phone rings
    busy: tuple[float, float] = (0.5, 1.5)  # dialled until the busy tone
    human_detection: tuple[float, float] = (1.5, 3.0)  # detection hears "hello?" end
    greeting: tuple[float, float] = (4.0, 6.0)  # a voicemail greeting, up to the beep
    sms_sent: tuple[float, float] = (0.2, 1.0)  # taken until handed to the network
    sms_delivered: tuple[float, float] = (1.0, 5.0)  # handed until the handset reports

    def draw(self, span: tuple[float, float]) -> float:
        """Return a duration within `span` (shortest, longest)."""
        return random.uniform(*span)  # noqa: S311 (a simulation, not a secret)


class LiveClock:
    """Real time, cut short when the carrier stops."""

    def __init__(self, stopping: threading.Event):
        self.stopping = stopping

    def sleep(self, seconds: float) -> None:
        """Sleep through `seconds`; raise `CarrierStopped` if the carrier stops meanwhile."""
        if self.stopping.wait(max(0.0, seconds)):
            raise CarrierStopped

    def now(self) -> float:
        """Return monotonic time."""
        return time.monotonic()


class ZeroClock:
    """Zero latency: sleeping only moves this life's own time forward."""

    def __init__(self, stopping: threading.Event):
        self.stopping = stopping
        self.elapsed = 0.0

    def sleep(self, seconds: float) -> None:
        """Add `seconds` to the life's time at once."""
        if self.stopping.is_set():
            raise CarrierStopped
        self.elapsed += max(0.0, seconds)

    def now(self) -> float:
        """Return the life's elapsed time."""
        return self.elapsed


def new_sid(prefix: str) -> str:
    """Return a new Twilio-shaped SID: `prefix` ("CA", "SM", "RE") and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def plp_number(app: Flask | None = None) -> str:
    """Return the PLP's number: the caller ID of calls and the sender of SMS."""
    settings = (app or current_app).extensions["settings"]
    return settings.twilio_from_number or SIMULATED_PLP_NUMBER


def simulator_mode(app: Flask | None = None) -> str:
    """Return where lives run: "thread" (tests by default) or "queue" (the carrier process)."""
    app = app or current_app
    mode = app.config.get("SIMULATOR_MODE") or ("thread" if app.testing else "queue")
    if mode not in MODES:
        raise ValueError(f"SIMULATOR_MODE: {mode!r} is not one of {', '.join(MODES)}")
    return mode


def zero_latency(app: Flask | None = None) -> bool:
    """Tell whether lives only add up durations (tests by default) instead of waiting."""
    app = app or current_app
    latency = app.config.get("SIMULATOR_LATENCY") or ("zero" if app.testing else "real")
    if latency not in LATENCIES:
        raise ValueError(f"SIMULATOR_LATENCY: {latency!r} is not one of {', '.join(LATENCIES)}")
    return latency == "zero"


def network(app: Flask | None = None) -> Network:
    """Return this process's network for thread mode (reaching the app in process)."""
    app = app or current_app._get_current_object()
    with _NETWORK_LOCK:  # two requests of a threaded server must not build two pools
        current = app.extensions.get("simulator_network")
        if current is None:
            current = Network(
                app,
                WsgiTransport(app),
                zero_latency=zero_latency(app),
                autostart=app.config.get("SIMULATOR_AUTOSTART", True),
            )
            app.extensions["simulator_network"] = current
    return current


def dispatch(request: dict) -> None:
    """Hand a request to the network: this process's threads, or the carrier process."""
    if simulator_mode() == "thread":
        network().submit(request)
    else:
        store.push_request(request)


def inbound_sms(from_: str, body: str, to: str | None = None) -> str:
    """Text the PLP number from `from_`; return the message SID (delivered in the background)."""
    sid = new_sid("SM")
    to = to or plp_number()
    store.add_message(
        {
            "sid": sid,
            "from": from_,
            "to": to,
            "body": body,
            "direction": "inbound",
            "status": "receiving",
        }
    )
    dispatch(
        {
            "kind": "inbound_sms",
            "sid": sid,
            "from": from_,
            "to": to,
            "body": body,
            "accepted_at": time.time(),
        }
    )
    log.info("simulator inbound sms queued sid=%s", sid)
    return sid


def inbound_call(from_: str, to: str | None = None, *, keys: tuple[str, ...] | None = None) -> str:
    """Call the PLP number from `from_`; return the call SID (carried in the background).

    With `keys` the caller presses them at successive Gathers; without, a human presses
    them on the dev phone page (an interactive caller).
    """
    sid = new_sid("CA")
    to = to or plp_number()
    store.save_call(
        {
            "sid": sid,
            "direction": "inbound",
            "from": from_,
            "to": to,
            "status": "ringing",
            "started_at": store.now_iso(),
        }
    )
    dispatch(
        {
            "kind": "inbound_call",
            "sid": sid,
            "from": from_,
            "to": to,
            "keys": list(keys) if keys is not None else None,
            "accepted_at": time.time(),
        }
    )
    log.info("simulator inbound call queued call_sid=%s", sid)
    return sid


def reserve_carrier_slot(channel: str, rate: float) -> float:
    """Take the carrier's next free slot for `channel`; return the seconds until it."""
    script = redis_connection().register_script(_CARRIER_SLOT_LUA)
    wait_us = script(keys=[f"{store.PREFIX}pace:{channel}"], args=[round(1_000_000 / rate)])
    return int(wait_us) / 1_000_000


def message_replies(response: TransportResponse) -> list[tuple[str | None, str]]:
    """Return the SMS (to or None for the sender, body) that a messaging TwiML answer sends.

    Raises ValueError saying what Twilio would refuse: a non-2xx answer, another content
    type, a document too large, not XML, another root, a verb other than <Message>.
    """
    if not 200 <= response.status < 300:
        raise ValueError(f"answered HTTP {response.status} (Twilio error 11200)")
    if not response.body.strip():
        return []  # an empty answer: nothing to send back, as on Twilio
    if response.mimetype not in REPLY_TYPES:
        raise ValueError(
            f"answered {response.content_type or 'no Content-Type'}, not TwiML (Twilio error 12300)"
        )
    if len(response.body) > MAX_REPLY_BYTES:
        raise ValueError("answered more than 64 kB (Twilio error 11750)")
    try:
        # The app's own answer, size-checked; expat expands no external entities.
        root = ElementTree.fromstring(response.body)  # noqa: S314
    except ElementTree.ParseError as err:
        raise ValueError(
            f"answered a document that is not XML: {err} (Twilio error 12100)"
        ) from None
    if root.tag != "Response":
        raise ValueError(f"the root is <{root.tag}>, not <Response> (Twilio error 12102)")
    replies = []
    for verb in root:
        if verb.tag != "Message":
            raise ValueError(f"<{verb.tag}> is not a messaging verb here (Twilio error 12200)")
        bodies = [body.text or "" for body in verb.iter("Body")]
        text = "".join(bodies) if bodies else (verb.text or "")
        replies.append((verb.get("to"), text.strip()))
    return replies


class Network:
    """The carrier: carries calls and messages on a bounded pool of threads.

    Each life runs in its own app context. `transport` reaches the app (in process or over
    HTTP). `requeue_on_stop` (the carrier process) puts a request that was still waiting
    for the carrier's rate limit back at the head of the queue when the carrier stops.
    `settle_seconds` is the least time between a request's acceptance and its first
    callback (default: `SETTLE_SECONDS`, or none when lives are held for `start_pending`).
    """

    def __init__(
        self,
        app: Flask,
        transport: Transport,
        *,
        zero_latency: bool = False,
        workers: int = DEFAULT_WORKERS,
        autostart: bool = True,
        requeue_on_stop: bool = False,
        latency: Latency | None = None,
        settle_seconds: float | None = None,
    ):
        self.app = app
        self.transport = transport
        self.zero_latency = zero_latency
        self.workers = workers
        self.autostart = autostart
        self.requeue_on_stop = requeue_on_stop
        self.latency = latency or Latency()
        if settle_seconds is None:
            settle_seconds = SETTLE_SECONDS if autostart else 0.0
        self.settle_seconds = settle_seconds
        self.stopping = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="simulator-carrier"
        )
        self._changed = threading.Condition()
        self._active = 0
        self._held: list[dict] = []

    # -- running lives

    def submit(self, request: dict) -> None:
        """Carry `request` in the background (or hold it until `start_pending`)."""
        with self._changed:
            if not self.autostart:
                self._held.append(request)
                return
            self._active += 1
        self._executor.submit(self._carry_in_context, request).add_done_callback(self._done)

    def start_pending(self) -> int:
        """Start the requests held back (autostart off); return how many."""
        with self._changed:
            held, self._held = self._held, []
            self._active += len(held)
        for request in held:
            self._executor.submit(self._carry_in_context, request).add_done_callback(self._done)
        return len(held)

    def wait_for_capacity(self, timeout: float) -> bool:
        """Wait until a worker is free; False if none was within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active < self.workers, timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every started life has ended; False if some still run after `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active == 0, timeout)

    def close(self, *, wait: bool = True) -> None:
        """Stop: lives end at their next wait, and the threads are joined (with `wait`).

        Lives submitted but not started still run, to give their request back (see
        `carry`): cancelling them would lose it.
        """
        self.stopping.set()
        self._executor.shutdown(wait=wait)

    def _done(self, _future: Future) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    def _carry_in_context(self, request: dict) -> None:
        with self.app.app_context():
            try:
                self.carry(request)
            except CarrierStopped:
                log.info("simulator life stopped kind=%s sid=%s", request["kind"], request["sid"])
            except Exception:
                # A broken life is reported, never the end of the carrier: the other
                # calls and messages go on.
                log.exception(
                    "simulator life crashed kind=%s sid=%s", request["kind"], request["sid"]
                )
                _record_error(request, "the simulator failed (see its log)")

    def carry(self, request: dict) -> None:
        """Carry one request to its end in this thread (inside an app context)."""
        carriers: dict[str, Callable[[dict], None]] = {
            "call": self._outbound_call,
            "sms": self._outbound_sms,
            "inbound_sms": self._inbound_sms,
            "inbound_call": self._inbound_call,
        }
        if self.stopping.is_set():
            self._give_back(request)
        # Twilio answers the API request well before its first callback; the sending job
        # commits the SID in that time. Zero latency must not let a callback overtake it
        # (it would be ignored as an unknown SID). Wall-clock: the request crossed processes.
        settle = request.get("accepted_at", 0) + self.settle_seconds - time.time()
        if settle > 0 and self.stopping.wait(settle):
            self._give_back(request)
        carriers[request["kind"]](request)

    # -- outbound calls

    def _outbound_call(self, request: dict) -> None:
        self._take_turn("call", request)
        OutboundCall(self, request).run()

    # -- SMS

    def _outbound_sms(self, request: dict) -> None:
        self._take_turn("sms", request)
        sid, to = request["sid"], request["to"]
        behaviour = behaviour_for(to)
        clock = self.clock()
        problems: list[str] = []

        def report(status: str, **extra: str) -> None:
            params = {
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": SIMULATOR_ACCOUNT_SID,
                "From": request["from"],
                "To": to,
                "ApiVersion": API_VERSION,
                **extra,
            }
            store.update_message(sid, status=status, error_code=extra.get("ErrorCode"))
            problem = self.post_webhook(request["status_callback_url"], params)
            if problem:
                problems.append(f"{status} callback: {problem}")
                store.update_message(sid, problems=problems)

        report("queued")
        clock.sleep(self.latency.draw(self.latency.sms_sent))
        report("sent")
        clock.sleep(self.latency.draw(self.latency.sms_delivered))
        if not behaviour.receives_sms:
            report("undelivered", ErrorCode=UNREACHABLE_HANDSET_CODE)
            return
        report("delivered")
        if behaviour.sms_reply:
            clock.sleep(behaviour.reply_after)
            reply_sid = new_sid("SM")
            store.add_message(
                {
                    "sid": reply_sid,
                    "from": to,
                    "to": request["from"],
                    "body": behaviour.sms_reply,
                    "direction": "inbound",
                    "status": "receiving",
                }
            )
            self._inbound_sms(
                {
                    "kind": "inbound_sms",
                    "sid": reply_sid,
                    "from": to,
                    "to": request["from"],
                    "body": behaviour.sms_reply,
                }
            )

    def _inbound_sms(self, request: dict) -> None:
        sid, from_, to, body = request["sid"], request["from"], request["to"], request["body"]
        word = body.strip().upper()
        opt_out_type = (
            "STOP"
            if word in OPT_OUT_WORDS
            else "START"
            if word in OPT_IN_WORDS
            else "HELP"
            if word in HELP_WORDS
            else None
        )
        if opt_out_type == "STOP":
            store.set_opted_out(from_, True)
        elif opt_out_type == "START":
            store.set_opted_out(from_, False)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": SIMULATOR_ACCOUNT_SID,
            "From": from_,
            "To": to,
            "Body": body,
            "NumSegments": str(max(1, sms_length(body).segments)),
            "NumMedia": "0",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        url = self.app.extensions["settings"].public_base_url + "/sms/incoming"
        response, problem = self._post(url, params)
        store.update_message(sid, status="received", opt_out_type=opt_out_type)
        if opt_out_type in ("STOP", "START"):
            self._send_reply(
                from_,
                to,
                OPT_OUT_CONFIRMATION if opt_out_type == "STOP" else OPT_IN_CONFIRMATION,
                by="carrier",
            )
        if problem is None and response is not None:
            try:
                replies = message_replies(response)
            except ValueError as err:
                problem = f"the answer to /sms/incoming {err}"
            else:
                for reply_to, reply in replies:
                    self._send_reply(reply_to or from_, to, reply, by="app")
        if problem:
            log.warning("simulator inbound sms failed sid=%s problem=%s", sid, problem)
            store.update_message(sid, error=problem)

    def _send_reply(self, to: str, from_: str, body: str, *, by: str) -> None:
        """Record an SMS sent in answer to an inbound one (by the app's TwiML or the carrier)."""
        sid = new_sid("SM")
        # Replies are not paced: they answer one message each, a trickle.
        refused = by == "app" and store.is_opted_out(to)
        store.add_message(
            {
                "sid": sid,
                "from": from_,
                "to": to,
                "body": body,
                "direction": "outbound",
                "status": "failed" if refused else "delivered",
                "error_code": OPTED_OUT_CODE if refused else None,
                "by": by,
            }
        )
        if refused:
            log.info("simulator reply refused: recipient opted out sid=%s", sid)

    # -- inbound calls

    def _inbound_call(self, request: dict) -> None:
        sid, keys = request["sid"], request.get("keys")
        clock = self.clock()
        context = CallContext(sid, SIMULATOR_ACCOUNT_SID, request["from"], request["to"], "inbound")
        person: Person = (
            InteractivePerson(sid, store.pop_keys)
            if keys is None
            else ScriptedPerson(Behaviour("answer", keys=tuple(keys)))
        )
        store.update_call(sid, status="in-progress")
        url = self.app.extensions["settings"].public_base_url + "/ivr/incoming"
        outcome = run_call(
            context, url, self.transport, LivePerson(person, sid), clock, recorder=self.recorder
        )
        rejected = next((e for e in outcome.events if isinstance(e, Rejected)), None)
        # https://www.twilio.com/docs/voice/twiml/reject: busy, or no-answer
        status = (
            "completed"
            if rejected is None
            else "busy"
            if rejected.reason == "busy"
            else "no-answer"
        )
        store.set_call_events(sid, [event.to_json() for event in outcome.events])
        store.update_call(
            sid,
            status=status,
            duration=math.ceil(outcome.duration_seconds),
            error=outcome.error,
            warnings=outcome.warnings,
        )

    # -- shared

    def clock(self) -> LiveClock | ZeroClock:
        """Return a clock for one life: real or zero latency."""
        return ZeroClock(self.stopping) if self.zero_latency else LiveClock(self.stopping)

    def recorder(self, audio: bytes) -> tuple[str, float]:
        """Keep a recording made by <Record>; return its URL (as Twilio's: no extension)."""
        sid = new_sid("RE")
        path = recordings_dir(self.app) / f"{sid}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio)
        base = self.app.extensions["settings"].public_base_url
        return f"{base}/simulator/recordings/{sid}", _wav_seconds(audio)

    def post_webhook(self, url: str, params: dict[str, str]) -> str | None:
        """POST a signed webhook; return what went wrong (None: the app took it)."""
        return self._post(url, params)[1]

    def _post(
        self, url: str, params: dict[str, str]
    ) -> tuple[TransportResponse | None, str | None]:
        try:
            response = self.transport.post(url, params)
        except TransportError as err:
            log.warning("simulator webhook unreachable url=%s error=%s", url, err)
            return None, str(err)
        if not 200 <= response.status < 300:
            log.warning("simulator webhook refused url=%s http_status=%s", url, response.status)
            return response, f"{url} answered HTTP {response.status}"
        return response, None

    def _take_turn(self, channel: str, request: dict) -> None:
        """Wait, in real time, for the carrier's own rate limit to take the request."""
        settings = self.app.extensions["settings"]
        rate = settings.calls_per_second if channel == "call" else settings.sms_per_second
        wait = reserve_carrier_slot(channel, rate)
        if wait > 0 and self.stopping.wait(wait):
            self._give_back(request)

    def _give_back(self, request: dict) -> None:
        """End a life not begun: its request goes back to the queue (carrier process)."""
        if self.requeue_on_stop:
            store.requeue_request(request)
            log.info(
                "simulator stopping: request requeued kind=%s sid=%s",
                request["kind"],
                request["sid"],
            )
        raise CarrierStopped


class OutboundCall:
    """The life of one outbound call, from the carrier taking it to its last callback."""

    def __init__(self, network: Network, request: dict):
        self.network = network
        self.request = request
        self.sid = request["sid"]
        self.behaviour = behaviour_for(request["to"])
        self.clock = network.clock()
        self.latency = network.latency
        self.sequence = 0
        self.answered_by: str | None = None
        self.problems: list[str] = []

    def run(self) -> None:
        """Ring, answer (or not), run the TwiML, and report each step to the app."""
        kind, timeout = self.behaviour.kind, float(self.request["timeout_seconds"])
        try:
            self.report("initiated")
            if kind == "busy":
                self.clock.sleep(self.latency.draw(self.latency.busy))
                self.report("busy", CallDuration="0")
                return
            self.clock.sleep(self.latency.draw(self.latency.setup))
            if kind == "failed":  # the network cannot reach the handset
                self.report("failed", CallDuration="0")
                return
            self.report("ringing")
            if not self.behaviour.answers or self.behaviour.answer_after >= timeout:
                self.clock.sleep(timeout)
                self.report("no-answer", CallDuration="0")
                return
            self.clock.sleep(self.behaviour.answer_after)
            self.answer()
        except CarrierStopped:
            # Best effort: the app must not keep a call ringing forever.
            store.update_call(self.sid, error="the carrier stopped during the call")
            self.report("failed")
            raise

    def answer(self) -> None:
        """Detect who answered, run the app's TwiML with them, then hang up."""
        answered_at = self.clock.now()
        if self.request["machine_detection"]:
            if self.behaviour.kind == "voicemail":
                self.clock.sleep(self.latency.draw(self.latency.greeting))
                self.answered_by = "machine_end_beep"
            else:
                self.clock.sleep(self.latency.draw(self.latency.human_detection))
                self.answered_by = "human"
        self.report("in-progress")
        context = CallContext(
            self.sid,
            SIMULATOR_ACCOUNT_SID,
            self.request["from"],
            self.request["to"],
            "outbound-api",
            self.answered_by,
        )
        person = person_for(self.behaviour, self.sid, store.pop_keys)
        outcome = run_call(
            context,
            self.request["answer_url"],
            self.network.transport,
            LivePerson(person, self.sid),
            self.clock,
            recorder=self.network.recorder,
        )
        store.set_call_events(self.sid, [event.to_json() for event in outcome.events])
        if outcome.error:
            # As on Twilio: the caller heard "an application error has occurred", the
            # call was answered and ends completed; the error is the app's to fix.
            store.update_call(self.sid, error=outcome.error)
        if outcome.warnings:
            store.update_call(self.sid, warnings=outcome.warnings)
        duration = math.ceil(self.clock.now() - answered_at)
        self.report("completed", CallDuration=str(duration))

    def report(self, status: str, **extra: str) -> None:
        """Record the call's new status and send its callback, as Twilio sends it."""
        request = self.request
        params = {
            "CallSid": self.sid,
            "AccountSid": SIMULATOR_ACCOUNT_SID,
            "From": request["from"],
            "To": request["to"],
            "Caller": request["from"],
            "Called": request["to"],
            "CallStatus": status,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
            "Timestamp": format_datetime(datetime.now(UTC)),
            "SequenceNumber": str(self.sequence),
            "CallbackSource": "call-progress-events",
            **extra,
        }
        if self.answered_by is not None and status in ("in-progress", "completed"):
            params["AnsweredBy"] = self.answered_by
        if status in SIP_CODES:
            params["SipResponseCode"] = SIP_CODES[status]
        self.sequence += 1
        fields = {"status": status, "answered_by": self.answered_by}
        if "CallDuration" in extra:
            fields["duration"] = int(extra["CallDuration"])
        store.update_call(self.sid, **fields)
        problem = self.network.post_webhook(request["status_callback_url"], params)
        if problem:
            self.problems.append(f"{status} callback: {problem}")
            store.update_call(self.sid, problems=self.problems)


class LivePerson:
    """The person on the line, showing the dev page what they hear while they choose keys."""

    def __init__(self, person: Person, call_sid: str):
        self.person = person
        self.call_sid = call_sid

    def press(self, prompt: GatherPrompt) -> str:
        """Show what was heard, then let the person press (the final transcript replaces it)."""
        for heard in prompt.heard:
            store.add_call_event(self.call_sid, heard.to_json())
        store.update_call(self.call_sid, gathering=True)
        digits = self.person.press(prompt)
        store.update_call(self.call_sid, gathering=False)
        if digits:
            store.add_call_event(self.call_sid, Pressed(digits).to_json())
        return digits

    def record(self, prompt: RecordPrompt) -> bytes | None:
        """Let the person speak into the recording."""
        return self.person.record(prompt)


def recordings_dir(app: Flask | None = None) -> Path:
    """Return where recordings made by <Record> are kept (the dev page serves them)."""
    return Path((app or current_app).instance_path) / "simulator" / "recordings"


def _record_error(request: dict, error: str) -> None:
    if request["kind"] in ("call", "inbound_call"):
        store.update_call(request["sid"], error=error)
    else:
        store.update_message(request["sid"], error=error)


def _wav_seconds(audio: bytes) -> float:
    try:
        with wave.open(io.BytesIO(audio)) as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0
