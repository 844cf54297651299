"""Carrier pacing: the shared limiter in real Redis, from one process and from several."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import subprocess
import time

import pytest
from rq import Queue
from rq.job import JobStatus

from alerts.delivery import pacing
from alerts.delivery.pacing import (
    KEY_SLACK_MS,
    LATE_ATTEMPTS,
    PacingBusy,
    pace_key,
    reserve_slot,
    slot_interval,
    wait_for_slot,
)
from core.app import PROJECT_ROOT, create_app
from tests.pacing_jobs import contend, send_paced
from tests.support import FLASK, app_config, subprocess_env

RECORD_KEY = "plp:test:pacing:sends"


def server_now_us(connection) -> int:
    """Return the Redis server's clock in microseconds."""
    seconds, micros = connection.time()
    return seconds * 1_000_000 + micros


def most_in_one_second(times: list[float]) -> int:
    """Return the largest number of events in any half-open window [t, t + 1 s)."""
    times = sorted(times)
    most, end = 0, 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + 1.0:
            end += 1
        most = max(most, end - start)
    return most


def recorded_sends(connection) -> list[dict]:
    """Return the sends the worker processes recorded."""
    return [json.loads(raw) for raw in connection.lrange(RECORD_KEY, 0, -1)]


@pytest.mark.parametrize(
    ("times", "most"),
    [
        ([], 0),
        ([0.0, 0.5, 0.999], 3),
        ([0.0, 0.5, 1.0], 2),  # half-open: the event at exactly 1 s starts a new window
        ([0.0, 0.9, 1.05, 1.8, 2.5], 3),
        ([i * 0.1 for i in range(11)], 10),
        ([i * 0.1 + (0.01 if i == 0 else 0) for i in range(11)], 11),  # one late send bunches
    ],
)
def test_window_counter_counts_the_busiest_second(times, most):
    """The check the multi-process tests rely on finds the busiest one-second window."""
    assert most_in_one_second(times) == most


@pytest.mark.parametrize(
    ("rate", "seconds"),
    [
        (10, 0.102),
        (10.0, 0.102),  # rates come from settings as floats
        (30, 0.034),
        (1, 1.02),
        (0.5, 2.04),  # fractional: an average of one send every 2 s (plus the guard)
        (10.5, 0.102),  # 1/10.5 would put 11 sends in some second: paced as 10
        (1000, 0.00102),
    ],
)
def test_slot_interval_keeps_every_second_within_the_rate(rate, seconds):
    """Slots are 1.02/n s apart, n the rate rounded down from 1 up, so no second holds more."""
    assert slot_interval(rate) == seconds
    per_window = math.floor(rate) if rate >= 1 else 1
    assert per_window * slot_interval(rate) > 1.0  # n + 1 slots never fit in one second


def test_first_slot_on_an_idle_channel_is_now(redis_conn):
    """With no reservation, the slot is the server's current time: no wait."""
    before = server_now_us(redis_conn)
    slot = reserve_slot("sms", max_wait=0, rate=10, connection=redis_conn)
    assert slot.wait == 0
    assert slot.at_us >= before


@pytest.mark.parametrize("rate", [0.5, 1, 10, 30, 10.5, 1000])
def test_consecutive_slots_are_exactly_one_interval_apart(redis_conn, rate):
    """Reservations made while a backlog exists follow each other at exactly the interval."""
    backlog_end = server_now_us(redis_conn) + 1_000_000
    redis_conn.set(pace_key("call"), backlog_end)
    slots = [
        reserve_slot("call", max_wait=math.inf, rate=rate, connection=redis_conn) for _ in range(5)
    ]
    interval_us = round(slot_interval(rate) * 1_000_000)
    assert [s.at_us for s in slots] == [backlog_end + k * interval_us for k in range(5)]
    assert all(s.wait == (s.at_us - s.now_us) / 1_000_000 > 0 for s in slots)


