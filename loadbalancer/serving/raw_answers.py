"""Answers written straight to a client socket, where the WSGI app never sees the request.

gunicorn refuses malformed requests itself (a header over its limits, a NUL in a header, a bad
request line) and the worker answers 503 when it is full; these answers are Anthropic-format
JSON like every other error of the service. Messages are fixed sentences: a refused header
may carry a client's key, so nothing the client sent is echoed into the answer or the log.
"""

from __future__ import annotations

import http
import socket
import ssl
import time

import gevent
import orjson
from gunicorn.http import errors as parse_errors

from loadbalancer.errors import LoadBalancerError, error_body, error_type_for
from loadbalancer.request_record import new_request_id

LINGER_SECONDS = 1.0  # how long to read what the client still sends after an early answer
LINGER_CHUNK = 65536
LINGER_MAX_BYTES = 16 * 1024 * 1024

# gunicorn's refusals, most specific first: the status and what the client is told.
PARSE_ERROR_ANSWERS: tuple[tuple[type[BaseException], int, str], ...] = (
    (parse_errors.LimitRequestHeaders, 431, "the request headers are too large: too many header "
                                            "fields, or a field above the size limit"),
    (parse_errors.LimitRequestLine, 414, "the request line (method and URL) is too long"),
    (parse_errors.UnsupportedTransferCoding, 501, "the request uses a transfer-encoding this server "
                                                  "does not support; send chunked or a content-length"),
    (parse_errors.InvalidRequestLine, 400, "the request line is malformed: expected METHOD /path HTTP/1.1"),
    (parse_errors.InvalidRequestMethod, 400, "the request method is malformed"),
    (parse_errors.InvalidHTTPVersion, 400, "the HTTP version is not supported: use HTTP/1.0 or HTTP/1.1"),
    (parse_errors.InvalidHeaderName, 400, "a request header name is malformed"),
    (parse_errors.InvalidHeader, 400, "a request header is malformed (invalid characters, a duplicate "
                                      "or conflicting framing header)"),
    (parse_errors.ObsoleteFolding, 400, "a request header is folded over lines, which HTTP/1.1 forbids"),
    (parse_errors.ParseException, 400, "the request is not valid HTTP/1.1"),
    (ssl.SSLError, 400, "the TLS handshake failed"),
)


def answer_for(error: BaseException) -> tuple[int, str] | None:
    """The status and message for a refused request; None when it is no client's fault."""
    if isinstance(error, LoadBalancerError):
        return error.status, error.message
    for error_class, status, message in PARSE_ERROR_ANSWERS:
        if isinstance(error, error_class):
            return status, message
    return None


def json_error_bytes(status: int, message: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response: an Anthropic error body, and the connection closes after it."""
    body = orjson.dumps(error_body(error_type_for(status), message))
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
             f"content-length: {len(body)}", f"x-request-id: {new_request_id()}", "connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def send_and_close(sock: socket.socket, response: bytes, linger_seconds: float = LINGER_SECONDS) -> None:
    """Send `response`, then read what the client still sends for a moment before closing.

    Closing a socket with unread input makes the kernel reset the connection, and a reset
    can destroy the answer before the client read it (a client still sending a 1 MB header,
    or a request the worker never read because it was full). A client that reads the answer
    and closes ends the wait at once; one that does not holds it for `linger_seconds`.
    """
    try:
        sock.sendall(response)
        sock.shutdown(socket.SHUT_WR)
        _discard_input(sock, linger_seconds)
    except OSError:
        pass  # the client has gone: nobody is left to answer
    finally:
        sock.close()


def _discard_input(sock: socket.socket, linger_seconds: float) -> None:
    deadline = time.monotonic() + linger_seconds
    discarded = 0
    while discarded < LINGER_MAX_BYTES:
        chunk = _recv_before(sock, deadline)
        if not chunk:
            return
        discarded += len(chunk)


def _recv_before(sock: socket.socket, deadline: float) -> bytes:
    """What the client sent next; b"" at its end or once the deadline passed."""
    with gevent.Timeout(max(deadline - time.monotonic(), 0.0), False):
        return sock.recv(LINGER_CHUNK)
    return b""
