"""Status callbacks: every Twilio status, never backwards, details recorded, bad input 400."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest
from sqlalchemy import text

from alerts.delivery.provider import (
    CallRequest,
    RateLimitedError,
    SmsRequest,
    get_provider,
    set_provider,
)
from alerts.delivery.status import (
    CALL_STATUSES,
    MESSAGE_STATUSES,
    CallStatusReport,
    MessageStatusReport,
    StatusChange,
    record_call_status,
)
from alerts.models import Channel, DeliveryStatus
from core.extensions import db
from tests.support import FakeProvider, snapshot
from tests.twilio_payloads import (
    call_sid,
    call_status_form,
    message_sid,
    signed_post,
    sms_status_form,
)

# What each Twilio status means for a delivery, written out independently of the code's
# tables: https://www.twilio.com/docs/voice/api/call-resource#call-status-values
EXPECTED_CALL = {
    "queued": DeliveryStatus.QUEUED,
    "initiated": DeliveryStatus.QUEUED,
    "ringing": DeliveryStatus.RINGING,
    "in-progress": DeliveryStatus.IN_PROGRESS,
    "completed": DeliveryStatus.COMPLETED,
    "busy": DeliveryStatus.BUSY,
    "no-answer": DeliveryStatus.NO_ANSWER,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.CANCELED,
}
# https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
EXPECTED_SMS = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.CANCELED,
    "read": DeliveryStatus.DELIVERED,
    "partially_delivered": DeliveryStatus.DELIVERED,
    "receiving": None,  # inbound only: never changes an outbound delivery
    "received": None,
}
FINAL = {
    DeliveryStatus.COMPLETED,
    DeliveryStatus.BUSY,
    DeliveryStatus.NO_ANSWER,
    DeliveryStatus.FAILED,
    DeliveryStatus.CANCELED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
}


def post_call(client, sid: str, status: str, **extra):
    """Post a signed call status callback."""
    return signed_post(client, "/ivr/status", call_status_form(sid, status, **extra))


def post_sms(client, sid: str, status: str, **extra):
    """Post a signed message status callback."""
    return signed_post(client, "/sms/status", sms_status_form(sid, status, **extra))


def test_status_tables_cover_twilios_statuses():
    """Both tables know exactly Twilio's documented statuses, no more, no fewer."""
    assert set(CALL_STATUSES) == set(EXPECTED_CALL)
    assert set(MESSAGE_STATUSES) == set(EXPECTED_SMS)


@pytest.mark.parametrize("status", EXPECTED_CALL)
def test_every_call_status_is_recorded(client, make_delivery, status):
    """Each call status moves a planned call to its delivery status; final ones set finished_at."""
    delivery = make_delivery(Channel.CALL, status=DeliveryStatus.PLANNED)
    response = post_call(client, delivery.provider_sid, status)
    assert response.status_code == 204
    row = snapshot(delivery)
    assert row["status"] == EXPECTED_CALL[status]
    assert (row["finished_at"] is not None) == (EXPECTED_CALL[status] in FINAL)


@pytest.mark.parametrize("status", EXPECTED_SMS)
def test_every_message_status_is_recorded(client, make_delivery, status):
    """Each message status moves a planned SMS to its delivery status; inbound ones do nothing."""
    delivery = make_delivery(Channel.SMS, status=DeliveryStatus.PLANNED)
    response = post_sms(client, delivery.provider_sid, status)
    assert response.status_code == 204
    row = snapshot(delivery)
    assert row["status"] == (EXPECTED_SMS[status] or DeliveryStatus.PLANNED)
    assert (row["finished_at"] is not None) == (EXPECTED_SMS[status] in FINAL)


def test_call_progresses_through_its_life(client, make_delivery):
    """queued, initiated, ringing, in-progress, completed: each step recorded in turn."""
    delivery = make_delivery(Channel.CALL)
    seen = []
    for sequence, status in enumerate(["initiated", "ringing", "in-progress", "completed"]):
        post_call(client, delivery.provider_sid, status, SequenceNumber=sequence)
        seen.append(snapshot(delivery)["status"])
    assert seen == [
        DeliveryStatus.QUEUED,
        DeliveryStatus.RINGING,
        DeliveryStatus.IN_PROGRESS,
        DeliveryStatus.COMPLETED,
    ]


