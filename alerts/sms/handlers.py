"""What the app does for each command texted to the PLP number, one function a command.

Each handler takes the message being handled (`Context`: sender, language) and the
parsed command, carries it out for the sender's role, and returns the `Reply`:

- an officer's `ALERTE <pin> <targets> <message>` raises an alert awaiting release;
- a coordinator's `ALERTE <pin> <message>` raises and releases one for their own PLP;
- `OUI <ref>` / `NON <ref>` from a coordinator or steering member releases or rejects an
  alert awaiting release (the lifecycle makes the first answer win and tells the others);
  from anyone else `OUI <ref>` confirms, as `1` and `OK` do;
- `STATUT <ref>` gives an officer or a coordinator the alert's counts;
- opt-out and opt-in words mark the person (`sms_opt_out_at`), as Twilio's `OptOutType`
  says the carrier did; help words and anything else get the usage.

Handlers never commit: `alerts.sms.inbound.handle_inbound` commits the whole message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from alerts.confirmation import CONFIRMABLE_STATES, confirm, is_addressed, is_confirmable
from alerts.lifecycle import (
    DECIDER_ROLES,
    MAX_TEXT_LENGTH,
    AlertError,
    IllegalTransition,
    NotAllowed,
    can_decide,
    may_manage,
    reject_alert,
    release_alert,
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
)
from alerts.people.lockout import PinOutcome, check_person_pin
from alerts.raising import raise_alert, resolve_targets
from alerts.sms import commands as cmd
from alerts.sms.message import Context, Reply, fit
from alerts.tracking import alert_counts, member_count
from core.extensions import db
from core.queue import PENDING_JOBS, savepoint

log = logging.getLogger(__name__)

LOCAL_TIME = ZoneInfo("Europe/Brussels")  # the clock the officer reads "locked until" on


# --- AIDE / HELP, and anything else -----------------------------------------------------


def handle_help(context: Context) -> Reply:
    """Answer a help word with the usage for the sender's role."""
    return Reply(usage(context), "ok")


def usage(context: Context) -> str:
    """Return the usage for the sender's role: officer, coordinator, or member."""
    person = context.person
    if person is not None and _active_officer(person):
        return context.say("sms.cmd.usage_officer")
    if person is not None and _decider_plps(person):
        return context.say("sms.cmd.usage_coordinator")
    return context.say("sms.cmd.usage_member")


# --- ALERTE ------------------------------------------------------------------------------


def handle_alert(context: Context, command: cmd.Alert, now: datetime) -> Reply:
    """Check the sender's PIN, then raise an officer's or a coordinator's alert."""
    person = context.person
    officer = _active_officer(person) if person else None
    own_plps = _decider_plps(person) if person else []
    if person is None or (officer is None and not own_plps):
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    usage_key = "sms.cmd.usage_officer" if officer else "sms.cmd.usage_coordinator"
    if not command.pin:
        missing = context.say("sms.cmd.pin_missing")
        return Reply(f"{missing} {context.say(usage_key)}", "pin_missing")
    check = check_person_pin(person, command.pin, phone=context.sms.from_, channel="sms", now=now)
    if check.outcome == PinOutcome.LOCKED:
        until = check.locked_until.astimezone(LOCAL_TIME).strftime("%H:%M")
        return context.refuse("pin_locked", "sms.cmd.pin_locked", until=until)
    if check.outcome == PinOutcome.WRONG:
        return context.refuse("pin_wrong", "sms.cmd.pin_wrong", left=check.attempts_left)
    if officer is not None:
        return _officer_alert(context, officer, command, now)
    return _coordinator_alert(context, own_plps, command, now)


def _officer_alert(context: Context, officer, command: cmd.Alert, now: datetime) -> Reply:
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
    context: Context, own_plps: list[Partnership], command: cmd.Alert, now: datetime
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


def _raise(context: Context, plps: list[Partnership], message: str, now: datetime) -> Reply:
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
    members = member_count(plp.id for plp in plps)
    if alert.state == AlertState.AWAITING_RELEASE:
        return context.ok("sms.cmd.raised", ref=alert.reference, plps=codes, members=members)
    return context.ok("sms.cmd.raised_released", ref=alert.reference, plps=codes, members=members)


# --- OUI / NON <ref> ---------------------------------------------------------------------


def handle_yes(context: Context, ref: str, now: datetime) -> Reply:  # noqa: PLR0911 (one per outcome)
    """Release the alert `ref` for a decider; confirm it for anyone else."""
    person = context.person
    if person is None:
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    alert = alert_by_ref(ref)
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


def _named_alert(context: Context, ref: str | None, verb: cmd.Verb) -> Alert | Reply:
    """Return the alert `ref` names, or the refusal: unknown sender, no or unknown ref."""
    if context.person is None:
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    if ref is None:
        return context.refuse("ref_missing", "sms.cmd.ref_missing", word=_word(context, verb))
    alert = alert_by_ref(ref)
    if alert is None:
        return context.refuse("unknown_ref", "sms.cmd.unknown_ref", ref=ref)
    return alert


def handle_no(context: Context, ref: str | None, now: datetime) -> Reply:
    """Reject the alert `ref` awaiting release, for a decider only."""
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


def _decided(context: Context, alert: Alert, *, now: datetime | None = None) -> Reply:
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


def handle_confirm(context: Context, ref: str | None, now: datetime) -> Reply:
    """Confirm the alert `ref`, or the latest one sent to the sender that takes it."""
    person = context.person
    if person is None:
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    if ref is not None:
        alert = alert_by_ref(ref)
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


def _confirm_alert(context: Context, alert: Alert, now: datetime) -> Reply:
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


def handle_status(context: Context, ref: str | None) -> Reply:
    """Give an officer or a coordinator the counts of the alert `ref`, in one segment.

    Nobody learns from the answer whether a reference exists: a member (or a stranger)
    is refused whatever they name, and an alert the sender may not follow is answered as
    an unknown one.
    """
    person = context.person
    if person is None or not _follows_alerts(person):
        return context.refuse("not_allowed", "sms.cmd.not_allowed")
    alert = _named_alert(context, ref, cmd.Verb.STATUS)
    if isinstance(alert, Reply):
        return alert
    if not may_manage(person, alert):
        return context.refuse("unknown_ref", "sms.cmd.unknown_ref", ref=ref)
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


def _follows_alerts(person) -> bool:
    """Tell whether `person` may follow some alerts: an active officer, a coordinator, steering."""
    officer = person.officer
    if officer is not None and officer.active:
        return True
    return (
        db.session.scalar(
            select(Membership.id)
            .where(Membership.person_id == person.id, Membership.role.in_(DECIDER_ROLES))
            .limit(1)
        )
        is not None
    )


# --- STOP / START -------------------------------------------------------------------------


def mirror_carrier_opt_out(context: Context, now: datetime) -> None:
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


def handle_stop(context: Context, now: datetime) -> Reply:
    """Opt the sender out of SMS; answer unless the carrier already did."""
    if context.person is not None and context.person.sms_opt_out_at is None:
        context.person.sms_opt_out_at = now
    if context.sms.opt_out_type == "STOP":
        return Reply(None, "ok")  # Twilio has answered it: a second answer would be noise
    return context.ok("sms.cmd.opted_out")


def handle_start(context: Context) -> Reply:
    """Opt the sender back in to SMS; answer unless the carrier already did."""
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


def _word(context: Context, verb: cmd.Verb) -> str:
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


def alert_by_ref(ref: str) -> Alert | None:
    """Return the alert with the reference `ref` (any case), or None."""
    return db.session.scalar(select(Alert).where(Alert.reference == ref.upper()))
