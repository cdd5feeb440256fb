"""The SSE decoder: the same frames whatever the chunking and the line ends; fast paths agree with the full parse."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbalancer.sse import MAX_PENDING_BYTES, FrameTooLarge, SSEDecoder, SSEFrame, _parse_frame

ANTHROPIC = (b'event: message_start\ndata: {"type":"message_start"}\n\n'
             b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"a b"}}\n\n'
             b': a comment\n\n'
             b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
OPENAI = (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
          b'data:{"choices":[]}\n\n'
          b'id: 7\ndata: {"a":1}\ndata: {"b":2}\n\n'
          b'data: [DONE]\n\n')


def decoded(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    decoder = SSEDecoder()
    frames = [frame for chunk in chunks for frame in decoder.feed(chunk)] + decoder.finish()
    return [(frame.event, frame.data) for frame in frames]


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    return [stream[start:end] for start, end in zip(points, points[1:])]


EXPECTED = {
    ANTHROPIC: [("message_start", b'{"type":"message_start"}'),
                ("content_block_delta", b'{"type":"content_block_delta","delta":{"text":"a b"}}'),
                ("message_stop", b'{"type":"message_stop"}')],
    OPENAI: [("", b'{"choices":[{"delta":{"content":"hi"}}]}'), ("", b'{"choices":[]}'),
             ("", b'{"a":1}\n{"b":2}'), ("", b"[DONE]")],
}


@settings(max_examples=400, deadline=None)
@given(stream=st.sampled_from([ANTHROPIC, OPENAI]), line_end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
       cuts=st.lists(st.integers(0, 10 ** 6), max_size=12))
def test_frames_are_the_same_whatever_the_chunks_and_line_ends(stream: bytes, line_end: bytes, cuts: list[int]) -> None:
    written = stream.replace(b"\n", line_end)
    assert decoded(split(written, cuts)) == EXPECTED[stream]


def test_a_crlf_split_between_two_chunks_is_one_line_end() -> None:
    stream = ANTHROPIC.replace(b"\n", b"\r\n")
    cut = stream.index(b"\r\n") + 1  # between the CR and the LF of the first line
    assert decoded([stream[:cut], stream[cut:]]) == EXPECTED[ANTHROPIC]


def test_a_stream_ending_in_a_bare_cr_keeps_its_last_frame() -> None:
    assert decoded([b'data: {"x":1}\r']) == [("", b'{"x":1}')]


@pytest.mark.parametrize("raw", [
    b'event: ping\ndata: {"type": "ping"}\n\n',
    b'data: {"choices":[]}\n\n',
    b'data:  two spaces\n\n',
    b'data: \n\n',
])
def test_the_fast_paths_agree_with_the_full_parse(raw: bytes) -> None:
    fast = _parse_frame(raw)
    event, data = "", []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    assert fast == SSEFrame(event, b"\n".join(data), raw)


def test_a_frame_that_never_ends_is_refused_past_the_limit() -> None:
    decoder = SSEDecoder()
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"data: " + b"x" * (MAX_PENDING_BYTES + 1))
