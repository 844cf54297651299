"""The simulator's transports: signatures the app's real decorator accepts, in process and
over HTTP, and what an unreachable or failing app looks like."""

from __future__ import annotations

import threading
import uuid

import pytest
from flask import Blueprint, Flask, redirect, request
from werkzeug.serving import make_server

from alerts.delivery.provider import set_provider
from alerts.models import Channel, DeliveryStatus
from core.app import create_app
from core.extensions import db
from core.webhooks import signing_token, twilio_signed
from simulator.calls import SIMULATOR_ACCOUNT_SID, CallContext, Pressed
from simulator.clock import InstantClock
from simulator.transport import HttpTransport, TransportError, WsgiTransport
from simulator.twiml import run_call
from tests.support import FakeProvider, app_config, snapshot
from tests.twilio_payloads import PLP_NUMBER, call_status_form


class PressOne:
    """A person who presses 1 at every Gather."""

    def press(self, prompt):
        """Press 1."""
        return "1"

    def record(self, prompt):
        """Say nothing."""
        return None


def signed_twiml_blueprint(confirmations: list[dict]) -> Blueprint:
    """A blueprint of the test's own: an answer URL and its Gather action, both signed."""
    bp = Blueprint("test_ivr", __name__, url_prefix="/test-ivr")

    @bp.post("/answer")
    @twilio_signed
    def answer():
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            '<Gather numDigits="1" action="confirm?lang=fr"><Say>Appuyez sur 1</Say></Gather>'
            "</Response>",
            200,
            {"Content-Type": "text/xml"},
        )

    @bp.post("/confirm")
    @twilio_signed
    def confirm():
        confirmations.append({**request.form, "lang": request.args["lang"]})
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Merci</Say><Hangup/></Response>',
            200,
            {"Content-Type": "text/xml"},
        )

    @bp.route("/moved", methods=["GET", "POST"])
    def moved():
        return redirect("answer", 307)

    return bp


def call_context(to: str) -> CallContext:
    """Return the context of an outbound call from the PLP to `to`."""
    return CallContext(
        sid="CA" + uuid.uuid4().hex,
        account_sid=SIMULATOR_ACCOUNT_SID,
        from_=PLP_NUMBER,
        to=to,
        direction="outbound-api",
    )


# --- In process: WsgiTransport on the real app ------------------------------------------------


def test_wsgi_transport_signature_is_accepted_by_the_app(app, make_delivery):
    """A status callback POSTed through WsgiTransport passes the real decorator and is recorded."""
    delivery = make_delivery(Channel.CALL)
    settings = app.extensions["settings"]
    response = WsgiTransport(app).post(
        settings.public_base_url + "/ivr/status",
        call_status_form(delivery.provider_sid, "ringing", to=delivery.to_address),
    )
    assert response.status == 204
    assert snapshot(delivery)["status"] == DeliveryStatus.RINGING


def test_wsgi_transport_with_a_wrong_token_is_refused(app, make_delivery):
    """Signed with another token, the callback is refused 403 and changes nothing."""
    delivery = make_delivery(Channel.CALL)
    before = snapshot(delivery)
    settings = app.extensions["settings"]
    response = WsgiTransport(app, token="not-the-app-token").post(
        settings.public_base_url + "/ivr/status",
        call_status_form(delivery.provider_sid, "ringing", to=delivery.to_address),
    )
    assert response.status == 403
    assert response.mimetype == "text/plain"
    assert snapshot(delivery) == before


def test_wsgi_transport_runs_a_signed_call_on_the_app(app):
    """A call's answer URL and Gather action both pass the app's real signature check."""
    confirmations: list[dict] = []
    app.register_blueprint(signed_twiml_blueprint(confirmations))
    base_url = app.extensions["settings"].public_base_url
    ctx = call_context("+32470123456")
    outcome = run_call(
        ctx, base_url + "/test-ivr/answer", WsgiTransport(app), PressOne(), InstantClock()
    )
    assert outcome.error is None
    assert Pressed("1") in outcome.events
    assert [(c["Digits"], c["CallSid"], c["lang"]) for c in confirmations] == [("1", ctx.sid, "fr")]


def test_wsgi_transport_maps_urls_under_a_base_with_a_path():
    """With a base URL that has a path, the rest of the URL is the app's path and query."""
    small = Flask("small")
    small.add_url_rule("/hook", "hook", lambda: request.args.get("q", ""), methods=["GET"])
    transport = WsgiTransport(small, base_url="https://example.test/plp/", token="t")
    assert transport.get("https://example.test/plp/hook?q=ok").body == b"ok"


def test_wsgi_transport_refuses_urls_outside_the_app(app):
    """A URL outside the app's public base cannot be reached in process."""
    with pytest.raises(TransportError, match="outside the app"):
        WsgiTransport(app).post("https://elsewhere.example.org/ivr/status", {})


