"""Calls to the PLP number (`/ivr/incoming`): who calls, by caller ID, decides what they hear.

- a coordinator or steering member: their PIN, then a menu (`COORDINATOR_MENU`): 1 record
  a message for their PLP (played back; 1 send, 2 record again, 3 cancel; then 1 urgent,
  2 non-urgent: raised and released at once), 2 hear the alerts awaiting release and
  release or reject each, 3 hear the counts of the latest alert;
- an officer: their PIN, then the counts of their latest alerts;
- a member: the alerts of their PLPs still running, newest first, each with "press 1";
- anyone else: a polite message that says nothing about the PLP or its members.

Each request stands on its own: who calls is read again from the caller ID, the PIN's
success is a row keyed by the call's SID (`claim_webhook("ivr_pin", CallSid)`), and the
menu's counters and the recording or alert in question travel in the action URL's query.
Every handler returns a `VoiceResponse`; the views in `ivr.views` only parse and answer.
A PIN is checked through `alerts.people.lockout`, shared with the SMS path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from flask import g, request
from sqlalchemy import exists, select

from alerts.confirmation import confirm, is_confirmable
from alerts.lifecycle import DECIDER_ROLES, AlertError, raise_alert
from alerts.models import (
    AckChannel,
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    Delivery,
    InboundWebhook,
    Person,
    Recording,
    Urgency,
    utcnow,
)
from alerts.people.lockout import PinOutcome, check_person_pin, locked_until
from alerts.people.phones import PhoneNumberError, parse_phone
from alerts.tracking import alert_counts
from alerts.wording import language_for
from core.extensions import db
from core.urls import public_url
from core.webhooks import claim_webhook
from ivr import spoken, twiml
from ivr.menus import (
    COORDINATOR_MENU,
    MAX_RETRIES,
    MEMBER_ALERT_MENU,
    RELEASE_MENU,
    RETRY_MENU,
    REVIEW_MENU,
    URGENCY_MENU,
    Action,
    count,
    ident,
    resolve,
)
from ivr.release import decide, decided_words, decision_parts
from ivr.spoken import alert_parts, spell
from prompts import FALLBACK_LANGUAGE, text

log = logging.getLogger(__name__)

PIN_KIND = "ivr_pin"  # claim_webhook kind: this call gave the right PIN
SEND_KIND = "ivr_send"  # claim_webhook kind: this recording was sent (a replay sends nothing)
MAX_WAITS = 5  # "one moment" while the recording downloads, at most this many times
WAIT_SECONDS = 2
LATEST_ALERTS = 3  # an officer hears the counts of their latest 3 alerts
STRANGER_LANGUAGES = ("fr", "nl")  # an unknown caller: the PLP number's two main languages


class CallerKind(StrEnum):
    DECIDER = "decider"  # coordinator or steering member of a PLP
    OFFICER = "officer"
    MEMBER = "member"
    STRANGER = "stranger"


@dataclass(frozen=True)
class InboundCall:
    """Twilio's request about a call to the PLP number, and our action URL's query."""

    call_sid: str
    caller: str
    digits: str | None
    recording_url: str | None
    recording_sid: str | None
    recording_duration: int | None
    query: Mapping[str, str]

    @classmethod
    def from_request(cls) -> InboundCall:
        """Read the form Twilio posted and the query of the action URL."""
        form = request.form
        digits = (form.get("Digits") or "").strip()
        duration = (form.get("RecordingDuration") or "").strip()
        return cls(
            call_sid=(form.get("CallSid") or "").strip()[:64],
            caller=(form.get("From") or "").strip(),
            digits=digits[:12] or None,
            recording_url=(form.get("RecordingUrl") or "").strip() or None,
            recording_sid=(form.get("RecordingSid") or "").strip()[:64] or None,
            recording_duration=int(duration) if duration.isascii() and duration.isdigit() else None,
            query=request.args.to_dict(),
        )

    def number(self, key: str) -> int:
        """Return a counter of the query (0 when absent or not a small number)."""
        return count(self.query.get(key))

    def row_id(self, key: str) -> int | None:
        """Return a row id of the query (None when absent or not an id)."""
        return ident(self.query.get(key))


@dataclass(frozen=True)
class Caller:
    """Who is calling, from the caller ID."""

    kind: CallerKind
    person: Person | None
    language: str


def identify(call: InboundCall) -> Caller:
    """Return who is calling: the person of the caller ID and what they may do."""
    person = _person_of(call.caller)
    if person is None:
        return Caller(CallerKind.STRANGER, None, FALLBACK_LANGUAGE)
    language = language_for(person)
    roles = {membership.role for membership in person.memberships}
    if person.pin_hash is not None and roles & set(DECIDER_ROLES):
        kind = CallerKind.DECIDER
    elif person.pin_hash is not None and person.officer is not None and person.officer.active:
        kind = CallerKind.OFFICER
    elif roles:
        # A member; also a coordinator whose PIN is not set yet: they hear what members hear.
        kind = CallerKind.MEMBER
    else:
        kind = CallerKind.STRANGER
    g.call_language = language
    return Caller(kind, person, language)


def _person_of(caller: str) -> Person | None:
    try:
        e164 = parse_phone(caller).e164
    except PhoneNumberError:
        return None  # a withheld or foreign-format caller ID: nobody we know
    return db.session.scalar(select(Person).where(Person.phone == e164))


# --- The first answer ----------------------------------------------------------------------


def answer(call: InboundCall):
    """Return what the caller hears first."""
    caller = identify(call)
    log.info("inbound call call_sid=%s caller_kind=%s", call.call_sid, caller.kind)
    match caller.kind:
        case CallerKind.STRANGER:
            return twiml.say_in_languages_then_hang_up(
                [(text("voice.stranger", lang), lang) for lang in STRANGER_LANGUAGES]
            )
        case CallerKind.MEMBER:
            return _member_alert(caller, _member_alerts(caller.person)[:1], tries=0, first=True)
    until = locked_until(caller.person.phone)
    if until is not None:
        return _locked(caller, until)
    return _pin_prompt(caller, tries=0)


def _pin_prompt(caller: Caller, *, tries: int, before: tuple[str, ...] = ()):
    action = public_url("ivr.incoming_pin", tries=tries)
    words = " ".join((*before, text("voice.pin_prompt", caller.language)))
    return twiml.pin_prompt(words, action, caller.language)


def _locked(caller: Caller, until):
    minutes = max(1, round((until - utcnow()) / timedelta(minutes=1)))
    return twiml.goodbye(
        text("voice.pin_locked", caller.language, minutes=minutes), caller.language
    )


def _goodbye(caller: Caller, key: str = "voice.goodbye"):
    return twiml.goodbye(text(key, caller.language), caller.language)


# --- The PIN -------------------------------------------------------------------------------


def check_pin(call: InboundCall):  # noqa: PLR0911 (one return per outcome the caller hears)
    """Check the PIN typed; go on to the caller's menu, or say what is wrong."""
    caller = identify(call)
    if caller.kind not in (CallerKind.DECIDER, CallerKind.OFFICER):
        return _goodbye(caller)
    tries = call.number("tries")
    if not call.digits:
        if tries >= MAX_RETRIES:
            return _goodbye(caller, "voice.no_input")
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
        return _goodbye(caller)
    if caller.kind == CallerKind.OFFICER:
        return _officer_counts(caller)
    return main_menu(caller)


