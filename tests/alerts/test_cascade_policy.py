"""The cascade policy as pure functions, with a fixed clock: no database, no Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.cascade import (
    EARLY_TOLERANCE,
    HOLD_RECHECK,
    LONGEST_CALL,
    Attempt,
    MemberChannels,
    PlannedStep,
    StepCheck,
    Verdict,
    check_step,
    held_by_earlier_calls,
    next_bulletin,
    next_step,
    plan_member,
)
from alerts.models import CascadeStep, Channel, Charter, DeliveryStatus, Urgency

# A Wednesday in winter (Brussels is UTC+1) and one in summer (UTC+2).
WINTER_NOON = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)
SUMMER_NOON = datetime(2025, 7, 16, 10, 0, tzinfo=UTC)
NOW = WINTER_NOON

MOBILE = "+32470000001"
SECOND = "+3222000002"
EMAIL = "member@example.be"
EVERYTHING = MemberChannels(phone=MOBILE, phone_is_mobile=True, phone2=SECOND, email=EMAIL)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def plan(
    member: MemberChannels = EVERYTHING,
    *,
    charter: Charter | None = None,
    urgency: Urgency = Urgency.URGENT,
    now: datetime = NOW,
    exercise: bool = False,
):
    return plan_member(charter or Charter(), urgency, member, exercise=exercise, now=now)


# --- plan_member: urgent -------------------------------------------------------------------


def test_urgent_member_with_every_channel_gets_the_charter_steps_in_order():
    """SMS and call at once, second number after 3 min, first again after 8, e-mail at 15."""
    assert plan() == [
        PlannedStep(0, Channel.SMS, MOBILE, minutes(0)),
        PlannedStep(1, Channel.CALL, MOBILE, minutes(0)),
        PlannedStep(2, Channel.CALL, SECOND, minutes(3)),
        PlannedStep(3, Channel.CALL, MOBILE, minutes(8)),
        PlannedStep(4, Channel.EMAIL, EMAIL, minutes(15)),
    ]


def test_landline_gets_calls_but_no_sms_and_keeps_the_charter_step_numbers():
    """A fixed first number takes no SMS; the remaining steps keep their numbers."""
    member = MemberChannels(phone="+3222000001", phone_is_mobile=False, phone2=None, email=None)
    assert plan(member) == [
        PlannedStep(1, Channel.CALL, "+3222000001", minutes(0)),
        PlannedStep(2, Channel.CALL, "+3222000001", minutes(3)),
        PlannedStep(3, Channel.CALL, "+3222000001", minutes(8)),
    ]


def test_second_number_call_falls_back_to_the_first_number():
    """Without a second number, the step for it calls the first one again."""
    member = MemberChannels(phone=MOBILE, phone_is_mobile=True, phone2=None, email=None)
    calls = [step for step in plan(member) if step.channel == Channel.CALL]
    assert [step.to for step in calls] == [MOBILE, MOBILE, MOBILE]


def test_sms_opt_out_drops_only_the_sms():
    """A member who texted STOP still gets the calls and the e-mail."""
    member = MemberChannels(
        phone=MOBILE, phone_is_mobile=True, phone2=SECOND, email=EMAIL, sms_opted_out=True
    )
    assert [step.step for step in plan(member)] == [1, 2, 3, 4]


def test_call_opt_out_drops_every_call():
    """A member who refuses calls gets the SMS and the e-mail only."""
    member = MemberChannels(
        phone=MOBILE, phone_is_mobile=True, phone2=SECOND, email=EMAIL, call_opted_out=True
    )
    assert [step.channel for step in plan(member)] == [Channel.SMS, Channel.EMAIL]


@pytest.mark.parametrize(
    "member",
    [
        MemberChannels(phone=MOBILE, phone_is_mobile=True, phone2=None, email=None),
        MemberChannels(
            phone=MOBILE, phone_is_mobile=True, phone2=None, email=EMAIL, email_opted_out=True
        ),
    ],
    ids=["no address", "opted out"],
)
def test_no_email_step_without_a_usable_address(member):
    """The e-mail step needs an address the member did not opt out of."""
    assert Channel.EMAIL not in [step.channel for step in plan(member)]


def test_member_with_every_channel_opted_out_is_unreachable():
    """An empty plan means the member cannot be reached at all."""
    member = MemberChannels(
        phone=MOBILE,
        phone_is_mobile=True,
        phone2=SECOND,
        email=EMAIL,
        sms_opted_out=True,
        call_opted_out=True,
        email_opted_out=True,
    )
    assert plan(member) == []


def test_email_only_member_gets_the_email_step_only():
    """No phone at all (or calls and SMS refused): only the e-mail, at its time."""
    member = MemberChannels(phone=None, phone_is_mobile=False, phone2=None, email=EMAIL)
    assert plan(member) == [PlannedStep(4, Channel.EMAIL, EMAIL, minutes(15))]


def test_charter_steps_and_timings_are_the_plp_own():
    """A charter with its own steps (seconds apart, phone 2) is followed as written."""
    charter = Charter(urgent_steps=(CascadeStep(0, "call", 2), CascadeStep(0.5, "sms")))
    assert plan(charter=charter) == [
        PlannedStep(0, Channel.CALL, SECOND, timedelta(seconds=0)),
        PlannedStep(1, Channel.SMS, MOBILE, timedelta(seconds=30)),
    ]


def test_unknown_channel_in_a_charter_is_refused():
    """A charter naming a channel that does not exist is an error, not a silent skip."""
    with pytest.raises(ValueError, match="fax"):
        plan(charter=Charter(urgent_steps=(CascadeStep(0, "fax"),)))


def test_exercise_follows_the_same_plan():
    """An exercise measures reachability: its plan is exactly the real one."""
    assert plan(exercise=True) == plan(exercise=False)


def test_general_bulletin_reaches_nobody_personally():
    """A general bulletin is public: no personal delivery is planned."""
    assert plan(urgency=Urgency.GENERAL) == []


# --- plan_member: non-urgent -----------------------------------------------------------------


def test_non_urgent_goes_by_email_at_once_outside_quiet_hours():
    """Green news: the charter's channels (e-mail by default), at once at noon."""
    assert plan(urgency=Urgency.NON_URGENT) == [PlannedStep(0, Channel.EMAIL, EMAIL, minutes(0))]


