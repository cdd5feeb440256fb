"""A provider connection writes and reads exactly what urllib3's own connection writes and reads.

`ProviderHTTPConnection` writes a request's head in one pass (a small body in the same write)
and hands urllib3 the header dict its answer read. Against urllib3's `HTTPConnection` on the
same input it must send the same bytes, refuse the same headers with the same error, and give
an answer with the same status, headers, framing and body.
"""
from __future__ import annotations

import http.client
import io
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection
from urllib3.util import SKIP_HEADER

from loadbalancer.providers.http_request import ONE_WRITE_BODY_BYTES
from loadbalancer.providers.transport import ProviderHTTPConnection


class RecordingSocket:
    """Records every write; answers reads with the bytes of one answer."""

    def __init__(self, answer: bytes = b"") -> None:
        self.writes: list[bytes] = []
        self.answer = answer

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def settimeout(self, seconds) -> None:
        pass

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.answer))

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass


def sent_by(connection_class: type, method: str, url: str, body, headers, chunked: bool = False,
            host: str = "api.example.test", port: int = 8080) -> tuple:
    """The bytes a connection wrote for one request and how many writes, or the error it raised."""
    connection = connection_class(host, port)
    connection.sock = RecordingSocket()
    try:
        connection.request(method, url, body=body, headers=headers, chunked=chunked)
    except (ValueError, UnicodeEncodeError) as err:
        return ("error", type(err).__name__, str(err))
    return b"".join(connection.sock.writes), len(connection.sock.writes)


header_names = st.sampled_from(["content-type", "x-api-key", "Authorization", "anthropic-version", "User-Agent",
                                "Host", "accept-encoding", "Accept", "X-Request-Id", "Transfer-Encoding",
                                "bad name", "colon:name", "", " lead", "naïve", "x-tab\tname"])
header_values = st.one_of(
    st.sampled_from(["application/json", "Bearer sk-abc", "2023-06-01", "gzip", "caf\xe9", "", " spaced ",
                     "a\r\nInjected: yes", "folded\r\n continued", "bare\rcr", "line\nbreak", SKIP_HEADER]),
    st.integers(0, 10 ** 6), st.binary(max_size=12))