def _authenticated(call: InboundCall, caller: Caller) -> bool:
    """Tell whether this call gave the right PIN, for a caller who needs one."""
    if caller.kind not in (CallerKind.DECIDER, CallerKind.OFFICER) or not call.call_sid:
        return False
    return bool(
        db.session.scalar(
            select(
                exists().where(InboundWebhook.kind == PIN_KIND, InboundWebhook.sid == call.call_sid)
            )
        )
    )


def decider(call: InboundCall) -> Caller | None:
    """Return the caller if a coordinator or steering member who gave their PIN on this call."""
    caller = identify(call)
    if caller.kind != CallerKind.DECIDER or not _authenticated(call, caller):
        log.warning("ivr menu without a PIN call_sid=%s kind=%s", call.call_sid, caller.kind)
        return None
    return caller


def refuse(call: InboundCall):
    """Say goodbye to a request that has no business here (no PIN given on this call)."""
    return twiml.goodbye(text("voice.goodbye", g.get("call_language", FALLBACK_LANGUAGE)), None)


# --- Officer -------------------------------------------------------------------------------


def _officer_counts(caller: Caller):
    alerts = db.session.scalars(
        select(Alert)
        .where(Alert.author_id == caller.person.id)
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(LATEST_ALERTS)
    ).all()
    if not alerts:
        return twiml.say_then_hang_up(
            [text("voice.counts_none", caller.language), text("voice.goodbye", caller.language)],
            caller.language,
        )
    parts: list[twiml.Part] = []
    for alert in alerts:
        parts += [_counts_words(alert, caller.language), twiml.PAUSE]
    return twiml.say_then_hang_up([*parts, text("voice.goodbye", caller.language)], caller.language)


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


