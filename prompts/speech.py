"""Speech: the engines that turn a prompt into audio, the audio cache, and the render job.

Engines are tried in the order of `TTS_ENGINES` (default `gtts,espeak,say`):

- `gtts`: Google Translate's voice (the `gTTS` package; online, MP3), bounded by
  `TTS_TIMEOUT_SECONDS`;
- `espeak`: espeak-ng (the Debian package `espeak-ng`; offline, WAV), spoken slower
  than its default for elderly listeners on a landline;
- `say`: no audio file at all; the IVR then speaks the words with the carrier's `<Say>`
  and its voice table (`ivr.twiml.VOICES`). It ends the list: engines after it never run.

Audio is rendered once per alert and language, at release, by the `render_alert_audio`
job, and kept under `instance/speech/<engine>/<language>/<sha256 of the text>.<ext>`.
A webhook never synthesises: it asks `cached_audio_url(text, language)`, a few stat()
calls, and falls back to `<Say>` when nothing is rendered (yet). The files never change
once written (the name is the text's hash), so the media route serves them as immutable.

The IVR and the render job agree on the words through `alert_call_words(alert,
language)`: the IVR must speak exactly those strings for the cache to hit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable, MutableMapping
from dataclasses import astuple, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import requests
from flask import current_app
from sqlalchemy import select

from alerts.delivery.schedule import queue_for
from alerts.wording import language_for, partnership_names
from core.extensions import db
from core.queue import enqueue_after_commit
from core.urls import public_url
from prompts import FALLBACK_LANGUAGE, LANGUAGES, text

if TYPE_CHECKING:
    from alerts.models import Alert

log = logging.getLogger(__name__)

SPEECH_DIR = "speech"  # under the instance folder
AUDIO_NAME = re.compile(r"^[0-9a-f]{64}\.(mp3|wav)$")  # <sha256>.<ext>, as the cache names them
CONTENT_TYPES = MappingProxyType({"mp3": "audio/mpeg", "wav": "audio/x-wav"})
# What each engine's files end with (None: it makes no file); core.settings names them.
EXTENSIONS = MappingProxyType({"gtts": "mp3", "espeak": "wav", "say": None})
ESPEAK_BINARY = "espeak-ng"
ESPEAK_RATE = 140  # words per minute; espeak-ng's default, 175, is too fast on a landline
ESPEAK_TIMEOUT_SECONDS = 30  # one prompt takes milliseconds; a hung process must not hold a job
# espeak-ng voices (`espeak-ng --voices`): Belgian French where there is one; there is no
# Flemish voice, so standard Dutch.
ESPEAK_VOICES = MappingProxyType({"fr": "fr-be", "nl": "nl", "de": "de", "en": "en-gb"})


@dataclass(frozen=True)
class GttsVoice:
    """What gTTS needs for one language: its language tag and the Google host's domain."""

    lang: str
    tld: str


# gTTS picks the accent through the Google domain it asks ("Localized accents" in gTTS's
# documentation). Google has no Belgian French or Flemish accent: European French (not
# Canadian), Dutch, German, and British English.
GTTS_VOICES = MappingProxyType(
    {
        "fr": GttsVoice("fr", "fr"),
        "nl": GttsVoice("nl", "nl"),
        "de": GttsVoice("de", "de"),
        "en": GttsVoice("en", "co.uk"),
    }
)


GTTS_RPC = "jQ1olc"  # the speech call of Google Translate's batchexecute endpoint
_GTTS_AUDIO = re.compile(r'jQ1olc","\[\\"(.*)\\"]')  # gTTS's own pattern


class EngineUnavailableError(Exception):
    """The engine could not speak this text now (no network, HTTP 429, not installed)."""


@dataclass(frozen=True)
class Audio:
    """Rendered speech: the bytes and their type."""

    content: bytes
    content_type: str

    @property
    def extension(self) -> str:
        """Return the file extension of this type of audio."""
        return next(ext for ext, kind in CONTENT_TYPES.items() if kind == self.content_type)


class Engine(Protocol):
    """A speech engine: audio for a text in a language, or None for the carrier's <Say>."""

    name: str
    extension: str | None  # of the files it makes; None: it makes none

    def render(self, words: str, language: str) -> Audio | None:
        """Return the audio, None when the carrier is to speak; raise EngineUnavailableError."""
        ...