def test_late_status_never_moves_a_call_backwards(client, make_delivery):
    """A 'ringing' arriving after 'completed' is ignored: the call stays completed."""
    delivery = make_delivery(Channel.CALL)
    post_call(client, delivery.provider_sid, "completed", CallDuration=31)
    finished = snapshot(delivery)
    for late in ("ringing", "in-progress", "initiated", "queued"):
        assert post_call(client, delivery.provider_sid, late).status_code == 204
    assert snapshot(delivery) == finished


def test_late_status_never_moves_an_sms_backwards(client, make_delivery):
    """A 'sent' arriving after 'delivered' is ignored: the SMS stays delivered."""
    delivery = make_delivery(Channel.SMS)
    post_sms(client, delivery.provider_sid, "delivered")
    finished = snapshot(delivery)
    assert post_sms(client, delivery.provider_sid, "sent").status_code == 204
    assert snapshot(delivery) == finished


def test_another_final_status_does_not_replace_the_first(client, make_delivery):
    """Once undelivered with its error, a later 'delivered' changes neither status nor error."""
    delivery = make_delivery(Channel.SMS)
    post_sms(
        client,
        delivery.provider_sid,
        "undelivered",
        ErrorCode=30003,
        ErrorMessage="Unreachable destination handset",
    )
    first = snapshot(delivery)
    post_sms(client, delivery.provider_sid, "delivered")
    assert snapshot(delivery) == first
    assert first["status"] == DeliveryStatus.UNDELIVERED


def test_repeated_callback_is_harmless(client, make_delivery):
    """The same 'completed' twice leaves the delivery as the first one did."""
    delivery = make_delivery(Channel.CALL)
    post_call(client, delivery.provider_sid, "completed", CallDuration=42)
    first = snapshot(delivery)
    assert post_call(client, delivery.provider_sid, "completed", CallDuration=42).status_code == 204
    again = snapshot(delivery)
    assert again["status"] == first["status"] == DeliveryStatus.COMPLETED
    assert again["finished_at"] == first["finished_at"]
    assert again["duration_seconds"] == 42


@pytest.mark.parametrize(
    "answered_by",
    ["human", "machine_start", "machine_end_beep", "machine_end_silence", "fax", "unknown"],
)
def test_answered_by_is_recorded(client, make_delivery, answered_by):
    """What answered the call (answering-machine detection) is kept on the delivery."""
    delivery = make_delivery(Channel.CALL)
    post_call(client, delivery.provider_sid, "in-progress", AnsweredBy=answered_by)
    assert snapshot(delivery)["answered_by"] == answered_by


def test_duration_and_price_are_recorded(client, make_delivery):
    """CallDuration in seconds, and the price as a positive Decimal with its currency."""
    delivery = make_delivery(Channel.CALL)
    post_call(
        client,
        delivery.provider_sid,
        "completed",
        CallDuration=47,
        Duration=1,
        Price="-0.01300",
        PriceUnit="EUR",
        AnsweredBy="human",
    )
    row = snapshot(delivery)
    assert row["duration_seconds"] == 47
    assert row["cost"] == Decimal("0.01300")
    assert row["cost_unit"] == "EUR"
    assert row["answered_by"] == "human"


def test_sms_error_code_and_price_are_recorded(client, make_delivery):
    """An undelivered SMS keeps Twilio's error code and message, and its price."""
    delivery = make_delivery(Channel.SMS)
    post_sms(
        client,
        delivery.provider_sid,
        "undelivered",
        ErrorCode=30005,
        ErrorMessage="Unknown destination handset",
        Price="-0.0850",
        PriceUnit="USD",
    )
    row = snapshot(delivery)
    assert row["status"] == DeliveryStatus.UNDELIVERED
    assert (row["error_code"], row["error_message"]) == ("30005", "Unknown destination handset")
    assert (row["cost"], row["cost_unit"]) == (Decimal("0.08500"), "USD")