def test_non_urgent_with_sms_in_the_charter_texts_mobiles_only():
    """`non_urgent_channels` with SMS texts a mobile; a landline gets the e-mail alone."""
    charter = Charter(non_urgent_channels=("email", "sms"))
    assert plan(charter=charter, urgency=Urgency.NON_URGENT) == [
        PlannedStep(0, Channel.EMAIL, EMAIL, minutes(0)),
        PlannedStep(1, Channel.SMS, MOBILE, minutes(0)),
    ]
    landline = MemberChannels(phone="+3222000001", phone_is_mobile=False, phone2=None, email=EMAIL)
    assert [s.channel for s in plan(landline, charter=charter, urgency=Urgency.NON_URGENT)] == [
        Channel.EMAIL
    ]


def test_non_urgent_raised_at_night_waits_for_the_end_of_quiet_hours():
    """At 23:30 Brussels time, green news waits until 07:00."""
    late = datetime(2025, 1, 15, 22, 30, tzinfo=UTC)  # 23:30 in Brussels (UTC+1)
    [step] = plan(urgency=Urgency.NON_URGENT, now=late)
    assert step.after == timedelta(hours=7, minutes=30)


def test_non_urgent_held_for_the_bulletin_goes_at_the_bulletin_time():
    """With `non_urgent_at_bulletin`, noon news goes out at 18:00 local the same day."""
    charter = Charter(non_urgent_at_bulletin=True)
    [step] = plan(charter=charter, urgency=Urgency.NON_URGENT)
    assert step.after == timedelta(hours=6)


# --- next_bulletin ----------------------------------------------------------------------------


