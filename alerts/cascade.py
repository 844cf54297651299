"""The cascade policy: which channel tries whom, when, and what is due now.

Pure functions of their arguments: no database, no Redis, no clock (the time is always
passed in), so every rule is tested with a fixed clock. `alerts.planning` turns
`plan_member` into delivery rows at release; `alerts.jobs` asks `check_step` what to do
with one step when its job runs, and `next_step` whether a member's cascade is over.

A member's plan is fixed at release: one step per channel and time of the charter
("after 3 minutes, a call to the second number"). Confirmation on any channel cancels the
steps not yet run; nothing else changes the plan (a voicemail counts as reached, not as
confirmed, so the cascade goes on).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from alerts.models import Channel, Charter, DeliveryStatus, Urgency

# Bulletin times and quiet hours are the PLP's wall-clock times.
LOCAL_TIME = ZoneInfo("Europe/Brussels")

# A delivery in one of these may still reach the member (or is about to be tried): the
# member's cascade is not over. A sent SMS or e-mail is done: no receipt has to come
# before the next step, and a confirmation can still arrive while the alert is open.
OPEN_STATUSES = frozenset(
    {
        DeliveryStatus.PLANNED,
        DeliveryStatus.QUEUED,
        DeliveryStatus.RINGING,
        DeliveryStatus.IN_PROGRESS,
    }
)

# A step job run this early is still on time: the scheduler and the workers' clocks
# differ by a little, and a step a second early harms no one.
EARLY_TOLERANCE = timedelta(seconds=5)

# A member's next step never overlaps their previous call: while it is still planned,
# being placed, ringing or answered, the step waits and looks again this often.
HOLD_RECHECK = timedelta(seconds=10)
# No call lasts this long (a minute of ringing, the message heard four times): a call
# still open after it lost its final status callback and holds nothing back any more.
LONGEST_CALL = timedelta(minutes=10)


@dataclass(frozen=True)
class MemberChannels:
    """How one member can be reached, and what they opted out of."""

    phone: str | None
    phone_is_mobile: bool
    phone2: str | None
    email: str | None
    sms_opted_out: bool = False
    call_opted_out: bool = False
    email_opted_out: bool = False


@dataclass(frozen=True)
class PlannedStep:
    """One planned delivery: step number, channel, address, delay after the release."""

    step: int
    channel: Channel
    to: str
    after: timedelta


def plan_member(
    charter: Charter,
    urgency: Urgency,
    member: MemberChannels,
    *,
    exercise: bool,
    now: datetime,
) -> list[PlannedStep]:
    """Return the member's steps for an alert released at `now`; [] means unreachable.

    Urgent: the charter's `urgent_steps` (SMS to a mobile first number only, calls to the
    first or second number, the second falling back to the first, e-mail when there is
    an address), each skipped when its channel is opted out. Non-urgent: the charter's
    `non_urgent_channels`, at once or at the next bulletin, never in quiet hours
    (`next_bulletin`). General bulletins reach no one personally. An exercise follows
    the same plan: it measures exactly what a real alert would reach.
    """
    del exercise  # the words change (prompts), the plan does not
    planned = []
    for number, channel, phone, after in _charter_steps(charter, urgency, now):
        to = _address(channel, phone, member)
        if to is not None:
            planned.append(PlannedStep(number, channel, to, after))
    return planned


@lru_cache(maxsize=64)
def _charter_steps(
    charter: Charter, urgency: Urgency, now: datetime
) -> tuple[tuple[int, Channel, int, timedelta], ...]:
    """Return (step, channel, phone 1 or 2, delay) of the charter; the same for every member.

    Cached: planning asks it once per member of a 10,000-member alert with the same
    charter and release time.
    """
    if urgency == Urgency.URGENT:
        return tuple(
            (number, Channel(s.channel), s.phone, timedelta(minutes=s.after_minutes))
            for number, s in enumerate(charter.urgent_steps)
        )
    if urgency == Urgency.NON_URGENT:
        delay = next_bulletin(now, charter) - now
        return tuple(
            (number, Channel(channel), 1, delay)
            for number, channel in enumerate(charter.non_urgent_channels)
        )
    return ()


def _address(channel: Channel, phone: int, member: MemberChannels) -> str | None:
    if channel == Channel.SMS:
        # SMS goes to the first number only, and only when it is a mobile: a landline
        # cannot take it (Twilio 21614) and the second number's type is a guess.
        usable = member.phone_is_mobile and not member.sms_opted_out
        return member.phone if usable else None
    if channel == Channel.CALL:
        if member.call_opted_out:
            return None
        return (member.phone2 or member.phone) if phone == 2 else member.phone
    return member.email if not member.email_opted_out else None


def next_bulletin(now: datetime, charter: Charter) -> datetime:
    """Return when non-urgent news planned at `now` goes out (UTC).

    At once, or at the charter's next bulletin time when it holds green news for the
    bulletin; in both cases never during the charter's quiet hours, whose end it waits
    for. Times are Europe/Brussels wall-clock times, daylight saving included.
    """
    at = now.astimezone(LOCAL_TIME)
    if charter.non_urgent_at_bulletin:
        at = _next_wall_clock(at, _clock(charter.bulletin_time))
    if charter.quiet_hours is not None:
        start, end = (_clock(value) for value in charter.quiet_hours)
        if _within(at.time(), start, end):
            at = _next_wall_clock(at, end)
    return at.astimezone(UTC)


def _clock(value: str) -> time:
    return time.fromisoformat(value)


def _within(moment: time, start: time, end: time) -> bool:
    if start == end:  # an empty span: no quiet hours
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # across midnight (22:00 to 07:00)


def _next_wall_clock(after: datetime, clock: time) -> datetime:
    """Return the first moment at or after `after` (local) when the wall clock shows `clock`."""
    candidate = datetime.combine(after.date(), clock, tzinfo=LOCAL_TIME)
    if candidate < after:
        candidate = datetime.combine(after.date() + timedelta(days=1), clock, tzinfo=LOCAL_TIME)
    return candidate


# ---------------------------------------------------------------------------------------
# While the alert runs


class Verdict(enum.StrEnum):
    """What a step job does with its delivery."""

    SEND = "send"  # hand it to the carrier (or the mail relay) now
    SKIP = "skip"  # moot: the alert is over, or the channel was opted out since planning
    CANCEL = "cancel"  # the member confirmed: no more steps for them
    WAIT = "wait"  # not due yet: run again at `at`


@dataclass(frozen=True)
class StepCheck:
    """A verdict on one step, with the reason recorded on the delivery (and when to wait for)."""

    verdict: Verdict
    reason: str | None = None
    at: datetime | None = None  # WAIT only: when to look again


def check_step(
    *,
    alert_open: bool,
    expires_at: datetime,
    confirmed: bool,
    opted_out: bool,
    due_at: datetime,
    now: datetime,
    held_until: datetime | None = None,
) -> StepCheck:
    """Decide what a planned step does at `now`; the first reason that applies wins.

    `held_until` is what `held_by_earlier_calls` says of the member's earlier calls.
    """
    if not alert_open:
        return StepCheck(Verdict.SKIP, "alert no longer delivering")
    if expires_at <= now:
        return StepCheck(Verdict.SKIP, "alert expired")
    if confirmed:
        return StepCheck(Verdict.CANCEL, "already confirmed")
    if opted_out:
        return StepCheck(Verdict.SKIP, "channel opted out")
    ready_at = max(due_at, held_until or due_at)
    if ready_at > now + EARLY_TOLERANCE:
        reason = "not due yet" if due_at > now + EARLY_TOLERANCE else "after the previous call"
        return StepCheck(Verdict.WAIT, reason, ready_at)
    return StepCheck(Verdict.SEND)


@dataclass(frozen=True)
class Attempt:
    """One delivery of a member, as far as the policy needs to know it."""

    delivery_id: int
    step: int
    channel: Channel
    due_at: datetime
    status: DeliveryStatus
    sent_at: datetime | None = None  # handed to the carrier


def held_by_earlier_calls(
    step: int, due_at: datetime, attempts: Sequence[Attempt], now: datetime
) -> datetime | None:
    """Return until when the member's earlier calls hold a step back; None: they do not.

    The charter's delays are meant between attempts ("3 minutes after the first call
    without confirmation"), but the first wave of a large alert is paced, so a member's
    first call may be placed minutes after the release. So a later step (a call, an
    e-mail) waits while an earlier call of the member is still planned or open (the
    member may be listening to it and about to press 1), and then keeps the charter's
    spacing from when that call was placed. A call open for longer than `LONGEST_CALL`
    lost its final callback and holds nothing back. The SMS sent with the first call is
    not a call: steps never wait for a delivery receipt.
    """
    held: datetime | None = None
    for earlier in attempts:
        if earlier.channel != Channel.CALL or earlier.step >= step:
            continue
        gap = max(due_at - earlier.due_at, timedelta(0))
        placed = earlier.sent_at
        is_open = earlier.status in OPEN_STATUSES
        if is_open and placed is None:
            # Not placed yet (paced, or being placed): this step comes a gap after it at best.
            until = now + max(gap, HOLD_RECHECK)
        elif is_open and placed + LONGEST_CALL > now:
            until = max(now + HOLD_RECHECK, placed + gap)
        elif placed is not None:
            until = placed + gap
        else:
            continue  # failed or skipped before reaching the carrier: nothing to space from
        held = until if held is None else max(held, until)
    return held


@dataclass(frozen=True)
class NextStep:
    """Where a member's cascade stands at one moment."""

    due: tuple[Attempt, ...]  # planned and due now, in order
    next_at: datetime | None  # when the next planned step comes due; None: none left
    over: bool  # nothing planned or in progress is left, or the member confirmed
    confirmed: bool


def next_step(attempts: Sequence[Attempt], *, confirmed: bool, now: datetime) -> NextStep:
    """Return what is due now for a member, when the next step comes, and whether it is over."""
    if confirmed:
        return NextStep(due=(), next_at=None, over=True, confirmed=True)
    planned = sorted(
        (a for a in attempts if a.status == DeliveryStatus.PLANNED),
        key=lambda a: (a.due_at, a.step),
    )
    due = tuple(a for a in planned if a.due_at <= now + EARLY_TOLERANCE)
    later = [a.due_at for a in planned if a.due_at > now + EARLY_TOLERANCE]
    return NextStep(
        due=due,
        next_at=min(later) if later else None,
        over=not any(a.status in OPEN_STATUSES for a in attempts),
        confirmed=False,
    )
