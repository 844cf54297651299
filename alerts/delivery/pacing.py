"""Carrier pacing: one limiter in Redis, shared by every worker on every host.

The carrier accepts `CALLS_PER_SECOND` calls and `SMS_PER_SECOND` messages per second
for the whole account, however many workers send. Each channel ("call", "sms") has one
Redis key, `plp:pace:<channel>`, holding the next free slot: the earliest time, in
microseconds on the Redis server's clock, at which the next send may go out. It is the
"virtual scheduling" form of GCRA (the generic cell rate algorithm of ATM networks, ITU-T
I.371): one Lua script, run atomically by Redis, reads the server's `TIME`, gives the
caller the slot `max(now, next_free)`, and moves `next_free` one interval later. The
caller sleeps until its slot, then sends. Using the server's clock means the clocks of
the worker hosts never matter: a caller only ever sleeps for a duration Redis computed.

Why this design rather than the alternatives:
- a fixed window counter (INCR per second) allows twice the rate across a window
  boundary, which is exactly what the carrier measures;
- a sliding log (a sorted set of send times) is exact but needs a round trip per retry
  while waiting, so many workers poll Redis; here a caller does ONE round trip per send
  and then sleeps exactly as long as needed, with no polling and no thundering herd;
- a token bucket allows bursts, and a burst is what we must not send.

What it guarantees. Slots are spaced `interval = (1 + GUARD) / n` seconds apart, where
`n` is the rate, rounded down to a whole number when it is 1 or more (see
`slot_interval`). So any n + 1 slots span at least 1 + GUARD seconds: no window of one
second, open or closed, holds more than n slots, nor more than the configured rate. Three
corrections to the naive "space sends 1/rate apart":
- at exactly 1/rate, slots 0 and n lie exactly one second apart, so a closed window
  [t, t + 1 s] holds n + 1 of them;
- a caller that wakes late (sleep overshoot, a Redis round trip, a busy CPU: on a loaded
  2-core machine the benchmark saw a 57 ms stall) crowds the callers booked after it,
  and the carrier sees n + 1 sends in a second. GUARD (2%: 20 ms per second) is the room
  for such delays, at the cost of running at 98% of the limit; and `wait_for_slot`
  checks, after its sleep, how late it is, timed from before its request so the round
  trip counts: later than LATE_LIMIT (10 ms), it gives the slot up (unused, it harms no
  one) and books the next free one. Every send then goes out within 10 ms of its own
  slot, and the other 10 ms covers the instant between that check and the request
  leaving. After LATE_ATTEMPTS late wake-ups in a row it sends anyway and logs a
  warning: an urgent alert is never held back indefinitely by a starved CPU;
- a fractional rate above 1 cannot be honoured per window: 10.5/s spaced 1/10.5 apart
  puts 11 sends in some one-second window. A rate of 1 or more is therefore rounded down
  (10.5 paces like 10); a rate below 1 (0.5/s) is an average (one send every 2.04 s).

Refusing instead of blocking. A caller says how long it is willing to wait
(`max_wait`). If its slot would be later, the script refuses and reserves nothing (the
refused caller consumes no slot), and `PacingBusy.retry_after` says when the wait would
fit. A job then re-schedules itself rather than holding a worker for minutes:

    try:
        wait_for_slot("sms", max_wait=10)
    except PacingBusy as busy:
        queue.enqueue_in(timedelta(seconds=busy.retry_after), send_sms, delivery_id)
        return

Priorities. Urgent work goes first through the queue order: workers take jobs from
"urgent", then "default", then "low". Pacing keeps no queue of its own: a reservation is
short-lived, made just before the worker sleeps to its slot and sends, and a worker holds
at most one at a time. So the slots booked ahead at any moment belong to jobs already
running, at most one per worker, and an urgent job that a worker picks up waits behind at
most (workers - 1) slots of whatever was running, never behind the backlog of non-urgent
jobs still in their queues. A caller that is not a worker (a web request) should use a
small `max_wait`.

If the key is lost (Redis restarted, flushed) the next caller finds no reservation and
sends at once: at worst the slots already booked (one per worker) crowd that second.
The key expires one second after its last slot, so nothing is left behind. Needs Redis 5
or newer (a script may call `TIME` before writing).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from time import monotonic, sleep

import redis
from flask import current_app

from core.extensions import redis_connection

log = logging.getLogger(__name__)

CHANNELS = ("call", "sms")  # e-mail is not paced: the SMTP relay has its own queue
KEY_PREFIX = "plp:pace:"
# Headroom on every interval for a caller waking late; see the module docstring.
GUARD = 0.02
# A caller that wakes later than this after its slot gives the slot up and books another:
# sending late would crowd the senders booked after it. Half the guard, so that the
# other half covers the moment between this check and the request leaving the host.
LATE_LIMIT = GUARD / 2
# ... but not forever: an alert is never held back indefinitely by a starved CPU.
LATE_ATTEMPTS = 3
# How long a key outlives its last reserved slot (then it means nothing: the slot is past).
KEY_SLACK_MS = 1000
_MICROS = 1_000_000

# KEYS[1]: the channel's key. ARGV: interval (µs), max wait (µs), key slack (ms).
# Returns {granted (1 or 0), slot (µs), now (µs)} on the server's clock. A refusal writes
# nothing. Numbers are written with %.0f: Lua's default tostring keeps 14 digits only,
# and a time in microseconds has 16.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_free)
if slot - now > max_wait then
  return {0, string.format('%.0f', slot), string.format('%.0f', now)}
end
local after = slot + interval
local ttl = math.ceil((after - now) / 1000) + tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', ttl)
return {1, string.format('%.0f', slot), string.format('%.0f', now)}
"""


