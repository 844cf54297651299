"""What the app does with a text sent to the PLP number, and what it answers.

`handle_inbound` is the one entry point (the `/sms/incoming` view is a thin shell around
it): the message is claimed by its `MessageSid` (a retry changes nothing twice), a sender
flooding the number is ignored with one warning, the text is parsed
(`alerts.sms.commands`), and the command is carried out for the sender's role:

- an officer's `ALERTE <pin> <targets> <message>` raises an alert awaiting release;
- a coordinator's `ALERTE <pin> <message>` raises and releases one for their own PLP;
- `OUI <ref>` / `NON <ref>` from a coordinator or steering member releases or rejects an
  alert awaiting release (the lifecycle makes the first answer win and tells the others);
  from anyone else `OUI <ref>` confirms, as `1` and `OK` do;
- `STATUT <ref>` gives an officer or a coordinator the alert's counts;
- opt-out and opt-in words mark the person (`sms_opt_out_at`), as Twilio's `OptOutType`
  says the carrier did; help words and anything else get the usage.

The answer is at most two SMS segments, in the sender's language, and every command and
refusal is in the audit log. The whole message is one transaction, committed here: a
refusal's PIN failure is saved with its audit event.
"""

from __future__ import annotations

import contextlib
import logging
import time
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import func, or_, select

from alerts.confirmation import CONFIRMABLE_STATES, confirm, is_addressed, is_confirmable
from alerts.lifecycle import (
    DECIDER_ROLES,
    MAX_TEXT_LENGTH,
    AlertError,
    IllegalTransition,
    NotAllowed,
    can_decide,
    may_manage,
    raise_alert,
    reject_alert,
    release_alert,
    resolve_targets,
)
from alerts.models import (
    AckChannel,
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    AlertTransition,
    CloseReason,
    Delivery,
    Membership,
    Partnership,
    Person,
    record_audit,
    utcnow,
)
from alerts.people.lockout import PinOutcome, check_person_pin
from alerts.people.phones import PhoneNumberError, parse_phone
from alerts.sms import commands as cmd
from alerts.sms.segments import sms_length
from alerts.tracking import alert_counts
from alerts.wording import language_for
from core.extensions import db, redis_connection
from core.queue import PENDING_JOBS, savepoint
from core.webhooks import MalformedWebhook, claim_webhook
from prompts import text

log = logging.getLogger(__name__)

MAX_SEGMENTS = 2  # a reply is at most this many SMS segments
FLOOD_LIMIT = 20  # messages a minute from one number; beyond, ignored
FLOOD_WINDOW_SECONDS = 60
FLOOD_KEY = "plp:sms:flood:{phone}:{window}"
MAX_BODY = 1600  # Twilio's own limit for one message's Body
LOCAL_TIME = ZoneInfo("Europe/Brussels")  # the clock the officer reads "locked until" on
_clock = time.time  # the flood window's clock (tests fix it)
_ELLIPSIS = "..."  # GSM-7: "…" would make the whole reply UCS-2 (70 characters a segment)


@dataclass(frozen=True)
class InboundSms:
    """Twilio's request about a message texted to the PLP number."""

    sid: str
    from_: str
    body: str
    opt_out_type: str | None  # STOP, START or HELP: what the carrier's opt-out handling did

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundSms:
        """Read the form Twilio posted; raise `MalformedWebhook` without MessageSid or From."""
        sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        from_ = (form.get("From") or "").strip()
        if not sid or len(sid) > 64 or not sid.isprintable():
            raise MalformedWebhook("MessageSid is missing or not a message SID")
        if not from_ or len(from_) > 64 or not from_.isprintable():
            raise MalformedWebhook("From is missing or not a phone number")
        opt_out = (form.get("OptOutType") or "").strip().upper()[:16] or None
        # Control characters (NUL above all, which PostgreSQL cannot store) and lone
        # surrogates are nobody's words; line breaks and tabs are kept (read as spaces).
        body = "".join(
            char
            for char in (form.get("Body") or "")[:MAX_BODY]
            if unicodedata.category(char) not in ("Cc", "Cs") or char in "\n\r\t"
        )
        return cls(sid=sid, from_=from_, body=body, opt_out_type=opt_out)


@dataclass(frozen=True)
class Reply:
    """What to text back (None: nothing), and what the audit log says happened."""

    body: str | None
    outcome: str  # "ok", or the refusal's reason ("pin_wrong", "unknown_target"...)


