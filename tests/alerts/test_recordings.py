"""Recorded messages: accepted, downloaded through the carrier, linked in e-mails, purged."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from rq.registry import ScheduledJobRegistry
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from alerts import recordings
from alerts.delivery import schedule
from alerts.delivery.provider import (
    ProviderError,
    ProviderUnavailableError,
    RecordingAudio,
    get_provider,
    set_provider,
)
from alerts.delivery.twilio_provider import TwilioProvider
from alerts.email.compose import alert_email
from alerts.models import Membership, Recording, RecordingStatus, Role, utcnow
from alerts.recordings import (
    accept_recording,
    download_job_id,
    download_recording,
    purge_expired_recordings,
    recording_failed,
    recording_ready,
    recording_url,
    retention_days,
)
from core.extensions import db
from core.queue import get_queue
from simulator import carrier, config
from tests.support import silence_wav
from tests.twilio_payloads import ACCOUNT_SID

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
# Two MPEG-1 layer III frames (128 kbit/s, 44.1 kHz): what Twilio's .mp3 starts with.
MP3 = (b"\xff\xfb\x90\x64" + bytes(413)) * 2


def recording_sid() -> str:
    """Return a new recording SID, shaped as Twilio's."""
    return "RE" + uuid.uuid4().hex


@pytest.fixture
def coordinator(app, make_person, make_plp):
    """A coordinator of a PLP whose charter keeps recordings 30 days."""
    plp = make_plp("PLP-REC")
    plp.charter_json = {"retention_days": 30}
    person = make_person(name="Coordinatrice")
    db.session.add(Membership(person=person, partnership=plp, role=Role.COORDINATOR))
    db.session.commit()
    return person


def accepted(author, url: str | None = None, *, duration: int | str | None = 4) -> Recording:
    """Accept a recording at `url` (a fresh fake one by default) and commit."""
    sid = recording_sid()
    recording = accept_recording(
        author=author,
        provider_sid=sid,
        provider_url=url
        or f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
        duration=duration,
    )
    db.session.commit()
    return recording


# --- Accepting ----------------------------------------------------------------------------


@pytest.mark.parametrize("duration", [0, "0", None, "", "nope"])
def test_empty_recording_is_refused(app, coordinator, duration):
    """No sound (0 seconds, or no duration) makes no row and no job: the caller is told."""
    assert accepted(coordinator, duration=duration) is None
    assert db.session.query(Recording).count() == 0
    assert get_queue("urgent").get_job_ids() == []


def test_accept_makes_a_row_and_enqueues_the_download_after_commit(app, coordinator):
    """The row has an unguessable token and the charter's retention; the job follows the commit."""
    sid = recording_sid()
    before = utcnow()
    recording = accept_recording(
        author=coordinator,
        provider_sid=sid,
        provider_url=f"https://api.twilio.com/x/{sid}",
        duration="7",
    )
    assert get_queue("urgent").get_job_ids() == []  # not before the commit
    db.session.commit()
    assert get_queue("urgent").get_job_ids() == [download_job_id(recording.id)]
    assert recording.status == RecordingStatus.PENDING
    assert recording.duration_seconds == 7
    assert recording.author_id == coordinator.id
    assert len(recording.token) >= 43
    assert timedelta(days=30) <= recording.delete_after - before < timedelta(days=30, minutes=1)
    # The day's purge is scheduled for the night after the retention ends.
    purge_day = (recording.delete_after + timedelta(days=1)).strftime("%Y%m%d")
    scheduled = ScheduledJobRegistry(queue=get_queue("low")).get_job_ids(cleanup=False)
    assert f"purge-recordings-{purge_day}" in scheduled


def test_accept_is_idempotent_per_provider_sid(app, coordinator):
    """The same recording reported twice is one row and one download."""
    sid = recording_sid()
    first = accept_recording(
        author=coordinator,
        provider_sid=sid,
        provider_url=f"https://api.twilio.com/x/{sid}",
        duration=3,
    )
    db.session.commit()
    again = accept_recording(
        author=coordinator,
        provider_sid=sid,
        provider_url=f"https://api.twilio.com/x/{sid}",
        duration=3,
    )
    db.session.commit()
    assert again.id == first.id
    assert db.session.query(Recording).count() == 1
    assert get_queue("urgent").get_job_ids() == [download_job_id(first.id)]
    assert first.token != accepted(coordinator).token  # every recording its own token


