"""Calls to the PLP number (`/ivr/incoming`): who calls, by caller ID, decides what they hear.

- a coordinator or steering member: their PIN, then a menu (`COORDINATOR_MENU`): 1 record
  a message for their PLP (`ivr.recording`), 2 hear the alerts awaiting release and
  release or reject each, 3 hear the counts of the latest alert;
- an officer: their PIN, then the counts of their latest alerts;
- a member: the alerts of their PLPs still running, newest first, each with "press 1";
- anyone else: a polite message that says nothing about the PLP or its members.

Who calls, and whether they gave their PIN on this call, is `ivr.caller`'s. Each request
stands on its own: the menu's counters and the alert in question travel in the action
URL's query. Every handler returns a `VoiceResponse`; the views in `ivr.views` only parse
and answer. A PIN is checked through `alerts.people.lockout`, shared with the SMS path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from flask import g
from sqlalchemy import exists, select
from twilio.twiml.voice_response import VoiceResponse

from alerts.confirmation import confirm, is_confirmable
from alerts.errors import AlertError
from alerts.lifecycle import DECIDER_ROLES
from alerts.models import (
    AckChannel,
    Alert,
    AlertState,
    AlertTarget,
    Delivery,
    Person,
    utcnow,
)
from alerts.people.lockout import PinOutcome, check_person_pin, locked_until
from alerts.tracking import alert_counts
from core.extensions import db
from core.urls import public_url
from core.webhooks import claim_webhook
from ivr import twiml
from ivr.caller import PIN_KIND, Caller, CallerKind, InboundCall, decider, identify
from ivr.menus import (
    COORDINATOR_MENU,
    MAX_RETRIES,
    MEMBER_ALERT_MENU,
    RELEASE_MENU,
    Action,
    resolve,
)
from ivr.release import decide, decided_words, decision_parts
from ivr.spoken import alert_parts, spell
from ivr.voice import prompt, voiced, voiced_parts
from prompts import FALLBACK_LANGUAGE, text

log = logging.getLogger(__name__)

LATEST_ALERTS = 3  # an officer hears the counts of their latest 3 alerts
STRANGER_LANGUAGES = ("fr", "nl")  # an unknown caller: the PLP number's two main languages

DeciderStep = Callable[[InboundCall, Caller], VoiceResponse]


# --- The first answer ----------------------------------------------------------------------


def answer(call: InboundCall) -> VoiceResponse:
    """Return what the caller hears first."""
    caller = identify(call)
    log.info("inbound call call_sid=%s caller_kind=%s", call.call_sid, caller.kind)
    match caller.kind:
        case CallerKind.STRANGER:
            return twiml.say_in_languages_then_hang_up(
                [(prompt("voice.stranger", lang), lang) for lang in STRANGER_LANGUAGES]
            )
        case CallerKind.MEMBER:
            return _member_alert(caller, _member_alerts(caller.person)[:1], tries=0, first=True)
    until = locked_until(caller.person)
    if until is not None:
        return _locked(caller, until)
    return _pin_prompt(caller, tries=0)


def _pin_prompt(caller: Caller, *, tries: int, before: tuple[str, ...] = ()):
    action = public_url("ivr.incoming_pin", tries=tries)
    words = " ".join((*before, text("voice.pin_prompt", caller.language)))
    return twiml.pin_prompt(voiced(words, caller.language), action, caller.language)


def _locked(caller: Caller, until):
    minutes = max(1, round((until - utcnow()) / timedelta(minutes=1)))
    return twiml.goodbye(
        prompt("voice.pin_locked", caller.language, minutes=minutes), caller.language
    )


def say_goodbye(caller: Caller, key: str = "voice.goodbye") -> VoiceResponse:
    """Say the words of `key` in the caller's language, then hang up."""
    return twiml.goodbye(prompt(key, caller.language), caller.language)


# --- The PIN -------------------------------------------------------------------------------


def check_pin(call: InboundCall) -> VoiceResponse:  # noqa: PLR0911 (one return per outcome heard)
    """Check the PIN typed; go on to the caller's menu, or say what is wrong."""
    caller = identify(call)
    if caller.kind not in (CallerKind.DECIDER, CallerKind.OFFICER):
        return say_goodbye(caller)
    tries = call.number("tries")
    if not call.digits:
        if tries >= MAX_RETRIES:
            return say_goodbye(caller, "voice.no_input")
        return _pin_prompt(caller, tries=tries + 1)
    result = check_person_pin(caller.person, call.digits, phone=caller.person.phone, channel="call")
    if result.outcome == PinOutcome.OK and call.call_sid:
        claim_webhook(PIN_KIND, call.call_sid)
    db.session.commit()  # a failure must be kept, or the lockout never comes
    match result.outcome:
        case PinOutcome.LOCKED:
            return _locked(caller, result.locked_until)
        case PinOutcome.WRONG:
            wrong = text("voice.pin_wrong", caller.language, left=result.attempts_left)
            return _pin_prompt(caller, tries=0, before=(wrong,))
    if not call.call_sid:
        return say_goodbye(caller)
    if caller.kind == CallerKind.OFFICER:
        return _officer_counts(caller)
    return main_menu(caller)


