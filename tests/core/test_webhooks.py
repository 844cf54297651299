"""Twilio-facing routes: signature checks (tokens, rotation, public URL) and deduplication."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading

import pytest
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from alerts.models import Channel, DeliveryStatus, Person, PhoneType
from core.extensions import db
from core.webhooks import InboundWebhook, claim_webhook, signing_token, webhook_tokens
from tests.support import TEST_SECRET, TWILIO_SETTINGS, snapshot
from tests.twilio_payloads import call_status_form, signed_post, sms_status_form

NEW_TOKEN = "a" * 32
OLD_TOKEN = "b" * 32
ROUTES = [
    pytest.param(("/ivr/status", Channel.CALL, call_status_form), id="call-status"),
    pytest.param(("/sms/status", Channel.SMS, sms_status_form), id="sms-status"),
]


@pytest.fixture(params=ROUTES)
def route(request, make_delivery):
    """A status route, a queued delivery of its channel and a 'completed/delivered' form."""
    path, channel, build = request.param
    delivery = make_delivery(channel)
    status = "completed" if channel == Channel.CALL else "delivered"
    return path, delivery, build(delivery.provider_sid, status)


def assert_refused(response, delivery, before) -> None:
    """The request was refused with a short plain 403 and the delivery is unchanged."""
    assert response.status_code == 403
    assert response.mimetype == "text/plain"
    assert len(response.get_data(as_text=True)) < 80
    assert snapshot(delivery) == before


def test_signed_request_is_accepted(client, route):
    """A request signed with the app's token over its public URL is handled: 204."""
    path, delivery, form = route
    response = signed_post(client, path, form)
    assert response.status_code == 204
    # The form says "completed" for a call, "delivered" for an SMS: so does the delivery.
    expected = {Channel.CALL: DeliveryStatus.COMPLETED, Channel.SMS: DeliveryStatus.DELIVERED}
    assert snapshot(delivery)["status"] == expected[delivery.channel]


