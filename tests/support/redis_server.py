"""A private redis-server for tests: its own directory, no persistence, killable and restartable."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .lb_process import free_port

STARTUP_TIMEOUT = 5.0
SKIP_MESSAGE = ("redis-server is not installed (Debian: apt-get install -y redis-server; .ci/run "
                "installs it): the Redis backend is not tested")


def require_redis_server() -> str:
    """The redis-server binary, or skip the test with the reason."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(SKIP_MESSAGE)
    return binary


class RedisServer:
    """redis-server on 127.0.0.1:`port` (0: a free one), started and stopped by the test."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or restart, empty) on the same port; wait until it answers PING."""
        self._process = subprocess.Popen(
            [require_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.answers():
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def answers(self) -> bool:
        """Whether a PING gets PONG right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered (a hung Redis)."""
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the way a crashed Redis goes."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a paused process cannot die otherwise
            self._process.kill()
            self._process.wait(5)
            self._process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
