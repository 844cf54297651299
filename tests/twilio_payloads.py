"""Twilio's webhooks as the tests post them: SIDs, realistic forms, signed requests.

One builder per request Twilio makes to the app: an inbound call (`voice_form`), an
answered outbound call (`answered_call_form`), an inbound SMS (`sms_form`), the status
callbacks of calls and messages (`call_status_form`, `sms_status_form`); `signed_post`
sends any of them with the signature Twilio would compute.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from core.webhooks import signing_token
from simulator.calls import SIMULATOR_ACCOUNT_SID

ACCOUNT_SID = "AC3f9d2c8e1b7a4c60d5e2f1a0b9c8d7e6"
PLP_NUMBER = "+3223150100"  # the PLP's number: caller ID of calls, sender of SMS
MEMBER_NUMBER = "+32470123456"


def call_sid() -> str:
    """Return a new call SID, shaped as Twilio's."""
    return "CA" + uuid.uuid4().hex


def message_sid() -> str:
    """Return a new message SID, shaped as Twilio's."""
    return "SM" + uuid.uuid4().hex


def signed_post(
    client,
    path: str,
    form,
    *,
    token: str | None = None,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
):
    """POST `form` to `path` with the signature Twilio would send.

    Signed with `token` (default: the app's signing token) over `url` (default: the
    app's public base URL + `path`); the request itself always goes to `path`.
    """
    settings = client.application.extensions["settings"]
    form = MultiDict(form)
    token = token if token is not None else signing_token(settings)
    url = url if url is not None else settings.public_base_url + path
    signature = RequestValidator(token).compute_signature(url, form)
    return client.post(
        path, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def _twilio_form(base: dict[str, str], extra: Mapping[str, str | int | None]) -> dict[str, str]:
    # An extra value of None removes the field: how a test builds a malformed webhook.
    form = {**base, **{k: str(v) for k, v in extra.items() if v is not None}}
    return {k: v for k, v in form.items() if extra.get(k, "") is not None}


def call_status_form(
    sid: str,
    status: str,
    *,
    to: str = MEMBER_NUMBER,
    from_: str = PLP_NUMBER,
    **extra: str | int | None,
) -> dict[str, str]:
    """Return the form of a call status callback for an outbound call, as Twilio posts it.

    `extra` adds fields (CallDuration, AnsweredBy, Price, ...) or, with None, removes one.
    """
    base = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Called": to,
        "CalledCity": "",
        "CalledCountry": "BE",
        "CalledState": "",
        "CalledZip": "",
        "Caller": from_,
        "CallerCity": "Bruxelles",
        "CallerCountry": "BE",
        "CallerState": "",
        "CallerZip": "",
        "Direction": "outbound-api",
        "From": from_,
        "FromCity": "Bruxelles",
        "FromCountry": "BE",
        "FromState": "",
        "FromZip": "",
        "To": to,
        "ToCity": "",
        "ToCountry": "BE",
        "ToState": "",
        "ToZip": "",
        "Timestamp": format_datetime(datetime.now(UTC), usegmt=False),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    if status in ("completed", "busy", "no-answer", "failed", "canceled"):
        base["SipResponseCode"] = {
            "completed": "200",
            "busy": "486",
            "no-answer": "487",
            "failed": "404",
            "canceled": "487",
        }[status]
    return _twilio_form(base, extra)


def sms_status_form(
    sid: str,
    status: str,
    *,
    to: str = MEMBER_NUMBER,
    from_: str = PLP_NUMBER,
    **extra: str | int | None,
) -> dict[str, str]:
    """Return the form of a message status callback, as Twilio posts it.

    `extra` adds fields (ErrorCode, ErrorMessage, MessagingServiceSid, ...) or, with
    None, removes one.
    """
    base = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if status == "delivered":
        base["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
    return _twilio_form(base, extra)


def _call_form(caller: str, called: str, direction: str, sid: str | None, extra) -> dict[str, str]:
    form = {
        "CallSid": sid or call_sid(),
        "AccountSid": SIMULATOR_ACCOUNT_SID,
        "From": caller,
        "To": called,
        "Caller": caller,
        "Called": called,
        "CallStatus": "in-progress",
        "Direction": direction,
        "ApiVersion": "2010-04-01",
    }
    form.update({key: str(value) for key, value in extra.items()})
    return form


def voice_form(caller: str, sid: str | None = None, **extra) -> dict[str, str]:
    """Return the form Twilio posts about an inbound call from `caller` to the PLP number.

    `extra` adds fields (Digits, RecordingUrl, FinishedOnKey, ...).
    """
    return _call_form(caller, PLP_NUMBER, "inbound", sid, extra)


def answered_call_form(to: str = MEMBER_NUMBER, sid: str | None = None, **extra) -> dict[str, str]:
    """Return the form Twilio posts to the URLs of an outbound call the app placed to `to`.

    `extra` adds fields (Digits, AnsweredBy, ...).
    """
    return _call_form(PLP_NUMBER, to, "outbound-api", sid, extra)


def sms_form(from_: str, body: str | None, *, sid: str | None = None, **extra) -> dict[str, str]:
    """Return the form Twilio posts for a message texted to the PLP number (no Body: None).

    `extra` adds fields (OptOutType, NumMedia, ...); a value of None adds nothing.
    """
    form = {
        "MessageSid": sid or message_sid(),
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": PLP_NUMBER,
        "NumSegments": "1",
        "NumMedia": "0",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if body is not None:
        form["Body"] = body
        form["SmsMessageSid"] = form["MessageSid"]
    form.update({k: v for k, v in extra.items() if v is not None})
    return form