def main_menu(caller: Caller, *, tries: int = 0, before: tuple[twiml.Part, ...] = ()):
    """Return the coordinator's menu, after `before` (what a previous choice led to)."""
    action = public_url("ivr.incoming_menu", tries=tries)
    parts = [*before, twiml.PAUSE] if before else []
    return twiml.ask(
        [*parts, text("voice.coordinator_menu", caller.language)], action, caller.language
    )


def choose(call: InboundCall, caller: Caller):
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
                return _goodbye(
                    caller, "voice.no_input" if action == Action.SILENCE else "voice.goodbye"
                )
            before = (text("voice.invalid_choice", language),) if action == Action.UNKNOWN else ()
            return main_menu(caller, tries=tries + 1, before=before)
    return _goodbye(caller)


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


# --- Coordinator: recording a message ------------------------------------------------------


def record_prompt(caller: Caller):
    """Ask for the message and record it."""
    return twiml.record_message(
        [text("voice.record_prompt", caller.language)],
        public_url("ivr.incoming_recorded"),
        public_url("ivr.incoming_recorded", silence=1),
        caller.language,
    )


def recorded(call: InboundCall, caller: Caller):
    """Take the recording just made: play it back and ask what to do with it."""
    language = caller.language
    recording = _accept(call, caller) if call.recording_url and call.recording_duration else None
    if recording is None:
        return _retry_menu(caller, text("voice.record_empty", language))
    action = public_url("ivr.incoming_review", rec=recording.id, tries=0)
    parts = [
        text("voice.record_playback", language),
        twiml.Audio(call.recording_url),
        twiml.PAUSE,
        text("voice.record_review", language),
    ]
    return twiml.ask(parts, action, language)


def _accept(call: InboundCall, caller: Caller) -> Recording | None:
    """Return the recording of this Record, saved once (Twilio may post the action twice)."""
    recordings = spoken.recordings  # None until the recordings store lands
    if recordings is None:
        log.error(
            "recording refused: alerts.recordings is not installed call_sid=%s", call.call_sid
        )
        return None
    if call.recording_sid:
        known = db.session.scalar(
            select(Recording).where(Recording.provider_sid == call.recording_sid)
        )
        if known is not None:
            return known if known.author_id == caller.person.id else None
    try:
        recording = recordings.accept_recording(
            author=caller.person,
            provider_sid=call.recording_sid,
            provider_url=call.recording_url,
            duration=call.recording_duration,
        )
    except ValueError as err:  # an empty recording, said the store
        db.session.rollback()
        log.info("recording refused call_sid=%s: %s", call.call_sid, err)
        return None
    if recording is None:
        db.session.rollback()
        return None
    db.session.commit()  # the download job is enqueued after this commit
    log.info("recording taken call_sid=%s recording_id=%s", call.call_sid, recording.id)
    return recording


def _retry_menu(caller: Caller, words: str, *, tries: int = 0):
    action = public_url("ivr.incoming_review", rec=0, tries=tries)
    return twiml.ask(
        [words, text("voice.record_again_prompt", caller.language)], action, caller.language
    )


def _own_recording(call: InboundCall, caller: Caller) -> Recording | None:
    rec_id = call.row_id("rec")
    recording = db.session.get(Recording, rec_id) if rec_id else None
    if recording is None or recording.author_id != caller.person.id:
        return None
    return recording


def review(call: InboundCall, caller: Caller):
    """Act on the key pressed after the playback: send, record again, cancel."""
    language = caller.language
    recording = _own_recording(call, caller)
    action = resolve(REVIEW_MENU if recording is not None else RETRY_MENU, call.digits)
    match action:
        case Action.SEND:
            return _urgency_prompt(caller, recording, tries=0)
        case Action.RECORD_AGAIN:
            return record_prompt(caller)
        case Action.CANCEL:
            log.info("recorded message cancelled call_sid=%s", call.call_sid)
            return main_menu(caller, before=(text("voice.record_cancelled", language),))
    tries = call.number("tries")
    if tries >= MAX_RETRIES:
        return _goodbye(caller, "voice.no_input" if action == Action.SILENCE else "voice.goodbye")
    before = text("voice.invalid_choice", language) if action == Action.UNKNOWN else ""
    if recording is None:
        return _retry_menu(caller, before, tries=tries + 1)
    url = public_url("ivr.incoming_review", rec=recording.id, tries=tries + 1)
    return twiml.ask([before, text("voice.record_review", language)], url, language)


def _urgency_prompt(caller: Caller, recording: Recording, *, tries: int, before: str = ""):
    url = public_url("ivr.incoming_urgency", rec=recording.id, tries=tries)
    return twiml.ask([before, text("voice.urgency_prompt", caller.language)], url, caller.language)


