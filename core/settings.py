"""Settings: read once from the environment (and `.env`), validated, then frozen.

Every key has one spelling, the one in the README's settings table. A missing or
malformed setting raises `SettingsError` whose message names the key; `create_app`
turns that into a one-line exit outside tests.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import phonenumbers
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROVIDERS = ("twilio", "simulator")
TTS_ENGINE_NAMES = ("gtts", "espeak", "say")
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
SETTING_KEYS = frozenset(
    {
        "DATABASE_URL",
        "REDIS_URL",
        "PHONE_PROVIDER",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
        "TWILIO_API_BASE",
        "PUBLIC_BASE_URL",
        "SMTP_URL",
        "MAIL_FROM",
        "SECRET_KEY",
        "CALLS_PER_SECOND",
        "SMS_PER_SECOND",
        "TTS_ENGINES",
        "TTS_TIMEOUT_SECONDS",
        "TESTING",
    }
)

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mail goes: parsed from `SMTP_URL`."""

    host: str
    port: int
    username: str | None
    password: str | None
    ssl: bool  # smtps://: TLS from the first byte
    starttls: bool | None  # None: use STARTTLS when the server offers it


@dataclass(frozen=True)
class Settings:
    """The validated settings of one running app."""

    database_url: str
    redis_url: str | None  # None: the embedded Redis server under instance/
    phone_provider: str
    twilio_account_sid: str | None
    twilio_auth_tokens: tuple[str, ...]  # first: current; others accepted while rotating
    twilio_from_number: str | None
    twilio_messaging_service_sid: str | None
    twilio_api_base: str
    public_base_url: str
    smtp: SmtpSettings | None  # None: e-mails are written to instance/outbox/
    mail_from: str
    secret_key: str = field(repr=False)
    calls_per_second: float
    sms_per_second: float
    tts_engines: tuple[str, ...]
    tts_timeout_seconds: float = 5.0  # an online engine's bound (connect, then each read)

    @property
    def embedded_redis(self) -> bool:
        """Tell whether this app runs its own Redis server under instance/."""
        return self.redis_url is None


def load_settings(values: Mapping[str, str], instance_path: Path, project_root: Path) -> Settings:
    """Validate raw string settings into `Settings`, or raise `SettingsError` naming the key."""
    raw = {key: str(value).strip() for key, value in values.items() if value is not None}

    def get(key: str) -> str | None:
        return raw.get(key) or None

    account_sid = get("TWILIO_ACCOUNT_SID")
    tokens = tuple(t.strip() for t in (get("TWILIO_AUTH_TOKEN") or "").split(",") if t.strip())
    provider = get("PHONE_PROVIDER") or ("twilio" if account_sid and tokens else "simulator")
    provider = provider.lower()
    if provider not in PROVIDERS:
        raise SettingsError(f"PHONE_PROVIDER: {provider!r} is not one of {', '.join(PROVIDERS)}")

    from_number = _optional(get("TWILIO_FROM_NUMBER"), "TWILIO_FROM_NUMBER", _e164)
    service_sid = get("TWILIO_MESSAGING_SERVICE_SID")
    if service_sid and not _MESSAGING_SERVICE_SID.match(service_sid):
        raise SettingsError("TWILIO_MESSAGING_SERVICE_SID: expected MG followed by 32 hex digits")
    if account_sid and not _ACCOUNT_SID.match(account_sid):
        raise SettingsError("TWILIO_ACCOUNT_SID: expected AC followed by 32 hex digits")
    if provider == "twilio":
        # Calls need a caller ID even when SMS go through a messaging service.
        for key, value in (
            ("TWILIO_ACCOUNT_SID", account_sid),
            ("TWILIO_AUTH_TOKEN", tokens),
            ("TWILIO_FROM_NUMBER", from_number),
        ):
            if not value:
                raise SettingsError(f"{key}: required when PHONE_PROVIDER is twilio")
        if not get("PUBLIC_BASE_URL"):
            raise SettingsError(
                "PUBLIC_BASE_URL: required with Twilio (the URL Twilio reaches this app at)"
            )

    secret_key = get("SECRET_KEY") or _instance_secret_key(instance_path)
    if len(secret_key) < 16:
        raise SettingsError("SECRET_KEY: must be at least 16 characters long")

    return Settings(
        database_url=_database_url(get("DATABASE_URL"), instance_path, project_root),
        redis_url=_optional(get("REDIS_URL"), "REDIS_URL", _redis_url),
        phone_provider=provider,
        twilio_account_sid=account_sid,
        twilio_auth_tokens=tokens,
        twilio_from_number=from_number,
        twilio_messaging_service_sid=service_sid,
        twilio_api_base=_http_url(
            get("TWILIO_API_BASE") or "https://api.twilio.com", "TWILIO_API_BASE"
        ),
        public_base_url=_http_url(
            get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000", "PUBLIC_BASE_URL"
        ),
        smtp=_optional(get("SMTP_URL"), "SMTP_URL", _smtp),
        mail_from=_mail_from(get("MAIL_FROM") or "plp-alert@localhost"),
        secret_key=secret_key,
        calls_per_second=_rate(get("CALLS_PER_SECOND"), "CALLS_PER_SECOND"),
        sms_per_second=_rate(get("SMS_PER_SECOND"), "SMS_PER_SECOND"),
        tts_engines=_tts_engines(get("TTS_ENGINES") or ",".join(TTS_ENGINE_NAMES)),
        tts_timeout_seconds=_tts_timeout(get("TTS_TIMEOUT_SECONDS")),
    )


