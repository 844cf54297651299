"""All the simulator's state, in Redis: shared by the web, worker and carrier processes.

Keys start with `plp:sim:`. Each call and message is a Redis hash whose fields are JSON
values, so that `update_call` and `update_message` write only the fields they change,
atomically, without reading first (a call's life and the dev page write concurrently).
Calls and messages are indexed by the simulated person's number: the callee of an
outbound call or message, the caller or sender of an inbound one. Every write bumps
`version`, so the dev page polls one integer and fetches `snapshot()` only on change.
The Redis client is the app's, lent through `config.Wiring`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from simulator.behaviour import Behaviour, mixed_behaviour
from simulator.config import wiring

log = logging.getLogger(__name__)

PREFIX = "plp:sim:"
VERSION_KEY = PREFIX + "version"
BEHAVIOURS_KEY = PREFIX + "behaviours"  # hash: number -> behaviour JSON
NUMBERS_KEY = PREFIX + "numbers"  # set: every number with a call or a message
OPTED_OUT_KEY = PREFIX + "opted-out"  # set: numbers that texted STOP to the PLP
# set: numbers whose status callbacks the carrier loses (tests of the app's status polling)
DROPPED_CALLBACKS_KEY = PREFIX + "dropped-callbacks"
REQUESTS_KEY = PREFIX + "requests"  # list: requests for the carrier process (queue mode)
CALL_KEY = PREFIX + "call:{sid}"
CALL_EVENTS_KEY = PREFIX + "call:{sid}:events"
MESSAGE_KEY = PREFIX + "message:{sid}"
KEYS_KEY = PREFIX + "keys:{sid}"  # list: digits pressed on the dev page during a call
NUMBER_CALLS_KEY = PREFIX + "number:{number}:calls"  # list of call SIDs, newest first
NUMBER_MESSAGES_KEY = PREFIX + "number:{number}:messages"  # list of message SIDs, oldest first

MAX_CALLS_PER_NUMBER = 50  # what the dev page shows; older ones drop out of the index
MAX_MESSAGES_PER_NUMBER = 200
KEYS_TTL_SECONDS = 3600  # digits pressed for a call that never gathers them
# A blocking pop waits in steps shorter than any client's socket timeout (the app lends
# one of 3 s): a longer BLPOP would read as a dead Redis and cut the call off.
_BLOCK_STEP_SECONDS = 1.0

LIVE_CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress"})


def set_behaviour(number: str, behaviour: Behaviour) -> None:
    """Set how the person at `number` behaves from now on."""
    with _redis().pipeline() as pipe:
        pipe.hset(BEHAVIOURS_KEY, number, json.dumps(behaviour.to_dict()))
        pipe.incr(VERSION_KEY)
        pipe.execute()
    log.info("simulator behaviour set number=%s kind=%s", number, behaviour.kind)


def get_behaviour(number: str) -> Behaviour | None:
    """Return the behaviour set for `number`, or None if none was set."""
    raw = _redis().hget(BEHAVIOURS_KEY, number)
    return Behaviour.from_dict(json.loads(raw)) if raw is not None else None


def behaviour_for(number: str) -> Behaviour:
    """Return the behaviour set for `number`, else its share of the demo's realistic mix."""
    return get_behaviour(number) or mixed_behaviour(number, wiring().is_landline)


def clear() -> None:
    """Forget every behaviour, call, message, opt-out and pending request."""
    connection = _redis()
    keys = [key for key in connection.scan_iter(match=PREFIX + "*") if key != VERSION_KEY.encode()]
    with connection.pipeline() as pipe:
        if keys:
            pipe.delete(*keys)
        pipe.incr(VERSION_KEY)  # never reset: a page polling `since` must see the change
        pipe.execute()
    log.info("simulator state cleared keys=%d", len(keys))


def save_call(record: dict) -> None:
    """Store a new call (`sid`, `direction`, `from`, `to`, `status`, ...) under its number."""
    sid = record["sid"]
    number = record.get("number") or _party(record)
    with _redis().pipeline() as pipe:
        pipe.hset(CALL_KEY.format(sid=sid), mapping=_encode({**record, "number": number}))
        pipe.lpush(NUMBER_CALLS_KEY.format(number=number), sid)
        pipe.ltrim(NUMBER_CALLS_KEY.format(number=number), 0, MAX_CALLS_PER_NUMBER - 1)
        pipe.sadd(NUMBERS_KEY, number)
        pipe.incr(VERSION_KEY)
        pipe.execute()