def urgency(call: InboundCall, caller: Caller):
    """Act on the urgency chosen: send the recorded message."""
    recording = _own_recording(call, caller)
    if recording is None:
        return _retry_menu(caller, text("voice.record_failed", caller.language))
    action = resolve(URGENCY_MENU, call.digits)
    if action in (Action.URGENT, Action.NON_URGENT):
        return send(caller, recording, action, waits=0)
    tries = call.number("tries")
    if tries >= MAX_RETRIES:
        return _goodbye(caller, "voice.no_input" if action == Action.SILENCE else "voice.goodbye")
    before = text("voice.invalid_choice", caller.language) if action == Action.UNKNOWN else ""
    return _urgency_prompt(caller, recording, tries=tries + 1, before=before)


def send_again(call: InboundCall, caller: Caller):
    """Check again, after "one moment", whether the recording can be sent."""
    recording = _own_recording(call, caller)
    choice = call.query.get("urgency")
    if recording is None or choice not in (Action.URGENT, Action.NON_URGENT):
        return _retry_menu(caller, text("voice.record_failed", caller.language))
    return send(caller, recording, Action(choice), waits=call.number("waits"))


def send(caller: Caller, recording: Recording, choice: Action, *, waits: int):  # noqa: PLR0911 (idem)
    """Raise the alert with the recording once it is downloaded; never a failed one."""
    language = caller.language
    sent = db.session.scalar(select(Alert).where(Alert.recording_id == recording.id))
    if sent is not None:  # Twilio replayed the request: it is sent already
        return _sent(caller, sent)
    recordings = spoken.recordings
    if recordings is None or not recordings.recording_ready(recording):
        if recordings is None or recordings.recording_failed(recording):
            return _retry_menu(caller, text("voice.record_failed", language))
        if waits >= MAX_WAITS:
            return main_menu(caller, before=(text("voice.record_not_ready", language),))
        url = public_url(
            "ivr.incoming_send", rec=recording.id, urgency=choice.value, waits=waits + 1
        )
        return twiml.hold_on(text("voice.record_wait", language), url, language, WAIT_SECONDS)
    if not claim_webhook(SEND_KIND, f"recording-{recording.id}"):
        db.session.rollback()
        return main_menu(caller, before=(text("voice.was_released", language),))
    targets = [m.partnership for m in caller.person.memberships if m.role in DECIDER_ROLES]
    try:
        alert = raise_alert(
            author=caller.person,
            targets=targets,
            text=text("sms.recorded_message", targets[0].language),
            origin=AlertOrigin.PHONE,
            urgency=Urgency.URGENT if choice == Action.URGENT else Urgency.NON_URGENT,
        )
        alert.recording = recording
        db.session.flush()
    except AlertError as err:
        db.session.rollback()
        log.warning("recorded message not sent person_id=%s: %s", caller.person.id, err)
        return _retry_menu(caller, text("voice.record_failed", language))
    db.session.commit()
    log.info(
        "recorded message sent alert_id=%s ref=%s recording_id=%s urgency=%s",
        alert.id,
        alert.reference,
        recording.id,
        alert.urgency.value,
    )
    return _sent(caller, alert)


def _sent(caller: Caller, alert: Alert):
    words = text(
        "voice.record_sent",
        caller.language,
        members=alert_counts(alert.id).members,
        ref=spell(alert.reference),
    )
    return main_menu(caller, before=(words,))


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


def _pending_alert(caller: Caller, alerts: list[Alert], *, tries: int, before: tuple = ()):
    """Present the first of `alerts` for a decision, or say there is none left."""
    language = caller.language
    if not alerts:
        return main_menu(caller, before=(*before, text("voice.pending_none", language)))
    alert = alerts[0]
    url = public_url("ivr.incoming_pending", alert=alert.id, tries=tries)
    return twiml.ask([*before, *decision_parts(alert, language)], url, language)


def pending(call: InboundCall, caller: Caller):
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
    return twiml.ask(parts, url, language)


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
):
    """Say the first of `alerts` with its question, or that there is none (left)."""
    language = caller.language
    if not alerts:
        none = (text("voice.member_none", language),) if first else ()
        return twiml.say_then_hang_up([*before, *none, text("voice.goodbye", language)], language)
    alert = alerts[0]
    url = public_url("ivr.incoming_member", alert=alert.id, tries=tries)
    return twiml.ask([*before, *alert_parts(alert, language)], url, language)


def member(call: InboundCall):
    """Act on the key a member pressed about one running alert."""
    caller = identify(call)
    if caller.person is None or not caller.person.memberships:
        return _goodbye(caller)
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
