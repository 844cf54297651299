"""Pure TwiML builders: what a caller hears, as `VoiceResponse` documents.

Each builder takes what is said, the language and absolute action URLs, and returns a
`VoiceResponse`; none touches the request, the database, the speech cache or `url_for`.
What is said comes in parts already resolved by `ivr.voice`: a text is said with
`<Say>` in the language's voice, an `Audio` (rendered speech, a recording) is played,
`PAUSE` is a short silence. `xml_response` is the one way a voice view answers: TwiML
as text/xml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from twilio.twiml.voice_response import Gather, VoiceResponse

from prompts import FALLBACK_LANGUAGE

GATHER_TIMEOUT_SECONDS = 8  # long enough to find the phone's keypad after the prompt
PIN_TIMEOUT_SECONDS = 10  # a PIN is typed from memory, digit by digit
PAUSE_SECONDS = 1  # between the parts of a message: many members are elderly
RECORD_MAX_SECONDS = 120
RECORD_SILENCE_SECONDS = 5  # silence that ends a recording (as does the # key)


@dataclass(frozen=True)
class Voice:
    """A Twilio <Say> voice and the locale it speaks."""

    name: str
    locale: str


# Amazon Polly standard voices, as Twilio names them:
# https://www.twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages
VOICES = MappingProxyType(
    {
        "fr": Voice("Polly.Celine", "fr-FR"),
        "nl": Voice("Polly.Lotte", "nl-NL"),
        "de": Voice("Polly.Vicki", "de-DE"),
        "en": Voice("Polly.Amy", "en-GB"),
    }
)


def voice_for(language: str | None) -> Voice:
    """Return the voice speaking `language` (French when unknown)."""
    return VOICES.get(language or FALLBACK_LANGUAGE) or VOICES[FALLBACK_LANGUAGE]


@dataclass(frozen=True)
class Audio:
    """A sound file to play among spoken parts: rendered speech, a coordinator's recording."""

    url: str


PAUSE = None  # a part of what is said: a short silence
Part = str | Audio | None
Spoken = str | Audio  # one thing said: words for <Say>, or audio to <Play>


def _speak(parent: VoiceResponse | Gather, spoken: Spoken, language: str | None) -> None:
    if isinstance(spoken, Audio):
        parent.play(spoken.url)
        return
    voice = voice_for(language)
    parent.say(spoken, voice=voice.name, language=voice.locale)


def _add_parts(parent: VoiceResponse | Gather, parts: Sequence[Part], language: str | None):
    for part in parts:
        if part is PAUSE:
            parent.pause(length=PAUSE_SECONDS)
        elif part:  # an empty text says nothing
            _speak(parent, part, language)


def ask(
    parts: Sequence[Part],
    action_url: str,
    language: str | None,
    *,
    num_digits: int | None = 1,
    finish_on_key: str | None = None,
    timeout: int = GATHER_TIMEOUT_SECONDS,
) -> VoiceResponse:
    """Say `parts` while gathering keys for `action_url`; without a key, go there anyway."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=num_digits,
        finish_on_key=finish_on_key,
        timeout=timeout,
        action=action_url,
        method="POST",
    )
    _add_parts(gather, parts, language)
    # Gather falls through when nothing is pressed: the action then hears the silence.
    response.redirect(action_url, method="POST")
    return response


def alert_message(
    intro: Spoken,
    message: Spoken,
    prompt: Spoken,
    action_url: str,
    language: str | None,
) -> VoiceResponse:
    """Speak the alert (or play its recording) and ask for one key, with pauses between."""
    return ask([intro, PAUSE, message, PAUSE, prompt], action_url, language)


def prompt_again(prompt: Spoken, action_url: str, language: str | None) -> VoiceResponse:
    """Ask for the key once more (the caller said nothing); then go to `action_url`."""
    return ask([prompt], action_url, language)


def pin_prompt(words: Spoken, action_url: str, language: str | None) -> VoiceResponse:
    """Ask for the PIN, ended by #; without one, go to `action_url` anyway."""
    return ask(
        [words],
        action_url,
        language,
        num_digits=None,
        finish_on_key="#",
        timeout=PIN_TIMEOUT_SECONDS,
    )


def record_message(
    words: Sequence[Part], action_url: str, silence_url: str, language: str | None
) -> VoiceResponse:
    """Ask for a message and record it (up to 2 minutes, # ends it) for `action_url`.

    Twilio drops an empty recording without requesting the action and goes on with the
    next verb: the redirect to `silence_url` tells the app nothing was recorded.
    """
    response = VoiceResponse()
    _add_parts(response, words, language)
    response.record(
        action=action_url,
        method="POST",
        max_length=RECORD_MAX_SECONDS,
        finish_on_key="#",
        timeout=RECORD_SILENCE_SECONDS,
        play_beep=True,
    )
    response.redirect(silence_url, method="POST")
    return response


def hold_on(words: Spoken, url: str, language: str | None, seconds: int) -> VoiceResponse:
    """Ask the caller to hold on, wait `seconds`, then go to `url` to check again."""
    response = VoiceResponse()
    _speak(response, words, language)
    response.pause(length=seconds)
    response.redirect(url, method="POST")
    return response


def say_then_go_on(parts: Sequence[Part], url: str, language: str | None) -> VoiceResponse:
    """Say `parts`, then continue at `url` (the next menu)."""
    response = VoiceResponse()
    _add_parts(response, parts, language)
    response.redirect(url, method="POST")
    return response


def say_then_hang_up(parts: Sequence[Part], language: str | None) -> VoiceResponse:
    """Say `parts`, then hang up."""
    response = VoiceResponse()
    _add_parts(response, parts, language)
    response.hangup()
    return response


def say_in_languages_then_hang_up(texts: Sequence[tuple[Spoken, str]]) -> VoiceResponse:
    """Say each (words, language) in that language's voice, then hang up."""
    response = VoiceResponse()
    for words, language in texts:
        _speak(response, words, language)
    response.hangup()
    return response


def _spoken_then_hangup(words: Spoken, language: str | None) -> VoiceResponse:
    return say_then_hang_up([words], language)


def ack_confirmed(words: Spoken, language: str | None) -> VoiceResponse:
    """Thank the caller for confirming, and hang up."""
    return _spoken_then_hangup(words, language)


def goodbye(words: Spoken, language: str | None) -> VoiceResponse:
    """Say goodbye and hang up."""
    return _spoken_then_hangup(words, language)


def machine_message(words: Spoken | Sequence[Part], language: str | None) -> VoiceResponse:
    """Leave the message on an answering machine (after its beep), and hang up."""
    single = isinstance(words, (str, Audio))
    return say_then_hang_up([words] if single else words, language)


def alert_over(words: Spoken, language: str | None) -> VoiceResponse:
    """Tell the caller the alert is no longer current, and hang up."""
    return _spoken_then_hangup(words, language)


def apology(words: Spoken, language: str | None) -> VoiceResponse:
    """Apologise for a technical problem, and hang up (never Twilio's "application error")."""
    return _spoken_then_hangup(words, language)
