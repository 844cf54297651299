"""The strict TwiML interpreter: runs the app's voice TwiML as Twilio would, and refuses
what Twilio would refuse.

Each document is fetched (following HTTP redirects, each hop signed), checked whole
(`documents.check_response`) before any verb runs, then executed verb by verb against a
simulated `Person`. A document Twilio would refuse fails the call: a `Failed` event and
`CallOutcome.error`, with Twilio's error code where it has one. Nothing the app answers
makes `run_call` raise.

Time is kept by a `clock.Clock`: speech (words at `speech_rate` per second), pauses,
gather timeouts and recordings advance it.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

from simulator.calls import (
    CallContext,
    CallOutcome,
    Failed,
    GatherPrompt,
    GatherTimedOut,
    HungUp,
    Paused,
    Person,
    Played,
    Pressed,
    Recorded,
    RecordedSilence,
    RecordPrompt,
    Redirected,
    Rejected,
    Said,
)
from simulator.clock import Clock
from simulator.documents import (
    AUDIO_TYPES,
    DTMF_KEYS,
    Document,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    TwimlError,
    check_response,
)
from simulator.transport import Transport, TransportError, TransportResponse

log = logging.getLogger(__name__)

Recorder = Callable[[bytes], tuple[str, float]]  # audio -> (recording URL, duration seconds)

MAX_HTTP_REDIRECTS = 10
# A loop of 0 repeats until the call ends: the simulated person listens this many times,
# then hangs up, so that such a call ends.
FOREVER_LISTENS = 3
KEY_SECONDS = 0.5  # time to press one key
BEEP_SECONDS = 0.5
ASSUMED_BITRATE = 32_000  # bits per second of compressed audio whose length is not read
UNFETCHED_PLAY_SECONDS = 5.0


# --- Running a call --------------------------------------------------------------------


class _CallEnded(Exception):  # noqa: N818 (control flow, not an error)
    """The call is over (hung up, rejected); its last event is recorded."""


@dataclass
class _Call:
    context: CallContext
    transport: Transport
    person: Person
    clock: Clock
    max_steps: int
    recorder: Recorder | None
    speech_rate: float
    check_play: bool
    events: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    steps: int = 0

    # -- documents

    def fetch(self, url: str, method: str, extra: dict[str, str] | None = None) -> Document:
        """Request the next TwiML document as Twilio does, and check it."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise TwimlError(
                f"more than {self.max_steps} TwiML documents in one call "
                f"(a redirect loop?), the last at {url}"
            )
        status = (
            "ringing" if self.steps == 1 and self.context.direction == "inbound" else "in-progress"
        )
        params = {**self.context.params(status), **(extra or {})}
        url, response = self.request(url, method, params)
        document = check_response(url, response)
        self.warnings.extend(document.warnings)
        return document

    def request(
        self, url: str, method: str, params: dict[str, str]
    ) -> tuple[str, TransportResponse]:
        """Send one request, following HTTP redirects; return the final URL and answer."""
        for _hop in range(MAX_HTTP_REDIRECTS + 1):
            try:
                if method == "POST":
                    response = self.transport.post(url, params)
                else:
                    response = self.transport.get(_with_query(url, params))
            except TransportError as err:
                raise TwimlError(str(err), "11200") from None
            if response.status not in (301, 302, 303, 307, 308) or not response.location:
                return url, response
            url = urljoin(url, response.location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise TwimlError(f"redirected to {url}, not an http(s) URL", "11100")
            if response.status not in (307, 308):
                method = "GET"  # as browsers do, and Twilio with them
        raise TwimlError(f"more than {MAX_HTTP_REDIRECTS} HTTP redirects from {url}", "11200")

    def run(self, answer_url: str) -> None:
        """Run the call from its answer URL to its end."""
        document = self.fetch(answer_url, "POST")
        while document is not None:
            document = self.execute(document)

    def execute(self, document: Document) -> Document | None:
        """Run the verbs of `document`; return the next document, or None when the call ends."""
        for verb in document.verbs:
            match verb:
                case Say() | Play() | Pause():
                    self.perform(verb)
                    if getattr(verb, "loop", 1) == 0:  # repeats until the person gives up
                        self.end(HungUp("person"))
                case Gather():
                    following = self.gather(verb)
                    if following is not None:
                        return following
                case Record():
                    following = self.record(verb)
                    if following is not None:
                        return following
                case Redirect(url=url, method=method):
                    self.events.append(Redirected(url))
                    return self.fetch(url, method)
                case Hangup():
                    self.end(HungUp("app"))
                case Reject(reason=reason):
                    if self.context.direction != "inbound" or self.steps > 1:
                        raise TwimlError(
                            f"{document.url}: <Reject> answers an inbound call's first request only"
                        )
                    self.end(Rejected(reason))  # type: ignore[arg-type]
        self.end(HungUp("carrier"))
        return None

    def end(self, event) -> None:
        self.events.append(event)
        raise _CallEnded

    # -- verbs

    def perform(self, verb: Say | Play | Pause) -> Said | Played | None:
        """Say, play or pause; return what the person heard (None for a pause)."""
        match verb:
            case Say(text=text, voice=voice, language=language, loop=loop):
                heard = Said(text, voice, language, loop)
                seconds = len(text.split()) / self.speech_rate
            case Play(url=url, loop=loop, digits=digits):
                heard = Played(url, loop, digits)
                seconds = len(digits) * KEY_SECONDS if digits else self.audio_seconds(url)
            case Pause(length=length):
                self.events.append(Paused(length))
                self.clock.sleep(length)
                return None
        self.events.append(heard)
        self.clock.sleep(seconds * (verb.loop or FOREVER_LISTENS))
        return heard

    def audio_seconds(self, url: str) -> float:
        """Fetch the audio of a <Play> (it must be audio) and return how long it plays."""
        if not self.check_play:
            return UNFETCHED_PLAY_SECONDS
        url, response = self.request(url, "GET", {})
        if not 200 <= response.status < 300:
            raise TwimlError(f"<Play> {url} answered HTTP {response.status}", "11200")
        if response.mimetype not in AUDIO_TYPES:
            shown = response.content_type or "no Content-Type"
            raise TwimlError(f"<Play> {url} answered {shown}, not audio", "12300")
        return _audio_seconds(response.body)

    def gather(self, verb: Gather) -> Document | None:
        """Prompt, collect keys, and request the action; None: go on with the next verb."""
        heard = [h for h in map(self.perform, verb.prompts) if h is not None]
        forever = any(p.loop == 0 for p in verb.prompts if not isinstance(p, Pause))
        keys, waited = "", 0.0
        if verb.dtmf:
            started = self.clock.now()
            keys = self.person.press(
                GatherPrompt(verb.num_digits, verb.timeout, verb.finish_on_key, heard)
            )
            waited = self.clock.now() - started
        digits, used, finished = _take_digits(keys, verb.num_digits, verb.finish_on_key)
        if used:
            self.events.append(Pressed(used))
            complete = finished or (verb.num_digits is not None and len(digits) == verb.num_digits)
            self.wait(len(used) * KEY_SECONDS + (0 if complete else verb.timeout), waited)
        elif forever:  # the prompt repeats until a key: the person gives up
            self.end(HungUp("person"))
        else:
            self.events.append(GatherTimedOut())
            self.wait(verb.timeout, waited)
        if not digits and not verb.action_on_empty_result:
            return None
        extra = {"Digits": digits}
        if finished:
            extra["FinishedOnKey"] = finished
        return self.fetch(verb.action, verb.method, extra)

    def record(self, verb: Record) -> Document | None:
        """Record the person; request the action with the recording, then the callback."""
        if self.recorder is None:
            raise TwimlError("<Record>: recording not supported here")
        if verb.play_beep:
            self.clock.sleep(BEEP_SECONDS)
        started = self.clock.now()
        audio = self.person.record(
            RecordPrompt(verb.max_length, verb.finish_on_key, verb.play_beep)
        )
        waited = self.clock.now() - started
        if not audio:  # Twilio drops an empty recording and goes on with the next verb
            self.events.append(RecordedSilence(verb.timeout))
            self.wait(verb.timeout, waited)
            return None
        recording_url, duration = self.recorder(audio)
        duration = min(float(duration), float(verb.max_length))
        self.events.append(Recorded(recording_url, duration))
        self.wait(duration, waited)
        recording = {
            "RecordingUrl": recording_url,
            "RecordingSid": _recording_sid(recording_url),
            "RecordingDuration": str(round(duration)),
        }
        try:
            return self.fetch(verb.action, verb.method, recording)
        finally:
            # The callback comes once the file is processed, after the action (whatever
            # the action answered), as on Twilio.
            if verb.status_callback and "completed" in verb.status_callback_events:
                self.recording_callback(verb, recording)

    def recording_callback(self, verb: Record, recording: dict[str, str]) -> None:
        params = {
            "AccountSid": self.context.account_sid,
            "CallSid": self.context.sid,
            **recording,
            "RecordingStatus": "completed",
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
        }
        try:
            url, response = self.request(verb.status_callback, verb.status_callback_method, params)
        except TwimlError as err:
            self.warnings.append(f"recording status callback: {err}")
            return
        if not 200 <= response.status < 300:
            # Twilio reports it in the debugger; the call goes on.
            self.warnings.append(
                f"recording status callback {url} answered HTTP "
                f"{response.status} (Twilio warning 15003)"
            )

    def wait(self, seconds: float, already: float) -> None:
        """Let `seconds` pass, of which the person already took `already` (real time)."""
        self.clock.sleep(max(0.0, seconds - already))


def run_call(
    context: CallContext,
    answer_url: str,
    transport: Transport,
    person: Person,
    clock: Clock,
    *,
    max_steps: int = 50,
    recorder: Recorder | None = None,
    speech_rate: float = 2.5,
    check_play: bool = True,
) -> CallOutcome:
    """Run an answered call's TwiML from `answer_url` to its end, as Twilio would.

    `max_steps` bounds the TwiML documents fetched; `recorder` stores a <Record>'s audio
    and returns (recording URL, duration) (without it a <Record> fails the call);
    `speech_rate` is words spoken per second; `check_play` fetches each <Play> URL and
    requires audio.
    """
    call = _Call(context, transport, person, clock, max_steps, recorder, speech_rate, check_play)
    started = clock.now()
    error = None
    try:
        call.run(answer_url)
    except _CallEnded:
        pass
    except TwimlError as err:
        error = str(err)
        call.events.append(Failed(error))
        log.warning("simulated call failed call_sid=%s error=%s", context.sid, error)
    for warning in call.warnings:
        log.warning("simulated call warning call_sid=%s warning=%s", context.sid, warning)
    outcome = CallOutcome(
        events=call.events,
        duration_seconds=clock.now() - started,
        error=error,
        warnings=call.warnings,
    )
    log.info(
        "simulated call ended call_sid=%s duration=%.1f events=%d failed=%s",
        context.sid,
        outcome.duration_seconds,
        len(outcome.events),
        outcome.failed,
    )
    return outcome


def _take_digits(keys: str, num_digits: int | None, finish_on_key: str) -> tuple[str, str, str]:
    """Return (digits submitted, keys used, finishing key) from the keys a person pressed.

    Input ends at the finishing key (not submitted) or at `num_digits`; later keys are lost.
    """
    digits = used = ""
    for key in keys:
        if key not in DTMF_KEYS:
            continue
        used += key
        if finish_on_key and key == finish_on_key:
            return digits, used, key
        digits += key
        if num_digits is not None and len(digits) >= num_digits:
            break
    return digits, used, ""


def _with_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _recording_sid(url: str) -> str:
    # The recording URL ends with its SID (…/Recordings/RE…), as Twilio's do.
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    last = last.rsplit(".", 1)[0]
    if re.fullmatch(r"RE[0-9a-f]{32}", last):
        return last
    return "RE" + uuid.uuid4().hex


def _audio_seconds(body: bytes) -> float:
    try:
        with wave.open(io.BytesIO(body)) as audio:
            return audio.getnframes() / audio.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return len(body) * 8 / ASSUMED_BITRATE
