"""Voice webhooks: Twilio's requests about the calls the app places and receives.

An alert call (`alert_call`) speaks the alert and asks for one key; the key comes back to
`alert_gather`, which resolves it through `ALERT_MENU`: 1 confirms, 0 replays, anything
else replays too, at most `MAX_REPLAYS` times; silence repeats the question once, then
says goodbye. An answering machine hears a message saying how to confirm, never the menu.
The counts travel in the action URL's query, so that each request stands on its own.

The coordinator's release call (`ivr.release`) and calls to the PLP number
(`ivr.inbound`) have their routes here too: each view parses the request and hands it to
one function of those modules, which returns the TwiML.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from alerts.confirmation import confirm
from alerts.delivery.closing import after_status_change
from alerts.delivery.status import CallStatusReport, record_call_status
from alerts.lifecycle import AlertError
from alerts.models import AckChannel, Alert, AlertState, Channel, Delivery, Person, utcnow
from alerts.wording import language_for
from core.extensions import db
from core.urls import public_url
from core.webhooks import (
    MalformedWebhook,
    malformed_webhook,
    service_unavailable,
    twilio_signed,
)
from ivr import inbound as incoming
from ivr import menus, release, spoken, twiml
from ivr.inbound import InboundCall
from prompts import FALLBACK_LANGUAGE, text
from prompts.speech import spoken_names

log = logging.getLogger(__name__)

bp = Blueprint("ivr", __name__, url_prefix="/ivr")
bp.register_error_handler(MalformedWebhook, malformed_webhook)

MAX_REPLAYS = 3  # 0 or a wrong key replays the message at most this many times
MAX_SILENCES = 1  # no key at all: the question is asked once more, then goodbye


class Choice(StrEnum):
    CONFIRM = "confirm"
    REPLAY = "replay"
    SILENCE = "silence"


# The alert call's menu: digit -> what it does; any other key replays.
ALERT_MENU = MappingProxyType({"1": Choice.CONFIRM, "0": Choice.REPLAY})


def resolve_choice(digits: str | None) -> Choice:
    """Return what the keys pressed at the alert menu ask for."""
    if not digits:
        return Choice.SILENCE
    return ALERT_MENU.get(digits, Choice.REPLAY)


@dataclass(frozen=True)
class AlertCallRequest:
    """Twilio's request about an alert call: who answered, what they pressed, how often."""

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
            replays=_count(request.args.get("replays")),
            silences=_count(request.args.get("silences")),
        )

    @property
    def machine(self) -> bool:
        """Tell whether answering-machine detection heard a machine (or a fax)."""
        return self.answered_by is not None and self.answered_by.startswith(("machine", "fax"))


@bp.post("/alert/<int:delivery_id>")
@twilio_signed
def alert_call(delivery_id: int):
    """Speak the alert to whoever answered: the menu to a person, a message to a machine."""
    call = AlertCallRequest.from_request()
    delivery = _call_delivery(delivery_id, call)
    if delivery is None:
        return twiml.xml_response(_goodbye("voice.goodbye"))
    alert, language = delivery.alert, g.call_language
    if _is_over(alert):
        return twiml.xml_response(twiml.alert_over(text("voice.alert_over", language), language))
    if call.machine:
        return twiml.xml_response(twiml.machine_message(_machine_parts(alert), language))
    return twiml.xml_response(_alert_message(delivery, alert, replays=0, silences=0))


@bp.post("/alert/<int:delivery_id>/gather")
@twilio_signed
def alert_gather(delivery_id: int):
    """Act on the key pressed at the alert menu: confirm, replay, or ask again."""
    call = AlertCallRequest.from_request()
    delivery = _call_delivery(delivery_id, call)
    if delivery is None:
        return twiml.xml_response(_goodbye("voice.goodbye"))
    return twiml.xml_response(_answer_choice(delivery, call))


@bp.post("/status")
@twilio_signed
def call_status():
    """Record a call's progress (ringing, answered, ended, by whom) reported by Twilio."""
    report = CallStatusReport.from_form(request.form, request.args)
    change = record_call_status(report)
    db.session.commit()
    # After the commit: the cascade acts on what is saved (closes the alert when all is over).
    after_status_change(change)
    return "", 204


