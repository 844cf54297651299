"""SMS webhooks: Twilio's requests about the messages the app sends and receives."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request
from redis import RedisError
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import HTTPException

from alerts.delivery.closing import after_status_change
from alerts.delivery.status import MessageStatusReport, record_sms_status
from alerts.sms.inbound import find_sender, handle_inbound
from alerts.sms.message import InboundSms
from core.extensions import db
from core.webhooks import MalformedWebhook, malformed_webhook, service_unavailable, twilio_signed
from prompts import FALLBACK_LANGUAGE, text

log = logging.getLogger(__name__)

bp = Blueprint("messaging", __name__, url_prefix="/sms")
bp.register_error_handler(MalformedWebhook, malformed_webhook)


def messaging_xml(body: str | None) -> Response:
    """Return the TwiML answer to an inbound message: one <Message>, or nothing to send."""
    response = MessagingResponse()
    if body:
        response.message(body)
    return Response(str(response), status=200, content_type="text/xml; charset=utf-8")


@bp.post("/incoming")
@twilio_signed
def incoming_sms():
    """Carry out a command texted to the PLP number and answer it (ALERTE, OUI, 1, STOP...)."""
    sms = InboundSms.from_form(request.form)
    g.sms_from = sms.from_
    return messaging_xml(handle_inbound(sms))


@bp.post("/status")
@twilio_signed
def message_status():
    """Record a message's progress (sent, delivered, undelivered and why) reported by Twilio."""
    report = MessageStatusReport.from_form(request.form, request.args)
    change = record_sms_status(report)
    db.session.commit()
    # After the commit: the cascade acts on what is saved (closes the alert when all is over).
    after_status_change(change)
    return "", 204


@bp.errorhandler(Exception)
def apologise(error: Exception):
    """Answer a texted command that failed with a short apology, never Twilio's error 11200.

    A person is waiting for the answer (an officer who raised an alert must know it did
    not go): an SMS saying so is better than silence. Twilio does not retry a failed
    inbound message webhook, so a 503 would only lose it. Status callbacks keep the app's
    503 with Retry-After.
    """
    if isinstance(error, HTTPException):
        return error
    if request.endpoint != "messaging.incoming_sms":
        return service_unavailable(error)
    db.session.rollback()
    if isinstance(error, (SQLAlchemyError, RedisError)):
        log.error("sms command failed: service unavailable error=%s", type(error).__name__)
    else:
        log.exception("sms command failed from=%s", g.get("sms_from"))
    return messaging_xml(text("sms.cmd.apology", _sender_language()))


def _sender_language() -> str:
    """Return the language of the person who texted, French when it cannot be known now."""
    try:
        person = find_sender(g.get("sms_from") or "")
    except (SQLAlchemyError, RedisError):
        db.session.rollback()
        return FALLBACK_LANGUAGE
    return person.language if person is not None else FALLBACK_LANGUAGE
