"""Voice messages recorded by phone: accepted, downloaded, served, and deleted in time.

A coordinator records a message in the IVR; the carrier keeps the audio and tells us its
URL. `accept_recording` makes the `Recording` row (with an unguessable token: the only
key of its public URL) and enqueues `download_recording`, which fetches the audio
through the phone provider (Twilio: with the account's credentials), checks that it is
real audio, and stores it as `instance/recordings/<token>.<ext>`. An empty or invalid
recording is FAILED: `recording_failed` tells the IVR so it can say so to the caller, and
such a recording is never sent. `purge_expired_recordings` deletes the files after the
retention period of the author's PLP charter; it runs once a day.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from alerts.delivery.provider import ProviderConfigurationError, ProviderError, get_provider
from alerts.delivery.schedule import retry_delay
from alerts.models import (
    Charter,
    Membership,
    Partnership,
    Person,
    Recording,
    RecordingStatus,
    utcnow,
)
from core.extensions import db
from core.queue import PendingJob, enqueue_after_commit, enqueue_jobs, savepoint
from core.urls import public_url
from prompts.audio import wav_frames

log = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"  # under the instance folder
RECORDING_QUEUE = "urgent"  # the message is about to go out to the members
TOKEN_BYTES = 32  # secrets.token_urlsafe: 43 characters, 256 bits
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what token_urlsafe makes
PURGE_QUEUE = "low"
PURGE_AT = time(3, 0)  # UTC: a quiet hour
EXTENSIONS = {"audio/x-wav": "wav", "audio/mpeg": "mp3"}
_ERROR_LENGTH = 200  # Recording.error


def recordings_dir() -> Path:
    """Return the folder of downloaded recordings (under the instance folder)."""
    return Path(current_app.instance_path) / RECORDINGS_DIR


# ---------------------------------------------------------------------------------------
# Accepting a recording


def accept_recording(
    *, author: Person | None, provider_sid: str, provider_url: str, duration: int | str | None
) -> Recording | None:
    """Record that the carrier made a recording, and enqueue its download after the commit.

    Return None for an empty recording (no duration, or 0 seconds: the caller said
    nothing), to be reported to the caller. The same `provider_sid` twice returns the
    first row (the carrier retries its callbacks). The caller commits.
    """
    seconds = _seconds(duration)
    if not seconds or not provider_sid or not provider_url:
        log.info("empty recording refused sid=%s duration=%r", provider_sid or "-", duration)
        return None
    existing = _by_sid(provider_sid)
    if existing is not None:
        return existing
    recording = Recording(
        provider_sid=provider_sid,
        provider_url=provider_url,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        duration_seconds=seconds,
        author_id=author.id if author else None,
        status=RecordingStatus.PENDING,
        delete_after=utcnow() + timedelta(days=retention_days(author)),
    )
    try:
        with savepoint():
            db.session.add(recording)
    except IntegrityError:
        # The same callback, handled at the same moment by another web worker.
        return _by_sid(provider_sid)
    enqueue_after_commit(
        RECORDING_QUEUE,
        "alerts.jobs.download_recording",
        recording.id,
        job_id=download_job_id(recording.id),
    )
    # The purge of the day this one expires: one job per day, whoever schedules it first.
    _after_commit_purge(recording.delete_after)
    log.info(
        "recording accepted recording_id=%s sid=%s seconds=%s author_id=%s",
        recording.id,
        provider_sid,
        seconds,
        recording.author_id,
    )
    return recording


def retention_days(author: Person | None) -> int:
    """Return how long the author's recordings are kept: the shortest of their PLPs' charters."""
    if author is None:
        return Charter().retention_days
    charters = db.session.scalars(
        select(Partnership).join(Membership).where(Membership.person_id == author.id)
    )
    days = [plp.charter.retention_days for plp in charters]
    # The shortest: a recording must not outlive what any of its PLPs agreed to.
    return max(1, min(days)) if days else Charter().retention_days


def _seconds(duration: int | str | None) -> int:
    try:
        return max(0, int(str(duration).strip())) if duration is not None else 0
    except ValueError:
        return 0


def _by_sid(provider_sid: str) -> Recording | None:
    return db.session.scalars(
        select(Recording).where(Recording.provider_sid == provider_sid)
    ).one_or_none()


def download_job_id(recording_id: int, try_number: int = 1) -> str:
    """Return the id of the job downloading a recording (one per try)."""
    return (
        f"recording-{recording_id}" if try_number == 1 else f"recording-{recording_id}-{try_number}"
    )


# ---------------------------------------------------------------------------------------
# The download job


def download_recording(recording_id: int, try_number: int = 1) -> str:
    """Fetch a recording's audio from the carrier and store it; return its status.

    Retries what may pass later (the carrier busy, or not done with the file yet) after
    the delays of `RETRY_DELAYS["recording"]`; an empty or invalid file, or a refusal,
    marks it FAILED.
    """
    recording = db.session.get(Recording, recording_id)
    if recording is None:
        log.warning("download of a missing recording recording_id=%s", recording_id)
        return "missing"
    context = f"recording_id={recording_id} sid={recording.provider_sid} try={try_number}"
    if recording.status != RecordingStatus.PENDING:
        status = recording.status.value
        db.session.rollback()
        log.info("recording already handled %s status=%s", context, status)
        return status
    url = recording.provider_url or ""
    try:
        audio = get_provider().fetch_recording(url)
    except ProviderError as err:
        return _download_refused(recording, err, try_number, context)

    content_type = audio_type(audio.content)
    if content_type is None:
        why = "empty" if not audio.content else f"not audio ({audio.content_type or 'no type'})"
        return _fail(recording, why, context)
    if content_type == "audio/x-wav" and wav_frames(audio.content) == 0:
        return _fail(recording, "empty (no sound in the file)", context)
    path = recordings_dir() / f"{recording.token}.{EXTENSIONS[content_type]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(audio.content)
    os.replace(tmp, path)  # a reader never sees half a file
    recording.path = str(path.relative_to(current_app.instance_path))
    recording.content_type = content_type
    recording.status = RecordingStatus.READY
    recording.error = None
    db.session.commit()
    log.info("recording stored %s bytes=%d type=%s", context, len(audio.content), content_type)
    return RecordingStatus.READY.value


def _download_refused(recording: Recording, err: ProviderError, try_number: int, context: str):
    # Imported here: it imports the twilio library, which only a Twilio app loads.
    from alerts.delivery.twilio_provider import RECORDING_MISSING_MESSAGE  # noqa: PLC0415

    # A recording the carrier has not finished yet answers 404 for a moment: try again too.
    transient = err.retryable or (
        err.message == RECORDING_MISSING_MESSAGE and not isinstance(err, ProviderConfigurationError)
    )
    delay = retry_delay("recording", try_number) if transient else None
    if delay is not None:
        recording.error = _short(f"try {try_number}: {err}")
        enqueue_after_commit(
            RECORDING_QUEUE,
            "alerts.jobs.download_recording",
            recording.id,
            try_number + 1,
            job_id=download_job_id(recording.id, try_number + 1),
            at=utcnow() + delay,
        )
        db.session.commit()
        log.warning(
            "recording download will retry %s code=%s error=%s detail=%s",
            context,
            err.code,
            err,
            err.detail,
        )
        return "retrying"
    return _fail(recording, str(err), context, detail=err.detail)


def _fail(recording: Recording, why: str, context: str, *, detail: str | None = None) -> str:
    recording.status = RecordingStatus.FAILED
    recording.error = _short(why)
    db.session.commit()
    log.warning("recording failed %s why=%s detail=%s", context, why, detail)
    return RecordingStatus.FAILED.value


def _short(message: str) -> str:
    return message[:_ERROR_LENGTH]


def audio_type(content: bytes) -> str | None:
    """Return the content type of audio bytes (WAV or MP3), or None when they are neither."""
    if len(content) > 12 and content[:4] == b"RIFF" and content[8:12] == b"WAVE":
        return "audio/x-wav"
    # An ID3 tag, or an MPEG audio frame's 11-bit sync word.
    if len(content) > 4 and (
        content.startswith(b"ID3") or (content[0] == 0xFF and content[1] & 0xE0 == 0xE0)
    ):
        return "audio/mpeg"
    return None


# ---------------------------------------------------------------------------------------
# What the IVR, the e-mails and the media route ask


def recording_ready(recording: Recording | None, now: datetime | None = None) -> bool:
    """Tell whether a recording can be played: stored, and not past its retention."""
    if recording is None or recording.status != RecordingStatus.READY or not recording.path:
        return False
    return recording.delete_after is None or recording.delete_after > (now or utcnow())


def recording_failed(recording: Recording) -> bool:
    """Tell whether a recording will never be playable (empty, invalid, refused)."""
    return recording.status == RecordingStatus.FAILED


def recording_url(recording: Recording) -> str:
    """Return the recording's public URL: unguessable, served by the media blueprint."""
    return public_url("media.recording", token=recording.token)