# --- The coordinator's release call (ivr.release) ------------------------------------------


@bp.post("/release/<int:alert_id>/<int:person_id>")
@twilio_signed
def release_call(alert_id: int, person_id: int):
    """Tell a coordinator about an alert awaiting release; ask for 1 (release) or 2 (reject)."""
    call = AlertCallRequest.from_request()
    alert, person = _release_call_rows(alert_id, person_id)
    return twiml.xml_response(release.answer_release_call(alert, person, machine=call.machine))


@bp.post("/release/<int:alert_id>/<int:person_id>/gather")
@twilio_signed
def release_gather(alert_id: int, person_id: int):
    """Act on the coordinator's key at the release call: release, reject, repeat."""
    call = AlertCallRequest.from_request()
    alert, person = _release_call_rows(alert_id, person_id)
    tries = menus.count(request.args.get("tries"))
    return twiml.xml_response(release.gather_release_call(alert, person, call.digits, tries))


@bp.post("/release/status")
@twilio_signed
def release_call_status():
    """Log a release call's progress: not a member's delivery, so nothing is updated."""
    log.info(
        "release call status call_sid=%s status=%s answered_by=%s",
        request.form.get("CallSid"),
        request.form.get("CallStatus"),
        request.form.get("AnsweredBy"),
    )
    return "", 204


# --- Calls to the PLP number (ivr.inbound) --------------------------------------------------


@bp.post("/incoming")
@twilio_signed
def incoming_call():
    """Answer a call to the PLP number according to who calls (caller ID)."""
    g.call_language = FALLBACK_LANGUAGE
    return twiml.xml_response(incoming.answer(InboundCall.from_request()))


@bp.post("/incoming/pin")
@twilio_signed
def incoming_pin():
    """Check the PIN a coordinator, steering member or officer typed."""
    g.call_language = FALLBACK_LANGUAGE
    return twiml.xml_response(incoming.check_pin(InboundCall.from_request()))


@bp.post("/incoming/member")
@twilio_signed
def incoming_member():
    """Act on a member's key about one running alert: confirm, replay, next."""
    g.call_language = FALLBACK_LANGUAGE
    return twiml.xml_response(incoming.member(InboundCall.from_request()))


# The coordinator's menus: each needs the PIN given on this very call.
_DECIDER_STEPS = {
    "menu": incoming.choose,
    "recorded": incoming.recorded,
    "review": incoming.review,
    "urgency": incoming.urgency,
    "send": incoming.send_again,
    "pending": incoming.pending,
}


def _decider_step(handler):
    """Return the view of one step of a coordinator's call: checked, then `handler`."""

    @twilio_signed
    def view():
        g.call_language = FALLBACK_LANGUAGE
        call = InboundCall.from_request()
        caller = incoming.decider(call)
        if caller is None:
            return twiml.xml_response(incoming.refuse(call))
        return twiml.xml_response(handler(call, caller))

    view.__doc__ = handler.__doc__
    return view


for _step, _handler in _DECIDER_STEPS.items():
    # One endpoint per step (ivr.incoming_menu, ...): the action URLs name them.
    bp.add_url_rule(
        f"/incoming/{_step}",
        endpoint=f"incoming_{_step}",
        view_func=_decider_step(_handler),
        methods=["POST"],
    )


@bp.errorhandler(Exception)
def apologise(error: Exception):
    """Speak an apology and hang up rather than let the caller hear "an application error"."""
    if isinstance(error, HTTPException):
        return error
    if request.endpoint in ("ivr.call_status", "ivr.release_call_status"):
        # Nobody listens to a status callback: answer as the app does for an outage.
        return service_unavailable(error)
    db.session.rollback()
    log.exception("ivr request failed path=%s endpoint=%s", request.path, request.endpoint)
    language = g.get("call_language", FALLBACK_LANGUAGE)
    return twiml.xml_response(twiml.apology(text("voice.apology", language), language))


# --- Helpers of the alert call ------------------------------------------------------------


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