@dataclass
class _Context:
    """One inbound message being handled: who sent it, in which language to answer."""

    sms: InboundSms
    person: Person | None
    language: str

    def say(self, key: str, **values: object) -> str:
        return text(key, self.language, **values)

    def ok(self, key: str, **values: object) -> Reply:
        return Reply(self.say(key, **values), "ok")

    def refuse(self, reason: str, key: str, **values: object) -> Reply:
        return Reply(self.say(key, **values), reason)


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
    context = _Context(sms, person, language)
    _mirror_carrier_opt_out(context, now)
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


def fit(body: str, segments: int = MAX_SEGMENTS) -> str:
    """Return `body` cut (with "...") to at most `segments` SMS segments."""
    if sms_length(body).segments <= segments:
        return body
    # Binary search for the longest cut that fits: a handful of counts for any reply.
    low, high = 0, len(body)
    while low < high:
        middle = (low + high + 1) // 2
        if sms_length(body[:middle].rstrip() + _ELLIPSIS).segments <= segments:
            low = middle
        else:
            high = middle - 1
    return body[:low].rstrip() + _ELLIPSIS


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


def _dispatch(context: _Context, command: cmd.Command, now: datetime) -> Reply:  # noqa: PLR0911 (one return per command)
    match command:
        case cmd.Alert():
            return _alert(context, command, now)
        case cmd.Yes(ref=ref):
            return _yes(context, ref, now)
        case cmd.No(ref=ref):
            return _no(context, ref, now)
        case cmd.Confirm(ref=ref):
            return _confirm(context, ref, now)
        case cmd.Status(ref=ref):
            return _status(context, ref)
        case cmd.Stop():
            return _stop(context, now)
        case cmd.Start():
            return _start(context)
        case cmd.Help():
            return Reply(_usage(context), "ok")
    return Reply(_usage(context), "unknown")


def _usage(context: _Context) -> str:
    person = context.person
    if person is not None and _active_officer(person):
        return context.say("sms.cmd.usage_officer")
    if person is not None and _decider_plps(person):
        return context.say("sms.cmd.usage_coordinator")
    return context.say("sms.cmd.usage_member")


# --- ALERTE ------------------------------------------------------------------------------


def _alert(context: _Context, command: cmd.Alert, now: datetime) -> Reply:
    person = context.person
    officer = _active_officer(person) if person else None
    own_plps = _decider_plps(person) if person else []
    if person is None or (officer is None and not own_plps):
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    usage = "sms.cmd.usage_officer" if officer else "sms.cmd.usage_coordinator"
    if not command.pin:
        return Reply(f"{context.say('sms.cmd.pin_missing')} {context.say(usage)}", "pin_missing")
    check = check_person_pin(person, command.pin, phone=context.sms.from_, channel="sms", now=now)
    if check.outcome == PinOutcome.LOCKED:
        until = check.locked_until.astimezone(LOCAL_TIME).strftime("%H:%M")
        return context.refuse("pin_locked", "sms.cmd.pin_locked", until=until)
    if check.outcome == PinOutcome.WRONG:
        return context.refuse("pin_wrong", "sms.cmd.pin_wrong", left=check.attempts_left)
    if officer is not None:
        return _officer_alert(context, officer, command, now)
    return _coordinator_alert(context, own_plps, command, now)


def _officer_alert(context: _Context, officer, command: cmd.Alert, now: datetime) -> Reply:
    if not command.targets:
        return context.refuse("no_target", "sms.cmd.no_target")
    plps: dict[int, Partnership] = {}
    for code in command.targets:
        try:
            found = resolve_targets([code], officer=None)
        except AlertError:
            return context.refuse("unknown_target", "sms.cmd.unknown_target", code=code)
        for plp in found:
            if plp.zone_id != officer.zone_id:
                return context.refuse(
                    "outside_zone", "sms.cmd.outside_zone", code=code, zone=officer.zone.code
                )
            plps.setdefault(plp.id, plp)
    if not command.message:
        return context.refuse("empty_message", "sms.cmd.empty_message")
    return _raise(context, list(plps.values()), command.message, now)


