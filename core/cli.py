"""Core commands: `flask --app wsgi worker|redis`, and the transaction helper every command uses.

Commands are thin: parse options, call one domain function, commit, print. Domain
errors become a one-line `Error: ...` and exit status 1; nothing is half-written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from rq import SimpleWorker, Worker

from core.extensions import db, redis_connection
from core.queue import QUEUE_NAMES, AliasedJob

log = logging.getLogger(__name__)

redis_cli = AppGroup("redis", help="The embedded Redis server (used when REDIS_URL is unset).")


@contextmanager
def cli_transaction(*refusals: type[Exception]) -> Iterator[None]:
    """Commit on success; on a refusal roll back and exit with a one-line message."""
    try:
        yield
        db.session.commit()
    except refusals as err:
        db.session.rollback()
        raise click.ClickException(str(err)) from None
    except BaseException:
        db.session.rollback()
        raise


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--with-scheduler/--without-scheduler",
    default=True,
    show_default=True,
    help="Also run RQ's scheduler (delayed cascade steps).",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(QUEUE_NAMES),
    help="Queues to listen on, in priority order (default: all).",
)
@click.option(
    "--fork/--no-fork",
    default=True,
    show_default=True,
    help="Run each job in a forked work horse (isolation) or in this process "
    "(no fork per job: several times the throughput).",
)
@with_appcontext
def worker_command(burst: bool, with_scheduler: bool, queues: tuple[str, ...], fork: bool) -> None:
    """Run an RQ worker; every job runs inside this app's context."""
    app = current_app._get_current_object()
    connection = redis_connection()
    # The work horse is a fork: it must not reuse the parent's database connections.
    os.register_at_fork(after_in_child=lambda: _dispose_engines(app))
    worker_class = Worker if fork else InProcessWorker
    worker = worker_class(list(queues or QUEUE_NAMES), connection=connection, job_class=AliasedJob)
    # What the domain readies in a worker (create_app hands it in): the reconciler, which
    # re-enqueues what Redis lost, and what jobs share.
    for prepare in app.extensions.get("worker_setup", ()):
        prepare(app)
    log.info(
        "worker starting queues=%s scheduler=%s", ",".join(queues or QUEUE_NAMES), with_scheduler
    )
    worker.work(burst=burst, with_scheduler=with_scheduler)


class InProcessWorker(SimpleWorker):
    """RQ's non-forking worker, with a fresh database session for every job.

    A forked work horse starts each job with a clean copy of the session; in-process
    jobs share the worker's app context, so the session (its identity map and any open
    transaction) is removed after each job, success or failure.
    """

    def perform_job(self, *args, **kwargs):
        """Run the job, then drop the session it used."""
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            db.session.remove()


def _dispose_engines(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose(close=False)


@redis_cli.command("start")
@with_appcontext
def redis_start() -> None:
    """Start the embedded Redis server (when REDIS_URL is unset) and print its URL."""
    embedded = current_app.extensions["redis"]["embedded"]
    if embedded is None:
        click.echo("REDIS_URL is set: using that server, no embedded Redis to start")
        return
    click.echo(embedded.ensure_running())


@redis_cli.command("stop")
@with_appcontext
def redis_stop() -> None:
    """Stop the embedded Redis server, saving its data."""
    embedded = current_app.extensions["redis"]["embedded"]
    if embedded is None:
        click.echo("REDIS_URL is set: no embedded Redis to stop")
        return
    click.echo("embedded redis stopped" if embedded.stop() else "embedded redis was not running")


def register_commands(app: Flask) -> None:
    """Attach core's commands (`worker`, `redis`) to the app's CLI; create_app adds the rest."""
    for command in (redis_cli, worker_command):
        app.cli.add_command(command)
