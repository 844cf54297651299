"""The time of simulated calls and messages: clocks, and how long each network step takes.

The TwiML interpreter keeps a call's time with a `Clock`: `InstantClock` only adds the
durations up (tests, benchmarks), `RealClock` sleeps through them (live demos). The
network's lives use the clocks that also stop with the carrier: `LiveClock` (real time,
SIMULATOR_LATENCY "real") and `ZeroClock` (durations added up, "zero").
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """The time of a simulated call."""

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of the call pass."""
        ...

    def now(self) -> float:
        """Return the current time in seconds (any fixed origin)."""
        ...


class RealClock:
    """Wall-clock time: the call lasts as long as it would on a phone."""

    def sleep(self, seconds: float) -> None:
        """Sleep through `seconds`."""
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> float:
        """Return monotonic time."""
        return time.monotonic()


class InstantClock:
    """Simulated time: durations are added up, nothing waits."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def sleep(self, seconds: float) -> None:
        """Add `seconds` to the elapsed time at once."""
        self.elapsed += max(0.0, seconds)

    def now(self) -> float:
        """Return the elapsed simulated time."""
        return self.elapsed


class CarrierStopped(Exception):  # noqa: N818 (a state, like KeyboardInterrupt)
    """The carrier is shutting down: the life in this thread ends now."""


class LiveClock:
    """Real time, cut short when the carrier stops."""

    def __init__(self, stopping: threading.Event):
        self.stopping = stopping

    def sleep(self, seconds: float) -> None:
        """Sleep through `seconds`; raise `CarrierStopped` if the carrier stops meanwhile."""
        if self.stopping.wait(max(0.0, seconds)):
            raise CarrierStopped

    def now(self) -> float:
        """Return monotonic time."""
        return time.monotonic()


class ZeroClock:
    """Zero latency: sleeping only moves this life's own time forward."""

    def __init__(self, stopping: threading.Event):
        self.stopping = stopping
        self.elapsed = 0.0

    def sleep(self, seconds: float) -> None:
        """Add `seconds` to the life's time at once."""
        if self.stopping.is_set():
            raise CarrierStopped
        self.elapsed += max(0.0, seconds)

    def now(self) -> float:
        """Return the life's elapsed time."""
        return self.elapsed


@dataclass(frozen=True)
class Latency:
    """How long each step of the network takes, in seconds: (shortest, longest)."""

    setup: tuple[float, float] = (0.5, 2.0)  # dialled until the phone rings
    busy: tuple[float, float] = (0.5, 1.5)  # dialled until the busy tone
    human_detection: tuple[float, float] = (1.5, 3.0)  # detection hears "hello?" end
    greeting: tuple[float, float] = (4.0, 6.0)  # a voicemail greeting, up to the beep
    sms_sent: tuple[float, float] = (0.2, 1.0)  # taken until handed to the network
    sms_delivered: tuple[float, float] = (1.0, 5.0)  # handed until the handset reports

    def draw(self, span: tuple[float, float]) -> float:
        """Return a duration within `span` (shortest, longest)."""
        return random.uniform(*span)  # noqa: S311 (a simulation, not a secret)
