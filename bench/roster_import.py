"""Benchmark: `flask roster import` of a large sign-up sheet, run by hand.

    python bench/roster_import.py [--rows 10000 100000 300000] [--database-url URL]

For each size, and each run in a fresh process (so each peak is its own): generates a `;`-separated
file with a BOM (as Belgian Excel writes it) on disk, then runs the real command twice
through Flask's CLI runner, as an operator would: the first import into an empty
database, and a re-import of the same file (which must change nothing). Prints seconds,
rows per second and the peak resident memory of each run above what the process held
before it (Linux: VmHWM reset through /proc/self/clear_refs), per row. Without
`--database-url`, a SQLite file in a temporary directory; the embedded Redis is not needed.

The script drives only the command, so the same file measures an older checkout too:
copy it into that tree's bench/ and run it there for a before/after comparison.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.models import Membership, Person
from alerts.people.directory import add_partnership, add_zone
from core.app import create_app
from core.extensions import db

LANGUAGES = ("fr", "nl", "de", "en")


def write_sheet(path: Path, rows: int) -> int:
    """Write a realistic roster of `rows` members (mobiles, landlines, e-mails); return bytes."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
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
    return path.stat().st_size


def _status_kb(field: str) -> int | None:
    """Return a VmRSS/VmHWM figure of this process in kB (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the peak resident memory (Linux >= 4.0); tell whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measured(func) -> tuple[float, float, object]:
    """Run `func`; return its seconds, its peak memory above the start in MB, its result."""
    resettable = _reset_peak()
    before = _status_kb("VmRSS") or 0
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM") if resettable else None
    if peak is None:  # not Linux: the process's peak so far
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds, (peak - before) / 1024, result


def _app(tmp: Path, database_url: str | None):
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": tmp / "instance",
            "DATABASE_URL": database_url or f"sqlite:///{tmp}/bench.db",
            "SECRET_KEY": "bench-secret-key-0123456789",
        }
    )


def _import(runner, plp: str, path: Path) -> str:
    result = runner.invoke(args=["roster", "import", plp, str(path)])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0]


def run_phase(phase: str, rows: int, tmp: Path, database_url: str | None) -> dict:
    """In this process: warm up, then run one import of the sheet; return its figures."""
    app = _app(tmp, database_url)
    runner = app.test_cli_runner()
    path = tmp / "roster.csv"
    if phase == "import":
        write_sheet(path, rows)
        with app.app_context():
            db.drop_all()
            db.create_all()
            add_zone("ZPBENCH", "Bench zone")
            add_partnership("BENCH", "Bench PLP", "ZPBENCH")
            add_partnership("WARMUP", "Warm-up PLP", "ZPBENCH")
            db.session.commit()
            db.session.remove()
    # Load what every import loads once (phone metadata, e-mail rules, the ORM's
    # compiled statements) so that the figures are per row, not per process.
    warmup = tmp / "warmup.csv"
    warmup.write_text("name;phone;email\r\nWarm Up;0499 00 00 00;warm@example.be\r\n")
    _import(runner, "WARMUP", warmup)
    seconds, peak_mb, line = measured(lambda: _import(runner, "BENCH", path))
    expected = f"{rows} new people" if phase == "import" else f"{rows} unchanged"
    assert expected in line, line
    with app.app_context():
        people = db.session.query(Person).count()
        memberships = db.session.query(Membership).count()
        db.session.remove()
    assert people == rows + 1 and memberships == rows + 1, (people, memberships)
    return {"s": seconds, "peak_mb": peak_mb, "mb": path.stat().st_size / 1e6}


def main() -> None:
    """Run every size and phase in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000])
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    parser.add_argument("--phase", choices=("import", "reimport"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.rows[0], args.dir, args.database_url)))
        return

    print(
        "roster import (flask roster import into an empty database, then the same file "
        f"again), Python {platform.python_version()}, {platform.machine()}"
    )
    columns = f"{'rows':>8} {'MB':>5}  {'run':<9} {'seconds':>8} {'rows/s':>7} {'peak MB':>8}"
    print(columns + f" {'B/row':>6}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            for phase in ("import", "reimport"):
                command = [sys.executable, __file__, "--phase", phase, "--rows", str(rows)]
                command += ["--dir", tmp]
                if args.database_url:
                    command += ["--database-url", args.database_url]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    sys.exit(done.stderr)
                run = json.loads(done.stdout.splitlines()[-1])
                print(
                    f"{rows:>8} {run['mb']:>5.1f}  {phase:<9} {run['s']:>8.2f} "
                    f"{rows / run['s']:>7.0f} {run['peak_mb']:>8.0f} "
                    f"{run['peak_mb'] * 1024 * 1024 / rows:>6.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
