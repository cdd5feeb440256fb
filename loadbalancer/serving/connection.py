"""One client connection with the time limits that keep slow clients from holding a worker.

gunicorn's parser reads a request by calling `recv` on the client socket, and the app reads
the body through the same calls. `ClientConnection` wraps the socket and gives every `recv`
the limit of the phase the connection is in:

- waiting for the next request on a kept-alive connection: `keepalive` seconds, then a quiet
  close (and at once when the worker is shutting down);
- reading a request line and headers: all of it within `header_seconds` of its first byte
  (of the accept, for a new connection), else 408;
- inside a request: each read of the body within `body_idle_seconds`, the whole body within
  `body_seconds` of the headers, else 408.

Everything but `recv` is the socket's own.
"""

from __future__ import annotations

import enum
import math
import select
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import gevent

from loadbalancer.errors import ClientTimeout

DEFAULT_HEADER_SECONDS = 10.0
DEFAULT_BODY_IDLE_SECONDS = 30.0
DEFAULT_BODY_SECONDS = 300.0
DEFAULT_KEEPALIVE_SECONDS = 75.0


@dataclass(frozen=True)
class ClientTimeouts:
    """How long a client may take for each part of a request (seconds)."""

    header_seconds: float = DEFAULT_HEADER_SECONDS
    body_idle_seconds: float = DEFAULT_BODY_IDLE_SECONDS
    body_seconds: float = DEFAULT_BODY_SECONDS
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], keepalive_seconds: float) -> ClientTimeouts:
        """The limits named by LB_HEADER_TIMEOUT, LB_BODY_IDLE_TIMEOUT and LB_BODY_TIMEOUT."""
        return cls(header_seconds=_positive_seconds(environ, "LB_HEADER_TIMEOUT", DEFAULT_HEADER_SECONDS),
                   body_idle_seconds=_positive_seconds(environ, "LB_BODY_IDLE_TIMEOUT",
                                                       DEFAULT_BODY_IDLE_SECONDS),
                   body_seconds=_positive_seconds(environ, "LB_BODY_TIMEOUT", DEFAULT_BODY_SECONDS),
                   keepalive_seconds=keepalive_seconds)


def _positive_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a number of seconds above 0, not {raw!r}")
    return seconds


class Phase(enum.Enum):
    """Where a connection is in its request cycle."""

    IDLE = "waiting for the next request"
    HEADERS = "reading a request line and headers"
    REQUEST = "inside a request"


class ClientConnection:
    """A client socket whose reads are bounded by the phase of the request cycle."""

    def __init__(self, sock: socket.socket, timeouts: ClientTimeouts,
                 worker_is_alive: Callable[[], bool]) -> None:
        self._socket = sock
        self._timeouts = timeouts
        self._worker_is_alive = worker_is_alive
        self._phase = Phase.HEADERS
        self._deadline = time.monotonic() + timeouts.header_seconds
        self._received_headers = False
        self._request: Any = None
        self._ended_while_idle = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)

    @property
    def raw_socket(self) -> socket.socket:
        """The socket itself, without the phase limits (for answers written around gunicorn)."""
        return self._socket

    @property
    def is_idle(self) -> bool:
        """True between two requests of a kept-alive connection, before the next one began."""
        return self._phase is Phase.IDLE

    def start_request(self, request: Any) -> None:
        """The headers are parsed: the body limits apply from now on."""
        self._phase = Phase.REQUEST
        self._request = request
        self._deadline = time.monotonic() + self._timeouts.body_seconds

    def finish_request(self) -> None:
        """The answer is sent: wait for the next request, as long as keep-alive allows."""
        self._phase = Phase.IDLE
        self._request = None

    def close_if_idle(self) -> bool:
        """End a kept-alive connection that has not begun another request; True when ended.

        A client whose next request is already in the socket keeps its connection (the worker
        answers it and closes after). The shutdown wakes the `recv` waiting on the socket
        (gevent cancels the wait), which then reads as end-of-file: gunicorn closes the
        connection without a word.
        """
        if self._phase is not Phase.IDLE or self._has_pending_bytes():
            return False
        self._ended_while_idle = True
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client has gone already
        return True

    def recv(self, size: int, *flags: int) -> bytes:
        """Read like `socket.recv`, within the limit of the current phase.

        :raises ClientTimeout: headers or body arrived too slowly.
        """
        if self._phase is Phase.REQUEST:
            return self._recv_body(size, *flags)
        if self._phase is Phase.IDLE:
            return self._recv_next_request(size, *flags)
        return self._recv_headers(size, *flags)

    def _recv_next_request(self, size: int, *flags: int) -> bytes:
        if not self._worker_is_alive():
            return b""  # shutting down: a kept-alive connection ends here
        try:
            data = self._recv_within(self._timeouts.keepalive_seconds, size, *flags)
        except OSError:
            if self._ended_while_idle:
                return b""
            raise
        if data is None:
            return b""  # idle past keep-alive: close quietly
        self._phase = Phase.HEADERS
        self._deadline = time.monotonic() + self._timeouts.header_seconds
        self._received_headers = bool(data)
        return data

    def _recv_headers(self, size: int, *flags: int) -> bytes:
        data = self._recv_within(self._deadline - time.monotonic(), size, *flags)
        if data is None:
            if not self._received_headers:
                return b""  # a new connection that never said anything: close quietly
            raise ClientTimeout(f"request headers did not arrive within {self._timeouts.header_seconds:g} s")
        self._received_headers = self._received_headers or bool(data)
        return data

    def _recv_body(self, size: int, *flags: int) -> bytes:
        remaining = self._deadline - time.monotonic()
        data = self._recv_within(min(self._timeouts.body_idle_seconds, remaining), size, *flags)
        if data is not None:
            return data
        if self._request is not None:
            self._request.must_close = True  # the rest of the body can never be told apart from a next request
        if remaining <= self._timeouts.body_idle_seconds:
            raise ClientTimeout(f"the request body did not arrive within {self._timeouts.body_seconds:g} s")
        raise ClientTimeout(f"the request body stopped: nothing arrived for {self._timeouts.body_idle_seconds:g} s")

    def _recv_within(self, seconds: float, size: int, *flags: int) -> bytes | None:
        """The bytes `recv` returned, or None when nothing came within `seconds`."""
        with gevent.Timeout(max(seconds, 0.0), False):
            return self._socket.recv(size, *flags)
        return None

    def _has_pending_bytes(self) -> bool:
        """True when the client has sent something not read yet (or closed its side)."""
        try:
            readable, _, _ = select.select([self._socket], [], [], 0)
        except (OSError, ValueError):
            return False  # closed already: nothing worth keeping
        return bool(readable)

