"""Partitions: a database or Redis whose packets vanish gets answers within 5 s, never a hang.

A TCP proxy stands between the app and the server. Partitioned, it silently drops every
byte both ways and keeps the connections open: what a firewall dropping packets, or a
network gone dark, looks like to the app. No error reaches it; only its own bounds do.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import pytest
from flask_migrate import stamp
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from alerts.delivery.provider import set_provider
from core import extensions, health
from core.app import create_app
from core.extensions import db, engine_options, redis_connection
from tests.support import app_config, database_url_for
from tests.twilio_payloads import call_sid, call_status_form, signed_post, sms_form

ANSWER_SECONDS = 5  # every request answers within this, whatever hangs
RECOVER_SECONDS = 30  # after the partition ends, requests succeed again within this
SENDER = "+32470999111"


class PartitionProxy:
    """A TCP proxy on a free loopback port; `partitioned` drops bytes without closing."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream  # (host, port), or the path of a Unix socket
        self.partitioned = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            family = socket.AF_UNIX if isinstance(self.upstream, str) else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            try:
                server.connect(self.upstream)
            except OSError:
                client.close()
                server.close()
                continue
            with self._lock:
                self._sockets.extend([client, server])
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if self.partitioned.is_set():
                continue  # dropped: read and thrown away, the connection left open
            try:
                target.sendall(data)
            except OSError:
                break
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.close()


@contextmanager
def proxy_to(upstream) -> Iterator[PartitionProxy]:
    """A running `PartitionProxy` to `upstream`, closed afterwards."""
    proxy = PartitionProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()


def timed(call):
    """Run `call()`; return its result and how long it took."""
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def post_sms(client):
    """An inbound SMS from an unknown number, as Twilio posts it (needs the database)."""
    return signed_post(client, "/sms/incoming", sms_form(SENDER, "AIDE"))


def post_call_status(client):
    """A call's status callback for an unknown SID (needs the database; 204 when it works)."""
    return signed_post(client, "/ivr/status", call_status_form(call_sid(), "ringing"))


