"""The factory, the WSGI entry point and the Procfile's targets."""

from __future__ import annotations

import ast
import logging
import os
import shlex
import subprocess
import sys

import pytest

from core.app import PROJECT_ROOT, create_app
from core.extensions import db
from core.settings import SettingsError
from tests.support import FLASK, TEST_SECRET, app_config, subprocess_env
from tests.twilio_payloads import call_sid, call_status_form, signed_post


def test_factory_binds_extensions_from_the_config_mapping(tmp_path, redis_url):
    """A config mapping builds an app with its settings, database URL and Redis URL bound."""
    app = create_app(
        app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", redis_url, SERVER_NAME="plp.test")
    )
    settings = app.extensions["settings"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'x.db'}"
    assert app.config["SECRET_KEY"] == TEST_SECRET
    assert app.config["SERVER_NAME"] == "plp.test"
    assert settings.redis_url == redis_url
    assert app.extensions["redis"]["client"] is None  # no connection made by the factory
    assert {"sqlalchemy", "migrate"} <= set(app.extensions)
    assert app.instance_path == str(tmp_path / "instance")


def test_testing_ignores_the_environment(tmp_path, monkeypatch, redis_url):
    """In tests, Twilio credentials in the environment never select the Twilio provider."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    app = create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "SECRET_KEY": TEST_SECRET})
    assert app.extensions["settings"].phone_provider == "simulator"
    assert app.extensions["settings"].twilio_account_sid is None


def test_testing_raises_settings_errors(tmp_path):
    """In tests a bad setting raises SettingsError instead of exiting."""
    with pytest.raises(SettingsError, match=r"^CALLS_PER_SECOND: "):
        create_app({"TESTING": True, "INSTANCE_PATH": tmp_path, "CALLS_PER_SECOND": "-1"})


def test_environment_and_config_override_dotenv(tmp_path, monkeypatch):
    """Outside tests the environment is read, and the config mapping wins over it."""
    monkeypatch.setenv("SMS_PER_SECOND", "7")
    monkeypatch.setenv("CALLS_PER_SECOND", "3")
    app = create_app({"INSTANCE_PATH": tmp_path, "CALLS_PER_SECOND": "4"})
    settings = app.extensions["settings"]
    assert (settings.calls_per_second, settings.sms_per_second) == (4.0, 7.0)


SID = "AC" + "0123456789abcdef" * 2
TOKEN = "0123456789abcdef0123456789abcdef"
# A complete Twilio configuration as an operator sets it (no PHONE_PROVIDER: implied).
TWILIO_ENV = {
    "TWILIO_ACCOUNT_SID": SID,
    "TWILIO_AUTH_TOKEN": TOKEN,
    "TWILIO_FROM_NUMBER": "+3225112233",
    "PUBLIC_BASE_URL": "https://plp.example.be",
    "SECRET_KEY": "k7Qw-9zXr_2LmTn4vB8pYc1HsJ6dGf3E",
}


def start_command(tmp_path, args: list[str], env: dict[str, str]):
    """Run `flask --app wsgi ARGS` as an operator would, with only `env` as settings.

    PHONE_PROVIDER is left unset unless `env` sets it: these are the cases where
    the provider is implied by what else is set.
    """
    child_env = subprocess_env(**{"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env})
    if "PHONE_PROVIDER" not in env:
        del child_env["PHONE_PROVIDER"]
    return subprocess.run(
        [*FLASK, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"DATABASE_URL": "mysql://root@localhost/plp"},
            "DATABASE_URL: 'mysql' is not supported (sqlite or postgresql)",
        ),
        (
            {"PHONE_PROVIDER": "twilio"},
            "TWILIO_ACCOUNT_SID: required when PHONE_PROVIDER is twilio",
        ),
        ({"SMS_PER_SECOND": "lots"}, "SMS_PER_SECOND: 'lots' is not a number"),
        (
            {"LOG_LEVEL": "bogus"},
            "LOG_LEVEL: 'bogus' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        (
            {"MAIL_FROM": "alert@zone.be\r\nBcc: everyone@example.org"},
            "MAIL_FROM: must not contain a line break (CR, LF) or control character",
        ),
    ],
)
def test_a_bad_setting_stops_the_app_with_one_line(tmp_path, env, line):
    """Outside tests, a bad setting stops any command with one line on stderr naming the key."""
    result = start_command(tmp_path, ["routes"], env)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"PLP Alert cannot start: {line}"]


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {
                **{k: v for k, v in TWILIO_ENV.items() if k != "TWILIO_AUTH_TOKEN"},
                "TWILIO_AUTH_TOKE": TOKEN,
            },
            "TWILIO_AUTH_TOKE: not a setting (did you mean TWILIO_AUTH_TOKEN?)",
        ),
        (
            {k: v for k, v in TWILIO_ENV.items() if k != "TWILIO_AUTH_TOKEN"},
            "TWILIO_AUTH_TOKEN: required when a Twilio variable is set "
            "(found TWILIO_ACCOUNT_SID, TWILIO_FROM_NUMBER)",
        ),
        (
            {**TWILIO_ENV, "PUBLIC_BASE_URL": "http://plp.example.be"},
            "PUBLIC_BASE_URL: must be https:// with Twilio (got 'http://plp.example.be')",
        ),
        (
            {**TWILIO_ENV, "SECRET_KEY": "changeme"},
            "SECRET_KEY: too easy to guess (a placeholder or few distinct characters); "
            "use a random key, or unset it to use the generated one",
        ),
        (
            {**TWILIO_ENV, "TWILIO_API_BASE": "https://twilio.example.org"},
            "TWILIO_API_BASE: 'https://twilio.example.org' is not a Twilio host "
            "(https://*.twilio.com); set TWILIO_API_BASE_ALLOW_ANY=1 to use a mock",
        ),
    ],
    ids=["misspelled-token", "missing-token", "http-url", "weak-key", "foreign-api-base"],
)
def test_a_wrong_twilio_configuration_refuses_to_start(tmp_path, env, line):
    """`db upgrade` with a partial or unsafe Twilio setup exits with one line, migrating nothing."""
    result = start_command(tmp_path, ["db", "upgrade"], env)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"PLP Alert cannot start: {line}"]
    assert not (tmp_path / "x.db").exists()


def test_a_complete_twilio_configuration_starts(tmp_path):
    """The same command with the whole Twilio configuration runs (the refusals above are real)."""
    result = start_command(tmp_path, ["db", "upgrade"], TWILIO_ENV)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.db").exists()


def test_a_bad_setting_raises_system_exit_with_one_line(tmp_path, monkeypatch):
    """Outside tests, create_app turns a SettingsError into SystemExit with the one line."""
    for key in list(os.environ):
        if key.startswith("TWILIO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TWILIO_AUTH_TOKE", TOKEN)
    with pytest.raises(SystemExit) as caught:
        create_app({"INSTANCE_PATH": tmp_path})
    assert str(caught.value) == (
        "PLP Alert cannot start: TWILIO_AUTH_TOKE: not a setting (did you mean TWILIO_AUTH_TOKEN?)"
    )


def test_simulator_with_twilio_variables_warns_once(tmp_path, redis_url, caplog):
    """PHONE_PROVIDER=simulator with Twilio variables starts, and says so once, as a WARNING."""
    with caplog.at_level(logging.WARNING, logger="core.app"):
        app = create_app(
            app_config(
                tmp_path,
                f"sqlite:///{tmp_path / 'x.db'}",
                redis_url,
                TWILIO_ACCOUNT_SID=SID,
                TWILIO_AUTH_TOKEN=TOKEN,
            )
        )
    assert app.extensions["settings"].phone_provider == "simulator"
    warnings = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "core.app"]
    assert warnings == [
        (
            "WARNING",
            "settings: PHONE_PROVIDER=simulator: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN set "
            "but not used; no real call or SMS is made",
        )
    ]


def test_log_level_sets_the_root_logger(tmp_path):
    """LOG_LEVEL (any case) is the level of the app's logging in a real process."""
    code = "import logging, wsgi; print(logging.getLevelName(logging.getLogger().level))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", LOG_LEVEL="debug"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG"


