"""Unbound extensions, bound to an app by `create_app`: database, migrations, Redis and RQ.

Nothing here opens a connection at import time. The Redis connection is made on first
use and kept per app in `app.extensions["redis"]`.

Every wait on the database or Redis is bounded (`engine_options`, `redis_connection`):
a dependency that hangs (packets silently dropped) gives an error within seconds, which
the app's error handlers answer with 503 and Retry-After, rather than a request that
waits until gunicorn kills its worker.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from flask import Flask, current_app, has_request_context, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from redis.backoff import ExponentialBackoff, ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase

from core.embedded_redis import EmbeddedRedis

log = logging.getLogger(__name__)

# Named constraints: Alembic needs names to alter them, and SQLite's batch mode
# (which rebuilds tables) loses unnamed ones.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _render_item(type_, obj, _autogen_context):
    """Write app-defined column types as plain SQLAlchemy types in new migrations.

    A migration must not import the app: it has to keep working after models change.
    """
    if type_ == "type" and type(obj).__name__ == "UTCDateTime":
        return "sa.DateTime(timezone=True)"
    return False


db = SQLAlchemy(model_class=Base)
# render_as_batch: SQLite alters tables by rebuilding them; Alembic's batch mode does that.
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)


# Bounds on every wait for PostgreSQL (seconds). A web request must answer within 5 s
# (Twilio gives up after 15): a round trip gets no answer for DB_REQUEST_WAIT, or a
# connect for DB_CONNECT_TIMEOUT, and every later connect of that request fails at once
# (`_UNANSWERED`), so it answers 503 in about 2 s. Jobs and commands may run longer
# statements, but never wait forever either.
DB_CONNECT_TIMEOUT = 2  # libpq's connect_timeout (2 s is its minimum)
DB_REQUEST_WAIT = 2.0  # one round trip during a web request
DB_BACKGROUND_WAIT = 35.0  # one round trip in a job or a command: above the statement timeout
DB_STATEMENT_TIMEOUT = 30  # the server cancels a statement running longer than this
DB_POOL_TIMEOUT = 3  # waiting for a free connection of the pool
# TCP keepalives find a dead idle connection in idle + interval * count = 19 s; the user
# timeout ends a send that the network never acknowledges (a partition mid-query).
DB_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3}
DB_KEEPALIVE_COUNT = 3
DB_TCP_USER_TIMEOUT_MS = 10_000


def engine_options(database_url: str) -> dict[str, Any]:
    """Return the engine options of `database_url`: pre-ping, and bounded waits on PostgreSQL."""
    # pre_ping: a PostgreSQL restart at night must not fail the first alert after it.
    options: dict[str, Any] = {"pool_pre_ping": True}
    if make_url(database_url).get_backend_name() == "postgresql":
        options["pool_timeout"] = DB_POOL_TIMEOUT  # SQLite in memory has no pool to wait on
        options["connect_args"] = {
            "connect_timeout": DB_CONNECT_TIMEOUT,
            "options": f"-c statement_timeout={DB_STATEMENT_TIMEOUT * 1000}",
            **DB_KEEPALIVE,
            "keepalives_count": DB_KEEPALIVE_COUNT,
            "tcp_user_timeout": DB_TCP_USER_TIMEOUT_MS,
        }
    return options


# Set in a request's WSGI environ once the database failed to answer it: the request's
# next connect (an error handler's lookup, say) fails at once instead of waiting again.
_UNANSWERED = "plp.database_unanswered"


@event.listens_for(Engine, "do_connect")
def _bounded_psycopg_connect(dialect, _record, cargs, cparams):
    """Connect PostgreSQL through `BoundedConnection` (other databases: the default)."""
    if dialect.driver != "psycopg":
        return None
    bounded = _bounded_connection_class()
    if has_request_context() and request.environ.get(_UNANSWERED):
        raise bounded.OperationalError("the database did not answer earlier in this request")
    try:
        return bounded.connect(*cargs, **cparams)
    except bounded.ConnectionTimeout:
        _note_unanswered()
        raise


def _note_unanswered() -> None:
    if has_request_context():
        request.environ[_UNANSWERED] = True


_bounded_class: type | None = None


def _bounded_connection_class() -> type:
    """Return `BoundedConnection`, defined on first use: psycopg is imported only then."""
    global _bounded_class  # noqa: PLW0603 (a class built once, on first PostgreSQL connect)
    if _bounded_class is None:
        import psycopg  # noqa: PLC0415 (only apps on PostgreSQL load the driver)

        class BoundedConnection(psycopg.Connection):
            """A psycopg connection whose every round trip has a deadline.

            The server's statement timeout and TCP keepalives do not help when packets
            vanish (a partition, a proxy that stops forwarding while holding the socket
            open): the query never reaches the server, the kernel sees nothing wrong, and
            psycopg would wait forever. Past the deadline the connection is closed (a
            query is in flight: it cannot be reused) and `OperationalError` is raised;
            SQLAlchemy then discards the connection and the app answers 503.
            """

            OperationalError = psycopg.OperationalError
            ConnectionTimeout = psycopg.errors.ConnectionTimeout

            def wait(self, gen, interval=0.1, timeout=None):
                limit = DB_REQUEST_WAIT if has_request_context() else DB_BACKGROUND_WAIT
                try:
                    return super().wait(gen, interval, limit if timeout is None else timeout)
                except psycopg.OperationalError as err:
                    # psycopg's own deadline error is private (errors._WaitTimeout).
                    if type(err).__name__ != "_WaitTimeout" or timeout is not None:
                        raise
                    self.close()
                    _note_unanswered()
                    raise psycopg.OperationalError(
                        f"the database did not answer within {limit:g} s"
                    ) from None

        _bounded_class = BoundedConnection
    return _bounded_class


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """Enforce foreign keys and let the web server and worker share the SQLite file."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # SQLite's advice for WAL: no fsync per commit, only at checkpoints. A crash of the
        # app loses nothing; a power cut may lose the last commits, never the file. Each
        # cascade step commits twice (its claim, the carrier's SID): this halves their cost.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


