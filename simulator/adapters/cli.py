"""`flask --app wsgi simulator ...`: run the carrier process, and act on the simulated network.

`simulator run` is the carrier of `make run` (Procfile.dev): it takes the requests that
the web and worker processes queue in Redis (SIMULATOR_MODE "queue") and carries each one
on a bounded pool of threads, reaching the app over HTTP at PUBLIC_BASE_URL, as Twilio
does. SIGTERM or SIGINT stops it cleanly: it takes no more requests, lives end at their
next wait (a request still waiting for the carrier's rate limit goes back to the queue),
it prints "carrier stopped" and exits 0.

A Redis outage does not stop it (under `make run` honcho would stop the web server and
the worker with it): it warns once, retries with a capped backoff (`simulator.outage`)
and carries on when Redis is back; see `simulator.network.Network` for the lives it
was carrying.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from simulator import carrier, config, store
from simulator.behaviour import KINDS, Behaviour
from simulator.clock import CarrierStopped
from simulator.network import DEFAULT_WORKERS, WEBHOOK_TIMEOUT_SECONDS, Network
from simulator.outage import Outage
from simulator.transport import HttpTransport

log = logging.getLogger(__name__)

simulator_cli = AppGroup("simulator", help="The carrier simulator (PHONE_PROVIDER=simulator).")

POLL_SECONDS = 1.0  # how often the loop looks at the stop flag while the queue is empty
GRACE_SECONDS = 10.0  # how long lives get to end after a stop before the process exits


def run_carrier(
    app: Flask,
    stop: threading.Event,
    *,
    workers: int = DEFAULT_WORKERS,
    zero_latency: bool | None = None,
    transport=None,
) -> int:
    """Carry queued requests until `stop` is set; return how many were taken.

    Runs inside an app context. At most `workers` lives run at once: beyond that the
    requests wait in Redis, where another carrier process could take them.
    """
    network = Network(
        app,
        transport or HttpTransport(WEBHOOK_TIMEOUT_SECONDS),
        zero_latency=config.zero_latency(app) if zero_latency is None else zero_latency,
        workers=workers,
        requeue_on_stop=True,
        outage=Outage(),
    )
    taken = 0
    log.info("simulator carrier running workers=%d zero_latency=%s", workers, network.zero_latency)
    try:
        while not stop.is_set():
            if not network.wait_for_capacity(POLL_SECONDS):
                continue
            try:
                request = network.outage.wait_out(lambda: store.pop_request(POLL_SECONDS), stop)
            except CarrierStopped:
                break
            if request is None:
                continue
            if stop.is_set():  # taken just as the stop came: leave it for the next run
                network.requeue(request)
                break
            network.submit(request)
            taken += 1
    finally:
        network.stopping.set()
        if not network.wait_idle(GRACE_SECONDS):
            log.warning("simulator carrier: lives still running at exit")
        network.close(wait=False)
    log.debug("simulator carrier stopped requests=%d", taken)
    return taken


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """Set the yielded event on SIGTERM or SIGINT (restoring the handlers after)."""
    stop = threading.Event()

    def request_stop(signum, _frame):
        log.debug("simulator carrier stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@simulator_cli.command("run")
@click.option(
    "--workers",
    default=DEFAULT_WORKERS,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Calls and messages carried at once.",
)
@click.option(
    "--latency",
    type=click.Choice(config.LATENCIES),
    help="real: wait as a phone network does; zero: no waiting (benchmarks). "
    "Default: SIMULATOR_LATENCY, else real.",
)
def run_command(workers: int, latency: str | None) -> None:
    """Carry the calls and SMS the app queues for the simulator, until stopped."""
    app = current_app._get_current_object()
    zero = config.zero_latency(app) if latency is None else latency == "zero"
    if app.extensions["settings"].phone_provider != "simulator":
        # Still run (idle): honcho stops every process of `make run` when one exits.
        click.echo("PHONE_PROVIDER is not simulator: the simulator will carry nothing")
    with _stop_on_signals() as stop:
        click.echo(
            f"simulator carrier: {workers} lines, reaching "
            f"{app.extensions['settings'].public_base_url}; Ctrl-C stops"
        )
        run_carrier(app, stop, workers=workers, zero_latency=zero)
    click.echo("carrier stopped")


@simulator_cli.command("behaviour")
@click.argument("number")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--answer-after", type=float, help="Seconds of ringing before answering.")
@click.option("--keys", help="Digits pressed at successive menus, comma-separated: 0,1")
@click.option("--sms-reply", help="What the person texts back after an SMS.")
def behaviour_command(number, kind, answer_after, keys, sms_reply) -> None:
    """Set how the person at NUMBER (E.164) answers calls and texts."""
    fields = {"kind": kind}
    for name, value in (("answer_after", answer_after), ("keys", keys), ("sms_reply", sms_reply)):
        if value is not None:
            fields[name] = value
    try:
        behaviour = Behaviour.from_dict(fields)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    store.set_behaviour(number, behaviour)
    click.echo(
        f"{number}: {behaviour.kind}, answers after {behaviour.answer_after:g} s, "
        f"keys {','.join(behaviour.keys) or '-'}"
    )


@simulator_cli.command("sms")
@click.argument("from_number", metavar="FROM")
@click.argument("body")
def sms_command(from_number: str, body: str) -> None:
    """Text BODY to the PLP number from FROM (e.g. the demo officer's ALERTE)."""
    sid = carrier.inbound_sms(from_number, body)
    click.echo(f"{sid} queued: {from_number} -> {config.plp_number()}")


@simulator_cli.command("clear")
def clear_command() -> None:
    """Forget every behaviour, call, message and opt-out of the simulator."""
    store.clear()
    click.echo("simulator state cleared")
