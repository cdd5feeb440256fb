"""Bedrock's event streams: the AWS event-stream codec and the pipeline that unwraps it.

The frames are built by the same encoder the fake Bedrock uses and, independently, checked
against botocore's own event-stream parser, so a CRC or length slip on either side shows.
"""
from __future__ import annotations

import json
import random
import struct
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer

from loadbalancer.errors import UpstreamBadResponse, UpstreamStreamBroken
from loadbalancer.providers.aws_eventstream import (ChecksumMismatch, EventStreamDecoder, FrameTooLarge,
                                                    MalformedFrame, TruncatedStream, encode_message)
from loadbalancer.providers.bedrock_stream import (BedrockStreamException, BedrockStreamPipeline,
                                                   bedrock_error, error_from_response)
from loadbalancer.sse import SSEDecoder
from loadbalancer.toolcalls.rewrite import ToolCallStreamRewriter
from support.fake_bedrock import encode_chunk, encode_exception
from support.fake_behaviours import AnthropicStream

EVENTS = AnthropicStream(text_chunks=("Hel", "lo, ", "world")).events("anthropic.claude-test")
EVENTS[-1] = {**EVENTS[-1], "amazon-bedrock-invocationMetrics": {"inputTokenCount": 10, "outputTokenCount": 5}}
STREAM = b"".join(encode_chunk(event) for event in EVENTS)
TOOLS = ({"name": "read_file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                                "required": ["path"]}},)


def client_events(frames: list[bytes]) -> list[dict]:
    """The Anthropic events a client reads from the pipeline's frames."""
    return [json.loads(frame.data) for frame in SSEDecoder().feed(b"".join(frames))]


def run_pipeline(pipeline: BedrockStreamPipeline, pieces: list[bytes]) -> list[bytes]:
    """Feed the pieces, end the stream; the frames for the client."""
    out = [frame.data for piece in pieces for frame in pipeline.feed(piece)]
    return out + [frame.data for frame in pipeline.end()]


def cuts(data: bytes, *positions: int) -> list[bytes]:
    """`data` cut at the given positions."""
    bounds = [0, *positions, len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:])]


# --- the codec --------------------------------------------------------------------------

def test_botocore_reads_our_frames_as_bedrocks() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(STREAM + encode_exception("throttlingException", "slow down"))
    messages = list(buffer)
    assert [message.headers[":message-type"] for message in messages] == ["event"] * len(EVENTS) + ["exception"]
    assert messages[-1].headers[":exception-type"] == "throttlingException"
    assert json.loads(messages[-1].payload) == {"message": "slow down"}


def test_every_header_type_round_trips() -> None:
    headers = {"yes": True, "no": False, "small": 7, "big": 2 ** 40, "text": "héllo", "blob": b"\x00\xff"}
    (message,) = EventStreamDecoder().feed(encode_message(headers, b"payload"))
    assert message.headers == headers and message.payload == b"payload"


@pytest.mark.parametrize("cut", range(1, len(encode_chunk(EVENTS[0]))))
def test_a_frame_cut_at_any_byte_decodes_the_same(cut: int) -> None:
    frame = encode_chunk(EVENTS[0])
    decoder = EventStreamDecoder()
    assert decoder.feed(frame[:cut]) == []
    assert decoder.pending_bytes == cut
    (message,) = decoder.feed(frame[cut:])
    assert message.event_type == "chunk"
    decoder.finish()


@pytest.mark.parametrize("position, error", [
    (2, ChecksumMismatch),    # inside the prelude: its CRC no longer matches
    (20, ChecksumMismatch),   # inside the headers: the message CRC no longer matches
    (-10, ChecksumMismatch),  # inside the payload
    (-1, ChecksumMismatch),   # the message CRC itself
])
def test_a_flipped_bit_anywhere_is_a_checksum_error(position: int, error: type) -> None:
    frame = bytearray(encode_chunk(EVENTS[0]))
    frame[position] ^= 0x01
    with pytest.raises(error):
        EventStreamDecoder().feed(bytes(frame))


