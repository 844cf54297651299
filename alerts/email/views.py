"""The one-click confirmation link of alert e-mails: GET shows a button, POST confirms.

A GET never confirms: mail scanners and link previews fetch every link in a message,
and must not confirm for the member. The page is in the member's language; a link that
is altered, expired, or about an alert that is over gets a page saying so (400 or 410),
never a server error.
"""

from __future__ import annotations

import logging

from flask import Blueprint, render_template_string, request, url_for
from sqlalchemy import select

from alerts.confirmation import confirm, is_confirmable
from alerts.email.links import (
    CONFIRM_PATH,
    ExpiredLinkError,
    LinkError,
    read_confirmation_token,
)
from alerts.lifecycle import AlertError
from alerts.models import AckChannel, Acknowledgement, Alert, Person
from alerts.wording import language_for, plp_names
from core.extensions import db
from prompts import FALLBACK_LANGUAGE, LANGUAGES, text

log = logging.getLogger(__name__)

bp = Blueprint("confirm", __name__, url_prefix=CONFIRM_PATH.rstrip("/"))

# A link older than this is refused whatever the alert; alerts expire well before (2 h).
LINK_MAX_AGE_SECONDS = 24 * 3600

# Flask autoescapes render_template_string: every value below is escaped.
_PAGE = """\
<!DOCTYPE html>
<html lang="{{ language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }}</title>
</head>
<body style="max-width:40em;margin:0 auto;padding:16px;font-family:Arial,Helvetica,sans-serif;\
font-size:18px;line-height:1.5;color:#1a1a1a">
<h1 style="font-size:1.4em">{{ title }}</h1>
{%- if exercise_notice %}
<p id="exercise" style="padding:12px;border:2px solid #b35900;background:#fff4e5;\
font-weight:bold">{{ exercise_notice }}</p>
{%- endif %}
{%- if intro %}
<p>{{ intro }}</p>
<blockquote style="margin:0 0 16px;padding:12px 16px;border-left:4px solid #1f4e9c;\
background:#f3f6fb;white-space:pre-line">{{ message }}</blockquote>
<p style="color:#444444">{{ reference }}</p>
{%- endif %}
<p id="outcome">{{ outcome }}</p>
{%- if action %}
<form method="post" action="{{ action }}">
<button type="submit" style="padding:12px 24px;font-size:1em;background:#1f4e9c;color:#ffffff;\
border:0;border-radius:4px">{{ button }}</button>
</form>
{%- endif %}
</body>
</html>
"""


class LinkRefused(Exception):  # noqa: N818 (a page to show, not a failure)
    """A link that cannot be used: answer the page `key` with `status`, in `language`."""

    def __init__(self, key: str, status: int, language: str):
        super().__init__(key)
        self.key = key
        self.status = status
        self.language = language


@bp.errorhandler(LinkRefused)
def _refused(refusal: LinkRefused):
    return _page(refusal.language, refusal.key, refusal.status)


@bp.get("/<token>")
def show_link(token: str):
    """Show the alert and one button to confirm it (a GET confirms nothing)."""
    alert, person = _load(token)
    language = language_for(person, alert)
    if _acknowledged(alert, person):
        return _page(language, "web.already_confirmed", 200, alert=alert)
    if not is_confirmable(alert):
        return _page(language, "web.alert_over", 410, alert=alert)
    return _page(
        language,
        "email.confirm_intro",
        200,
        alert=alert,
        action=url_for("confirm.confirm_link", token=token),
    )


@bp.post("/<token>")
def confirm_link(token: str):
    """Confirm the alert for the link's person, once; a repeat says it was already done."""
    alert, person = _load(token)
    language = language_for(person, alert)
    try:
        result = confirm(alert, person, AckChannel.EMAIL)
    except AlertError as err:
        db.session.rollback()
        log.info(
            "confirmation link refused alert_id=%s person_id=%s reason=%r",
            alert.id,
            person.id,
            str(err),
        )
        return _page(language, "web.alert_over", 410, alert=alert)
    db.session.commit()
    return _page(
        language, "web.confirmed" if result.created else "web.already_confirmed", 200, alert=alert
    )


def _load(token: str) -> tuple[Alert, Person]:
    """Return the alert and person of a link, or raise `LinkRefused`."""
    language = request.accept_languages.best_match(LANGUAGES) or FALLBACK_LANGUAGE
    try:
        alert_id, person_id = read_confirmation_token(token, LINK_MAX_AGE_SECONDS)
    except ExpiredLinkError:
        log.info("confirmation link refused reason=expired")
        raise LinkRefused("web.link_expired", 410, language) from None
    except LinkError:
        log.info("confirmation link refused reason=invalid")
        raise LinkRefused("web.link_invalid", 400, language) from None
    alert = db.session.get(Alert, alert_id)
    person = db.session.get(Person, person_id)
    if alert is None or person is None:
        # Genuine, but its alert or person was removed since (retention).
        log.info(
            "confirmation link for a removed row alert_id=%s person_id=%s", alert_id, person_id
        )
        raise LinkRefused("web.link_expired", 410, language)
    return alert, person


def _acknowledged(alert: Alert, person: Person) -> bool:
    return (
        db.session.scalar(
            select(Acknowledgement.id).where(
                Acknowledgement.alert_id == alert.id, Acknowledgement.person_id == person.id
            )
        )
        is not None
    )


def _page(
    language: str,
    outcome_key: str,
    status: int,
    *,
    alert: Alert | None = None,
    action: str | None = None,
):
    words = {
        "language": language,
        "title": text("web.title", language),
        "outcome": text(outcome_key, language),
        "action": action,
        "button": text("email.confirm_button", language),
        "exercise_notice": "",
        "intro": "",
    }
    if alert is not None:
        plp = plp_names(alert)
        words.update(
            exercise_notice=text("email.exercise_notice", language) if alert.exercise else "",
            intro=text("email.intro", language, plp=plp),
            message=alert.text,
            reference=text("email.reference", language, ref=alert.reference),
        )
    headers = {
        # The token in the URL is a credential: keep it out of caches and referrers.
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }
    return render_template_string(_PAGE, **words), status, headers
