"""The dev phone page at /simulator: roster phones, live state, actions, recordings."""

from __future__ import annotations

import json
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Response, request
from sqlalchemy import select

from alerts.models import (
    AckChannel,
    Acknowledgement,
    Membership,
    Officer,
    Partnership,
    Person,
    PhoneType,
    Role,
    Zone,
)
from core.extensions import db
from simulator import behaviour, carrier, config, people, store
from simulator.adapters import views
from simulator.behaviour import Behaviour
from tests.support import TWILIO_SETTINGS
from tests.twilio_payloads import call_sid, message_sid

ORIGIN = "http://localhost"  # the test client's host
SIMULATED_PLP = "+3225550100"


class _PageParser(HTMLParser):
    """Collect the phone cards (data-number) and the embedded initial state."""

    def __init__(self):
        super().__init__()
        self.numbers: list[str] = []
        self.state_json = ""
        self._in_state = False
        self._in_template = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "template":
            self._in_template += 1
        if tag == "li" and "phone" in (attrs.get("class") or "").split() and not self._in_template:
            self.numbers.append(attrs["data-number"])
        self._in_state = tag == "script" and attrs.get("id") == "initial-state"

    def handle_endtag(self, tag):
        if tag == "template":
            self._in_template -= 1
        if tag == "script":
            self._in_state = False

    def handle_data(self, data):
        if self._in_state:
            self.state_json += data


def parse_page(response) -> _PageParser:
    """Parse the page's phone cards and initial state."""
    parser = _PageParser()
    parser.feed(response.get_data(as_text=True))
    return parser


def post(client, path: str, data, *, origin: str | None = ORIGIN, **headers):
    """POST JSON to a page action, from the page's own origin unless told otherwise."""
    if origin is not None:
        headers["Origin"] = origin
    return client.post(f"/simulator{path}", json=data, headers=headers)


def recording_sid() -> str:
    """Return a new recording SID, shaped as Twilio's."""
    return "RE" + uuid.uuid4().hex


def outbound_call(to: str, status: str = "in-progress", **fields) -> dict:
    """Store an outbound call to `to` as the carrier records one; return its record."""
    record = {
        "sid": call_sid(),
        "direction": "outbound-api",
        "from": SIMULATED_PLP,
        "to": to,
        "status": status,
        "started_at": "2025-01-01T20:00:00Z",
        **fields,
    }
    store.save_call(record)
    return record


def inbound_message(from_: str, body: str = "1") -> dict:
    """Store an SMS from `from_` to the PLP number; return its record."""
    record = {
        "sid": message_sid(),
        "direction": "inbound",
        "from": from_,
        "to": SIMULATED_PLP,
        "body": body,
        "status": "received",
    }
    store.add_message(record)
    return record


@pytest.fixture
def roster(make_plp, make_person):
    """A PLP with a coordinator (two numbers), a member on a landline, and an officer."""
    plp = make_plp("PLP-PARC")
    coordinator = make_person(
        "Claire Janssens", "+32470990002", phone2="+32471990002", phone2_type=PhoneType.MOBILE
    )
    member = make_person("Pierre Dupont", "+3225110107", phone_type=PhoneType.FIXED)
    officer = make_person("Marc Dubois", "+32470990001")
    db.session.add_all(
        [
            Membership(person_id=coordinator.id, partnership_id=plp.id, role=Role.COORDINATOR),
            Membership(person_id=member.id, partnership_id=plp.id, role=Role.MEMBER),
            Officer(person_id=officer.id, zone_id=plp.zone_id),
        ]
    )
    db.session.commit()
    return {"coordinator": coordinator, "member": member, "officer": officer, "plp": plp}


# --- The page ----------------------------------------------------------------------------