bodies = st.one_of(st.none(), st.binary(max_size=64), st.just(b"{}" * (ONE_WRITE_BODY_BYTES // 2)),
                   st.just(b"x" * (ONE_WRITE_BODY_BYTES + 1)), st.text(max_size=8))


@st.composite
def requests_to_send(draw) -> tuple:
    headers = CaseInsensitiveDict()
    for _ in range(draw(st.integers(0, 6))):
        headers[draw(header_names)] = draw(header_values)
    body = draw(bodies)
    if body is not None and draw(st.integers(0, 4)) > 0:
        headers["content-length"] = str(len(body))  # how ProviderClient always sends a body
    return draw(st.sampled_from(["POST", "GET"])), draw(st.sampled_from(["/v1/messages", "/v1?beta=true"])), \
        body, headers, draw(st.sampled_from([False, False, False, True]))


@settings(max_examples=800, deadline=None)
@given(request=requests_to_send())
def test_a_request_is_written_as_urllib3_writes_it(request: tuple) -> None:
    ours, theirs = sent_by(ProviderHTTPConnection, *request), sent_by(HTTPConnection, *request)
    if ours[0] == "error" or theirs[0] == "error":
        assert ours == theirs
    else:
        assert ours[0] == theirs[0]  # byte for byte; only the number of writes may differ


def test_a_small_body_goes_out_with_its_head_and_a_large_one_on_its_own() -> None:
    headers = CaseInsensitiveDict({"content-type": "application/json", "x-api-key": "k"})
    small, large = b'{"model":"m"}', b"x" * (ONE_WRITE_BODY_BYTES + 1)
    for body, writes in ((small, 1), (b"", 1), (large, 2)):
        headers["content-length"] = str(len(body))
        data, count = sent_by(ProviderHTTPConnection, "POST", "/v1/messages", body, headers)
        assert count == writes and data.endswith(b"\r\n\r\n" + body)
        assert data.startswith(b"POST /v1/messages HTTP/1.1\r\nHost: api.example.test:8080\r\n"
                               b"Accept-Encoding: identity\r\nUser-Agent: python-urllib3/")


@pytest.mark.parametrize("name, value", [
    ("x-api-key", "sk-1\r\nX-Injected: 1"), ("x-api-key", "sk-1\nX-Injected: 1"), (" leading-blank", "v"),
    ("colon:name", "v"), ("x-trace", SKIP_HEADER), ("", "v"),
])
def test_a_header_that_could_split_the_request_is_refused_and_nothing_is_sent(name: str, value: str) -> None:
    connection = ProviderHTTPConnection("api.example.test", 443)
    connection.sock = RecordingSocket()
    with pytest.raises(ValueError):
        connection.request("POST", "/v1/messages", body=b"{}",
                           headers=CaseInsensitiveDict({name: value, "content-length": "2"}))
    assert connection.sock.writes == []


def answered(connection_class: type, answer: bytes) -> tuple:
    """What urllib3's answer object shows after one request on a connection of this class."""
    connection = connection_class("api.example.test", 8080)
    connection.sock = RecordingSocket(answer)
    connection.request("POST", "/v1/messages", body=b"{}",
                       headers=CaseInsensitiveDict({"content-length": "2"}), preload_content=False)
    response = connection.getresponse()
    seen = (response.status, response.reason, response.version, response.version_string,
            list(response.headers.items()), response.length_remaining, response.chunked)
    try:
        body = response.read()
    except Exception as err:  # noqa: BLE001 - the same error is what is compared
        body = ("error", type(err).__name__)
    return seen, body, type(response.headers)


answer_lines = st.sampled_from([
    "Content-Type: application/json\r\n", "content-length: 5\r\n", "Transfer-Encoding: chunked\r\n",
    "X-Request-Id: req_1\r\n", "Set-Cookie: a=1\r\n", "Set-Cookie: b=2\r\n", "Retry-After:  7 \r\n",
    "X-Folded: one\r\n two\r\n", "X-Latin: caf\xe9\r\n", "Connection: close\r\n", "bad name: x\r\n",
    "X-Cr: a\rb\r\n", "Content-Length: 5\r\n"])


@settings(max_examples=400, deadline=None)
@given(status=st.sampled_from(["200 OK", "429 Too Many Requests", "204 No Content", "500 "]),
       lines=st.lists(answer_lines, max_size=7))
def test_an_answer_reads_as_urllib3_reads_it(status: str, lines: list[str]) -> None:
    head = f"HTTP/1.1 {status}\r\n{''.join(lines)}\r\n"
    body = "5\r\nhello\r\n0\r\n\r\n" if any("chunked" in line for line in lines) else "hello"
    answer = (head + body).encode("latin-1")
    ours, theirs = answered(ProviderHTTPConnection, answer), answered(HTTPConnection, answer)
    assert ours[:2] == theirs[:2]
    assert ours[2] is HTTPHeaderDict


def test_defects_of_an_unusual_header_block_are_logged_with_the_host_not_the_url(caplog) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n: no name\r\n\r\n{}"
    with caplog.at_level(logging.WARNING):
        seen, body, _ = answered(ProviderHTTPConnection, answer)
    assert body == b"{}" and seen[0] == 200
    warnings = [record.getMessage() for record in caplog.records if "did not parse" in record.getMessage()]
    assert warnings and "api.example.test" in warnings[0] and "/v1/messages" not in warnings[0]


class StandardAnswerConnection(ProviderHTTPConnection):
    response_class = http.client.HTTPResponse


def test_a_connection_with_http_clients_answer_class_still_reads_headers_as_urllib3_does() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
              b"Content-Length: 2\r\n\r\n{}")
    ours, theirs = answered(StandardAnswerConnection, answer), answered(HTTPConnection, answer)
    assert ours[:2] == theirs[:2] and ("X-Folded", "one two") in ours[0][4]
