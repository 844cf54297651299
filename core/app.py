"""The application factory: the one composition root.

It alone imports the domain (blueprints, CLI groups, phone providers, the job registry),
and only when an app is built, so that importing `core` (settings, extensions) stays
cheap for the rest of the code and its tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.routing import IntegerConverter

from core import health
from core.cli import register_commands
from core.extensions import db, engine_options, init_redis, migrate
from core.queue import register_job_aliases
from core.settings import SETTING_KEYS, Settings, SettingsError, load_settings
from core.webhooks import service_unavailable

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, `.env` and `config` (which wins).

    With `TESTING` in `config`, neither the environment nor `.env` is read, so a
    developer's settings never leak into the tests, and a bad setting raises
    `SettingsError`; otherwise it stops the process with a one-line message.
    """
    config = dict(config or {})
    testing = bool(config.get("TESTING"))
    instance_path = config.pop("INSTANCE_PATH", None)
    app = Flask("core", instance_path=str(instance_path) if instance_path else None)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)

    if testing:
        values = {k: str(v) for k, v in config.items() if v is not None}
    else:
        values = {
            **{k: v for k, v in dotenv_values(PROJECT_ROOT / ".env").items() if v is not None},
            **os.environ,
            **{k: str(v) for k, v in config.items() if v is not None},
        }
    try:
        settings = load_settings(values, instance, PROJECT_ROOT, testing=testing)
    except SettingsError as err:
        if testing:
            raise
        raise SystemExit(f"PLP Alert cannot start: {err}") from None

    app.config.update(
        TESTING=testing,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # Pre-ping, and every wait on PostgreSQL bounded (see core/extensions.py).
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
        JSON_SORT_KEYS=False,
    )
    # Anything else in `config` is plain Flask configuration (SERVER_NAME, ...).
    app.config.update({k: v for k, v in config.items() if k not in SETTING_KEYS})
    app.extensions["settings"] = settings
    _configure_logging(testing, settings)

    # Row ids in the app's own URLs (`<id:...>`): beyond a database integer they match no
    # route (404), instead of reaching PostgreSQL as an out-of-range parameter.
    app.url_map.converters["id"] = RowIdConverter
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    init_redis(app)

    # The domain is imported here, when an app is built (see the module's docstring);
    # the deferred imports below say "as above".
    from alerts import models  # noqa: F401, PLC0415 (as above; registers the tables)
    from alerts.email.views import bp as confirm_bp  # noqa: PLC0415 (as above)
    from alerts.media_views import bp as media_bp  # noqa: PLC0415 (as above)
    from alerts.sms.views import bp as messaging_bp  # noqa: PLC0415 (as above)
    from ivr.views import bp as ivr_bp  # noqa: PLC0415 (as above)

    app.register_blueprint(health.bp)
    app.register_blueprint(ivr_bp)
    app.register_blueprint(messaging_bp)
    app.register_blueprint(confirm_bp)
    app.register_blueprint(media_bp)
    _add_phones(app)
    app.register_error_handler(SQLAlchemyError, service_unavailable)
    app.register_error_handler(RedisError, service_unavailable)

    register_commands(app)
    from alerts.cli import alert_cli  # noqa: PLC0415 (as above: only when an app is built)
    from alerts.people.cli import COMMANDS as PEOPLE_COMMANDS  # noqa: PLC0415 (as above)
    from simulator.adapters.cli import simulator_cli  # noqa: PLC0415 (as above)

    for command in (*PEOPLE_COMMANDS, alert_cli, simulator_cli):
        app.cli.add_command(command)
    # The worker readies the cascade (reconciler, carrier built once); jobs that Redis holds
    # under a path from before the move into capability folders still run.
    app.extensions["worker_setup"] = [_prepare_worker]
    # And what each worker checks every few seconds: that the reconciler's chain is in Redis.
    app.extensions["worker_checks"] = [_check_worker]
    from alerts.jobs import LEGACY_PATHS  # noqa: PLC0415 (as above: only when an app is built)

    register_job_aliases(LEGACY_PATHS)
    return app


def _add_phones(app: Flask) -> None:
    """Register the phone providers and the simulator's parts (its page: simulator only)."""
    from alerts.delivery.provider import register_provider  # noqa: PLC0415 (as above)
    from simulator.adapters.wiring import wire  # noqa: PLC0415 (as above)

    # `get_provider` builds the chosen provider on first use, and only then imports its
    # module (the twilio library only in an app that uses it).
    register_provider("twilio", _twilio_provider)
    register_provider("simulator", _simulator_provider)
    # The simulator's core imports nothing of the app: it is lent the app's Redis, webhook
    # token and rules (whatever the provider: `flask simulator ...` works on any app).
    wire(app)
    if app.extensions["settings"].phone_provider == "simulator":
        # The dev phone page acts as any phone without a login: never with a real carrier.
        from simulator.adapters.demo import hand_phones_to_the_user  # noqa: PLC0415 (as above)
        from simulator.adapters.views import bp as simulator_bp  # noqa: PLC0415 (as above)

        app.register_blueprint(simulator_bp)
        # What `flask demo` does once the demo is loaded: each returns lines to print.
        app.extensions["demo_setup"] = [hand_phones_to_the_user]


def _twilio_provider(app: Flask):
    from alerts.delivery.twilio_provider import TwilioProvider  # noqa: PLC0415 (as above)

    return TwilioProvider(app.extensions["settings"])


def _simulator_provider(app: Flask):
    from simulator.adapters.provider import SimulatorProvider  # noqa: PLC0415 (as above)

    return SimulatorProvider(app)


class RowIdConverter(IntegerConverter):
    """A positive row id that fits a 32-bit database integer."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=2**31 - 1)


def _prepare_worker(app: Flask) -> None:
    from alerts.jobs import prepare_worker  # noqa: PLC0415 (as above: only when an app is built)

    prepare_worker(app)


def _check_worker(app: Flask) -> None:
    from alerts.delivery.reconciler import keep_reconciler_scheduled  # noqa: PLC0415 (as above)

    keep_reconciler_scheduled(app)


def _configure_logging(testing: bool, settings: Settings) -> None:
    """Log at `LOG_LEVEL` (not in tests: pytest owns logging), then the settings' warnings."""
    if not testing and not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    # Once per app, that is once per process start (web, worker, each command).
    for warning in settings.startup_warnings:
        log.warning("settings: %s", warning)