def recovered(call, seconds: float = RECOVER_SECONDS) -> bool:
    """Poll `call()` until it answers 2xx or time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if call().status_code < 300:
            return True
        time.sleep(0.2)
    return False


def assert_unavailable(response, seconds: float) -> None:
    """A 503 with Retry-After, within ANSWER_SECONDS."""
    assert seconds < ANSWER_SECONDS, seconds
    assert response.status_code == 503, response.get_data(as_text=True)
    if response.mimetype == "text/plain":
        assert response.headers["Retry-After"] == "5"


# --- Without PostgreSQL ------------------------------------------------------------------


def test_engine_options_bound_every_postgresql_wait():
    """PostgreSQL gets connect, statement and keepalive bounds; SQLite only what applies."""
    sqlite = engine_options("sqlite:////tmp/x.db")
    assert sqlite == {"pool_pre_ping": True}
    postgresql = engine_options("postgresql+psycopg://u@db.example/plp")
    assert postgresql["pool_timeout"] == extensions.DB_POOL_TIMEOUT
    args = postgresql["connect_args"]
    assert args["connect_timeout"] == 2
    assert args["options"] == "-c statement_timeout=30000"
    assert (args["keepalives"], args["keepalives_idle"]) == (1, 10)
    assert (args["keepalives_interval"], args["keepalives_count"]) == (3, 3)
    assert args["tcp_user_timeout"] == 10_000
    # The worst request: a pre-ping that gets no answer, then one reconnect that times out.
    assert extensions.DB_REQUEST_WAIT + extensions.DB_CONNECT_TIMEOUT < ANSWER_SECONDS


def test_redis_partition_answers_within_seconds(tmp_path, redis_url, redis_conn, provider):
    """Redis partitioned: /healthz says redis_down and an SMS still gets an answer, in < 5 s."""
    parts = urlsplit(redis_url)
    upstream = parts.path if parts.scheme == "unix" else (parts.hostname, parts.port or 6379)
    with proxy_to(upstream) as proxy:
        config = app_config(
            tmp_path, f"sqlite:///{tmp_path / 'p.db'}", f"redis://127.0.0.1:{proxy.port}/0"
        )
        app = create_app(config)
        set_provider(app, provider)
        with app.app_context():
            db.create_all()
            stamp()
            client = app.test_client()
            assert redis_connection().ping()  # through the proxy, before the partition
            proxy.partitioned.set()
            response, seconds = timed(lambda: client.get("/healthz"))
            print(f"redis partition: /healthz {response.status_code} in {seconds:.2f} s")
            assert_unavailable(response, seconds)
            assert health.REDIS_DOWN in response.get_json()["reasons"]
            # Inbound SMS do without Redis (its flood counter gives up): answered, not hung.
            response, seconds = timed(lambda: post_sms(client))
            print(f"redis partition: /sms/incoming {response.status_code} in {seconds:.2f} s")
            assert seconds < ANSWER_SECONDS and response.status_code in (200, 503)
            proxy.partitioned.clear()
            assert recovered(lambda: post_sms(client))
            redis_up = lambda: client.get("/healthz").get_json()["redis"]["status"] == "ok"  # noqa: E731
            deadline = time.monotonic() + RECOVER_SECONDS
            while not redis_up():
                assert time.monotonic() < deadline, "Redis never came back for /healthz"
                time.sleep(0.2)
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


# --- PostgreSQL -----------------------------------------------------------------------------


@contextmanager
def app_behind_proxy(tmp_path, redis_url, provider, **settings) -> Iterator[tuple]:
    """An app whose PostgreSQL is reached through a `PartitionProxy`; yield (app, proxy)."""
    direct = urlsplit(database_url_for("postgresql", tmp_path))  # emptied, as `app` does
    with proxy_to((direct.hostname or "127.0.0.1", direct.port or 5432)) as proxy:
        netloc = direct.netloc.replace(
            f"{direct.hostname}:{direct.port}" if direct.port else direct.hostname,
            f"127.0.0.1:{proxy.port}",
        )
        url = direct._replace(netloc=netloc).geturl()
        app = create_app(app_config(tmp_path, url, redis_url, **settings))
        set_provider(app, provider)
        with app.app_context():
            db.create_all()
            stamp()
            try:
                yield app, proxy
            finally:
                proxy.partitioned.clear()
                db.session.remove()
                db.drop_all()
                db.engine.dispose()


@pytest.mark.postgres
def test_database_partition_answers_503_within_seconds(tmp_path, redis_url, redis_conn, provider):
    """PostgreSQL partitioned: 503 with Retry-After in < 5 s; afterwards requests succeed."""
    with app_behind_proxy(tmp_path, redis_url, provider) as (app, proxy):
        client = app.test_client()
        assert post_call_status(client).status_code == 204  # the pool now holds a connection
        proxy.partitioned.set()
        # The pooled connection: its pre-ping gets no answer; the reconnect times out.
        response, seconds = timed(lambda: post_call_status(client))
        print(f"database partition: pooled connection: {response.status_code} in {seconds:.2f} s")
        assert_unavailable(response, seconds)
        # A new connection: TCP connects (the proxy accepts), the startup never answers.
        response, seconds = timed(lambda: post_call_status(client))
        print(f"database partition: new connection: {response.status_code} in {seconds:.2f} s")
        assert_unavailable(response, seconds)
        response, seconds = timed(lambda: client.get("/healthz"))
        print(f"database partition: /healthz {response.status_code} in {seconds:.2f} s")
        assert_unavailable(response, seconds)
        assert health.DATABASE_DOWN in response.get_json()["reasons"]
        proxy.partitioned.clear()
        started = time.monotonic()
        assert recovered(lambda: post_call_status(client))
        print(f"database partition over: answered 204 after {time.monotonic() - started:.2f} s")
        assert client.get("/healthz").get_json()["database"]["status"] == "ok"


@pytest.mark.postgres
def test_inbound_sms_is_answered_within_seconds_in_a_partition(
    tmp_path, redis_url, redis_conn, provider
):
    """An SMS during a partition gets its apology (Twilio does not retry SMS) in < 5 s."""
    with app_behind_proxy(tmp_path, redis_url, provider) as (app, proxy):
        client = app.test_client()
        assert post_sms(client).status_code == 200
        proxy.partitioned.set()
        for connection in ("pooled", "new"):
            response, seconds = timed(lambda: post_sms(client))
            print(f"database partition: SMS, {connection} connection: {seconds:.2f} s")
            assert seconds < ANSWER_SECONDS, seconds
            assert response.status_code == 200 and response.mimetype == "text/xml"
        proxy.partitioned.clear()
        assert recovered(lambda: post_sms(client))


@pytest.mark.postgres
def test_jobs_and_commands_have_a_longer_but_bounded_wait(
    tmp_path, redis_url, redis_conn, provider, monkeypatch
):
    """Outside a request (a job, a command), a partition raises after DB_BACKGROUND_WAIT."""
    monkeypatch.setattr(extensions, "DB_BACKGROUND_WAIT", 1.5)
    with app_behind_proxy(tmp_path, redis_url, provider) as (_app, proxy):
        assert db.session.execute(text("SELECT 1")).scalar() == 1
        proxy.partitioned.set()
        started = time.monotonic()
        with pytest.raises(OperationalError, match=r"did not answer within 1\.5 s"):
            db.session.execute(text("SELECT 2"))
        assert time.monotonic() - started < 3
        db.session.rollback()


@pytest.mark.postgres
def test_statement_timeout_is_set_and_answered_with_503(
    tmp_path, redis_url, redis_conn, provider, monkeypatch
):
    """The server cancels a statement past the timeout; the request answers 503, not 500."""
    monkeypatch.setattr(extensions, "DB_STATEMENT_TIMEOUT", 1)
    with app_behind_proxy(tmp_path, redis_url, provider) as (app, _proxy):
        assert db.session.execute(text("SHOW statement_timeout")).scalar() == "1s"

        @app.get("/test-slow-statement")
        def slow_statement():
            db.session.execute(text("SELECT pg_sleep(1.5)"))
            return "finished"

        response, seconds = timed(lambda: app.test_client().get("/test-slow-statement"))
        assert_unavailable(response, seconds)
        assert seconds > 0.9  # cancelled by the server at the timeout, not before
        db.session.rollback()