def _optional(value, key, parse):
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as err:
        raise SettingsError(f"{key}: {err}") from None


def _database_url(value: str | None, instance_path: Path, project_root: Path) -> str:
    if value is None:
        return f"sqlite:///{instance_path / 'plp.db'}"
    # Heroku-style and bare PostgreSQL URLs are mapped to the driver we install (psycopg 3).
    value = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", value)
    try:
        url = make_url(value)
    except ArgumentError:
        raise SettingsError(f"DATABASE_URL: {value!r} is not a database URL") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise SettingsError(f"DATABASE_URL: {backend!r} is not supported (sqlite or postgresql)")
    if backend == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        # The contract's default, sqlite:///instance/plp.db, is relative to the project,
        # not to the process's working directory (gunicorn, rq and cron may differ).
        if not path.is_absolute():
            url = url.set(database=str(project_root / path))
    return url.render_as_string(hide_password=False)


def _redis_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{value!r} is not a redis://, rediss:// or unix:// URL")
    return value


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{key}: {value!r} is not an http(s):// URL")
    if parts.query or parts.fragment:
        raise SettingsError(f"{key}: must not have a query or fragment")
    return value.rstrip("/")


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, "BE")
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _smtp(value: str) -> SmtpSettings:
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("expected smtp://user:pass@host:port or smtps://...")
    if not parts.hostname:
        raise ValueError("no host name")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number") from None
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    starttls = {"1": True, "true": True, "0": False, "false": False}.get(
        query.get("starttls", "").lower()
    )
    ssl = parts.scheme == "smtps"
    return SmtpSettings(
        host=parts.hostname,
        port=port or (465 if ssl else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=ssl,
        starttls=False if ssl else starttls,
    )


def _mail_from(value: str) -> str:
    # Not email_validator: it refuses "localhost", the contract's default sender domain.
    # A display name is allowed: "PLP Alert <alert@zone.be>".
    _name, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if not local or not domain or " " in address:
        raise SettingsError(f"MAIL_FROM: {value!r} is not an e-mail address")
    return value


def _rate(value: str | None, key: str) -> float:
    if value is None:
        return 1.0
    try:
        rate = float(value)
    except ValueError:
        raise SettingsError(f"{key}: {value!r} is not a number") from None
    if not 0 < rate <= 1000:
        raise SettingsError(f"{key}: must be above 0 and at most 1000 per second")
    return rate


def _tts_engines(value: str) -> tuple[str, ...]:
    engines = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    unknown = [e for e in engines if e not in TTS_ENGINE_NAMES]
    if unknown or not engines:
        wrong = ", ".join(unknown) or "empty"
        raise SettingsError(f"TTS_ENGINES: {wrong}: choose from {', '.join(TTS_ENGINE_NAMES)}")
    return engines


def _tts_timeout(value: str | None) -> float:
    if value is None:
        return 5.0
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"TTS_TIMEOUT_SECONDS: {value!r} is not a number") from None
    if not 0 < seconds <= 60:
        raise SettingsError("TTS_TIMEOUT_SECONDS: must be above 0 and at most 60 seconds")
    return seconds


def _instance_secret_key(instance_path: Path) -> str:
    """Read the generated secret key from instance/, creating it (mode 0600) on first run."""
    path = instance_path / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Write then link: the web server and the worker may start together, and a reader
    # must never see a half-written file. link() fails if the other process won.
    tmp = instance_path / f".{SECRET_KEY_FILE}.{secrets.token_hex(4)}"
    tmp.write_text(key, encoding="ascii")
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key
