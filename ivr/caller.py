"""Who calls the PLP number: the person of the caller ID, and whether they gave their PIN.

Each request stands on its own: who calls is read again from the caller ID, and the PIN's
success is a row keyed by the call's SID (`claim_webhook(PIN_KIND, CallSid)`, written by
`ivr.inbound.check_pin`), so that every step of a coordinator's call can check it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flask import g, request
from sqlalchemy import exists, select

from alerts.lifecycle import DECIDER_ROLES
from alerts.models import Person
from alerts.people.phones import PhoneNumberError, parse_phone
from alerts.wording import language_for
from core.extensions import db
from core.webhooks import InboundWebhook
from ivr.menus import count, ident
from prompts import FALLBACK_LANGUAGE

log = logging.getLogger(__name__)

PIN_KIND = "ivr_pin"  # claim_webhook kind: this call gave the right PIN


class CallerKind(StrEnum):
    DECIDER = "decider"  # coordinator or steering member of a PLP
    OFFICER = "officer"
    MEMBER = "member"
    STRANGER = "stranger"


@dataclass(frozen=True)
class InboundCall:
    """Twilio's request about a call to the PLP number, and our action URL's query."""

    call_sid: str
    caller: str
    digits: str | None
    recording_url: str | None
    recording_sid: str | None
    recording_duration: int | None
    query: Mapping[str, str]

    @classmethod
    def from_request(cls) -> InboundCall:
        """Read the form Twilio posted and the query of the action URL."""
        form = request.form
        digits = (form.get("Digits") or "").strip()
        duration = (form.get("RecordingDuration") or "").strip()
        return cls(
            call_sid=(form.get("CallSid") or "").strip()[:64],
            caller=(form.get("From") or "").strip(),
            digits=digits[:12] or None,
            recording_url=(form.get("RecordingUrl") or "").strip() or None,
            recording_sid=(form.get("RecordingSid") or "").strip()[:64] or None,
            recording_duration=int(duration) if duration.isascii() and duration.isdigit() else None,
            query=request.args.to_dict(),
        )

    def number(self, key: str) -> int:
        """Return a counter of the query (0 when absent or not a small number)."""
        return count(self.query.get(key))

    def row_id(self, key: str) -> int | None:
        """Return a row id of the query (None when absent or not an id)."""
        return ident(self.query.get(key))


@dataclass(frozen=True)
class Caller:
    """Who is calling, from the caller ID."""

    kind: CallerKind
    person: Person | None
    language: str


def identify(call: InboundCall) -> Caller:
    """Return who is calling: the person of the caller ID and what they may do."""
    person = _person_of(call.caller)
    if person is None:
        return Caller(CallerKind.STRANGER, None, FALLBACK_LANGUAGE)
    language = language_for(person)
    roles = {membership.role for membership in person.memberships}
    if person.pin_hash is not None and roles & set(DECIDER_ROLES):
        kind = CallerKind.DECIDER
    elif person.pin_hash is not None and person.officer is not None and person.officer.active:
        kind = CallerKind.OFFICER
    elif roles:
        # A member; also a coordinator whose PIN is not set yet: they hear what members hear.
        kind = CallerKind.MEMBER
    else:
        kind = CallerKind.STRANGER
    g.call_language = language
    return Caller(kind, person, language)


def _person_of(caller: str) -> Person | None:
    try:
        e164 = parse_phone(caller).e164
    except PhoneNumberError:
        return None  # a withheld or foreign-format caller ID: nobody we know
    return db.session.scalar(select(Person).where(Person.phone == e164))


def authenticated(call: InboundCall, caller: Caller) -> bool:
    """Tell whether this call gave the right PIN, for a caller who needs one."""
    if caller.kind not in (CallerKind.DECIDER, CallerKind.OFFICER) or not call.call_sid:
        return False
    return bool(
        db.session.scalar(
            select(
                exists().where(InboundWebhook.kind == PIN_KIND, InboundWebhook.sid == call.call_sid)
            )
        )
    )


def decider(call: InboundCall) -> Caller | None:
    """Return the caller if a coordinator or steering member who gave their PIN on this call."""
    caller = identify(call)
    if caller.kind != CallerKind.DECIDER or not authenticated(call, caller):
        log.warning("ivr menu without a PIN call_sid=%s kind=%s", call.call_sid, caller.kind)
        return None
    return caller