def test_wsgi_transport_needs_base_and_token_for_a_foreign_app():
    """An app without PLP settings must be given its base URL and token."""
    with pytest.raises(ValueError, match="base_url and token"):
        WsgiTransport(Flask("foreign"))


# --- Over HTTP: HttpTransport on the real app served by werkzeug ------------------------------


@pytest.fixture
def served(app, tmp_path, database_url, redis_url):
    """The real app (same database as `app`) served over HTTP, PUBLIC_BASE_URL its own URL."""
    holder: dict[str, Flask] = {}

    def dispatch(environ, start_response):  # the app is built once the port is known
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    served_app = create_app(
        app_config(tmp_path / "served", database_url, redis_url, PUBLIC_BASE_URL=base_url)
    )
    set_provider(served_app, FakeProvider())
    served_app.extensions["test_confirmations"] = confirmations = []
    served_app.register_blueprint(signed_twiml_blueprint(confirmations))
    holder["app"] = served_app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served_app
    server.shutdown()
    thread.join()
    server.server_close()
    with served_app.app_context():
        db.engine.dispose()


def test_http_transport_signature_is_accepted_by_the_served_app(served, make_delivery):
    """A status callback POSTed over HTTP passes the real decorator and is recorded."""
    delivery = make_delivery(Channel.CALL)
    settings = served.extensions["settings"]
    transport = HttpTransport(timeout=10, token=signing_token(settings))
    response = transport.post(
        settings.public_base_url + "/ivr/status",
        call_status_form(delivery.provider_sid, "in-progress", to=delivery.to_address),
    )
    assert response.status == 204
    assert snapshot(delivery)["status"] == DeliveryStatus.IN_PROGRESS


def test_http_transport_with_a_wrong_token_is_refused(served, make_delivery):
    """Over HTTP too, a wrong token is refused 403 and changes nothing."""
    delivery = make_delivery(Channel.CALL)
    before = snapshot(delivery)
    settings = served.extensions["settings"]
    response = HttpTransport(timeout=10, token="not-the-app-token").post(
        settings.public_base_url + "/ivr/status",
        call_status_form(delivery.provider_sid, "ringing", to=delivery.to_address),
    )
    assert response.status == 403
    assert b"Invalid or missing X-Twilio-Signature" in response.body
    assert snapshot(delivery) == before


def test_http_transport_takes_the_current_apps_token(served, make_delivery):
    """Built in the app's context without a token, it signs with the app's signing token."""
    delivery = make_delivery(Channel.CALL)
    settings = served.extensions["settings"]
    with served.app_context():
        transport = HttpTransport(timeout=10)
    response = transport.post(
        settings.public_base_url + "/ivr/status",
        call_status_form(delivery.provider_sid, "ringing", to=delivery.to_address),
    )
    assert response.status == 204


def test_http_transport_runs_a_signed_call_on_the_served_app(served):
    """Over HTTP, a call's answer URL and Gather action pass the real signature check."""
    settings = served.extensions["settings"]
    ctx = call_context("+32470123457")
    outcome = run_call(
        ctx,
        settings.public_base_url + "/test-ivr/answer",
        HttpTransport(timeout=10, token=signing_token(settings)),
        PressOne(),
        InstantClock(),
    )
    assert outcome.error is None
    assert [(c["Digits"], c["CallSid"]) for c in served.extensions["test_confirmations"]] == [
        ("1", ctx.sid)
    ]


def test_http_transport_answers_errors_and_does_not_follow_redirects(served):
    """A 404 is returned as an answer, not raised; a redirect is returned with its Location."""
    base_url = served.extensions["settings"].public_base_url
    transport = HttpTransport(timeout=10, token="t")
    assert transport.get(base_url + "/no-such-page").status == 404
    redirected = transport.post(base_url + "/test-ivr/moved", {})
    assert (redirected.status, redirected.location) == (307, "answer")


def test_interpreter_follows_a_redirect_over_http_signing_the_new_url(served):
    """A 307 from the app is followed by POST to the new URL, which the decorator accepts."""
    settings = served.extensions["settings"]
    outcome = run_call(
        call_context("+32470123458"),
        settings.public_base_url + "/test-ivr/moved",
        HttpTransport(timeout=10, token=signing_token(settings)),
        PressOne(),
        InstantClock(),
    )
    assert outcome.error is None
    assert [c["Digits"] for c in served.extensions["test_confirmations"]] == ["1"]


def test_http_transport_refuses_unreachable_servers():
    """A server that is not there raises TransportError, with the URL."""
    server = make_server("127.0.0.1", 0, lambda environ, start: [])
    port = server.server_port
    server.server_close()  # the port is now closed
    with pytest.raises(TransportError, match=f"127.0.0.1:{port}/x could not be reached"):
        HttpTransport(timeout=5, token="t").post(f"http://127.0.0.1:{port}/x", {})


def test_http_transport_refuses_other_schemes():
    """Only http(s) URLs are requested."""
    with pytest.raises(TransportError, match="not an http"):
        HttpTransport(timeout=5, token="t").get("file:///etc/passwd")
