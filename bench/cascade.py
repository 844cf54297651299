"""Benchmark: how fast the cascade hands deliveries to the carrier, run by hand.

    python bench/cascade.py --members 1000 --workers 4            # no pacing limit
    python bench/cascade.py --members 300 --workers 4 --rate 10   # paced at 10/s per channel

An urgent alert whose charter is one SMS and one call at once is released to `--members`
members; real `flask --app wsgi worker` processes carry the steps, with the simulator as
carrier (queue mode: the carrier process is not started, so what is measured is the
cascade, not the simulated network). A delivery counts as initiated when its carrier
SID is committed (`sent_at`). Reports deliveries initiated per second over the fan-out
(first to last `sent_at`), per channel with `--rate`, and the most initiations in any one
second (which must never exceed the limit).

Uses a SQLite file in a temporary directory unless `--database-url` is given, and the
Redis at `--redis-url` (default redis://127.0.0.1:6379/15), whose database it flushes:
do not point it at the database of a running system.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import redis

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from sqlalchemy import func, select  # noqa: E402 (after the path is set)

from alerts.lifecycle import raise_alert  # noqa: E402
from alerts.models import (  # noqa: E402
    AlertOrigin,
    CascadeStep,
    Charter,
    Delivery,
    DeliveryStatus,
    Membership,
    Partnership,
    Person,
    PhoneType,
    Role,
    Zone,
)
from core.app import create_app  # noqa: E402
from core.extensions import db  # noqa: E402

SECRET = "bench-secret-key-not-for-production"
TERMINAL_OR_SENT = (DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.CANCELED)


def most_in_one_second(times: list[float]) -> int:
    """Return the largest number of events in any half-open window [t, t + 1 s)."""
    times, most, end = sorted(times), 0, 0
    for start, moment in enumerate(times):
        while end < len(times) and times[end] < moment + 1.0:
            end += 1
        most = max(most, end - start)
    return most


def enrol(members: int) -> Person:
    """Create a PLP with one SMS and one call at once, its coordinator and members."""
    zone = Zone(code="ZB", name="Bench")
    plp = Partnership(code="PLP-BENCH", name="Bench", zone=zone, charter_json={})
    plp.charter = Charter(urgent_steps=(CascadeStep(0, "sms"), CascadeStep(0, "call", 1)))
    coordinator = Person(name="Coordinator", phone="+32470999999", phone_type=PhoneType.MOBILE)
    people = [
        Person(name=f"Member {n}", phone=f"+32471{n:06d}", phone_type=PhoneType.MOBILE)
        for n in range(members)
    ]
    db.session.add_all([zone, plp, coordinator, *people])
    db.session.add(Membership(person=coordinator, partnership=plp, role=Role.COORDINATOR))
    db.session.add_all(Membership(person=p, partnership=plp) for p in people)
    db.session.commit()
    return coordinator


def run(args: argparse.Namespace) -> None:
    """Release one alert, let the workers fan it out, report the pace."""
    workdir = Path(tempfile.mkdtemp(prefix="plp-bench-cascade-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    rate = str(args.rate or 1000)
    config = {
        "TESTING": True,
        "INSTANCE_PATH": workdir / "instance",
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": SECRET,
        "PHONE_PROVIDER": "simulator",
        "SIMULATOR_MODE": "queue",
        "CALLS_PER_SECOND": rate,
        "SMS_PER_SECOND": rate,
    }
    redis.Redis.from_url(args.redis_url).flushdb()
    app = create_app(config)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMTP_"))},
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": SECRET,
        "PHONE_PROVIDER": "simulator",
        "CALLS_PER_SECOND": rate,
        "SMS_PER_SECOND": rate,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    with app.app_context():
        db.drop_all()
        db.create_all()
        coordinator = enrol(args.members)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "wsgi",
                    "worker",
                    "--without-scheduler",
                    *(["--no-fork"] if args.no_fork else []),
                ],
                cwd=PROJECT_ROOT,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(args.workers)
        ]
        try:
            time.sleep(3)  # let the workers import the app before the clock starts
            alert = raise_alert(
                author=coordinator,
                targets=[db.session.scalars(select(Partnership)).one()],
                text="Bench",
                origin=AlertOrigin.WEB,
            )
            db.session.commit()
            total = (args.members + 1) * 2
            while True:
                db.session.rollback()
                done = db.session.scalar(
                    select(func.count(Delivery.id)).where(
                        Delivery.alert_id == alert.id,
                        Delivery.sent_at.is_not(None) | Delivery.status.in_(TERMINAL_OR_SENT),
                    )
                )
                if done >= total:
                    break
                time.sleep(0.5)
            rows = db.session.execute(
                select(Delivery.channel, Delivery.sent_at).where(
                    Delivery.alert_id == alert.id, Delivery.sent_at.is_not(None)
                )
            ).all()
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
            db.engine.dispose()
    report(args, rows)


def report(args: argparse.Namespace, rows) -> None:
    """Print the pace of initiation, overall and per channel."""
    by_channel: dict[str, list[float]] = defaultdict(list)
    for channel, sent_at in rows:
        by_channel[channel.value].append(sent_at.timestamp())
    everything = sorted(t for times in by_channel.values() for t in times)
    span = everything[-1] - everything[0]
    print(
        f"{platform.node()} {os.cpu_count()} CPUs, {args.workers} workers, "
        f"{args.members} members, limit {args.rate or 'none'}"
    )
    print(
        f"initiated {len(everything)} deliveries in {span:.2f} s: "
        f"{len(everything) / span:.1f} per second"
    )
    for channel, times in sorted(by_channel.items()):
        channel_span = max(times) - min(times)
        print(
            f"  {channel}: {len(times)} in {channel_span:.2f} s = "
            f"{(len(times) - 1) / channel_span:.2f}/s; most in one second: "
            f"{most_in_one_second(times)}"
        )


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-fork", action="store_true", help="workers run jobs in-process")
    parser.add_argument("--rate", type=float, default=None, help="CALLS/SMS_PER_SECOND")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