def _release_call_rows(alert_id: int, person_id: int):
    """Return the release call's alert and coordinator (None when unknown); set the language."""
    alert = db.session.get(Alert, alert_id)
    person = db.session.get(Person, person_id)
    g.call_language = language_for(person, alert)
    if alert is None or person is None:
        log.warning("release call for unknown rows alert_id=%s person_id=%s", alert_id, person_id)
    return alert, person


def _is_over(alert: Alert) -> bool:
    """Tell whether the alert no longer concerns anyone: ended, or past its expiry."""
    over = alert.state != AlertState.DELIVERING or _is_past(alert.expires_at)
    if over:
        log.info("alert call after the alert ended alert_id=%s state=%s", alert.id, alert.state)
    return over


def _answer_choice(delivery: Delivery, call: AlertCallRequest):
    """Return what the caller hears after their choice at the alert menu."""
    alert, language, choice = delivery.alert, g.call_language, resolve_choice(call.digits)
    if choice == Choice.CONFIRM:
        # Before the "over" check: a repeated 1 after the last confirmation closed the
        # alert is still thanked; confirm() refuses an alert that ended otherwise.
        return _confirm(delivery, alert, language)
    if _is_over(alert):
        return twiml.alert_over(text("voice.alert_over", language), language)
    match choice:
        case Choice.REPLAY if call.replays < MAX_REPLAYS:
            return _alert_message(delivery, alert, replays=call.replays + 1, silences=call.silences)
        case Choice.SILENCE if call.silences < MAX_SILENCES:
            action = public_url(
                "ivr.alert_gather",
                delivery_id=delivery.id,
                replays=call.replays,
                silences=call.silences + 1,
            )
            return twiml.prompt_again(text("voice.alert_prompt", language), action, language)
        case Choice.SILENCE:
            return _goodbye("voice.no_input")
    return _goodbye("voice.goodbye")


def _goodbye(key: str):
    """Say the words of `key` in the call's language, then hang up."""
    return twiml.goodbye(text(key, g.call_language), g.call_language)


def _alert_message(delivery: Delivery, alert: Alert, *, replays: int, silences: int):
    language = g.call_language
    action = public_url(
        "ivr.alert_gather", delivery_id=delivery.id, replays=replays, silences=silences
    )
    return twiml.alert_message(
        spoken.intro(alert, language),
        spoken.message(alert),
        text("voice.alert_prompt", language),
        action,
        language,
    )


def _machine_parts(alert: Alert) -> list[twiml.Part]:
    """Return the message left on an answering machine: the alert, then how to confirm."""
    language, names = g.call_language, _spoken_names(alert)
    message = spoken.message(alert)
    if isinstance(message, str):
        return [
            text("voice.machine_message", language, **names, message=message, ref=alert.reference)
        ]
    return [
        text("voice.machine_intro", language, **names),
        twiml.PAUSE,
        message,
        twiml.PAUSE,
        text("voice.machine_how_to_confirm", language, ref=spoken.spell(alert.reference)),
    ]


def _confirm(delivery: Delivery, alert: Alert, language: str):
    try:
        result = confirm(alert, delivery.person, AckChannel.CALL, delivery=delivery)
    except AlertError as err:
        db.session.rollback()
        log.info("confirmation by call refused delivery_id=%s reason=%s", delivery.id, err)
        return twiml.alert_over(text("voice.alert_over", language), language)
    db.session.commit()
    log.info(
        "alert confirmed by call alert_id=%s person_id=%s delivery_id=%s created=%s",
        alert.id,
        delivery.person_id,
        delivery.id,
        result.created,
    )
    return twiml.ack_confirmed(text("voice.ack_confirmed", language), language)


def _spoken_names(alert: Alert) -> dict[str, str]:
    """Return the exercise prefix and the targeted PLPs' names, as the prompts need them."""
    return spoken_names(alert, g.call_language)


def _count(raw: str | None) -> int:
    # Our own URL's query: anything but a small number is treated as none so far.
    return menus.count(raw)


def _is_past(moment: datetime | None) -> bool:
    return moment is not None and moment <= utcnow()
