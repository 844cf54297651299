"""A member's alert call: the alert spoken to whoever answers, and "press 1" to confirm.

The call (`answer_alert_call`) speaks the alert and asks for one key; the key comes back
to `gather_alert_call`, which resolves it through `menus.ALERT_MENU`: 1 confirms, 0
replays, anything else replays too, at most `MAX_REPLAYS` times; silence repeats the
question once, then says goodbye. An answering machine hears a message saying how to
confirm, never the menu. The counts travel in the action URL's query, so that each
request stands on its own. Every word is `ivr.spoken.alert_call_words`: what the
pre-render put in the speech cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import g, request
from twilio.twiml.voice_response import VoiceResponse

from alerts.confirmation import confirm
from alerts.errors import AlertError
from alerts.models import AckChannel, Alert, AlertState, Channel, Delivery, utcnow
from alerts.wording import language_for
from core.extensions import db
from core.urls import public_url
from ivr import twiml
from ivr.menus import ALERT_MENU, Action, count, resolve
from ivr.spoken import AlertCallWords, alert_call_words, message
from ivr.voice import prompt, voiced, voiced_parts
from prompts import FALLBACK_LANGUAGE

log = logging.getLogger(__name__)

MAX_REPLAYS = 3  # 0 or a wrong key replays the message at most this many times
MAX_SILENCES = 1  # no key at all: the question is asked once more, then goodbye


@dataclass(frozen=True)
class AlertCallRequest:
    """Twilio's request about a call the app placed: who answered, what they pressed, how often."""

    call_sid: str
    answered_by: str | None
    digits: str | None
    replays: int
    silences: int

    @classmethod
    def from_request(cls) -> AlertCallRequest:
        """Read the form Twilio posted and the counts of the action URL's query."""
        digits = (request.form.get("Digits") or "").strip()
        return cls(
            call_sid=request.form.get("CallSid", ""),
            answered_by=(request.form.get("AnsweredBy") or "").strip() or None,
            digits=digits[:8] or None,
            # Our own URL's query: anything but a small number is treated as none so far.
            replays=count(request.args.get("replays")),
            silences=count(request.args.get("silences")),
        )

    @property
    def machine(self) -> bool:
        """Tell whether answering-machine detection heard a machine (or a fax)."""
        return self.answered_by is not None and self.answered_by.startswith(("machine", "fax"))


def answer_alert_call(delivery_id: int, call: AlertCallRequest) -> VoiceResponse:
    """Return what whoever answered hears: the menu to a person, a message to a machine."""
    delivery = _call_delivery(delivery_id, call)
    if delivery is None:
        return twiml.goodbye(prompt("voice.goodbye", FALLBACK_LANGUAGE), FALLBACK_LANGUAGE)
    alert, language = delivery.alert, g.call_language
    words = alert_call_words(alert, language)
    if _is_over(alert):
        return twiml.alert_over(voiced(words.alert_over, language), language)
    if call.machine:
        return twiml.machine_message(voiced_parts(machine_parts(alert, words), language), language)
    return _alert_message(delivery, words, language, replays=0, silences=0)


def gather_alert_call(delivery_id: int, call: AlertCallRequest) -> VoiceResponse:
    """Return what the caller hears after their choice at the alert menu."""
    delivery = _call_delivery(delivery_id, call)
    if delivery is None:
        return twiml.goodbye(prompt("voice.goodbye", FALLBACK_LANGUAGE), FALLBACK_LANGUAGE)
    return _answer_choice(delivery, call, g.call_language)


def _answer_choice(delivery: Delivery, call: AlertCallRequest, language: str) -> VoiceResponse:
    alert, choice = delivery.alert, resolve(ALERT_MENU, call.digits)
    words = alert_call_words(alert, language)
    if choice == Action.CONFIRM:
        # Before the "over" check: a repeated 1 after the last confirmation closed the
        # alert is still thanked; confirm() refuses an alert that ended otherwise.
        return _confirm(delivery, words, language)
    if _is_over(alert):
        return twiml.alert_over(voiced(words.alert_over, language), language)
    match choice:
        case Action.REPEAT | Action.UNKNOWN if call.replays < MAX_REPLAYS:
            return _alert_message(
                delivery, words, language, replays=call.replays + 1, silences=call.silences
            )
        case Action.SILENCE if call.silences < MAX_SILENCES:
            action = public_url(
                "ivr.alert_gather",
                delivery_id=delivery.id,
                replays=call.replays,
                silences=call.silences + 1,
            )
            return twiml.prompt_again(voiced(words.prompt, language), action, language)
        case Action.SILENCE:
            return twiml.goodbye(voiced(words.no_input, language), language)
    return twiml.goodbye(voiced(words.goodbye, language), language)


def machine_parts(alert: Alert, words: AlertCallWords) -> list[twiml.Part]:
    """Return the message left on an answering machine: the alert, then how to confirm."""
    played = message(alert)
    if isinstance(played, str):
        return [words.machine_message]
    return [words.machine_intro, twiml.PAUSE, played, twiml.PAUSE, words.machine_how_to_confirm]


def _call_delivery(delivery_id: int, call: AlertCallRequest) -> Delivery | None:
    """Return the call's delivery (None if unknown), and set the language it is spoken in."""
    g.call_language = FALLBACK_LANGUAGE
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.channel != Channel.CALL:
        log.warning(
            "alert call for an unknown delivery delivery_id=%s call_sid=%s",
            delivery_id,
            call.call_sid,
        )
        return None
    g.call_language = language_for(delivery.person, delivery.alert)
    return delivery


def _is_over(alert: Alert) -> bool:
    """Tell whether the alert no longer concerns anyone: ended, or past its expiry."""
    over = alert.state != AlertState.DELIVERING or _is_past(alert.expires_at)
    if over:
        log.info("alert call after the alert ended alert_id=%s state=%s", alert.id, alert.state)
    return over


def _alert_message(
    delivery: Delivery, words: AlertCallWords, language: str, *, replays: int, silences: int
) -> VoiceResponse:
    action = public_url(
        "ivr.alert_gather", delivery_id=delivery.id, replays=replays, silences=silences
    )
    intro, said, question = voiced_parts(
        [words.intro, message(delivery.alert), words.prompt], language
    )
    return twiml.alert_message(intro, said, question, action, language)


def _confirm(delivery: Delivery, words: AlertCallWords, language: str) -> VoiceResponse:
    alert = delivery.alert
    try:
        result = confirm(alert, delivery.person, AckChannel.CALL, delivery=delivery)
    except AlertError as err:
        db.session.rollback()
        log.info("confirmation by call refused delivery_id=%s reason=%s", delivery.id, err)
        return twiml.alert_over(voiced(words.alert_over, language), language)
    db.session.commit()
    log.info(
        "alert confirmed by call alert_id=%s person_id=%s delivery_id=%s created=%s",
        alert.id,
        delivery.person_id,
        delivery.id,
        result.created,
    )
    return twiml.ack_confirmed(voiced(words.ack_confirmed, language), language)


def _is_past(moment: datetime | None) -> bool:
    return moment is not None and moment <= utcnow()