def test_page_lists_every_roster_phone(client, roster):
    """The page has a card for each roster phone (first and second numbers) with name and PLP."""
    response = client.get("/simulator")

    assert response.status_code == 200
    page = parse_page(response)
    assert page.numbers == ["+32470990002", "+32471990002", "+32470990001", "+3225110107"]
    text = response.get_data(as_text=True)
    assert "Claire Janssens" in text
    assert "PLP-PARC · coordinator" in text
    assert "officer · ZP5344" in text
    state = json.loads(page.state_json)
    cards = {phone["number"]: phone for phone in state["phones"]}
    assert cards["+32471990002"]["line"] == "phone2"
    assert cards["+3225110107"]["phone_type"] == "fixed"
    assert cards["+32470990002"]["plps"] == [{"code": "PLP-PARC", "role": "coordinator"}]


def test_page_says_the_plp_number_is_simulated_when_unset(client):
    """Without TWILIO_FROM_NUMBER the page names the simulated PLP number and says so."""
    text = client.get("/simulator").get_data(as_text=True)

    assert SIMULATED_PLP in text
    assert "TWILIO_FROM_NUMBER</code> is not set" in text


@pytest.mark.app_settings(TWILIO_FROM_NUMBER="+3223150100")
def test_page_uses_the_configured_plp_number(client):
    """With TWILIO_FROM_NUMBER set, that is the PLP number the page shows."""
    text = client.get("/simulator").get_data(as_text=True)

    assert "+3223150100" in text
    assert SIMULATED_PLP not in text
    assert "is not set" not in text


def test_page_lists_numbers_the_store_has_seen(client, roster):
    """A number outside the roster that called or texted gets its own card, after the roster."""
    inbound_message("+32499123456", "ALERTE 1234 PLP-PARC test")

    page = parse_page(client.get("/simulator"))

    assert page.numbers[-1] == "+32499123456"
    unknown = json.loads(page.state_json)["phones"][-1]
    assert unknown["role"] == "unknown"
    assert unknown["messages"][0]["body"] == "ALERTE 1234 PLP-PARC test"


def test_page_links_its_script_and_stylesheet(client):
    """The page's JS and CSS are served by the blueprint itself (no external resources)."""
    text = client.get("/simulator").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', text)

    local = [url for url in assets if url.startswith("/simulator/static/")]
    assert sorted(url.rsplit(".", 1)[-1] for url in local) == ["css", "js"]
    assert not [url for url in assets if "//" in url]
    for url in local:
        with client.get(url) as response:
            assert response.status_code == 200


def test_behaviour_kinds_are_the_peoples_kinds():
    """The page offers exactly the behaviours a simulated person can have."""
    assert set(views.BEHAVIOUR_KINDS) == behaviour.KINDS
    assert len(views.BEHAVIOUR_KINDS) == len(behaviour.KINDS)


# --- Live state --------------------------------------------------------------------------


def test_state_returns_the_snapshot_with_the_roster(client, roster):
    """The state holds every phone with its behaviour, calls (with events) and messages."""
    call = outbound_call("+32470990002")
    store.add_call_event(
        call["sid"],
        {"kind": "said", "text": "Alerte", "voice": "Polly.Lea", "language": "fr-FR", "loop": 1},
    )
    inbound_message("+32470990002", "1")

    response = client.get("/simulator/state")

    assert response.status_code == 200
    state = response.get_json()
    assert state["changed"] is True
    assert state["version"] == store.version()
    assert state["plp_number"] == SIMULATED_PLP
    claire = next(p for p in state["phones"] if p["number"] == "+32470990002")
    assert claire["name"] == "Claire Janssens"
    assert [c["sid"] for c in claire["calls"]] == [call["sid"]]
    assert claire["calls"][0]["live"] is True
    assert claire["calls"][0]["events"][0]["text"] == "Alerte"
    assert [m["body"] for m in claire["messages"]] == ["1"]
    assert claire["behaviour"]["explicit"] is False
    drawn = behaviour.mixed_behaviour("+32470990002", config.wiring().is_landline)
    assert claire["behaviour"]["kind"] == drawn.kind


def test_state_since_the_current_version_says_nothing_changed(client, roster):
    """Polling with the current version answers `changed: false` without the snapshot."""
    outbound_call("+32470990002")
    current = store.version()

    response = client.get(f"/simulator/state?since={current}")

    assert response.status_code == 200
    assert response.get_json() == {"changed": False, "version": current}


