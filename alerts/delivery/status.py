"""Status callbacks: what the carrier reports about a call or an SMS, keyed by its SID.

A delivery only moves forward (`DELIVERY_PROGRESS`): callbacks arrive late, out of order
and twice, and a late "ringing" after "completed" must not reopen a finished call. Each
record function returns a `StatusChange` saying what happened, so that the caller can act
on "this delivery just ended" (the cascade) after the commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from alerts.models import DELIVERY_PROGRESS, Channel, Delivery, DeliveryStatus, utcnow
from core.extensions import db
from core.webhooks import MalformedWebhook

log = logging.getLogger(__name__)

# Twilio's call statuses: https://www.twilio.com/docs/voice/api/call-resource#call-status-values
CALL_STATUSES: Mapping[str, DeliveryStatus] = MappingProxyType(
    {
        "queued": DeliveryStatus.QUEUED,
        "initiated": DeliveryStatus.QUEUED,  # dialled, not yet ringing
        "ringing": DeliveryStatus.RINGING,
        "in-progress": DeliveryStatus.IN_PROGRESS,
        "completed": DeliveryStatus.COMPLETED,
        "busy": DeliveryStatus.BUSY,
        "no-answer": DeliveryStatus.NO_ANSWER,
        "failed": DeliveryStatus.FAILED,
        "canceled": DeliveryStatus.CANCELED,
    }
)

# Twilio's message statuses:
# https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
# None: a status of inbound messages, which never concerns an outbound delivery.
MESSAGE_STATUSES: Mapping[str, DeliveryStatus | None] = MappingProxyType(
    {
        "accepted": DeliveryStatus.QUEUED,  # taken by a messaging service, sender not chosen yet
        "scheduled": DeliveryStatus.QUEUED,
        "queued": DeliveryStatus.QUEUED,
        "sending": DeliveryStatus.QUEUED,  # being handed to the next carrier: not sent yet
        "sent": DeliveryStatus.SENT,
        "delivered": DeliveryStatus.DELIVERED,
        "undelivered": DeliveryStatus.UNDELIVERED,
        "failed": DeliveryStatus.FAILED,
        "canceled": DeliveryStatus.CANCELED,
        "read": DeliveryStatus.DELIVERED,  # read receipts (WhatsApp, RCS): delivered, and more
        "partially_delivered": DeliveryStatus.DELIVERED,  # some segments arrived: the alert did
        "receiving": None,
        "received": None,
    }
)

# Values of `AnsweredBy` with answering-machine detection; others are kept but logged.
ANSWERED_BY = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)

_LAST_RANK = max(DELIVERY_PROGRESS.values())
TERMINAL_STATUSES = frozenset(s for s, rank in DELIVERY_PROGRESS.items() if rank == _LAST_RANK)

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_WORD = re.compile(r"^[a-z_-]{1,32}$")
_ERROR_CODE = re.compile(r"^[0-9]{1,16}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_MAX_DURATION_SECONDS = 24 * 3600  # Twilio's longest call (TimeLimit at most 24 hours)
_MAX_PRICE = Decimal("99999")  # what the cost column holds: Numeric(10, 5)
_PRICE_STEP = Decimal("0.00001")


@dataclass(frozen=True)
class CallStatusReport:
    """A call status callback, parsed from Twilio's form."""

    sid: str
    status: str  # Twilio's word, as sent
    answered_by: str | None = None
    duration_seconds: int | None = None
    price: Decimal | None = None
    price_unit: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    delivery_id: int | None = None  # from our callback URL: see `_locked_delivery`

    @classmethod
    def from_form(
        cls, form: Mapping[str, str], args: Mapping[str, str] | None = None
    ) -> CallStatusReport:
        """Parse the callback's form (and our URL's query), or raise `MalformedWebhook`."""
        answered_by = _optional(form, "AnsweredBy")
        if answered_by is not None and not _WORD.match(answered_by):
            raise MalformedWebhook(f"AnsweredBy: {answered_by[:40]!r} is not a status word")
        return cls(
            sid=_sid(form, "CallSid", _CALL_SID),
            status=_status_word(form, "CallStatus"),
            answered_by=answered_by,
            duration_seconds=_duration(form, "CallDuration"),
            delivery_id=_delivery_hint(args),
            **_price_and_error(form),
        )


