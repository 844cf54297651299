"""The coordinator's release call tree (level 1): hear the police message, press 1 or 2.

`notify_coordinators` (alerts.notices) enqueues `place_release_call` for each coordinator,
beside the SMS. The job is paced with the cascade's calls and retried when the carrier
may take it later. No `Delivery` row: deliveries are the members' cascade, and counting a
coordinator's call among them would skew the alert's counts and its end; the call is
tracked by an audit event with its SID, and its status callbacks only logged.

The call says the police message, the PLP and the number of members it would reach, then
asks: 1 releases, 2 rejects, 0 repeats. The first decision wins (lifecycle refuses the
second); whoever calls later, or answers after someone decided by SMS, hears what was
decided. An answering machine gets how to answer by SMS or by calling back.
"""

from __future__ import annotations

import logging

from flask import g
from twilio.twiml.voice_response import VoiceResponse

from alerts.errors import AlertError, NotAllowed
from alerts.lifecycle import reject_alert, release_alert
from alerts.models import Alert, AlertState, Person
from alerts.tracking import member_count
from alerts.wording import language_for, plp_names
from core.extensions import db
from core.urls import public_url
from ivr import twiml
from ivr.menus import MAX_RETRIES, RELEASE_MENU, Action, resolve
from ivr.spoken import exercise_words, spell
from ivr.voice import prompt, voiced, voiced_parts
from prompts import text

log = logging.getLogger(__name__)


# --- The call ------------------------------------------------------------------------------


def decision_parts(alert: Alert, language: str) -> list[twiml.Part]:
    """Return what a decider hears about an alert awaiting release, before the question."""
    return [
        text(
            "voice.release_intro",
            language,
            exercise=exercise_words(alert, language),
            plp=plp_names(alert),
            ref=spell(alert.reference),
        ),
        twiml.PAUSE,
        alert.text,
        twiml.PAUSE,
        text(
            "voice.release_reach",
            language,
            members=member_count(t.partnership_id for t in alert.targets),
        ),
        text("voice.release_prompt", language),
    ]


def release_call_rows(alert_id: int, person_id: int) -> tuple[Alert | None, Person | None]:
    """Return the release call's alert and coordinator (None when unknown); set the language."""
    alert = db.session.get(Alert, alert_id)
    person = db.session.get(Person, person_id)
    g.call_language = language_for(person, alert)
    if alert is None or person is None:
        log.warning("release call for unknown rows alert_id=%s person_id=%s", alert_id, person_id)
    return alert, person


def answer_release_call(alert_id: int, person_id: int, *, machine: bool) -> VoiceResponse:
    """Return what the coordinator hears when the release call is answered."""
    alert, person = release_call_rows(alert_id, person_id)
    language = language_for(person, alert)
    if alert is None or person is None:
        return twiml.goodbye(prompt("voice.goodbye", language), language)
    if alert.state != AlertState.AWAITING_RELEASE:
        return _decided_then_hang_up(alert, language)
    if machine:
        words = text(
            "voice.release_machine",
            language,
            exercise=exercise_words(alert, language),
            plp=plp_names(alert),
            ref=spell(alert.reference),
        )
        return twiml.machine_message(voiced(words, language), language)
    action = public_url("ivr.release_gather", alert_id=alert.id, person_id=person.id, tries=0)
    return twiml.ask(voiced_parts(decision_parts(alert, language), language), action, language)


def _decided_then_hang_up(alert: Alert, language: str) -> VoiceResponse:
    parts = [decided_words(alert, language), text("voice.goodbye", language)]
    return twiml.say_then_hang_up(voiced_parts(parts, language), language)


def decided_words(alert: Alert, language: str) -> str:
    """Return what a decider hears about an alert no longer awaiting release."""
    if alert.released_at is not None:
        return text("voice.was_released", language)
    if alert.state == AlertState.REJECTED:
        return text("voice.was_rejected", language)
    return text("voice.alert_over", language)


def decide(alert: Alert, person: Person, action: Action, language: str) -> str:
    """Release or reject `alert` as `person`; commit; return the words that say the outcome."""
    try:
        if action == Action.RELEASE:
            summary = release_alert(alert, by=person)
            words = text("voice.released", language, members=summary.members)
        else:
            reject_alert(alert, by=person)
            words = text("voice.rejected", language)
    except NotAllowed as err:
        db.session.rollback()
        log.info("decision by phone refused alert_id=%s person_id=%s: %s", alert.id, person.id, err)
        return text("voice.not_allowed", language)
    except AlertError as err:
        # Decided a moment ago by someone else (first decision wins), or expired.
        db.session.rollback()
        db.session.refresh(alert)
        log.info(
            "decision by phone too late alert_id=%s person_id=%s: %s", alert.id, person.id, err
        )
        return decided_words(alert, language)
    db.session.commit()
    log.info(
        "alert decided by phone alert_id=%s person_id=%s action=%s", alert.id, person.id, action
    )
    return words


def gather_release_call(
    alert_id: int, person_id: int, digits: str | None, tries: int
) -> VoiceResponse:
    """Return what the coordinator hears after pressing a key (or none) at the release call."""
    alert, person = release_call_rows(alert_id, person_id)
    language = language_for(person, alert)
    if alert is None or person is None:
        return twiml.goodbye(prompt("voice.goodbye", language), language)
    action = resolve(RELEASE_MENU, digits)
    if alert.state != AlertState.AWAITING_RELEASE:
        # A replayed "1" after this coordinator released it hears the same outcome.
        return _decided_then_hang_up(alert, language)
    if action in (Action.RELEASE, Action.REJECT):
        parts = [decide(alert, person, action, language), text("voice.goodbye", language)]
        return twiml.say_then_hang_up(voiced_parts(parts, language), language)
    if tries >= MAX_RETRIES:
        key = "voice.no_input" if action == Action.SILENCE else "voice.goodbye"
        return twiml.goodbye(prompt(key, language), language)
    tries += 1
    url = public_url("ivr.release_gather", alert_id=alert.id, person_id=person.id, tries=tries)
    parts = decision_parts(alert, language)
    if action == Action.UNKNOWN:
        parts = [text("voice.invalid_choice", language), *parts]
    elif action == Action.SILENCE:
        parts = parts[-1:]  # only the question again
    return twiml.ask(voiced_parts(parts, language), url, language)