def _coordinator_alert(
    context: _Context, own_plps: list[Partnership], command: cmd.Alert, now: datetime
) -> Reply:
    # "ALERTE <pin> <message>"; a coordinator of several PLPs may name some of them.
    targets, message = own_plps, command.text
    named = _own_named(own_plps, command.targets)
    if named:
        targets, message = named, command.message
    if not message:
        return context.refuse("empty_message", "sms.cmd.empty_message")
    return _raise(context, targets, message, now)


def _own_named(own_plps: list[Partnership], codes: tuple[str, ...]) -> list[Partnership]:
    """Return the PLPs `codes` name when every code is one of `own_plps`, else []."""
    by_code = {plp.code: plp for plp in own_plps}
    if not codes or any(code not in by_code for code in codes):
        return []
    return list({by_code[code].id: by_code[code] for code in codes}.values())


def _raise(context: _Context, plps: list[Partnership], message: str, now: datetime) -> Reply:
    try:
        with _attempt():
            alert = raise_alert(
                author=context.person,
                targets=plps,
                text=message,
                origin=AlertOrigin.SMS,
                language=context.language,
                now=now,
            )
    except AlertError as err:
        log.info("sms alert refused person_id=%s reason=%s", context.person.id, err)
        if len(" ".join(message.split())) > MAX_TEXT_LENGTH:
            return context.refuse("text_too_long", "sms.cmd.text_too_long", max=MAX_TEXT_LENGTH)
        return context.refuse("alert_refused", "sms.cmd.alert_refused")
    codes = ", ".join(plp.code for plp in plps)
    members = _member_count(plps)
    if alert.state == AlertState.AWAITING_RELEASE:
        return context.ok("sms.cmd.raised", ref=alert.reference, plps=codes, members=members)
    return context.ok("sms.cmd.raised_released", ref=alert.reference, plps=codes, members=members)


# --- OUI / NON <ref> ---------------------------------------------------------------------


def _yes(context: _Context, ref: str, now: datetime) -> Reply:  # noqa: PLR0911 (one per outcome)
    person = context.person
    if person is None:
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    alert = _alert_by_ref(ref)
    if alert is None:
        return context.refuse("unknown_ref", "sms.cmd.unknown_ref", ref=ref)
    if not can_decide(person, alert):
        return _confirm_alert(context, alert, now)  # a member's "OUI <ref>" confirms
    if alert.state != AlertState.AWAITING_RELEASE:
        if alert.state in CONFIRMABLE_STATES and is_addressed(alert, person):
            # Too late to decide, but they are a member too: their yes confirms it.
            confirmed = _confirm_alert(context, alert, now)
            decided = _decided(context, alert)
            return Reply(f"{decided.body} {confirmed.body}", "already_decided")
        return _decided(context, alert)
    try:
        with _attempt():
            summary = release_alert(alert, by=person, now=now)
    except IllegalTransition:
        return _decided(context, alert)
    except AlertError:
        return _decided(context, alert, now=now)
    return context.ok("sms.cmd.released", ref=alert.reference, members=summary.members)


def _named_alert(context: _Context, ref: str | None, verb: cmd.Verb) -> Alert | Reply:
    """Return the alert `ref` names, or the refusal: unknown sender, no or unknown ref."""
    if context.person is None:
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    if ref is None:
        return context.refuse("ref_missing", "sms.cmd.ref_missing", word=_word(context, verb))
    alert = _alert_by_ref(ref)
    if alert is None:
        return context.refuse("unknown_ref", "sms.cmd.unknown_ref", ref=ref)
    return alert


def _no(context: _Context, ref: str | None, now: datetime) -> Reply:
    alert, person = _named_alert(context, ref, cmd.Verb.NO), context.person
    if isinstance(alert, Reply):
        return alert
    if not can_decide(person, alert):
        return context.refuse("not_decider", "sms.cmd.not_decider", ref=alert.reference)
    try:
        with _attempt():
            reject_alert(alert, by=person, now=now)
    except NotAllowed:
        return context.refuse("not_decider", "sms.cmd.not_decider", ref=alert.reference)
    except AlertError:
        return _decided(context, alert)
    return context.ok("sms.cmd.rejected", ref=alert.reference)


