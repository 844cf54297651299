"""The audio cache: rendered speech on disk, one file per text, language and engine.

Files are kept under `instance/speech/<engine>/<language>/<sha256 of the text>.<ext>`.
A lookup is a few stat() calls and never renders; the files never change once written
(the name is the text's hash), so the media route serves them as immutable.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from prompts import spoken_language
from prompts.audio import CONTENT_TYPES, EXTENSIONS, Audio

SPEECH_DIR = "speech"  # under the instance folder
AUDIO_NAME = re.compile(r"^[0-9a-f]{64}\.(mp3|wav)$")  # <sha256>.<ext>, as the cache names them


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


def store_audio(engine: str, language: str, words: str, audio: Audio) -> CachedAudio:
    """Keep `audio`, the speech of `words` made by `engine` in `language`; return it cached."""
    name = f"{audio_key(words)}.{audio.extension}"
    path = audio_path(engine, language, name)
    _write_atomically(path, audio.content)
    return CachedAudio(engine, language, name, path)


def _write_atomically(path: Path, content: bytes) -> None:
    # Two jobs may render the same prompt at once, and a request may read it meanwhile:
    # write aside, then rename, so nobody ever sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(content)
    os.replace(tmp, path)