def test_state_since_an_older_version_returns_the_snapshot(client, roster):
    """After a write, polling with the previous version returns the new state."""
    before = store.version()
    outbound_call("+32470990002", status="ringing")

    state = client.get(f"/simulator/state?since={before}").get_json()

    assert state["changed"] is True
    assert state["version"] > before
    claire = next(p for p in state["phones"] if p["number"] == "+32470990002")
    assert claire["calls"][0]["status"] == "ringing"


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "", "²", "9" * 40])
def test_state_refuses_a_malformed_version(client, since):
    """A `since` that is not a version number is refused with 400 and a reason."""
    response = client.get(f"/simulator/state?since={since}")

    assert response.status_code == 400
    assert "since" in response.get_json()["error"]


# --- Actions -----------------------------------------------------------------------------


def test_set_behaviour_stores_it(client, roster):
    """Setting a behaviour stores its kind and keys, keeping the number's other traits."""
    number = "+32470990002"
    mixed = behaviour.mixed_behaviour(number, config.wiring().is_landline)

    response = post(
        client, "/behaviour", {"number": number, "kind": "interactive", "keys": "1234 1"}
    )

    assert response.status_code == 200
    assert store.get_behaviour(number) == Behaviour(
        "interactive",
        answer_after=mixed.answer_after,
        keys=("1234", "1"),
        sms_reply=mixed.sms_reply,
        reply_after=mixed.reply_after,
    )
    phone = next(
        p for p in client.get("/simulator/state").get_json()["phones"] if p["number"] == number
    )
    assert phone["behaviour"]["kind"] == "interactive"
    assert phone["behaviour"]["explicit"] is True


def test_set_behaviour_sets_and_clears_the_sms_reply(client):
    """`sms_reply` sets what the phone texts back; an empty one means no reply."""
    number = "+32470990077"
    post(client, "/behaviour", {"number": number, "kind": "answer", "sms_reply": "OK merci"})
    assert store.get_behaviour(number).sms_reply == "OK merci"

    post(client, "/behaviour", {"number": number, "kind": "answer", "sms_reply": ""})
    assert store.get_behaviour(number).sms_reply is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"number": "+32470990002", "kind": "sings"}, "kind"),
        ({"number": "0470990002", "kind": "busy"}, "number"),
        ({"number": 32470990002, "kind": "busy"}, "number"),
        ({"number": "+32470990002", "kind": "busy", "keys": "1a"}, "keys"),
        ({"number": "+32470990002", "kind": "busy", "keys": 1}, "keys"),
        ({"number": "+32470990002", "kind": "busy", "sms_reply": "   "}, "sms_reply"),
        ({"number": "+32470990002", "kind": "busy", "sms_reply": 5}, "sms_reply"),
        (["+32470990002", "busy"], "JSON object"),
    ],
)
def test_set_behaviour_refuses_bad_input(client, data, reason):
    """A bad behaviour is refused with 400 naming the problem, and nothing is stored."""
    response = post(client, "/behaviour", data)

    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert store.get_behaviour("+32470990002") is None


def test_set_behaviour_refuses_a_form_post(client):
    """Actions take JSON only: a plain form post (what a cross-site form sends) is refused."""
    response = client.post(
        "/simulator/behaviour",
        data={"number": "+32470990002", "kind": "busy"},
        headers={"Origin": ORIGIN},
    )

    assert response.status_code == 400
    assert store.get_behaviour("+32470990002") is None


def test_press_keys_on_a_live_call_reaches_the_call(client):
    """Keys pressed on a live call are queued for the call's next Gather."""
    call = outbound_call("+32470990002", status="in-progress")

    response = post(client, "/keys", {"call_sid": call["sid"], "digits": "12#"})

    assert response.status_code == 200
    assert store.pop_keys(call["sid"], 0) == "12#"


