"""The media routes: rendered speech and recordings, with caching headers, 404 when unknown."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.models import Recording, RecordingStatus, utcnow
from alerts.recordings import recording_url
from core.extensions import db
from prompts.audio_cache import audio_key, audio_path
from tests.support import silence_wav

WAV = silence_wav(0.5)
WORDS = "Pour confirmer, appuyez sur 1."


def get(client, path: str, **headers: str):
    """GET `path`, reading and closing the response (send_file keeps the file open)."""
    with client.get(path, headers=headers) as response:
        response.get_data()
        return response


@pytest.fixture
def speech_file(app):
    """A rendered prompt in the cache, as the espeak engine leaves it; its URL path."""
    name = f"{audio_key(WORDS)}.wav"
    path = audio_path("espeak", "fr", name)
    path.parent.mkdir(parents=True)
    path.write_bytes(WAV)
    return f"/media/speech/espeak/fr/{name}"


def stored_recording(app, **fields) -> Recording:
    """A downloaded recording with its file under instance/recordings/."""
    token = fields.pop("token", "tok-" + "x" * 40)
    relative = f"recordings/{token}.wav"
    path = Path(app.instance_path) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)
    recording = Recording(
        token=token,
        path=relative,
        content_type="audio/x-wav",
        status=RecordingStatus.READY,
        duration_seconds=1,
        delete_after=utcnow() + timedelta(days=30),
        **fields,
    )
    db.session.add(recording)
    db.session.commit()
    return recording


# --- Speech ------------------------------------------------------------------------------


def test_speech_is_served_immutable_with_an_etag(client, speech_file):
    """A prompt's audio: 200, audio/x-wav, public, a year, immutable, with an ETag."""
    response = get(client, speech_file)
    assert response.status_code == 200
    assert response.data == WAV
    assert response.mimetype == "audio/x-wav"
    assert response.cache_control.public is True
    assert response.cache_control.immutable is True
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.headers["ETag"]


def test_speech_revalidation_answers_304(client, speech_file):
    """A client holding the ETag gets 304 and no body."""
    etag = get(client, speech_file).headers["ETag"]
    again = get(client, speech_file, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""


def test_speech_supports_ranges(client, speech_file):
    """A byte range (players seek) gets 206 with just those bytes."""
    response = get(client, speech_file, Range="bytes=0-11")
    assert response.status_code == 206
    assert response.data == WAV[:12]


@pytest.mark.parametrize(
    "path",
    [
        "/media/speech/espeak/fr/" + "0" * 64 + ".wav",  # not rendered
        "/media/speech/gtts/fr/{key}.wav",  # gtts makes mp3, never wav
        "/media/speech/espeak/xx/{key}.wav",  # no such language
        "/media/speech/say/fr/{key}.wav",  # say makes no file
        "/media/speech/espeak/fr/{key}.mp3",
        "/media/speech/espeak/fr/..%2F..%2Fsecret_key",
        "/media/speech/espeak/fr/{key}.wav.bak",
        "/media/speech/espeak/fr/" + "G" * 64 + ".wav",
    ],
)
def test_unknown_speech_is_404(client, speech_file, path):
    """Anything but a rendered file's exact name is 404, never a file outside the cache."""
    assert get(client, path.format(key=audio_key(WORDS))).status_code == 404


# --- Recordings ---------------------------------------------------------------------------


def test_recording_is_served_with_caching_headers(app, client):
    """A recording: 200 with its type, an ETag, cached for at most a day, 304 on revalidation."""
    recording = stored_recording(app)
    base = app.extensions["settings"].public_base_url
    path = recording_url(recording).removeprefix(base)
    response = get(client, path)
    assert response.status_code == 200
    assert response.data == WAV
    assert response.mimetype == "audio/x-wav"
    assert response.cache_control.max_age == 24 * 3600
    assert response.cache_control.immutable is not True
    assert response.headers["X-Robots-Tag"] == "noindex"
    again = get(client, path, **{"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_recording_cache_ends_with_its_retention(app, client):
    """Close to its deletion, a recording is cached only until then."""
    recording = stored_recording(app)
    recording.delete_after = utcnow() + timedelta(minutes=10)
    db.session.commit()
    response = get(client, f"/media/recordings/{recording.token}")
    assert response.status_code == 200
    assert 0 < response.cache_control.max_age <= 600


@pytest.mark.parametrize(
    "state",
    ["unknown", "failed", "pending", "deleted", "expired", "file_gone", "long_token"],
)
def test_unplayable_recording_is_404(app, client, state):
    """Unknown token, failed, pending, deleted, expired or a missing file: 404, never a 500."""
    recording = stored_recording(app)
    token = recording.token
    match state:
        case "unknown":
            token = "tok-" + "y" * 40
        case "failed" | "pending" | "deleted":
            recording.status = RecordingStatus(state)
        case "expired":
            recording.delete_after = utcnow() - timedelta(seconds=1)
        case "file_gone":
            shutil.rmtree(Path(app.instance_path) / "recordings")
        case "long_token":
            token = "z" * 500
    db.session.commit()
    assert get(client, f"/media/recordings/{token}").status_code == 404