def test_legacy_sms_field_names_are_understood(client, make_delivery):
    """A callback with only SmsSid and SmsStatus (the old names) is recorded."""
    delivery = make_delivery(Channel.SMS)
    form = sms_status_form(delivery.provider_sid, "sent", MessageSid=None, MessageStatus=None)
    assert signed_post(client, "/sms/status", form).status_code == 204
    assert snapshot(delivery)["status"] == DeliveryStatus.SENT


@pytest.mark.parametrize("route", ["/ivr/status", "/sms/status"])
def test_unknown_sid_is_ignored(client, make_delivery, caplog, route):
    """A SID the app never sent: 204, a warning, and no delivery touched."""
    channel = Channel.CALL if route == "/ivr/status" else Channel.SMS
    other = make_delivery(channel)
    before = snapshot(other)
    if channel == Channel.CALL:
        sid, form = (sid := call_sid()), call_status_form(sid, "completed")
    else:
        sid, form = (sid := message_sid()), sms_status_form(sid, "delivered")
    with caplog.at_level(logging.WARNING, logger="alerts.delivery.status"):
        response = signed_post(client, route, form)
    assert response.status_code == 204
    assert snapshot(other) == before
    assert f"sid={sid}" in caplog.text


@pytest.mark.parametrize("route", ["/ivr/status", "/sms/status"])
def test_callback_before_the_sid_is_saved_finds_its_delivery_by_the_url(
    client, make_delivery, route
):
    """A batch saves SIDs a few at a time: the first callback may come before. The
    delivery id in the (signed) callback URL finds the delivery, which takes the SID."""
    channel = Channel.CALL if route == "/ivr/status" else Channel.SMS
    delivery = make_delivery(channel, provider_sid=None)
    if channel == Channel.CALL:
        sid, form = (sid := call_sid()), call_status_form(sid, "ringing")
        expected = DeliveryStatus.RINGING
    else:
        sid, form = (sid := message_sid()), sms_status_form(sid, "delivered")
        expected = DeliveryStatus.DELIVERED

    assert signed_post(client, f"{route}?delivery={delivery.id}", form).status_code == 204

    after = snapshot(delivery)
    assert (after["provider_sid"], after["status"]) == (sid, expected)
    assert after["sent_at"] is not None


def test_a_notices_status_is_logged_quietly_and_changes_nothing(client, make_delivery, caplog):
    """Level-1 notices have no delivery row: their callbacks are expected, not warnings."""
    other = make_delivery(Channel.SMS)
    before = snapshot(other)
    sid = message_sid()
    with caplog.at_level(logging.INFO, logger="alerts.delivery.status"):
        response = signed_post(client, "/sms/status?notice=1", sms_status_form(sid, "delivered"))
    assert response.status_code == 204
    assert snapshot(other) == before
    [record] = [r for r in caplog.records if sid in r.getMessage()]
    assert record.levelno == logging.INFO and "notice status" in record.getMessage()


def test_callback_url_naming_a_delivery_with_another_sid_changes_nothing(client, make_delivery):
    """The hint only fills a missing SID: a delivery that has its own SID keeps it."""
    delivery = make_delivery(Channel.CALL)
    before = snapshot(delivery)
    form = call_status_form(call_sid(), "completed")
    assert signed_post(client, f"/ivr/status?delivery={delivery.id}", form).status_code == 204
    assert snapshot(delivery) == before


@pytest.mark.parametrize("hint", ["abc", "-1", "1" * 19, "１２"])
def test_malformed_delivery_hint_is_refused(client, make_delivery, hint):
    delivery = make_delivery(Channel.CALL, provider_sid=None)
    before = snapshot(delivery)
    form = call_status_form(call_sid(), "ringing")
    assert signed_post(client, f"/ivr/status?delivery={hint}", form).status_code == 400
    assert snapshot(delivery) == before


def test_status_for_another_channel_is_ignored(client, make_delivery):
    """A call status naming an SMS delivery's SID is ignored: that SID is not a call."""
    delivery = make_delivery(Channel.SMS, provider_sid=call_sid())
    before = snapshot(delivery)
    assert post_call(client, delivery.provider_sid, "completed").status_code == 204
    assert snapshot(delivery) == before


