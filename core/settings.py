"""Settings: read once from the environment (and `.env`), validated, then frozen.

Every key has one spelling, the one in the README's settings table. A missing or
malformed setting raises `SettingsError` whose message names the key; `create_app`
turns that into a one-line exit outside tests.
"""

from __future__ import annotations

import difflib
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
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
# Any of these set means the operator wants Twilio (unless PHONE_PROVIDER says otherwise).
TWILIO_KEYS = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_API_BASE",
)
TWILIO_SETTING_KEYS = (*TWILIO_KEYS, "TWILIO_API_BASE_ALLOW_ANY")
SETTING_KEYS = frozenset(
    {
        "DATABASE_URL",
        "REDIS_URL",
        "PHONE_PROVIDER",
        *TWILIO_SETTING_KEYS,
        "PUBLIC_BASE_URL",
        "SMTP_URL",
        "MAIL_FROM",
        "SECRET_KEY",
        "CALLS_PER_SECOND",
        "SMS_PER_SECOND",
        "TTS_ENGINES",
        "TTS_TIMEOUT_SECONDS",
        "LOG_LEVEL",
        "HEALTH_TOKEN",
        "TESTING",
    }
)
MIN_SECRET_KEY_LENGTH = 16
# With a real carrier, SECRET_KEY signs the confirmation links sent to every member.
MIN_PRODUCTION_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_DISTINCT_CHARACTERS = 10  # "x" * 40 or "changeme" repeated is not a key
WEAK_SECRET_KEYS = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "dev",
        "development",
        "password",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "please-change-me",
        "replace-me",
        "insecure",
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
    log_level: str = "INFO"
    # Allowed but surprising combinations, logged once at start (create_app).
    startup_warnings: tuple[str, ...] = ()
    # Bearer token that shows /healthz's details (hosts, errors) beyond loopback clients.
    health_token: str | None = field(default=None, repr=False)

    @property
    def embedded_redis(self) -> bool:
        """Tell whether this app runs its own Redis server under instance/."""
        return self.redis_url is None


def load_settings(
    values: Mapping[str, str], instance_path: Path, project_root: Path, *, testing: bool = False
) -> Settings:
    """Validate raw string settings into `Settings`, or raise `SettingsError` naming the key.

    Outside tests (`testing` false) a Twilio app must also be fit for production: an
    https `PUBLIC_BASE_URL`, a strong `SECRET_KEY` and Twilio's own API host.
    """
    _refuse_unknown_twilio_names(values)
    raw = {key: str(value).strip() for key, value in values.items() if value is not None}

    def get(key: str) -> str | None:
        return raw.get(key) or None

    # Fail closed: one Twilio variable set means Twilio was meant, so a partial
    # configuration stops the app instead of quietly running the simulator.
    twilio_found = [key for key in TWILIO_KEYS if get(key)]
    chosen = get("PHONE_PROVIDER")
    provider = (chosen or ("twilio" if twilio_found else "simulator")).lower()
    if provider not in PROVIDERS:
        raise SettingsError(f"PHONE_PROVIDER: {provider!r} is not one of {', '.join(PROVIDERS)}")
    warnings = []
    if provider == "simulator" and twilio_found:
        warnings.append(
            f"PHONE_PROVIDER=simulator: {', '.join(twilio_found)} set but not used; "
            "no real call or SMS is made"
        )

    account_sid = get("TWILIO_ACCOUNT_SID")
    tokens = tuple(t.strip() for t in (get("TWILIO_AUTH_TOKEN") or "").split(",") if t.strip())
    from_number = _optional(get("TWILIO_FROM_NUMBER"), "TWILIO_FROM_NUMBER", _e164)
    service_sid = get("TWILIO_MESSAGING_SERVICE_SID")
    if service_sid and not _MESSAGING_SERVICE_SID.match(service_sid):
        raise SettingsError("TWILIO_MESSAGING_SERVICE_SID: expected MG followed by 32 hex digits")
    if account_sid and not _ACCOUNT_SID.match(account_sid):
        raise SettingsError("TWILIO_ACCOUNT_SID: expected AC followed by 32 hex digits")
    if provider == "twilio":
        because = (
            "when PHONE_PROVIDER is twilio"
            if chosen
            else f"when a Twilio variable is set (found {', '.join(twilio_found)})"
        )
        # Calls need a caller ID even when SMS go through a messaging service, so the
        # from number is the one sender every Twilio app has.
        for key, value in (
            ("TWILIO_ACCOUNT_SID", account_sid),
            ("TWILIO_AUTH_TOKEN", tokens),
            ("TWILIO_FROM_NUMBER", from_number),
        ):
            if not value:
                raise SettingsError(f"{key}: required {because}")
        if not get("PUBLIC_BASE_URL"):
            raise SettingsError(
                "PUBLIC_BASE_URL: required with Twilio (the URL Twilio reaches this app at)"
            )

    public_base_url = _http_url(
        get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000", "PUBLIC_BASE_URL"
    )
    twilio_api_base = _http_url(
        get("TWILIO_API_BASE") or "https://api.twilio.com", "TWILIO_API_BASE"
    )
    allow_any_api_base = _flag(get("TWILIO_API_BASE_ALLOW_ANY"), "TWILIO_API_BASE_ALLOW_ANY")
    secret_key = get("SECRET_KEY")
    if provider == "twilio" and not testing:
        _check_production(public_base_url, secret_key, twilio_api_base, allow_any_api_base)
        if not _is_twilio_host(twilio_api_base):
            warnings.append(
                f"TWILIO_API_BASE_ALLOW_ANY=1: calls and SMS go to {twilio_api_base}, not Twilio"
            )
    secret_key = secret_key or _instance_secret_key(instance_path)
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise SettingsError(f"SECRET_KEY: must be at least {MIN_SECRET_KEY_LENGTH} characters long")

    return Settings(
        database_url=_database_url(get("DATABASE_URL"), instance_path, project_root),
        redis_url=_optional(get("REDIS_URL"), "REDIS_URL", _redis_url),
        phone_provider=provider,
        twilio_account_sid=account_sid,
        twilio_auth_tokens=tokens,
        twilio_from_number=from_number,
        twilio_messaging_service_sid=service_sid,
        twilio_api_base=twilio_api_base,
        public_base_url=public_base_url,
        smtp=_optional(get("SMTP_URL"), "SMTP_URL", _smtp),
        mail_from=_mail_from(get("MAIL_FROM") or "plp-alert@localhost"),
        secret_key=secret_key,
        calls_per_second=_rate(get("CALLS_PER_SECOND"), "CALLS_PER_SECOND"),
        sms_per_second=_rate(get("SMS_PER_SECOND"), "SMS_PER_SECOND"),
        tts_engines=_tts_engines(get("TTS_ENGINES") or ",".join(TTS_ENGINE_NAMES)),
        tts_timeout_seconds=_tts_timeout(get("TTS_TIMEOUT_SECONDS")),
        log_level=_log_level(get("LOG_LEVEL")),
        health_token=_health_token(get("HEALTH_TOKEN")),
        startup_warnings=tuple(warnings),
    )


