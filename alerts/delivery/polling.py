"""Carrier status polling: ask the carrier about calls and SMS whose status callbacks were lost.

Twilio never retries a status callback the app failed to take (a 503 during an outage, a
network cut): without polling, the delivery would stay "queued" or "ringing" for good,
the member's next call held back (up to `alerts.cascade.LONGEST_CALL`), the counts wrong
and the alert open. The reconciler calls `poll_stale_statuses` once a run: each delivery
with a SID and no final status, and no news for longer than its channel's `STALE_AFTER`,
is fetched from the carrier and recorded through the very path the callbacks take
(`alerts.delivery.status`, which never moves a delivery backwards), then
`after_status_change` acts on it as after a callback (the alert closed when all is over).
A held next step sees the final status at its next recheck and goes out on time.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import redis
from sqlalchemy import and_, func, or_, select, update

from alerts.delivery.closing import after_status_change
from alerts.delivery.provider import (
    CarrierStatus,
    ProviderError,
    UnknownSidError,
    get_provider,
)
from alerts.delivery.schedule import reconcile_period
from alerts.delivery.status import (
    CALL_STATUSES,
    MESSAGE_STATUSES,
    TERMINAL_STATUSES,
    CallStatusReport,
    MessageStatusReport,
    StatusChange,
    record_call_status,
    record_sms_status,
)
from alerts.models import Channel, Delivery
from core.extensions import db, redis_connection
from core.webhooks import MalformedWebhook

log = logging.getLogger(__name__)

# How long a delivery may go without news before the carrier is asked. A call's normal
# life moves every few seconds (setup, at most a minute of ringing with detection) except
# while answered: the message, heard up to four times, takes two to three minutes. So 3
# minutes without news means a lost callback, not a long call; with the reconciler's
# minute, the member's next step waits at most about 4 minutes for it, not `LONGEST_CALL`.
# An SMS is queued, sent and delivered within seconds: 2 minutes is already late.
STALE_AFTER: dict[Channel, timedelta] = {
    Channel.CALL: timedelta(minutes=3),
    Channel.SMS: timedelta(minutes=2),
}
# At most this many fetches a run, oldest news first; what is left waits for the next run.
# Unchanged deliveries have their last news set to the run's time, so they go to the back.
POLL_MAX = 200
# Nor longer than this a run (nor a third of the reconciler's period, whose lock lasts
# less than the period): one slow fetch after another must not hold the reconciler up.
POLL_BUDGET_SECONDS = 20.0
# Asked about for this long after being sent, then left as they are: the carrier's answer
# has not changed for hours (a handset that never acknowledges an SMS keeps "sent").
GIVE_UP_AFTER = timedelta(hours=6)
# The SIDs a 404 was logged for: each is logged once (for as long as it is polled).
UNKNOWN_SIDS_KEY = "plp:poll:unknown-sids"

# The statuses a later callback can still move forward, per channel: the status tables'
# own statuses, but the final ones.
POLLED: dict[Channel, frozenset] = {
    Channel.CALL: frozenset(CALL_STATUSES.values()) - TERMINAL_STATUSES,
    Channel.SMS: frozenset(s for s in MESSAGE_STATUSES.values() if s is not None)
    - TERMINAL_STATUSES,
}


def poll_stale_statuses(now: datetime) -> int:
    """Fetch stale deliveries' statuses from the carrier and record them; return how many moved.

    A SID the carrier does not know is left as it is (logged once); a carrier error ends
    the run quietly: the next run asks again.
    """
    rows = db.session.execute(
        select(Delivery.id, Delivery.channel, Delivery.provider_sid)
        .where(
            Delivery.provider_sid.is_not(None),
            or_(
                *(
                    and_(
                        Delivery.channel == channel,
                        Delivery.status.in_(sorted(statuses)),
                        Delivery.updated_at < now - STALE_AFTER[channel],
                    )
                    for channel, statuses in POLLED.items()
                )
            ),
            func.coalesce(Delivery.sent_at, Delivery.updated_at) >= now - GIVE_UP_AFTER,
        )
        .order_by(Delivery.updated_at, Delivery.id)
        .limit(POLL_MAX)
    ).all()
    db.session.rollback()  # read only: end the transaction before talking to the carrier
    if not rows:
        return 0
    provider = get_provider()
    deadline = time.monotonic() + min(POLL_BUDGET_SECONDS, reconcile_period() / 3)
    moved = asked = 0
    for delivery_id, channel, sid in rows:
        if time.monotonic() > deadline:
            log.info("status polling out of time asked=%d left=%d", asked, len(rows) - asked)
            break
        asked += 1
        try:
            if channel == Channel.CALL:
                carrier = provider.fetch_call_status(sid)
            else:
                carrier = provider.fetch_message_status(sid)
        except UnknownSidError:
            _log_unknown_once(delivery_id, channel, sid)
            _touch(delivery_id, now)
            continue
        except ProviderError as err:
            log.warning(
                "status polling stopped: carrier error asked=%d error=%s code=%s",
                asked,
                type(err).__name__,
                err.code,
            )
            break
        change = _record(channel, sid, carrier)
        if change is not None and change.changed:
            moved += 1
            log.info(
                "status recovered by polling delivery_id=%s sid=%s old=%s new=%s",
                delivery_id,
                sid,
                change.old,
                change.new,
            )
        else:
            _touch(delivery_id, now)
        db.session.commit()
        # After the commit, as after a callback: the cascade acts on what is saved.
        after_status_change(change)
    log.info("status polling done stale=%d asked=%d moved=%d", len(rows), asked, moved)
    return moved


def _record(channel: Channel, sid: str, carrier: CarrierStatus) -> StatusChange | None:
    """Record what the carrier said as the callbacks' own record function does."""
    # The fields as a callback names them: the callback's parser checks and normalises
    # them (status word, duration, price sign and scale) exactly as for a callback.
    form = {
        "CallStatus" if channel == Channel.CALL else "MessageStatus": carrier.status,
        "AnsweredBy": carrier.answered_by,
        "CallDuration": carrier.duration_seconds,
        "Price": carrier.price,
        "PriceUnit": carrier.price_unit,
        "ErrorCode": carrier.error_code,
        "ErrorMessage": carrier.error_message,
    }
    form = {key: str(value) for key, value in form.items() if value is not None}
    try:
        if channel == Channel.CALL:
            return record_call_status(CallStatusReport.from_form({"CallSid": sid, **form}))
        return record_sms_status(MessageStatusReport.from_form({"MessageSid": sid, **form}))
    except MalformedWebhook as err:
        db.session.rollback()
        log.warning("carrier status not understood sid=%s: %s", sid, err)
        return None


def _touch(delivery_id: int, now: datetime) -> None:
    """Note that the carrier was asked at `now`: the delivery goes to the back of the line."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _log_unknown_once(delivery_id: int, channel: Channel, sid: str) -> None:
    try:
        connection = redis_connection()
        first = connection.sadd(UNKNOWN_SIDS_KEY, sid)
        connection.expire(UNKNOWN_SIDS_KEY, int(GIVE_UP_AFTER.total_seconds()))
    except redis.RedisError:
        first = True  # better logged twice than never
    if first:
        log.warning(
            "status polling: the carrier does not know this sid delivery_id=%s channel=%s sid=%s",
            delivery_id,
            channel,
            sid,
        )
