"""The simulated phone network: carries every call and message, as Twilio lives it.

An outbound call goes queued -> initiated -> ringing -> in-progress -> completed (or busy,
no-answer, failed), each step a signed status callback with Twilio's parameters
(`voice.OutboundCall`); once answered, the answer URL's TwiML runs (`twiml.run_call`)
with the person on the line. An SMS goes queued -> sent -> delivered (or undelivered,
with Twilio's ErrorCode), and the person may text back. Inbound messages are POSTed to
/sms/incoming as Twilio posts them; STOP and START are handled by the carrier as
Twilio's opt-out handles them (`messaging`): the number is blocked (or unblocked) and
the message still reaches the app, with `OptOutType`. Everything is recorded in the
store for the dev phone page.

Time (`SIMULATOR_LATENCY`): "real" sleeps through the latency model (call setup, the
person's answer delay, detection, speech); "zero" only adds the durations up, so calls
still report realistic durations while no one waits. In both modes the carrier takes
`CALLS_PER_SECOND` calls and `SMS_PER_SECOND` messages per second, in real time, and
queues the rest as Twilio does, so that time-to-reach can be measured.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask

from simulator import config, messaging, store
from simulator.behaviour import Behaviour
from simulator.calls import (
    API_VERSION,
    SIMULATOR_ACCOUNT_SID,
    CallContext,
    Person,
    Rejected,
    new_sid,
)
from simulator.clock import CarrierStopped, Latency, LiveClock, ZeroClock
from simulator.outage import UNREACHABLE, Outage
from simulator.people import InteractivePerson, ScriptedPerson
from simulator.transport import Transport, TransportError, TransportResponse
from simulator.twiml import run_call
from simulator.voice import LivePerson, OutboundCall

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 32  # lives carried at once; more wait in the queue
SETTLE_SECONDS = 0.3  # the least time from accepting a request to its first callback
WEBHOOK_TIMEOUT_SECONDS = 15.0  # Twilio waits 15 s for a webhook's answer
CUT_OFF_ERROR = "the carrier lost its Redis (state and queue) during this life"

_CARRIER_SLOT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX',
           math.ceil((after - now) / 1000) + 1000)
return string.format('%.0f', slot - now)
"""


def reserve_carrier_slot(channel: str, rate: float) -> float:
    """Take the carrier's next free slot for `channel`; return the seconds until it."""
    script = config.wiring().redis().register_script(_CARRIER_SLOT_LUA)
    wait_us = script(keys=[f"{store.PREFIX}pace:{channel}"], args=[round(1_000_000 / rate)])
    return int(wait_us) / 1_000_000


