"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import os
import sys
import wave
from collections import deque
from pathlib import Path

from rq import SimpleWorker
from sqlalchemy import create_engine, inspect, text

from alerts.delivery.provider import (
    CallRequest,
    CarrierStatus,
    ProviderError,
    RecordingAudio,
    Sent,
    SmsRequest,
    UnknownSidError,
)
from core.app import PROJECT_ROOT
from core.extensions import db, redis_connection
from core.queue import QUEUE_NAMES, get_queue
from tests.twilio_payloads import ACCOUNT_SID, PLP_NUMBER, call_sid, message_sid

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# A Redis server for the tests (CI); without it, the embedded redis-server.
SERVER_REDIS_URL = os.environ.get("REDIS_URL")
TEST_SECRET = "test-secret-key-not-for-production"
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
# Nothing may reach Google by accident either: tests that mean to try gTTS say so.
OFFLINE_TTS_ENGINES = "espeak,say"


def reset_postgres(url: str) -> None:
    """Drop every table (and Alembic's version table) of the test database."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for table in inspect(connection).get_table_names():
            connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    engine.dispose()


def database_url_for(kind: str, tmp_path: Path) -> str:
    """Return an empty database of `kind` for one test."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    reset_postgres(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


def app_config(tmp_path: Path, database_url: str, redis_url: str, **overrides) -> dict:
    """Return the config of a test app (no environment, no .env)."""
    return {
        "TESTING": True,
        "INSTANCE_PATH": tmp_path / "instance",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        "PHONE_PROVIDER": "simulator",
        "TTS_ENGINES": OFFLINE_TTS_ENGINES,
        **overrides,
    }


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Return an environment for running the app's commands in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMTP_", "FLASK_"))}
    env.update(
        {
            "SECRET_KEY": TEST_SECRET,
            "PHONE_PROVIDER": "simulator",
            "TTS_ENGINES": OFFLINE_TTS_ENGINES,
            "PYTHONPATH": str(PROJECT_ROOT),
        }
    )
    env.update(overrides)
    return env


# The settings of an app whose carrier is Twilio.
TWILIO_SETTINGS = {
    "PHONE_PROVIDER": "twilio",
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "TWILIO_FROM_NUMBER": PLP_NUMBER,
    "PUBLIC_BASE_URL": "https://plp.example.be",
}


def run_queued_jobs() -> None:
    """Run every job queued now, in this process (the scheduled ones stay scheduled)."""
    queues = [get_queue(name) for name in QUEUE_NAMES]
    SimpleWorker(queues, connection=redis_connection()).work(burst=True)


def snapshot(row) -> dict:
    """Return every column of `row` as stored in the database now (for "nothing changed")."""
    db.session.expire(row)
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}


# --- The phone provider fake ----------------------------------------------------------


class FakeProvider:
    """A `PhoneProvider` that records requests instead of reaching a carrier.

    Every app made by the `app` fixture has one installed, so no test reaches Twilio by
    accident. Requests are recorded whether or not they succeed; `fail_next` makes the
    next request raise the given `ProviderError`. The carrier's view of each call and
    message (for status fetches) is what the test puts in `call_statuses` and
    `message_statuses`, by SID; a SID in neither is unknown to the carrier.
    """

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[CallRequest] = []
        self.messages: list[SmsRequest] = []
        self.sent: list[tuple[CallRequest | SmsRequest, Sent]] = []
        self.fetched: list[str] = []
        self.deleted: list[str] = []
        self.recordings: dict[str, RecordingAudio] = {}
        self.call_statuses: dict[str, CarrierStatus] = {}
        self.message_statuses: dict[str, CarrierStatus] = {}
        self.status_fetches: list[str] = []  # SIDs asked about, in order
        self.recent_lookups: list[tuple[str, str]] = []  # (to, channel) asked about
        self._failures: deque[ProviderError] = deque()

    def fail_next(self, error: ProviderError, times: int = 1) -> None:
        """Make the next `times` requests (call, SMS or recording) raise `error`."""
        self._failures.extend([error] * times)

    def place_call(self, request: CallRequest) -> Sent:
        """Record the call; return a new call SID, or raise the planned failure."""
        self.calls.append(request)
        return self._accept(request, call_sid(), "queued")

    def send_sms(self, request: SmsRequest) -> Sent:
        """Record the SMS; return a new message SID, or raise the planned failure."""
        self.messages.append(request)
        return self._accept(request, message_sid(), "queued")

    def delete_recording(self, recording_sid: str) -> None:
        """Record the deletion (a planned failure is raised first)."""
        self._raise_planned_failure()
        self.deleted.append(recording_sid)

    def fetch_recording(self, recording_url: str) -> RecordingAudio:
        """Return the audio set in `recordings` for the URL, else one second of silence."""
        self.fetched.append(recording_url)
        self._raise_planned_failure()
        return self.recordings.get(recording_url) or RecordingAudio(silence_wav(), "audio/x-wav")

    def fetch_call_status(self, sid: str) -> CarrierStatus:
        """Return the status set for the call, or raise the planned failure or UnknownSidError."""
        return self._status(self.call_statuses, sid)

    def fetch_message_status(self, sid: str) -> CarrierStatus:
        """Return the status set for the message (as `fetch_call_status`)."""
        return self._status(self.message_statuses, sid)

    def find_recent(self, to: str, channel: str, since) -> list[str]:
        """Return the SIDs of what this fake accepted for `to` on `channel` (any time)."""
        self.recent_lookups.append((to, channel))
        self._raise_planned_failure()
        kind = CallRequest if channel == "call" else SmsRequest
        return [
            sent.sid
            for request, sent in self.sent
            if isinstance(request, kind) and request.to == to
        ]

    def _status(self, statuses: dict[str, CarrierStatus], sid: str) -> CarrierStatus:
        self.status_fetches.append(sid)
        self._raise_planned_failure()
        if sid not in statuses:
            raise UnknownSidError("unknown to the fake carrier", detail=f"HTTP 404 for {sid}")
        return statuses[sid]

    def _accept(self, request, sid: str, status: str) -> Sent:
        self._raise_planned_failure()
        sent = Sent(sid=sid, status=status)
        self.sent.append((request, sent))
        return sent

    def _raise_planned_failure(self) -> None:
        if self._failures:
            raise self._failures.popleft()


def silence_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """Return `seconds` of silence as a WAV file (a recording's audio in tests)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()
