"""The PIN lockout shared by the SMS and the phone paths.

The lock is per person, whatever number or notation the guesses come from: failures are
recorded under the person's own number (`Person.phone`, E.164), so their second phone,
or "0470 12 34 56" and "+32470123456", share one count. Five wrong PINs within 15 minutes
lock the person's PIN for 15 minutes, by SMS and by phone alike; each further lock within
a day lasts twice the one before (30 min, 1 h, ... at most a day), so a patient guesser
gets a few dozen tries a day, not hundreds. While locked, PINs are not even checked, so
guessing teaches nothing and extends nothing. A right PIN clears the person's failures.
When a lock starts, the person is told by SMS that their PIN is being guessed.

Nothing here commits: the caller's transaction records the failure with its reply, and
the caller commits (a refusal's failure must be committed, or the lockout never comes).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from alerts.models import Person, PinFailure, record_audit, utcnow
from alerts.people.phones import format_international
from alerts.people.pins import verify_pin
from core.extensions import db
from core.queue import enqueue_after_commit
from prompts import text

log = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)  # the first lock; each further one within BACKOFF_MEMORY doubles
MAX_LOCK = timedelta(days=1)
BACKOFF_MEMORY = timedelta(days=1)  # a lock ended this long ago no longer doubles the next
HISTORY = timedelta(days=7)
LOCAL_TIME = ZoneInfo("Europe/Brussels")  # the clock the person reads "locked until" on


class PinOutcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"  # refused; `attempts_left` more before the lock
    LOCKED = "locked"  # refused without checking, until `locked_until`


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one PIN typed or texted from one number."""

    outcome: PinOutcome
    attempts_left: int = MAX_FAILURES
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == PinOutcome.OK


def lock_state(failures: list[datetime], now: datetime) -> tuple[datetime | None, int]:
    """Return (locked until, attempts left) for a number's failure times at `now`.

    Pure. A lock starts at the failure that makes `MAX_FAILURES` within `WINDOW`; the
    failures before a lock that has ended no longer count. A lock lasts `LOCK`, doubled
    for each lock before it in a row (each starting within `BACKOFF_MEMORY` of the end of
    the one before), at most `MAX_LOCK`.
    """
    failures = sorted(failures)
    counted: list[datetime] = []
    lock_end: datetime | None = None
    streak = 0  # locks in a row, each starting within BACKOFF_MEMORY of the last one's end
    for at in failures:
        if lock_end is not None and at < lock_end:
            continue  # typed while locked: never recorded by this module, ignored if present
        counted = [f for f in counted if f > at - WINDOW]
        counted.append(at)
        if len(counted) >= MAX_FAILURES:
            follows = lock_end is not None and at - lock_end <= BACKOFF_MEMORY
            streak = streak + 1 if follows else 0
            lock_end, counted = at + min(LOCK * 2**streak, MAX_LOCK), []
    if lock_end is not None and lock_end > now:
        return lock_end, 0
    recent = [f for f in counted if f > now - WINDOW]
    return None, max(MAX_FAILURES - len(recent), 0)


def _failures(phone: str, now: datetime) -> list[datetime]:
    # Enough history to see a lock still running and the row of locks that doubles it
    # (at most about five failures per lock: a week is a few hundred rows at worst).
    since = now - HISTORY
    return list(
        db.session.scalars(
            select(PinFailure.at).where(PinFailure.phone == phone, PinFailure.at > since)
        )
    )


def locked_until(person: Person, *, now: datetime | None = None) -> datetime | None:
    """Return when the person's PIN lock ends, None when it is not locked."""
    now = now or utcnow()
    return lock_state(_failures(person.phone, now), now)[0]


def check_person_pin(
    person: Person, pin: str, *, phone: str, channel: str, now: datetime | None = None
) -> PinCheck:
    """Check the PIN `person` typed (channel "call") or texted ("sms") from `phone`.

    A wrong PIN is recorded under the person (and the lock, when it starts, audited and
    texted to them after the commit) in the session.
    """
    now = now or utcnow()
    key = person.phone  # the person, whichever of their numbers or notations was used
    until, left = lock_state(_failures(key, now), now)
    if until is not None:
        log.info("pin refused: locked person_id=%s until=%s", person.id, until.isoformat())
        return PinCheck(PinOutcome.LOCKED, 0, until)
    if verify_pin(person.pin_hash, pin):
        db.session.execute(delete(PinFailure).where(PinFailure.phone == key))
        return PinCheck(PinOutcome.OK)
    db.session.add(PinFailure(phone=key, channel=channel, at=now))
    db.session.flush()
    until, left = lock_state(_failures(key, now), now)
    if until is not None:
        record_audit(
            "pin.locked",
            actor=channel,
            actor_id=person.id,
            subject=person,
            phone=phone,
            until=until.isoformat(),
        )
        log.warning("pin lockout person_id=%s from=%s until=%s", person.id, phone, until)
        _tell_person(person, phone, until)
        return PinCheck(PinOutcome.LOCKED, 0, until)
    record_audit(
        "pin.failed", actor=channel, actor_id=person.id, subject=person, left=left, phone=phone
    )
    return PinCheck(PinOutcome.WRONG, left)


def _tell_person(person: Person, phone: str, until: datetime) -> None:
    """Text the person, after the commit, that their PIN is being guessed (once per lock)."""
    if not person.can_receive_sms:
        return
    body = text(
        "sms.pin_guessed",
        person.language,
        count=MAX_FAILURES,
        number=format_international(phone) if phone.startswith("+") else phone,
        until=until.astimezone(LOCAL_TIME).strftime("%H:%M"),
    )
    enqueue_after_commit(
        "urgent",
        "alerts.jobs.send_notice",
        person.id,
        body,
        job_id=f"pin-locked-{person.id}-{int(until.timestamp())}",
    )