def test_retention_is_the_shortest_of_the_authors_plps(app, coordinator, make_plp, make_person):
    """Two PLPs: the shorter retention; no PLP: the charter's default (90 days)."""
    other = make_plp("PLP-OTHER")
    other.charter_json = {"retention_days": 14}
    db.session.add(Membership(person=coordinator, partnership=other, role=Role.STEERING))
    db.session.commit()
    assert retention_days(coordinator) == 14
    assert retention_days(make_person(name="Nobody")) == 90
    assert retention_days(None) == 90


# --- Downloading -----------------------------------------------------------------------------


def test_download_through_the_simulator(app, coordinator, client):
    """The simulator's recording is stored under instance/recordings/ and served by its token."""
    set_provider(app, None)  # the app's own provider: the simulator
    sid = carrier.new_sid("RE")
    audio = silence_wav(2.0)
    folder = config.recordings_dir(app)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sid}.wav").write_bytes(audio)
    base = app.extensions["settings"].public_base_url
    recording = accepted(coordinator, f"{base}/simulator/recordings/{sid}")

    assert download_recording(recording.id) == "ready"

    db.session.expire_all()
    recording = db.session.get(Recording, recording.id)
    assert recording.status == RecordingStatus.READY and recording_ready(recording)
    assert recording.content_type == "audio/x-wav"
    stored = Path(app.instance_path) / recording.path
    assert stored == Path(app.instance_path) / "recordings" / f"{recording.token}.wav"
    assert stored.read_bytes() == audio
    url = recording_url(recording)
    assert url == f"{base}/media/recordings/{recording.token}"
    with client.get(url.removeprefix(base)) as response:  # closes the served file
        assert response.status_code == 200
        assert response.data == audio
    # Run again (a retried job): nothing changes.
    assert download_recording(recording.id) == "ready"


