"""Redis outages seen by the carrier: told once, waited out with a capped backoff.

The carrier keeps its queue and its state in Redis (`simulator.store`). When Redis
cannot be reached the carrier process does not exit (under `make run` honcho would stop
the web server and the worker with it): whatever needs Redis retries 0.5 s, 1 s, 2 s, ...
up to 10 s apart, and goes on when Redis answers. One warning per outage, however many
threads meet it, and one line when it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from simulator.clock import CarrierStopped

log = logging.getLogger(__name__)

# What "Redis is unreachable" raises (BusyLoadingError, a server still loading its data
# after a restart, is a ConnectionError); any other RedisError is a bug, not an outage.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0

T = TypeVar("T")


def retry_delays(
    first: float = FIRST_RETRY_SECONDS, cap: float = MAX_RETRY_SECONDS
) -> Iterator[float]:
    """Yield the waits between retries: doubling from `first`, never above `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


class Outage:
    """Whether Redis is unreachable now, as the carrier's threads find it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        """Tell whether the last attempt to reach Redis failed."""
        return self._since is not None

    def failed(self, error: Exception) -> None:
        """Note that Redis could not be reached (warning once per outage)."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("carrier: Redis unreachable, retrying error=%s", error)

    def reached(self) -> None:
        """Note that Redis answered (the end of an outage, if one was going on)."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            lasted, self._since = time.monotonic() - self._since, None
        log.info("carrier: Redis reachable again after_seconds=%.1f", lasted)

    def wait_out(self, operation: Callable[[], T], stopping: threading.Event) -> T:
        """Run `operation` until Redis answers it; raise `CarrierStopped` if `stopping` is set.

        Only for operations that can be repeated: reads, pops, writes of the same fields.
        (A pop that Redis carried out but whose answer the outage lost is lost with it:
        the carrier takes each request at most once, as a call must not be played twice.)
        """
        delays = retry_delays()
        while True:
            try:
                result = operation()
            except UNREACHABLE as err:
                self.failed(err)
                if stopping.wait(next(delays)):
                    raise CarrierStopped from err
                continue
            self.reached()
            return result
