"""The PIN lockout shared by SMS and phone: 5 failures in 15 minutes lock for 15 minutes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from alerts.models import AuditEvent, PinFailure, utcnow
from alerts.people.lockout import (
    LOCK,
    MAX_FAILURES,
    WINDOW,
    PinOutcome,
    check_person_pin,
    lock_state,
    locked_until,
)
from alerts.people.pins import hash_pin
from core.extensions import db

T0 = utcnow().replace(microsecond=0)


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


# --- the pure rule ------------------------------------------------------------------------------


def test_no_failures_leaves_every_attempt():
    assert lock_state([], T0) == (None, MAX_FAILURES)


def test_each_recent_failure_takes_one_attempt():
    assert lock_state([at(0), at(1), at(2)], at(3)) == (None, MAX_FAILURES - 3)


def test_failures_older_than_the_window_no_longer_count():
    assert lock_state([at(0), at(1)], at(1) + WINDOW) == (None, MAX_FAILURES - 0)
    assert lock_state([at(0), at(1)], at(0) + WINDOW) == (None, MAX_FAILURES - 1)


def test_the_fifth_failure_within_the_window_locks_for_the_lock_time():
    failures = [at(m) for m in (0, 2, 4, 6, 8)]
    assert lock_state(failures, at(8)) == (at(8) + LOCK, 0)
    assert lock_state(failures, at(8) + LOCK - timedelta(seconds=1)) == (at(8) + LOCK, 0)


def test_five_failures_spread_over_more_than_the_window_do_not_lock():
    failures = [at(m) for m in (0, 4, 8, 12, 16)]
    assert lock_state(failures, at(16)) == (None, 1)


def test_after_the_lock_ends_the_count_starts_again():
    failures = [at(m) for m in (0, 1, 2, 3, 4)]
    after = at(4) + LOCK
    assert lock_state(failures, after) == (None, MAX_FAILURES)
    assert lock_state([*failures, after], after) == (None, MAX_FAILURES - 1)


# --- through the database ------------------------------------------------------------------------


def test_wrong_pins_count_down_then_lock_and_a_right_pin_is_refused_while_locked(app, make_person):
    """Both channels share one count; the lock is audited once; the right PIN waits it out."""
    person = make_person(pin_hash=hash_pin("4829"))
    phone = person.phone
    channels = ["sms", "call", "sms", "call"]
    for expected_left, channel in zip(range(MAX_FAILURES - 1, 0, -1), channels, strict=True):
        result = check_person_pin(person, "1111", phone=phone, channel=channel, now=T0)
        assert (result.outcome, result.attempts_left) == (PinOutcome.WRONG, expected_left)
    locked = check_person_pin(person, "1111", phone=phone, channel="call", now=T0)
    assert locked.outcome == PinOutcome.LOCKED and locked.locked_until == T0 + LOCK
    db.session.commit()

    right_but_locked = check_person_pin(person, "4829", phone=phone, channel="sms", now=at(1))
    assert right_but_locked.outcome == PinOutcome.LOCKED
    assert locked_until(phone, now=at(1)) == T0 + LOCK
    events = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("pin.%"))
    ).all()
    assert events.count("pin.locked") == 1 and events.count("pin.failed") == MAX_FAILURES - 1
    # Typed while locked: not recorded, so the lock is not extended.
    assert db.session.scalar(select(func.count(PinFailure.id))) == MAX_FAILURES

    after = T0 + LOCK
    assert check_person_pin(person, "4829", phone=phone, channel="sms", now=after).ok


def test_a_right_pin_clears_the_failures(app, make_person):
    person = make_person(pin_hash=hash_pin("4829"))
    for _ in range(3):
        check_person_pin(person, "0000", phone=person.phone, channel="sms", now=T0)
    assert check_person_pin(person, "4829", phone=person.phone, channel="sms", now=T0).ok
    db.session.commit()
    assert db.session.scalar(select(func.count(PinFailure.id))) == 0
    wrong = check_person_pin(person, "0000", phone=person.phone, channel="sms", now=T0)
    assert wrong.attempts_left == MAX_FAILURES - 1


def test_a_person_without_a_pin_is_always_wrong(app, make_person):
    person = make_person()
    result = check_person_pin(person, "4829", phone=person.phone, channel="call", now=T0)
    assert result.outcome == PinOutcome.WRONG