def _refuse_unknown_twilio_names(values: Mapping[str, str]) -> None:
    """Refuse a TWILIO_ variable that is no setting: a misspelling would go unnoticed."""
    unknown = sorted(
        key
        for key in values
        if key.upper().startswith("TWILIO_") and key not in TWILIO_SETTING_KEYS
    )
    if not unknown:
        return
    name = unknown[0]
    # Compared without the shared prefix, which would make every name look alike.
    suffixes = {key.removeprefix("TWILIO_"): key for key in TWILIO_SETTING_KEYS}
    close = difflib.get_close_matches(name.upper().removeprefix("TWILIO_"), suffixes, n=1)
    hint = (
        f"did you mean {suffixes[close[0]]}?"
        if close
        else f"known: {', '.join(TWILIO_SETTING_KEYS)}"
    )
    raise SettingsError(f"{name}: not a setting ({hint})")


def _check_production(
    public_base_url: str, secret_key: str | None, api_base: str, allow_any_api_base: bool
) -> None:
    """Refuse what a real carrier must not be run with (outside tests)."""
    if urlsplit(public_base_url).scheme != "https":
        raise SettingsError(
            f"PUBLIC_BASE_URL: must be https:// with Twilio (got {public_base_url!r})"
        )
    if secret_key is not None:
        if (
            secret_key.lower() in WEAK_SECRET_KEYS
            or len(set(secret_key)) < MIN_SECRET_KEY_DISTINCT_CHARACTERS
        ):
            raise SettingsError(
                "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
                "use a random key, or unset it to use the generated one"
            )
        if len(secret_key) < MIN_PRODUCTION_SECRET_KEY_LENGTH:
            raise SettingsError(
                f"SECRET_KEY: must be at least {MIN_PRODUCTION_SECRET_KEY_LENGTH} characters "
                "with Twilio (or unset: a key is generated into instance/)"
            )
    if not allow_any_api_base and not _is_twilio_host(api_base):
        raise SettingsError(
            f"TWILIO_API_BASE: {api_base!r} is not a Twilio host (https://*.twilio.com); "
            "set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock"
        )


def _is_twilio_host(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return (
        parts.scheme == "https"
        and parts.username is None
        and (host == "twilio.com" or host.endswith(".twilio.com"))
    )


def _flag(value: str | None, key: str) -> bool:
    if value is None or value == "0":
        return False
    if value == "1":
        return True
    raise SettingsError(f"{key}: expected 1 or 0, not {value!r}")


def _log_level(value: str | None) -> str:
    level = (value or "INFO").upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL: {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


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
    # A line break would let the value add headers to every e-mail sent.
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise SettingsError(
            "MAIL_FROM: must not contain a line break (CR, LF) or control character"
        )
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


def _health_token(value: str | None) -> str | None:
    if value is not None and len(value) < 16:
        raise SettingsError("HEALTH_TOKEN: must be at least 16 characters long")
    return value


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
