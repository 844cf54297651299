"""Code run by other processes in the pacing tests and bench: importable by name.

`send_paced` is an RQ job run by real worker processes (in the app context, at the
app's rates); `contend` is the body of a plain OS process started with spawn.
"""

from __future__ import annotations

import json
import math
import os
import time

import redis

from alerts.delivery.pacing import wait_for_slot
from core.extensions import redis_connection


def send_paced(channel: str, record_key: str) -> float:
    """Wait for a slot at the app's rate, then record when this worker was allowed to send."""
    waited = wait_for_slot(channel, max_wait=math.inf)
    sent_at = time.time()  # same host as Redis in the tests: one clock
    # The job runs in RQ's work horse, a fork of the worker: the parent is the worker.
    record = {"at": sent_at, "worker": os.getppid(), "waited": waited}
    redis_connection().rpush(record_key, json.dumps(record))
    return waited


def contend(
    redis_url: str, *, channel: str, rate: float, sends: int, record_key: str, barrier
) -> None:
    """Send `sends` times through the limiter at `rate`, recording each send time."""
    connection = redis.Redis.from_url(redis_url)
    barrier.wait(timeout=60)  # start together: the point is to contend
    for _ in range(sends):
        waited = wait_for_slot(channel, max_wait=math.inf, rate=rate, connection=connection)
        sent_at = time.time()
        record = {"at": sent_at, "worker": os.getpid(), "waited": waited}
        connection.rpush(record_key, json.dumps(record))
    connection.close()