def test_dotenv_file_is_read(tmp_path):
    """A .env file in the project supplies settings the environment does not set."""
    dotenv = PROJECT_ROOT / ".env"
    if dotenv.exists():
        pytest.skip("a developer .env exists; not overwriting it")
    dotenv.write_text("SMS_PER_SECOND=9\n")
    try:
        app = create_app({"INSTANCE_PATH": tmp_path})
    finally:
        dotenv.unlink()
    assert app.extensions["settings"].sms_per_second == 9.0


def test_wsgi_only_calls_the_factory():
    """wsgi.py does nothing but `app = create_app()`."""
    tree = ast.parse((PROJECT_ROOT / "wsgi.py").read_text())
    statements = [node for node in tree.body if not isinstance(node, ast.Expr)]
    assert [type(node).__name__ for node in statements] == ["ImportFrom", "Assign"]
    assigned = statements[1]
    assert ast.unparse(assigned) == "app = create_app()"


def _procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = shlex.split(command)
    return entries


def test_procfile_declares_web_and_worker():
    """The Procfile runs gunicorn on wsgi:app and the in-process RQ worker with its scheduler."""
    entries = _procfile()
    assert set(entries) == {"web", "worker"}
    assert entries["web"][0] == "gunicorn" and entries["web"][-1] == "wsgi:app"
    assert entries["worker"] == [
        "flask",
        "--app",
        "wsgi",
        "worker",
        "--with-scheduler",
        "--no-fork",
    ]


def test_procfile_targets_resolve(tmp_path, redis_url):
    """gunicorn loads the web target and the worker command accepts the Procfile's options."""
    env = subprocess_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", REDIS_URL=redis_url)
    venv_bin = PROJECT_ROOT / ".venv" / "bin"
    web = subprocess.run(
        [str(venv_bin / "gunicorn"), "--check-config", "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert web.returncode == 0, web.stderr
    worker_args = _procfile()["worker"][3:]
    worker = subprocess.run(
        [*FLASK, *worker_args, "--help"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    assert "--with-scheduler" in worker.stdout


def test_database_outage_answers_503_not_500(client, app, caplog):
    """A webhook arriving while the database is down gets 503 with Retry-After, never a 500."""
    db.drop_all()  # every query now fails as it would with the database gone
    response = signed_post(client, "/ivr/status", call_status_form(call_sid(), "ringing"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_data(as_text=True).startswith("Service temporarily unavailable")
    assert "service unavailable path=/ivr/status" in caplog.text
    db.create_all()  # for the fixture's teardown
