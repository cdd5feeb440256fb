"""OpenAI chat.completions answers and errors -> Anthropic answers and errors."""

from __future__ import annotations

import json
import re

import anthropic.types as anthropic_types
import pytest

from loadbalancer.translation.chat_to_messages_answer import openai_error_to_anthropic, openai_to_anthropic_message
from loadbalancer.translation.tool_names import ToolNameMap, build_tool_name_map

LONG_TOOL = "mcp__browser__" + "navigate_somewhere_" * 4
TOOL_NAMES = build_tool_name_map(["read_file", LONG_TOOL])


def completion(message: dict, finish_reason: str | None = "stop", usage: dict | None = None) -> dict:
    """An OpenAI chat.completion with one choice."""
    data = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen3",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}]}
    if usage is not None:
        data["usage"] = usage
    return data


def call(name: str, arguments) -> dict:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def translate(data: dict, thinking_requested: bool = False) -> dict:
    """Translate and check the result against the anthropic SDK's Message model."""
    message = openai_to_anthropic_message(data, "claude-requested", TOOL_NAMES, thinking_requested=thinking_requested)
    anthropic_types.Message.model_validate(message)
    return message


def blocks(message: dict) -> list[dict]:
    """Content blocks without their random ids."""
    return [{key: value for key, value in block.items() if key != "id"} for block in message["content"]]


def test_message_envelope() -> None:
    message = translate(completion({"content": "Hello"}))
    assert re.fullmatch(r"msg_[0-9a-f]{24}", message["id"])
    assert {key: value for key, value in message.items() if key != "id"} == {
        "type": "message", "role": "assistant", "model": "claude-requested",
        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0}}


@pytest.mark.parametrize(
    ("message", "thinking_requested", "expected"),
    [
        ({"content": "Hi"}, False, [{"type": "text", "text": "Hi"}]),
        ({"content": ""}, False, []),
        ({"content": None}, False, []),
        ({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, False,
         [{"type": "text", "text": "ab"}]),
        ({"content": None, "refusal": "I can't."}, False, [{"type": "text", "text": "I can't."}]),
        ({"content": "Hi", "reasoning_content": "think"}, True,
         [{"type": "thinking", "thinking": "think", "signature": ""}, {"type": "text", "text": "Hi"}]),
        ({"content": "Hi", "reasoning": "think"}, True,
         [{"type": "thinking", "thinking": "think", "signature": ""}, {"type": "text", "text": "Hi"}]),
        ({"content": "Hi", "reasoning_content": "think"}, False, [{"type": "text", "text": "Hi"}]),
        ({"content": "Let me read.", "tool_calls": [call("read_file", '{"file_path": "a.py"}')]}, False,
         [{"type": "text", "text": "Let me read."},
          {"type": "tool_use", "name": "read_file", "input": {"file_path": "a.py"}}]),
        ({"content": None, "tool_calls": [call(TOOL_NAMES.backend_name(LONG_TOOL), "{}")]}, False,
         [{"type": "tool_use", "name": LONG_TOOL, "input": {}}]),
        ({"content": None, "function_call": {"name": "read_file", "arguments": '{"file_path": "b"}'}}, False,
         [{"type": "tool_use", "name": "read_file", "input": {"file_path": "b"}}]),
    ],
    ids=["text", "empty-text", "null-text", "text-parts", "refusal", "reasoning_content", "reasoning",
         "reasoning-not-requested", "text-and-tool", "long-name-restored", "legacy-function-call"],
)
def test_content_blocks(message, thinking_requested, expected) -> None:
    assert blocks(translate(completion(message), thinking_requested)) == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"file_path": "a"}', {"file_path": "a"}),
        ({"file_path": "a"}, {"file_path": "a"}),
        ('{"file_path": "a"', {"file_path": "a"}),
        ("{'file_path': 'a'}", {"file_path": "a"}),
        ('"{\\"file_path\\": \\"a\\"}"', {"file_path": "a"}),
        ("", {}),
        (None, {}),
        ("[1, 2]", {}),
        ("not json at all", {}),
    ],
    ids=["valid", "already-object", "missing-brace", "single-quotes", "twice-encoded", "empty", "null",
         "array", "prose"],
)
def test_tool_arguments(arguments, expected) -> None:
    message = translate(completion({"content": None, "tool_calls": [call("read_file", arguments)]}, "tool_calls"))
    assert message["content"][0]["input"] == expected
    assert re.fullmatch(r"toolu_[A-Za-z0-9]{24}", message["content"][0]["id"])


def test_parallel_tool_calls_get_distinct_ids() -> None:
    calls = [call("read_file", '{"file_path": "a"}'), call("read_file", '{"file_path": "b"}')]
    message = translate(completion({"content": None, "tool_calls": calls}, "tool_calls"))
    assert [block["input"]["file_path"] for block in message["content"]] == ["a", "b"]
    assert message["content"][0]["id"] != message["content"][1]["id"]