@dataclass(frozen=True)
class MessageStatusReport:
    """A message status callback, parsed from Twilio's form."""

    sid: str
    status: str  # Twilio's word, as sent
    price: Decimal | None = None
    price_unit: str | None = None
    error_code: str | None = None  # 30003-30008: why the handset was not reached
    error_message: str | None = None
    delivery_id: int | None = None  # from our callback URL: see `_locked_delivery`
    notice: bool = False  # our URL says: a notice (no delivery row), not a cascade step

    @classmethod
    def from_form(
        cls, form: Mapping[str, str], args: Mapping[str, str] | None = None
    ) -> MessageStatusReport:
        """Parse the callback's form (and our URL's query), or raise `MalformedWebhook`."""
        # MessageStatus and MessageSid are current; SmsStatus and SmsSid their old names.
        sid_key = "MessageSid" if form.get("MessageSid") else "SmsSid"
        status_key = "MessageStatus" if form.get("MessageStatus") else "SmsStatus"
        return cls(
            sid=_sid(form, sid_key, _MESSAGE_SID),
            status=_status_word(form, status_key),
            delivery_id=_delivery_hint(args),
            notice=(args or {}).get("notice") == "1",
            **_price_and_error(form),
        )


@dataclass(frozen=True)
class StatusChange:
    """What a status callback did to a delivery."""

    delivery_id: int
    sid: str
    old: DeliveryStatus
    new: DeliveryStatus

    @property
    def changed(self) -> bool:
        """Tell whether the delivery's status moved."""
        return self.old != self.new

    @property
    def ended(self) -> bool:
        """Tell whether this callback just finished the delivery (once per delivery)."""
        return self.changed and self.new in TERMINAL_STATUSES


def record_call_status(report: CallStatusReport) -> StatusChange | None:
    """Apply a call status callback to its delivery; None when there is nothing to apply."""
    status = _known_status(CALL_STATUSES, report.status, "call", report.sid)
    delivery = _locked_delivery(report, Channel.CALL) if status is not None else None
    if delivery is None:
        return None
    change = _advance(delivery, status, report)
    if change.new == status:  # not a stale report: its details are current
        if report.answered_by is not None:
            if report.answered_by not in ANSWERED_BY:
                log.warning(
                    "unknown AnsweredBy call_sid=%s answered_by=%s", report.sid, report.answered_by
                )
            delivery.answered_by = report.answered_by
        if report.duration_seconds is not None:
            delivery.duration_seconds = report.duration_seconds
        _record_price_and_error(delivery, report)
    return change


def record_sms_status(report: MessageStatusReport) -> StatusChange | None:
    """Apply a message status callback to its delivery; None when there is nothing to apply."""
    status = _known_status(MESSAGE_STATUSES, report.status, "message", report.sid)
    delivery = _locked_delivery(report, Channel.SMS) if status is not None else None
    if delivery is None:
        return None
    change = _advance(delivery, status, report)
    if change.new == status:
        _record_price_and_error(delivery, report)
    return change


def _known_status(table, word: str, kind: str, sid: str) -> DeliveryStatus | None:
    if word not in table:
        log.warning("unknown %s status ignored sid=%s status=%s", kind, sid, word)
        return None
    if table[word] is None:
        log.info("%s status ignored: not an outbound delivery sid=%s status=%s", kind, sid, word)
    return table[word]


def _locked_delivery(report, channel: Channel) -> Delivery | None:
    # The row lock serializes two callbacks for one SID on PostgreSQL: without it both
    # read "ringing" and the later commit could write back an older status.
    sid = report.sid
    delivery = db.session.scalars(
        db.select(Delivery).where(Delivery.provider_sid == sid).with_for_update()
    ).one_or_none()
    if delivery is None and report.delivery_id is not None:
        delivery = _adopt_sid(report.delivery_id, sid, channel)
    if delivery is None and getattr(report, "notice", False):
        # A level-1 notice or a reply: no delivery row to update; its fate is only logged.
        log.info("notice status sid=%s status=%s error=%s", sid, report.status, report.error_code)
    elif delivery is None:
        log.warning("status callback for an unknown sid ignored channel=%s sid=%s", channel, sid)
    elif delivery.channel != channel:
        log.warning(
            "status callback for another channel ignored channel=%s sid=%s delivery_id=%s",
            channel,
            sid,
            delivery.id,
        )
        return None
    return delivery


