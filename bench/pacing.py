"""Benchmark: carrier pacing with several worker processes contending, run by hand.

    python bench/pacing.py --workers 4 --rate 10 --jobs 200 [--redis-url URL]
    python bench/pacing.py --matrix          # rates 1, 10, 50 x workers 1, 4, 8

Each worker is an OS process (spawn) that, like an RQ worker, takes jobs from a Redis
list until it is empty; for each it waits for a slot through `alerts.delivery.pacing` and records
when it was allowed to send (time.time(): the processes and Redis share this host's
clock). Reports the achieved rate against the limit, the most sends in any one-second
window (the limit must never be exceeded), the narrowest span of limit + 1 consecutive
sends (how much of the 1 s + guard is left after scheduling delays), the distribution
of the waits the limiter handed out, and the Redis round trips per send (commands the
limiter sent, counted in each client; above 1 when late callers booked again).

`--stall P` makes a fraction P of the sleeps wake 50 ms late, as a starved CPU does, to
show the late check at work; `--no-late-check` turns that check off, to show why it is
there (the busiest second then holds more than the limit).

Without `--redis-url`: the Redis server at redis://127.0.0.1:6379/15 if one answers, else
an embedded redis-server in a temporary directory. The benchmark deletes its own keys
(plp:bench:*) and the channel's pacing key in that database before each run: do not
point it at the database of a running system.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.delivery import pacing
from alerts.delivery.pacing import pace_key, slot_interval, wait_for_slot
from core.embedded_redis import EmbeddedRedis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
JOBS_KEY = "plp:bench:pacing:jobs"
RESULTS_KEY = "plp:bench:pacing:results"
MATRIX = [(rate, workers) for rate in (1, 10, 50) for workers in (1, 4, 8)]


class CountingRedis(redis.Redis):
    """A Redis client that counts the commands it sends (each is one round trip here)."""

    commands = 0

    def execute_command(self, *args, **options):
        """Count, then run the command."""
        self.commands += 1
        return super().execute_command(*args, **options)


def worker(
    redis_url: str, *, channel: str, rate: float, barrier, stall: float, late_check: bool
) -> None:
    """Take jobs until none are left; pace each one and record when it may be sent."""
    if stall:
        pacing.sleep = lambda seconds: time.sleep(
            seconds + (0.05 if random.random() < stall else 0)
        )
    if not late_check:
        pacing.LATE_LIMIT = math.inf
    connection = CountingRedis.from_url(redis_url)
    records = []
    barrier.wait(timeout=60)
    while connection.lpop(JOBS_KEY) is not None:
        before = connection.commands
        waited = wait_for_slot(channel, max_wait=math.inf, rate=rate, connection=connection)
        records.append(
            {
                "at": time.time(),
                "waited": waited,
                "round_trips": connection.commands - before,
            }
        )
    if records:
        connection.rpush(RESULTS_KEY, *(json.dumps(r) for r in records))
    connection.close()


def run(
    redis_url: str,
    *,
    workers: int,
    rate: float,
    jobs: int,
    channel: str,
    stall: float = 0.0,
    late_check: bool = True,
) -> dict:
    """Run one setting and return its measurements."""
    connection = redis.Redis.from_url(redis_url)
    connection.delete(JOBS_KEY, RESULTS_KEY, pace_key(channel))
    connection.rpush(JOBS_KEY, *range(jobs))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    processes = [
        context.Process(
            target=worker,
            args=(redis_url,),
            kwargs={
                "channel": channel,
                "rate": rate,
                "barrier": barrier,
                "stall": stall,
                "late_check": late_check,
            },
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        raise SystemExit("a worker process failed")
    records = [json.loads(raw) for raw in connection.lrange(RESULTS_KEY, 0, -1)]
    connection.delete(JOBS_KEY, RESULTS_KEY, pace_key(channel))
    connection.close()

    times = sorted(r["at"] for r in records)
    waits = sorted(r["waited"] for r in records)
    limit = math.floor(rate) if rate >= 1 else 1
    spans = [times[i + limit] - times[i] for i in range(len(times) - limit)]
    return {
        "rate": rate,
        "workers": workers,
        "jobs": len(records),
        "achieved": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
        "max_in_window": most_in_one_second(times),
        "narrowest_span": min(spans) if spans else math.nan,
        "wait_p50": statistics.median(waits),
        "wait_p95": waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)],
        "wait_max": waits[-1],
        "round_trips": sum(r["round_trips"] for r in records) / len(records),
    }


def most_in_one_second(times: list[float]) -> int:
    """Return the largest number of sends in any half-open window [t, t + 1 s)."""
    most, end = 0, 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + 1.0:
            end += 1
        most = max(most, end - start)
    return most


def print_header(redis_url: str, args: argparse.Namespace) -> None:
    """Print the machine, the Redis server and the options the numbers come from."""
    info = redis.Redis.from_url(redis_url).info("server")
    print(
        f"# pacing bench: {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Redis {info['redis_version']} at {redis_url}, "
        f"channel {args.channel}, stall {args.stall:g}, "
        f"late check {'on' if args.late_check else 'off'}"
    )
    print(
        "| limit/s | workers | sends | interval ms | achieved/s | % of limit "
        "| max in any 1 s | narrowest n+1 span s | wait p50 s | wait p95 s | wait max s "
        "| round trips/send |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def print_row(result: dict) -> None:
    """Print one setting's measurements as a Markdown table row."""
    r = result
    print(
        f"| {r['rate']:g} | {r['workers']} | {r['jobs']} "
        f"| {slot_interval(r['rate']) * 1000:.1f} | {r['achieved']:.2f} "
        f"| {100 * r['achieved'] / r['rate']:.1f} | {r['max_in_window']} "
        f"| {r['narrowest_span']:.4f} | {r['wait_p50']:.3f} | {r['wait_p95']:.3f} "
        f"| {r['wait_max']:.3f} | {r['round_trips']:.3f} |",
        flush=True,
    )


def local_redis_url() -> str | None:
    """Return the default Redis server's URL if one answers there."""
    client = redis.Redis.from_url(DEFAULT_REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        return None
    finally:
        client.close()
    return DEFAULT_REDIS_URL


def main() -> None:
    """Parse the options, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--channel", choices=("call", "sms"), default="sms")
    parser.add_argument("--redis-url", help=f"default: {DEFAULT_REDIS_URL}, else embedded")
    parser.add_argument(
        "--stall",
        type=float,
        default=0.0,
        help="fraction of sleeps that wake 50 ms late (default 0)",
    )
    parser.add_argument(
        "--no-late-check",
        dest="late_check",
        action="store_false",
        help="send even when woken late (shows why the check exists)",
    )
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="rates 1, 10, 50 x workers 1, 4, 8 (about 20 s of sends each)",
    )
    args = parser.parse_args()

    embedded = None
    redis_url = args.redis_url or local_redis_url()
    if redis_url is None:
        embedded = EmbeddedRedis(tempfile.mkdtemp(prefix="plp-bench-"))
        redis_url = embedded.ensure_running()
    try:
        print_header(redis_url, args)
        settings = (
            [(rate, workers, max(20, round(rate * 20))) for rate, workers in MATRIX]
            if args.matrix
            else [(args.rate, args.workers, args.jobs)]
        )
        for rate, workers, jobs in settings:
            print_row(
                run(
                    redis_url,
                    workers=workers,
                    rate=rate,
                    jobs=jobs,
                    channel=args.channel,
                    stall=args.stall,
                    late_check=args.late_check,
                )
            )
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
