"""Signed, expiring confirmation links for e-mails."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from alerts.email.links import (
    CONFIRM_SALT,
    ExpiredLinkError,
    InvalidLinkError,
    confirmation_token,
    confirmation_url,
    read_confirmation_token,
)
from core.app import create_app
from tests.support import TEST_SECRET, app_config

DAY = 24 * 3600


@pytest.fixture
def link_app(tmp_path, redis_url):
    """An app (no database needed) whose public URL is a realistic HTTPS address."""
    app = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'links.db'}",
            redis_url,
            PUBLIC_BASE_URL="https://plp.example.be/",
        )
    )
    with app.app_context():
        yield app


def test_token_reads_back_the_alert_and_person(link_app):
    """A fresh token gives back exactly the alert and person it was made for."""
    token = confirmation_token(42, 7)
    assert read_confirmation_token(token, max_age_seconds=DAY) == (42, 7)


def test_tokens_differ_per_person(link_app):
    """Two people of the same alert get different tokens, each reading back to its own."""
    first, second = confirmation_token(42, 7), confirmation_token(42, 8)
    assert first != second
    assert read_confirmation_token(second, max_age_seconds=DAY) == (42, 8)


def test_altered_token_is_invalid(link_app):
    """Changing one character of the signature makes the link invalid."""
    token = confirmation_token(42, 7)
    # A middle character: the last base64 character may carry only padding bits, and
    # changing those can leave the decoded signature the same.
    i = len(token) - 5
    altered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    with pytest.raises(InvalidLinkError, match="not valid"):
        read_confirmation_token(altered, max_age_seconds=DAY)


def test_altered_payload_is_invalid(link_app):
    """Swapping in another person's payload under the original signature is refused."""
    mine = confirmation_token(42, 7)
    theirs = confirmation_token(42, 8)
    forged = theirs.split(".")[0] + "." + ".".join(mine.split(".")[1:])
    with pytest.raises(InvalidLinkError):
        read_confirmation_token(forged, max_age_seconds=DAY)


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "é" * 40])
def test_garbage_is_invalid(link_app, token):
    """Anything that is not a token gets the invalid-link error, never another exception."""
    with pytest.raises(InvalidLinkError):
        read_confirmation_token(token, max_age_seconds=DAY)


def test_token_signed_with_another_key_is_invalid(link_app):
    """A token signed with another secret key is refused."""
    other = URLSafeTimedSerializer("another-secret-key-0123456789", salt=CONFIRM_SALT)
    with pytest.raises(InvalidLinkError):
        read_confirmation_token(other.dumps([42, 7]), max_age_seconds=DAY)


def test_token_signed_for_another_purpose_is_invalid(link_app):
    """A token signed with the app's key but another salt never confirms an alert."""
    other = URLSafeTimedSerializer(TEST_SECRET, salt="reset-pin")
    with pytest.raises(InvalidLinkError):
        read_confirmation_token(other.dumps([42, 7]), max_age_seconds=DAY)


@pytest.mark.parametrize("payload", [[42], [42, 7, 1], ["42", 7], [42, True], {"a": 1}, 42])
def test_signed_payload_of_another_shape_is_invalid(link_app, payload):
    """A genuine signature over anything but two integer ids is refused."""
    serializer = URLSafeTimedSerializer(TEST_SECRET, salt=CONFIRM_SALT)
    with pytest.raises(InvalidLinkError):
        read_confirmation_token(serializer.dumps(payload), max_age_seconds=DAY)


def test_old_token_is_expired(link_app, monkeypatch):
    """A genuine token older than max_age gets the expired-link error."""
    # get_timestamp is itsdangerous's documented hook for the signing time.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 3600)
    token = confirmation_token(42, 7)
    monkeypatch.undo()
    with pytest.raises(ExpiredLinkError, match="expired"):
        read_confirmation_token(token, max_age_seconds=1800)
    assert read_confirmation_token(token, max_age_seconds=2 * 3600) == (42, 7)


def test_confirmation_url_is_public_base_url_plus_token(link_app):
    """The link is PUBLIC_BASE_URL + /confirm/ + a token that reads back."""
    url = confirmation_url(42, 7)
    prefix = "https://plp.example.be/confirm/"
    assert url.startswith(prefix)
    token = url.removeprefix(prefix)
    assert "/" not in token and "?" not in token
    assert read_confirmation_token(token, max_age_seconds=DAY) == (42, 7)