class GttsEngine:
    """Google Translate's text-to-speech through gTTS: natural voices, online only."""

    name = "gtts"
    extension = "mp3"

    def __init__(self, timeout: float):
        self.timeout = timeout

    def render(self, words: str, language: str) -> Audio:
        """Return MP3 speech of `words`; raise EngineUnavailableError when Google cannot answer."""
        from gtts import gTTS  # noqa: PLC0415 (only a worker that renders needs it)

        voice = GTTS_VOICES[language]
        try:
            # gTTS builds the requests (its tokenizer splits long texts into parts)...
            prepared = gTTS(words, lang=voice.lang, tld=voice.tld)._prepare_requests()
        except (ValueError, AssertionError) as err:  # an unknown language, nothing to say
            raise EngineUnavailableError(str(err) or type(err).__name__) from err
        # ...but they are sent here rather than by gTTS.write_to_fp, which turns TLS
        # certificate checks off (verify=False): a forged answer would put someone
        # else's words in an alert call. Environment proxies apply as with requests.get.
        parts = []
        with requests.Session() as session:
            for request in prepared:
                options = session.merge_environment_settings(request.url, {}, None, True, None)
                try:
                    response = session.send(request, timeout=self.timeout, **options)
                except requests.RequestException as err:
                    raise EngineUnavailableError(f"{type(err).__name__}: {err}") from err
                if response.status_code != 200:  # 429: Google asks us to slow down
                    raise EngineUnavailableError(f"HTTP {response.status_code} from Google")
                parts.append(gtts_audio(response.text))
        content = b"".join(parts)
        if not _is_mp3(content):
            raise EngineUnavailableError(f"no MP3 audio in the answer ({len(content)} bytes)")
        return Audio(content, CONTENT_TYPES["mp3"])


def gtts_audio(body: str) -> bytes:
    """Return the MP3 in an answer of Google's speech endpoint (as gTTS.stream reads it)."""
    for line in body.splitlines():
        if GTTS_RPC in line:
            found = _GTTS_AUDIO.search(line)
            if found is None:
                break
            try:
                return base64.b64decode(found.group(1).encode("ascii"), validate=True)
            except (ValueError, binascii.Error):
                break
    raise EngineUnavailableError("no audio in Google's answer")