def update_call(sid: str, **fields: Any) -> None:
    """Set some fields of a stored call (status, answered_by, duration, error, ...)."""
    if not fields:
        return
    with _redis().pipeline() as pipe:
        pipe.hset(CALL_KEY.format(sid=sid), mapping=_encode(fields))
        pipe.incr(VERSION_KEY)
        pipe.execute()


def add_call_event(sid: str, event: dict) -> None:
    """Append an event (a transcript event's `to_json()`, with its "kind") to a call."""
    with _redis().pipeline() as pipe:
        pipe.rpush(CALL_EVENTS_KEY.format(sid=sid), json.dumps(event))
        pipe.incr(VERSION_KEY)
        pipe.execute()


def set_call_events(sid: str, events: list[dict]) -> None:
    """Replace a call's events (the interpreter's final transcript replaces the live one)."""
    key = CALL_EVENTS_KEY.format(sid=sid)
    with _redis().pipeline() as pipe:
        pipe.delete(key)
        if events:
            pipe.rpush(key, *(json.dumps(event) for event in events))
        pipe.incr(VERSION_KEY)
        pipe.execute()


def get_call(sid: str) -> dict | None:
    """Return a stored call with its events and `live` flag, or None if unknown."""
    with _redis().pipeline() as pipe:
        pipe.hgetall(CALL_KEY.format(sid=sid))
        pipe.lrange(CALL_EVENTS_KEY.format(sid=sid), 0, -1)
        raw, events = pipe.execute()
    return _call(raw, events) if raw else None


def add_message(record: dict) -> None:
    """Store a message (`sid`, `from`, `to`, `body`, `direction`, `status`, `at`, `error_code`)."""
    sid = record["sid"]
    number = record.get("number") or _party(record)
    record = {"error_code": None, "at": now_iso(), **record, "number": number}
    with _redis().pipeline() as pipe:
        pipe.hset(MESSAGE_KEY.format(sid=sid), mapping=_encode(record))
        pipe.rpush(NUMBER_MESSAGES_KEY.format(number=number), sid)
        pipe.ltrim(NUMBER_MESSAGES_KEY.format(number=number), -MAX_MESSAGES_PER_NUMBER, -1)
        pipe.sadd(NUMBERS_KEY, number)
        pipe.incr(VERSION_KEY)
        pipe.execute()


def update_message(sid: str, **fields: Any) -> None:
    """Set some fields of a stored message (status, error_code, ...)."""
    if not fields:
        return
    with _redis().pipeline() as pipe:
        pipe.hset(MESSAGE_KEY.format(sid=sid), mapping=_encode(fields))
        pipe.incr(VERSION_KEY)
        pipe.execute()


def get_message(sid: str) -> dict | None:
    """Return a stored message, or None if unknown."""
    raw = _redis().hgetall(MESSAGE_KEY.format(sid=sid))
    return _decode(raw) if raw else None


def push_keys(call_sid: str, digits: str) -> None:
    """Queue digits pressed on the dev page for the call's next Gather."""
    key = KEYS_KEY.format(sid=call_sid)
    with _redis().pipeline() as pipe:
        pipe.rpush(key, digits)
        pipe.expire(key, KEYS_TTL_SECONDS)
        pipe.incr(VERSION_KEY)
        pipe.execute()


def pop_keys(call_sid: str, timeout: float) -> str | None:
    """Return the next digits pressed for the call, waiting up to `timeout` seconds."""
    connection = _redis()
    key = KEYS_KEY.format(sid=call_sid)
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raw = connection.lpop(key)
            return raw.decode() if raw is not None else None
        # BLPOP's timeout is in seconds, fractions allowed (Redis 6+); 0 would block forever.
        popped = connection.blpop([key], timeout=max(min(left, _BLOCK_STEP_SECONDS), 0.01))
        if popped is not None:
            return popped[1].decode()


def set_opted_out(number: str, opted_out: bool) -> None:
    """Record that `number` texted STOP (True) or START (False) to the PLP."""
    with _redis().pipeline() as pipe:
        if opted_out:
            pipe.sadd(OPTED_OUT_KEY, number)
        else:
            pipe.srem(OPTED_OUT_KEY, number)
        pipe.incr(VERSION_KEY)
        pipe.execute()


def is_opted_out(number: str) -> bool:
    """Tell whether `number` opted out of the PLP's SMS at the carrier."""
    return bool(_redis().sismember(OPTED_OUT_KEY, number))


