"""The registry of RQ entry points: every job the app enqueues, by the name it is enqueued by.

Jobs are enqueued by dotted name (`"alerts.jobs.run_cascade_step"`, see `core.queue`), so
no module imports the job it starts; only RQ (resolving the name) and the worker import
this module, which imports every job's home. A test resolves every job name used in the
code to a callable here.

`LEGACY_PATHS` keeps jobs that Redis holds under the path they had before the move into
capability folders working for one release (see the README's upgrade note): the worker's
job class follows them (`core.queue.AliasedJob`).
"""

from __future__ import annotations

from alerts.delivery.reconciler import prepare_worker, reconcile
from alerts.delivery.steps import run_cascade_batch, run_cascade_step
from alerts.email.delivery import deliver_email
from alerts.notices import (
    auto_release,
    escalate_to_steering,
    expire_alert,
    notify_coordinators,
    place_release_call,
    send_notice,
)
from alerts.recordings import download_recording, purge_expired_recordings
from core.heartbeat import record_heartbeat
from ivr.prerender import render_alert_audio

__all__ = [
    "auto_release",
    "deliver_email",
    "download_recording",
    "escalate_to_steering",
    "expire_alert",
    "notify_coordinators",
    "place_release_call",
    "prepare_worker",
    "purge_expired_recordings",
    "reconcile",
    "record_heartbeat",
    "render_alert_audio",
    "run_cascade_batch",
    "run_cascade_step",
    "send_notice",
]

# Where each job lived before this registry (RQ stores a job's function by its path).
# To be removed one release after 0.2.
LEGACY_PATHS = {
    "alerts.mailer.deliver_email": "alerts.jobs.deliver_email",
    "alerts.lifecycle.send_notice": "alerts.jobs.send_notice",
    "ivr.release.place_release_call": "alerts.jobs.place_release_call",
    "prompts.speech.render_alert_audio": "alerts.jobs.render_alert_audio",
    "alerts.recordings.download_recording": "alerts.jobs.download_recording",
    "alerts.recordings.purge_expired_recordings": "alerts.jobs.purge_expired_recordings",
    "core.jobs.record_heartbeat": "core.heartbeat.record_heartbeat",
}
