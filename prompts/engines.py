"""Speech engines: what turns a prompt into audio, tried in the order of `TTS_ENGINES`.

The default order is `gtts,espeak,say`:

- `gtts`: Google Translate's voice (the `gTTS` package; online, MP3), bounded by
  `TTS_TIMEOUT_SECONDS`;
- `espeak`: espeak-ng (the Debian package `espeak-ng`; offline, WAV), spoken slower
  than its default for elderly listeners on a landline;
- `say`: no audio file at all; the IVR then speaks the words with the carrier's `<Say>`
  and its voice table (`ivr.twiml.VOICES`). It ends the list: engines after it never run.

`synthesize` renders a text with the first engine that can and keeps it in the audio
cache (`prompts.audio_cache`); only a job calls it: a webhook never synthesises.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import requests
from flask import current_app

from prompts import spoken_language
from prompts.audio import CONTENT_TYPES, Audio, is_mp3, wav_frames
from prompts.audio_cache import CachedAudio, cached_audio, store_audio

log = logging.getLogger(__name__)

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
        if not is_mp3(content):
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
        found = store_audio(engine.name, language, words, audio)
        log.debug(
            "speech rendered %s engine=%s language=%s bytes=%d",
            context,
            engine.name,
            language,
            len(audio.content),
        )
        return found
    return None
