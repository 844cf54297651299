"""What the app lends the simulator's core: its Redis, its webhook token, and its rules.

The core (`simulator.config.Wiring`) imports nothing of the app; `create_app` calls
`wire(app)` so that the one implementation of each rule stays the app's: the roster's
reading of a number (a landline gets calls, no SMS) and the SMS segment count.
"""

from __future__ import annotations

from functools import partial

from flask import Flask

from alerts.models import PhoneType
from alerts.people.phones import PhoneNumberError, parse_phone
from alerts.sms.segments import sms_length
from core.extensions import redis_connection
from core.webhooks import signing_token
from simulator import config


def wire(app: Flask) -> None:
    """Lend the simulator `app`'s Redis, webhook signing token and rules."""
    config.install(
        app,
        config.Wiring(
            redis=partial(redis_connection, app),
            # Read when signing, not now: the settings are the app's at that moment.
            signing_token=lambda: signing_token(app.extensions["settings"]),
            is_landline=is_landline,
            sms_segments=sms_segments,
        ),
    )


def is_landline(number: str) -> bool:
    """Tell whether the roster reads `number` as a landline (an unreadable one is not)."""
    try:
        return parse_phone(number).kind == PhoneType.FIXED
    except PhoneNumberError:
        return False


def sms_segments(body: str) -> int:
    """Return how many segments the carrier bills `body` as."""
    return sms_length(body).segments
