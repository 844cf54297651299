"""SMS webhooks: Twilio's requests about the messages the app sends and receives."""

from __future__ import annotations

from flask import Blueprint, request

from alerts.jobs import after_status_change
from alerts.status import MessageStatusReport, record_sms_status
from core.extensions import db
from core.webhooks import MalformedWebhook, malformed_webhook, twilio_signed

bp = Blueprint("messaging", __name__, url_prefix="/sms")
bp.register_error_handler(MalformedWebhook, malformed_webhook)


@bp.post("/status")
@twilio_signed
def message_status():
    """Record a message's progress (sent, delivered, undelivered and why) reported by Twilio."""
    report = MessageStatusReport.from_form(request.form)
    change = record_sms_status(report)
    db.session.commit()
    # After the commit: the cascade acts on what is saved (closes the alert when all is over).
    after_status_change(change)
    return "", 204
