"""The upstream answer's headers read directly are what http.client reads; a closed kept-alive connection is seen.

`ProviderHTTPResponse` reads header blocks without the email package. For any block
(plain lines, folded lines, stray CRs, names that are not tokens, Latin-1 bytes, repeated
names, an interim 100 answer, an answer cut inside its headers) it must give exactly what
http.client's own response gives: status, reason, version, every header in order, the
parser's defects, the body's framing, and the body.
"""
from __future__ import annotations

import http.client
import io
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3 import HTTPHeaderDict
from urllib3.connection import _normalize_header_values

from loadbalancer.providers.http_client import ProviderClient
from loadbalancer.providers.http_response import ProviderHTTPResponse, closed_by_peer
from loadbalancer.settings.records import ProviderConfig


class RecordedSocket:
    """What an HTTPResponse reads from: the bytes of one answer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))


def reading(response_class: type, data: bytes, method: str = "POST") -> tuple:
    """Everything a caller can see of an answer, or the error reading it raised."""
    response = response_class(RecordedSocket(data), method=method)
    try:
        response.begin()
    except (http.client.HTTPException, ValueError) as err:
        return ("error", type(err).__name__, str(err))
    headers = response.headers
    framing = (response.status, response.reason, response.version, response.chunked, response.length,
               response.will_close, getattr(response, "chunk_left", "unset"))
    seen = (list(headers.items()), [type(defect).__name__ for defect in headers.defects], headers.get_payload(),
            headers.get("content-type"), headers.get_all("set-cookie"))
    try:
        body = response.read()
    except (http.client.HTTPException, ValueError) as err:
        body = ("error", type(err).__name__)
    return framing, seen, body


names = st.sampled_from(["Content-Type", "content-length", "Transfer-Encoding", "Connection", "X-Request-Id",
                         "set-cookie", "Retry-After", "x-weird_name.1", "From ", "bad name", "", "naïve"])
values = st.sampled_from(["application/json", "5", "chunked", "close", "keep-alive", "  spaced  ", "",
                          "a\rb", "caf\xe9", "tab\tinside", "x" * 40, "-3", "12abc", "\x0bvt", "\x85nel"])
line_ends = st.sampled_from(["\r\n", "\n"])


@st.composite
def header_blocks(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["plain", "plain", "plain", "folded", "no colon", "leading blank"]))
        name, value, end = draw(names), draw(values), draw(line_ends)
        if kind == "plain":
            lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{value}{end}")
        elif kind == "folded":
            lines.append(f"{name}: {value}{end} continued{end}")
        elif kind == "no colon":
            lines.append(f"{name} {value}{end}")
        else:
            lines.append(f" {name}: {value}{end}")
    return "".join(lines)


@st.composite
def answers(draw) -> bytes:
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2"]))
    status = draw(st.sampled_from(["200 OK", "201 Created ", "204 No Content", "304 Not Modified", "404 Not Found",
                                   "500 Internal Server Error", "200"]))
    interim = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n" if draw(st.booleans()) else ""
    framing = draw(st.sampled_from(["", "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n",
                                    "Connection: close\r\n", "Content-Length: 5\r\nConnection: keep-alive\r\n"]))
    body = "5\r\nhello\r\n0\r\n\r\n" if "chunked" in framing else "hello"
    text = f"{interim}{version} {status}\r\n{framing}{draw(header_blocks())}"
    if draw(st.integers(0, 9)) == 0:
        return text.encode("latin-1")  # cut inside its headers
    return (text + draw(line_ends) + body).encode("latin-1")


@settings(max_examples=600, deadline=None)
@given(data=answers(), method=st.sampled_from(["POST", "GET", "HEAD"]))
def test_an_answer_reads_exactly_as_http_client_reads_it(data: bytes, method: str) -> None:
    assert reading(ProviderHTTPResponse, data, method) == reading(http.client.HTTPResponse, data, method)


@settings(max_examples=400, deadline=None)
@given(data=answers())
def test_the_headers_handed_to_urllib3_are_the_dict_it_would_make_of_the_message(data: bytes) -> None:
    ours, stock = ProviderHTTPResponse(RecordedSocket(data), method="POST"), http.client.HTTPResponse(
        RecordedSocket(data), method="POST")
    try:
        stock.begin()
    except (http.client.HTTPException, ValueError):
        return  # an answer that does not read at all: the test above checks ours fails alike
    ours.begin()
    expected = HTTPHeaderDict(_normalize_header_values(stock.msg))  # what urllib3's getresponse builds
    assert list(ours.fields.items()) == list(expected.items())


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\r\n",
    b"ICY 200 OK\r\n\r\n",
    b"",
])
def test_limits_and_odd_answers_read_as_http_client_reads_them(data: bytes) -> None:
    assert reading(ProviderHTTPResponse, data) == reading(http.client.HTTPResponse, data)


def test_a_plain_answer_is_read_without_the_email_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the email package was asked")
    monkeypatch.setattr("email.parser.Parser.parsestr", refuse)
    framing, seen, body = reading(ProviderHTTPResponse, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                                        b"Content-Length: 2\r\nx-request-id:  req_1 \r\n\r\n{}")
    assert seen[0] == [("content-type", "application/json"), ("Content-Length", "2"), ("x-request-id", "req_1 ")]
    assert body == b"{}"


def test_a_connection_the_peer_closed_or_wrote_to_is_seen_at_once() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert closed_by_peer(ours) is False
        theirs.sendall(b"x")
        assert closed_by_peer(ours) is True
        ours.recv(1)
        assert closed_by_peer(ours) is False
        theirs.close()
        assert closed_by_peer(ours) is True
    finally:
        ours.close()


def one_answer_per_connection_server() -> tuple[socket.socket, list[int]]:
    """A server that answers one request per connection, then closes it without saying so first."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            with conn:
                received = b""
                while b"\r\n\r\n" not in received:
                    received += conn.recv(65536)
                head, _, rest = received.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    threading.Thread(target=serve, daemon=True).start()
    return listener, connections


def test_a_kept_alive_connection_the_provider_closed_is_replaced_not_failed() -> None:
    listener, connections = one_answer_per_connection_server()
    port = listener.getsockname()[1]
    client = ProviderClient(ProviderConfig(name="p", type="anthropic", base_url=f"http://127.0.0.1:{port}", api_key="k"))
    try:
        for _ in range(3):
            answer = client.post(f"http://127.0.0.1:{port}/v1/messages", b"{}", {"content-type": "application/json"},
                                 stream=False)
            assert client.read_body(answer) == b"{}"
            time.sleep(0.05)  # the server has closed the kept-alive connection by now
        assert len(connections) == 3
    finally:
        client.close()
        listener.close()
