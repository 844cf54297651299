"""The life of one outbound call on the simulated network, from ringing to hanging up.

The network (`simulator.network`) runs each one in a thread of its own: it rings the
number, lets the person's `Behaviour` answer (or not), judges who answered as
answering-machine detection does (a voicemail is `machine_end_beep` once its greeting
is over), runs the answer URL's TwiML with the person on the line, and reports every
step to the app's status callback, as Twilio does.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol

from simulator import store
from simulator.calls import (
    API_VERSION,
    SIMULATOR_ACCOUNT_SID,
    CallContext,
    GatherPrompt,
    Person,
    Pressed,
    RecordPrompt,
)
from simulator.clock import CarrierStopped, Clock, Latency
from simulator.people import person_for
from simulator.transport import Transport
from simulator.twiml import run_call

# SIP answers Twilio reports with a call's final status.
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "failed": "480"}


class Line(Protocol):
    """What a call's life uses of the network."""

    transport: Transport
    latency: Latency

    def clock(self) -> Clock:
        """Return a clock for one life."""
        ...

    def recorder(self, audio: bytes) -> tuple[str, float]:
        """Keep a recording; return its URL and duration."""
        ...

    def post_webhook(self, url: str, params: dict[str, str]) -> str | None:
        """POST a signed webhook; return what went wrong (None: the app took it)."""
        ...

    def tell_app(self, url: str, params: dict[str, str]) -> str | None:
        """POST a signed webhook without the store (Redis is unreachable)."""
        ...


class OutboundCall:
    """The life of one outbound call, from the carrier taking it to its last callback."""

    def __init__(self, network: Line, request: dict):
        self.network = network
        self.request = request
        self.sid = request["sid"]
        self.behaviour = store.behaviour_for(request["to"])
        self.clock = network.clock()
        self.latency = network.latency
        self.sequence = 0
        self.answered_by: str | None = None
        self.problems: list[str] = []
        self.ended = False  # its final status was sent to the app

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

    def cut_off(self) -> str | None:
        """End the call failed without the store (Redis is unreachable); return that status.

        None when the app already had the call's final status: only the store is behind.
        """
        if self.ended:
            return None
        params = self.callback_params("failed", CallDuration="0")
        self.network.tell_app(self.request["status_callback_url"], params)
        self.ended = True
        return "failed"

    def report(self, status: str, **extra: str) -> None:
        """Record the call's new status and send its callback, as Twilio sends it."""
        params = self.callback_params(status, **extra)
        fields = {"status": status, "answered_by": self.answered_by}
        if "CallDuration" in extra:
            fields["duration"] = int(extra["CallDuration"])
        store.update_call(self.sid, **fields)
        problem = self.network.post_webhook(self.request["status_callback_url"], params)
        self.ended = status in SIP_CODES
        if problem:
            self.problems.append(f"{status} callback: {problem}")
            store.update_call(self.sid, problems=self.problems)

    def callback_params(self, status: str, **extra: str) -> dict[str, str]:
        """Return the next status callback's parameters, as Twilio sends them."""
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
        return params


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
