"""Every word spoken or texted, per language (fr, nl, de, en), and the speech engines.

Each language has one module (`prompts/fr.py`, ...) holding `TEXTS`, a table from key to
text with `{placeholders}`. Keys say where the words go: `sms.*` for text messages,
`voice.*` for what a caller hears, `email.*` for e-mails. Every key exists in every
language with the same placeholders (a test checks it). `text()` is the one way in.

The rest of the package turns words into sound, knowing nothing of alerts: `engines`
(gTTS, espeak-ng, the carrier's <Say>), `audio` (the formats they make) and `audio_cache`
(rendered speech on disk, looked up by text). What an alert call says, and the job that
renders it at release, are the IVR's (`ivr.spoken`, `ivr.prerender`).
"""

from __future__ import annotations

import string
from importlib import import_module
from types import MappingProxyType

LANGUAGES = ("fr", "nl", "de", "en")
FALLBACK_LANGUAGE = "fr"


class PromptError(KeyError):
    """A key that no language has, or a missing placeholder value: a programming error."""


def _load() -> MappingProxyType:
    return MappingProxyType(
        {lang: MappingProxyType(import_module(f"prompts.{lang}").TEXTS) for lang in LANGUAGES}
    )


CATALOG = _load()


def text(key: str, language: str | None, /, **values: object) -> str:
    """Return the words for `key` in `language` (French when unknown), filled with `values`."""
    table = CATALOG.get(language or FALLBACK_LANGUAGE) or CATALOG[FALLBACK_LANGUAGE]
    try:
        template = table[key]
    except KeyError:
        raise PromptError(f"no prompt {key!r}") from None
    try:
        return template.format_map(values)
    except KeyError as err:
        raise PromptError(f"prompt {key!r} needs a value for {err.args[0]!r}") from None


def spoken_language(language: str | None) -> str:
    """Return a language the prompts and the engines speak: `language`, else French."""
    return language if language in LANGUAGES else FALLBACK_LANGUAGE


def placeholders(template: str) -> frozenset[str]:
    """Return the names of the `{placeholders}` of a template."""
    return frozenset(
        name for _literal, name, _spec, _conv in string.Formatter().parse(template) if name
    )
