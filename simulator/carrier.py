"""The simulated carrier's front door: hand it calls and messages, in this process or another.

Where lives run (`SIMULATOR_MODE`, a Flask config key):
- "queue" (the default outside tests): requests go to a Redis list that the carrier
  process (`flask --app wsgi simulator run`) carries over HTTP to PUBLIC_BASE_URL. RQ
  runs each job in a forked work horse that exits after the job: a thread started there
  would die with it, so the sending jobs hand the lives to another process.
- "thread" (the default in tests): a bounded pool of threads in this process
  (`network.Network`), reaching the app through its WSGI interface. With
  `SIMULATOR_AUTOSTART = False` requests wait for `start_pending()`, so that a test
  commits the returned SID before any callback.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app

from simulator import store
from simulator.calls import new_sid
from simulator.config import plp_number, simulator_mode, zero_latency
from simulator.network import Network
from simulator.transport import WsgiTransport

log = logging.getLogger(__name__)

_NETWORK_LOCK = threading.Lock()


def network(app: Flask | None = None) -> Network:
    """Return this process's network for thread mode (reaching the app in process)."""
    app = app or current_app._get_current_object()
    with _NETWORK_LOCK:  # two requests of a threaded server must not build two pools
        current = app.extensions.get("simulator_network")
        if current is None:
            current = Network(
                app,
                WsgiTransport(app),
                zero_latency=zero_latency(app),
                autostart=app.config.get("SIMULATOR_AUTOSTART", True),
            )
            app.extensions["simulator_network"] = current
    return current


def dispatch(request: dict) -> None:
    """Hand a request to the network: this process's threads, or the carrier process."""
    if simulator_mode() == "thread":
        network().submit(request)
    else:
        store.push_request(request)


def inbound_sms(from_: str, body: str, to: str | None = None) -> str:
    """Text the PLP number from `from_`; return the message SID (delivered in the background)."""
    sid = new_sid("SM")
    to = to or plp_number()
    store.add_message(
        {
            "sid": sid,
            "from": from_,
            "to": to,
            "body": body,
            "direction": "inbound",
            "status": "receiving",
        }
    )
    dispatch(
        {
            "kind": "inbound_sms",
            "sid": sid,
            "from": from_,
            "to": to,
            "body": body,
            "accepted_at": time.time(),
        }
    )
    log.info("simulator inbound sms queued sid=%s", sid)
    return sid


def inbound_call(from_: str, to: str | None = None, *, keys: tuple[str, ...] | None = None) -> str:
    """Call the PLP number from `from_`; return the call SID (carried in the background).

    With `keys` the caller presses them at successive Gathers; without, a human presses
    them on the dev phone page (an interactive caller).
    """
    sid = new_sid("CA")
    to = to or plp_number()
    store.save_call(
        {
            "sid": sid,
            "direction": "inbound",
            "from": from_,
            "to": to,
            "status": "ringing",
            "started_at": store.now_iso(),
        }
    )
    dispatch(
        {
            "kind": "inbound_call",
            "sid": sid,
            "from": from_,
            "to": to,
            "keys": list(keys) if keys is not None else None,
            "accepted_at": time.time(),
        }
    )
    log.info("simulator inbound call queued call_sid=%s", sid)
    return sid