def test_press_keys_on_an_ended_call_is_refused(client):
    """Keys for a call that is over are refused with 409, and not queued."""
    call = outbound_call("+32470990002", status="completed")

    response = post(client, "/keys", {"call_sid": call["sid"], "digits": "1"})

    assert response.status_code == 409
    assert "over" in response.get_json()["error"]
    assert store.pop_keys(call["sid"], 0) is None


def test_press_keys_on_an_unknown_call_is_refused(client):
    """Keys for a call the store does not know are refused with 404."""
    response = post(client, "/keys", {"call_sid": call_sid(), "digits": "1"})

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"call_sid": "CA123", "digits": "1"}, "call_sid"),
        ({"call_sid": "SM" + "a" * 32, "digits": "1"}, "call_sid"),
        ({"digits": "1"}, "call_sid"),
        ({"call_sid": "CA" + "a" * 32, "digits": ""}, "digits"),
        ({"call_sid": "CA" + "a" * 32, "digits": "1x"}, "digits"),
        ({"call_sid": "CA" + "a" * 32, "digits": "1" * 33}, "digits"),
    ],
)
def test_press_keys_refuses_bad_input(client, data, reason):
    """Malformed keys or call SIDs are refused with 400 naming the field."""
    response = post(client, "/keys", data)

    assert response.status_code == 400
    assert reason in response.get_json()["error"]


@pytest.fixture
def carrier_calls(monkeypatch):
    """Replace the carrier's inbound functions where the page uses them; record the calls."""
    calls = []

    def fake_sms(from_, body):
        calls.append(("sms", from_, body))
        return message_sid()

    def fake_call(from_, to):
        calls.append(("call", from_, to))
        return call_sid()

    monkeypatch.setattr(views, "inbound_sms", fake_sms)
    monkeypatch.setattr(views, "inbound_call", fake_call)
    return calls


def test_send_sms_hands_it_to_the_carrier(client, carrier_calls):
    """Texting the PLP number as any number goes through the carrier's inbound SMS."""
    response = post(
        client, "/sms", {"from": "+32470990001", "body": "ALERTE 4829 DEMO Cambriolage"}
    )

    assert response.status_code == 202
    assert carrier_calls == [("sms", "+32470990001", "ALERTE 4829 DEMO Cambriolage")]
    answer = response.get_json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", answer["sid"])
    assert (answer["from"], answer["to"]) == ("+32470990001", SIMULATED_PLP)


def test_call_plp_hands_it_to_the_carrier(client, carrier_calls):
    """Calling the PLP number as any number goes through the carrier's inbound call."""
    response = post(client, "/call", {"from": "+32470990002"})

    assert response.status_code == 202
    assert carrier_calls == [("call", "+32470990002", SIMULATED_PLP)]
    assert re.fullmatch(r"CA[0-9a-f]{32}", response.get_json()["call_sid"])


@pytest.mark.parametrize(
    ("path", "data", "reason"),
    [
        ("/sms", {"from": "+32470990002", "body": ""}, "body"),
        ("/sms", {"from": "+32470990002", "body": "   "}, "body"),
        ("/sms", {"from": "+32470990002", "body": "x" * 1601}, "body"),
        ("/sms", {"from": "+32470990002"}, "body"),
        ("/sms", {"from": "not a number", "body": "1"}, "from"),
        ("/sms", {"from": SIMULATED_PLP, "body": "1"}, "PLP number itself"),
        ("/call", {}, "from"),
        ("/call", {"from": SIMULATED_PLP}, "PLP number itself"),
    ],
)
def test_inbound_actions_refuse_bad_input(client, carrier_calls, path, data, reason):
    """A bad SMS or call request is refused with 400 and never reaches the carrier."""
    response = post(client, path, data)

    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert carrier_calls == []


# --- Through the real carrier --------------------------------------------------------------


def twiml(xml: str) -> Response:
    """Answer TwiML as the app does."""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?>{xml}', mimetype="text/xml")


