"""Settings: defaults, validation messages naming the key, generated secret key."""

from __future__ import annotations

import stat

import pytest

from core.settings import SettingsError, load_settings

SID = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "fedcba9876543210" * 2


def settings(tmp_path, **values):
    """Load settings from `values` with instance/ and the project root under tmp_path."""
    return load_settings(values, tmp_path / "instance", tmp_path)


def test_defaults_run_everything_embedded(tmp_path):
    """With nothing set: SQLite under instance/, embedded Redis, simulator, outbox, paced at 1/s."""
    s = settings(tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'instance' / 'plp.db'}"
    assert s.redis_url is None and s.embedded_redis
    assert s.phone_provider == "simulator"
    assert s.smtp is None
    assert s.mail_from == "plp-alert@localhost"
    assert s.public_base_url == "http://127.0.0.1:5000"
    assert s.twilio_api_base == "https://api.twilio.com"
    assert (s.calls_per_second, s.sms_per_second) == (1.0, 1.0)
    assert s.tts_engines == ("gtts", "espeak", "say")


def test_secret_key_is_generated_once_and_private(tmp_path):
    """A generated SECRET_KEY is written to instance/ (mode 0600) and reused on the next start."""
    first = settings(tmp_path).secret_key
    second = settings(tmp_path).secret_key
    path = tmp_path / "instance" / "secret_key"
    assert first == second == path.read_text()
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings(tmp_path, SECRET_KEY="x" * 20).secret_key == "x" * 20


def test_twilio_is_chosen_when_credentials_are_set(tmp_path):
    """Credentials select the Twilio provider; several tokens are kept for rotation."""
    s = settings(
        tmp_path,
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN="new, old",
        TWILIO_FROM_NUMBER="02 511 22 33",
        PUBLIC_BASE_URL="https://plp.example.be/",
    )
    assert s.phone_provider == "twilio"
    assert s.twilio_auth_tokens == ("new", "old")
    assert s.twilio_from_number == "+3225112233"
    assert s.public_base_url == "https://plp.example.be"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"PHONE_PROVIDER": "twilio"}, "TWILIO_ACCOUNT_SID"),
        ({"PHONE_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM_NUMBER"),
        (
            {
                "TWILIO_ACCOUNT_SID": SID,
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_FROM_NUMBER": "+3225112233",
            },
            "PUBLIC_BASE_URL",
        ),
        ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "MG1"}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_FROM_NUMBER": "12"}, "TWILIO_FROM_NUMBER"),
        ({"PHONE_PROVIDER": "sip"}, "PHONE_PROVIDER"),
        ({"DATABASE_URL": "mysql://root@localhost/plp"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"PUBLIC_BASE_URL": "plp.example.be"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "https://plp.example.be/?x=1"}, "PUBLIC_BASE_URL"),
        ({"TWILIO_API_BASE": "ftp://x"}, "TWILIO_API_BASE"),
        ({"SMTP_URL": "http://mail.example.be"}, "SMTP_URL"),
        ({"SMTP_URL": "smtp://:25"}, "SMTP_URL"),
        ({"SMTP_URL": "smtp://mail.example.be:port"}, "SMTP_URL"),
        ({"MAIL_FROM": "nobody"}, "MAIL_FROM"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"CALLS_PER_SECOND": "fast"}, "CALLS_PER_SECOND"),
        ({"SMS_PER_SECOND": "0"}, "SMS_PER_SECOND"),
        ({"TTS_ENGINES": "gtts,polly"}, "TTS_ENGINES"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path, values, key):
    """A missing or malformed setting raises a one-line error that starts with its key."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **values)
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message


def test_postgres_urls_use_the_installed_driver(tmp_path):
    """postgres:// and postgresql:// URLs are mapped to psycopg 3, keeping the password."""
    for url in ("postgres://u:p%40ss@db:5432/plp", "postgresql://u:p%40ss@db:5432/plp"):
        assert settings(tmp_path, DATABASE_URL=url).database_url == (
            "postgresql+psycopg://u:p%40ss@db:5432/plp"
        )


def test_relative_sqlite_path_is_relative_to_the_project(tmp_path):
    """The contract's sqlite:///instance/plp.db means the project's instance/, whatever the cwd."""
    s = settings(tmp_path, DATABASE_URL="sqlite:///instance/plp.db")
    assert s.database_url == f"sqlite:///{tmp_path / 'instance' / 'plp.db'}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example.be", ("relay.example.be", 25, None, None, False, None)),
        (
            "smtp://u%40x:p%3Aw@relay.example.be:587?starttls=1",
            ("relay.example.be", 587, "u@x", "p:w", False, True),
        ),
        (
            "smtp://relay.example.be:25?starttls=false",
            ("relay.example.be", 25, None, None, False, False),
        ),
        ("smtps://u:p@relay.example.be", ("relay.example.be", 465, "u", "p", True, False)),
    ],
)
def test_smtp_url_is_parsed(tmp_path, url, expected):
    """SMTP_URL gives host, port (default by scheme), decoded credentials and TLS mode."""
    smtp = settings(tmp_path, SMTP_URL=url).smtp
    assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.ssl, smtp.starttls) == expected


def test_rates_and_engines_are_parsed(tmp_path):
    """Carrier limits accept decimals; TTS engines keep their order and ignore case and spaces."""
    s = settings(
        tmp_path, CALLS_PER_SECOND="2.5", SMS_PER_SECOND="10", TTS_ENGINES=" ESPEAK , say "
    )
    assert (s.calls_per_second, s.sms_per_second) == (2.5, 10.0)
    assert s.tts_engines == ("espeak", "say")


def test_mail_from_accepts_a_display_name(tmp_path):
    """MAIL_FROM may carry a display name."""
    assert settings(tmp_path, MAIL_FROM="PLP Alert <alert@zone.be>").mail_from == (
        "PLP Alert <alert@zone.be>"
    )