def test_unknown_status_word_is_ignored(client, make_delivery, caplog):
    """A status word Twilio may add later is logged and ignored: 204, nothing changed."""
    delivery = make_delivery(Channel.CALL)
    before = snapshot(delivery)
    with caplog.at_level(logging.WARNING, logger="alerts.delivery.status"):
        assert post_call(client, delivery.provider_sid, "teleported").status_code == 204
    assert snapshot(delivery) == before
    assert "status=teleported" in caplog.text


MALFORMED_CALLS = {
    "no CallSid": ({"CallSid": None}, "CallSid is missing"),
    "CallSid not a SID": ({"CallSid": "CA-not-a-sid"}, "CallSid"),
    "no CallStatus": ({"CallStatus": None}, "CallStatus is missing"),
    "CallStatus not a word": ({"CallStatus": "<b>done</b>"}, "CallStatus"),
    "CallDuration abc": ({"CallDuration": "abc"}, "CallDuration"),
    "CallDuration negative": ({"CallDuration": "-5"}, "CallDuration"),
    "CallDuration absurd": ({"CallDuration": "99999999999999999999"}, "CallDuration"),
    "CallDuration Arabic digits": ({"CallDuration": "٤٢"}, "CallDuration"),
    "Price abc": ({"Price": "abc"}, "Price"),
    "Price NaN": ({"Price": "NaN"}, "Price"),
    "Price infinite": ({"Price": "-Infinity"}, "Price"),
    "Price absurd": ({"Price": "-1e12"}, "Price"),
    "PriceUnit not a currency": ({"PriceUnit": "euros"}, "PriceUnit"),
    "AnsweredBy not a word": ({"AnsweredBy": "human; drop"}, "AnsweredBy"),
    "ErrorCode not a number": ({"ErrorCode": "E30003"}, "ErrorCode"),
}
MALFORMED_SMS = {
    "no MessageSid nor SmsSid": ({"MessageSid": None, "SmsSid": None}, "SmsSid is missing"),
    "MessageSid not a SID": ({"MessageSid": "SMshort"}, "MessageSid"),
    "no status": ({"MessageStatus": None, "SmsStatus": None}, "SmsStatus is missing"),
    "ErrorCode not a number": ({"ErrorCode": "thirty"}, "ErrorCode"),
    "Price abc": ({"Price": "-0,085"}, "Price"),
}


@pytest.mark.parametrize(("extra", "named"), MALFORMED_CALLS.values(), ids=MALFORMED_CALLS)
def test_malformed_call_status_is_refused(client, make_delivery, extra, named):
    """A signed but malformed call callback: 400 with a one-line reason, nothing changed."""
    delivery = make_delivery(Channel.CALL)
    before = snapshot(delivery)
    response = post_call(client, delivery.provider_sid, "completed", **extra)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert body.count("\n") == 1 and named in body
    assert snapshot(delivery) == before


@pytest.mark.parametrize(("extra", "named"), MALFORMED_SMS.values(), ids=MALFORMED_SMS)
def test_malformed_message_status_is_refused(client, make_delivery, extra, named):
    """A signed but malformed message callback: 400 with a one-line reason, nothing changed."""
    delivery = make_delivery(Channel.SMS)
    before = snapshot(delivery)
    response = post_sms(client, delivery.provider_sid, "delivered", **extra)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert body.count("\n") == 1 and named in body
    assert snapshot(delivery) == before


def test_record_returns_what_changed(app, make_delivery):
    """The result names the delivery, old and new status, and 'ended' once only."""
    delivery = make_delivery(Channel.CALL)
    sid = delivery.provider_sid

    def report(status: str) -> StatusChange | None:
        form = call_status_form(sid, status)
        return record_call_status(CallStatusReport.from_form(form))

    ringing = report("ringing")
    assert ringing == StatusChange(delivery.id, sid, DeliveryStatus.QUEUED, DeliveryStatus.RINGING)
    assert ringing.changed and not ringing.ended
    completed = report("completed")
    assert completed.changed and completed.ended
    repeated = report("completed")
    assert not repeated.changed and not repeated.ended
    late = report("ringing")
    assert late.new == DeliveryStatus.COMPLETED and not late.ended
    assert (
        record_call_status(CallStatusReport.from_form(call_status_form(call_sid(), "completed")))
        is None
    )