def recording_file(token: str, now: datetime | None = None) -> tuple[Recording, Path] | None:
    """Return the playable recording of `token` and its file, or None (unknown, gone)."""
    if not TOKEN_SHAPE.fullmatch(token):
        # Not one we could have made (a NUL, a newline, a slash): no query, nothing logged.
        return None
    recording = db.session.scalars(select(Recording).where(Recording.token == token)).one_or_none()
    if not recording_ready(recording, now):
        return None
    path = Path(current_app.instance_path) / recording.path
    return (recording, path) if path.is_file() else None


# ---------------------------------------------------------------------------------------
# Retention


def purge_expired_recordings(now: datetime | None = None) -> int:
    """Delete recordings past their retention, here and at the carrier; return how many.

    The rows stay (an alert points at its recording) with no file, as DELETED; the
    carrier's copy is deleted too, and `provider_url` cleared once it is. A carrier that
    cannot delete it now is asked again by the next day's purge, which this schedules.
    """
    now = now or utcnow()
    expired = db.session.scalars(
        select(Recording)
        .where(
            Recording.delete_after <= now,
            (Recording.status != RecordingStatus.DELETED) | Recording.provider_url.is_not(None),
        )
        .order_by(Recording.id)
    ).all()
    for recording in expired:
        if recording.path:
            path = Path(current_app.instance_path) / recording.path
            path.unlink(missing_ok=True)
        recording.path = None
        recording.status = RecordingStatus.DELETED
        _delete_at_carrier(recording)
    # Tomorrow's run keeps the chain going (a chain of daily jobs, as the reconciler's).
    _after_commit_purge(now)
    db.session.commit()
    if expired:
        log.info("recordings purged count=%d", len(expired))
    return len(expired)


