"""The PIN lockout shared by SMS and phone: 5 failures in 15 minutes lock for 15 minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from alerts.models import AuditEvent, PhoneType, PinFailure, utcnow
from alerts.people.lockout import (
    BACKOFF_MEMORY,
    LOCK,
    MAX_FAILURES,
    MAX_LOCK,
    WINDOW,
    PinOutcome,
    check_person_pin,
    lock_state,
    locked_until,
)
from alerts.people.pins import hash_pin
from core.extensions import db
from core.queue import get_queue

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


def _five_from(start: datetime) -> list[datetime]:
    return [start + timedelta(seconds=10 * n) for n in range(MAX_FAILURES)]


def test_each_further_lock_within_a_day_lasts_twice_the_one_before():
    """Back-off: 15 min, then 30 min, then 1 h, for locks that follow within a day."""
    first = _five_from(at(0))
    assert lock_state(first, first[-1]) == (first[-1] + LOCK, 0)
    second = _five_from(first[-1] + LOCK)
    assert lock_state(first + second, second[-1]) == (second[-1] + 2 * LOCK, 0)
    third = _five_from(second[-1] + 2 * LOCK)
    assert lock_state(first + second + third, third[-1]) == (third[-1] + 4 * LOCK, 0)


def test_a_lock_a_day_after_the_last_one_is_short_again():
    """Back-off forgets: a lock more than a day after the previous one ended lasts `LOCK`."""
    first = _five_from(at(0))
    later = _five_from(first[-1] + LOCK + BACKOFF_MEMORY + timedelta(minutes=1))
    assert lock_state(first + later, later[-1]) == (later[-1] + LOCK, 0)


def test_back_off_never_locks_longer_than_a_day():
    """However many locks, one never lasts more than `MAX_LOCK`."""
    failures: list[datetime] = []
    start = at(0)
    for _ in range(10):
        batch = _five_from(start)
        failures += batch
        until, _left = lock_state(failures, batch[-1])
        start = until
    assert until - failures[-1] == MAX_LOCK


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
    assert locked_until(person, now=at(1)) == T0 + LOCK
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


def test_guesses_from_any_number_or_notation_of_a_person_share_one_count(app, make_person):
    """Six notations or a second phone give no more guesses: the count is the person's."""
    person = make_person(phone="+32470123456", phone2="+32471999888", pin_hash=hash_pin("4829"))
    sources = ["+32470123456", "0470123456", "0470 12 34 56", "+32471999888"]
    for expected_left, phone in zip(range(MAX_FAILURES - 1, 0, -1), sources, strict=True):
        result = check_person_pin(person, "1111", phone=phone, channel="sms", now=T0)
        assert (result.outcome, result.attempts_left) == (PinOutcome.WRONG, expected_left)
    locked = check_person_pin(person, "1111", phone="00 32 470 12 34 56", channel="sms", now=T0)
    assert locked.outcome == PinOutcome.LOCKED
    db.session.commit()
    other_number = check_person_pin(person, "4829", phone="+32471999888", channel="call", now=at(1))
    assert other_number.outcome == PinOutcome.LOCKED


def test_the_person_is_texted_once_when_their_pin_locks(app, make_person, redis_conn):
    """The lock's start sends one SMS, in their language, after the commit; nothing before."""
    person = make_person(language="nl", pin_hash=hash_pin("4829"))
    for _ in range(MAX_FAILURES):
        check_person_pin(person, "1111", phone="+32499000111", channel="sms", now=T0)
    job_id = f"pin-locked-{person.id}-{int((T0 + LOCK).timestamp())}"
    assert job_id not in get_queue("urgent").get_job_ids()  # not before the commit
    db.session.commit()
    assert get_queue("urgent").get_job_ids().count(job_id) == 1
    job = get_queue("urgent").fetch_job(job_id)
    assert job.func_name == "alerts.jobs.send_notice"
    person_id, body = job.args
    assert person_id == person.id
    assert "+32 499 00 01 11" in body and "pincode" in body
    # Typed while locked: no second SMS.
    check_person_pin(person, "1111", phone="+32499000111", channel="sms", now=at(1))
    db.session.commit()
    assert [j for j in get_queue("urgent").get_job_ids() if j.startswith("pin-locked-")] == [job_id]


def test_a_person_without_a_mobile_is_not_texted_about_a_lock(app, make_person, redis_conn):
    """A landline-only person: the lock is audited, no SMS is queued."""
    person = make_person(phone_type=PhoneType.FIXED, pin_hash=hash_pin("4829"))
    for _ in range(MAX_FAILURES):
        check_person_pin(person, "1111", phone=person.phone, channel="call", now=T0)
    db.session.commit()
    assert not [j for j in get_queue("urgent").get_job_ids() if j.startswith("pin-locked-")]