# Redis waits (seconds). A hung server answers no command: the caller gives up after
# REDIS_SOCKET_TIMEOUT (RedisError: a request answers 503), never retried, so a command
# never waits twice. A refused or dropped connection (a restart) is retried: at once
# and once during a web request; in jobs and commands with redis-py's own back-off
# (10 tries, 10 ms doubling to 1 s), which rides over a restart of a few seconds. RQ's
# worker raises the socket timeout of its connection above its blocking dequeue (BLPOP).
REDIS_CONNECT_TIMEOUT = 2
REDIS_SOCKET_TIMEOUT = 3
_REQUEST_RETRY = (ExponentialBackoff(cap=0.5, base=0.05), 1)
_BACKGROUND_RETRY = (ExponentialWithJitterBackoff(cap=1, base=0.01), 10)
_client_lock = threading.Lock()


def init_redis(app: Flask) -> None:
    """Record how this app reaches Redis; connect lazily on first use."""
    settings = app.extensions["settings"]
    embedded = EmbeddedRedis(app.instance_path) if settings.redis_url is None else None
    app.extensions["redis"] = {"url": settings.redis_url, "embedded": embedded, "client": None}


def redis_url(app: Flask | None = None) -> str:
    """Return the Redis URL of the app, starting the embedded server if it is the one."""
    state = (app or current_app).extensions["redis"]
    if state["embedded"] is not None:
        return state["embedded"].ensure_running()
    return state["url"]


def redis_connection(app: Flask | None = None) -> redis.Redis:
    """Return the app's Redis client (one connection pool per process, and per kind of caller)."""
    app = app or current_app
    state = app.extensions["redis"]
    # A request fails fast; a job or a command rides over a Redis restart (see above).
    kind = "request_client" if has_request_context() else "client"
    if state.get(kind) is None:
        with _client_lock:  # gthread workers: threads of one process share the client
            if state.get(kind) is None:
                backoff, retries = _REQUEST_RETRY if kind == "request_client" else _BACKGROUND_RETRY
                state[kind] = redis.Redis.from_url(
                    redis_url(app),
                    socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
                    socket_timeout=REDIS_SOCKET_TIMEOUT,
                    retry=Retry(backoff, retries, supported_errors=(RedisConnectionError,)),
                    health_check_interval=30,
                )
    return state[kind]


def worker_redis_connection(app: Flask | None = None) -> redis.Redis:
    """Return a new Redis client for RQ's worker loop itself, apart from the jobs' client.

    RQ raises the socket timeout of the connection it is given to its blocking dequeue's
    (minutes): on a client shared with the jobs, a job's Redis command on a hung server
    would wait that long instead of `REDIS_SOCKET_TIMEOUT`.
    """
    app = app or current_app
    return redis.Redis.from_url(
        redis_url(app),
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        retry=Retry(*_BACKGROUND_RETRY, supported_errors=(RedisConnectionError,)),
        health_check_interval=30,
    )
