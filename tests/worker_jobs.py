"""Jobs for the worker tests: importable by a worker process (the project root is on its path)."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from alerts.models import Zone
from core.extensions import db


def leave_a_zone_uncommitted(code: str) -> int:
    """Add a zone to the session without committing; return this process's id."""
    db.session.add(Zone(code=code, name=code))
    db.session.flush()
    return os.getpid()


def count_zones() -> tuple[int, int]:
    """Return (zones visible to this job's session, this process's id)."""
    return db.session.scalar(select(func.count(Zone.id))), os.getpid()
