"""Run Stoplight Prism as a validating mock of Twilio's REST API (OpenAPI v2010).

Prism is pinned in this folder's package.json and package-lock.json; `npm ci --prefix
tests/contract` installs it. Prism 5 reports a request that breaks the contract in
three places, all checked by `Prism.violations`: the answer is 422 with a problem+json
body listing the `validation` errors (the spec defines no 4xx of its own); a request it
still answers carries the violations, request and response ones, as JSON in an
`sl-violations` header; and each one is logged as a `Violation:` line.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests

from core.app import PROJECT_ROOT

CONTRACT_DIR = Path(__file__).resolve().parent
PRISM_BIN = CONTRACT_DIR / "node_modules" / ".bin" / "prism"
# CI clones the repository with shared/ beside it.
TWILIO_SPEC = PROJECT_ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.json"
START_TIMEOUT_SECONDS = 90
# What Prism logs for a contract violation, whatever the answer was.
VIOLATION_MARKERS = ("Violation:", "Request did not pass the validation rules")


def unavailable_reason() -> str | None:
    """Say why Prism cannot run here (no node, no Prism, no spec), or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed: the Twilio contract mock (Prism) needs Node.js"
    if not PRISM_BIN.exists():
        return "Prism is not installed: run `npm ci --prefix tests/contract`"
    if not TWILIO_SPEC.exists():
        return f"Twilio's API description is missing: {TWILIO_SPEC}"
    return None


def free_port() -> int:
    """Return a TCP port that nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prism:
    """One Prism mock server on a free local port, logging to `log_path`."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start Prism and wait until it answers HTTP."""
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [
                    str(PRISM_BIN),
                    "mock",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    str(TWILIO_SPEC),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prism exited with {self.process.returncode}:\n{self.log()}")
            try:
                requests.get(self.url, timeout=1).close()  # any answer (404) means it is up
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Prism did not answer within {START_TIMEOUT_SECONDS}s:\n{self.log()}")

    def stop(self) -> None:
        """Stop Prism (SIGTERM, then SIGKILL after 10 seconds)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self, offset: int = 0) -> str:
        """Return what Prism logged from byte `offset` on."""
        with self.log_path.open("rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode("utf-8", "replace")

    def log_offset(self) -> int:
        """Return the current end of Prism's log, to read one request's lines later."""
        return self.log_path.stat().st_size

    def flush_log(self) -> None:
        """Wait until Prism has logged everything about the requests answered so far.

        Prism writes its log a moment after it answers; a marker request, logged in
        order after them, shows when those lines are in the file.
        """
        marker = f"/__log_barrier__/{uuid.uuid4().hex}"
        offset = self.log_offset()
        requests.get(self.url + marker, timeout=10).close()
        deadline = time.monotonic() + 10
        while marker not in self.log(offset):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prism did not log {marker}")
            time.sleep(0.02)

    def violations(self, status: int, headers, offset: int) -> list[str]:
        """Return every violation Prism reported for one answer and its log since `offset`."""
        found = []
        if status == 422:
            found.append("HTTP 422: Prism found the request invalid")
        if headers is not None and headers.get("sl-violations"):
            found.append(f"sl-violations: {headers['sl-violations']}")
        found += [
            line
            for line in self.log(offset).splitlines()
            if any(marker in line for marker in VIOLATION_MARKERS)
        ]
        return found