def refuse(call: InboundCall) -> VoiceResponse:
    """Say goodbye to a request that has no business here (no PIN given on this call)."""
    words = text("voice.goodbye", g.get("call_language", FALLBACK_LANGUAGE))
    return twiml.goodbye(voiced(words, None), None)


def decider_step(step: DeciderStep, call: InboundCall) -> VoiceResponse:
    """Return what a coordinator hears at `step` of their call, once their PIN is checked."""
    caller = decider(call)
    if caller is None:
        return refuse(call)
    return step(call, caller)


# --- Officer -------------------------------------------------------------------------------


def _officer_counts(caller: Caller) -> VoiceResponse:
    alerts = db.session.scalars(
        select(Alert)
        .where(Alert.author_id == caller.person.id)
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(LATEST_ALERTS)
    ).all()
    parts: list[twiml.Part] = []
    for alert in alerts:
        parts += [_counts_words(alert, caller.language), twiml.PAUSE]
    if not alerts:
        parts = [text("voice.counts_none", caller.language)]
    parts.append(text("voice.goodbye", caller.language))
    return twiml.say_then_hang_up(voiced_parts(parts, caller.language), caller.language)


def _counts_words(alert: Alert, language: str) -> str:
    counts = alert_counts(alert.id)
    return text(
        "voice.counts",
        language,
        ref=spell(alert.reference),
        confirmed=counts.confirmed,
        reached=counts.reached,
        pending=counts.pending,
        unreachable=counts.unreachable,
    )


# --- Coordinator: the main menu ------------------------------------------------------------


def main_menu(
    caller: Caller, *, tries: int = 0, before: tuple[twiml.Part, ...] = ()
) -> VoiceResponse:
    """Return the coordinator's menu, after `before` (what a previous choice led to)."""
    action = public_url("ivr.incoming_menu", tries=tries)
    parts = [*before, twiml.PAUSE] if before else []
    parts.append(text("voice.coordinator_menu", caller.language))
    return twiml.ask(voiced_parts(parts, caller.language), action, caller.language)


def choose(call: InboundCall, caller: Caller) -> VoiceResponse:
    """Act on the key pressed at the coordinator's menu."""
    language = caller.language
    match resolve(COORDINATOR_MENU, call.digits):
        case Action.RECORD:
            return record_prompt(caller)
        case Action.PENDING:
            return _pending_alert(caller, _pending_alerts(caller.person)[:1], tries=0)
        case Action.COUNTS:
            alert = _latest_alert(caller.person)
            words = _counts_words(alert, language) if alert else text("voice.counts_none", language)
            return main_menu(caller, before=(words,))
        case Action.SILENCE | Action.UNKNOWN as action:
            tries = call.number("tries")
            if tries >= MAX_RETRIES:
                return say_goodbye(
                    caller, "voice.no_input" if action == Action.SILENCE else "voice.goodbye"
                )
            before = (text("voice.invalid_choice", language),) if action == Action.UNKNOWN else ()
            return main_menu(caller, tries=tries + 1, before=before)
    return say_goodbye(caller)


def _decider_plp_ids(person: Person) -> list[int]:
    return [m.partnership_id for m in person.memberships if m.role in DECIDER_ROLES]


def _latest_alert(person: Person) -> Alert | None:
    return db.session.scalar(
        select(Alert)
        .join(AlertTarget, AlertTarget.alert_id == Alert.id)
        .where(AlertTarget.partnership_id.in_(_decider_plp_ids(person)))
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(1)
    )


def record_prompt(caller: Caller) -> VoiceResponse:
    """Ask for the message and record it (what follows is `ivr.recording`'s)."""
    return twiml.record_message(
        [prompt("voice.record_prompt", caller.language)],
        public_url("ivr.incoming_recorded"),
        public_url("ivr.incoming_recorded", silence=1),
        caller.language,
    )


# --- Coordinator: alerts awaiting release --------------------------------------------------


def _pending_alerts(person: Person, after: int | None = None) -> list[Alert]:
    """Return the alerts awaiting release that `person` decides about, oldest first."""
    query = (
        select(Alert)
        .join(AlertTarget, AlertTarget.alert_id == Alert.id)
        .where(
            Alert.state == AlertState.AWAITING_RELEASE,
            Alert.expires_at > utcnow(),
            AlertTarget.partnership_id.in_(_decider_plp_ids(person)),
        )
        .distinct()
        .order_by(Alert.id)
    )
    if after is not None:
        query = query.where(Alert.id > after)
    return list(db.session.scalars(query))