@pytest.fixture
def plp_webhooks(app):
    """The PLP number's real webhooks, wrapped to keep each form the carrier posted them.

    Returns what /sms/incoming and /ivr/incoming received, signed by the simulator as
    Twilio signs (the real views refuse anything else).
    """
    received: dict[str, list[dict]] = {"sms": [], "calls": []}
    for endpoint, kind in (("messaging.incoming_sms", "sms"), ("ivr.incoming_call", "calls")):
        view = app.view_functions[endpoint]

        def recorded(*args, _view=view, _kind=kind, **kwargs):
            received[_kind].append(request.form.to_dict())
            return _view(*args, **kwargs)

        app.view_functions[endpoint] = recorded
    yield received
    network = app.extensions.get("simulator_network")
    if network is not None:
        network.close()


def make_person_with(phone: str) -> Person:
    """A member of a PLP with the phone number `phone` (committed)."""
    zone = Zone(code="ZP5345", name="Zone Page")
    plp = Partnership(code="PLP-PAGE", name="Page", zone=zone, language="fr", charter_json={})
    person = Person(name="Membre", phone=phone, phone_type=PhoneType.MOBILE, language="fr")
    db.session.add_all([zone, plp, person, Membership(person=person, partnership=plp)])
    db.session.commit()
    return person


def carry_everything(app) -> None:
    """Wait until the carrier's threads have carried every call and message to its end."""
    assert carrier.network(app).wait_idle(timeout=60)


def test_send_sms_reaches_the_app_through_the_real_carrier(app, client, plp_webhooks):
    """An SMS sent from the page reaches /sms/incoming signed, and the app's reply shows
    (a number the app does not know gets the generic refusal, which names nothing)."""
    response = post(client, "/sms", {"from": "+32470990001", "body": "STATUT T001"})
    assert response.status_code == 202
    carry_everything(app)

    [form] = plp_webhooks["sms"]
    assert (form["From"], form["To"], form["Body"]) == (
        "+32470990001",
        SIMULATED_PLP,
        "STATUT T001",
    )
    assert form["MessageSid"] == response.get_json()["sid"]
    phone = next(
        p
        for p in client.get("/simulator/state").get_json()["phones"]
        if p["number"] == "+32470990001"
    )
    assert [m["direction"] for m in phone["messages"]] == ["inbound", "outbound"]
    assert phone["messages"][0]["status"] == "received"
    reply = phone["messages"][1]["body"]
    assert reply and "T001" not in reply


def test_call_plp_and_press_keys_through_the_real_carrier(client, plp_webhooks, make_delivery):
    """A member calls the PLP number from the page, hears the running alert sent to them,
    and the 1 pressed on the page confirms it through the app's real IVR."""
    delivery = make_delivery(person=make_person_with("+32470990002"))
    alert, member = delivery.alert, delivery.person
    response = post(client, "/call", {"from": "+32470990002"})
    assert response.status_code == 202
    sid = response.get_json()["call_sid"]

    assert post(client, "/keys", {"call_sid": sid, "digits": "1"}).status_code == 200
    carry_everything(client.application)

    assert [form["CallSid"] for form in plp_webhooks["calls"]] == [sid]
    call = store.get_call(sid)
    assert (call["direction"], call["status"], call["live"]) == ("inbound", "completed", False)
    assert [e["digits"] for e in call["events"] if e["kind"] == "pressed"] == ["1"]
    db.session.expire_all()
    [ack] = db.session.scalars(select(Acknowledgement)).all()
    assert (ack.alert_id, ack.person_id, ack.channel) == (
        alert.id,
        member.id,
        AckChannel.INBOUND_CALL,
    )
    assert post(client, "/keys", {"call_sid": sid, "digits": "1"}).status_code == 409


# --- Same origin -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost.evil.example"},
        {"Referer": "http://evil.example/simulator"},
        {},
    ],
)
def test_cross_origin_actions_are_refused(client, carrier_calls, headers):
    """An action without this site's Origin (or Referer) is refused with 403, changing nothing."""
    number = "+32470990002"
    for path, data in (
        ("/behaviour", {"number": number, "kind": "busy"}),
        ("/sms", {"from": number, "body": "STOP"}),
        ("/call", {"from": number}),
    ):
        response = post(client, path, data, origin=None, **headers)
        assert response.status_code == 403
        assert "Cross-origin" in response.get_json()["error"]
    assert store.get_behaviour(number) is None
    assert carrier_calls == []


