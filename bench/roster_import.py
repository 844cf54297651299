"""Benchmark: roster import of a large sign-up sheet (check + write), run by hand.

    python bench/roster_import.py [--rows 10000] [--database-url URL]

Generates a `;`-separated file with a BOM (as Belgian Excel writes it), then measures
each phase the `roster import` command runs: decode and split, check every row
(phonenumbers, e-mail validation), write into an empty database, and re-import the
same file (which must change nothing). Prints seconds, rows per second and the peak
resident memory of the process. Without `--database-url`, a SQLite file in a temporary
directory; the embedded Redis is not needed.
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.models import Membership, Person
from alerts.people.roster import check_rows, import_roster, split_roster
from core.app import create_app
from core.extensions import db

LANGUAGES = ("fr", "nl", "de", "en")


def sheet(rows: int) -> bytes:
    """Return a realistic roster of `rows` members: mobiles, landlines, e-mails, four languages."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["name", "phone", "phone2", "email", "language", "role", "address"])
    for i in range(rows):
        mobile = f"0470 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}"
        landline = f"02 5{i // 1000 % 100:02d} {i // 10 % 100:02d} {i % 10}0"
        writer.writerow(
            [
                f"Membre {i}",
                mobile,
                landline if i % 3 == 0 else "",
                f"membre{i}@example.be" if i % 2 == 0 else "",
                LANGUAGES[i % 4],
                "member",
                f"Rue du Parc {i % 500}, 1050 Ixelles",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def timed(label: str, rows: int, func):
    """Run `func`, print its time and throughput, return its result."""
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    print(f"  {label:<24} {seconds:7.2f} s  {rows / seconds:9.0f} rows/s")
    return result


def main() -> None:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
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
        data = sheet(args.rows)
        print(
            f"roster import, {args.rows} rows ({len(data) / 1e6:.1f} MB), "
            f"{app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}, "
            f"Python {platform.python_version()}, {platform.machine()}"
        )
        with app.app_context():
            db.drop_all()
            db.create_all()
            from alerts.people.directory import add_partnership, add_zone  # noqa: PLC0415

            add_zone("ZPBENCH", "Bench zone")
            plp = add_partnership("BENCH", "Bench PLP", "ZPBENCH")
            db.session.commit()
            parsed = timed("decode and split", args.rows, lambda: split_roster(data))
            entries = timed("check rows", args.rows, lambda: check_rows(parsed))

            def write():
                report = import_roster(plp, entries)
                db.session.commit()
                return report

            first = timed("first import (write)", args.rows, write)
            again = timed("re-import (no change)", args.rows, write)
            people = db.session.query(Person).count()
            memberships = db.session.query(Membership).count()
            assert len(first.created) == args.rows and people == memberships == args.rows
            assert not again.changed, "re-importing the same file changed something"
            db.session.remove()
            db.drop_all()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak resident memory     {peak_mb:7.0f} MB")


if __name__ == "__main__":
    main()