def test_a_refused_caller_reserves_nothing(redis_conn):
    """When the slot is beyond max_wait, PacingBusy is raised and the next free slot stays."""
    first = reserve_slot("sms", max_wait=0, rate=2, connection=redis_conn)
    stored = redis_conn.get(pace_key("sms"))
    with pytest.raises(PacingBusy) as busy:
        reserve_slot("sms", max_wait=0.1, rate=2, connection=redis_conn)
    assert redis_conn.get(pace_key("sms")) == stored
    assert 0.1 < busy.value.wait <= 0.51
    assert busy.value.retry_after == pytest.approx(busy.value.wait - 0.1)
    assert busy.value.channel == "sms"
    second = reserve_slot("sms", max_wait=math.inf, rate=2, connection=redis_conn)
    assert second.at_us - first.at_us == 510_000  # the very next slot, not one later


def test_max_wait_accepts_a_slot_within_it_and_refuses_one_beyond(redis_conn):
    """A slot 2 s ahead is refused with max_wait 1 s and granted with max_wait 2 s."""
    ahead = server_now_us(redis_conn) + 2_000_000
    redis_conn.set(pace_key("sms"), ahead)
    with pytest.raises(PacingBusy) as busy:
        reserve_slot("sms", max_wait=1.0, rate=1, connection=redis_conn)
    assert 1.0 < busy.value.wait <= 2.0
    slot = reserve_slot("sms", max_wait=2.0, rate=1, connection=redis_conn)
    assert slot.at_us == ahead


def test_the_key_expires_after_its_last_slot(redis_conn):
    """The channel's key is namespaced and expires a second after the next free slot."""
    slot = reserve_slot("call", max_wait=0, rate=0.5, connection=redis_conn)
    assert slot.wait == 0
    assert redis_conn.keys("*") == [b"plp:pace:call"]
    ttl_ms = redis_conn.pttl("plp:pace:call")
    assert 1000 < ttl_ms <= 2040 + KEY_SLACK_MS


def test_channels_are_paced_separately(redis_conn):
    """A call and an SMS reserved together both go at once: each channel has its own limit."""
    call = reserve_slot("call", max_wait=0, rate=1, connection=redis_conn)
    sms = reserve_slot("sms", max_wait=0, rate=1, connection=redis_conn)
    assert (call.wait, sms.wait) == (0, 0)
    assert sorted(redis_conn.keys("*")) == [b"plp:pace:call", b"plp:pace:sms"]


def test_wait_for_slot_returns_at_its_slot(redis_conn):
    """wait_for_slot sleeps until the reserved slot, and returns how long it waited."""
    ahead = server_now_us(redis_conn) + 300_000
    redis_conn.set(pace_key("sms"), ahead)
    waited = wait_for_slot("sms", max_wait=1, rate=10, connection=redis_conn)
    assert server_now_us(redis_conn) >= ahead
    assert 0 < waited <= 0.3


def test_a_caller_that_wakes_late_books_the_next_slot(redis_conn, monkeypatch):
    """Woken 50 ms after its slot, a caller gives the slot up and takes the next free one."""
    sleeps = []

    def stalled_then_prompt(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 1:
            time.sleep(seconds + 0.05)  # a busy CPU: the first wake-up comes 50 ms late

    monkeypatch.setattr(pacing, "sleep", stalled_then_prompt)
    first_slot = server_now_us(redis_conn) + 100_000
    redis_conn.set(pace_key("sms"), first_slot)
    waited = wait_for_slot("sms", max_wait=1, rate=10, connection=redis_conn)
    assert len(sleeps) == 2
    assert waited == pytest.approx(sum(sleeps))
    # Two slots were booked: the abandoned one and the one the caller sent in.
    assert int(redis_conn.get(pace_key("sms"))) == first_slot + 2 * 102_000


def test_a_caller_late_every_time_sends_anyway_and_warns(redis_conn, monkeypatch, caplog):
    """After LATE_ATTEMPTS late wake-ups in a row the caller sends, with a warning."""
    sleeps = []

    def always_late(seconds):
        sleeps.append(seconds)
        time.sleep(seconds + 0.02)

    monkeypatch.setattr(pacing, "sleep", always_late)
    first_slot = server_now_us(redis_conn) + 100_000
    redis_conn.set(pace_key("sms"), first_slot)
    with caplog.at_level(logging.INFO, logger="alerts.delivery.pacing"):
        wait_for_slot("sms", max_wait=1, rate=10, connection=redis_conn)
    assert len(sleeps) == LATE_ATTEMPTS
    assert int(redis_conn.get(pace_key("sms"))) == first_slot + LATE_ATTEMPTS * 102_000
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].endswith(f"attempts={LATE_ATTEMPTS}: sending anyway")


