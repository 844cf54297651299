"""What the app does with a text sent to the PLP number: the pipeline of one inbound SMS.

`handle_inbound` is the one entry point (the `/sms/incoming` view is a thin shell around
it): the message is claimed by its `MessageSid` (a retry changes nothing twice), a sender
flooding the number is ignored with one warning, the text is parsed
(`alerts.sms.commands`), the command is carried out for the sender's role by its handler
(`alerts.sms.handlers`), and the reply is cut to two SMS segments (`alerts.sms.message`).

The answer is in the sender's language, and every command and refusal is in the audit
log. The whole message is one transaction, committed here: a refusal's PIN failure is
saved with its audit event.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime

import redis
from sqlalchemy import select

from alerts.models import Person, record_audit, utcnow
from alerts.people.phones import PhoneNumberError, parse_phone
from alerts.sms import commands as cmd
from alerts.sms import handlers
from alerts.sms.message import Context, InboundSms, Reply, fit
from alerts.wording import language_for
from core.extensions import db, redis_connection
from core.webhooks import claim_webhook
from prompts import text

log = logging.getLogger(__name__)

FLOOD_LIMIT = 20  # messages a minute from one number; beyond, ignored
FLOOD_WINDOW_SECONDS = 60
FLOOD_KEY = "plp:sms:flood:{phone}:{window}"
_clock = time.time  # the flood window's clock (tests fix it)


def handle_inbound(sms: InboundSms, *, now: datetime | None = None) -> str | None:
    """Carry out one inbound message and commit; return the reply to text back (None: none)."""
    now = now or utcnow()
    if not claim_webhook("sms", sms.sid):
        db.session.rollback()
        return None  # a retry of a message already handled: it was answered then
    flood = _flood_count(sms.from_)
    if flood > FLOOD_LIMIT:
        return _flooded(sms, flood)

    person = find_sender(sms.from_)
    command = cmd.parse(sms.body)
    language = language_for(person, hint=command.language)
    context = Context(sms, person, language)
    handlers.mirror_carrier_opt_out(context, now)
    reply = _dispatch(context, command, now)
    _audit(context, command, reply)
    db.session.commit()
    log.info(
        "sms command sid=%s person_id=%s command=%s outcome=%s",
        sms.sid,
        person.id if person else None,
        type(command).__name__.lower(),
        reply.outcome,
    )
    return fit(reply.body) if reply.body else None


def find_sender(phone: str) -> Person | None:
    """Return the person texting from `phone` (their first number, else their second)."""
    numbers = {phone}
    # A number we cannot read can only be found as it was sent.
    with contextlib.suppress(PhoneNumberError):
        numbers.add(parse_phone(phone).e164)
    person = db.session.scalar(select(Person).where(Person.phone.in_(numbers)))
    if person is None:
        person = db.session.scalar(
            select(Person).where(Person.phone2.in_(numbers)).order_by(Person.id).limit(1)
        )
    return person


# --- Flood ---------------------------------------------------------------------------------


def _flood_count(phone: str) -> int:
    """Count this message in its sender's minute; return the count so far (0: unknown)."""
    window = int(_clock() // FLOOD_WINDOW_SECONDS)
    key = FLOOD_KEY.format(phone=phone, window=window)
    try:
        pipe = redis_connection().pipeline()
        pipe.incr(key)
        pipe.expire(key, FLOOD_WINDOW_SECONDS * 2)
        count, _ = pipe.execute()
    except redis.RedisError as err:
        # The limit protects the number; an officer's alert matters more than the limit.
        log.warning("sms flood count unavailable phone=%s error=%s", phone, type(err).__name__)
        return 0
    return int(count)


def _flooded(sms: InboundSms, count: int) -> str | None:
    """Ignore a message beyond the limit; the first one beyond it gets the one warning."""
    if count != FLOOD_LIMIT + 1:
        db.session.commit()  # the claim: a retry of an ignored message stays ignored
        return None
    person = find_sender(sms.from_)
    language = language_for(person)
    record_audit(
        "sms.flood",
        actor=_actor(person, sms.from_),
        actor_id=person.id if person else None,
        subject=person,
        limit=FLOOD_LIMIT,
        window_seconds=FLOOD_WINDOW_SECONDS,
    )
    db.session.commit()
    log.warning("sms flood from=%s person_id=%s", sms.from_, person.id if person else None)
    return fit(text("sms.cmd.flood", language))


# --- Dispatch ------------------------------------------------------------------------------


def _dispatch(context: Context, command: cmd.Command, now: datetime) -> Reply:  # noqa: PLR0911 (one return per command)
    match command:
        case cmd.Alert():
            return handlers.handle_alert(context, command, now)
        case cmd.Yes(ref=ref):
            return handlers.handle_yes(context, ref, now)
        case cmd.No(ref=ref):
            return handlers.handle_no(context, ref, now)
        case cmd.Confirm(ref=ref):
            return handlers.handle_confirm(context, ref, now)
        case cmd.Status(ref=ref):
            return handlers.handle_status(context, ref)
        case cmd.Stop():
            return handlers.handle_stop(context, now)
        case cmd.Start():
            return handlers.handle_start(context)
        case cmd.Help():
            return handlers.handle_help(context)
    return Reply(handlers.usage(context), "unknown")


# --- Audit ---------------------------------------------------------------------------------


def _actor(person: Person | None, phone: str) -> str:
    return f"person:{person.id}" if person is not None else f"sms:{phone[:60]}"


def _audit(context: Context, command: cmd.Command, reply: Reply) -> None:
    """Record the command and its outcome; never the PIN, nor a stranger's text."""
    details: dict[str, object] = {
        "command": type(command).__name__.lower(),
        "outcome": reply.outcome,
        "message_sid": context.sms.sid,
    }
    ref = getattr(command, "ref", None)
    if ref:
        details["ref"] = ref
    if isinstance(command, cmd.Alert) and command.targets:
        details["targets"] = list(command.targets)[:10]
    if context.sms.opt_out_type:
        details["opt_out_type"] = context.sms.opt_out_type[:16]
    subject = context.person
    if ref and (alert := handlers.alert_by_ref(ref)) is not None:
        subject = alert
    record_audit(
        "sms.command" if reply.outcome in ("ok", "already_confirmed") else "sms.refused",
        actor=_actor(context.person, context.sms.from_),
        actor_id=context.person.id if context.person else None,
        subject=subject,
        **details,
    )
