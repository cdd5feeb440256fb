"""Hostile and broken clients against the real service: refusals, slow clients, a full worker, SIGTERM.

gunicorn runs the project's worker (loadbalancer/serving/worker.py) with short client time
limits, and raw sockets play the clients `requests` cannot: a 1 MB header, a NUL in a header,
headers or a body that stop half-way, more half-open connections than the worker holds.
Every answer must be Anthropic-format JSON with the status that tells the truth.
"""
from __future__ import annotations

import http.client
import json
import selectors
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from support.fake_backend import FakeBackend, anthropic_stream
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config
from support.raw_http import PARTIAL_HEADERS, RawAnswer, connect, exchange, parse_answer, read_until_closed
from support.sse_validation import check_anthropic_stream

pytestmark = pytest.mark.integration

BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
# Generous: a read that waits this long means the service said nothing at all.
SILENCE_LIMIT = 20.0
CLIENT_TIMEOUT = 15.0
TIMEOUTS_ENV = {"LB_HEADER_TIMEOUT": "1", "LB_BODY_IDLE_TIMEOUT": "1", "LB_BODY_TIMEOUT": "3"}
DRIP_INTERVAL = 0.4  # below the body idle limit: only the limit on the whole body can end a drip
SMALL_WORKER_ENV = {"LB_WORKER_CONNECTIONS": "8", "LB_HEADER_TIMEOUT": "5"}
SMALL_WORKER_CONNECTIONS = 8


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeBackend]:
    """One Anthropic fake backend answering every request."""
    with FakeBackend() as fake:
        yield fake


@pytest.fixture(scope="module")
def service(backend: FakeBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadBalancerProcess]:
    """The service with one-second header and body-idle limits, and three seconds for a whole body."""
    with LoadBalancerProcess(providers_config(anthropic_provider("primary", backend.url)), env=TIMEOUTS_ENV,
                             workdir=tmp_path_factory.mktemp("lb")) as process:
        yield process


def assert_anthropic_error(answer: RawAnswer | None, status: int, error_type: str) -> dict[str, Any]:
    """The answer is a JSON error of Anthropic's format with `status`; its `error` object."""
    assert answer is not None, "the service closed the connection without an answer"
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers.get("x-request-id", "").startswith("req_")
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type, body
    return body["error"]


def healthy(process: LoadBalancerProcess) -> int:
    """The status of one normal request (GET /health) on a new connection."""
    return requests.get(f"{process.url}/health", timeout=CLIENT_TIMEOUT).status_code


# --- gunicorn's own refusals are JSON ----------------------------------------------------------

REQUEST_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
MANY_HEADERS = b"".join(b"x-filler-%d: 1\r\n" % number for number in range(600))


