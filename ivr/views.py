"""Voice webhooks: Twilio's requests about the calls the app places and receives.

Routes only: each view parses the request into a small frozen dataclass, hands it to one
function of a call tree, and answers its TwiML. The trees are `ivr.alert_call` (a
member's alert call), `ivr.release` (the coordinator's release call), `ivr.inbound` and
`ivr.recording` (calls to the PLP number).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from alerts.delivery.closing import after_status_change
from alerts.delivery.status import CallStatusReport, record_call_status
from core.extensions import db
from core.webhooks import (
    MalformedWebhook,
    malformed_webhook,
    service_unavailable,
    twilio_signed,
)
from ivr import inbound, menus, recording, release, twiml
from ivr.alert_call import AlertCallRequest, answer_alert_call, gather_alert_call
from ivr.caller import InboundCall
from ivr.voice import prompt
from prompts import FALLBACK_LANGUAGE

log = logging.getLogger(__name__)

bp = Blueprint("ivr", __name__, url_prefix="/ivr")
bp.register_error_handler(MalformedWebhook, malformed_webhook)


def xml_response(response: VoiceResponse) -> Response:
    """Return `response` as the HTTP answer Twilio expects: TwiML, text/xml."""
    return Response(str(response), status=200, content_type="text/xml; charset=utf-8")


@bp.before_request
def speak_the_fallback_language():
    """Start every request in the fallback language, until the call tree knows the person's."""
    # The apology of `apologise` is said in g.call_language: never a previous request's.
    g.call_language = FALLBACK_LANGUAGE


@bp.post("/alert/<id:delivery_id>")
@twilio_signed
def alert_call(delivery_id: int):
    """Speak the alert to whoever answered: the menu to a person, a message to a machine."""
    call = AlertCallRequest.from_request()
    return xml_response(answer_alert_call(delivery_id, call))


@bp.post("/alert/<id:delivery_id>/gather")
@twilio_signed
def alert_gather(delivery_id: int):
    """Act on the key pressed at the alert menu: confirm, replay, or ask again."""
    call = AlertCallRequest.from_request()
    return xml_response(gather_alert_call(delivery_id, call))


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


@bp.post("/release/<id:alert_id>/<id:person_id>")
@twilio_signed
def release_call(alert_id: int, person_id: int):
    """Tell a coordinator about an alert awaiting release; ask for 1 (release) or 2 (reject)."""
    call = AlertCallRequest.from_request()
    answer = release.answer_release_call(alert_id, person_id, machine=call.machine)
    return xml_response(answer)


@bp.post("/release/<id:alert_id>/<id:person_id>/gather")
@twilio_signed
def release_gather(alert_id: int, person_id: int):
    """Act on the coordinator's key at the release call: release, reject, repeat."""
    call = AlertCallRequest.from_request()
    tries = menus.count(request.args.get("tries"))
    answer = release.gather_release_call(alert_id, person_id, call.digits, tries)
    return xml_response(answer)


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


# --- Calls to the PLP number (ivr.inbound, ivr.recording) -----------------------------------


@bp.post("/incoming")
@twilio_signed
def incoming_call():
    """Answer a call to the PLP number according to who calls (caller ID)."""
    return xml_response(inbound.answer(InboundCall.from_request()))


@bp.post("/incoming/pin")
@twilio_signed
def incoming_pin():
    """Check the PIN a coordinator, steering member or officer typed."""
    return xml_response(inbound.check_pin(InboundCall.from_request()))


@bp.post("/incoming/member")
@twilio_signed
def incoming_member():
    """Act on a member's key about one running alert: confirm, replay, next."""
    return xml_response(inbound.member(InboundCall.from_request()))


# The coordinator's menus: each needs the PIN given on this very call.
_DECIDER_STEPS = {
    "menu": inbound.choose,
    "recorded": recording.recorded,
    "review": recording.review,
    "urgency": recording.urgency,
    "send": recording.send_again,
    "pending": inbound.pending,
}


def _decider_view(step: inbound.DeciderStep):
    """Return the view of one step of a coordinator's call: checked, then `step`."""

    @twilio_signed
    def view():
        return xml_response(inbound.decider_step(step, InboundCall.from_request()))

    view.__doc__ = step.__doc__
    return view


for _name, _step in _DECIDER_STEPS.items():
    # One endpoint per step (ivr.incoming_menu, ...): the action URLs name them.
    bp.add_url_rule(
        f"/incoming/{_name}",
        endpoint=f"incoming_{_name}",
        view_func=_decider_view(_step),
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
    return xml_response(twiml.apology(prompt("voice.apology", language), language))