class TwilioRecordings:
    """A local server standing in for Twilio's recording URLs, checking Basic auth."""

    def __init__(self, sid: str):
        self.sid = sid
        self.seen: list[tuple[str, tuple[str, str] | None]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @Request.application
    def app(self, request: Request) -> Response:
        auth = request.authorization
        credentials = (auth.username, auth.password) if auth else None
        self.seen.append((request.path, credentials))
        if credentials != (ACCOUNT_SID, AUTH_TOKEN):
            return Response(
                '{"code": 20003, "message": "Authenticate", "status": 401}',
                status=401,
                content_type="application/json",
            )
        if request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{self.sid}.mp3":
            return Response(MP3, content_type="audio/mpeg")
        return Response(
            '{"code": 20404, "status": 404}', status=404, content_type="application/json"
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def twilio(app):
    """Twilio's recording host on a local port, and the app's Twilio provider pointed at it."""
    server = TwilioRecordings(recording_sid())
    settings = dataclasses.replace(
        app.extensions["settings"],
        phone_provider="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_tokens=(AUTH_TOKEN,),
        twilio_api_base=server.url,
    )
    provider = TwilioProvider(settings, timeout=5)
    set_provider(app, provider)
    yield server
    provider.close()
    server.close()


def test_download_from_twilio_with_the_account_credentials(app, coordinator, twilio):
    """The MP3 is fetched from RecordingUrl.mp3 with Basic auth of the account's SID and token."""
    url = f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{twilio.sid}"
    recording = accepted(coordinator, url)
    assert download_recording(recording.id) == "ready"
    assert twilio.seen == [
        (
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{twilio.sid}.mp3",
            (ACCOUNT_SID, AUTH_TOKEN),
        ),
    ]
    db.session.expire_all()
    recording = db.session.get(Recording, recording.id)
    assert recording.content_type == "audio/mpeg"
    assert (Path(app.instance_path) / recording.path).read_bytes() == MP3
    assert recording.path.endswith(".mp3")


def test_refused_credentials_fail_the_recording(app, coordinator, twilio):
    """Twilio refusing the credentials is no passing trouble: the recording fails at once."""
    app.extensions["phone_provider"].settings = dataclasses.replace(
        app.extensions["phone_provider"].settings, twilio_auth_tokens=("wrong-token",)
    )
    url = f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{twilio.sid}"
    recording = accepted(coordinator, url)
    assert download_recording(recording.id) == "failed"
    db.session.expire_all()
    recording = db.session.get(Recording, recording.id)
    assert recording_failed(recording)
    assert "credentials" in recording.error
    assert recording.path is None


def test_missing_recording_is_retried_then_failed(app, coordinator, twilio, monkeypatch):
    """A 404 (Twilio not done with the file) is tried again; after the last try it fails."""
    monkeypatch.setitem(schedule.RETRY_DELAYS, "recording", (timedelta(seconds=5),))
    url = f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid()}"
    recording = accepted(coordinator, url)
    assert download_recording(recording.id) == "retrying"
    scheduled = ScheduledJobRegistry(queue=get_queue("urgent")).get_job_ids(cleanup=False)
    assert download_job_id(recording.id, 2) in scheduled
    assert db.session.get(Recording, recording.id).status == RecordingStatus.PENDING
    assert download_recording(recording.id, 2) == "failed"
    assert recording_failed(db.session.get(Recording, recording.id))


def test_transient_failure_is_retried_with_backoff(app, coordinator, provider, monkeypatch):
    """The carrier down: the download is scheduled again after the first delay, then succeeds."""
    monkeypatch.setitem(
        schedule.RETRY_DELAYS, "recording", (timedelta(seconds=30), timedelta(seconds=60))
    )
    provider.fail_next(ProviderUnavailableError("down"), times=1)
    recording = accepted(coordinator)
    before = utcnow()
    assert download_recording(recording.id) == "retrying"
    queue = get_queue("urgent")
    job = queue.fetch_job(download_job_id(recording.id, 2))
    assert job.args == (recording.id, 2)
    registry = ScheduledJobRegistry(queue=queue)
    at = registry.get_scheduled_time(job.id)
    assert timedelta(seconds=29) <= at - before <= timedelta(seconds=32)
    assert download_recording(recording.id, 2) == "ready"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty"),
        (silence_wav(0), "empty"),
        (b"<html><body>Service unavailable</body></html>", "not audio"),
    ],
)
def test_empty_or_invalid_audio_fails(app, coordinator, provider, content, why):
    """Nothing, a WAV without a frame, or an HTML page: FAILED, never stored, never linked."""
    recording = accepted(coordinator)
    provider.recordings[recording.provider_url] = RecordingAudio(content, "audio/x-wav")
    assert download_recording(recording.id) == "failed"
    db.session.expire_all()
    recording = db.session.get(Recording, recording.id)
    assert recording_failed(recording) and not recording_ready(recording)
    assert recording.error.startswith(why)
    assert not (Path(app.instance_path) / "recordings").exists()


def test_download_of_an_unknown_recording_is_moot(app):
    """A job for a recording that is gone does nothing."""
    assert download_recording(4242) == "missing"


# --- Retention ---------------------------------------------------------------------------------


def test_purge_deletes_expired_files_and_schedules_tomorrow(app, coordinator, client):
    """Past its retention a recording's file is deleted and its URL answers 404."""
    old, fresh = accepted(coordinator), accepted(coordinator)
    for recording in (old, fresh):
        assert download_recording(recording.id) == "ready"
    db.session.expire_all()
    old, fresh = db.session.get(Recording, old.id), db.session.get(Recording, fresh.id)
    old_file = Path(app.instance_path) / old.path
    base = app.extensions["settings"].public_base_url
    old_url = recording_url(old).removeprefix(base)
    with client.get(old_url) as response:
        assert response.status_code == 200
    now = utcnow()
    old.delete_after = now - timedelta(minutes=1)
    db.session.commit()

    assert client.get(old_url).status_code == 404  # expired: refused before the purge
    assert purge_expired_recordings(now) == 1

    db.session.expire_all()
    old, fresh = db.session.get(Recording, old.id), db.session.get(Recording, fresh.id)
    assert old.status == RecordingStatus.DELETED and old.path is None
    assert not old_file.exists()
    assert fresh.status == RecordingStatus.READY
    assert (Path(app.instance_path) / fresh.path).exists()
    tomorrow = (now + timedelta(days=1)).strftime("%Y%m%d")
    scheduled = ScheduledJobRegistry(queue=get_queue("low")).get_job_ids(cleanup=False)
    assert f"purge-recordings-{tomorrow}" in scheduled
    assert purge_expired_recordings(now) == 0  # nothing twice


