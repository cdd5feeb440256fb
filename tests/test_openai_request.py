"""Anthropic Messages request -> OpenAI chat.completions request, and tool name shortening."""

from __future__ import annotations

import json
import re

import pytest

from loadbalancer.translation.messages_to_chat_request import IMAGE_ONLY_TOOL_RESULT, anthropic_to_openai_request
from loadbalancer.translation.tool_names import build_tool_name_map

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
READ_TOOL = {"name": "read_file", "description": "Read a file",
             "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
PNG_PART = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}


def translate(messages: list, **fields) -> dict:
    """The OpenAI body for an Anthropic body built from messages and extra fields."""
    body, _ = anthropic_to_openai_request({"model": "claude-x", "max_tokens": 100, "messages": messages, **fields},
                                          "qwen3")
    return body


def user(*blocks) -> dict:
    return {"role": "user", "content": list(blocks)}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": "hi"}], [{"role": "user", "content": "hi"}]),
        ([user(text("a"), text("b"))], [{"role": "user", "content": "a\n\nb"}]),
        ([user(text("look"), PNG)], [{"role": "user", "content": [{"type": "text", "text": "look"}, PNG_PART]}]),
        ([user({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}})],
         [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]),
        ([user({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}})],
         [{"role": "user", "content": "doc"}]),
        ([user(text("q"), {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
               {"type": "mystery"})], [{"role": "user", "content": "q"}]),
        ([user(text("q")), {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xx"}, text("answer")]}],
         [{"role": "user", "content": "q"}, {"role": "assistant", "content": "answer"}]),
        ([user(text("a")), user(text("b")), {"role": "assistant", "content": "c"},
          {"role": "assistant", "content": "d"}],
         [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c\n\nd"}]),
        ([user(text("a")), user(PNG)],
         [{"role": "user", "content": [{"type": "text", "text": "a"}, PNG_PART]}]),
        ([user(text("a")), {"role": "assistant", "content": []}, user(text("b"))],
         [{"role": "user", "content": "a\n\nb"}]),
    ],
    ids=["string", "text-blocks", "base64-image", "url-image", "text-document", "unknown-blocks-dropped",
         "thinking-dropped", "same-roles-merged", "merge-text-and-image", "empty-turn-skipped"],
)
def test_message_blocks(messages, expected) -> None:
    assert translate(messages)["messages"] == expected


def test_tool_use_and_tool_results_keep_openai_order() -> None:
    messages = [
        user(text("read both")),
        {"role": "assistant", "content": [text("Reading."),
                                          {"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                           "input": {"file_path": "a"}},
                                          {"type": "tool_use", "id": "toolu_2", "name": "read_file",
                                           "input": {"file_path": "é"}}]},
        user(text("and hurry"),
             {"type": "tool_result", "tool_use_id": "toolu_1", "content": "A", "cache_control": {"type": "ephemeral"}},
             {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
              "content": [text("no such"), text("file")]}),
    ]
    assert translate(messages, tools=[READ_TOOL])["messages"][1:] == [
        {"role": "assistant", "content": "Reading.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "read_file", "arguments": '{"file_path":"a"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "read_file", "arguments": '{"file_path":"é"}'}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "A"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no such\n\nfile"},
        {"role": "user", "content": "and hurry"},
    ]


def test_blocks_in_any_order_keep_their_order_within_each_part_of_the_translation() -> None:
    """Texts and calls keep their order, thinking goes apart, tool messages come first, result images lead."""
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}
    messages = [
        user(text("go")),
        {"role": "assistant", "content": [
            text("first"), {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"file_path": "a"}},
            {"type": "thinking", "thinking": "why", "signature": "s"}, text(""), doc,
            {"type": "tool_use", "id": "t2", "name": "read_file", "input": {}}, text("last")]},
        user(text("see"), PNG, {"type": "tool_result", "tool_use_id": "t1", "content": [text("A"), PNG]}, doc,
             {"type": "tool_result", "tool_use_id": "t2", "content": "B"}, {"type": "text", "text": 7}),
    ]
    call = {"type": "function", "function": {"name": "read_file", "arguments": '{"file_path":"a"}'}}
    assert translate(messages, tools=[READ_TOOL])["messages"][1:] == [
        {"role": "assistant", "content": "first\n\ndoc\n\nlast", "reasoning_content": "why", "tool_calls": [
            {"id": "t1", **call}, {"id": "t2", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "A"},
        {"role": "tool", "tool_call_id": "t2", "content": "B"},
        {"role": "user", "content": [PNG_PART, {"type": "text", "text": "see"}, PNG_PART, {"type": "text", "text": "doc"}]},
    ]


@pytest.mark.parametrize(
    ("content", "expected_tool_content", "expected_user"),
    [
        ("plain", "plain", None),
        ([], "", None),
        ([text("see"), PNG], "see", {"role": "user", "content": [PNG_PART]}),
        ([PNG], IMAGE_ONLY_TOOL_RESULT, {"role": "user", "content": [PNG_PART]}),
    ],
    ids=["string", "empty", "text-and-image", "image-only"],
)
def test_tool_result_contents(content, expected_tool_content, expected_user) -> None:
    messages = [{"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
                user({"type": "tool_result", "tool_use_id": "t1", "content": content})]
    translated = translate(messages)["messages"]
    assert translated[1] == {"role": "tool", "tool_call_id": "t1", "content": expected_tool_content}
    assert translated[2:] == ([expected_user] if expected_user else [])
    assert translated[0]["content"] is None


@pytest.mark.parametrize(
    ("fields", "messages", "expected_system"),
    [
        ({"system": "be brief"}, [], "be brief"),
        ({"system": [{"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}}, text("two")]}, [],
         "one\n\ntwo"),
        ({"system": "top"}, [{"role": "system", "content": "inner"}], "top\n\ninner"),
        ({}, [{"role": "system", "content": [text("inner only")]}], "inner only"),
        ({"system": ""}, [], None),
    ],
    ids=["string", "blocks", "merged-with-inner", "inner-only", "empty"],
)
def test_system_prompt(fields, messages, expected_system) -> None:
    translated = translate(messages + [{"role": "user", "content": "hi"}], **fields)["messages"]
    if expected_system is None:
        assert translated == [{"role": "user", "content": "hi"}]
    else:
        assert translated == [{"role": "system", "content": expected_system}, {"role": "user", "content": "hi"}]


def test_claude_code_style_body_forwards_only_known_fields() -> None:
    body = {
        "model": "claude-sonnet-5-5", "max_tokens": 32000, "stream": True, "temperature": 1, "top_p": 0.9,
        "top_k": 5, "stop_sequences": ["END"], "metadata": {"user_id": '{"session": "abc"}'},
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": []}, "container": "c", "mcp_servers": [], "service_tier": "auto",
        "cache_control": {"type": "ephemeral"}, "invented_future_field": 1,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [dict(READ_TOOL, cache_control={"type": "ephemeral"}, defer_loading=True),
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    translated, _ = anthropic_to_openai_request(body, "qwen3-coder")
    assert set(translated) == {"model", "messages", "max_tokens", "temperature", "top_p", "stop", "stream",
                               "stream_options", "user", "tools", "tool_choice", "parallel_tool_calls"}
    assert translated["model"] == "qwen3-coder"
    assert translated["stream_options"] == {"include_usage": True}
    assert translated["stop"] == ["END"]
    assert translated["user"] == '{"session": "abc"}'
    assert translated["parallel_tool_calls"] is False
    assert translated["tools"] == [{"type": "function", "function": {
        "name": "read_file", "description": "Read a file", "parameters": READ_TOOL["input_schema"]}}]


def test_minimal_body_has_no_optional_fields() -> None:
    translated = translate([{"role": "user", "content": "hi"}], tool_choice={"type": "any"},
                           metadata={"user_id": 7}, stream=False)
    assert set(translated) == {"model", "messages", "max_tokens"}, "tool_choice without tools is dropped"


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "read_file"}, {"type": "function", "function": {"name": "read_file"}}),
        ({"type": "tool", "name": "not_declared"}, None),
        ({"type": "weird"}, None),
    ],
)
def test_tool_choice(tool_choice, expected) -> None:
    translated = translate([{"role": "user", "content": "hi"}], tools=[READ_TOOL], tool_choice=tool_choice)
    assert translated.get("tool_choice") == expected
    assert "parallel_tool_calls" not in translated


def test_long_and_invalid_tool_names_are_shortened_everywhere() -> None:
    long_name = "mcp__claude_in_chrome__" + "x" * 60
    dotted = "server.tool:run"
    tools = [dict(READ_TOOL, name=long_name), dict(READ_TOOL, name=dotted), READ_TOOL]
    messages = [user(text("go")),
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": long_name, "input": {}}]}]
    translated, names = anthropic_to_openai_request(
        {"messages": messages, "tools": tools, "tool_choice": {"type": "tool", "name": dotted}}, "m")
    sent = [tool["function"]["name"] for tool in translated["tools"]]
    assert all(OPENAI_NAME.match(name) for name in sent)
    assert sent[2] == "read_file"
    assert [names.original_name(name) for name in sent] == [long_name, dotted, "read_file"]
    assert translated["messages"][1]["tool_calls"][0]["function"]["name"] == sent[0]
    assert translated["tool_choice"]["function"]["name"] == sent[1]


def test_tool_name_map_is_deterministic_and_collision_free() -> None:
    prefix = "a" * 70
    names = [prefix + str(i) for i in range(50)] + ["x.y", "x_y", "x:y", "ok_name", "ünïcode"]
    first = build_tool_name_map(names)
    assert first == build_tool_name_map(list(reversed(names)))
    backend = [first.backend_name(name) for name in names]
    assert len(set(backend)) == len(names)
    assert all(OPENAI_NAME.match(name) for name in backend)
    assert all(first.original_name(first.backend_name(name)) == name for name in names)
    assert first.backend_name("x_y") == "x_y" and first.backend_name("ok_name") == "ok_name"
    assert first.original_name("never_seen") == "never_seen"
    assert set(first.to_backend) == set(names) - {"x_y", "ok_name"}


@pytest.mark.parametrize("max_length", [16, 32, 64])
def test_tool_names_respect_the_maximum_length(max_length) -> None:
    names = ["b" * 100, "b" * 101, "short"]
    mapping = build_tool_name_map(names, max_length)
    assert all(len(mapping.backend_name(name)) <= max_length for name in names)
    assert len({mapping.backend_name(name) for name in names}) == 3


def test_tool_use_arguments_are_json_text() -> None:
    messages = [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "write_file", "input": {"content": "line\n\"q\""}}]}]
    arguments = translate(messages)["messages"][0]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"content": "line\n\"q\""}


THOUGHT = {"type": "thinking", "thinking": "I should read it.", "signature": "anthropic-signature"}
UNSIGNED = {"type": "thinking", "thinking": "Then answer.", "signature": ""}
REDACTED = {"type": "redacted_thinking", "data": "opaque-anthropic-data"}
CALL = {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"file_path": "a"}}
REASONING_HISTORY = [
    user(text("read a")),
    {"role": "assistant", "content": [THOUGHT, REDACTED, CALL]},
    user({"type": "tool_result", "tool_use_id": "call_1", "content": "A"}),
    {"role": "assistant", "content": [UNSIGNED, text("It says A.")]},
    user(text("thanks")),
]


@pytest.mark.parametrize("mode, expected", [
    ("auto", ["I should read it.", None]),            # the tool-call turn only: what DeepSeek and Kimi need
    ("send", ["I should read it.", "Then answer."]),
    ("drop", [None, None]),
])
def test_earlier_thinking_goes_back_as_reasoning_content_as_the_mode_says(mode, expected) -> None:
    body, _ = anthropic_to_openai_request({"model": "m", "max_tokens": 10, "messages": REASONING_HISTORY,
                                           "tools": [READ_TOOL]}, "deepseek-reasoner", reasoning_content=mode)
    assistants = [message for message in body["messages"] if message["role"] == "assistant"]
    assert [message.get("reasoning_content") for message in assistants] == expected
    sent = json.dumps(body)
    assert "anthropic-signature" not in sent and "opaque-anthropic-data" not in sent