@pytest.mark.parametrize("raw, status", [
    (REQUEST_HEAD + b"x-big: " + b"a" * 1024 * 1024 + b"\r\n\r\n", 431),
    (REQUEST_HEAD + MANY_HEADERS + b"\r\n", 431),
    (REQUEST_HEAD + b"x-api-key: sk-secret\x00evil\r\n\r\n", 400),
    (REQUEST_HEAD + b"bad header line without colon\r\n\r\n", 400),
    (b"THIS IS NOT HTTP\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
], ids=["1MB-header", "600-headers", "NUL-in-header", "header-without-colon", "bad-request-line",
        "bad-version", "20KB-url"])
def test_requests_gunicorn_refuses_get_anthropic_json_errors(service: LoadBalancerProcess, raw: bytes,
                                                             status: int) -> None:
    error = assert_anthropic_error(exchange(service.port, raw, SILENCE_LIMIT), status, "invalid_request_error")
    assert "sk-secret" not in error["message"]


def test_a_refused_header_is_not_echoed_into_the_log(service: LoadBalancerProcess) -> None:
    raw = REQUEST_HEAD + b"x-api-key: sk-log-canary\x00\r\n\r\n"
    assert_anthropic_error(exchange(service.port, raw, SILENCE_LIMIT), 400, "invalid_request_error")
    service.wait_for_log("refused a request from 127.0.0.1 with 400")
    assert "sk-log-canary" not in service.log_text()


# --- slow clients are timed out ----------------------------------------------------------------

def test_headers_that_stop_half_way_get_408(service: LoadBalancerProcess) -> None:
    with connect(service.port, SILENCE_LIMIT) as sock:
        sock.sendall(PARTIAL_HEADERS)
        answer = parse_answer(read_until_closed(sock))
    # Without a header limit the keep-alive timer (75 s) would close this without a word.
    assert "headers" in assert_anthropic_error(answer, 408, "timeout_error")["message"]


def test_a_connection_that_never_speaks_is_closed_without_an_answer(service: LoadBalancerProcess) -> None:
    with connect(service.port, SILENCE_LIMIT) as sock:
        assert read_until_closed(sock) == b""


def test_a_body_that_stops_half_way_gets_408_and_reaches_no_provider(service: LoadBalancerProcess,
                                                                      backend: FakeBackend) -> None:
    backend.clear_requests()
    head = PARTIAL_HEADERS + b"content-length: 500\r\n\r\n"
    with connect(service.port, SILENCE_LIMIT) as sock:
        sock.sendall(head + json.dumps(BODY).encode()[:20])
        answer = parse_answer(read_until_closed(sock))
    assert "body" in assert_anthropic_error(answer, 408, "timeout_error")["message"]
    assert backend.requests == []


def test_a_body_dripped_byte_by_byte_gets_408_when_the_whole_body_takes_too_long(
        service: LoadBalancerProcess, backend: FakeBackend) -> None:
    backend.clear_requests()
    with connect(service.port, SILENCE_LIMIT) as sock:
        sock.sendall(PARTIAL_HEADERS + b"content-length: 100000\r\n\r\n")
        stop = threading.Event()

        def drip() -> None:
            while not stop.wait(DRIP_INTERVAL):
                try:
                    sock.send(b" ")
                except OSError:
                    return

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            answer = parse_answer(read_until_closed(sock))
        finally:
            stop.set()
            dripper.join()
    assert "did not arrive within 3 s" in assert_anthropic_error(answer, 408, "timeout_error")["message"]
    assert backend.requests == []


def test_a_kept_alive_connection_may_idle_longer_than_the_header_limit(service: LoadBalancerProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=CLIENT_TIMEOUT)
    try:
        for _ in range(2):
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            time.sleep(1.5)  # idle longer than LB_HEADER_TIMEOUT: only keep-alive bounds this wait
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_a_normal_request_with_a_body_is_served(service: LoadBalancerProcess) -> None:
    response = requests.post(f"{service.url}/v1/messages", json=BODY, timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200 and response.json()["type"] == "message"


# --- a full worker answers 503 at once ---------------------------------------------------------

@pytest.fixture
def small_service(backend: FakeBackend, tmp_path: Path) -> Iterator[LoadBalancerProcess]:
    """One worker holding 8 client connections, with a 5-second header limit."""
    with LoadBalancerProcess(providers_config(anthropic_provider("primary", backend.url)), env=SMALL_WORKER_ENV,
                             workdir=tmp_path / "lb") as process:
        yield process


def open_half_requests(process: LoadBalancerProcess, count: int) -> list[socket.socket]:
    """`count` connections that sent part of their headers and then nothing."""
    sockets = []
    for _ in range(count):
        sock = connect(process.port, SILENCE_LIMIT)
        sock.sendall(PARTIAL_HEADERS)
        sockets.append(sock)
    return sockets


def answers_of(sockets: list[socket.socket]) -> list[RawAnswer | None]:
    """Read every socket until the service closes it, all at once (a closed one is closed here too)."""
    received: dict[socket.socket, bytearray] = {sock: bytearray() for sock in sockets}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        open_count = len(sockets)
        while open_count:
            ready = selector.select(SILENCE_LIMIT)
            assert ready, f"{open_count} connections got no answer within {SILENCE_LIMIT} s"
            for key, _ in ready:
                chunk = _recv_or_empty(key.fileobj)
                if chunk:
                    received[key.fileobj] += chunk
                else:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    open_count -= 1
    return [parse_answer(bytes(received[sock])) for sock in sockets]


def _recv_or_empty(sock: Any) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def test_when_every_connection_is_taken_normal_requests_get_503_then_are_served(
        small_service: LoadBalancerProcess) -> None:
    slow = open_half_requests(small_service, SMALL_WORKER_CONNECTIONS)
    refused = [exchange(small_service.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", SILENCE_LIMIT)
               for _ in range(20)]
    for answer in refused:
        assert_anthropic_error(answer, 503, "overloaded_error")
        assert answer.headers["retry-after"] == "1"
    statuses = Counter(answer.status for answer in answers_of(slow))
    assert statuses == {408: SMALL_WORKER_CONNECTIONS}  # each held a connection until its header limit
    assert Counter(healthy(small_service) for _ in range(20)) == {200: 20}


def test_half_open_requests_far_above_capacity_all_get_an_answer(small_service: LoadBalancerProcess) -> None:
    # The 4,300 half-open requests against 2 x 2,000 connections, scaled down: 60 against 8.
    slow = open_half_requests(small_service, 60)
    statuses = Counter(answer.status if answer else None for answer in answers_of(slow))
    assert statuses == {408: SMALL_WORKER_CONNECTIONS, 503: 60 - SMALL_WORKER_CONNECTIONS}
    assert Counter(healthy(small_service) for _ in range(20)) == {200: 20}


def test_idle_kept_alive_connections_give_way_to_new_clients(small_service: LoadBalancerProcess) -> None:
    idle = []
    for _ in range(SMALL_WORKER_CONNECTIONS):
        connection = http.client.HTTPConnection("127.0.0.1", small_service.port, timeout=CLIENT_TIMEOUT)
        connection.request("GET", "/health")
        connection.getresponse().read()
        idle.append(connection)
    try:
        assert Counter(healthy(small_service) for _ in range(5)) == {200: 5}
    finally:
        for connection in idle:
            connection.close()


# --- SIGTERM: idle keep-alive connections do not hold the worker -------------------------------

def test_sigterm_closes_idle_keep_alive_at_once_and_lets_a_stream_finish(tmp_path: Path) -> None:
    with FakeBackend() as backend:
        backend.set_default(anthropic_stream(tuple("abcdefgh"), delay=0.25))
        process = LoadBalancerProcess(providers_config(anthropic_provider("primary", backend.url)),
                                      env={"LB_GRACEFUL_TIMEOUT": "60"}, workers=2, workdir=tmp_path / "lb")
        with process:
            idle = http.client.HTTPConnection("127.0.0.1", process.port, timeout=SILENCE_LIMIT)
            idle.request("GET", "/health")
            idle.getresponse().read()
            stream = requests.post(f"{process.url}/v1/messages", json={**BODY, "stream": True}, stream=True,
                                   timeout=CLIENT_TIMEOUT)
            chunks = stream.iter_content(chunk_size=None)
            received = [next(chunks)]  # the stream is under way before the signal
            exit_code: list[int | None] = []
            stopper = threading.Thread(target=lambda: exit_code.append(process.terminate(SILENCE_LIMIT)))
            stopper.start()
            received += list(chunks)
            stopper.join()
            # Before: the worker waited out the idle connection's 75 s keep-alive, long after the stream.
            assert exit_code == [0], process.log_tail()
            assert idle.sock is not None and idle.sock.recv(1) == b""  # closed by the service, not by us
            assert check_anthropic_stream(b"".join(received)).text == "abcdefgh"
