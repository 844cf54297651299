"""E-mail: compose an alert's message, send it by SMTP (or to instance/outbox/), and the job.

`alert_email` builds one person's message (text and HTML, in their language, with a
one-click confirmation link); `send_email` hands it to the relay of `SMTP_URL`, or, with
no relay configured, writes it as an .eml file under `instance/outbox/`; `deliver_email`
is the RQ job that turns one planned e-mail delivery into a sent, skipped or failed one,
retrying what the relay says may work later.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import smtplib
import socket
import ssl
from datetime import timedelta
from email import errors as email_errors
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path

from flask import current_app
from jinja2 import Environment, StrictUndefined
from rq.exceptions import DuplicateJobError
from sqlalchemy import select

from alerts.email.links import confirmation_url
from alerts.models import (
    Acknowledgement,
    Alert,
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    Person,
    Urgency,
    utcnow,
)
from alerts.recordings import recording_ready, recording_url
from alerts.wording import language_for, partnership_names
from core.extensions import db
from core.queue import get_queue
from core.settings import SmtpSettings
from prompts import text

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
# Delay before try 2, 3, ...: a greylisting relay usually accepts after a few minutes.
# After the last delay's try fails too, the delivery is FAILED. Tests shrink this.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=15),
)
OUTBOX_DIR = "outbox"
_ERROR_MESSAGE_LENGTH = 500  # Delivery.error_message

_PENDING = (DeliveryStatus.PLANNED, DeliveryStatus.QUEUED)


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


# ---------------------------------------------------------------------------------------
# Composing

# Jinja2 with autoescape rather than f-strings and html.escape: every value is escaped by
# default, so a new field can never be forgotten. Inline styles only: mail clients drop
# <style> blocks unevenly and external resources would leak who opened the message.
_HTML = Environment(autoescape=True, undefined=StrictUndefined).from_string("""\
<!DOCTYPE html>
<html lang="{{ language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:16px;\
line-height:1.5;color:#1a1a1a;background:#ffffff">
{%- if exercise_notice %}
<p style="margin:0 0 16px;padding:12px;border:2px solid #b35900;background:#fff4e5;\
font-weight:bold">{{ exercise_notice }}</p>
{%- endif %}
<p style="margin:0 0 8px">{{ intro }}</p>
<blockquote style="margin:0 0 16px;padding:12px 16px;border-left:4px solid #1f4e9c;\
background:#f3f6fb;white-space:pre-line">{{ message }}</blockquote>
{%- if recording_url %}
<p style="margin:0 0 16px">{{ recording_intro }}<br>\
<a href="{{ recording_url }}" style="color:#1f4e9c;word-break:break-all">{{ recording_url }}</a></p>
{%- endif %}
<p style="margin:0 0 16px;color:#444444">{{ source }}<br>{{ reference }}</p>
<p style="margin:0 0 12px">{{ confirm_intro }}</p>
<p style="margin:0 0 16px"><a href="{{ confirm_url }}" style="display:inline-block;\
padding:12px 24px;background:#1f4e9c;color:#ffffff;font-weight:bold;text-decoration:none;\
border-radius:4px">{{ confirm_button }}</a></p>
<p style="margin:0 0 16px;font-size:14px;color:#444444">{{ link_fallback }}<br>\
<a href="{{ confirm_url }}" style="color:#1f4e9c;word-break:break-all">{{ confirm_url }}</a></p>
<p style="margin:24px 0 0;font-size:13px;color:#666666">{{ footer }}</p>
</body>
</html>
""")


def alert_email(alert: Alert, person: Person, confirm_url: str) -> EmailMessage:
    """Compose the alert e-mail to `person`, with a one-click link to `confirm_url`."""
    settings = current_app.extensions["settings"]
    language = language_for(person, alert)
    partnerships = [target.partnership for target in alert.targets]
    if not partnerships:
        raise ValueError(f"alert {alert.id} has no target partnership")
    # dict.fromkeys: distinct names, in the order of the targets.
    plp = partnership_names(partnerships)
    zone = ", ".join(dict.fromkeys(p.zone.name for p in partnerships))
    exercise = text("email.exercise_prefix", language) if alert.exercise else ""
    recording_link = recording_url(alert.recording) if recording_ready(alert.recording) else None
    words = {
        "language": language,
        "subject": text("email.subject", language, exercise=exercise, plp=plp, ref=alert.reference),
        "exercise_notice": text("email.exercise_notice", language) if alert.exercise else "",
        "intro": text("email.intro", language, plp=plp),
        "message": alert.text,
        # The coordinator's voice message, while it is kept (charter retention).
        "recording_intro": text("email.recording_intro", language) if recording_link else "",
        "recording_url": recording_link or "",
        "source": text("email.source", language, zone=zone),
        "reference": text("email.reference", language, ref=alert.reference),
        "confirm_intro": text("email.confirm_intro", language),
        "confirm_button": text("email.confirm_button", language),
        "confirm_url": confirm_url,
        "link_fallback": text("email.link_fallback", language),
        "footer": text("email.footer", language, plp=plp),
    }

    message = EmailMessage()
    # One line: a name with a line break (a pasted roster cell) must not make the header
    # invalid, which the email package rightly refuses.
    message["Subject"] = _one_line(words["subject"])
    message["From"] = settings.mail_from
    message["To"] = _recipient(person)
    message["Date"] = utcnow()
    message["Message-ID"] = make_msgid(domain=_domain(settings.mail_from))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    # Exchange and Outlook ignore Auto-Submitted; this is their spelling of it.
    message["X-Auto-Response-Suppress"] = "All"
    # Quoted-printable rather than the policy's 8bit pick: accented text then passes any
    # relay, including one without 8BITMIME, which smtplib would not downgrade for.
    message.set_content(_plain_text(words), cte="quoted-printable")
    message.add_alternative(_HTML.render(words), subtype="html", cte="quoted-printable")
    # Set after the parts: making the message multipart moves Content-* headers into
    # its first part.
    message["Content-Language"] = language
    return message


def _plain_text(words: dict[str, str]) -> str:
    lines = [words["exercise_notice"], ""] if words["exercise_notice"] else []
    lines += [
        words["intro"],
        "",
        words["message"],
        "",
        *([words["recording_intro"], words["recording_url"], ""] if words["recording_url"] else []),
        words["source"],
        words["reference"],
        "",
        words["confirm_intro"],
        words["confirm_url"],
        "",
        "-- ",
        words["footer"],
    ]
    return "\n".join(lines) + "\n"


def _recipient(person: Person) -> Address:
    # Address, not a formatted string: it quotes or RFC 2047-encodes the display name
    # ("Dupré, Éloïse") as needed, and refuses an address that would break the header.
    try:
        return Address(display_name=_one_line(person.name), addr_spec=person.email or "")
    except (ValueError, IndexError, email_errors.HeaderParseError):
        raise PermanentMailError(
            "the person's e-mail address is not valid", code="bad_address"
        ) from None


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2]


# ---------------------------------------------------------------------------------------
# Sending


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


# ---------------------------------------------------------------------------------------
# The job


def deliver_email(delivery_id: int, try_number: int = 1) -> str:
    """Send one e-mail delivery, skipping it when moot; retry transient failures later.

    Return the delivery's status afterwards (for RQ's job result).
    """
    # FOR UPDATE: the same try run twice at once (a reconciler re-enqueued it) waits here,
    # then sees SENT. The lock lasts the SMTP exchange, bounded by its timeout.
    delivery = db.session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        log.warning("email delivery not found delivery_id=%s try=%s", delivery_id, try_number)
        return "missing"
    if delivery.channel != Channel.EMAIL:
        raise ValueError(f"delivery {delivery_id} is a {delivery.channel} delivery, not e-mail")
    context = f"delivery_id={delivery.id} alert_id={delivery.alert_id} try={try_number}"
    if delivery.status not in _PENDING:
        status = delivery.status
        log.info("email delivery already handled %s status=%s", context, status)
        db.session.rollback()  # releases the row lock
        return status.value

    moot = _moot_reason(delivery)
    if moot is not None:
        status, reason = moot
        _finish(delivery, status, message=reason)
        db.session.commit()
        log.info("email delivery %s %s reason=%r", status.value, context, reason)
        return status.value

    return _attempt(delivery, try_number, context)


def _attempt(delivery: Delivery, try_number: int, context: str) -> str:
    """Compose and send the delivery's e-mail; record the outcome; schedule a retry."""
    urgent = delivery.alert.urgency == Urgency.URGENT
    try:
        message = alert_email(
            delivery.alert, delivery.person, confirmation_url(delivery.alert_id, delivery.person_id)
        )
        outbox_file = send_email(message)
    except TransientMailError as err:
        if try_number > len(RETRY_DELAYS):
            _finish(delivery, DeliveryStatus.FAILED, code=err.code, message=_describe(err))
            db.session.commit()
            log.warning(
                "email delivery failed after retries %s code=%s detail=%r",
                context,
                err.code,
                err.detail,
            )
            return DeliveryStatus.FAILED.value
        delivery.error_code = err.code
        delivery.error_message = _describe(err)
        # The error is committed before the next try is scheduled: a job never runs
        # ahead of the database.
        db.session.commit()
        delay = RETRY_DELAYS[try_number - 1]
        _schedule_retry(delivery.id, try_number + 1, delay, urgent=urgent)
        log.warning(
            "email delivery will retry %s code=%s delay_s=%d detail=%r",
            context,
            err.code,
            delay.total_seconds(),
            err.detail,
        )
        return delivery.status.value
    except PermanentMailError as err:
        _finish(delivery, DeliveryStatus.FAILED, code=err.code, message=_describe(err))
        db.session.commit()
        log.warning("email delivery failed %s code=%s detail=%r", context, err.code, err.detail)
        return DeliveryStatus.FAILED.value

    now = utcnow()
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = now
    # E-mail has no delivery receipts: once the relay took it, nothing more will be known.
    delivery.finished_at = now
    delivery.to_address = delivery.person.email
    delivery.error_code = None
    delivery.error_message = None
    db.session.commit()
    log.info("email delivery sent %s outbox=%s", context, outbox_file.name if outbox_file else "")
    return DeliveryStatus.SENT.value


