"""What every Twilio-facing route shares: the signature check and webhook deduplication.

Twilio signs each webhook with an account Auth Token over the URL it requested and the
posted form (`X-Twilio-Signature`). The URL is the public one (`PUBLIC_BASE_URL`): behind
a proxy or TLS terminator the app itself sees another host and scheme. Several tokens are
accepted so that a token can be rotated without refusing webhooks in flight. With the
simulator as carrier and no Twilio token, the token is derived from `SECRET_KEY`, and the
simulator signs exactly as Twilio does with it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime

from flask import current_app, request
from sqlalchemy import String, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from core.clock import UTCDateTime, utcnow
from core.extensions import db
from core.queue import savepoint
from core.settings import Settings

log = logging.getLogger(__name__)

_SIMULATOR_TOKEN_LABEL = b"simulator-webhook-token"


class InboundWebhook(db.Model):
    """A provider webhook already handled, by its SID: Twilio's retries change nothing twice."""

    __tablename__ = "inbound_webhook"
    __table_args__ = (UniqueConstraint("kind", "sid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "sms", "call", "recording"
    sid: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MalformedWebhook(ValueError):  # noqa: N818 (reads as what it is: a webhook, malformed)
    """A signed webhook whose form cannot be understood; the message says what is wrong."""


def webhook_tokens(settings: Settings) -> tuple[str, ...]:
    """Return the tokens a webhook may be signed with, the current one first."""
    if settings.twilio_auth_tokens:
        return settings.twilio_auth_tokens
    if settings.phone_provider == "simulator":
        return (_simulator_token(settings.secret_key),)
    return ()


def signing_token(settings: Settings) -> str:
    """Return the token the carrier signs webhooks with (the simulator uses it)."""
    tokens = webhook_tokens(settings)
    if not tokens:
        raise RuntimeError("no webhook token: set TWILIO_AUTH_TOKEN")
    return tokens[0]


def requested_url(settings: Settings) -> str:
    """Return the URL the carrier requested for this request: public base, path, query."""
    query = request.query_string.decode("utf-8", "replace")
    return settings.public_base_url + request.path + (f"?{query}" if query else "")


def twilio_signed(view: Callable) -> Callable:
    """Refuse the request with 403 unless `X-Twilio-Signature` is valid for a known token."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature or not _signature_is_valid(signature):
            log.warning(
                "webhook refused: %s signature path=%s remote_addr=%s",
                "invalid" if signature else "missing",
                request.path,
                request.remote_addr,
            )
            return "Invalid or missing X-Twilio-Signature.\n", 403, {"Content-Type": "text/plain"}
        return view(*args, **kwargs)

    return wrapper


def malformed_webhook(error: MalformedWebhook):
    """Answer a signed but malformed webhook with 400 and the reason, on one line."""
    log.warning("webhook malformed path=%s error=%s", request.path, error)
    return f"Malformed webhook: {error}\n", 400, {"Content-Type": "text/plain"}


def service_unavailable(error: Exception):
    """Answer 503 with Retry-After (never 500) when the database or Redis fails mid-request."""
    db.session.rollback()
    log.error("service unavailable path=%s error=%s", request.path, type(error).__name__)
    return (
        "Service temporarily unavailable, try again shortly.\n",
        503,
        {"Content-Type": "text/plain", "Retry-After": "5"},
    )


def claim_webhook(kind: str, sid: str) -> bool:
    """Record the webhook `kind`/`sid` as handled; return False if it already was.

    The claim is made in a savepoint of the caller's transaction: it is committed or
    rolled back with the work it guards, so a failure after the claim lets Twilio's
    retry do the work. On PostgreSQL a concurrent claim of the same SID waits for the
    first to commit, then loses.
    """
    try:
        with savepoint():
            db.session.add(InboundWebhook(kind=kind, sid=sid))
    except IntegrityError:
        log.info("webhook already handled kind=%s sid=%s", kind, sid)
        return False
    return True


def _signature_is_valid(signature: str) -> bool:
    settings: Settings = current_app.extensions["settings"]
    url = requested_url(settings)
    return any(
        RequestValidator(token).validate(url, request.form, signature)
        for token in webhook_tokens(settings)
    )


def _simulator_token(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), _SIMULATOR_TOKEN_LABEL, hashlib.sha256).hexdigest()
