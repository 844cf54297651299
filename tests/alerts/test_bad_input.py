"""Bad input gets a clear 4xx and changes nothing: odd tokens, out-of-range ids."""

from __future__ import annotations

import logging

import pytest

from alerts.models import Channel
from tests.twilio_payloads import signed_post

TOO_BIG = 2**31  # one past PostgreSQL's integer


@pytest.mark.parametrize("token", ["%00", "abc%0Adef%0AINFO%20forged", "..%2F..%2Fetc", "x" * 80])
def test_a_recording_token_we_never_made_is_a_404_and_logs_nothing(client, caplog, token):
    """NUL, newlines, slashes, overlong: no query, no 503, no forged log line."""
    caplog.set_level(logging.DEBUG)
    response = client.get(f"/media/recordings/{token}")
    assert response.status_code == 404
    assert not [r for r in caplog.records if "forged" in r.getMessage()]


def test_an_alert_call_id_beyond_a_database_integer_is_a_404(client):
    """`/ivr/alert/2147483648` matches no route: 404, never a database error."""
    response = signed_post(client, f"/ivr/alert/{TOO_BIG}", {"CallSid": "CA" + "0" * 32})
    assert response.status_code == 404
    gather = signed_post(client, f"/ivr/alert/{TOO_BIG}/gather", {"Digits": "1"})
    assert gather.status_code == 404
    release = signed_post(client, f"/ivr/release/1/{TOO_BIG}", {"CallSid": "CA" + "0" * 32})
    assert release.status_code == 404


def test_the_largest_id_still_reaches_the_view(client, make_delivery):
    """2**31 - 1 is a valid id: the view answers (an unknown delivery: a TwiML goodbye)."""
    make_delivery(channel=Channel.CALL)
    response = signed_post(client, f"/ivr/alert/{TOO_BIG - 1}", {"CallSid": "CA" + "1" * 32})
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert b"<Hangup" in response.data
