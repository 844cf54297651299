"""The coordinator's release call (level 1): hear the police message, press 1 or 2.

`notify_coordinators` (alerts.jobs) enqueues `place_release_call` for each coordinator,
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

from sqlalchemy import func, select

from alerts.lifecycle import AlertError, NotAllowed, reject_alert, release_alert
from alerts.models import Alert, AlertState, Membership, Person
from alerts.wording import language_for, plp_names
from core.extensions import db
from core.urls import public_url
from ivr import twiml
from ivr.menus import MAX_RETRIES, RELEASE_MENU, Action, resolve
from ivr.spoken import exercise_words, spell
from prompts import text

log = logging.getLogger(__name__)


# --- The call ------------------------------------------------------------------------------


def member_count(alert: Alert) -> int:
    """Return how many people the alert would reach: the members of its PLPs, once each."""
    partnership_ids = [target.partnership_id for target in alert.targets]
    return db.session.scalar(
        select(func.count(func.distinct(Membership.person_id))).where(
            Membership.partnership_id.in_(partnership_ids)
        )
    )


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
        text("voice.release_reach", language, members=member_count(alert)),
        text("voice.release_prompt", language),
    ]


def answer_release_call(alert: Alert | None, person: Person | None, *, machine: bool):
    """Return what the coordinator hears when the release call is answered."""
    language = language_for(person, alert)
    if alert is None or person is None:
        return twiml.goodbye(text("voice.goodbye", language), language)
    if alert.state != AlertState.AWAITING_RELEASE:
        return twiml.say_then_hang_up(
            [decided_words(alert, language), text("voice.goodbye", language)], language
        )
    if machine:
        words = text(
            "voice.release_machine",
            language,
            exercise=exercise_words(alert, language),
            plp=plp_names(alert),
            ref=spell(alert.reference),
        )
        return twiml.machine_message(words, language)
    action = public_url("ivr.release_gather", alert_id=alert.id, person_id=person.id, tries=0)
    return twiml.ask(decision_parts(alert, language), action, language)


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


def gather_release_call(alert: Alert | None, person: Person | None, digits: str | None, tries: int):
    """Return what the coordinator hears after pressing a key (or none) at the release call."""
    language = language_for(person, alert)
    if alert is None or person is None:
        return twiml.goodbye(text("voice.goodbye", language), language)
    action = resolve(RELEASE_MENU, digits)
    if alert.state != AlertState.AWAITING_RELEASE:
        # A replayed "1" after this coordinator released it hears the same outcome.
        return twiml.say_then_hang_up(
            [decided_words(alert, language), text("voice.goodbye", language)], language
        )
    if action in (Action.RELEASE, Action.REJECT):
        words = decide(alert, person, action, language)
        return twiml.say_then_hang_up([words, text("voice.goodbye", language)], language)
    if tries >= MAX_RETRIES:
        key = "voice.no_input" if action == Action.SILENCE else "voice.goodbye"
        return twiml.goodbye(text(key, language), language)
    tries += 1
    url = public_url("ivr.release_gather", alert_id=alert.id, person_id=person.id, tries=tries)
    parts = decision_parts(alert, language)
    if action == Action.UNKNOWN:
        parts = [text("voice.invalid_choice", language), *parts]
    elif action == Action.SILENCE:
        parts = parts[-1:]  # only the question again
    return twiml.ask(parts, url, language)
