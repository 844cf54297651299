"""A coordinator records a message by phone: played back, then sent as an urgent alert or not.

From the coordinator's menu (`ivr.inbound`, key 1): the message is recorded
(`record_prompt`), played back (1 send, 2 record again, 3 cancel), then its urgency is
asked (1 urgent, 2 non-urgent) and the alert raised and released at once, with the
recording as its message, once `alerts.recordings` has downloaded it ("one moment" until
then). The recording and the choices travel in the action URL's query; a replayed
request never sends twice (`claim_webhook(SEND_KIND, ...)`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from alerts import recordings
from alerts.errors import AlertError
from alerts.lifecycle import DECIDER_ROLES
from alerts.models import Alert, AlertOrigin, Recording, Urgency
from alerts.raising import raise_alert
from alerts.tracking import alert_counts
from core.extensions import db
from core.urls import public_url
from core.webhooks import claim_webhook
from ivr import twiml
from ivr.caller import Caller, InboundCall
from ivr.inbound import main_menu, record_prompt, say_goodbye
from ivr.menus import MAX_RETRIES, RETRY_MENU, REVIEW_MENU, URGENCY_MENU, Action, resolve
from ivr.spoken import spell
from ivr.voice import prompt, voiced_parts
from prompts import text

log = logging.getLogger(__name__)

SEND_KIND = "ivr_send"  # claim_webhook kind: this recording was sent (a replay sends nothing)
MAX_WAITS = 5  # "one moment" while the recording downloads, at most this many times
WAIT_SECONDS = 2


def recorded(call: InboundCall, caller: Caller) -> VoiceResponse:
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
    return twiml.ask(voiced_parts(parts, language), action, language)


def _accept(call: InboundCall, caller: Caller) -> Recording | None:
    """Return the recording of this Record, saved once (Twilio may post the action twice)."""
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


def _retry_menu(caller: Caller, words: str, *, tries: int = 0) -> VoiceResponse:
    action = public_url("ivr.incoming_review", rec=0, tries=tries)
    parts = [words, text("voice.record_again_prompt", caller.language)]
    return twiml.ask(voiced_parts(parts, caller.language), action, caller.language)


def _own_recording(call: InboundCall, caller: Caller) -> Recording | None:
    rec_id = call.row_id("rec")
    recording = db.session.get(Recording, rec_id) if rec_id else None
    if recording is None or recording.author_id != caller.person.id:
        return None
    return recording


def review(call: InboundCall, caller: Caller) -> VoiceResponse:
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
        return say_goodbye(
            caller, "voice.no_input" if action == Action.SILENCE else "voice.goodbye"
        )
    before = text("voice.invalid_choice", language) if action == Action.UNKNOWN else ""
    if recording is None:
        return _retry_menu(caller, before, tries=tries + 1)
    url = public_url("ivr.incoming_review", rec=recording.id, tries=tries + 1)
    parts = [before, text("voice.record_review", language)]
    return twiml.ask(voiced_parts(parts, language), url, language)


def _urgency_prompt(
    caller: Caller, recording: Recording, *, tries: int, before: str = ""
) -> VoiceResponse:
    url = public_url("ivr.incoming_urgency", rec=recording.id, tries=tries)
    parts = [before, text("voice.urgency_prompt", caller.language)]
    return twiml.ask(voiced_parts(parts, caller.language), url, caller.language)


def urgency(call: InboundCall, caller: Caller) -> VoiceResponse:
    """Act on the urgency chosen: send the recorded message."""
    recording = _own_recording(call, caller)
    if recording is None:
        return _retry_menu(caller, text("voice.record_failed", caller.language))
    action = resolve(URGENCY_MENU, call.digits)
    if action in (Action.URGENT, Action.NON_URGENT):
        return send(caller, recording, action, waits=0)
    tries = call.number("tries")
    if tries >= MAX_RETRIES:
        return say_goodbye(
            caller, "voice.no_input" if action == Action.SILENCE else "voice.goodbye"
        )
    before = text("voice.invalid_choice", caller.language) if action == Action.UNKNOWN else ""
    return _urgency_prompt(caller, recording, tries=tries + 1, before=before)


def send_again(call: InboundCall, caller: Caller) -> VoiceResponse:
    """Check again, after "one moment", whether the recording can be sent."""
    recording = _own_recording(call, caller)
    choice = call.query.get("urgency")
    if recording is None or choice not in (Action.URGENT, Action.NON_URGENT):
        return _retry_menu(caller, text("voice.record_failed", caller.language))
    return send(caller, recording, Action(choice), waits=call.number("waits"))


def send(  # noqa: PLR0911 (one return per outcome the caller hears)
    caller: Caller, recording: Recording, choice: Action, *, waits: int
) -> VoiceResponse:
    """Raise the alert with the recording once it is downloaded; never a failed one."""
    language = caller.language
    sent = db.session.scalar(select(Alert).where(Alert.recording_id == recording.id))
    if sent is not None:  # Twilio replayed the request: it is sent already
        return _sent(caller, sent)
    if not recordings.recording_ready(recording):
        if recordings.recording_failed(recording):
            return _retry_menu(caller, text("voice.record_failed", language))
        if waits >= MAX_WAITS:
            return main_menu(caller, before=(text("voice.record_not_ready", language),))
        url = public_url(
            "ivr.incoming_send", rec=recording.id, urgency=choice.value, waits=waits + 1
        )
        return twiml.hold_on(prompt("voice.record_wait", language), url, language, WAIT_SECONDS)
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


def _sent(caller: Caller, alert: Alert) -> VoiceResponse:
    words = text(
        "voice.record_sent",
        caller.language,
        members=alert_counts(alert.id).members,
        ref=spell(alert.reference),
    )
    return main_menu(caller, before=(words,))
