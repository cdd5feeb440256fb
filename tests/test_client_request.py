"""Reading a Messages body once, with simdjson, gives exactly what reading it whole gives.

`parse_messages_request` reads a large body with simdjson (fields taken, nothing else
built) and a small one, or one a front door built already, as a dict. Both readings must
agree on every field and on every refusal, for any body: checked with hypothesis over bodies
of every shape, with the simdjson reading forced for every size.
"""
from __future__ import annotations

import json
import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadbalancer import client_request
from loadbalancer.client_request import MessagesRequest, parse_messages_request
from loadbalancer.errors import LoadBalancerError
from loadbalancer.routing.affinity import affinity_key_for
from loadbalancer.settings.records import LimitsConfig

LIMITS = LimitsConfig(max_body_bytes=64 * 1024, max_messages=20, max_header_bytes=4096)
SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
FIELDS = ("model", "stream", "tools", "wants_thinking", "max_tokens", "has_images", "has_unsigned_thinking",
          "affinity_fields")

scalars = st.none() | st.booleans() | st.integers(-10, 10 ** 6) | st.text(max_size=6)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
blocks = st.one_of(
    st.just(IMAGE), st.just({"type": "text", "text": "hi"}),
    st.builds(lambda signed: {"type": "thinking", "thinking": "hm", **({"signature": "s"} if signed else {})},
              st.booleans()),
    st.builds(lambda inner: {"type": "tool_result", "tool_use_id": "t", "content": inner},
              st.just([IMAGE]) | st.just("text") | json_values),
    json_values)
messages = st.builds(lambda role, content: {"role": role, "content": content},
                     st.sampled_from(["user", "assistant"]) | json_values,
                     st.text(max_size=5) | st.lists(blocks, max_size=4) | json_values)
bodies = st.fixed_dictionaries(
    {"model": st.just("claude-x") | json_values, "messages": st.lists(messages, max_size=4) | json_values},
    optional={"max_tokens": st.integers(-1, 64000) | json_values, "stream": st.booleans() | json_values,
              "system": st.text(max_size=5) | st.lists(blocks, max_size=2) | json_values,
              "tools": st.lists(st.dictionaries(st.text(max_size=4), json_values, max_size=2), max_size=2) | json_values,
              "thinking": st.sampled_from([{"type": "enabled"}, {"type": "adaptive"}, {"type": "disabled"}]) | json_values,
              "metadata": st.just({"user_id": "u-1"}) | json_values})


REAL_THRESHOLD = client_request.LAZY_PARSE_FROM_BYTES


@pytest.fixture(autouse=True)
def simdjson_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here are about the simdjson reading; small bodies would otherwise skip it."""
    monkeypatch.setattr(client_request, "LAZY_PARSE_FROM_BYTES", 0)


def outcome(read) -> tuple:
    """The fields read, or the refusal's type, status and message."""
    try:
        request = read()
    except LoadBalancerError as err:
        return ("refused", type(err).__name__, err.status, err.message)
    return tuple(getattr(request, name) for name in FIELDS)


@SETTINGS
@given(body=bodies, count_tokens=st.booleans())
def test_the_simdjson_reading_agrees_with_the_dict_reading(body: dict, count_tokens: bool) -> None:
    raw = orjson.dumps(body)
    from_bytes = outcome(lambda: parse_messages_request(raw, LIMITS, count_tokens=count_tokens))
    from_dict = outcome(lambda: parse_messages_request(raw, LIMITS, count_tokens=count_tokens,
                                                       decoded=orjson.loads(raw)))
    assert from_bytes == from_dict
    if from_bytes[0] != "refused" and isinstance(body.get("messages"), list):
        # The few fields kept for the conversation key give the key the whole body gives.
        request = parse_messages_request(raw, LIMITS, count_tokens=count_tokens)
        assert affinity_key_for(request.affinity_fields, {}) == affinity_key_for(body, {})


