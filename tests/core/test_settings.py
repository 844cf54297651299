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


# A complete Twilio configuration fit for production.
TWILIO = {
    "TWILIO_ACCOUNT_SID": SID,
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "TWILIO_FROM_NUMBER": "+3225112233",
    "PUBLIC_BASE_URL": "https://plp.example.be",
}
STRONG_KEY = "k7Qw-9zXr_2LmTn4vB8pYc1HsJ6dGf3E"


def without(values: dict, key: str) -> dict:
    """Return `values` without `key`."""
    return {k: v for k, v in values.items() if k != key}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"PHONE_PROVIDER": "sip"}, "PHONE_PROVIDER: 'sip' is not one of twilio, simulator"),
        (
            {"DATABASE_URL": "mysql://root@localhost/plp"},
            "DATABASE_URL: 'mysql' is not supported (sqlite or postgresql)",
        ),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL: 'not a url' is not a database URL"),
        (
            {"REDIS_URL": "http://127.0.0.1:6379"},
            "REDIS_URL: 'http://127.0.0.1:6379' is not a redis://, rediss:// or unix:// URL",
        ),
        (
            {"PUBLIC_BASE_URL": "plp.example.be"},
            "PUBLIC_BASE_URL: 'plp.example.be' is not an http(s):// URL",
        ),
        (
            {"PUBLIC_BASE_URL": "https://plp.example.be/?x=1"},
            "PUBLIC_BASE_URL: must not have a query or fragment",
        ),
        (
            {"PHONE_PROVIDER": "simulator", "TWILIO_API_BASE": "ftp://x"},
            "TWILIO_API_BASE: 'ftp://x' is not an http(s):// URL",
        ),
        (
            {"SMTP_URL": "http://mail.example.be"},
            "SMTP_URL: expected smtp://user:pass@host:port or smtps://...",
        ),
        ({"SMTP_URL": "smtp://:25"}, "SMTP_URL: no host name"),
        ({"SMTP_URL": "smtp://mail.example.be:port"}, "SMTP_URL: the port is not a number"),
        ({"MAIL_FROM": "nobody"}, "MAIL_FROM: 'nobody' is not an e-mail address"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY: must be at least 16 characters long"),
        ({"CALLS_PER_SECOND": "fast"}, "CALLS_PER_SECOND: 'fast' is not a number"),
        ({"SMS_PER_SECOND": "0"}, "SMS_PER_SECOND: must be above 0 and at most 1000 per second"),
        ({"TTS_ENGINES": "gtts,polly"}, "TTS_ENGINES: polly: choose from gtts, espeak, say"),
        (
            {"LOG_LEVEL": "bogus"},
            "LOG_LEVEL: 'bogus' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        (
            {"MAIL_FROM": "alert@zone.be\r\nBcc: everyone@example.org"},
            "MAIL_FROM: must not contain a line break (CR, LF) or control character",
        ),
        (
            {"MAIL_FROM": "PLP <alert@zone.be>\nX-Evil: 1"},
            "MAIL_FROM: must not contain a line break (CR, LF) or control character",
        ),
        (
            {"TWILIO_API_BASE_ALLOW_ANY": "yes"},
            "TWILIO_API_BASE_ALLOW_ANY: expected 1 or 0, not 'yes'",
        ),
    ],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path, values, message):
    """A malformed setting raises a one-line error that names the key and says why."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **values)
    assert str(caught.value) == message


def test_log_level_is_read_in_any_case(tmp_path):
    """LOG_LEVEL is a logging level name, in any case; INFO by default."""
    assert settings(tmp_path).log_level == "INFO"
    assert settings(tmp_path, LOG_LEVEL="debug").log_level == "DEBUG"


# --- Fail closed: any Twilio variable means Twilio ------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "TWILIO_ACCOUNT_SID",
            SID,
            "TWILIO_AUTH_TOKEN: required when a Twilio variable is set (found TWILIO_ACCOUNT_SID)",
        ),
        (
            "TWILIO_AUTH_TOKEN",
            "token",
            "TWILIO_ACCOUNT_SID: required when a Twilio variable is set (found TWILIO_AUTH_TOKEN)",
        ),
        (
            "TWILIO_FROM_NUMBER",
            "+3225112233",
            "TWILIO_ACCOUNT_SID: required when a Twilio variable is set (found TWILIO_FROM_NUMBER)",
        ),
        (
            "TWILIO_MESSAGING_SERVICE_SID",
            SERVICE,
            "TWILIO_ACCOUNT_SID: required when a Twilio variable is set "
            "(found TWILIO_MESSAGING_SERVICE_SID)",
        ),
        (
            "TWILIO_API_BASE",
            "https://api.twilio.com",
            "TWILIO_ACCOUNT_SID: required when a Twilio variable is set (found TWILIO_API_BASE)",
        ),
    ],
)
def test_one_twilio_variable_alone_means_twilio(tmp_path, key, value, message):
    """Without PHONE_PROVIDER, any one Twilio variable selects Twilio, so the rest is required."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **{key: value})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (
            "TWILIO_ACCOUNT_SID",
            "TWILIO_ACCOUNT_SID: required when a Twilio variable is set "
            "(found TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER)",
        ),
        (
            "TWILIO_AUTH_TOKEN",
            "TWILIO_AUTH_TOKEN: required when a Twilio variable is set "
            "(found TWILIO_ACCOUNT_SID, TWILIO_FROM_NUMBER)",
        ),
        (
            "TWILIO_FROM_NUMBER",
            "TWILIO_FROM_NUMBER: required when a Twilio variable is set "
            "(found TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)",
        ),
        (
            "PUBLIC_BASE_URL",
            "PUBLIC_BASE_URL: required with Twilio (the URL Twilio reaches this app at)",
        ),
    ],
)
def test_each_missing_twilio_setting_is_named(tmp_path, missing, message):
    """A Twilio configuration missing one required setting names exactly that one."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **without(TWILIO, missing))
    assert str(caught.value) == message


def test_a_messaging_service_does_not_replace_the_caller_id(tmp_path):
    """With a messaging service but no from number, calls would have no caller ID: refused."""
    values = {**without(TWILIO, "TWILIO_FROM_NUMBER"), "TWILIO_MESSAGING_SERVICE_SID": SERVICE}
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **values)
    assert str(caught.value) == (
        "TWILIO_FROM_NUMBER: required when a Twilio variable is set "
        "(found TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_MESSAGING_SERVICE_SID)"
    )


def test_twilio_chosen_explicitly_requires_credentials(tmp_path):
    """PHONE_PROVIDER=twilio with nothing else set names the first credential."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, PHONE_PROVIDER="twilio")
    assert str(caught.value) == "TWILIO_ACCOUNT_SID: required when PHONE_PROVIDER is twilio"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "TWILIO_ACCOUNT_SID",
            "AC123",
            "TWILIO_ACCOUNT_SID: expected AC followed by 32 hex digits",
        ),
        (
            "TWILIO_ACCOUNT_SID",
            "SK" + "0123456789abcdef" * 2,
            "TWILIO_ACCOUNT_SID: expected AC followed by 32 hex digits",
        ),
        (
            "TWILIO_MESSAGING_SERVICE_SID",
            "MG1",
            "TWILIO_MESSAGING_SERVICE_SID: expected MG followed by 32 hex digits",
        ),
        ("TWILIO_FROM_NUMBER", "12", "TWILIO_FROM_NUMBER: '12' is not a valid phone number"),
        ("TWILIO_FROM_NUMBER", "PLP", "TWILIO_FROM_NUMBER: 'PLP' is not a phone number"),
    ],
)
def test_a_malformed_twilio_setting_is_named(tmp_path, key, value, message):
    """A Twilio identifier or number of the wrong shape is refused with its expected shape."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **{**TWILIO, key: value})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("TWILIO_AUTH_TOKE", "TWILIO_AUTH_TOKE: not a setting (did you mean TWILIO_AUTH_TOKEN?)"),
        (
            "TWILIO_ACOUNT_SID",
            "TWILIO_ACOUNT_SID: not a setting (did you mean TWILIO_ACCOUNT_SID?)",
        ),
        (
            "TWILIO_FROM_NUMER",
            "TWILIO_FROM_NUMER: not a setting (did you mean TWILIO_FROM_NUMBER?)",
        ),
        (
            "TWILIO_MESSAGING_SERVICE",
            "TWILIO_MESSAGING_SERVICE: not a setting (did you mean TWILIO_MESSAGING_SERVICE_SID?)",
        ),
        ("TWILIO_API_BASES", "TWILIO_API_BASES: not a setting (did you mean TWILIO_API_BASE?)"),
        (
            "TWILIO_API_BASE_ALLOW",
            "TWILIO_API_BASE_ALLOW: not a setting (did you mean TWILIO_API_BASE_ALLOW_ANY?)",
        ),
        ("twilio_auth_token", "twilio_auth_token: not a setting (did you mean TWILIO_AUTH_TOKEN?)"),
        (
            "TWILIO_REGION",
            "TWILIO_REGION: not a setting (known: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
            "TWILIO_FROM_NUMBER, TWILIO_MESSAGING_SERVICE_SID, TWILIO_API_BASE, "
            "TWILIO_API_BASE_ALLOW_ANY)",
        ),
    ],
)
def test_a_misspelled_twilio_variable_is_named_with_the_closest_setting(tmp_path, name, message):
    """An unknown TWILIO_ variable stops the app, naming it and the setting it resembles."""
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **{**TWILIO, name: "0123456789abcdef0123456789abcdef"})
    assert str(caught.value) == message


def test_a_misspelled_token_is_named_even_when_empty(tmp_path):
    """`TWILIO_AUTH_TOKE=` with the token itself missing names the misspelling, not the token."""
    values = {**without(TWILIO, "TWILIO_AUTH_TOKEN"), "TWILIO_AUTH_TOKE": ""}
    with pytest.raises(SettingsError) as caught:
        settings(tmp_path, **values)
    assert str(caught.value) == (
        "TWILIO_AUTH_TOKE: not a setting (did you mean TWILIO_AUTH_TOKEN?)"
    )


def test_other_prefixes_are_not_checked(tmp_path):
    """Only TWILIO_ names are checked: the environment holds many other variables."""
    assert settings(tmp_path, PLP_AUTH_TOKE="x", HOME="/root").phone_provider == "simulator"


def test_empty_twilio_variables_do_not_select_twilio(tmp_path):
    """Twilio variables set to nothing (or spaces) count as unset: the simulator runs."""
    values = {key: " " for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")}
    s = settings(tmp_path, **values)
    assert s.phone_provider == "simulator"
    assert s.startup_warnings == ()


def test_simulator_chosen_explicitly_with_twilio_variables_warns(tmp_path):
    """PHONE_PROVIDER=simulator with Twilio variables is allowed, with a warning naming them."""
    s = settings(tmp_path, PHONE_PROVIDER="simulator", TWILIO_ACCOUNT_SID=SID)
    assert s.phone_provider == "simulator"
    assert s.startup_warnings == (
        "PHONE_PROVIDER=simulator: TWILIO_ACCOUNT_SID set but not used; "
        "no real call or SMS is made",
    )


def test_the_simulator_alone_has_no_warning(tmp_path):
    """With nothing Twilio-like set, the simulator runs without a warning."""
    assert settings(tmp_path).startup_warnings == ()


# --- Production mode: Twilio outside tests --------------------------------------------


def production(tmp_path, **values):
    """Load a complete Twilio configuration outside tests, with `values` on top."""
    return settings(tmp_path, **{**TWILIO, **values})


def test_a_complete_twilio_configuration_starts(tmp_path):
    """Twilio with https, a strong (or generated) key and Twilio's API host is accepted."""
    assert production(tmp_path, SECRET_KEY=STRONG_KEY).secret_key == STRONG_KEY
    generated = production(tmp_path)
    assert generated.secret_key == (tmp_path / "instance" / "secret_key").read_text()
    assert generated.startup_warnings == ()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"PUBLIC_BASE_URL": "http://plp.example.be"},
            "PUBLIC_BASE_URL: must be https:// with Twilio (got 'http://plp.example.be')",
        ),
        (
            {"SECRET_KEY": "abcdefghijklmnopqrstuvwxyz12345"},
            "SECRET_KEY: must be at least 32 characters with Twilio "
            "(or unset: a key is generated into instance/)",
        ),
        (
            {"SECRET_KEY": "secret"},
            "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
            "use a random key, or unset it to use the generated one",
        ),
        (
            {"SECRET_KEY": "ChangeMe"},
            "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
            "use a random key, or unset it to use the generated one",
        ),
        (
            {"SECRET_KEY": "dev"},
            "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
            "use a random key, or unset it to use the generated one",
        ),
        (
            {"SECRET_KEY": "changeme" * 5},
            "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
            "use a random key, or unset it to use the generated one",
        ),
        (
            {"SECRET_KEY": "x" * 64},
            "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
            "use a random key, or unset it to use the generated one",
        ),
        (
            {"TWILIO_API_BASE": "http://127.0.0.1:4010"},
            "TWILIO_API_BASE: 'http://127.0.0.1:4010' is not a Twilio host "
            "(https://*.twilio.com); set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock",
        ),
        (
            {"TWILIO_API_BASE": "http://api.twilio.com"},
            "TWILIO_API_BASE: 'http://api.twilio.com' is not a Twilio host "
            "(https://*.twilio.com); set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock",
        ),
        (
            {"TWILIO_API_BASE": "https://api.twilio.com.evil.example"},
            "TWILIO_API_BASE: 'https://api.twilio.com.evil.example' is not a Twilio host "
            "(https://*.twilio.com); set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock",
        ),
        (
            {"TWILIO_API_BASE": "https://api.twilio.com@evil.example"},
            "TWILIO_API_BASE: 'https://api.twilio.com@evil.example' is not a Twilio host "
            "(https://*.twilio.com); set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock",
        ),
        (
            {"TWILIO_API_BASE": "https://eviltwilio.com", "TWILIO_API_BASE_ALLOW_ANY": "0"},
            "TWILIO_API_BASE: 'https://eviltwilio.com' is not a Twilio host "
            "(https://*.twilio.com); set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock",
        ),
    ],
)
def test_production_refuses_what_a_real_carrier_must_not_run_with(tmp_path, values, message):
    """Outside tests, Twilio needs an https public URL, a strong key and Twilio's API host."""
    with pytest.raises(SettingsError) as caught:
        production(tmp_path, **values)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "api_base", ["https://api.twilio.com", "https://api.dublin.ie1.twilio.com"]
)
def test_twilio_hosts_are_accepted(tmp_path, api_base):
    """Twilio's own API hosts, regional ones included, need no flag."""
    assert production(tmp_path, TWILIO_API_BASE=api_base).twilio_api_base == api_base


