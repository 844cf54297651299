"""The embedded Redis server: one per instance directory, shared, stoppable."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys

import redis

from core.app import PROJECT_ROOT
from core.embedded_redis import EmbeddedRedis

START_IN_CHILD = (
    "import sys; from core.embedded_redis import EmbeddedRedis; "
    "print(EmbeddedRedis(sys.argv[1]).ensure_running())"
)


def test_processes_starting_together_share_one_server(tmp_path):
    """Four processes asking at once get one server: the same socket and one pid."""

    def start(_):
        return subprocess.run(
            [sys.executable, "-c", START_IN_CHILD, str(tmp_path)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(start, range(4)))
    server = EmbeddedRedis(tmp_path)
    try:
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
        assert {r.stdout.strip() for r in results} == {server.url}
        client = redis.Redis(unix_socket_path=str(server.socket))
        assert client.info("server")["process_id"] == int(
            (tmp_path / "redis" / "redis.pid").read_text()
        )
        client.close()
    finally:
        assert server.stop()
    assert not server.is_running()


def test_data_survives_a_restart(tmp_path):
    """What was written before stop() is there after the next start (saved to instance/)."""
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.ensure_running())
    client.set("plp:test", "kept")
    client.close()
    server.stop()
    client = redis.Redis.from_url(server.ensure_running())
    try:
        assert client.get("plp:test") == b"kept"
    finally:
        client.close()
        server.stop()


def test_long_instance_paths_use_a_short_socket(tmp_path):
    """An instance path too long for a Unix socket gets a socket under the temp directory."""
    deep = tmp_path / ("x" * 120)
    server = EmbeddedRedis(deep)
    assert len(str(server.socket)) < 100
    assert server.socket != deep / "redis" / "redis.sock"
    assert server.url == f"unix://{server.socket}"