def request_of(**fields) -> MessagesRequest:
    body = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_messages_request(json.dumps(body).encode(), LIMITS)


@pytest.mark.parametrize("message, images, unsigned", [
    ({"role": "user", "content": [IMAGE]}, True, False),
    ({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [IMAGE]}]}, True, False),
    ({"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}, False, True),
    ({"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "sig"}]}, False, False),
    ({"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}, False, False),
])
def test_images_and_unsigned_thinking_are_noted_in_the_one_walk(message: dict, images: bool, unsigned: bool) -> None:
    request = request_of(messages=[{"role": "user", "content": "hi"}, message])
    assert (request.has_images, request.has_unsigned_thinking) == (images, unsigned)


def test_the_conversation_fields_hold_only_metadata_system_and_the_first_user_turn() -> None:
    request = request_of(system=[{"type": "text", "text": "be brief"}], metadata={"user_id": "u-9"},
                         messages=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                                   {"role": "user", "content": "second"}])
    assert request.affinity_fields == {"metadata": {"user_id": "u-9"}, "system": [{"text": "be brief"}],
                                       "messages": [{"role": "user", "content": "first"}]}
    whole = orjson.loads(request.raw)
    assert affinity_key_for(request.affinity_fields, {}) == affinity_key_for(whole, {})


def test_the_whole_body_is_built_only_when_asked_for() -> None:
    request = request_of(temperature=0.5)
    assert "body" not in vars(request)  # nothing built yet
    assert request.body["temperature"] == 0.5
    assert request.tools == () and request.raw.startswith(b"{")


@pytest.mark.parametrize("raw", [
    b'{"model": "m", "max_tokens": 1, "n": 123456789012345678901234567890, "messages": [{"role": "user", "content": "hi"}]}',
    b'\xef\xbb\xbf{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "\xff"}]}',
])
def test_bodies_simdjson_refuses_get_the_same_answer_as_before(raw: bytes) -> None:
    """Huge integers orjson reads (as floats) are accepted; a byte order mark and invalid UTF-8 are a 400."""
    try:
        expected = ("ok", orjson.loads(raw)["model"])
    except orjson.JSONDecodeError:
        expected = ("refused", 400)
    try:
        got = ("ok", parse_messages_request(raw, LIMITS).model)
    except LoadBalancerError as err:
        got = ("refused", err.status)
    assert got == expected


def test_a_small_body_is_built_once_and_its_dict_kept_for_translations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_request, "LAZY_PARSE_FROM_BYTES", REAL_THRESHOLD)
    request = request_of(temperature=0.5)
    assert request.decoded is not None and request.body is request.decoded
    assert request.body["temperature"] == 0.5


def test_a_body_from_the_threshold_on_is_read_without_being_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_request, "LAZY_PARSE_FROM_BYTES", REAL_THRESHOLD)
    padding = "x" * REAL_THRESHOLD
    body = {"model": "claude-x", "max_tokens": 100, "system": padding, "messages": [{"role": "user", "content": "hi"}]}
    request = parse_messages_request(json.dumps(body).encode(), LimitsConfig(max_body_bytes=2 * REAL_THRESHOLD))
    assert request.decoded is None and "body" not in vars(request)
    assert request.affinity_fields["system"] == padding and request.body["system"] == padding


def test_a_mid_sized_body_is_read_whole_but_not_kept_for_the_request_s_life(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_request, "LAZY_PARSE_FROM_BYTES", REAL_THRESHOLD)
    padding = "x" * client_request.KEEP_BUILT_BODY_BELOW_BYTES
    body = {"model": "claude-x", "max_tokens": 100, "system": padding, "messages": [{"role": "user", "content": "hi"}]}
    request = parse_messages_request(json.dumps(body).encode(), LimitsConfig(max_body_bytes=2 * REAL_THRESHOLD))
    assert request.decoded is None and "body" not in vars(request)
    assert request.body == body  # built again when a translation asks