def test_rates_default_to_the_app_settings(tmp_path, redis_url, redis_conn):
    """Without a rate, calls are paced at CALLS_PER_SECOND and SMS at SMS_PER_SECOND."""
    config = app_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'pace.db'}",
        redis_url,
        CALLS_PER_SECOND="0.5",
        SMS_PER_SECOND="4",
    )
    with create_app(config).app_context():
        calls = [reserve_slot("call", max_wait=math.inf) for _ in range(2)]
        sms = [reserve_slot("sms", max_wait=math.inf) for _ in range(2)]
    assert calls[1].at_us - calls[0].at_us == 2_040_000
    assert sms[1].at_us - sms[0].at_us == 255_000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"channel": "email", "rate": 1, "max_wait": 1}, "unknown channel 'email'"),
        ({"channel": "sms", "rate": 0, "max_wait": 1}, "rate must be a positive number"),
        ({"channel": "sms", "rate": -2, "max_wait": 1}, "rate must be a positive number"),
        ({"channel": "sms", "rate": math.nan, "max_wait": 1}, "rate must be a positive number"),
        ({"channel": "sms", "rate": math.inf, "max_wait": 1}, "rate must be a positive number"),
        ({"channel": "sms", "rate": 1, "max_wait": -1}, "max_wait must be 0 or more"),
        ({"channel": "sms", "rate": 1, "max_wait": math.nan}, "max_wait must be 0 or more"),
    ],
)
def test_bad_arguments_are_refused_and_reserve_nothing(redis_conn, arguments, message):
    """An unknown channel, a rate that is not positive or a negative max_wait is a ValueError."""
    channel = arguments.pop("channel")
    with pytest.raises(ValueError, match=message):
        reserve_slot(channel, connection=redis_conn, **arguments)
    assert redis_conn.keys("*") == []


def test_processes_contending_never_exceed_the_rate(redis_url, redis_conn):
    """Four OS processes sending at 30/s through one limiter: never over 30 in any second."""
    context = multiprocessing.get_context("spawn")
    workers, sends, rate = 4, 25, 30
    barrier = context.Barrier(workers)
    processes = [
        context.Process(
            target=contend,
            args=(redis_url,),
            kwargs={
                "channel": "sms",
                "rate": rate,
                "sends": sends,
                "record_key": RECORD_KEY,
                "barrier": barrier,
            },
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * workers
    records = recorded_sends(redis_conn)
    assert len(records) == workers * sends
    assert len({r["worker"] for r in records}) == workers
    assert most_in_one_second([r["at"] for r in records]) <= rate


def test_rq_workers_contending_never_exceed_the_rate(tmp_path, redis_url, redis_conn):
    """Three real RQ worker processes sending at the app's 10 SMS/s: never over 10 in a second."""
    workers, jobs = 3, 90
    queue = Queue("default", connection=redis_conn)
    enqueued = [queue.enqueue(send_paced, "sms", RECORD_KEY) for _ in range(jobs)]
    env = subprocess_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'workers.db'}",
        REDIS_URL=redis_url,
        SMS_PER_SECOND="10",
        CALLS_PER_SECOND="1",
    )
    processes = [
        subprocess.Popen(
            [*FLASK, "worker", "--burst", "--without-scheduler"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [p.returncode for p in processes] == [0] * workers, errors
    assert all(job.get_status(refresh=True) == JobStatus.FINISHED for job in enqueued)
    records = recorded_sends(redis_conn)
    assert len(records) == jobs
    assert len({r["worker"] for r in records}) >= 2  # they really contended
    assert most_in_one_second([r["at"] for r in records]) <= 10