class Network:
    """The carrier: carries calls and messages on a bounded pool of threads.

    Each life runs in its own app context. `transport` reaches the app (in process or over
    HTTP). `requeue_on_stop` (the carrier process) puts a request that was still waiting
    for the carrier's rate limit back at the head of the queue when the carrier stops.
    `settle_seconds` is the least time between a request's acceptance and its first
    callback (default: `SETTLE_SECONDS`, or none when lives are held for `start_pending`).

    A Redis outage (`outage`) never ends the carrier: a life that meets one before the app
    heard of it waits for Redis and starts again; later, it is cut off (`_cut_off`): a
    call ends failed, as carried again it would be played twice.
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
        outage: Outage | None = None,
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
        self.outage = outage or Outage()
        # The life this thread carries: whether the app heard of it, how to cut it off.
        self._life = threading.local()
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
                self._carry_across_outages(request)
            except CarrierStopped:
                log.info("simulator life stopped kind=%s sid=%s", request["kind"], request["sid"])
            except Exception:
                # A broken life is reported, never the end of the carrier: the other
                # calls and messages go on.
                log.exception(
                    "simulator life crashed kind=%s sid=%s", request["kind"], request["sid"]
                )
                with contextlib.suppress(*UNREACHABLE):  # the crash is in the log anyway
                    _record(request, error="the simulator failed (see its log)")

    def _carry_across_outages(self, request: dict) -> None:
        """Carry `request`; wait out a Redis outage that comes before the app heard of it."""
        life = self._life
        while True:
            life.told_app, life.cut_off = False, None
            try:
                self.carry(request)
                return
            except UNREACHABLE as err:
                self.outage.failed(err)
                if life.told_app:
                    self._cut_off(request, life.cut_off)
                    return
            log.info("simulator life waits for Redis sid=%s", request["sid"])
            try:
                self.outage.wait_out(store.version, self.stopping)
            except CarrierStopped:
                self._give_back(request)

    def _cut_off(self, request: dict, tell_app: Callable[[], str | None] | None) -> None:
        """End a life Redis failed in the middle of: tell the app now, the store when it answers.

        `tell_app` (set by the life) sends the app its last callback without Redis and
        returns the status to store (None: the stored one stands).
        """
        status = tell_app() if tell_app is not None else None
        kind, sid = request["kind"], request["sid"]
        log.warning("simulator life cut off by Redis kind=%s sid=%s status=%s", kind, sid, status)
        fields = {"error": CUT_OFF_ERROR} | ({"status": status} if status else {})
        self.outage.wait_out(lambda: _record(request, **fields), self.stopping)

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
        call = OutboundCall(self, request)
        self._life.cut_off = call.cut_off
        call.run()

    # -- SMS

    def _outbound_sms(self, request: dict) -> None:
        self._take_turn("sms", request)
        sid, to = request["sid"], request["to"]
        behaviour = store.behaviour_for(to)
        clock = self.clock()
        problems: list[str] = []
        told: list[str] = []  # the statuses the app was sent

        def params_for(status: str, **extra: str) -> dict[str, str]:
            return {
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

        def report(status: str, **extra: str) -> None:
            params = params_for(status, **extra)
            store.update_message(sid, status=status, error_code=extra.get("ErrorCode"))
            problem = self.post_webhook(request["status_callback_url"], params)
            told.append(status)
            if problem:
                problems.append(f"{status} callback: {problem}")
                store.update_message(sid, problems=problems)

        def cut_off() -> str | None:
            if told and told[-1] in ("delivered", "undelivered"):
                return None  # its end was told: only a reply is lost
            code = messaging.UNKNOWN_ERROR_CODE
            self.tell_app(request["status_callback_url"], params_for("failed", ErrorCode=code))
            return "failed"

        self._life.cut_off = cut_off
        report("queued")
        clock.sleep(self.latency.draw(self.latency.sms_sent))
        report("sent")
        clock.sleep(self.latency.draw(self.latency.sms_delivered))
        if not behaviour.receives_sms:
            report("undelivered", ErrorCode=messaging.UNREACHABLE_HANDSET_CODE)
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
        opt_out_type = messaging.opt_out_type(body)
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
            "NumSegments": str(max(1, config.wiring(self.app).sms_segments(body))),
            "NumMedia": "0",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        url = config.settings(self.app).public_base_url + "/sms/incoming"
        response, problem = self._post(url, params)
        store.update_message(sid, status="received", opt_out_type=opt_out_type)
        if opt_out_type in ("STOP", "START"):
            self._send_reply(
                from_,
                to,
                messaging.OPT_OUT_CONFIRMATION
                if opt_out_type == "STOP"
                else messaging.OPT_IN_CONFIRMATION,
                by="carrier",
            )
        if problem is None and response is not None:
            try:
                replies = messaging.message_replies(response)
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
                "error_code": messaging.OPTED_OUT_CODE if refused else None,
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
        url = config.settings(self.app).public_base_url + "/ivr/incoming"
        # The interpreter posts to the app itself: from here the call cannot start again.
        self._life.told_app, self._life.cut_off = True, lambda: "failed"
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
        path = config.recordings_dir(self.app) / f"{sid}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio)
        base = config.settings(self.app).public_base_url
        return f"{base}/simulator/recordings/{sid}", _wav_seconds(audio)

    def post_webhook(self, url: str, params: dict[str, str]) -> str | None:
        """POST a signed webhook; return what went wrong (None: the app took it).

        A status callback about a number set with `store.set_callbacks_dropped` is lost on
        the way, as when the app answered 503 during an outage: Twilio retries none, so
        only the app asking the carrier (`fetch_call_status`, ...) can learn the status.
        """
        status = params.get("CallStatus") or params.get("MessageStatus")
        if status is not None and store.callbacks_dropped(params.get("To", "")):
            log.info(
                "simulator status callback dropped sid=%s status=%s",
                params.get("CallSid") or params.get("MessageSid"),
                status,
            )
            return None
        return self._post(url, params)[1]

    def tell_app(self, url: str, params: dict[str, str]) -> str | None:
        """POST a signed webhook without the store (a life cut off by a Redis outage)."""
        return self._post(url, params)[1]

    def _post(
        self, url: str, params: dict[str, str]
    ) -> tuple[TransportResponse | None, str | None]:
        self._life.told_app = True  # even unanswered: the app may have acted on it
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
        settings = config.settings(self.app)
        rate = settings.calls_per_second if channel == "call" else settings.sms_per_second
        wait = reserve_carrier_slot(channel, rate)
        if wait > 0 and self.stopping.wait(wait):
            self._give_back(request)

    def _give_back(self, request: dict) -> None:
        """End a life not begun: its request goes back to the queue (carrier process)."""
        if self.requeue_on_stop:
            self.requeue(request)
        raise CarrierStopped

    def requeue(self, request: dict) -> None:
        """Put a request not carried back at the head of the queue (lost if Redis is down)."""
        try:
            store.requeue_request(request)
        except UNREACHABLE:
            log.error("simulator stopping, Redis unreachable: request lost sid=%s", request["sid"])
            return
        log.info("simulator stopping: request requeued sid=%s", request["sid"])


def _record(request: dict, **fields) -> None:
    if request["kind"] in ("call", "inbound_call"):
        store.update_call(request["sid"], **fields)
    else:
        store.update_message(request["sid"], **fields)


def _wav_seconds(audio: bytes) -> float:
    try:
        with wave.open(io.BytesIO(audio)) as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0
