"""What is said about an alert, shared by the alert call, the release call and inbound calls.

`alert_call_words` is the one place the words of a member's alert call are written: the
call speaks them (`ivr.alert_call`) and the release renders them ahead (`ivr.prerender`),
so that the speech cache holds exactly what the call says.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass

from alerts import recordings
from alerts.models import Alert
from alerts.wording import plp_names
from ivr import twiml
from prompts import spoken_language, text

log = logging.getLogger(__name__)


def spell(reference: str) -> str:
    """Return an alert reference as a voice should read it: one sign at a time."""
    return " ".join(reference)


def exercise_words(alert: Alert, language: str) -> str:
    """Return the exercise announcement for an exercise, else nothing."""
    return text("voice.exercise_prefix", language) if alert.exercise else ""


def spoken_names(alert: Alert, language: str) -> dict[str, str]:
    """Return the exercise prefix and the alert's PLP names, as the voice prompts take them."""
    return {"exercise": exercise_words(alert, language), "plp": plp_names(alert)}


def intro(alert: Alert, language: str) -> str:
    """Return the announcement before the message: its source and the PLPs."""
    # A recorded message is the coordinator's voice, not the police's words.
    key = "voice.coordinator_intro" if alert.recording_id is not None else "voice.alert_intro"
    return text(key, language, **spoken_names(alert, language))


def message(alert: Alert) -> str | twiml.Audio:
    """Return the alert's message: its recording when downloaded, else its text."""
    recording = alert.recording
    if recordings.recording_ready(recording):
        return twiml.Audio(recordings.recording_url(recording))
    if recording is not None:
        log.warning("alert recording not available alert_id=%s: its text is said", alert.id)
    return alert.text


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


def alert_call_words(alert: Alert, language: str | None) -> AlertCallWords:
    """Return the words of an alert call in `language`: what the call says, and is rendered.

    A recorded message gets the coordinator's introduction, and on a machine it is framed
    by voice.machine_intro and voice.machine_how_to_confirm (the reference spelled out).
    """
    language = spoken_language(language)
    names = spoken_names(alert, language)
    recorded = alert.recording_id is not None
    return AlertCallWords(
        intro=intro(alert, language),
        message=alert.text,
        prompt=text("voice.alert_prompt", language),
        machine_message=text(
            "voice.machine_message", language, **names, message=alert.text, ref=alert.reference
        ),
        machine_intro=text("voice.machine_intro", language, **names) if recorded else "",
        machine_how_to_confirm=(
            text("voice.machine_how_to_confirm", language, ref=spell(alert.reference))
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
    """Return the texts an alert call in `language` speaks (what the pre-render renders)."""
    return alert_call_words(alert, language).texts()


def alert_parts(alert: Alert, language: str) -> list[twiml.Part]:
    """Return the alert as a member hears it, with its question: 1 confirms, 0 replays."""
    words = alert_call_words(alert, language)
    return [words.intro, twiml.PAUSE, message(alert), twiml.PAUSE, words.prompt]