@pytest.mark.parametrize(
    ("finish_reason", "with_tool", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("content_filter", False, "refusal"),
        (None, False, "end_turn"),
        ("something_new", False, "end_turn"),
        ("stop", True, "tool_use"),
        ("length", True, "tool_use"),
    ],
)
def test_stop_reason(finish_reason, with_tool, expected) -> None:
    message = {"content": "x", "tool_calls": [call("read_file", "{}")] if with_tool else None}
    assert translate(completion(message, finish_reason))["stop_reason"] == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}, {"input_tokens": 10, "output_tokens": 3}),
        ({"prompt_tokens": 1000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 800}},
         {"input_tokens": 200, "output_tokens": 5, "cache_read_input_tokens": 800}),
        ({"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": None},
         {"input_tokens": 10, "output_tokens": 3}),
        ({"prompt_tokens": None, "completion_tokens": "7"}, {"input_tokens": 0, "output_tokens": 0}),
    ],
    ids=["plain", "cached", "null-details", "junk"],
)
def test_usage(usage, expected) -> None:
    assert translate(completion({"content": "x"}, usage=usage))["usage"] == expected


@pytest.mark.parametrize("data", [{"choices": []}, {}, {"choices": None}, {"choices": [None]}])
def test_empty_answers_become_an_empty_end_turn_message(data) -> None:
    message = translate(data)
    assert message["content"] == [] and message["stop_reason"] == "end_turn"


def test_unknown_tool_names_come_back_unchanged() -> None:
    message = openai_to_anthropic_message(completion({"tool_calls": [call("other", "{}")]}), "m", ToolNameMap())
    assert message["content"][0]["name"] == "other"


def openai_error(message: str, error_type: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "code": None}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected_status", "expected_type", "expected_message"),
    [
        (400, openai_error("context too long"), "application/json", 400, "invalid_request_error", "context too long"),
        (401, openai_error("bad key"), None, 401, "authentication_error", "bad key"),
        (403, openai_error("forbidden"), None, 403, "permission_error", "forbidden"),
        (404, openai_error("no model"), None, 404, "not_found_error", "no model"),
        (413, openai_error("too big"), None, 413, "request_too_large", "too big"),
        (422, openai_error("unprocessable"), None, 422, "invalid_request_error", "unprocessable"),
        (429, openai_error("slow down"), None, 429, "rate_limit_error", "slow down"),
        (500, openai_error("boom", "server_error"), None, 500, "api_error", "boom"),
        (502, openai_error("bad gateway"), None, 502, "api_error", "bad gateway"),
        (503, openai_error("unavailable"), None, 503, "api_error", "unavailable"),
        (504, openai_error("timeout"), None, 504, "api_error", "timeout"),
        (529, openai_error("overloaded"), None, 529, "overloaded_error", "overloaded"),
        (507, openai_error("full"), None, 507, "api_error", "full"),
        (400, b'{"error": "plain string error"}', None, 400, "invalid_request_error", "plain string error"),
        (422, b'{"detail": "field required"}', None, 422, "invalid_request_error", "field required"),
        (400, b'{"message": "top-level message"}', None, 400, "invalid_request_error", "top-level message"),
        (502, b"<html><head><title>502 Bad Gateway</title><style>p {}</style></head>\n<body>\n<h1>Bad"
              b"   Gateway</h1>&amp; more</body></html>", "text/html", 502, "api_error",
         "provider answered HTTP 502 with a non-JSON body: 502 Bad Gateway Bad Gateway & more"),
        (500, b"\xff\xfegarbage\n\n here", None, 500, "api_error",
         "provider answered HTTP 500 with a non-JSON body: \ufffd\ufffdgarbage here"),
        (503, b"", None, 503, "api_error", "provider answered HTTP 503 with an empty body"),
        (503, b"  \n ", "text/plain", 503, "api_error", "provider answered HTTP 503 with an empty body"),
        (200, b"[1, 2]", None, 502, "api_error", "provider answered HTTP 502 with a non-JSON body: [1, 2]"),
    ],
    ids=["400", "401", "403", "404", "413", "other-4xx", "429", "500", "502", "503", "504", "529", "other-5xx",
         "string-error", "fastapi-detail", "top-level-message", "html", "garbage", "empty", "blank", "not-an-error"],
)
def test_error_mapping(status, body, content_type, expected_status, expected_type, expected_message) -> None:
    result_status, result_body = openai_error_to_anthropic(status, body, content_type)
    assert result_status == expected_status
    assert result_body == {"type": "error", "error": {"type": expected_type, "message": expected_message}}


def test_long_html_error_is_cut_to_a_snippet() -> None:
    _, body = openai_error_to_anthropic(502, b"<p>" + b"word " * 500 + b"</p>", "text/html; charset=utf-8")
    prefix = "provider answered HTTP 502 with a non-JSON body: "
    assert body["error"]["message"].startswith(prefix)
    assert len(body["error"]["message"]) <= len(prefix) + 200