def test_next_bulletin_follows_daylight_saving_time():
    """18:00 in Brussels is 17:00 UTC in winter and 16:00 UTC in summer."""
    charter = Charter(non_urgent_at_bulletin=True)
    assert next_bulletin(WINTER_NOON, charter) == datetime(2025, 1, 15, 17, 0, tzinfo=UTC)
    assert next_bulletin(SUMMER_NOON, charter) == datetime(2025, 7, 16, 16, 0, tzinfo=UTC)


def test_next_bulletin_after_today_bulletin_is_tomorrow():
    """At 19:00 the day's bulletin is past: the next one is tomorrow at 18:00."""
    charter = Charter(non_urgent_at_bulletin=True, quiet_hours=None)
    evening = datetime(2025, 1, 15, 18, 0, tzinfo=UTC)  # 19:00 local
    assert next_bulletin(evening, charter) == datetime(2025, 1, 16, 17, 0, tzinfo=UTC)


def test_next_bulletin_at_the_bulletin_minute_is_now():
    """Exactly at the bulletin time, it goes at once."""
    charter = Charter(non_urgent_at_bulletin=True)
    at_six = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)
    assert next_bulletin(at_six, charter) == at_six


def test_bulletin_time_inside_quiet_hours_moves_to_their_end():
    """A bulletin set at 23:00 with quiet hours 22:00-07:00 goes out at 07:00."""
    charter = Charter(non_urgent_at_bulletin=True, bulletin_time="23:00")
    assert next_bulletin(WINTER_NOON, charter) == datetime(2025, 1, 16, 6, 0, tzinfo=UTC)


def test_quiet_hours_within_one_day():
    """Quiet hours 12:00-14:00: noon news waits until 14:00; 14:00 itself is not quiet."""
    charter = Charter(quiet_hours=("12:00", "14:00"))
    assert next_bulletin(WINTER_NOON, charter) == datetime(2025, 1, 15, 13, 0, tzinfo=UTC)
    two_pm = datetime(2025, 1, 15, 13, 0, tzinfo=UTC)
    assert next_bulletin(two_pm, charter) == two_pm


