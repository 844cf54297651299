"""Benchmark: planning an alert to 10,000 members (5 steps each), and enqueueing its jobs.

    python bench/planning.py [--members 10000] [--database-url URL] [--redis-url URL]

Creates a PLP of `--members` members, each with a mobile, a second number and an e-mail
(so the default charter plans 5 deliveries per member: 50,000 rows), releases an alert
to it, and measures, separately:
- plan: `plan_deliveries` (read the members, run the policy, bulk insert, fetch the
  ids of the due steps), inside the transaction;
- commit + enqueue: the commit, whose after-commit hook puts the due steps (SMS and
  first call: 2 per member) on the urgent queue in bulk, in batch jobs of up to 50;
- for comparison, what scheduling every step at once would cost: all 50,000 jobs put
  on RQ's queue and schedule in bulk by `enqueue_jobs`.
Without `--database-url`, a SQLite file in a temporary directory; without `--redis-url`
(or REDIS_URL), the embedded Redis. The Redis database used is flushed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from alerts.delivery import schedule
from alerts.models import (
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    Delivery,
    DeliveryStatus,
    Membership,
    Partnership,
    Person,
    PhoneType,
    Zone,
    utcnow,
)
from alerts.planning import plan_deliveries
from core import queue
from core.app import create_app
from core.extensions import db, redis_connection
from core.queue import get_queue


def timed(label: str, count: int, unit: str, func):
    """Run `func`, print its wall and CPU time and throughput, return its result.

    The CPU time is this process's only (not the database's or Redis's): on a loaded
    machine it varies less than the wall time.
    """
    start, cpu = time.perf_counter(), time.process_time()
    result = func()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"  {label:<34} {seconds:7.3f} s  (cpu {cpu_seconds:6.3f} s)  "
        f"{count / seconds:9.0f} {unit}/s"
    )
    return result


def populate(members: int) -> Alert:
    """Create a zone, a PLP of `members` members, and an alert released now."""
    zone = Zone(code="ZPBENCH", name="Bench zone")
    plp = Partnership(code="BENCH", name="Bench PLP", zone=zone, charter_json={})
    db.session.add_all([zone, plp])
    db.session.flush()
    now = utcnow()
    db.session.execute(
        insert(Person),
        [
            {
                "name": f"Membre {i}",
                "phone": f"+32470{i:06d}",
                "phone_type": PhoneType.MOBILE,
                "phone2": f"+3225{i:06d}",
                "phone2_type": PhoneType.FIXED,
                "email": f"membre{i}@example.be",
                "language": "fr",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(members)
        ],
    )
    person_ids = db.session.scalars(select(Person.id)).all()
    db.session.execute(
        insert(Membership),
        [
            {"person_id": person_id, "partnership_id": plp.id, "joined_at": now}
            for person_id in person_ids
        ],
    )
    alert = Alert(
        reference="BNCH",
        origin=AlertOrigin.WEB,
        text="Bench alert",
        state=AlertState.DELIVERING,
        released_at=now,
        created_at=now,
        expires_at=now + timedelta(hours=2),
    )
    alert.targets.append(AlertTarget(partnership=plp))
    db.session.add(alert)
    db.session.commit()
    return alert


def main() -> None:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="default: REDIS_URL, else the embedded Redis",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": Path(tmp) / "instance",
                "DATABASE_URL": url,
                "REDIS_URL": args.redis_url,
                "SECRET_KEY": "bench-secret-key-0123456789",
            }
        )
        with app.app_context():
            print(
                f"planning, {args.members} members x 5 steps, "
                f"{db.engine.dialect.name}, Python {platform.python_version()}, "
                f"{platform.machine()}, {os.cpu_count()} CPUs"
            )
            connection = redis_connection()
            connection.flushdb()
            db.drop_all()
            db.create_all()
            alert = populate(args.members)

            now = utcnow()
            summary = timed(
                "plan (rows + due ids)",
                args.members * 5,
                "rows",
                lambda: plan_deliveries(alert, now=now),
            )

            def step_jobs() -> int:
                return sum(
                    1
                    for job_id in get_queue("urgent").get_job_ids()
                    if job_id.startswith("delivery-")
                )

            due = step_jobs()
            timed("commit + enqueue due steps", 2 * args.members, "steps", db.session.commit)
            queued = step_jobs()
            assert summary.deliveries == args.members * 5, summary
            assert due == 0 and queued == 2 * args.members, (due, queued)

            # The alternative not taken: every step on RQ at release, later ones scheduled.
            connection.flushdb()
            rows = db.session.execute(
                select(Delivery.id, Delivery.due_at).where(
                    Delivery.status == DeliveryStatus.PLANNED
                )
            ).all()
            every_step = [
                queue.PendingJob(
                    "urgent",
                    "alerts.jobs.run_cascade_step",
                    (delivery_id,),
                    job_id=schedule.step_job_id(delivery_id),
                    at=due_at if due_at > now else None,
                )
                for delivery_id, due_at in rows
            ]
            timed(
                "(alternative) enqueue all steps",
                len(every_step),
                "jobs",
                lambda: queue.enqueue_jobs(every_step),
            )
            memory = connection.info("memory")["used_memory_human"]
            print(f"  Redis memory with every step on RQ: {memory}")
            connection.flushdb()
            db.session.remove()
            db.drop_all()


if __name__ == "__main__":
    main()