def _moot_reason(delivery: Delivery) -> tuple[DeliveryStatus, str] | None:
    """Return why the delivery should not be sent (status, reason), or None to send it."""
    alert, person = delivery.alert, delivery.person
    if alert.state in (AlertState.CLOSED, AlertState.REJECTED):
        return DeliveryStatus.SKIPPED, f"alert {alert.state.value}"
    if alert.expires_at <= utcnow():
        return DeliveryStatus.SKIPPED, "alert expired"
    acknowledged = db.session.scalar(
        select(Acknowledgement.id).where(
            Acknowledgement.alert_id == alert.id, Acknowledgement.person_id == person.id
        )
    )
    if acknowledged is not None:
        # CANCELED, not SKIPPED: the model's word for "confirmed elsewhere before this step".
        return DeliveryStatus.CANCELED, "already confirmed"
    if not person.email:
        return DeliveryStatus.SKIPPED, "no e-mail address"
    if person.email_opt_out_at is not None:
        return DeliveryStatus.SKIPPED, "opted out of e-mail"
    return None


def _finish(
    delivery: Delivery, status: DeliveryStatus, *, message: str, code: str | None = None
) -> None:
    delivery.status = status
    delivery.error_code = code
    delivery.error_message = message[:_ERROR_MESSAGE_LENGTH]
    delivery.finished_at = utcnow()


def _describe(err: MailError) -> str:
    described = f"{err.message}: {err.detail}" if err.detail else err.message
    return described[:_ERROR_MESSAGE_LENGTH]


def _schedule_retry(delivery_id: int, try_number: int, delay: timedelta, *, urgent: bool):
    queue = get_queue("urgent" if urgent else "default")
    job_id = f"email-{delivery_id}-{try_number}"
    try:
        # unique: a try that ran twice schedules the next one once.
        queue.enqueue_in(
            delay, "alerts.jobs.deliver_email", delivery_id, try_number, job_id=job_id, unique=True
        )
    except DuplicateJobError:
        log.info("email retry already scheduled delivery_id=%s try=%s", delivery_id, try_number)
