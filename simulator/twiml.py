"""The strict TwiML interpreter: runs the app's voice TwiML as Twilio would, and refuses
what Twilio would refuse.

Each document is fetched (following HTTP redirects, each hop signed), checked whole
(status, content type, size, XML, root, verbs, nesting, attributes, URLs) before any
verb runs, then executed verb by verb against a simulated `Person`. A document Twilio
would refuse fails the call: a `Failed` event and `CallOutcome.error`, with Twilio's
error code where it has one (https://www.twilio.com/docs/api/errors/<code>). Nothing
the app answers makes `run_call` raise.

Time is kept by a `Clock`: speech (words at `speech_rate` per second), pauses, gather
timeouts and recordings advance it; `InstantClock` only adds them up (tests, benchmarks),
`RealClock` sleeps through them (live demos).
"""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit
from xml.etree.ElementTree import Element
from xml.parsers import expat

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
from simulator.transport import Transport, TransportError, TransportResponse

log = logging.getLogger(__name__)

Recorder = Callable[[bytes], tuple[str, float]]  # audio -> (recording URL, duration seconds)

MAX_DOCUMENT_BYTES = 64 * 1024  # https://www.twilio.com/docs/api/errors/11750
MAX_HTTP_REDIRECTS = 10
TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
# The tables below read best packed.
# fmt: off
# What <Play> accepts: https://www.twilio.com/docs/voice/twiml/play#supported-audio-file-types
AUDIO_TYPES = frozenset({
    "audio/mpeg", "audio/mp3", "audio/wav", "audio/wave", "audio/x-wav", "audio/aiff",
    "audio/x-aifc", "audio/x-aiff", "audio/x-gsm", "audio/gsm", "audio/ulaw", "audio/basic",
})
SUPPORTED_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Record", "Redirect", "Hangup",
                             "Reject"})
# Twilio's other voice verbs: valid TwiML that the simulator cannot run.
UNSUPPORTED_VERBS = frozenset({"Dial", "Enqueue", "Leave", "Connect", "Pay", "Refer", "Sms",
                               "Start", "Stop", "Echo", "Queue", "Prompt", "Transcription"})
GATHER_NOUNS = frozenset({"Say", "Play", "Pause"})
# SSML that Twilio accepts inside <Say>: https://www.twilio.com/docs/voice/twiml/say/text-speech
SSML_TAGS = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as",
                       "sub", "w", "amazon:domain", "amazon:effect"})
# The language/locale values <Say> accepts across its voices (man/woman, alice, Polly,
# Google): https://www.twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages
SAY_LANGUAGES = frozenset({
    "af-ZA", "ar-AE", "ar-XA", "arb", "bg-BG", "bn-IN", "ca-ES", "cmn-CN", "cmn-TW", "cs-CZ",
    "cy-GB", "da-DK", "de-AT", "de-CH", "de-DE", "el-GR", "en-AU", "en-CA", "en-GB",
    "en-GB-WLS", "en-IE", "en-IN", "en-NZ", "en-US", "en-ZA", "es-ES", "es-MX", "es-US",
    "eu-ES", "fi-FI", "fil-PH", "fr-BE", "fr-CA", "fr-FR", "gl-ES", "gu-IN", "he-IL", "hi-IN",
    "hu-HU", "id-ID", "is-IS", "it-IT", "ja-JP", "kn-IN", "ko-KR", "lt-LT", "lv-LV", "ml-IN",
    "mr-IN", "ms-MY", "nb-NO", "nl-BE", "nl-NL", "pa-IN", "pl-PL", "pt-BR", "pt-PT", "ro-RO",
    "ru-RU", "sk-SK", "sr-RS", "sv-SE", "ta-IN", "te-IN", "th-TH", "tr-TR", "uk-UA", "vi-VN",
    "yue-HK", "zh-CN", "zh-HK", "zh-TW",
    "en", "en-gb", "es", "fr", "de",  # the legacy man/woman voices' own codes
})
# fmt: on
# A loop of 0 repeats until the call ends: the simulated person listens this many times,
# then hangs up, so that such a call ends.
FOREVER_LISTENS = 3
KEY_SECONDS = 0.5  # time to press one key
BEEP_SECONDS = 0.5
ASSUMED_BITRATE = 32_000  # bits per second of compressed audio whose length is not read
UNFETCHED_PLAY_SECONDS = 5.0
DTMF_KEYS = frozenset("0123456789*#")
PLAY_DIGITS = re.compile(r"^[0-9*#wW]+$")
SAY_VOICE = re.compile(
    r"^(man|woman|alice|Polly\.[A-Z][A-Za-z]+(-(Neural|Generative|LongForm))?"
    r"|Google\.[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9]+-[A-Z])$"
)
DEFAULT_VOICE = "man"
DEFAULT_LANGUAGE = "en-US"


