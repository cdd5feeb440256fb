"""The OpenAI front doors never cut a stream or answer 500 when a provider's Anthropic answer has
a shape their translation cannot read: the client gets an error chunk (chat completions) or
`error` + `response.failed` (Responses), and a non-stream answer a JSON 502.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from support.fake_backend import FakeBackend, encode_sse
from support.hostile_behaviours import RawStream
from support.inprocess import build_service
from support.lb_process import anthropic_provider

pytestmark = pytest.mark.integration

ROUTING = {"affinity": False, "wait_for_cooldown": 0}

# Shapes an Anthropic provider's own checks let through (its raw stream path forwards what it
# does not need) and only a front door's translation trips over: an index that is a list, a
# stop_reason that is a list, a text that is a number.
ODD_STREAM = (
    encode_sse({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
        "usage": {"input_tokens": 3, "output_tokens": 0}}}),
    encode_sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    encode_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
    encode_sse({"type": "content_block_stop", "index": []}),
    encode_sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
    encode_sse({"type": "message_stop"}),
)
ODD_MESSAGES = {
    "/v1/chat/completions": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                             "content": [{"type": "text", "text": 5}], "stop_reason": "end_turn"},
    "/v1/responses": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                      "content": [{"type": "text", "text": "hi"}], "stop_reason": []},
}


@pytest.fixture
def service(fake_backend: Callable[..., FakeBackend], tmp_path: Path):
    """One Anthropic provider; each test says what it answers."""
    backend = fake_backend()
    built = build_service(tmp_path, anthropic_provider("only", backend.url), routing=ROUTING)
    built.backend = backend
    return built


def _sse_data(body: bytes) -> list[dict]:
    """The JSON of every `data:` line of an SSE body ([DONE] left out)."""
    return [json.loads(line[len("data: "):]) for line in body.decode().splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def test_responses_stream_ends_with_error_and_response_failed(service) -> None:
    service.backend.queue(RawStream(ODD_STREAM))
    response = service.client.post("/v1/responses", json={"model": "m", "stream": True, "input": "hi"})
    assert response.status_code == 200
    events = _sse_data(response.get_data())
    assert [event["type"] for event in events[-2:]] == ["error", "response.failed"]
    assert "could not be translated" in events[-2]["message"]
    assert service.leftover_state() == {}


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/responses", {"model": "m", "input": "hi"}),
])
def test_a_non_stream_answer_that_cannot_be_translated_is_a_json_502(service, path: str, body: dict) -> None:
    service.backend.queue(lambda exchange: exchange.send_json(200, ODD_MESSAGES[path]))
    response = service.client.post(path, json=body)
    assert response.status_code == 502
    assert "could not be translated" in response.get_json()["error"]["message"]


def test_a_responses_body_nested_too_deep_to_re_encode_is_a_400(service) -> None:
    nested: dict = {"type": "string"}
    for _ in range(300):  # orjson reads 1024 levels but writes only 254
        nested = {"type": "object", "properties": {"a": nested}}
    response = service.client.post("/v1/responses", json={
        "model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": nested}]})
    assert response.status_code == 400
    assert "nested" in response.get_json()["error"]["message"]
