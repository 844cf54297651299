"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import os
import sys
import uuid
import wave
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from alerts.delivery.provider import (
    CallRequest,
    ProviderError,
    RecordingAudio,
    Sent,
    SmsRequest,
)
from core.app import PROJECT_ROOT
from core.extensions import db
from core.webhooks import signing_token

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


# --- Twilio webhooks: signed requests and realistic payloads -------------------------

ACCOUNT_SID = "AC3f9d2c8e1b7a4c60d5e2f1a0b9c8d7e6"
PLP_NUMBER = "+3223150100"  # the PLP's number: caller ID of calls, sender of SMS
MEMBER_NUMBER = "+32470123456"
TWILIO_SETTINGS = {  # the settings of an app whose carrier is Twilio
    "PHONE_PROVIDER": "twilio",
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "TWILIO_FROM_NUMBER": PLP_NUMBER,
    "PUBLIC_BASE_URL": "https://plp.example.be",
}


def call_sid() -> str:
    """Return a new call SID, shaped as Twilio's."""
    return "CA" + uuid.uuid4().hex


def message_sid() -> str:
    """Return a new message SID, shaped as Twilio's."""
    return "SM" + uuid.uuid4().hex


def signed_post(
    client,
    path: str,
    form,
    *,
    token: str | None = None,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
):
    """POST `form` to `path` with the signature Twilio would send.

    Signed with `token` (default: the app's signing token) over `url` (default: the
    app's public base URL + `path`); the request itself always goes to `path`.
    """
    settings = client.application.extensions["settings"]
    form = MultiDict(form)
    token = token if token is not None else signing_token(settings)
    url = url if url is not None else settings.public_base_url + path
    signature = RequestValidator(token).compute_signature(url, form)
    return client.post(
        path, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def _twilio_form(base: dict[str, str], extra: Mapping[str, str | int | None]) -> dict[str, str]:
    # An extra value of None removes the field: how a test builds a malformed webhook.
    form = {**base, **{k: str(v) for k, v in extra.items() if v is not None}}
    return {k: v for k, v in form.items() if extra.get(k, "") is not None}


def call_status_form(
    sid: str,
    status: str,
    *,
    to: str = MEMBER_NUMBER,
    from_: str = PLP_NUMBER,
    **extra: str | int | None,
) -> dict[str, str]:
    """Return the form of a call status callback for an outbound call, as Twilio posts it.

    `extra` adds fields (CallDuration, AnsweredBy, Price, ...) or, with None, removes one.
    """
    base = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Called": to,
        "CalledCity": "",
        "CalledCountry": "BE",
        "CalledState": "",
        "CalledZip": "",
        "Caller": from_,
        "CallerCity": "Bruxelles",
        "CallerCountry": "BE",
        "CallerState": "",
        "CallerZip": "",
        "Direction": "outbound-api",
        "From": from_,
        "FromCity": "Bruxelles",
        "FromCountry": "BE",
        "FromState": "",
        "FromZip": "",
        "To": to,
        "ToCity": "",
        "ToCountry": "BE",
        "ToState": "",
        "ToZip": "",
        "Timestamp": format_datetime(datetime.now(UTC), usegmt=False),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    if status in ("completed", "busy", "no-answer", "failed", "canceled"):
        base["SipResponseCode"] = {
            "completed": "200",
            "busy": "486",
            "no-answer": "487",
            "failed": "404",
            "canceled": "487",
        }[status]
    return _twilio_form(base, extra)


def sms_status_form(
    sid: str,
    status: str,
    *,
    to: str = MEMBER_NUMBER,
    from_: str = PLP_NUMBER,
    **extra: str | int | None,
) -> dict[str, str]:
    """Return the form of a message status callback, as Twilio posts it.

    `extra` adds fields (ErrorCode, ErrorMessage, MessagingServiceSid, ...) or, with
    None, removes one.
    """
    base = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if status == "delivered":
        base["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
    return _twilio_form(base, extra)


def snapshot(row) -> dict:
    """Return every column of `row` as stored in the database now (for "nothing changed")."""
    db.session.expire(row)
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}


# --- The phone provider fake ----------------------------------------------------------


class FakeProvider:
    """A `PhoneProvider` that records requests instead of reaching a carrier.

    Every app made by the `app` fixture has one installed, so no test reaches Twilio by
    accident. Requests are recorded whether or not they succeed; `fail_next` makes the
    next request raise the given `ProviderError`.
    """

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[CallRequest] = []
        self.messages: list[SmsRequest] = []
        self.sent: list[tuple[CallRequest | SmsRequest, Sent]] = []
        self.fetched: list[str] = []
        self.deleted: list[str] = []
        self.recordings: dict[str, RecordingAudio] = {}
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