def test_lengths_that_lie_are_refused_even_with_a_good_prelude_crc() -> None:
    def prelude(total: int, headers: int) -> bytes:
        lengths = struct.pack("!II", total, headers)
        return lengths + struct.pack("!I", zlib.crc32(lengths))
    with pytest.raises(MalformedFrame):
        EventStreamDecoder().feed(prelude(15, 0))
    with pytest.raises(MalformedFrame):
        EventStreamDecoder().feed(prelude(100, 90))
    with pytest.raises(FrameTooLarge):
        EventStreamDecoder().feed(prelude(64 * 1024 * 1024, 0))


def test_a_broken_decoder_stays_broken_and_a_cut_stream_is_truncated() -> None:
    decoder = EventStreamDecoder()
    with pytest.raises(ChecksumMismatch):
        decoder.feed(b"\x00" * 12)
    with pytest.raises(ChecksumMismatch):
        decoder.feed(STREAM)
    cut_off = EventStreamDecoder()
    cut_off.feed(STREAM[:-3])
    with pytest.raises(TruncatedStream):
        cut_off.finish()


# --- the pipeline -----------------------------------------------------------------------

def test_the_client_gets_the_anthropic_events_without_bedrocks_metrics() -> None:
    events = client_events(run_pipeline(BedrockStreamPipeline("bedrock"), [STREAM]))
    assert events[:-1] == EVENTS[:-1]
    assert events[-1] == {"type": "message_stop"}


def test_usage_comes_from_the_carried_events() -> None:
    pipeline = BedrockStreamPipeline("bedrock")
    run_pipeline(pipeline, [STREAM])
    assert (pipeline.usage.input_tokens, pipeline.usage.output_tokens) == (10, 5)


@pytest.mark.parametrize("cut", range(1, len(STREAM), 7))
def test_any_single_cut_gives_the_same_events(cut: int) -> None:
    whole = client_events(run_pipeline(BedrockStreamPipeline("bedrock"), [STREAM]))
    assert client_events(run_pipeline(BedrockStreamPipeline("bedrock"), cuts(STREAM, cut))) == whole


def test_random_cuts_give_the_same_events_and_the_first_content_is_marked() -> None:
    whole = client_events(run_pipeline(BedrockStreamPipeline("bedrock"), [STREAM]))
    randomness = random.Random(1531)
    for _ in range(50):
        positions = sorted(randomness.sample(range(1, len(STREAM)), 12))
        pipeline = BedrockStreamPipeline("bedrock")
        frames = [frame for piece in cuts(STREAM, *positions) for frame in pipeline.feed(piece)]
        first_content = next(i for i, frame in enumerate(frames) if frame.content)
        assert json.loads(frames[first_content].data.split(b"data: ", 1)[1])["type"] == "content_block_start"
        assert client_events([frame.data for frame in frames] + [f.data for f in pipeline.end()]) == whole


def test_text_tool_calls_are_rewritten_as_for_an_anthropic_provider() -> None:
    events = AnthropicStream(text_chunks=('<tool_call>{"name": "read_file", ', '"arguments": {"path": "a.py"}}',
                                          "</tool_call>")).events("m")
    stream = b"".join(encode_chunk(event) for event in events)
    pipeline = BedrockStreamPipeline("bedrock", ToolCallStreamRewriter(TOOLS, "auto"))
    out = client_events(run_pipeline(pipeline, cuts(stream, 100, 555, 901)))
    starts = [event["content_block"] for event in out if event["type"] == "content_block_start"]
    assert [block["type"] for block in starts] == ["tool_use"] and starts[0]["name"] == "read_file"
    assert pipeline.tool_call_stats.parsed == 1


def test_an_exception_before_content_fails_the_attempt_with_its_retryability() -> None:
    stream = encode_chunk(EVENTS[0]) + encode_exception("throttlingException", "Too many tokens")
    pipeline = BedrockStreamPipeline("bedrock")
    with pytest.raises(BedrockStreamException) as caught:
        run_pipeline(pipeline, [stream])
    assert caught.value.retryable and caught.value.status == 429
    assert caught.value.error == {"type": "rate_limit_error", "message": "ThrottlingException: Too many tokens"}


