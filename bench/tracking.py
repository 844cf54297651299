"""Benchmark: an alert's counts during a 10,000-member alert, as a dashboard polls them.

    python bench/tracking.py [--members 10000] [--polls 50] [--database-url URL]

Writes an alert with 5 deliveries per member in a mix of statuses (planned, queued,
answered by a person or a machine, SMS delivered, failed, confirmed), then times
`alert_counts` and `member_timeline` over many polls. Prints the median and worst
poll; the target is well under a second per poll. Without `--database-url`, a SQLite
file in a temporary directory.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    Channel,
    Delivery,
    DeliveryStatus,
    Partnership,
    Person,
    PhoneType,
    Zone,
    utcnow,
)
from alerts.tracking import alert_counts, member_timeline
from core.app import create_app
from core.extensions import db

S = DeliveryStatus
STEPS = (
    (Channel.SMS, 0),
    (Channel.CALL, 1),
    (Channel.CALL, 2),
    (Channel.CALL, 3),
    (Channel.EMAIL, 4),
)
# Where the first two steps of member i stand, by i % len(MIX).
MIX = (
    ((S.DELIVERED, None), (S.COMPLETED, "human")),
    ((S.SENT, None), (S.IN_PROGRESS, None)),
    ((S.UNDELIVERED, None), (S.NO_ANSWER, None)),
    ((S.QUEUED, None), (S.RINGING, None)),
    ((S.DELIVERED, None), (S.COMPLETED, "machine_end_beep")),
)


def build(members: int) -> int:
    """Write the alert, its members and their deliveries; return the alert id."""
    now = utcnow()
    zone = Zone(code="ZPBENCH", name="Bench zone")
    plp = Partnership(code="BENCH", name="Bench PLP", zone=zone, charter_json={})
    alert = Alert(
        reference="BNCH",
        origin=AlertOrigin.SMS,
        state=AlertState.DELIVERING,
        text="Bench alert",
        expires_at=now + timedelta(hours=2),
        released_at=now,
    )
    alert.targets.append(AlertTarget(partnership=plp))
    db.session.add_all([zone, plp, alert])
    db.session.flush()
    db.session.execute(
        insert(Person),
        [
            {
                "name": f"Member {i}",
                "phone": f"+3247{i:07d}",
                "phone_type": PhoneType.MOBILE,
                "language": "fr",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(members)
        ],
    )
    person_ids = [p.id for p in db.session.query(Person.id).order_by(Person.id)]
    rows = []
    for n, person_id in enumerate(person_ids):
        first_two = MIX[n % len(MIX)]
        for index, (channel, step) in enumerate(STEPS):
            status, answered_by = first_two[index] if index < 2 else (S.PLANNED, None)
            rows.append(
                {
                    "alert_id": alert.id,
                    "person_id": person_id,
                    "channel": channel,
                    "step": step,
                    "attempt": 1,
                    "to_address": "x",
                    "due_at": now,
                    "status": status,
                    "answered_by": answered_by,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    db.session.execute(insert(Delivery), rows)
    db.session.execute(
        insert(Acknowledgement),
        [
            {"alert_id": alert.id, "person_id": person_id, "channel": AckChannel.CALL, "at": now}
            for person_id in person_ids[::7]
        ],
    )
    db.session.commit()
    return alert.id


def poll(func, polls: int) -> list[float]:
    """Return the seconds each of `polls` calls of `func` took."""
    times = []
    for _ in range(polls):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": Path(tmp) / "instance",
                "DATABASE_URL": url,
                "SECRET_KEY": "bench-secret-key-0123456789",
            }
        )
        with app.app_context():
            db.drop_all()
            db.create_all()
            alert_id = build(args.members)
            print(
                f"tracking, {args.members} members x {len(STEPS)} deliveries, "
                f"{db.engine.dialect.name}, Python {platform.python_version()}, "
                f"{platform.machine()}"
            )
            print(f"  counts: {alert_counts(alert_id)}")
            for label, func in (
                ("alert_counts", lambda: alert_counts(alert_id)),
                ("member_timeline", lambda: member_timeline(alert_id, 1)),
            ):
                times = poll(func, args.polls)
                print(
                    f"  {label:<16} median {statistics.median(times) * 1000:7.1f} ms  "
                    f"worst {max(times) * 1000:7.1f} ms  ({args.polls} polls)"
                )
            db.session.remove()
            db.drop_all()


if __name__ == "__main__":
    main()
