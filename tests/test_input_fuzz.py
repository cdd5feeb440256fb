"""Bad input of every kind gets a 4xx JSON error, never a 500: property-based, with hypothesis."""
from __future__ import annotations

import json
import os
import re
from typing import Any

import orjson
import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import LimitsConfig
from loadbalancer.errors import LoadBalancerError
from loadbalancer.client_request import parse_messages_request
from support.lb_process import anthropic_provider, providers_config

PROVIDER_URL = "http://127.0.0.1:1"
SMALL_LIMITS = LimitsConfig(max_body_bytes=4096, max_messages=5, max_header_bytes=4096)
# Moderate by default for suite speed; FUZZ_EXAMPLES=2000 for a deeper run.
FUZZ_SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VALID_BODY = {"model": "claude-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE_FIELDS = ("model", "max_tokens", "messages", "stream", "system", "tools", "thinking",
                  "metadata", "temperature", "tool_choice", "stop_sequences")
UPSTREAM_ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                   "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                   "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
# A valid body with one field replaced by anything, or removed.
mutated_bodies = st.builds(
    lambda field, value, drop: {k: v for k, v in {**VALID_BODY, field: value}.items() if not (drop and k == field)},
    st.sampled_from(MESSAGE_FIELDS), json_values, st.booleans())
# Messages lists whose items have wrong shapes.
mutated_messages = st.builds(lambda messages: {**VALID_BODY, "messages": messages},
                             st.lists(st.dictionaries(st.sampled_from(["role", "content", "tool_calls", "x"]), json_values,
                                                      max_size=3) | json_values, max_size=7))


def deeply_nested(depth: int) -> bytes:
    """A body whose `messages` content nests `depth` arrays deep."""
    return b'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":' + b"[" * depth + b"]" * depth + b"}]}"


def encode(value: Any) -> bytes:
    """JSON bytes via the standard library: huge integers and Infinity pass through as sent."""
    return json.dumps(value).encode()


raw_bodies = st.one_of(
    st.binary(max_size=300),                                     # anything, invalid UTF-8 included
    json_values.map(encode),                                     # any JSON value
    mutated_bodies.map(encode),
    mutated_messages.map(encode),
    st.integers(min_value=1, max_value=5000).map(deeply_nested),
    st.binary(min_size=1, max_size=40).map(lambda junk: orjson.dumps(VALID_BODY)[:-1] + junk),
)


@FUZZ_SETTINGS
@given(raw=raw_bodies)
def test_parse_messages_request_accepts_or_raises_a_client_error(raw: bytes) -> None:
    try:
        parsed = parse_messages_request(raw, SMALL_LIMITS)
    except LoadBalancerError as err:
        assert 400 <= err.status < 500
        assert err.body()["type"] == "error" and err.body()["error"]["message"]
        return
    assert isinstance(parsed.model, str) and parsed.model.strip()
    assert isinstance(parsed.body["messages"], list) and 0 < len(parsed.body["messages"]) <= 5


@pytest.fixture
def providers_data() -> dict[str, Any]:
    """A provider `responses` answers for, with small limits so size errors are reachable."""
    return providers_config(anthropic_provider("primary", PROVIDER_URL),
                            limits={"max_body_bytes": 4096, "max_messages": 5, "max_header_bytes": 4096})


def sse(events: list[dict]) -> str:
    """Anthropic SSE frames for `events`."""
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


UPSTREAM_STREAM = sse([
    {"type": "message_start", "message": {**UPSTREAM_ANSWER, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 1}},
    {"type": "message_stop"},
])


def answer_like_a_provider(request: Any) -> tuple[int, dict, str]:
    """A well-formed answer: a stream when the forwarded body asks for one, else a message."""
    if orjson.loads(request.body).get("stream") is True:
        return 200, {"content-type": "text/event-stream"}, UPSTREAM_STREAM
    return 200, {"content-type": "application/json"}, json.dumps(UPSTREAM_ANSWER)