def test_an_exception_in_the_same_chunk_as_content_comes_after_that_content() -> None:
    content = b"".join(encode_chunk(event) for event in EVENTS[:4])
    pipeline = BedrockStreamPipeline("bedrock")
    frames = pipeline.feed(content + encode_exception("modelStreamErrorException", "model failed"))
    assert [json.loads(f.data.split(b"data: ", 1)[1])["type"] for f in frames][-1] == "content_block_delta"
    with pytest.raises(BedrockStreamException) as caught:
        pipeline.end()
    assert caught.value.retryable
    closing = client_events(pipeline.close_after_failure("api_error", caught.value.error["message"]))
    assert closing == [{"type": "content_block_stop", "index": 0},
                       {"type": "error", "error": {"type": "api_error",
                                                 "message": "ModelStreamErrorException: model failed"}}]


def test_a_validation_exception_in_the_stream_is_not_retryable() -> None:
    with pytest.raises(BedrockStreamException) as caught:
        BedrockStreamPipeline("bedrock").feed(encode_exception("validationException", "bad input"))
    assert not caught.value.retryable and caught.value.status == 400
    assert caught.value.error["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream, error", [
    (STREAM[:-5], UpstreamStreamBroken),                      # cut inside the last frame
    (b"".join(encode_chunk(e) for e in EVENTS[:-1]), UpstreamStreamBroken),  # no message_stop
    (encode_message({":message-type": "event", ":event-type": "chunk"}, b'{"bytes": "%%%"}'),
     UpstreamBadResponse),                                    # not base64
    (encode_message({":message-type": "event", ":event-type": "chunk"}, b'{"bytes": "eyJ0eXBlIjogIngKeSJ9"}'),
     UpstreamBadResponse),                                    # an event type with a newline in it
    (b"\x00\x00\x00\x10" + b"\x00" * 12, UpstreamBadResponse),  # garbage
])
def test_a_broken_or_false_stream_is_an_upstream_failure(stream: bytes, error: type) -> None:
    with pytest.raises(error):
        run_pipeline(BedrockStreamPipeline("bedrock"), [stream])


def test_frames_of_other_event_types_are_skipped() -> None:
    other = encode_message({":message-type": "event", ":event-type": "initial-response"}, b"{}")
    assert client_events(run_pipeline(BedrockStreamPipeline("bedrock"), [other + STREAM]))[0] == EVENTS[0]


# --- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("status, header, retryable, refuses, anthropic_type", [
    (429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", True, False, "rate_limit_error"),
    (503, "ServiceUnavailableException", True, False, "overloaded_error"),
    (429, "ModelNotReadyException", True, False, "rate_limit_error"),
    (408, "ModelTimeoutException", True, False, "timeout_error"),
    (424, "ModelErrorException", True, False, "api_error"),
    (400, "ServiceQuotaExceededException", True, False, "rate_limit_error"),
    (400, "ValidationException", False, False, "invalid_request_error"),
    (404, "ResourceNotFoundException", False, False, "not_found_error"),
    (403, "AccessDeniedException", False, True, "permission_error"),
    (403, "UnrecognizedClientException", False, True, "permission_error"),
    (403, "ExpiredTokenException", False, True, "permission_error"),
    (502, "", True, False, "api_error"),
])
def test_error_answers_are_read_like_botocore_reads_them(status: int, header: str, retryable: bool,
                                                         refuses: bool, anthropic_type: str) -> None:
    headers = {"X-Amzn-ErrorType": header} if header else {}
    error = error_from_response(status, headers, b'{"message": "details"}')
    assert (error.retryable, error.refuses_credentials, error.anthropic_type) == (retryable, refuses, anthropic_type)
    assert error.anthropic_body()["error"]["message"].endswith("details")


def test_an_error_code_in_the_body_counts_when_the_header_is_missing() -> None:
    error = error_from_response(400, {}, b'{"__type": "com.amazon#ValidationException", "Message": "bad"}')
    assert error.code == "validationException" and error.message == "bad" and not error.retryable


def test_an_unknown_code_is_judged_by_its_status() -> None:
    assert bedrock_error("SomethingNewException", "", 500).retryable
    assert not bedrock_error("SomethingNewException", "", 400).retryable
    assert bedrock_error("SomethingNewException", "", 403).refuses_credentials
