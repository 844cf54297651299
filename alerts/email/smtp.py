"""E-mail sending: hand a message to the SMTP relay of `SMTP_URL`, or to instance/outbox/.

`send_email` speaks SMTP (implicit TLS with smtps://, else STARTTLS when offered or asked
for) and turns every failure into a `TransientMailError` (the relay may take it later) or
a `PermanentMailError` (it never will). With no relay configured, the message is written
as an .eml file under `instance/outbox/`, which a developer opens with a double click.
"""

from __future__ import annotations

import errno
import os
import secrets
import smtplib
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path

from flask import current_app

from alerts.models import utcnow
from core.settings import SmtpSettings

SMTP_TIMEOUT_SECONDS = 30
OUTBOX_DIR = "outbox"


class MailError(Exception):
    """Sending failed; `message` is safe to show to a coordinator.

    `code` is the relay's reply code ("451", "550") or a short word for a network
    failure ("ECONNREFUSED", "timeout"); `detail` is the relay's own words, for logs.
    """

    retryable = False

    def __init__(self, message: str, *, code: str, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class TransientMailError(MailError):
    """The relay could not take the message now (4xx, network trouble): try again later."""

    retryable = True


class PermanentMailError(MailError):
    """The relay refused the message for good (5xx) or it cannot be sent: do not retry."""


def send_email(message: EmailMessage, *, ssl_context: ssl.SSLContext | None = None) -> Path | None:
    """Send `message` through the SMTP relay, or write it to the outbox when there is none.

    Return the .eml file written in outbox mode, None when the relay took the message.
    Raise `TransientMailError` or `PermanentMailError` when the relay did not take it.
    `ssl_context` replaces the system's trusted certificates (tests pass their own CA).
    """
    settings = current_app.extensions["settings"]
    if settings.smtp is None:
        return write_to_outbox(message, Path(current_app.instance_path) / OUTBOX_DIR)
    try:
        _send_smtp(message, settings.smtp, ssl_context)
    # smtplib raises its own exceptions and the socket's, but says nothing of which ones
    # may succeed later; SMTPException is an OSError, so one clause takes both.
    except OSError as err:
        raise _classify(err) from err
    return None


def _send_smtp(message: EmailMessage, smtp: SmtpSettings, ssl_context: ssl.SSLContext | None):
    context = ssl_context or _default_tls_context(smtp)
    if smtp.ssl:
        client = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if not smtp.ssl and smtp.starttls is not False:
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()  # RFC 3207: forget what was said before TLS
            elif smtp.starttls:
                # Never fall back to plain text when TLS was asked for: a relay that stops
                # offering STARTTLS is an outage or someone in the middle. Retried, since
                # either may be over by the next try.
                raise TransientMailError(
                    "the mail relay did not offer STARTTLS", code="no_starttls"
                )
        if smtp.username:
            try:
                client.login(smtp.username, smtp.password or "")
            except UnicodeEncodeError:
                # smtplib encodes AUTH as ASCII and raises this, which is no OSError.
                raise PermanentMailError(
                    "the SMTP user name and password must be ASCII (SMTP_URL)", code="auth_ascii"
                ) from None
        refused = client.send_message(message)
        if refused:  # only when some recipients were refused and others taken
            raise smtplib.SMTPRecipientsRefused(refused)


def _default_tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not smtp.ssl and smtp.starttls is None:
        # Opportunistic STARTTLS (RFC 7435): the operator did not ask for TLS, so encrypt
        # without authenticating. A local relay with a self-signed certificate (Debian's
        # postfix default) must not stop every alert e-mail. `?starttls=true` or smtps://
        # verify the certificate.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# The relay's reply words per refusal, first match wins (subclasses before their bases).
_REFUSALS: tuple[tuple[type[smtplib.SMTPResponseException], str], ...] = (
    (smtplib.SMTPAuthenticationError, "the mail relay refused the login"),
    (smtplib.SMTPSenderRefused, "the mail relay refused the sender address (MAIL_FROM)"),
    (smtplib.SMTPResponseException, "the mail relay refused the message"),
)
# Failures without a reply code, first match wins: SMTPException and SSLError are OSErrors,
# so they come before the socket's own errors.
_FAILURES: tuple[tuple[type[OSError], type[MailError], str, str], ...] = (
    (
        smtplib.SMTPServerDisconnected,
        TransientMailError,
        "disconnected",
        "the mail relay closed the connection",
    ),
    # AUTH not offered, or SMTPUTF8 needed for an internationalised address.
    (
        smtplib.SMTPNotSupportedError,
        PermanentMailError,
        "unsupported",
        "the mail relay does not support what this message needs",
    ),
    # "No suitable authentication method found" and the like: configuration.
    (
        smtplib.SMTPException,
        PermanentMailError,
        "smtp",
        "the mail relay cannot be used as configured",
    ),
    (
        ssl.SSLCertVerificationError,
        PermanentMailError,
        "tls_certificate",
        "the mail relay's TLS certificate is not trusted",
    ),
    (ssl.SSLError, TransientMailError, "tls", "the TLS handshake with the mail relay failed"),
    (TimeoutError, TransientMailError, "timeout", "the mail relay did not answer in time"),
    (
        socket.gaierror,
        TransientMailError,
        "dns",
        "the mail relay's host name could not be resolved",
    ),
)


def _classify(err: OSError) -> MailError:
    """Map an smtplib or socket error to a transient or permanent `MailError`."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(err.recipients.values()))
        return _from_reply(code, reply, "the mail relay refused the recipient's address")
    if isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(
        err.__context__, TimeoutError
    ):
        # smtplib reports a relay that stopped answering as a disconnection.
        err = err.__context__
    for refusal, message in _REFUSALS:
        if isinstance(err, refusal):
            return _from_reply(err.smtp_code, err.smtp_error, message)
    for failure, error, code, message in _FAILURES:
        if isinstance(err, failure):
            return error(message, code=code, detail=str(err) or None)
    # Refused, reset, unreachable: the errno's name is the code ("ECONNREFUSED").
    return TransientMailError(
        "the mail relay could not be reached",
        code=errno.errorcode.get(err.errno or 0, "network"),
        detail=str(err),
    )


def _from_reply(code: int, reply: bytes | str, message: str) -> MailError:
    detail = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    # RFC 5321 4.2.1: 5yz is a permanent refusal; 4yz, and anything odd, may pass later.
    error = PermanentMailError if 500 <= code <= 599 else TransientMailError
    return error(message, code=str(code), detail=detail)


def write_to_outbox(message: EmailMessage, directory: Path) -> Path:
    """Write `message` as a new .eml file in `directory`, atomically; return its path."""
    # Not mailbox.Maildir, which does the same dance: the contract promises .eml files
    # directly in instance/outbox/, which a developer opens with a double click; Maildir
    # writes extensionless files under new/. The name sorts by time and is unique.
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
    partial = directory / f".{name}.partial"  # a reader globbing *.eml never sees it
    partial.write_bytes(message.as_bytes())
    path = directory / name
    os.replace(partial, path)
    return path
