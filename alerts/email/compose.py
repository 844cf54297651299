"""E-mail composing: one person's alert message, in their language, with its confirmation link.

`alert_email` builds the message (plain text and HTML, the coordinator's recording linked
while it is kept); the recipient's address is checked here, so an address that would break
the header is a `PermanentMailError` before any relay is asked.
"""

from __future__ import annotations

from email import errors as email_errors
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

from flask import current_app
from jinja2 import Environment, StrictUndefined

from alerts.email.smtp import PermanentMailError
from alerts.models import Alert, Person, utcnow
from alerts.recordings import recording_ready, recording_url
from alerts.wording import language_for, partnership_names
from prompts import text

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

    # Headers are never folded: the email package's folding drops the quotes of a long
    # display name with commas ("Dupont, Jean, ..." <x@y> would reach "Dupont" and "Jean")
    # and a space next to an encoded word. RFC 5322 allows 998 characters a line.
    message = EmailMessage(policy=_POLICY)
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


_POLICY = email_policy.default.clone(max_line_length=998)


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
