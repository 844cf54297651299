"""Property: no voice webhook answers a 5xx, whatever Twilio (or a forger with the key) posts.

Every voice URL of the app, with its query (the state the menus carry) drawn at random or
taken from the real menus, and forms with Twilio's fields or garbage, from the PIN-holding
coordinator, a member, an officer or a stranger. A caller always hears something: a 200
answer is TwiML (a <Response> document); a request the app cannot read is a 400; a status
callback is a 204.
"""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.models import AlertOrigin
from alerts.raising import raise_alert
from core.extensions import db
from tests.twilio_payloads import call_sid, signed_post, voice_form

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: CI fails on code, not on luck
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS = [
    "/ivr/incoming",
    "/ivr/incoming/pin",
    "/ivr/incoming/member",
    "/ivr/incoming/menu",
    "/ivr/incoming/recorded",
    "/ivr/incoming/review",
    "/ivr/incoming/urgency",
    "/ivr/incoming/send",
    "/ivr/incoming/pending",
    "/ivr/alert/1",
    "/ivr/alert/1/gather",
    "/ivr/release/1/1",
    "/ivr/release/1/1/gather",
]
STATUS_PATHS = ["/ivr/status", "/ivr/release/status"]
QUERY_KEYS = ["tries", "alert", "recording", "replays", "silences", "delivery", "urgency", "left"]
FIELDS = [
    "CallSid",
    "From",
    "To",
    "Digits",
    "AnsweredBy",
    "RecordingUrl",
    "RecordingSid",
    "RecordingDuration",
    "CallStatus",
    "SpeechResult",
]
DIGITS = st.sampled_from(["", "1", "2", "3", "0", "9", "*", "#", "7351#", "7351", "12", "٣"])


@pytest.fixture
def alerts_1_and_2(world):
    """The rows behind the ids of PATHS: alert 1 awaiting release, alert 2 delivering."""
    # Alert 1 is the release call's; delivery 1 is one of alert 2's steps.
    raise_alert(author=world.officer1, targets=[world.a], text="Vol", origin=AlertOrigin.SMS)
    raise_alert(author=world.coord_a, targets=[world.a], text="Vol", origin=AlertOrigin.SMS)
    db.session.commit()


def query_strings():
    value = st.one_of(st.integers(-5, 10**12).map(str), st.text(max_size=12))
    return st.dictionaries(st.sampled_from(QUERY_KEYS), value, max_size=4).map(
        lambda q: "&".join(f"{k}={v}" for k, v in q.items())
    )


def assert_answered(response) -> None:
    assert response.status_code < 500, response.data[:300]
    if response.status_code == 200:
        root = ElementTree.fromstring(response.data)
        assert root.tag == "Response"


@PROPERTY
@given(
    call=st.tuples(
        st.sampled_from(PATHS),
        query_strings(),
        st.sampled_from(["coord_a", "member_a", "officer1", "stranger"]),
        DIGITS,
        st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=60), max_size=4),
    )
)
def test_no_voice_request_is_a_server_error(client, world, alerts_1_and_2, call):
    """Known callers, real and random menu state, any keys and fields: TwiML or a 400."""
    path, query, caller, digits, extra = call
    phone = "+32499000000" if caller == "stranger" else getattr(world, caller).phone
    form = {**voice_form(phone), "Digits": digits, **extra}
    url = f"{path}?{query}" if query else path
    assert_answered(signed_post(client, url, form))


@PROPERTY
@given(
    path=st.sampled_from(PATHS + STATUS_PATHS),
    form=st.dictionaries(
        st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)), st.text(max_size=300), max_size=8
    ),
)
def test_no_form_is_a_server_error(client, world, alerts_1_and_2, path, form):
    """Missing fields, arbitrary Unicode, unknown keys: never a 5xx."""
    assert_answered(signed_post(client, path, form))


@pytest.mark.parametrize("path", PATHS)
def test_a_huge_digits_field_is_answered(client, world, alerts_1_and_2, path):
    """A 100 kB Digits field (a forger's, or a broken proxy's) is answered, not a 5xx."""
    form = {**voice_form(world.coord_a.phone, call_sid()), "Digits": "1" * 100_000}
    assert_answered(signed_post(client, path, form))
