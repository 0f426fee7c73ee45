"""Services a test runs itself, to stop and start at will (imported by name from any test folder).

The machine's shared PostgreSQL and Redis are never stopped by a test: a test that
needs an outage starts a redis-server of its own here. Missing binaries follow the
service rule: skip on a laptop, fail under FEDERATION_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, seconds: float = 10.0) -> bool:
    """True once something accepts connections on 127.0.0.1:``port`` (False after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


class RedisServer:
    """A redis-server on a free loopback port, keeping nothing on disk."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server)"
            if REQUIRE_SERVICES:
                pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
            pytest.skip(message)
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (empty: it keeps nothing from an earlier start)."""
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_for_port(self.port):
            pytest.fail("the test's own redis-server did not start")

    def stop(self) -> None:
        """Kill it (as a crash would)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
