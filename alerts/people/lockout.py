"""The PIN lockout shared by the SMS and the phone paths.

Five wrong PINs from one number within 15 minutes lock that number for 15 minutes, by
SMS and by phone alike (the failures are one table, `PinFailure`, whatever the channel).
While a number is locked its PINs are not even checked, so guessing on a locked number
teaches nothing and extends nothing. A right PIN clears the number's failures.

Nothing here commits: the caller's transaction records the failure with its reply, and
the caller commits (a refusal's failure must be committed, or the lockout never comes).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from alerts.models import Person, PinFailure, record_audit, utcnow
from alerts.people.pins import verify_pin
from core.extensions import db

log = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


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
    failures before a lock that has ended no longer count.
    """
    failures = sorted(failures)
    counted: list[datetime] = []
    lock_end: datetime | None = None
    for at in failures:
        if lock_end is not None and at < lock_end:
            continue  # typed while locked: never recorded by this module, ignored if present
        counted = [f for f in counted if f > at - WINDOW]
        counted.append(at)
        if len(counted) >= MAX_FAILURES:
            lock_end, counted = at + LOCK, []
    if lock_end is not None and lock_end > now:
        return lock_end, 0
    recent = [f for f in counted if f > now - WINDOW]
    return None, max(MAX_FAILURES - len(recent), 0)


def _failures(phone: str, now: datetime) -> list[datetime]:
    since = now - WINDOW - LOCK - WINDOW  # enough history to see a lock still running
    return list(
        db.session.scalars(
            select(PinFailure.at).where(PinFailure.phone == phone, PinFailure.at > since)
        )
    )


def locked_until(phone: str, *, now: datetime | None = None) -> datetime | None:
    """Return when the number's lock ends, None when it is not locked."""
    now = now or utcnow()
    return lock_state(_failures(phone, now), now)[0]


def check_person_pin(
    person: Person, pin: str, *, phone: str, channel: str, now: datetime | None = None
) -> PinCheck:
    """Check the PIN `person` typed (channel "call") or texted ("sms") from `phone`.

    A wrong PIN is recorded (and the lock, when it starts, audited) in the session.
    """
    now = now or utcnow()
    until, left = lock_state(_failures(phone, now), now)
    if until is not None:
        log.info("pin refused: number locked phone=%s until=%s", phone, until.isoformat())
        return PinCheck(PinOutcome.LOCKED, 0, until)
    if verify_pin(person.pin_hash, pin):
        db.session.execute(delete(PinFailure).where(PinFailure.phone == phone))
        return PinCheck(PinOutcome.OK)
    db.session.add(PinFailure(phone=phone, channel=channel, at=now))
    db.session.flush()
    until, left = lock_state(_failures(phone, now), now)
    if until is not None:
        record_audit(
            "pin.locked",
            actor=channel,
            actor_id=person.id,
            subject=person,
            phone=phone,
            until=until.isoformat(),
        )
        log.warning("pin lockout phone=%s person_id=%s until=%s", phone, person.id, until)
        return PinCheck(PinOutcome.LOCKED, 0, until)
    record_audit("pin.failed", actor=channel, actor_id=person.id, subject=person, left=left)
    return PinCheck(PinOutcome.WRONG, left)