def _decided(context: _Context, alert: Alert, *, now: datetime | None = None) -> Reply:
    """Refuse a decision on an alert no longer awaiting one, saying what became of it."""
    db.session.refresh(alert)
    ref = alert.reference
    if alert.state in (AlertState.RELEASED, AlertState.DELIVERING) or (
        alert.state == AlertState.CLOSED and alert.released_at is not None
    ):
        name = alert.released_by.name if alert.released_by else context.say("sms.cmd.automatic")
        return context.refuse("already_released", "sms.cmd.already_released", ref=ref, name=name)
    if alert.state == AlertState.REJECTED:
        name = _rejected_by(alert) or context.say("sms.cmd.automatic")
        return context.refuse("already_rejected", "sms.cmd.already_rejected", ref=ref, name=name)
    if alert.state == AlertState.AWAITING_RELEASE and now is not None and alert.expires_at <= now:
        return context.refuse("expired", "sms.expired", ref=ref)
    if alert.state == AlertState.CLOSED and alert.close_reason == CloseReason.EXPIRED:
        return context.refuse("expired", "sms.expired", ref=ref)
    return context.refuse("closed", "sms.cmd.alert_over", ref=ref)


def _rejected_by(alert: Alert) -> str | None:
    actor_id = db.session.scalar(
        select(AlertTransition.actor_id)
        .where(
            AlertTransition.alert_id == alert.id,
            AlertTransition.to_state == AlertState.REJECTED,
        )
        .limit(1)
    )
    actor = db.session.get(Person, actor_id) if actor_id is not None else None
    return actor.name if actor else None


# --- 1 / OK: confirmation ------------------------------------------------------------------


def _confirm(context: _Context, ref: str | None, now: datetime) -> Reply:
    person = context.person
    if person is None:
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    if ref is not None:
        alert = _alert_by_ref(ref)
        if alert is None:
            return context.refuse("unknown_ref", "sms.cmd.unknown_ref", ref=ref)
        return _confirm_alert(context, alert, now)
    alert = _latest_running(person, now)
    if alert is not None:
        return _confirm_alert(context, alert, now)
    waiting = _latest_awaiting_decision(person, now)
    if waiting is not None:
        # A coordinator's bare "OUI" to a release request: say how to release it.
        return context.refuse("awaiting_release", "sms.cmd.awaiting_release", ref=waiting.reference)
    return context.refuse("nothing_running", "sms.cmd.nothing_running")


def _confirm_alert(context: _Context, alert: Alert, now: datetime) -> Reply:
    person, ref = context.person, alert.reference
    if alert.state == AlertState.AWAITING_RELEASE and can_decide(person, alert):
        return context.refuse("awaiting_release", "sms.cmd.awaiting_release", ref=ref)
    try:
        with _attempt():
            result = confirm(alert, person, AckChannel.SMS, now=now)
    except AlertError:
        if not is_addressed(alert, person) and alert.state != AlertState.AWAITING_RELEASE:
            return context.refuse("not_addressed", "sms.cmd.not_addressed", ref=ref)
        if alert.state == AlertState.AWAITING_RELEASE:
            return context.refuse("not_sent_yet", "sms.cmd.not_sent_yet", ref=ref)
        return context.refuse("alert_over", "sms.cmd.alert_over", ref=ref)
    if not result.created:
        return Reply(context.say("sms.cmd.already_confirmed", ref=ref), "already_confirmed")
    return context.ok("sms.cmd.confirmed", ref=ref)


def _latest_running(person: Person, now: datetime) -> Alert | None:
    """Return the latest alert sent to `person` that still takes a confirmation."""
    candidates = db.session.scalars(
        select(Alert)
        .where(
            Alert.id.in_(select(Delivery.alert_id).where(Delivery.person_id == person.id)),
            or_(
                Alert.state.in_(CONFIRMABLE_STATES),
                (Alert.state == AlertState.CLOSED) & (Alert.close_reason == CloseReason.EXHAUSTED),
            ),
        )
        .order_by(Alert.released_at.desc().nulls_last(), Alert.id.desc())
        .limit(10)
    )
    return next((alert for alert in candidates if is_confirmable(alert, now)), None)


def _latest_awaiting_decision(person: Person, now: datetime) -> Alert | None:
    """Return the latest unexpired alert awaiting a decision `person` may take."""
    return db.session.scalar(
        select(Alert)
        .join(AlertTarget, AlertTarget.alert_id == Alert.id)
        .join(Membership, Membership.partnership_id == AlertTarget.partnership_id)
        .where(
            Alert.state == AlertState.AWAITING_RELEASE,
            Alert.expires_at > now,
            Membership.person_id == person.id,
            Membership.role.in_(DECIDER_ROLES),
        )
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(1)
    )