def test_purge_deletes_the_carriers_copy_and_retries_a_refusal_the_next_day(
    app, coordinator, provider
):
    """The carrier's copy goes with ours; a refusal (outage) is asked again next time."""
    refused, deleted = accepted(coordinator), accepted(coordinator)
    now = utcnow()
    for recording in (refused, deleted):
        recording.delete_after = now - timedelta(minutes=1)
    db.session.commit()
    provider.fail_next(ProviderUnavailableError("down"))  # the first deletion: `refused`

    assert purge_expired_recordings(now) == 2

    db.session.expire_all()
    refused, deleted = db.session.get(Recording, refused.id), db.session.get(Recording, deleted.id)
    assert provider.deleted == [deleted.provider_sid]
    assert deleted.provider_url is None and refused.provider_url is not None
    assert {refused.status, deleted.status} == {RecordingStatus.DELETED}

    assert purge_expired_recordings(now) == 1  # tomorrow: only the carrier's copy left
    db.session.expire_all()
    assert provider.deleted == [deleted.provider_sid, refused.provider_sid]
    assert db.session.get(Recording, refused.id).provider_url is None
    assert purge_expired_recordings(now) == 0


def test_the_simulator_deletes_its_recording_file(app):
    """The simulator's provider removes the WAV it served; a second deletion is a no-op."""
    set_provider(app, None)  # the app's own provider: the simulator
    sid = carrier.new_sid("RE")
    folder = config.recordings_dir(app)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sid}.wav").write_bytes(silence_wav(1.0))
    simulator = get_provider(app)
    simulator.delete_recording(sid)
    assert not (folder / f"{sid}.wav").exists()
    simulator.delete_recording(sid)
    with pytest.raises(ProviderError):
        simulator.delete_recording("../../secret")


def test_start_purging_schedules_one_job(app):
    """The worker's start schedules tonight's purge once, however many workers start."""
    recordings.start_purging()
    recordings.start_purging()
    scheduled = ScheduledJobRegistry(queue=get_queue("low")).get_job_ids(cleanup=False)
    assert len([j for j in scheduled if j.startswith("purge-recordings-")]) == 1


# --- E-mail -----------------------------------------------------------------------------------


def _email_parts(message):
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return plain, html


def test_email_links_a_ready_recording(app, coordinator, make_alert, make_person):
    """The alert e-mail carries the recording's link, in the member's language."""
    recording = accepted(coordinator)
    assert download_recording(recording.id) == "ready"
    alert = make_alert(recording_id=recording.id)
    member = make_person(name="Membre", email="membre@example.be", language="nl")
    plain, html = _email_parts(alert_email(alert, member, "https://plp.example/c/x"))
    url = recording_url(db.session.get(Recording, recording.id))
    assert url in plain
    assert f'href="{url}"' in html
    assert "Beluister het gesproken bericht" in plain


def test_email_without_a_playable_recording_has_no_link(
    app, coordinator, make_alert, make_person, provider
):
    """A failed recording, or none, puts no recording link in the e-mail."""
    failed = accepted(coordinator)
    provider.recordings[failed.provider_url] = RecordingAudio(b"", "audio/x-wav")
    assert download_recording(failed.id) == "failed"
    member = make_person(name="Membre", email="membre@example.be", language="fr")
    for alert in (make_alert(recording_id=failed.id), make_alert()):
        plain, html = _email_parts(alert_email(alert, member, "https://plp.example/c/x"))
        assert "/media/recordings/" not in plain
        assert "/media/recordings/" not in html
        assert "message vocal" not in plain