def _pending_alert(
    caller: Caller, alerts: list[Alert], *, tries: int, before: tuple = ()
) -> VoiceResponse:
    """Present the first of `alerts` for a decision, or say there is none left."""
    language = caller.language
    if not alerts:
        return main_menu(caller, before=(*before, text("voice.pending_none", language)))
    alert = alerts[0]
    url = public_url("ivr.incoming_pending", alert=alert.id, tries=tries)
    return twiml.ask(
        voiced_parts([*before, *decision_parts(alert, language)], language), url, language
    )


def pending(call: InboundCall, caller: Caller) -> VoiceResponse:
    """Act on the key pressed about one alert awaiting release."""
    language = caller.language
    alert_id = call.row_id("alert")
    alert = db.session.get(Alert, alert_id) if alert_id else None
    if alert is None:
        return _pending_alert(caller, _pending_alerts(caller.person)[:1], tries=0)
    action = resolve(RELEASE_MENU, call.digits)
    if action in (Action.RELEASE, Action.REJECT):
        if alert.state == AlertState.AWAITING_RELEASE:
            words = decide(alert, caller.person, action, language)
        else:
            words = decided_words(alert, language)
        following = _pending_alerts(caller.person, after=alert.id)[:1]
        before = (words, text("voice.next_alert", language)) if following else (words,)
        return _pending_alert(caller, following, tries=0, before=before)
    tries = call.number("tries")
    if tries >= MAX_RETRIES or alert.state != AlertState.AWAITING_RELEASE:
        return _pending_alert(caller, _pending_alerts(caller.person, after=alert.id)[:1], tries=0)
    url = public_url("ivr.incoming_pending", alert=alert.id, tries=tries + 1)
    parts = decision_parts(alert, language)
    if action == Action.SILENCE:
        parts = parts[-1:]
    elif action == Action.UNKNOWN:
        parts = [text("voice.invalid_choice", language), *parts]
    return twiml.ask(voiced_parts(parts, language), url, language)


# --- Member --------------------------------------------------------------------------------


def _member_alerts(person: Person, before: int | None = None) -> list[Alert]:
    """Return the alerts sent to the member that they can still confirm, newest first.

    The same rule as the one confirmation entry point: addressed to them (planned for
    them at release: a member who joined since was not) and still confirmable (also
    after the cascade ran out of steps, until the alert expires).
    """
    addressed = exists().where(Delivery.alert_id == Alert.id, Delivery.person_id == person.id)
    query = (
        select(Alert)
        .where(
            addressed,
            Alert.state.in_((AlertState.RELEASED, AlertState.DELIVERING, AlertState.CLOSED)),
            Alert.expires_at > utcnow(),
        )
        .order_by(Alert.id.desc())
    )
    if before is not None:
        query = query.where(Alert.id < before)
    return [alert for alert in db.session.scalars(query) if is_confirmable(alert)]


def _member_alert(
    caller: Caller, alerts: list[Alert], *, tries: int, before: tuple = (), first: bool = False
) -> VoiceResponse:
    """Say the first of `alerts` with its question, or that there is none (left)."""
    language = caller.language
    if not alerts:
        none = (text("voice.member_none", language),) if first else ()
        parts = [*before, *none, text("voice.goodbye", language)]
        return twiml.say_then_hang_up(voiced_parts(parts, language), language)
    alert = alerts[0]
    url = public_url("ivr.incoming_member", alert=alert.id, tries=tries)
    return twiml.ask(
        voiced_parts([*before, *alert_parts(alert, language)], language), url, language
    )


def member(call: InboundCall) -> VoiceResponse:
    """Act on the key a member pressed about one running alert."""
    caller = identify(call)
    if caller.person is None or not caller.person.memberships:
        return say_goodbye(caller)
    alert_id = call.row_id("alert")
    alert = db.session.get(Alert, alert_id) if alert_id else None
    if alert is None:
        return _member_alert(caller, _member_alerts(caller.person)[:1], tries=0, first=True)
    following = _member_alerts(caller.person, before=alert.id)[:1]
    action = resolve(MEMBER_ALERT_MENU, call.digits)
    if action == Action.CONFIRM:
        words = _confirm(alert, caller)
        return _member_alert(caller, following, tries=0, before=(words,))
    tries = call.number("tries")
    if action == Action.SILENCE or tries >= MAX_RETRIES or not is_confirmable(alert):
        return _member_alert(caller, following, tries=0)
    return _member_alert(caller, [alert], tries=tries + 1)


def _confirm(alert: Alert, caller: Caller) -> str:
    try:
        result = confirm(alert, caller.person, AckChannel.INBOUND_CALL)
    except AlertError as err:
        db.session.rollback()
        log.info("confirmation by inbound call refused alert_id=%s: %s", alert.id, err)
        return text("voice.alert_over", caller.language)
    db.session.commit()
    log.info(
        "alert confirmed by inbound call alert_id=%s person_id=%s created=%s",
        alert.id,
        caller.person.id,
        result.created,
    )
    return text("voice.ack_thanks", caller.language)
