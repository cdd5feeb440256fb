"""LengthBody: a Content-Length body read in large pieces, exactly to its end."""
from __future__ import annotations

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import Unreader

from loadbalancer.serving.request_body import RECEIVE_BYTES, LengthBody


class ScriptedSocket:
    """A socket whose recv hands out the given bytes, recording each size asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []

    def recv(self, size: int) -> bytes:
        self.asked.append(size)
        piece, self.data = self.data[:size], self.data[size:]
        return piece


class BufferedUnreader(Unreader):
    """What gunicorn's parser leaves: bytes read past the headers, then the socket."""

    def __init__(self, buffered: bytes, sock: ScriptedSocket) -> None:
        super().__init__()
        self.sock = sock
        if buffered:
            self.unread(buffered)

    def chunk(self) -> bytes:
        return self.sock.recv(8192)


def make_body(buffered: bytes, rest: bytes, length: int) -> tuple[LengthBody, BufferedUnreader, ScriptedSocket]:
    sock = ScriptedSocket(rest)
    unreader = BufferedUnreader(buffered, sock)
    return LengthBody(unreader, sock, length), unreader, sock


@pytest.mark.parametrize("buffered_part", [0, 1, 100, 5000])
def test_the_whole_body_comes_back_whatever_the_parser_buffered(buffered_part: int) -> None:
    payload = bytes(range(256)) * 2000  # 512,000 bytes
    body, _, _ = make_body(payload[:buffered_part], payload[buffered_part:], len(payload))
    assert body.read() == payload
    assert body.read() == b""


def test_large_bodies_are_received_in_large_reads() -> None:
    payload = b"x" * 600_000
    body, _, sock = make_body(b"", payload, len(payload))
    assert body.read() == payload
    assert max(sock.asked) == RECEIVE_BYTES
    assert len(sock.asked) <= 4  # gunicorn's reader made about 75 reads of 8 KiB for this


def test_a_pipelined_next_request_stays_with_the_parser() -> None:
    following = b"POST /v1/messages HTTP/1.1\r\n\r\n"
    body, unreader, sock = make_body(b"0123456789" + following, b"", 10)
    assert body.read() == b"0123456789"
    assert unreader.read() == following
    assert sock.asked == []  # nothing past the body was ever asked of the socket


def test_reads_of_a_given_size_never_pass_the_end_of_the_body() -> None:
    body, _, sock = make_body(b"abc", b"defghij" + b"NEXT REQUEST", 10)
    pieces = [body.read(4), body.read(4), body.read(4), body.read(4)]
    assert pieces == [b"abcd", b"efgh", b"ij", b""]
    assert sock.data == b"NEXT REQUEST"


def test_a_client_that_closes_early_gives_a_short_body() -> None:
    body, _, _ = make_body(b"abc", b"de", 10)
    assert body.read() == b"abcde"


def test_lines_and_iteration_as_wsgi_asks() -> None:
    body, _, _ = make_body(b"one\ntw", b"o\nthree", 13)
    assert body.readline() == b"one\n"
    assert body.readline(2) == b"tw"
    assert list(body) == [b"o\n", b"three"]


def test_it_replaces_only_a_content_length_reader() -> None:
    class Request:
        def __init__(self, reader: object) -> None:
            self.body = Body(reader)

    sock = ScriptedSocket(b"hello")
    with_length = Request(LengthReader(BufferedUnreader(b"", sock), 5))
    LengthBody.replacing(with_length, sock)
    assert isinstance(with_length.body, LengthBody) and with_length.body.read() == b"hello"

    other = Request(object())
    LengthBody.replacing(other, sock)
    assert isinstance(other.body, Body)