# --- STATUT <ref> --------------------------------------------------------------------------


def _status(context: _Context, ref: str | None) -> Reply:
    alert, person = _named_alert(context, ref, cmd.Verb.STATUS), context.person
    if isinstance(alert, Reply):
        return alert
    if not may_manage(person, alert):
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    counts = alert_counts(alert.id)
    body = context.say(
        "sms.cmd.status",
        ref=alert.reference,
        state=context.say(f"sms.cmd.state.{alert.state.value}"),
        confirmed=counts.confirmed,
        reached=counts.reached,
        pending=counts.pending,
        unreachable=counts.unreachable,
        members=counts.members,
    )
    return Reply(fit(body, 1), "ok")


# --- STOP / START -------------------------------------------------------------------------


def _mirror_carrier_opt_out(context: _Context, now: datetime) -> None:
    """Record what the carrier's opt-out handling did (`OptOutType`), whatever the text."""
    person = context.person
    if person is None:
        return
    if context.sms.opt_out_type == "STOP" and person.sms_opt_out_at is None:
        person.sms_opt_out_at = now
    elif context.sms.opt_out_type == "START":
        # Twilio's default opt-in words include YES: the carrier takes SMS again for this
        # number, so the roster does too; the YES itself is still read as a command.
        person.sms_opt_out_at = None


def _stop(context: _Context, now: datetime) -> Reply:
    if context.person is not None and context.person.sms_opt_out_at is None:
        context.person.sms_opt_out_at = now
    if context.sms.opt_out_type == "STOP":
        return Reply(None, "ok")  # Twilio has answered it: a second answer would be noise
    return context.ok("sms.cmd.opted_out")


def _start(context: _Context) -> Reply:
    if context.person is not None:
        context.person.sms_opt_out_at = None
    if context.sms.opt_out_type == "START":
        return Reply(None, "ok")  # Twilio has answered it
    return context.ok("sms.cmd.opted_in")


# --- Helpers -------------------------------------------------------------------------------


@contextmanager
def _attempt() -> Iterator[None]:
    """Run a lifecycle call in a savepoint; on a refusal undo its rows and its queued jobs.

    The rest of the transaction (the webhook's claim, a PIN failure, the audit) stays.
    """
    pending = list(db.session.info.get(PENDING_JOBS, []))
    try:
        with savepoint():
            yield
    except AlertError:
        db.session.info[PENDING_JOBS] = pending
        raise


def _word(context: _Context, verb: cmd.Verb) -> str:
    """Return the keyword for `verb` in the sender's language (NON, NEE, NEIN, NO)."""
    words = cmd.SYNONYMS[verb]
    return (words.get(context.language) or next(iter(words.values())))[0]


def _active_officer(person: Person):
    officer = person.officer
    return officer if officer is not None and officer.active else None


def _decider_plps(person: Person) -> list[Partnership]:
    return list(
        db.session.scalars(
            select(Partnership)
            .join(Membership, Membership.partnership_id == Partnership.id)
            .where(Membership.person_id == person.id, Membership.role.in_(DECIDER_ROLES))
            .order_by(Partnership.code)
        )
    )


def _alert_by_ref(ref: str) -> Alert | None:
    return db.session.scalar(select(Alert).where(Alert.reference == ref.upper()))


def _member_count(plps: list[Partnership]) -> int:
    """Return how many people the PLPs have (each once): the alert's audience."""
    return db.session.scalar(
        select(func.count(func.distinct(Membership.person_id))).where(
            Membership.partnership_id.in_([plp.id for plp in plps])
        )
    )


def _actor(person: Person | None, phone: str) -> str:
    return f"person:{person.id}" if person is not None else f"sms:{phone[:60]}"


def _audit(context: _Context, command: cmd.Command, reply: Reply) -> None:
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
    if ref and (alert := _alert_by_ref(ref)) is not None:
        subject = alert
    record_audit(
        "sms.command" if reply.outcome in ("ok", "already_confirmed") else "sms.refused",
        actor=_actor(context.person, context.sms.from_),
        actor_id=context.person.id if context.person else None,
        subject=subject,
        **details,
    )
