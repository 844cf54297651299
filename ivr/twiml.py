"""Pure TwiML builders: what a caller hears, as `VoiceResponse` documents.

Each builder takes the words (from `prompts`), the language and absolute action URLs,
and returns a `VoiceResponse`; none touches the request, the database or `url_for`.
`xml_response` is the one way a voice view answers: TwiML as text/xml.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from flask import Response
from twilio.twiml.voice_response import VoiceResponse

from prompts import FALLBACK_LANGUAGE

GATHER_TIMEOUT_SECONDS = 8  # long enough to find the phone's keypad after the prompt


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


def xml_response(response: VoiceResponse) -> Response:
    """Return `response` as the HTTP answer Twilio expects: TwiML, text/xml."""
    return Response(str(response), status=200, content_type="text/xml; charset=utf-8")


def alert_message(
    intro: str, message: str, prompt: str, action_url: str, language: str | None
) -> VoiceResponse:
    """Speak the alert and ask for one key; without a key, go to `action_url` anyway."""
    voice = voice_for(language)
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, timeout=GATHER_TIMEOUT_SECONDS, action=action_url, method="POST"
    )
    for words in (intro, message, prompt):
        gather.say(words, voice=voice.name, language=voice.locale)
    # Gather falls through when nothing is pressed: the action then hears the silence.
    response.redirect(action_url, method="POST")
    return response


def prompt_again(prompt: str, action_url: str, language: str | None) -> VoiceResponse:
    """Ask for the key once more (the caller said nothing); then go to `action_url`."""
    voice = voice_for(language)
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, timeout=GATHER_TIMEOUT_SECONDS, action=action_url, method="POST"
    )
    gather.say(prompt, voice=voice.name, language=voice.locale)
    response.redirect(action_url, method="POST")
    return response


def _spoken_then_hangup(words: str, language: str | None) -> VoiceResponse:
    voice = voice_for(language)
    response = VoiceResponse()
    response.say(words, voice=voice.name, language=voice.locale)
    response.hangup()
    return response


def ack_confirmed(words: str, language: str | None) -> VoiceResponse:
    """Thank the caller for confirming, and hang up."""
    return _spoken_then_hangup(words, language)


def goodbye(words: str, language: str | None) -> VoiceResponse:
    """Say goodbye and hang up."""
    return _spoken_then_hangup(words, language)


def machine_message(words: str, language: str | None) -> VoiceResponse:
    """Leave the message on an answering machine (after its beep), and hang up."""
    return _spoken_then_hangup(words, language)


def alert_over(words: str, language: str | None) -> VoiceResponse:
    """Tell the caller the alert is no longer current, and hang up."""
    return _spoken_then_hangup(words, language)


def apology(words: str, language: str | None) -> VoiceResponse:
    """Apologise for a technical problem, and hang up (never Twilio's "application error")."""
    return _spoken_then_hangup(words, language)