@dataclass(frozen=True)
class Slot:
    """A reserved send time, on the Redis server's clock (Unix microseconds)."""

    channel: str
    at_us: int  # when the caller may send
    now_us: int  # when it was reserved

    @property
    def wait(self) -> float:
        """Seconds from the reservation to the slot."""
        return (self.at_us - self.now_us) / _MICROS


class PacingBusy(Exception):  # noqa: N818 (a state the caller handles, not a failure)
    """The next free slot is further away than the caller will wait; nothing was reserved."""

    def __init__(self, channel: str, wait: float, max_wait: float):
        self.channel = channel
        self.wait = wait  # seconds until the next free slot when asked
        self.max_wait = max_wait
        super().__init__(
            f"{channel}: next free slot in {wait:.3f}s, more than the {max_wait:.3f}s allowed"
        )

    @property
    def retry_after(self) -> float:
        """Seconds after which the wait would fit within `max_wait`, if no one else books."""
        return self.wait - self.max_wait


def pace_key(channel: str) -> str:
    """Return the Redis key of a channel's next free slot."""
    return KEY_PREFIX + channel


def slot_interval(rate: float) -> float:
    """Return the spacing in seconds between two slots at `rate` sends per second."""
    return _interval_us(rate) / _MICROS


def reserve_slot(
    channel: str,
    *,
    max_wait: float,
    rate: float | None = None,
    connection: redis.Redis | None = None,
) -> Slot:
    """Reserve the channel's next free slot, or raise `PacingBusy` if it is beyond `max_wait`."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; paced channels are {', '.join(CHANNELS)}")
    if not max_wait >= 0:  # also refuses NaN
        raise ValueError(f"max_wait must be 0 or more seconds, not {max_wait!r}")
    interval_us = _interval_us(_channel_rate(channel) if rate is None else rate)
    # math.inf is a valid max_wait (wait however long it takes); Lua numbers are doubles,
    # and 2**53 microseconds (285 years) stands for it.
    max_wait_us = min(max_wait * _MICROS, 2**53)
    connection = connection or redis_connection()
    script = connection.register_script(_RESERVE_LUA)
    granted, at_us, now_us = script(
        keys=[pace_key(channel)], args=[interval_us, round(max_wait_us), KEY_SLACK_MS]
    )
    slot = Slot(channel=channel, at_us=int(at_us), now_us=int(now_us))
    if not int(granted):
        log.info("pacing busy channel=%s wait=%.3f max_wait=%.3f", channel, slot.wait, max_wait)
        raise PacingBusy(channel, slot.wait, max_wait)
    log.debug("pacing slot channel=%s wait=%.3f", channel, slot.wait)
    return slot


def wait_for_slot(
    channel: str,
    *,
    max_wait: float,
    rate: float | None = None,
    connection: redis.Redis | None = None,
) -> float:
    """Reserve the channel's next slot and sleep until it; return the seconds waited.

    Raises `PacingBusy` (having reserved nothing) when the slot is beyond `max_wait`.
    Rates default to the app's `CALLS_PER_SECOND` / `SMS_PER_SECOND`. A caller that wakes
    more than `LATE_LIMIT` after its slot books a new one (see the module docstring), with
    the same `max_wait`, so `PacingBusy` can also come after a first, late, sleep.
    """
    waited = 0.0
    for attempt in range(1, LATE_ATTEMPTS + 1):
        # Timed from before the request: the script ran at some moment after this, so
        # `late` is an upper bound that includes the round trip and any stall in it.
        asked = monotonic()
        slot = reserve_slot(channel, max_wait=max_wait, rate=rate, connection=connection)
        if slot.wait > 0:
            sleep(slot.wait)
        waited += slot.wait
        late = monotonic() - asked - slot.wait
        if late <= LATE_LIMIT:
            return waited
        if attempt < LATE_ATTEMPTS:
            log.info(
                "pacing late channel=%s late=%.3f attempt=%d: slot given up", channel, late, attempt
            )
    log.warning(
        "pacing late channel=%s late=%.3f attempts=%d: sending anyway", channel, late, LATE_ATTEMPTS
    )
    return waited


def _channel_rate(channel: str) -> float:
    settings = current_app.extensions["settings"]
    return settings.calls_per_second if channel == "call" else settings.sms_per_second


def _interval_us(rate: float) -> int:
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of sends per second, not {rate!r}")
    # At most `rate` sends in ANY one-second window: a whole number of them when the rate
    # is 1 or more (see the module docstring); rounded up so the spacing is never short.
    guarded_second_us = _MICROS + round(GUARD * _MICROS)
    if rate >= 1:
        return -(-guarded_second_us // math.floor(rate))  # exact integer ceiling division
    return math.ceil(guarded_second_us / rate)
