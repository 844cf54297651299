"""The factory, the WSGI entry point and the Procfile's targets."""

from __future__ import annotations

import ast
import shlex
import subprocess

import pytest

from core.app import PROJECT_ROOT, create_app
from core.extensions import db
from core.settings import SettingsError
from tests.support import (
    FLASK,
    TEST_SECRET,
    app_config,
    call_sid,
    call_status_form,
    signed_post,
    subprocess_env,
)


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


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"DATABASE_URL": "mysql://root@localhost/plp"}, "DATABASE_URL"),
        ({"PHONE_PROVIDER": "twilio"}, "TWILIO_ACCOUNT_SID"),
        ({"SMS_PER_SECOND": "lots"}, "SMS_PER_SECOND"),
    ],
)
def test_a_bad_setting_stops_the_app_with_one_line(tmp_path, env, key):
    """Outside tests, a bad setting stops any command with one line on stderr naming the key."""
    result = subprocess.run(
        [*FLASK, "routes"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(**{"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env}),
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"PLP Alert cannot start: {key}: ")


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