def test_message_report_parses_twilios_form():
    """A message status form becomes a report: SID, status, error, positive price."""
    sid = message_sid()
    form = sms_status_form(
        sid,
        "failed",
        ErrorCode=30008,
        ErrorMessage="Unknown error",
        Price="-0.0075",
        PriceUnit="eur",
    )
    assert MessageStatusReport.from_form(form) == MessageStatusReport(
        sid=sid,
        status="failed",
        price=Decimal("0.00750"),
        price_unit="EUR",
        error_code="30008",
        error_message="Unknown error",
    )


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_concurrent_callbacks_serialize_on_the_delivery(app, make_delivery):
    """A 'ringing' processed while 'completed' holds the row waits, then sees it completed."""
    delivery = make_delivery(Channel.CALL)
    sid, delivery_id = delivery.provider_sid, delivery.id
    db.session.commit()
    completed_held, release = threading.Event(), threading.Event()
    results: dict[str, StatusChange | None] = {}

    def record(status: str, hold: bool) -> None:
        with app.app_context():
            results[status] = record_call_status(
                CallStatusReport.from_form(call_status_form(sid, status))
            )
            if hold:
                completed_held.set()
                release.wait(30)
            db.session.commit()

    first = threading.Thread(target=record, args=("completed", True))
    first.start()
    assert completed_held.wait(30)
    second = threading.Thread(target=record, args=("ringing", False))
    second.start()
    _wait_for_a_blocked_backend()
    release.set()
    first.join(30)
    second.join(30)
    assert results["completed"].ended
    assert results["ringing"].old == DeliveryStatus.COMPLETED
    assert not results["ringing"].changed
    db.session.expire_all()
    assert db.session.get(type(delivery), delivery_id).status == DeliveryStatus.COMPLETED


def _wait_for_a_blocked_backend() -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(3000):
        with db.engine.connect() as connection:
            if connection.execute(query).scalar():
                return
        threading.Event().wait(0.01)
    pytest.fail("the second callback never waited for the row lock")


# --- the provider fake, as the code that sends will use it ------------------------------


def test_every_app_gets_the_fake_provider(app, provider):
    """The app fixture installs the fake: nothing can reach Twilio by accident."""
    assert get_provider(app) is provider
    set_provider(app, None)
    assert "phone_provider" not in app.extensions


def test_fake_provider_sids_drive_status_callbacks(client, provider, make_delivery):
    """A call placed through the fake gets a Twilio-shaped SID its callbacks are keyed by."""
    sent = provider.place_call(
        CallRequest(
            to="+32470123456",
            answer_url="https://x/ivr/a",
            status_callback_url="https://x/ivr/status",
        )
    )
    assert sent.sid.startswith("CA") and len(sent.sid) == 34
    delivery = make_delivery(Channel.CALL, provider_sid=sent.sid)
    post_call(client, sent.sid, "busy")
    assert snapshot(delivery)["status"] == DeliveryStatus.BUSY
    assert [c.to for c in provider.calls] == ["+32470123456"]


def test_fake_provider_raises_the_planned_error_once():
    """fail_next makes the next request raise that error, and the one after succeed."""
    fake = FakeProvider()
    request = SmsRequest(to="+32470123456", body="Alerte", status_callback_url="https://x/s")
    fake.fail_next(RateLimitedError("Too many messages, try again later.", code="20429"))
    with pytest.raises(RateLimitedError):
        fake.send_sms(request)
    first, second = fake.send_sms(request), fake.send_sms(request)
    assert first.sid != second.sid
    assert all(s.sid.startswith("SM") and len(s.sid) == 34 for s in (first, second))
    assert len(fake.messages) == 3 and len(fake.sent) == 2
