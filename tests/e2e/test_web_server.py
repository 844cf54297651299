"""The Procfile's web command, run as written: slow clients do not stall /healthz."""

from __future__ import annotations

import http.client
import os
import re
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from core.app import PROJECT_ROOT
from tests.cascade_harness import free_port
from tests.support import subprocess_env

pytestmark = pytest.mark.slow

START_SECONDS = 60  # gunicorn and the app start well within this (a busy 2-core CI)
ANSWER_SECONDS = 2  # what /healthz must take while slow clients trickle in
SLOW_CLIENTS = 4
REQUEST_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n"


def procfile_web_command(env: dict[str, str]) -> list[str]:
    """Return the Procfile's web command with ${NAME:-default} expanded from `env`."""
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            command = line.removeprefix("web:").strip()
            break
    else:
        raise AssertionError("the Procfile has no web process")
    expanded = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], command)
    argv = shlex.split(expanded)
    assert argv[0] == "gunicorn"
    return [str(PROJECT_ROOT / ".venv" / "bin" / "gunicorn"), *argv[1:]]


@contextmanager
def web_server(tmp_path, redis_url: str) -> Iterator[int]:
    """Run the Procfile's web command on a free loopback port; yield the port."""
    port = free_port()
    env = subprocess_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'web.db'}",
        REDIS_URL=redis_url,
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
    )
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        procfile_web_command(env),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while healthz_seconds(port, timeout=2) is None:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz in time"
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)
        log.close()


def healthz_seconds(port: int, timeout: float) -> float | None:
    """GET /healthz; return how long the answer took, or None when none came in `timeout`."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return None
    finally:
        connection.close()
    assert response.status in (200, 503), body  # an answer, saying what it found
    assert b'"reasons"' in body
    return time.monotonic() - started


class SlowClients:
    """Clients that send a request's head one byte a second, holding their connections."""

    def __init__(self, port: int, count: int) -> None:
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        for index in range(len(REQUEST_HEAD) - 4):  # never the end of the head
            for sock in self.sockets:
                with suppress(OSError):
                    sock.sendall(REQUEST_HEAD[index : index + 1])
            self.bytes_sent = index + 1
            if self._stop.wait(1.0):
                return

    def close(self) -> None:
        """Stop trickling and close the connections."""
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


def test_slow_clients_do_not_stall_healthz(tmp_path, redis_url):
    """Four connections trickling header bytes; /healthz still answers within 2 s each time."""
    with web_server(tmp_path, redis_url) as port:
        slow = SlowClients(port, SLOW_CLIENTS)
        try:
            deadline = time.monotonic() + 10
            while slow.bytes_sent < 2:  # each connection is being read by the server now
                assert time.monotonic() < deadline
                time.sleep(0.05)
            timings = []
            for _ in range(5):
                seconds = healthz_seconds(port, timeout=ANSWER_SECONDS * 5)
                assert seconds is not None, "/healthz did not answer while slow clients held on"
                timings.append(seconds)
            assert slow.bytes_sent < len(REQUEST_HEAD) - 4  # still trickling throughout
        finally:
            slow.close()
    print(f"healthz with {SLOW_CLIENTS} slow clients: max {max(timings):.3f} s")
    assert max(timings) < ANSWER_SECONDS, timings