def set_callbacks_dropped(number: str, dropped: bool) -> None:
    """Make the carrier lose (True) or send again (False) the status callbacks about `number`."""
    with _redis().pipeline() as pipe:
        if dropped:
            pipe.sadd(DROPPED_CALLBACKS_KEY, number)
        else:
            pipe.srem(DROPPED_CALLBACKS_KEY, number)
        pipe.incr(VERSION_KEY)
        pipe.execute()


def callbacks_dropped(number: str) -> bool:
    """Tell whether the carrier loses the status callbacks about `number`."""
    return bool(_redis().sismember(DROPPED_CALLBACKS_KEY, number))


def push_request(request: dict) -> None:
    """Hand a request (a call or a message to carry) to the carrier process."""
    _redis().rpush(REQUESTS_KEY, json.dumps(request))


def requeue_request(request: dict) -> None:
    """Put a request back at the head of the carrier's queue (it was not carried)."""
    _redis().lpush(REQUESTS_KEY, json.dumps(request))


def pop_request(timeout: float) -> dict | None:
    """Take the oldest request for the carrier, waiting up to `timeout` seconds."""
    popped = _redis().blpop([REQUESTS_KEY], timeout=max(min(timeout, _BLOCK_STEP_SECONDS), 0.01))
    return json.loads(popped[1]) if popped is not None else None


def pending_requests() -> int:
    """Return how many requests wait for the carrier process."""
    return _redis().llen(REQUESTS_KEY)


def version() -> int:
    """Return the state's version: it changes on every write."""
    return int(_redis().get(VERSION_KEY) or 0)


def snapshot() -> dict:
    """Return everything the dev page shows, per number, with the version it reflects."""
    connection = _redis()
    with connection.pipeline() as pipe:
        pipe.get(VERSION_KEY)
        pipe.smembers(NUMBERS_KEY)
        pipe.hgetall(BEHAVIOURS_KEY)
        pipe.smembers(OPTED_OUT_KEY)
        raw_version, seen, behaviours, opted_out = pipe.execute()
    numbers = sorted({n.decode() for n in seen} | {n.decode() for n in behaviours})
    with connection.pipeline() as pipe:
        for number in numbers:
            pipe.lrange(NUMBER_CALLS_KEY.format(number=number), 0, -1)
            pipe.lrange(NUMBER_MESSAGES_KEY.format(number=number), 0, -1)
        indexes = pipe.execute()
    call_sids = [[s.decode() for s in sids] for sids in indexes[0::2]]
    message_sids = [[s.decode() for s in sids] for sids in indexes[1::2]]
    with connection.pipeline() as pipe:
        for sids in call_sids:
            for sid in sids:
                pipe.hgetall(CALL_KEY.format(sid=sid))
                pipe.lrange(CALL_EVENTS_KEY.format(sid=sid), 0, -1)
        for sids in message_sids:
            for sid in sids:
                pipe.hgetall(MESSAGE_KEY.format(sid=sid))
        records = iter(pipe.execute())
    calls = [[_call(next(records), next(records)) for _sid in sids] for sids in call_sids]
    messages = [[_decode(next(records)) for _sid in sids] for sids in message_sids]
    opted = {n.decode() for n in opted_out}
    return {
        "version": int(raw_version or 0),
        "numbers": {
            number: {
                "behaviour": json.loads(behaviours[number.encode()])
                if number.encode() in behaviours
                else None,
                "opted_out": number in opted,
                "calls": [call for call in calls[i] if call],
                "messages": [message for message in messages[i] if message],
            }
            for i, number in enumerate(numbers)
        },
    }


def _redis():
    return wiring().redis()


def _party(record: dict) -> str:
    """Return the simulated person's number in a call or message record."""
    return record["from"] if record.get("direction") == "inbound" else record["to"]


def _call(raw: dict, events: list) -> dict:
    if not raw:
        return {}
    call = {
        "answered_by": None,
        "started_at": None,
        "duration": None,
        "error": None,
        **_decode(raw),
    }
    call["live"] = call.get("status") in LIVE_CALL_STATUSES
    call["events"] = [json.loads(event) for event in events]
    return call


def _encode(fields: dict) -> dict[str, str]:
    return {key: json.dumps(value) for key, value in fields.items()}


def _decode(raw: dict) -> dict:
    return {key.decode(): json.loads(value) for key, value in raw.items()}


def now_iso() -> str:
    """Return the current UTC time as the store writes it (ISO 8601, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
