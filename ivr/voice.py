"""What a caller hears of a text: its rendered audio when the cache has it, else the words.

Resolved before any TwiML is built, part by part, so that the builders (`ivr.twiml`)
stay pure and every prompt benefits from the speech cache: the call trees pass each text
through `voiced` (or a list of parts through `voiced_parts`). The alert's words are
rendered at release (`ivr.prerender`); a lookup here is a few stat() calls and never
renders. Nothing rendered (yet), or the cache failing: the carrier says the words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.urls import public_url
from ivr import twiml
from prompts import FALLBACK_LANGUAGE, text
from prompts.audio_cache import cached_audio

log = logging.getLogger(__name__)


def cached_audio_url(words: str, language: str | None) -> str | None:
    """Return the absolute URL of already-rendered audio of `words`, else None.

    For the IVR: `<Play>` it when there is one, else `<Say>` the words. Fast (a few
    stat() calls); never synthesises.
    """
    found = cached_audio(words, language)
    if found is None:
        return None
    return public_url("media.speech", engine=found.engine, language=found.language, name=found.name)


def voiced(words: str, language: str | None) -> twiml.Spoken:
    """Return the rendered audio of `words` in `language` when cached, else the words."""
    if not words:
        return words
    try:
        url = cached_audio_url(words, language or FALLBACK_LANGUAGE)
    except Exception:  # a cache failure must not cost the caller the message
        log.exception("speech cache lookup failed language=%s", language)
        return words
    return twiml.Audio(url) if url else words


def voiced_parts(parts: Sequence[twiml.Part], language: str | None) -> list[twiml.Part]:
    """Return `parts` with each text resolved by `voiced`; audio and pauses as they are."""
    return [voiced(part, language) if isinstance(part, str) else part for part in parts]


def prompt(key: str, language: str | None, /, **values: object) -> twiml.Spoken:
    """Return the prompt `key` in `language`, filled with `values`, as the caller hears it."""
    return voiced(text(key, language, **values), language)
