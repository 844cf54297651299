"""Audio formats of rendered speech: what each engine makes, and how to tell it is sound."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from types import MappingProxyType

CONTENT_TYPES = MappingProxyType({"mp3": "audio/mpeg", "wav": "audio/x-wav"})
# What each engine's files end with (None: it makes no file); core.settings names them.
EXTENSIONS = MappingProxyType({"gtts": "mp3", "espeak": "wav", "say": None})


@dataclass(frozen=True)
class Audio:
    """Rendered speech: the bytes and their type."""

    content: bytes
    content_type: str

    @property
    def extension(self) -> str:
        """Return the file extension of this type of audio."""
        return next(ext for ext, kind in CONTENT_TYPES.items() if kind == self.content_type)


def wav_frames(content: bytes) -> int:
    """Return how many audio frames a WAV file holds (0 when it is not a WAV file)."""
    try:
        with wave.open(io.BytesIO(content), "rb") as audio:
            return audio.getnframes()
    except (wave.Error, EOFError):
        return 0


def is_mp3(content: bytes) -> bool:
    """Tell whether `content` starts as an MP3 file does."""
    # An ID3 tag, or an MPEG audio frame's 11-bit sync word.
    return len(content) > 4 and (
        content.startswith(b"ID3") or (content[0] == 0xFF and content[1] & 0xE0 == 0xE0)
    )