def test_unsigned_request_is_refused(client, route, caplog):
    """Without X-Twilio-Signature: 403, nothing changed, a warning with path and address."""
    path, delivery, form = route
    before = snapshot(delivery)
    with caplog.at_level(logging.WARNING, logger="core.webhooks"):
        response = client.post(path, data=form, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert_refused(response, delivery, before)
    [record] = [r for r in caplog.records if r.name == "core.webhooks"]
    assert record.levelno == logging.WARNING
    assert f"path={path}" in record.getMessage()
    assert "remote_addr=203.0.113.9" in record.getMessage()
    assert "missing" in record.getMessage()


def test_wrong_token_is_refused(client, route, caplog):
    """A signature made with another token: 403, nothing changed, no token in the log."""
    path, delivery, form = route
    before = snapshot(delivery)
    with caplog.at_level(logging.WARNING, logger="core.webhooks"):
        response = signed_post(client, path, form, token="not-the-token")
    assert_refused(response, delivery, before)
    assert "invalid" in caplog.text
    assert "not-the-token" not in caplog.text
    assert signing_token(client.application.extensions["settings"]) not in caplog.text


def test_tampered_parameter_is_refused(client, route):
    """A valid signature whose form was changed afterwards: 403, nothing changed."""
    path, delivery, form = route
    before = snapshot(delivery)
    settings = client.application.extensions["settings"]
    signature = RequestValidator(signing_token(settings)).compute_signature(
        settings.public_base_url + path, form
    )
    status_key = "CallStatus" if "CallStatus" in form else "MessageStatus"
    tampered = {**form, status_key: "failed"}
    response = client.post(path, data=tampered, headers={"X-Twilio-Signature": signature})
    assert_refused(response, delivery, before)


@pytest.mark.parametrize("change", ["added", "removed"])
def test_added_or_removed_parameter_is_refused(client, route, change):
    """A signed form with a parameter added or removed afterwards: 403, nothing changed."""
    path, delivery, form = route
    before = snapshot(delivery)
    settings = client.application.extensions["settings"]
    signature = RequestValidator(signing_token(settings)).compute_signature(
        settings.public_base_url + path, form
    )
    changed = dict(form)
    if change == "added":
        changed["ErrorCode"] = "30003"
    else:
        del changed["To"]
    response = client.post(path, data=changed, headers={"X-Twilio-Signature": signature})
    assert_refused(response, delivery, before)


@pytest.mark.parametrize(
    "signed_url",
    [
        "http://127.0.0.1:5000/ivr/incoming",  # another path of the same app
        "http://evil.example.com{path}",  # another host
        "https://127.0.0.1:5000{path}",  # another scheme
        "http://127.0.0.1:5000{path}?retry=1",  # another query
    ],
    ids=["other-path", "other-host", "other-scheme", "other-query"],
)
def test_signature_for_another_url_is_refused(client, route, signed_url):
    """A valid signature computed for another URL than the public one: 403, nothing changed."""
    path, delivery, form = route
    before = snapshot(delivery)
    response = signed_post(client, path, form, url=signed_url.format(path=path))
    assert_refused(response, delivery, before)


def test_query_string_is_part_of_the_signed_url(client, route):
    """A request with a query string is valid when signed over the URL with that query."""
    path, _delivery, form = route
    settings = client.application.extensions["settings"]
    url = f"{settings.public_base_url}{path}?attempt=2"
    accepted = signed_post(client, f"{path}?attempt=2", form, url=url)
    assert accepted.status_code == 204
    unsigned_query = signed_post(client, f"{path}?attempt=3", form, url=url)
    assert unsigned_query.status_code == 403


@pytest.mark.app_settings(PUBLIC_BASE_URL="https://plp.example.be")
def test_signature_is_checked_against_the_public_url_behind_a_proxy(client, route):
    """Behind a TLS proxy the app sees http://localhost, but Twilio signed the public URL."""
    path, delivery, form = route
    before = snapshot(delivery)
    seen_by_app = signed_post(client, path, form, url=f"http://localhost{path}")
    assert_refused(seen_by_app, delivery, before)
    public = signed_post(client, path, form, url=f"https://plp.example.be{path}")
    assert public.status_code == 204


@pytest.mark.app_settings(PUBLIC_BASE_URL="https://plp.example.be")
def test_signature_with_the_default_port_is_accepted(client, route):
    """Twilio sometimes signs the URL with the explicit default port; both forms are valid."""
    path, _delivery, form = route
    response = signed_post(client, path, form, url=f"https://plp.example.be:443{path}")
    assert response.status_code == 204


@pytest.mark.app_settings(**{**TWILIO_SETTINGS, "TWILIO_AUTH_TOKEN": f"{NEW_TOKEN},{OLD_TOKEN}"})
@pytest.mark.parametrize("token", [NEW_TOKEN, OLD_TOKEN], ids=["current", "previous"])
def test_every_token_being_rotated_is_accepted(client, route, token):
    """While rotating (TWILIO_AUTH_TOKEN="new,old"), a request signed with either is valid."""
    path, _delivery, form = route
    assert signed_post(client, path, form, token=token).status_code == 204


@pytest.mark.app_settings(**{**TWILIO_SETTINGS, "TWILIO_AUTH_TOKEN": f"{NEW_TOKEN},{OLD_TOKEN}"})
def test_token_outside_the_rotation_is_refused(client, route):
    """A token not in the list, nor the simulator's token, is refused while rotating."""
    path, delivery, form = route
    before = snapshot(delivery)
    settings = client.application.extensions["settings"]
    assert signing_token(settings) == NEW_TOKEN
    assert_refused(signed_post(client, path, form, token="c" * 32), delivery, before)
    simulator = hmac.new(TEST_SECRET.encode(), b"simulator-webhook-token", hashlib.sha256)
    assert_refused(signed_post(client, path, form, token=simulator.hexdigest()), delivery, before)


def test_simulator_token_is_derived_from_the_secret_key(app):
    """With the simulator and no Twilio token, the one token is an HMAC of SECRET_KEY."""
    settings = app.extensions["settings"]
    expected = hmac.new(TEST_SECRET.encode(), b"simulator-webhook-token", hashlib.sha256)
    assert webhook_tokens(settings) == (expected.hexdigest(),)
    assert signing_token(settings) == expected.hexdigest()


@pytest.mark.app_settings(TWILIO_AUTH_TOKEN=f"{NEW_TOKEN},{OLD_TOKEN}")
def test_simulator_signs_with_the_twilio_token_when_one_is_set(app):
    """With the simulator and a Twilio token set, the Twilio tokens are the webhook tokens."""
    settings = app.extensions["settings"]
    assert settings.phone_provider == "simulator"
    assert webhook_tokens(settings) == (NEW_TOKEN, OLD_TOKEN)
    assert signing_token(settings) == NEW_TOKEN


def test_every_twilio_facing_route_is_signed(app, client):
    """Every POST route under /ivr/ and /sms/ refuses an unsigned request with 403."""
    adapter = app.url_map.bind("localhost")
    rules = [
        r
        for r in app.url_map.iter_rules()
        if "POST" in r.methods and r.rule.startswith(("/ivr/", "/sms/"))
    ]
    assert {"/ivr/status", "/sms/status"} <= {r.rule for r in rules}
    for rule in rules:
        url = adapter.build(rule.endpoint, dict.fromkeys(rule.arguments, "1"), method="POST")
        assert client.post(url, data={"CallSid": "x"}).status_code == 403, rule.rule


# --- claim_webhook -----------------------------------------------------------------------


def test_claim_is_granted_once_per_kind_and_sid(app):
    """The first claim of a SID wins, a repeat loses; the same SID of another kind is new."""
    assert claim_webhook("sms", "SM0001") is True
    db.session.commit()
    assert claim_webhook("sms", "SM0001") is False
    assert claim_webhook("call", "SM0001") is True
    db.session.commit()
    assert db.session.query(InboundWebhook).count() == 2


def test_claim_rolls_back_with_the_callers_transaction(app, make_person):
    """A claim whose request fails is undone with it: Twilio's retry is handled again."""
    make_person()  # a committed row, read below: the claim comes after mere SELECTs
    db.session.execute(text("SELECT count(*) FROM person"))
    assert claim_webhook("sms", "SM0002") is True
    db.session.rollback()
    assert db.session.query(InboundWebhook).count() == 0
    assert claim_webhook("sms", "SM0002") is True
    db.session.commit()
    assert db.session.query(InboundWebhook).count() == 1


def test_lost_claim_keeps_the_callers_work(app):
    """A lost claim undoes only itself: the caller's earlier work in the transaction commits."""
    assert claim_webhook("sms", "SM0003") is True
    db.session.commit()
    db.session.add(Person(name="Earlier work", phone="+32470999001", phone_type=PhoneType.MOBILE))
    assert claim_webhook("sms", "SM0003") is False
    db.session.commit()
    assert db.session.query(Person).filter_by(name="Earlier work").count() == 1
    assert db.session.query(InboundWebhook).count() == 1


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_concurrent_claims_have_one_winner(app):
    """Two requests claiming one SID at once on PostgreSQL: exactly one wins."""
    first_claimed, release = threading.Event(), threading.Event()
    results: dict[str, bool] = {}

    def claim(name: str, hold: bool) -> None:
        with app.app_context():
            results[name] = claim_webhook("sms", "SM0004")
            if hold:
                first_claimed.set()
                release.wait(30)
            db.session.commit()

    holder = threading.Thread(target=claim, args=("first", True))
    holder.start()
    assert first_claimed.wait(30)
    contender = threading.Thread(target=claim, args=("second", False))
    contender.start()
    _wait_for_a_blocked_backend()  # the second insert waits on the first's uncommitted row
    release.set()
    holder.join(30)
    contender.join(30)
    assert results == {"first": True, "second": False}
    assert db.session.query(InboundWebhook).count() == 1


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
    pytest.fail("the second claim never waited on the first")
