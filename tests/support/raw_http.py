"""Raw-socket HTTP for tests and benchmarks that play hostile or broken clients.

`requests` cannot send a NUL in a header, stop half-way through a request or hold a
thousand half-open connections; these helpers write bytes and read what comes back.
"""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

PARTIAL_HEADERS = b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
READ_CHUNK = 65536


@dataclass(frozen=True)
class RawAnswer:
    """One HTTP response read off a socket the server closed after it."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def connect(port: int, timeout: float) -> socket.socket:
    """A TCP connection to 127.0.0.1:port whose reads give up after `timeout` seconds."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    """Send what the server will take: it may answer and close before reading it all."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection.

    :raises socket.timeout: the server kept the connection open and silent for the socket's timeout.
    """
    received = bytearray()
    while True:
        try:
            chunk = sock.recv(READ_CHUNK)
        except ConnectionResetError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


def parse_answer(data: bytes) -> RawAnswer | None:
    """The first response in `data`; None when the server closed without a word."""
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return RawAnswer(int(status_line.split(" ")[1]), headers, body[:length])


def exchange(port: int, data: bytes, timeout: float) -> RawAnswer | None:
    """Send `data` on a new connection and read the answer the server closes after."""
    with connect(port, timeout) as sock:
        send_ignoring_reset(sock, data)
        return parse_answer(read_until_closed(sock))