# --- Clocks --------------------------------------------------------------------------


class Clock(Protocol):
    """The time of a simulated call."""

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of the call pass."""
        ...

    def now(self) -> float:
        """Return the current time in seconds (any fixed origin)."""
        ...


class RealClock:
    """Wall-clock time: the call lasts as long as it would on a phone."""

    def sleep(self, seconds: float) -> None:
        """Sleep through `seconds`."""
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> float:
        """Return monotonic time."""
        return time.monotonic()


class InstantClock:
    """Simulated time: durations are added up, nothing waits."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def sleep(self, seconds: float) -> None:
        """Add `seconds` to the elapsed time at once."""
        self.elapsed += max(0.0, seconds)

    def now(self) -> float:
        """Return the elapsed simulated time."""
        return self.elapsed


# --- The verbs of a checked document ---------------------------------------------------


class TwimlError(Exception):
    """The app's answer is one Twilio would refuse; the message says why."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(f"{reason} (Twilio error {code})" if code else reason)


@dataclass(frozen=True)
class _Say:
    text: str
    voice: str
    language: str
    loop: int


@dataclass(frozen=True)
class _Play:
    url: str  # "" when playing `digits`
    loop: int
    digits: str


@dataclass(frozen=True)
class _Pause:
    length: int


@dataclass(frozen=True)
class _Gather:
    prompts: tuple[_Say | _Play | _Pause, ...]
    dtmf: bool
    num_digits: int | None
    timeout: int
    finish_on_key: str
    action: str
    method: str
    action_on_empty_result: bool


@dataclass(frozen=True)
class _Record:
    action: str
    method: str
    timeout: int
    finish_on_key: str
    max_length: int
    play_beep: bool
    status_callback: str | None
    status_callback_method: str
    status_callback_events: frozenset[str]


@dataclass(frozen=True)
class _Redirect:
    url: str
    method: str


@dataclass(frozen=True)
class _Hangup:
    pass


@dataclass(frozen=True)
class _Reject:
    reason: str


_Verb = _Say | _Play | _Pause | _Gather | _Record | _Redirect | _Hangup | _Reject


@dataclass(frozen=True)
class Document:
    """A checked TwiML document: its URL and its verbs, ready to run."""

    url: str
    verbs: tuple[_Verb, ...]
    warnings: tuple[str, ...] = ()


# --- Checking a document ---------------------------------------------------------------


def check_response(url: str, response: TransportResponse) -> Document:
    """Return the TwiML document of `response`; raise `TwimlError` if Twilio would refuse it.

    Stricter than Twilio on one point: Twilio reads a text/plain answer aloud and plays
    an audio answer, then hangs up; from this app either is a mistake, so it fails.
    """
    if not 200 <= response.status < 300:
        raise TwimlError(f"{url} answered HTTP {response.status}", "11200")
    if response.mimetype not in TWIML_TYPES:
        shown = response.content_type or "no Content-Type"
        raise TwimlError(
            f"{url} answered {shown}, not TwiML (text/xml or application/xml)"
            f"{_what_twilio_does(response.mimetype)}",
            "12300",
        )
    if len(response.body) > MAX_DOCUMENT_BYTES:
        raise TwimlError(f"{url} answered {len(response.body)} bytes, over 64 kB", "11750")
    return parse_document(url, response.body)


def _what_twilio_does(mimetype: str) -> str:
    if mimetype == "text/plain":
        return ": Twilio would read the body aloud and hang up"
    if mimetype in AUDIO_TYPES:
        return ": Twilio would play it and hang up"
    return ""


def parse_document(url: str, body: bytes) -> Document:
    """Parse and check the TwiML `body` served at `url`; raise `TwimlError` if invalid."""
    root = _parse_xml(url, body)
    if root.tag != "Response":
        raise TwimlError(f"{url}: the root element is <{root.tag}>, not <Response>", "12102")
    checker = _Checker(url)
    _no_text(root, "<Response>", url)
    verbs = tuple(checker.verb(child) for child in root)
    for index, verb in enumerate(verbs):
        if isinstance(verb, _Reject) and index > 0:
            raise TwimlError(f"{url}: <Reject> must be the first verb", "12200")
    return Document(url=url, verbs=verbs, warnings=tuple(checker.warnings))


def _parse_xml(url: str, body: bytes) -> Element:
    # Expat directly, DTDs refused: no entity expansion, no external entities.
    stack: list[Element] = []
    roots: list[Element] = []

    def start(tag, attrs):
        element = Element(tag, attrs)
        if stack:
            stack[-1].append(element)
        else:
            roots.append(element)
        stack.append(element)

    def end(_tag):
        stack.pop()

    def text(data):
        if not stack:
            return
        top = stack[-1]
        if len(top):
            top[-1].tail = (top[-1].tail or "") + data
        else:
            top.text = (top.text or "") + data

    def refuse_doctype(*_args):
        raise TwimlError(f"{url}: a DOCTYPE is not allowed in TwiML", "12100")

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    try:
        parser.Parse(body, True)
    except expat.ExpatError as err:
        raise TwimlError(f"{url}: not well-formed XML: {err}", "12100") from None
    if not roots:
        raise TwimlError(f"{url}: an empty document", "12100")
    return roots[0]


def _no_text(element: Element, where: str, url: str) -> None:
    texts = [element.text] + [child.tail for child in element]
    if any(t and t.strip() for t in texts):
        raise TwimlError(f"{url}: text directly inside {where}", "12200")


class _Checker:
    """Turn the elements of one document into verbs, checking each as Twilio would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.warnings: list[str] = []

    def verb(self, element: Element) -> _Verb:
        tag = element.tag
        if tag in UNSUPPORTED_VERBS:
            raise TwimlError(f"{self.url}: <{tag}> is TwiML the simulator does not run")
        if tag not in SUPPORTED_VERBS:
            raise TwimlError(f"{self.url}: <{tag}> is not a TwiML verb", "12200")
        return getattr(self, "_" + tag.lower())(element)

    # -- the verbs

    def _say(self, element: Element) -> _Say:
        self._attributes(element, {"voice", "language", "loop"})
        for child in element.iter():
            if child is not element and child.tag not in SSML_TAGS:
                raise TwimlError(f"{self.url}: <{child.tag}> inside <Say>", "12200")
        text = " ".join("".join(element.itertext()).split())
        if not text:
            raise TwimlError(f"{self.url}: <Say> with no text", "13520")
        voice = element.get("voice", DEFAULT_VOICE)
        if not SAY_VOICE.match(voice):
            raise TwimlError(f"{self.url}: <Say voice={voice!r}> is not a Twilio voice", "13511")
        language = element.get("language", DEFAULT_LANGUAGE)
        if language not in SAY_LANGUAGES:
            raise TwimlError(
                f"{self.url}: <Say language={language!r}> is not a language Twilio speaks", "13512"
            )
        return _Say(text, voice, language, self._integer(element, "loop", 1, minimum=0))

    def _play(self, element: Element) -> _Play:
        self._attributes(element, {"loop", "digits"})
        self._no_children(element)
        loop = self._integer(element, "loop", 1, minimum=0)
        digits = element.get("digits")
        text = (element.text or "").strip()
        if digits is not None:
            if not PLAY_DIGITS.match(digits):
                raise TwimlError(
                    f"{self.url}: <Play digits={digits!r}>: only 0-9, *, # and w", "12200"
                )
            if text:
                raise TwimlError(f"{self.url}: <Play> with both digits and a URL", "12200")
            return _Play("", loop, digits)
        if not text:
            raise TwimlError(f"{self.url}: <Play> with no URL", "12200")
        return _Play(self._url(text, "<Play>"), loop, "")

    def _pause(self, element: Element) -> _Pause:
        self._attributes(element, {"length"})
        self._no_children(element)
        self._no_text(element, "<Pause>")
        return _Pause(self._integer(element, "length", 1, minimum=0))

    def _gather(self, element: Element) -> _Gather:
        self._attributes(
            element,
            {
                "input",
                "numDigits",
                "timeout",
                "finishOnKey",
                "action",
                "method",
                "actionOnEmptyResult",
                "language",
                "hints",
                "speechTimeout",
                "profanityFilter",
                "partialResultCallback",
                "partialResultCallbackMethod",
                "speechModel",
                "enhanced",
            },
        )
        self._no_text(element, "<Gather>")
        prompts = []
        for child in element:
            if child.tag not in GATHER_NOUNS:
                raise TwimlError(
                    f"{self.url}: <{child.tag}> inside <Gather> (only Say, Play, Pause)", "12200"
                )
            prompts.append(self.verb(child))
        inputs = element.get("input", "dtmf").split()
        if not inputs or set(inputs) - {"dtmf", "speech"} or len(set(inputs)) != len(inputs):
            raise TwimlError(
                f"{self.url}: <Gather input={element.get('input')!r}>: dtmf, speech or both",
                "12200",
            )
        finish_on_key = element.get("finishOnKey", "#")
        if finish_on_key and finish_on_key not in DTMF_KEYS:
            raise TwimlError(
                f"{self.url}: <Gather finishOnKey={finish_on_key!r}>: one key (0-9, *, #) or empty",
                "12200",
            )
        num_digits = self._integer(element, "numDigits", None, minimum=1)
        return _Gather(
            prompts=tuple(prompts),
            dtmf="dtmf" in inputs,
            num_digits=num_digits,
            timeout=self._integer(element, "timeout", 5, minimum=1),
            finish_on_key=finish_on_key,
            action=self._action(element),
            method=self._method(element, "method"),
            action_on_empty_result=self._boolean(element, "actionOnEmptyResult", False),
        )

    def _record(self, element: Element) -> _Record:
        self._attributes(
            element,
            {
                "action",
                "method",
                "timeout",
                "finishOnKey",
                "maxLength",
                "playBeep",
                "trim",
                "recordingStatusCallback",
                "recordingStatusCallbackMethod",
                "recordingStatusCallbackEvent",
                "transcribe",
                "transcribeCallback",
                "recordingChannels",
                "recordingTrack",
            },
        )
        self._no_children(element)
        self._no_text(element, "<Record>")
        finish_on_key = element.get("finishOnKey", "1234567890*#")
        if set(finish_on_key) - DTMF_KEYS:
            raise TwimlError(
                f"{self.url}: <Record finishOnKey={finish_on_key!r}>: keys 0-9, *, # only", "12200"
            )
        trim = element.get("trim", "trim-silence")
        if trim not in ("trim-silence", "do-not-trim"):
            raise TwimlError(
                f"{self.url}: <Record trim={trim!r}>: trim-silence or do-not-trim", "12200"
            )
        self._boolean(element, "transcribe", False)
        if element.get("transcribeCallback"):
            self._url(element.get("transcribeCallback"), "<Record transcribeCallback>")
        events = frozenset(element.get("recordingStatusCallbackEvent", "completed").split())
        if not events or events - {"in-progress", "completed", "absent"}:
            raise TwimlError(
                f"{self.url}: <Record recordingStatusCallbackEvent="
                f"{element.get('recordingStatusCallbackEvent')!r}>",
                "12200",
            )
        callback = element.get("recordingStatusCallback")
        return _Record(
            action=self._action(element),
            method=self._method(element, "method"),
            timeout=self._integer(element, "timeout", 5, minimum=0),
            finish_on_key=finish_on_key,
            max_length=self._integer(element, "maxLength", 3600, minimum=1),
            play_beep=self._boolean(element, "playBeep", True),
            status_callback=(
                self._url(callback, "<Record recordingStatusCallback>")
                if callback is not None
                else None
            ),
            status_callback_method=self._method(element, "recordingStatusCallbackMethod"),
            status_callback_events=events,
        )

    def _redirect(self, element: Element) -> _Redirect:
        self._attributes(element, {"method"})
        self._no_children(element)
        text = (element.text or "").strip()
        if not text:
            raise TwimlError(f"{self.url}: <Redirect> with no URL", "11100")
        return _Redirect(self._url(text, "<Redirect>"), self._method(element, "method"))

    def _hangup(self, element: Element) -> _Hangup:
        self._attributes(element, set())
        self._no_children(element)
        self._no_text(element, "<Hangup>")
        return _Hangup()

    def _reject(self, element: Element) -> _Reject:
        self._attributes(element, {"reason"})
        self._no_children(element)
        self._no_text(element, "<Reject>")
        reason = element.get("reason", "rejected")
        if reason not in ("rejected", "busy"):
            raise TwimlError(f"{self.url}: <Reject reason={reason!r}>: rejected or busy", "12200")
        return _Reject(reason)

    # -- attributes and content

    def _attributes(self, element: Element, known: set[str]) -> None:
        # Twilio ignores an unknown attribute with a warning (12200): most often a
        # miscased name (numdigits), so it is worth showing.
        for name in sorted(set(element.attrib) - known):
            self.warnings.append(
                f"{self.url}: <{element.tag}> has an unknown attribute {name!r} (ignored)"
            )

    def _no_children(self, element: Element) -> None:
        if len(element):
            raise TwimlError(f"{self.url}: <{element[0].tag}> inside <{element.tag}>", "12200")

    def _no_text(self, element: Element, where: str) -> None:
        _no_text(element, where, self.url)

    def _integer(self, element: Element, name: str, default, *, minimum: int):
        raw = element.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]+", raw.strip()) or int(raw) < minimum:
            lowest = "a positive" if minimum > 0 else "a non-negative"
            raise TwimlError(
                f"{self.url}: <{element.tag} {name}={raw!r}>: expected {lowest} integer", "12200"
            )
        return int(raw)

    def _boolean(self, element: Element, name: str, default: bool) -> bool:
        raw = element.get(name)
        if raw is None:
            return default
        if raw not in ("true", "false"):
            raise TwimlError(f"{self.url}: <{element.tag} {name}={raw!r}>: true or false", "12200")
        return raw == "true"

    def _method(self, element: Element, name: str) -> str:
        method = element.get(name, "POST")
        if method not in ("GET", "POST"):
            raise TwimlError(f"{self.url}: <{element.tag} {name}={method!r}>: GET or POST", "12200")
        return method

    def _action(self, element: Element) -> str:
        action = element.get("action")
        if action is None:  # Twilio requests the current document again
            return self.url
        return self._url(action, f"<{element.tag} action>")

    def _url(self, reference: str, where: str) -> str:
        """Resolve `reference` against the document's URL, as Twilio does."""
        resolved = urljoin(self.url, reference.strip())
        parts = urlsplit(resolved)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TwimlError(
                f"{self.url}: {where} URL {reference!r} cannot be resolved to an http(s) URL",
                "11100",
            )
        return urlunsplit(parts._replace(fragment=""))


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
                case _Say() | _Play() | _Pause():
                    self.perform(verb)
                    if getattr(verb, "loop", 1) == 0:  # repeats until the person gives up
                        self.end(HungUp("person"))
                case _Gather():
                    following = self.gather(verb)
                    if following is not None:
                        return following
                case _Record():
                    following = self.record(verb)
                    if following is not None:
                        return following
                case _Redirect(url=url, method=method):
                    self.events.append(Redirected(url))
                    return self.fetch(url, method)
                case _Hangup():
                    self.end(HungUp("app"))
                case _Reject(reason=reason):
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

    def perform(self, verb: _Say | _Play | _Pause) -> Said | Played | None:
        """Say, play or pause; return what the person heard (None for a pause)."""
        match verb:
            case _Say(text=text, voice=voice, language=language, loop=loop):
                heard = Said(text, voice, language, loop)
                seconds = len(text.split()) / self.speech_rate
            case _Play(url=url, loop=loop, digits=digits):
                heard = Played(url, loop, digits)
                seconds = len(digits) * KEY_SECONDS if digits else self.audio_seconds(url)
            case _Pause(length=length):
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

    def gather(self, verb: _Gather) -> Document | None:
        """Prompt, collect keys, and request the action; None: go on with the next verb."""
        heard = [h for h in map(self.perform, verb.prompts) if h is not None]
        forever = any(p.loop == 0 for p in verb.prompts if not isinstance(p, _Pause))
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

    def record(self, verb: _Record) -> Document | None:
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

    def recording_callback(self, verb: _Record, recording: dict[str, str]) -> None:
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