@pytest.fixture
def mocked_provider() -> Any:
    """The provider answers every messages request well (a 200, a stream or a token count)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, f"{PROVIDER_URL}/v1/messages", callback=answer_like_a_provider)
        mock.post(f"{PROVIDER_URL}/v1/messages/count_tokens", json={"input_tokens": 3})
        yield mock


def assert_client_error_or_success(reply: Any) -> None:
    """Below 500; an error is Anthropic- or OpenAI-shaped JSON; never a traceback."""
    assert reply.status_code < 500, reply.get_data(as_text=True)[:500]
    text = reply.get_data(as_text=True)
    assert "Traceback" not in text
    if reply.status_code >= 400:
        body = json.loads(text)
        assert body.get("type") == "error" or "error" in body
        assert body["error"]["type"] and body["error"]["message"]


content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", "application/xml", "image/png",
                                 "application/json; charset=latin-1", "", "garbage/../type"])
post_paths = st.sampled_from(["/", "/v1", "/v1/messages", "/v1/messages/count_tokens",
                              "/v1/chat/completions", "/chat/completions"])


@FUZZ_SETTINGS
@given(raw=raw_bodies, path=post_paths, content_type=content_types)
def test_every_post_endpoint_answers_generated_bodies_with_json_below_500(
        client: Any, mocked_provider: Any, raw: bytes, path: str, content_type: str) -> None:
    reply = client.post(path, data=raw, headers={"content-type": content_type} if content_type else {})
    assert_client_error_or_success(reply)


@FUZZ_SETTINGS
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
       segments=st.lists(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF,
                                                         exclude_characters="?#%/"), min_size=1, max_size=12),
                         min_size=1, max_size=4))
def test_random_paths_and_methods_get_json_errors(client: Any, mocked_provider: Any, method: str,
                                                 segments: list[str]) -> None:
    # Segments, not a free string: a leading "//" would make the test client treat it as a host.
    reply = client.open("/" + "/".join(segments), method=method, data=orjson.dumps(VALID_BODY),
                        headers={"content-type": "application/json"})
    if method == "HEAD":
        assert reply.status_code < 500
        return
    if reply.status_code < 400:
        return  # a real endpoint (GET /, /health, /metrics, ...) or the Messages API itself
    assert_client_error_or_success(reply)


@FUZZ_SETTINGS
@given(body=mutated_bodies | mutated_messages)
def test_openai_front_door_answers_wrong_types_with_openai_shaped_errors(
        client: Any, mocked_provider: Any, body: dict) -> None:
    chat = {"model": body.get("model"), "max_tokens": body.get("max_tokens"), "messages": body.get("messages"),
            "stream": body.get("stream", False), "tools": body.get("tools")}
    reply = client.post("/v1/chat/completions", data=encode(chat), headers={"content-type": "application/json"})
    assert_client_error_or_success(reply)


@pytest.mark.parametrize(("headers", "status"), [
    ({"x-padding": "a" * 5000}, 413),
    ({f"x-many-{number}": "b" * 100 for number in range(60)}, 413),
    ({"x-padding": "a" * 100}, 200),
])
def test_header_size_limit_answers_json_413(client: Any, mocked_provider: Any, headers: dict, status: int) -> None:
    reply = client.post("/v1/messages", json=VALID_BODY, headers=headers)
    assert reply.status_code == status
    if status == 413:
        assert reply.get_json()["error"]["type"] == "request_too_large"
        assert re.search(r"headers are \d+ bytes; the limit is 4096", reply.get_json()["error"]["message"])


@pytest.mark.parametrize(("body", "status", "needle"), [
    (orjson.dumps({**VALID_BODY, "padding": "x" * 5000}), 413, "limit is 4096 bytes"),
    (orjson.dumps({**VALID_BODY, "messages": [{"role": "user", "content": "a"}] * 6}), 413, "limit is 5"),
    (b"\xff\xfe{not json", 400, "not valid JSON"),
    (deeply_nested(100_000)[:4000], 400, "not valid JSON"),
])
def test_size_and_shape_limits_answer_clear_errors(client: Any, mocked_provider: Any, body: bytes,
                                                   status: int, needle: str) -> None:
    reply = client.post("/v1/messages", data=body, headers={"content-type": "application/json"})
    assert reply.status_code == status
    assert needle in reply.get_json()["error"]["message"]