def test_same_origin_referer_is_accepted(client):
    """Without an Origin header, a Referer from this site is enough."""
    response = post(
        client,
        "/behaviour",
        {"number": "+32470990002", "kind": "busy"},
        origin=None,
        Referer=f"{ORIGIN}/simulator",
    )

    assert response.status_code == 200
    assert store.get_behaviour("+32470990002").kind == "busy"


@pytest.mark.parametrize(
    "origin",
    [
        "https://plp.example.be",  # the public URL: a tunnel or proxy in front of the page
        "http://127.0.0.1",  # loopback, but not the origin the page was loaded from
        "http://localhost:5001",
    ],
)
@pytest.mark.app_settings(PUBLIC_BASE_URL="https://plp.example.be")
def test_only_the_pages_own_loopback_origin_is_accepted(client, carrier_calls, origin):
    """An Origin other than the page's own (http://localhost here) is refused, changing nothing."""
    version = store.version()
    for path, data in (
        ("/behaviour", {"number": "+32470990002", "kind": "busy"}),
        ("/sms", {"from": "+32470990002", "body": "1"}),
    ):
        response = post(client, path, data, origin=origin)
        assert response.status_code == 403
        assert "Cross-origin" in response.get_json()["error"]
    assert store.version() == version
    assert carrier_calls == []


# --- Loopback only ------------------------------------------------------------------------


def every_route(sid: str) -> list[tuple[str, str, dict | None]]:
    """Return each of the page's routes as (method, path, JSON body), static files included."""
    return [
        ("GET", "/simulator", None),
        ("GET", "/simulator/state", None),
        ("GET", "/simulator/state?since=0", None),
        ("GET", "/simulator/static/simulator/page.js", None),
        ("GET", f"/simulator/recordings/{sid}.wav", None),
        ("POST", "/simulator/behaviour", {"number": "+32470990002", "kind": "busy"}),
        ("POST", "/simulator/keys", {"call_sid": "CA" + "0" * 32, "digits": "1"}),
        ("POST", "/simulator/sms", {"from": "+32470990002", "body": "1"}),
        ("POST", "/simulator/call", {"from": "+32470990002"}),
    ]


def request_route(client, method, path, data, *, base_url=None, origin=None, environ_base=None):
    """Send one route's request, its Origin that of `base_url` (the page's own) by default."""
    base_url = base_url or "http://localhost"
    headers = {"Origin": origin or base_url} if method == "POST" else {}
    return client.open(
        path,
        method=method,
        json=data,
        headers=headers,
        base_url=base_url,
        environ_base=environ_base or {},
    )


@pytest.mark.parametrize(
    "remote_addr", ["10.1.2.3", "192.168.1.20", "2001:db8::7", "", "::ffff:10.1.2.3"]
)
def test_a_client_off_this_machine_is_refused_everywhere(
    client, roster, recording, carrier_calls, remote_addr
):
    """Every route, the JSON state included, answers 403 off loopback; nothing changes."""
    sid, _content = recording
    live = outbound_call("+32470990002")
    version = store.version()
    for method, path, body in every_route(sid):
        data = {**body, "call_sid": live["sid"]} if path.endswith("/keys") else body
        response = request_route(
            client, method, path, data, environ_base={"REMOTE_ADDR": remote_addr}
        )
        assert response.status_code == 403, path
        assert response.get_json() == {
            "error": "The simulator page answers only on this machine (loopback)."
        }
        assert b"Claire Janssens" not in response.data
    assert store.version() == version
    assert store.get_behaviour("+32470990002") is None
    assert carrier_calls == []