def _delete_at_carrier(recording: Recording) -> None:
    if recording.provider_url is None:
        return
    if not recording.provider_sid:
        recording.provider_url = None  # nothing to name it by at the carrier
        return
    try:
        get_provider().delete_recording(recording.provider_sid)
    except ProviderError as err:
        log.warning(
            "recording not deleted at the carrier, tomorrow again recording_id=%s sid=%s: %s",
            recording.id,
            recording.provider_sid,
            err,
        )
        return
    recording.provider_url = None


def start_purging(now: datetime | None = None) -> None:
    """Make sure a daily purge is scheduled (the worker calls this when it starts)."""
    enqueue_jobs([_purge_job(now or utcnow())])


def _after_commit_purge(moment: datetime) -> None:
    job = _purge_job(moment)
    enqueue_after_commit(job.queue, job.func, *job.args, job_id=job.job_id, at=job.at)


def _purge_job(moment: datetime) -> PendingJob:
    # At PURGE_AT of the day after `moment`'s (so a recording expiring at 14:00 goes at
    # 03:00 the next night); one id per day: whoever schedules a day first wins.
    day = moment.astimezone(UTC).date() + timedelta(days=1)
    at = datetime.combine(day, PURGE_AT, tzinfo=UTC)
    return PendingJob(
        PURGE_QUEUE,
        "alerts.jobs.purge_expired_recordings",
        (),
        job_id=f"purge-recordings-{day:%Y%m%d}",
        at=at,
    )