def test_quiet_hours_end_is_exclusive_and_start_inclusive():
    """07:00 is past the night's quiet hours; 22:00 is inside them."""
    charter = Charter()
    seven = datetime(2025, 1, 15, 6, 0, tzinfo=UTC)
    ten_pm = datetime(2025, 1, 15, 21, 0, tzinfo=UTC)
    assert next_bulletin(seven, charter) == seven
    assert next_bulletin(ten_pm, charter) == datetime(2025, 1, 16, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize("quiet_hours", [None, ("08:00", "08:00")], ids=["none", "empty"])
def test_no_quiet_hours_sends_at_any_time(quiet_hours):
    """Without quiet hours (or an empty span), news at 03:00 goes at 03:00."""
    night = datetime(2025, 1, 15, 2, 0, tzinfo=UTC)
    assert next_bulletin(night, Charter(quiet_hours=quiet_hours)) == night


# --- check_step -------------------------------------------------------------------------------

DUE = NOW
LATER = NOW + timedelta(hours=2)


def check(**overrides) -> StepCheck:
    values = {
        "alert_open": True,
        "expires_at": LATER,
        "confirmed": False,
        "opted_out": False,
        "due_at": DUE,
        "now": NOW,
        **overrides,
    }
    return check_step(**values)


def test_due_step_of_an_open_alert_is_sent():
    """Nothing stands in the way: send."""
    assert check() == StepCheck(Verdict.SEND)


def test_step_of_a_closed_alert_is_skipped_even_if_confirmed():
    """The alert's end comes first: the step is skipped, whatever else holds."""
    assert check(alert_open=False, confirmed=True).verdict == Verdict.SKIP


def test_step_of_an_expired_alert_is_skipped():
    """Nobody is called about an event that is over."""
    assert check(expires_at=NOW, confirmed=True) == StepCheck(Verdict.SKIP, "alert expired")


def test_step_of_a_confirmed_member_is_canceled():
    """A confirmation on any channel cancels the member's remaining steps."""
    assert check(confirmed=True, opted_out=True) == StepCheck(Verdict.CANCEL, "already confirmed")


def test_step_on_a_channel_opted_out_since_planning_is_skipped():
    """A STOP texted after the release still holds for the later steps."""
    assert check(opted_out=True) == StepCheck(Verdict.SKIP, "channel opted out")


def test_step_run_early_waits_and_slightly_early_is_sent():
    """Beyond the tolerance a step waits for its time; within it, it goes."""
    assert check(due_at=NOW + EARLY_TOLERANCE + timedelta(seconds=1)).verdict == Verdict.WAIT
    assert check(due_at=NOW + EARLY_TOLERANCE).verdict == Verdict.SEND


def test_an_early_step_waits_until_its_due_time():
    """WAIT says when to look again: the step's own time."""
    later = NOW + minutes(3)
    assert check(due_at=later) == StepCheck(Verdict.WAIT, "not due yet", later)


def test_a_due_step_held_by_an_earlier_call_waits_until_the_hold_ends():
    """Due, but the member's previous call is still open: wait for the hold."""
    hold = NOW + minutes(1)
    assert check(held_until=hold) == StepCheck(Verdict.WAIT, "after the previous call", hold)
    assert check(held_until=NOW + EARLY_TOLERANCE) == StepCheck(Verdict.SEND)


def test_a_step_not_yet_due_and_held_waits_for_the_later_of_both():
    hold, due = NOW + minutes(5), NOW + minutes(3)
    assert check(due_at=due, held_until=hold) == StepCheck(Verdict.WAIT, "not due yet", hold)


def test_confirmation_cancels_a_held_step():
    """A hold never delays a cancellation: the member confirmed during the previous call."""
    assert check(confirmed=True, held_until=NOW + minutes(1)).verdict == Verdict.CANCEL


# --- held_by_earlier_calls ---------------------------------------------------------------------


def call(step: int, status: DeliveryStatus, *, due: float = 0, sent: float | None = 0.0):
    return Attempt(
        delivery_id=100 + step,
        step=step,
        channel=Channel.CALL,
        due_at=NOW + minutes(due),
        status=status,
        sent_at=None if sent is None else NOW + minutes(sent),
    )


def test_the_first_call_of_a_member_is_held_by_nothing():
    sms = Attempt(100, 0, Channel.SMS, NOW, DeliveryStatus.QUEUED, sent_at=None)
    assert held_by_earlier_calls(1, NOW, [sms], NOW) is None


def test_a_call_placed_late_by_pacing_keeps_the_charter_gap_from_when_it_was_placed():
    """First call placed 10 minutes after the release (a long paced wave), ended unanswered:
    the second call, due at 3 minutes, comes 3 minutes after the first, not at once."""
    first = call(1, DeliveryStatus.NO_ANSWER, due=0, sent=10)
    now = NOW + minutes(11)
    assert held_by_earlier_calls(2, NOW + minutes(3), [first], now) == NOW + minutes(13)


def test_a_call_still_ringing_or_answered_holds_the_next_step_even_past_the_gap():
    """The member may be listening and about to press 1: look again shortly."""
    for status in (DeliveryStatus.RINGING, DeliveryStatus.IN_PROGRESS, DeliveryStatus.QUEUED):
        first = call(1, status, sent=0)
        now = NOW + minutes(4)
        assert held_by_earlier_calls(2, NOW + minutes(3), [first], now) == now + HOLD_RECHECK


def test_a_call_not_yet_placed_holds_the_next_step_for_at_least_the_gap():
    first = call(1, DeliveryStatus.PLANNED, sent=None)
    now = NOW + minutes(3)
    assert held_by_earlier_calls(2, NOW + minutes(3), [first], now) == now + minutes(3)


def test_a_call_open_longer_than_any_call_lost_its_callback_and_holds_nothing_more():
    first = call(1, DeliveryStatus.IN_PROGRESS, sent=0)
    now = NOW + LONGEST_CALL + minutes(1)
    # Only the gap from when it was placed, long past: the step may go.
    assert held_by_earlier_calls(2, NOW + minutes(3), [first], now) == NOW + minutes(3)


def test_a_call_refused_before_the_carrier_took_it_holds_nothing():
    """An invalid number fails at once: the steps keep the charter's own times."""
    first = call(1, DeliveryStatus.FAILED, sent=None)
    assert held_by_earlier_calls(2, NOW + minutes(3), [first], NOW + minutes(3)) is None


def test_the_latest_hold_of_several_earlier_calls_wins():
    calls = [
        call(1, DeliveryStatus.NO_ANSWER, due=0, sent=0),
        call(2, DeliveryStatus.NO_ANSWER, due=3, sent=9),
    ]
    # Step 3 at 8 minutes: 8 after the first (at 8), 5 after the second (at 14).
    assert held_by_earlier_calls(3, NOW + minutes(8), calls, NOW + minutes(10)) == NOW + minutes(14)


def test_later_and_non_call_steps_do_not_hold():
    later = call(3, DeliveryStatus.RINGING, due=8, sent=8)
    sms = Attempt(100, 0, Channel.SMS, NOW, DeliveryStatus.QUEUED, sent_at=None)
    assert held_by_earlier_calls(2, NOW + minutes(3), [later, sms], NOW + minutes(9)) is None


# --- next_step --------------------------------------------------------------------------------


def attempt(step: int, status: DeliveryStatus, after: float = 0, channel=Channel.CALL):
    return Attempt(
        delivery_id=100 + step,
        step=step,
        channel=channel,
        due_at=NOW + minutes(after),
        status=status,
    )


def test_confirmed_member_has_nothing_due_and_is_over():
    """Confirmation ends the member's cascade, planned steps or not."""
    result = next_step([attempt(2, DeliveryStatus.PLANNED, 3)], confirmed=True, now=NOW)
    assert (result.due, result.next_at, result.over, result.confirmed) == ((), None, True, True)


def test_due_steps_are_listed_in_order_and_the_next_time_given():
    """At release the first two steps are due, the next one comes at 3 minutes."""
    attempts = [
        attempt(2, DeliveryStatus.PLANNED, 3),
        attempt(1, DeliveryStatus.PLANNED, 0),
        attempt(0, DeliveryStatus.PLANNED, 0, Channel.SMS),
        attempt(3, DeliveryStatus.PLANNED, 8),
    ]
    result = next_step(attempts, confirmed=False, now=NOW)
    assert [a.step for a in result.due] == [0, 1]
    assert result.next_at == NOW + minutes(3)
    assert result.over is False


def test_a_call_in_progress_keeps_the_cascade_going():
    """Nothing planned is left, but a ringing call may still be answered."""
    attempts = [attempt(1, DeliveryStatus.NO_ANSWER), attempt(3, DeliveryStatus.RINGING)]
    result = next_step(attempts, confirmed=False, now=NOW + minutes(9))
    assert (result.due, result.next_at, result.over) == ((), None, False)


def test_member_with_every_step_done_is_over_without_confirmation():
    """Sent SMS and e-mail, unanswered and voicemail calls: exhausted, not confirmed."""
    attempts = [
        attempt(0, DeliveryStatus.SENT, channel=Channel.SMS),
        attempt(1, DeliveryStatus.COMPLETED),
        attempt(2, DeliveryStatus.NO_ANSWER, 3),
        attempt(3, DeliveryStatus.FAILED, 8),
        attempt(4, DeliveryStatus.SENT, 15, Channel.EMAIL),
    ]
    result = next_step(attempts, confirmed=False, now=NOW + minutes(20))
    assert (result.over, result.confirmed, result.due) == (True, False, ())


def test_a_claimed_step_is_still_open():
    """A step taken by a worker but not yet accepted by the carrier is not over."""
    result = next_step([attempt(1, DeliveryStatus.QUEUED)], confirmed=False, now=NOW)
    assert result.over is False


def test_unreachable_member_is_over_at_once():
    """A member with only the skipped "no usable channel" row has nothing left to try."""
    result = next_step([attempt(0, DeliveryStatus.SKIPPED)], confirmed=False, now=NOW)
    assert (result.over, result.due, result.next_at) == (True, (), None)