@pytest.mark.parametrize(
    "base_url",
    [
        "http://evil.example",
        "http://evil.example:5000",
        "http://localhost.evil.example:5000",
        "http://127.0.0.1.nip.io:5000",
        "http://[::2]:5000",
        "http://10.0.0.5:5000",
    ],
)
def test_a_foreign_host_is_refused_everywhere(client, roster, recording, carrier_calls, base_url):
    """DNS rebinding: a request for another host name is refused even with a matching Origin."""
    sid, _content = recording
    version = store.version()
    for method, path, data in every_route(sid):
        response = request_route(client, method, path, data, base_url=base_url)
        assert response.status_code == 403, path
        assert response.get_json() == {
            "error": "The simulator page answers only at localhost, 127.0.0.1 or [::1]."
        }
    assert store.version() == version
    assert carrier_calls == []


@pytest.mark.parametrize(
    ("remote_addr", "base_url"),
    [
        ("127.0.0.1", "http://localhost"),
        ("127.0.0.5", "http://127.0.0.1:5000"),
        ("::1", "http://[::1]:5000"),
        ("::ffff:127.0.0.1", "http://LOCALHOST:5000"),
    ],
)
def test_loopback_clients_and_hosts_still_work(client, roster, remote_addr, base_url):
    """From loopback, at a loopback host, the page, its state and same-origin actions work."""
    environ_base = {"REMOTE_ADDR": remote_addr}
    for path in ("/simulator", "/simulator/state", "/simulator/static/simulator/page.js"):
        with request_route(
            client, "GET", path, None, base_url=base_url, environ_base=environ_base
        ) as response:
            assert response.status_code == 200, path
    response = request_route(
        client,
        "POST",
        "/simulator/behaviour",
        {"number": "+32470990002", "kind": "busy"},
        base_url=base_url,
        environ_base=environ_base,
    )
    assert response.status_code == 200
    assert store.get_behaviour("+32470990002").kind == "busy"


# --- Recordings --------------------------------------------------------------------------


@pytest.fixture
def recording(app) -> tuple[str, bytes]:
    """A recording file where the carrier keeps them; return its SID and content."""
    sid = recording_sid()
    directory = Path(app.instance_path) / "simulator" / "recordings"
    directory.mkdir(parents=True, exist_ok=True)
    content = people.spoken_audio(0.2)
    (directory / f"{sid}.wav").write_bytes(content)
    return sid, content


@pytest.mark.parametrize("suffix", [".wav", ""])
def test_recordings_are_served(client, recording, suffix):
    """A recording is served as WAV, with or without the extension (as Twilio serves it)."""
    sid, content = recording

    with client.get(f"/simulator/recordings/{sid}{suffix}") as response:
        assert response.status_code == 200
        assert response.mimetype == "audio/x-wav"
        assert response.data == content


@pytest.mark.parametrize(
    "name",
    [
        "RE" + "0" * 32 + ".wav",  # well formed, but no such file
        "RE" + "A" * 32 + ".wav",
        "RE" + "0" * 31 + ".wav",
        "CA" + "0" * 32 + ".wav",
        "{sid}.mp3",
        "{sid}.wav.wav",
        "..%2Fsecret_key",
        "%2e%2e%2f%2e%2e%2fsecret_key",
        "..%2F..%2Fsecret_key",
        "{sid}.wav%2F..%2F..%2F..%2Fsecret_key",
    ],
)
def test_recordings_refuse_anything_but_a_recording_sid(client, recording, name):
    """Only RE + 32 hex (+ .wav) names an existing file: anything else, traversal included, 404."""
    sid, _content = recording

    response = client.get(f"/simulator/recordings/{name.format(sid=sid)}")

    assert response.status_code == 404
    assert client.application.config["SECRET_KEY"].encode() not in response.data


# --- Only with the simulator -------------------------------------------------------------


@pytest.mark.app_settings(**TWILIO_SETTINGS)
def test_page_does_not_exist_with_twilio(app, client):
    """With Twilio as carrier there is no /simulator at all: every URL answers 404."""
    assert "simulator" not in app.blueprints
    assert client.get("/simulator").status_code == 404
    assert client.get("/simulator/state").status_code == 404
    response = post(
        client,
        "/behaviour",
        {"number": "+32470990002", "kind": "busy"},
        origin="https://plp.example.be",
    )
    assert response.status_code == 404
