"""The phone provider interface: place a call, send an SMS, fetch a recording or a status.

Two implementations: Twilio (`alerts.delivery.twilio_provider`) and the local carrier
simulator (`simulator.adapters.provider`), each registered by name by `create_app`, the
composition root: this module imports neither. `PHONE_PROVIDER` picks one;
`get_provider()` returns the app's instance, built on first use (never at import time).
Business rules (who is called, when, opt-outs) never live in a provider: it only talks
to the carrier and reports what the carrier said, translating carrier errors into the
domain errors below, whose messages are safe to show to a coordinator or an officer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask import Flask, current_app

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallRequest:
    """An outbound call: the carrier fetches `answer_url` (TwiML) when it is answered."""

    to: str  # E.164
    answer_url: str  # absolute
    status_callback_url: str  # absolute; receives initiated, ringing, answered, completed
    machine_detection: bool = True  # tell a person from an answering machine
    timeout_seconds: int = 30  # ringing time before no-answer


@dataclass(frozen=True)
class SmsRequest:
    """An outbound SMS."""

    to: str  # E.164
    body: str
    status_callback_url: str  # absolute; receives queued, sent, delivered, undelivered


@dataclass(frozen=True)
class Sent:
    """What the carrier answered when it accepted a call or a message."""

    sid: str  # the carrier's id: status callbacks are keyed by it
    status: str  # the carrier's status word ("queued", "accepted", ...)


@dataclass(frozen=True)
class CarrierStatus:
    """Where the carrier says a call or a message stands, in its own words.

    The fields a status callback carries, with the same meaning (`alerts.delivery.status`
    parses both the same way): `status` is Twilio's status word ("in-progress",
    "delivered", ...); `answered_by` and `duration_seconds` concern calls; `error_code`
    and `error_message` mostly messages; `price` is the carrier's text ("-0.00750": what
    we pay, negative), with `price_unit` its currency.
    """

    status: str
    answered_by: str | None = None
    duration_seconds: int | None = None
    price: str | None = None
    price_unit: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class RecordingAudio:
    """A recording's audio, downloaded from the carrier."""

    content: bytes
    content_type: str  # "audio/mpeg", "audio/x-wav"


class ProviderError(Exception):
    """The carrier refused or failed; `message` is safe to show to a user.

    `code` is the carrier's error code when there is one, `retryable` says whether the
    same request may succeed later (rate limit, outage), and `doc_url` points at the
    carrier's page for the code.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        doc_url: str | None = None,
        detail: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.doc_url = doc_url
        self.detail = detail  # the carrier's own words, for the logs; not for users

    def __str__(self) -> str:
        return self.message


class InvalidNumberError(ProviderError):
    """The number does not exist or cannot be dialled: do not try it again."""


class SmsNotSupportedError(ProviderError):
    """The number cannot receive SMS (a landline): reach it by call, never retry the SMS."""


class OptedOutError(ProviderError):
    """The recipient replied STOP to this sender: the carrier blocks SMS to them."""


class RegionNotEnabledError(ProviderError):
    """The account may not call or text this country: a setting for the operator."""


class UndeliverableError(ProviderError):
    """The carrier could not deliver (unreachable handset, unknown destination, blocked)."""


class RateLimitedError(ProviderError):
    """The carrier asks us to slow down: the same request succeeds later."""

    retryable = True


class ProviderUnavailableError(ProviderError):
    """The carrier could not be reached or failed on its side: try again later."""

    retryable = True


class ProviderConfigurationError(ProviderError):
    """The credentials or the sender are wrong: nothing will work until an operator fixes it."""


class UnknownSidError(ProviderError):
    """The carrier knows no call or message by this SID (HTTP 404 on a fetch)."""


class PhoneProvider(Protocol):
    """What the system needs from a carrier."""

    name: str

    def place_call(self, request: CallRequest) -> Sent:
        """Start an outbound call; raise `ProviderError` when the carrier refuses it."""
        ...

    def send_sms(self, request: SmsRequest) -> Sent:
        """Send an SMS; raise `ProviderError` when the carrier refuses it."""
        ...

    def fetch_recording(self, recording_url: str) -> RecordingAudio:
        """Download a recording the carrier made during a call."""
        ...

    def delete_recording(self, recording_sid: str) -> None:
        """Delete the carrier's copy of a recording (one already gone counts as deleted)."""
        ...

    def fetch_call_status(self, sid: str) -> CarrierStatus:
        """Ask the carrier where a call stands; `UnknownSidError` when it knows no such call."""
        ...

    def fetch_message_status(self, sid: str) -> CarrierStatus:
        """Ask the carrier where a message stands; `UnknownSidError` when it knows none."""
        ...

    def find_recent(self, to: str, channel: str, since: datetime) -> list[str]:
        """Return the SIDs of the calls or SMS (`channel`) sent to `to` since `since`, oldest first.

        How the reconciler learns whether a step claimed by a dead worker reached the
        carrier; `ProviderError` when the carrier cannot be asked.
        """
        ...


ProviderFactory = Callable[[Flask], PhoneProvider]
_FACTORIES: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make `PHONE_PROVIDER=name` build its provider with `factory(app)`."""
    _FACTORIES[name] = factory


def get_provider(app: Flask | None = None) -> PhoneProvider:
    """Return the app's phone provider, building it on first use."""
    app = app or current_app._get_current_object()
    provider = app.extensions.get("phone_provider")
    if provider is None:
        name = app.extensions["settings"].phone_provider
        try:
            factory = _FACTORIES[name]
        except KeyError:
            raise ProviderConfigurationError(f"no phone provider named {name!r}") from None
        provider = factory(app)
        app.extensions["phone_provider"] = provider
        log.info("phone provider ready provider=%s", name)
    return provider


def set_provider(app: Flask, provider: PhoneProvider | None) -> None:
    """Install `provider` as the app's carrier (tests install a fake); None resets it."""
    if provider is None:
        app.extensions.pop("phone_provider", None)
    else:
        app.extensions["phone_provider"] = provider
