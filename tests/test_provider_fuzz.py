"""Whatever a provider answers, the client gets a clean answer and no state is left behind.

Property-based, with hypothesis: a fake provider (either type) answers arbitrary JSON, valid
answers with one field replaced by anything, arbitrary bytes, or streams of valid, mutated,
foreign and garbage frames; clients of both front doors ask with and without streaming and
tools. Every answer must be JSON (an error in the front door's shape) or well-framed SSE that
ends properly, never the load balancer's own 500, and no provider may be left counting a
request in flight or holding a half-open trial. `FUZZ_EXAMPLES=2000` runs it deeper.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fake_backend import FakeBackend, Status
from support.hostile_behaviours import RawStream
from support.inprocess import InProcessService, build_service
from support.lb_process import anthropic_provider, openai_provider
from support.sse_validation import read_frames

pytestmark = pytest.mark.integration

FUZZ_SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Every failure trips the circuit and the next request is its half-open trial; no waiting.
ROUTING = {"affinity": False, "cooldown": 0, "max_cooldown": 0, "wait_for_cooldown": 0,
           "failure_threshold": 1, "max_attempts": 1}
TIMEOUT = {"connect": 2, "read": 5, "idle": 2}
TOOLS = [{"name": "read_file", "description": "Read a file",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]
INTERNAL_ERROR = "internal error in the load balancer"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

MESSAGE = {"id": "msg_f", "type": "message", "role": "assistant", "model": "claude-test-1",
           "content": [{"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                                         "input": {"path": "a"}}],
           "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
COMPLETION = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {
                  "role": "assistant", "content": "Hi", "tool_calls": [
                      {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]}}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "read_file",
                                                                  "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
]
OPENAI_CHUNKS = [
    {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
    {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]}}]},
    {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 1}},
]


def mutated(template: dict) -> st.SearchStrategy[dict]:
    """The template with one top-level or second-level member replaced by anything, or removed."""
    def mutate(path: list[str], value: Any, remove: bool) -> dict:
        copy = json.loads(json.dumps(template))
        target = copy
        for key in path[:-1]:
            target = target[key] if isinstance(target.get(key), dict) else target
        if remove:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
        return copy
    paths = [[key] for key in template] + [[key, inner] for key, value in template.items() if isinstance(value, dict)
                                          for inner in value]
    return st.builds(mutate, st.sampled_from(paths), json_values, st.booleans())


def anthropic_frame(event: dict) -> bytes:
    return f"event: {event.get('type') if isinstance(event.get('type'), str) else 'x'}\ndata: ".encode() \
        + json.dumps(event).encode() + b"\n\n"


def openai_frame(chunk: Any) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


anthropic_frames = st.one_of(
    st.sampled_from(ANTHROPIC_EVENTS).map(anthropic_frame),
    st.sampled_from(ANTHROPIC_EVENTS).flatmap(mutated).map(anthropic_frame),
    st.builds(lambda name, data: f"event: {name}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n",
              st.sampled_from(["message_start", "content_block_delta", "message_delta", "error", "foo"]), json_values),
    st.binary(max_size=60).map(lambda junk: junk + b"\n\n"),
)
openai_frames = st.one_of(
    st.sampled_from(OPENAI_CHUNKS).map(openai_frame),
    st.sampled_from(OPENAI_CHUNKS).flatmap(mutated).map(openai_frame),
    json_values.map(openai_frame),
    st.just(b"data: [DONE]\n\n"),
    st.binary(max_size=60).map(lambda junk: junk + b"\n\n"),
)


def stream_answers(frames: st.SearchStrategy[bytes], valid: list[bytes]) -> st.SearchStrategy[RawStream]:
    """Streams that start valid, then carry generated frames (so failures come before and after content)."""
    return st.builds(lambda prefix, rest: RawStream(tuple(valid[:prefix]) + tuple(rest)),
                     st.integers(0, len(valid)), st.lists(frames, max_size=8))


def message_answers(template: dict) -> st.SearchStrategy[Status]:
    bodies = st.one_of(mutated(template).map(json.dumps).map(str.encode), json_values.map(json.dumps).map(str.encode),
                       st.binary(max_size=80))
    codes = st.sampled_from([200] * 6 + [301, 400, 401, 404, 429, 500, 529])
    return st.builds(lambda code, body: Status(code, body=body), codes, bodies)


ANSWERS = {
    "anthropic": st.one_of(message_answers(MESSAGE), stream_answers(
        anthropic_frames, [anthropic_frame(event) for event in ANTHROPIC_EVENTS])),
    "openai": st.one_of(message_answers(COMPLETION), stream_answers(
        openai_frames, [openai_frame(chunk) for chunk in OPENAI_CHUNKS] + [b"data: [DONE]\n\n"])),
}


@pytest.fixture(params=["anthropic", "openai"])
def fuzzed(request: pytest.FixtureRequest, fake_backend: Callable[..., FakeBackend],
           tmp_path: Path) -> tuple[str, FakeBackend, InProcessService]:
    """(provider type, its fake backend, the service in front of it alone)."""
    provider_type = request.param
    backend = fake_backend(dialect=provider_type)
    make = openai_provider if provider_type == "openai" else anthropic_provider
    service = build_service(tmp_path, make("fuzzed", backend.url, timeout=TIMEOUT), routing=ROUTING)
    return provider_type, backend, service


@FUZZ_SETTINGS
@given(data=st.data(), front=st.sampled_from(["anthropic", "openai"]), stream=st.booleans(), tools=st.booleans())
def test_any_provider_answer_gives_the_client_a_clean_answer_and_leaves_no_state(
        fuzzed: tuple[str, FakeBackend, InProcessService], data: st.DataObject, front: str, stream: bool,
        tools: bool) -> None:
    provider_type, backend, service = fuzzed
    answer = data.draw(ANSWERS[provider_type], label="answer")
    backend.set_default(answer)
    response = ask(service, front, stream, tools)
    raw = response.get_data()
    check_answer(front, response.status_code, response.headers["content-type"], raw, answer)
    assert service.leftover_state() == {}


def ask(service: InProcessService, front: str, stream: bool, tools: bool) -> Any:
    body: dict[str, Any] = {"model": "claude-test-1", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if front == "openai":
        if tools:
            body["tools"] = [{"type": "function", "function": {"name": tool["name"], "parameters": tool["input_schema"]}}
                             for tool in TOOLS]
        return service.client.post("/v1/chat/completions", json=body)
    return service.client.post("/v1/messages", json={**body, "max_tokens": 16, **({"tools": TOOLS} if tools else {})})


def check_answer(front: str, status: int, content_type: str, raw: bytes, answer: Any) -> None:
    """JSON with the right error shape, or SSE that ends with a stop, an error or [DONE]."""
    text = raw.decode("utf-8", "replace")
    assert INTERNAL_ERROR not in text, text[:500]
    upstream_status = answer.code if isinstance(answer, Status) else 200
    assert status != 500 or upstream_status == 500, text[:500]
    assert 200 <= status < 300 or status >= 400, f"{status} is no answer for a client"
    if content_type.startswith("text/event-stream"):
        assert status == 200
        frames = read_frames(raw)
        assert frames, text[:500]
        if front == "openai":
            assert frames[-1].data == "[DONE]", text[-500:]
        else:
            events = {frame.event for frame in frames}
            assert "message_stop" in events or frames[-1].event == "error", text[-500:]
        return
    body = json.loads(raw)
    if status >= 400:
        error = body["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert front == "openai" or body["type"] == "error"