class EspeakEngine:
    """espeak-ng: robotic but offline, always there when the Debian package is installed."""

    name = "espeak"
    extension = "wav"

    def __init__(self, binary: str | None = None, rate: int = ESPEAK_RATE):
        self.binary = binary or shutil.which(ESPEAK_BINARY)
        self.rate = rate

    def render(self, words: str, language: str) -> Audio:
        """Return WAV speech of `words`; raise EngineUnavailableError when espeak-ng fails."""
        if self.binary is None:
            raise EngineUnavailableError(f"{ESPEAK_BINARY} is not installed")
        with tempfile.TemporaryDirectory(prefix="plp-espeak-") as folder:
            out = Path(folder) / "speech.wav"
            # The words go on stdin, never on the command line: a text starting with "-"
            # must not read as an option. -w writes a proper WAV header (--stdout does not
            # know the length and writes a placeholder).
            command = [
                self.binary,
                "-v",
                ESPEAK_VOICES[language],
                "-s",
                str(self.rate),
                "-w",
                str(out),
                "--stdin",
            ]
            try:
                done = subprocess.run(  # noqa: S603 (a fixed binary, no shell, words on stdin)
                    command,
                    input=words.encode("utf-8"),
                    capture_output=True,
                    timeout=ESPEAK_TIMEOUT_SECONDS,
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                raise EngineUnavailableError(f"{ESPEAK_BINARY} failed: {err}") from err
            if done.returncode != 0:
                stderr = done.stderr.decode("utf-8", "replace").strip()[:200]
                raise EngineUnavailableError(f"{ESPEAK_BINARY} exited {done.returncode}: {stderr}")
            content = out.read_bytes() if out.exists() else b""
        if wav_frames(content) == 0:
            raise EngineUnavailableError(f"{ESPEAK_BINARY} made no audio")
        return Audio(content, CONTENT_TYPES["wav"])


class SayEngine:
    """The carrier's own <Say>: nothing to render, the IVR speaks the words."""

    name = "say"
    extension = None

    def render(self, words: str, language: str) -> None:
        """Return None: the carrier speaks."""
        return None


def engines(names: Iterable[str] | None = None) -> list[Engine]:
    """Return the engines of `TTS_ENGINES` (or of `names`), in order, up to `say`."""
    settings = current_app.extensions["settings"]
    chosen: list[Engine] = []
    for name in names if names is not None else settings.tts_engines:
        if name == "gtts":
            chosen.append(GttsEngine(settings.tts_timeout_seconds))
        elif name == "espeak":
            chosen.append(EspeakEngine())
        elif name == "say":
            chosen.append(SayEngine())
            break  # the carrier always speaks: nothing after it would ever run
        else:
            raise ValueError(f"unknown speech engine {name!r}")
    return chosen


# ---------------------------------------------------------------------------------------
# The cache


@dataclass(frozen=True)
class CachedAudio:
    """A rendered prompt on disk."""

    engine: str
    language: str
    name: str  # <sha256>.<ext>
    path: Path

    @property
    def content_type(self) -> str:
        """Return the audio's content type, from its extension."""
        return CONTENT_TYPES[self.name.rsplit(".", 1)[1]]


def speech_dir() -> Path:
    """Return the folder of rendered speech (under the instance folder)."""
    return Path(current_app.instance_path) / SPEECH_DIR


def audio_key(words: str) -> str:
    """Return the cache key of a text: the SHA-256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(words.encode("utf-8")).hexdigest()


def audio_path(engine: str, language: str, name: str) -> Path:
    """Return where the cache keeps `name` rendered by `engine` in `language`."""
    return speech_dir() / engine / language / name


def spoken_language(language: str | None) -> str:
    """Return a language the engines speak: `language`, else French."""
    return language if language in LANGUAGES else FALLBACK_LANGUAGE


def cached_audio(words: str, language: str | None) -> CachedAudio | None:
    """Return the rendered audio of exactly `words` in `language`, or None; never renders.

    Engines are looked up in the order of `TTS_ENGINES`, so the preferred voice wins when
    several made the same text; `say` ends the search (the carrier speaks).
    """
    if not words or not words.strip():
        return None
    language = spoken_language(language)
    key = audio_key(words)
    for engine in current_app.extensions["settings"].tts_engines:
        extension = EXTENSIONS[engine]
        if extension is None:
            return None
        name = f"{key}.{extension}"
        path = audio_path(engine, language, name)
        if path.is_file():
            return CachedAudio(engine, language, name, path)
    return None


def cached_audio_url(words: str, language: str | None) -> str | None:
    """Return the absolute URL of already-rendered audio of `words`, else None.

    For the IVR: `<Play>` it when there is one, else `<Say>` the words. Fast (a few
    stat() calls); never synthesises.
    """
    found = cached_audio(words, language)
    if found is None:
        return None
    return public_url("media.speech", engine=found.engine, language=found.language, name=found.name)


def synthesize(
    words: str,
    language: str | None,
    *,
    failed: MutableMapping[str, str] | None = None,
    context: str = "",
) -> CachedAudio | None:
    """Return the cached audio of `words`, rendering it with the first engine that can.

    A text already rendered by any engine of the list is not rendered again. `failed`
    maps engines that failed earlier in the same job to why; they are skipped, and an
    engine failing now is added and logged, so a job logs each engine's failure once.
    None: the carrier is to speak (`say`, or every engine failed).
    """
    failed = {} if failed is None else failed
    found = cached_audio(words, language)
    if found is not None:
        return found
    if not words or not words.strip():
        return None
    language = spoken_language(language)
    key = audio_key(words)
    for engine in engines():
        if engine.name in failed:
            continue
        try:
            audio = engine.render(words, language)
        except EngineUnavailableError as err:
            failed[engine.name] = str(err)
            log.warning(
                "speech engine failed %s engine=%s language=%s error=%s: trying the next one",
                context,
                engine.name,
                language,
                err,
            )
            continue
        if audio is None:
            return None
        name = f"{key}.{audio.extension}"
        path = audio_path(engine.name, language, name)
        _write_atomically(path, audio.content)
        log.debug(
            "speech rendered %s engine=%s language=%s bytes=%d",
            context,
            engine.name,
            language,
            len(audio.content),
        )
        return CachedAudio(engine.name, language, name, path)
    return None


def _write_atomically(path: Path, content: bytes) -> None:
    # Two jobs may render the same prompt at once, and a request may read it meanwhile:
    # write aside, then rename, so nobody ever sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def wav_frames(content: bytes) -> int:
    """Return how many audio frames a WAV file holds (0 when it is not a WAV file)."""
    try:
        with wave.open(io.BytesIO(content), "rb") as audio:
            return audio.getnframes()
    except (wave.Error, EOFError):
        return 0


def _is_mp3(content: bytes) -> bool:
    # An ID3 tag, or an MPEG audio frame's 11-bit sync word.
    return len(content) > 4 and (
        content.startswith(b"ID3") or (content[0] == 0xFF and content[1] & 0xE0 == 0xE0)
    )


# ---------------------------------------------------------------------------------------
# What an alert call says, and the job that renders it


@dataclass(frozen=True)
class AlertCallWords:
    """Every text a member's alert call may speak, in one language."""

    intro: str  # voice.alert_intro (voice.coordinator_intro for a recorded message)
    message: str  # the alert's text (said when its recording is not playable)
    prompt: str  # voice.alert_prompt: press 1 to confirm, 0 to hear it again
    machine_message: str  # voice.machine_message: the version for an answering machine
    machine_intro: str  # with a recording: before it on a machine ("" without one)
    machine_how_to_confirm: str  # with a recording: after it on a machine ("" without one)
    ack_confirmed: str
    goodbye: str
    no_input: str
    alert_over: str
    apology: str

    def texts(self) -> list[str]:
        """Return the distinct non-empty texts, in order."""
        return list(dict.fromkeys(words for words in astuple(self) if words and words.strip()))


def spoken_names(alert: Alert, language: str) -> dict[str, str]:
    """Return the exercise prefix and the alert's PLP names, as the voice prompts take them."""
    return {
        "exercise": text("voice.exercise_prefix", language) if alert.exercise else "",
        "plp": partnership_names(target.partnership for target in alert.targets),
    }


def alert_call_words(alert: Alert, language: str | None) -> AlertCallWords:
    """Return the words of an alert call in `language`, exactly as the IVR speaks them.

    Kept in step with `ivr.views` and `ivr.spoken` (a test compares them): a recorded
    message gets the coordinator's introduction, and on a machine it is framed by
    voice.machine_intro and voice.machine_how_to_confirm (the reference spelled out).
    """
    language = spoken_language(language)
    names = spoken_names(alert, language)
    recorded = alert.recording_id is not None
    return AlertCallWords(
        intro=text(
            "voice.coordinator_intro" if recorded else "voice.alert_intro", language, **names
        ),
        message=alert.text,
        prompt=text("voice.alert_prompt", language),
        machine_message=text(
            "voice.machine_message", language, **names, message=alert.text, ref=alert.reference
        ),
        machine_intro=text("voice.machine_intro", language, **names) if recorded else "",
        machine_how_to_confirm=(
            text("voice.machine_how_to_confirm", language, ref=" ".join(alert.reference))
            if recorded
            else ""
        ),
        ack_confirmed=text("voice.ack_confirmed", language),
        goodbye=text("voice.goodbye", language),
        no_input=text("voice.no_input", language),
        alert_over=text("voice.alert_over", language),
        apology=text("voice.apology", language),
    )


def alert_call_texts(alert: Alert, language: str | None) -> list[str]:
    """Return the texts an alert call in `language` speaks (what the render job renders)."""
    return alert_call_words(alert, language).texts()


def recipient_languages(alert: Alert) -> list[str]:
    """Return the languages the alert's recipients are spoken to in, sorted."""
    from alerts.models import Delivery, Person  # noqa: PLC0415

    people = db.session.scalars(
        select(Person).where(
            Person.id.in_(select(Delivery.person_id).where(Delivery.alert_id == alert.id))
        )
    )
    # The IVR speaks to a person in language_for(person, alert): the same rule here.
    return sorted({language_for(person, alert) for person in people})


def render_job_id(alert_id: int) -> str:
    """Return the id of an alert's render job: one per alert."""
    return f"speech-{alert_id}"


def enqueue_alert_audio(alert: Alert) -> None:
    """Render the alert's speech in a job, after the commit (the release calls this)."""
    enqueue_after_commit(
        queue_for(alert), "alerts.jobs.render_alert_audio", alert.id, job_id=render_job_id(alert.id)
    )


def render_alert_audio(alert_id: int) -> dict[str, dict[str, int]]:
    """Render every text of the alert's calls in each recipient's language; return counts.

    Counts are per language and engine (`say`: left to the carrier). An engine that fails
    is not tried again for this alert, and its failure is logged once.
    """
    from alerts.models import Alert, AlertState  # noqa: PLC0415 (alerts imports prompts)

    alert = db.session.get(Alert, alert_id)
    if alert is None:
        log.warning("speech for a missing alert alert_id=%s", alert_id)
        return {}
    if alert.state not in (AlertState.RELEASED, AlertState.DELIVERING):
        log.info("speech not rendered alert_id=%s state=%s", alert_id, alert.state.value)
        db.session.rollback()
        return {}
    failed: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {}
    context = f"alert_id={alert_id}"
    for language in recipient_languages(alert):
        per_engine = counts.setdefault(language, {})
        for words in alert_call_texts(alert, language):
            found = synthesize(words, language, failed=failed, context=context)
            engine = found.engine if found else "say"
            per_engine[engine] = per_engine.get(engine, 0) + 1
    db.session.rollback()  # read only: end the transaction, hold no snapshot
    log.info(
        "speech rendered alert_id=%s counts=%s failed=%s",
        alert_id,
        counts,
        ",".join(sorted(failed)) or "-",
    )
    return counts
