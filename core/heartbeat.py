"""Jobs of the core: the worker heartbeat that /healthz uses to see jobs really run."""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime

from sqlalchemy import func, select

from core.extensions import db, redis_connection

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "plp:heartbeat"
HEARTBEAT_JOB_ID = "plp-heartbeat"


def record_heartbeat() -> dict:
    """Record in Redis that a worker ran a job, with what it saw in the database."""
    beat = {
        "at": datetime.now(UTC).isoformat(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        # Read through the app's session: proves the job runs in an app context.
        "partnerships": db.session.scalar(
            select(func.count()).select_from(db.metadata.tables["partnership"])
        ),
    }
    redis_connection().set(HEARTBEAT_KEY, json.dumps(beat))
    log.info("heartbeat pid=%s partnerships=%s", beat["pid"], beat["partnerships"])
    return beat
