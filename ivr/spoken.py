"""What is said about an alert, shared by the alert call, the release call and inbound calls."""

from __future__ import annotations

import logging

from alerts.models import Alert
from alerts.wording import plp_names
from ivr import twiml
from prompts import text

try:
    from alerts import recordings
except ImportError:  # the recordings store lands with its own change: until then, text only
    recordings = None

log = logging.getLogger(__name__)


def spell(reference: str) -> str:
    """Return an alert reference as a voice should read it: one sign at a time."""
    return " ".join(reference)


def exercise_words(alert: Alert, language: str) -> str:
    """Return the exercise announcement for an exercise, else nothing."""
    return text("voice.exercise_prefix", language) if alert.exercise else ""


def intro(alert: Alert, language: str) -> str:
    """Return the announcement before the message: its source and the PLPs."""
    # A recorded message is the coordinator's voice, not the police's words.
    key = "voice.coordinator_intro" if alert.recording_id is not None else "voice.alert_intro"
    return text(key, language, exercise=exercise_words(alert, language), plp=plp_names(alert))


def message(alert: Alert) -> str | twiml.Audio:
    """Return the alert's message: its recording when downloaded, else its text."""
    recording = alert.recording
    if recordings is not None and recordings.recording_ready(recording):
        return twiml.Audio(recordings.recording_url(recording))
    if recording is not None:
        log.warning("alert recording not available alert_id=%s: its text is said", alert.id)
    return alert.text


def alert_parts(alert: Alert, language: str) -> list[twiml.Part]:
    """Return the alert as a member hears it, with its question: 1 confirms, 0 replays."""
    return [
        intro(alert, language),
        twiml.PAUSE,
        message(alert),
        twiml.PAUSE,
        text("voice.alert_prompt", language),
    ]
