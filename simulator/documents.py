"""TwiML documents as Twilio checks them: parsed and refused whole, before any verb runs.

`check_response` takes the app's answer to a voice request and returns its `Document`
(its verbs, checked: status, content type, size, XML, root, verbs, nesting, attributes,
URLs), or raises `TwimlError` with Twilio's error code where it has one
(https://www.twilio.com/docs/api/errors/<code>). `twiml.run_call` runs the verbs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.etree.ElementTree import Element
from xml.parsers import expat

from simulator.transport import TransportResponse

MAX_DOCUMENT_BYTES = 64 * 1024  # https://www.twilio.com/docs/api/errors/11750
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
# The attributes Twilio knows on <Gather> and <Record>; any other is ignored with a warning.
GATHER_ATTRIBUTES = frozenset({"input", "numDigits", "timeout", "finishOnKey", "action", "method",
                               "actionOnEmptyResult", "language", "hints", "speechTimeout",
                               "profanityFilter", "partialResultCallback",
                               "partialResultCallbackMethod", "speechModel", "enhanced"})
RECORD_ATTRIBUTES = frozenset({"action", "method", "timeout", "finishOnKey", "maxLength",
                               "playBeep", "trim", "recordingStatusCallback",
                               "recordingStatusCallbackMethod", "recordingStatusCallbackEvent",
                               "transcribe", "transcribeCallback", "recordingChannels",
                               "recordingTrack"})
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
DTMF_KEYS = frozenset("0123456789*#")
PLAY_DIGITS = re.compile(r"^[0-9*#wW]+$")
SAY_VOICE = re.compile(
    r"^(man|woman|alice|Polly\.[A-Z][A-Za-z]+(-(Neural|Generative|LongForm))?"
    r"|Google\.[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9]+-[A-Z])$"
)
DEFAULT_VOICE = "man"
DEFAULT_LANGUAGE = "en-US"


# --- The verbs of a checked document ---------------------------------------------------


class TwimlError(Exception):
    """The app's answer is one Twilio would refuse; the message says why."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(f"{reason} (Twilio error {code})" if code else reason)


@dataclass(frozen=True)
class Say:
    """A checked <Say>."""

    text: str
    voice: str
    language: str
    loop: int


@dataclass(frozen=True)
class Play:
    """A checked <Play>."""

    url: str  # "" when playing `digits`
    loop: int
    digits: str


@dataclass(frozen=True)
class Pause:
    """A checked <Pause>."""

    length: int


@dataclass(frozen=True)
class Gather:
    """A checked <Gather>."""

    prompts: tuple[Say | Play | Pause, ...]
    dtmf: bool
    num_digits: int | None
    timeout: int
    finish_on_key: str
    action: str
    method: str
    action_on_empty_result: bool


@dataclass(frozen=True)
class Record:
    """A checked <Record>."""

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
class Redirect:
    """A checked <Redirect>."""

    url: str
    method: str


@dataclass(frozen=True)
class Hangup:
    """A checked <Hangup>."""


@dataclass(frozen=True)
class Reject:
    """A checked <Reject>."""

    reason: str


Verb = Say | Play | Pause | Gather | Record | Redirect | Hangup | Reject


@dataclass(frozen=True)
class Document:
    """A checked TwiML document: its URL and its verbs, ready to run."""

    url: str
    verbs: tuple[Verb, ...]
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
        if isinstance(verb, Reject) and index > 0:
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

    def verb(self, element: Element) -> Verb:
        tag = element.tag
        if tag in UNSUPPORTED_VERBS:
            raise TwimlError(f"{self.url}: <{tag}> is TwiML the simulator does not run")
        if tag not in SUPPORTED_VERBS:
            raise TwimlError(f"{self.url}: <{tag}> is not a TwiML verb", "12200")
        return getattr(self, "_" + tag.lower())(element)

    # -- the verbs

    def _say(self, element: Element) -> Say:
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
        return Say(text, voice, language, self._integer(element, "loop", 1, minimum=0))

    def _play(self, element: Element) -> Play:
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
            return Play("", loop, digits)
        if not text:
            raise TwimlError(f"{self.url}: <Play> with no URL", "12200")
        return Play(self._url(text, "<Play>"), loop, "")

    def _pause(self, element: Element) -> Pause:
        self._attributes(element, {"length"})
        self._no_children(element)
        self._no_text(element, "<Pause>")
        return Pause(self._integer(element, "length", 1, minimum=0))

    def _gather(self, element: Element) -> Gather:
        self._attributes(element, GATHER_ATTRIBUTES)
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
        return Gather(
            prompts=tuple(prompts),
            dtmf="dtmf" in inputs,
            num_digits=num_digits,
            timeout=self._integer(element, "timeout", 5, minimum=1),
            finish_on_key=finish_on_key,
            action=self._action(element),
            method=self._method(element, "method"),
            action_on_empty_result=self._boolean(element, "actionOnEmptyResult", False),
        )

    def _record(self, element: Element) -> Record:
        self._attributes(element, RECORD_ATTRIBUTES)
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
        return Record(
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

    def _redirect(self, element: Element) -> Redirect:
        self._attributes(element, {"method"})
        self._no_children(element)
        text = (element.text or "").strip()
        if not text:
            raise TwimlError(f"{self.url}: <Redirect> with no URL", "11100")
        return Redirect(self._url(text, "<Redirect>"), self._method(element, "method"))

    def _hangup(self, element: Element) -> Hangup:
        self._attributes(element, set())
        self._no_children(element)
        self._no_text(element, "<Hangup>")
        return Hangup()

    def _reject(self, element: Element) -> Reject:
        self._attributes(element, {"reason"})
        self._no_children(element)
        self._no_text(element, "<Reject>")
        reason = element.get("reason", "rejected")
        if reason not in ("rejected", "busy"):
            raise TwimlError(f"{self.url}: <Reject reason={reason!r}>: rejected or busy", "12200")
        return Reject(reason)

    # -- attributes and content

    def _attributes(self, element: Element, known: frozenset[str] | set[str]) -> None:
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
