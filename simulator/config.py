"""What an app sets in the simulator: its wiring to the app, where lives run, and time.

The simulator's core imports nothing of the app. When the app is built, its adapter
(`simulator.adapters.wiring`) lends it a `Wiring`, kept in `app.extensions["simulator"]`:
the app's Redis, the token webhooks are signed with, and the app's own rules for
landlines and SMS segments. The app's settings (`app.extensions["settings"]`) are read
for the few attributes of `Settings` below, each time, since tests swap them.

Flask config keys: `SIMULATOR_MODE` ("thread" or "queue"), `SIMULATOR_LATENCY` ("real"
or "zero") and `SIMULATOR_AUTOSTART` (see `simulator.network`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from flask import Flask, current_app

if TYPE_CHECKING:
    from redis import Redis

WIRING_KEY = "simulator"  # in app.extensions
# The PLP number when TWILIO_FROM_NUMBER is not set (the dev page shows the same one).
SIMULATED_PLP_NUMBER = "+3225550100"
MODES = ("thread", "queue")
LATENCIES = ("real", "zero")


@dataclass(frozen=True)
class Wiring:
    """What the app lends the simulator; each is called when needed, in an app context."""

    redis: Callable[[], Redis]  # the app's client: the store's state, the carrier's pace
    signing_token: Callable[[], str]  # the token webhooks are signed with, as Twilio signs
    is_landline: Callable[[str], bool]  # the roster's reading of an E.164 number
    sms_segments: Callable[[str], int]  # how many segments a text is billed as


class Settings(Protocol):
    """The app's settings the simulator reads."""

    public_base_url: str  # where the app is reached: webhooks, recordings
    twilio_from_number: str | None  # the PLP number, when set
    calls_per_second: float  # the carrier's own rate limits
    sms_per_second: float


def install(app: Flask, wiring: Wiring) -> None:
    """Lend the simulator what it needs of `app`."""
    app.extensions[WIRING_KEY] = wiring


def wiring(app: Flask | None = None) -> Wiring:
    """Return what `app` (default: the current app) lent the simulator."""
    app = app or current_app
    try:
        return app.extensions[WIRING_KEY]
    except KeyError:
        raise RuntimeError(
            "the simulator is not wired to this app (simulator.adapters.wiring.wire)"
        ) from None


def settings(app: Flask | None = None) -> Settings:
    """Return the settings of `app` (default: the current app)."""
    return (app or current_app).extensions["settings"]


def plp_number(app: Flask | None = None) -> str:
    """Return the PLP's number: the caller ID of calls and the sender of SMS."""
    return settings(app).twilio_from_number or SIMULATED_PLP_NUMBER


def simulator_mode(app: Flask | None = None) -> str:
    """Return where lives run: "thread" (tests by default) or "queue" (the carrier process)."""
    app = app or current_app
    mode = app.config.get("SIMULATOR_MODE") or ("thread" if app.testing else "queue")
    if mode not in MODES:
        raise ValueError(f"SIMULATOR_MODE: {mode!r} is not one of {', '.join(MODES)}")
    return mode


def zero_latency(app: Flask | None = None) -> bool:
    """Tell whether lives only add up durations (tests by default) instead of waiting."""
    app = app or current_app
    latency = app.config.get("SIMULATOR_LATENCY") or ("zero" if app.testing else "real")
    if latency not in LATENCIES:
        raise ValueError(f"SIMULATOR_LATENCY: {latency!r} is not one of {', '.join(LATENCIES)}")
    return latency == "zero"


def recordings_dir(app: Flask | None = None) -> Path:
    """Return where recordings made by <Record> are kept (the dev page serves them)."""
    return Path((app or current_app).instance_path) / "simulator" / "recordings"