def _adopt_sid(delivery_id: int, sid: str, channel: Channel) -> Delivery | None:
    """Give the SID to the delivery named in our callback URL, if it has none yet.

    A batch of steps commits the carrier's SIDs a few at a time (alerts.jobs), so the
    carrier's first callback can come before its SID is saved: the delivery id in the
    callback URL (signed with the rest) finds the delivery then. A delivery that already
    has another SID keeps it: the callback is not about it.
    """
    delivery = db.session.scalars(
        db.select(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.channel == channel,
            Delivery.provider_sid.is_(None),
        )
        .with_for_update()
    ).one_or_none()
    if delivery is not None:
        delivery.provider_sid = sid
        delivery.sent_at = delivery.sent_at or utcnow()
        log.info("status callback before its sid was saved delivery_id=%s sid=%s", delivery_id, sid)
    return delivery


def _delivery_hint(args: Mapping[str, str] | None) -> int | None:
    value = _optional(args or {}, "delivery")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise MalformedWebhook(f"delivery: {value[:40]!r} is not a delivery id")
    return int(value)


def _advance(delivery: Delivery, status: DeliveryStatus, report) -> StatusChange:
    old = delivery.status
    if DELIVERY_PROGRESS[status] > DELIVERY_PROGRESS[old]:
        delivery.status = status
        if status in TERMINAL_STATUSES:
            delivery.finished_at = utcnow()
        log.info(
            "delivery status delivery_id=%s sid=%s old=%s new=%s",
            delivery.id,
            report.sid,
            old,
            status,
        )
    elif status != old:
        log.info(
            "stale status ignored delivery_id=%s sid=%s current=%s reported=%s",
            delivery.id,
            report.sid,
            old,
            report.status,
        )
    return StatusChange(delivery_id=delivery.id, sid=report.sid, old=old, new=delivery.status)


def _record_price_and_error(delivery: Delivery, report) -> None:
    if report.price is not None:
        delivery.cost = report.price
        delivery.cost_unit = report.price_unit
    if report.error_code is not None:
        delivery.error_code = report.error_code
        delivery.error_message = report.error_message


def _optional(form: Mapping[str, str], key: str) -> str | None:
    return (form.get(key) or "").strip() or None


def _sid(form: Mapping[str, str], key: str, pattern: re.Pattern) -> str:
    value = _optional(form, key)
    if value is None:
        raise MalformedWebhook(f"{key} is missing")
    if not pattern.match(value):
        raise MalformedWebhook(f"{key}: {value[:40]!r} is not a SID")
    return value


def _status_word(form: Mapping[str, str], key: str) -> str:
    value = _optional(form, key)
    if value is None:
        raise MalformedWebhook(f"{key} is missing")
    if not _WORD.match(value):
        raise MalformedWebhook(f"{key}: {value[:40]!r} is not a status word")
    return value


def _duration(form: Mapping[str, str], key: str) -> int | None:
    value = _optional(form, key)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) > _MAX_DURATION_SECONDS:
        raise MalformedWebhook(f"{key}: {value[:40]!r} is not a number of seconds")
    return int(value)


def _price_and_error(form: Mapping[str, str]) -> dict:
    price, unit = _optional(form, "Price"), _optional(form, "PriceUnit")
    amount = None
    if price is not None:
        try:
            amount = abs(Decimal(price))  # Twilio reports what we pay as a negative price
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount > _MAX_PRICE:
            raise MalformedWebhook(f"Price: {price[:40]!r} is not an amount")
        amount = amount.quantize(_PRICE_STEP)  # the column's scale, the same on every database
    if unit is not None and not _CURRENCY.match(unit):
        raise MalformedWebhook(f"PriceUnit: {unit[:40]!r} is not a currency code")
    code = _optional(form, "ErrorCode")
    if code is not None and not _ERROR_CODE.match(code):
        raise MalformedWebhook(f"ErrorCode: {code[:40]!r} is not a number")
    message = _optional(form, "ErrorMessage")
    return {
        "price": amount,
        "price_unit": unit.upper() if unit else None,
        "error_code": code,
        "error_message": message[:500] if message and code else None,
    }