def test_any_api_base_with_the_allow_flag_warns(tmp_path):
    """TWILIO_API_BASE_ALLOW_ANY=1 lets a mock stand in for Twilio, with a warning."""
    s = production(tmp_path, TWILIO_API_BASE="http://127.0.0.1:4010", TWILIO_API_BASE_ALLOW_ANY="1")
    assert s.twilio_api_base == "http://127.0.0.1:4010"
    assert s.startup_warnings == (
        "TWILIO_API_BASE_ALLOW_ANY=1: calls and SMS go to http://127.0.0.1:4010, not Twilio",
    )


def test_tests_skip_the_production_rules(tmp_path):
    """In tests (testing=True) a Twilio app may use http, a short key and a mock's URL."""
    values = {
        **TWILIO,
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "SECRET_KEY": "x" * 16,
        "TWILIO_API_BASE": "http://127.0.0.1:4010",
    }
    s = load_settings(values, tmp_path / "instance", tmp_path, testing=True)
    assert (s.public_base_url, s.twilio_api_base) == (
        "http://127.0.0.1:5000",
        "http://127.0.0.1:4010",
    )
    assert s.startup_warnings == ()


def test_the_simulator_skips_the_production_rules(tmp_path):
    """Without Twilio an http public URL and a 16-character key are fine (make run)."""
    s = settings(tmp_path, PUBLIC_BASE_URL="http://127.0.0.1:5000", SECRET_KEY="x" * 16)
    assert (s.phone_provider, s.public_base_url) == ("simulator", "http://127.0.0.1:5000")


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
