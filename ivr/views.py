"""Voice webhooks: Twilio's requests about the calls the app places and receives."""

from __future__ import annotations

from flask import Blueprint, request

from alerts.status import CallStatusReport, record_call_status
from core.extensions import db
from core.webhooks import MalformedWebhook, malformed_webhook, twilio_signed

bp = Blueprint("ivr", __name__, url_prefix="/ivr")
bp.register_error_handler(MalformedWebhook, malformed_webhook)


@bp.post("/status")
@twilio_signed
def call_status():
    """Record a call's progress (ringing, answered, ended, by whom) reported by Twilio."""
    report = CallStatusReport.from_form(request.form)
    record_call_status(report)
    # The cascade will act on the returned StatusChange (ended) after this commit.
    db.session.commit()
    return "", 204
