"""Signed, expiring links: one click in an e-mail confirms an alert for one person.

A token carries (alert id, person id) and the time it was made, signed with the app's
`SECRET_KEY` by itsdangerous. Anyone holding the link can confirm for that person, which
is the point of a one-click link; nobody can forge one for someone else. Expiry is the
reader's choice (`max_age_seconds`), so a policy change applies to links already sent.
Whether a link was already used is not the token's business: the acknowledgement is
unique per alert and person.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

CONFIRM_SALT = "confirm-alert"  # a token signed for another purpose never confirms an alert
CONFIRM_PATH = "/confirm/"


class LinkError(ValueError):
    """A confirmation link that cannot be used; the message is safe to show to its holder."""


class InvalidLinkError(LinkError):
    """The link was altered, truncated, or signed with another key or for another purpose."""


class ExpiredLinkError(LinkError):
    """The link is genuine but older than allowed."""


def _serializer() -> URLSafeTimedSerializer:
    secret_key = current_app.extensions["settings"].secret_key
    return URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT)


def confirmation_token(alert_id: int, person_id: int) -> str:
    """Return a URL-safe signed token that confirms `alert_id` for `person_id`."""
    return _serializer().dumps([alert_id, person_id])


def read_confirmation_token(token: str, max_age_seconds: int) -> tuple[int, int]:
    """Return (alert_id, person_id) from a token, or raise `InvalidLinkError`/`ExpiredLinkError`."""
    try:
        payload = _serializer().loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        # Checked before BadData, its base class: a genuine old link gets its own answer.
        raise ExpiredLinkError("this confirmation link has expired") from None
    except BadData:
        raise InvalidLinkError("this confirmation link is not valid") from None
    # A correctly signed payload of another shape can only come from our own bug, but a
    # link handler must never turn it into a server error.
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not all(type(value) is int for value in payload)
    ):
        raise InvalidLinkError("this confirmation link is not valid")
    alert_id, person_id = payload
    return alert_id, person_id


def confirmation_url(alert_id: int, person_id: int) -> str:
    """Return the absolute link that confirms `alert_id` for `person_id` in one click."""
    base_url = current_app.extensions["settings"].public_base_url
    return base_url + CONFIRM_PATH + confirmation_token(alert_id, person_id)
