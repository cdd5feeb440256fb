"""The OpenAI front door: OpenAI requests -> Anthropic, Anthropic answers and streams -> OpenAI."""

from __future__ import annotations

import json

import anthropic.types as anthropic_types
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from loadbalancer.translation.messages_to_chat_answer import (
    AnthropicToOpenAIStream,
    anthropic_to_openai_response,
    openai_error_body,
)
from loadbalancer.translation.chat_to_messages_request import (
    DEFAULT_MAX_TOKENS,
    openai_to_anthropic_request,
)

TOOL = {"type": "function", "function": {"name": "read_file", "description": "Read",
                                         "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}


def translate(messages: list, **fields) -> dict:
    return openai_to_anthropic_request({"model": "gpt-x", "messages": messages, **fields})


def tool_call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("messages", "expected_system", "expected_messages"),
    [
        ([{"role": "user", "content": "hi"}], None, [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
        ([{"role": "system", "content": "s1"}, {"role": "developer", "content": [{"type": "text", "text": "s2"}]},
          {"role": "user", "content": "hi"}], "s1\n\ns2", [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
        ([{"role": "user", "content": [{"type": "text", "text": "see"},
                                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAA"}},
                                        {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]}], None,
         [{"role": "user", "content": [
             {"type": "text", "text": "see"},
             {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAA"}},
             {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}]}]),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], None,
         [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]),
        ([{"role": "user", "content": "go"},
          {"role": "assistant", "content": None, "tool_calls": [tool_call("c1", "read_file", '{"path": "a"}'),
                                                                tool_call("c2", "read_file", '{"path": "b"')]},
          {"role": "tool", "tool_call_id": "c1", "content": "A"},
          {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "B"}]},
          {"role": "user", "content": "thanks"}], None,
         [{"role": "user", "content": [{"type": "text", "text": "go"}]},
          {"role": "assistant", "content": [
              {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "a"}},
              {"type": "tool_use", "id": "c2", "name": "read_file", "input": {"path": "b"}}]},
          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "A"},
                                       {"type": "tool_result", "tool_use_id": "c2", "content": "B"},
                                       {"type": "text", "text": "thanks"}]}]),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": ""},
          {"role": "assistant", "content": "a", "reasoning_content": "dropped"}], None,
         [{"role": "user", "content": [{"type": "text", "text": "q"}]},
          {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]),
    ],
    ids=["user-text", "system-and-developer", "images", "same-roles-merged", "tool-round-trip", "empty-assistant"],
)
def test_request_messages(messages, expected_system, expected_messages) -> None:
    result = translate(messages)
    assert result.get("system") == expected_system
    assert result["messages"] == expected_messages


def test_request_fields_and_defaults() -> None:
    result = translate([{"role": "user", "content": "hi"}], stream=True, temperature=0.2, top_p=0.5,
                       stop="END", user="u1", max_completion_tokens=900, frequency_penalty=1,
                       logprobs=True, response_format={"type": "text"}, stream_options={"include_usage": True},
                       tools=[TOOL, {"type": "function", "function": {"name": "noop"}}, {"type": "web"}])
    assert result == {
        "model": "gpt-x", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 900, "temperature": 0.2, "top_p": 0.5, "stop_sequences": ["END"], "stream": True,
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "read_file", "description": "Read", "input_schema": TOOL["function"]["parameters"]},
                  {"name": "noop", "input_schema": {"type": "object", "properties": {}}}],
    }
    assert translate([{"role": "user", "content": "hi"}])["max_tokens"] == DEFAULT_MAX_TOKENS
    assert translate([{"role": "user", "content": "hi"}], max_tokens=12, stop=["a", "b"])["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize(
    ("tool_choice", "parallel_tool_calls", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "read_file"}}, None, {"type": "tool", "name": "read_file"}),
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_request_tool_choice(tool_choice, parallel_tool_calls, expected) -> None:
    fields = {"tools": [TOOL], "tool_choice": tool_choice, "parallel_tool_calls": parallel_tool_calls}
    assert translate([{"role": "user", "content": "hi"}], **fields).get("tool_choice") == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m"}, "'messages' must be a non-empty list"),
        ({"messages": "hi"}, "'messages' must be a non-empty list"),
        ({"messages": [{"content": "hi"}]}, "messages[0] must be an object with a 'role'"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "unsupported role"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n>1 is not supported"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "needs a 'tool_call_id'"),
        ({"messages": [{"role": "user", "content": 5}]}, "must be a string or a list"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
         "neither data: nor http"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]},
         "without a function name"),
        ([], "must be a JSON object"),
    ],
)
def test_request_rejects_bad_input(body, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        openai_to_anthropic_request(body)


def anthropic_message(content: list, stop_reason: str = "end_turn", usage: dict | None = None) -> dict:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": content,
               "stop_reason": stop_reason, "stop_sequence": None,
               "usage": usage or {"input_tokens": 10, "output_tokens": 5}}
    anthropic_types.Message.model_validate(message)
    return message


@pytest.mark.parametrize(
    ("content", "stop_reason", "expected_message", "expected_finish"),
    [
        ([{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}], "end_turn",
         {"role": "assistant", "content": "Hi there"}, "stop"),
        ([{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "ok"}], "stop_sequence",
         {"role": "assistant", "content": "ok", "reasoning_content": "hmm"}, "stop"),
        ([{"type": "text", "text": "cut"}], "max_tokens", {"role": "assistant", "content": "cut"}, "length"),
        ([{"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "é"}}], "tool_use",
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "toolu_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "\\u00e9"}'}}]},
         "tool_calls"),
        ([], "refusal", {"role": "assistant", "content": None}, "content_filter"),
        ([{"type": "text", "text": "x"}], "pause_turn", {"role": "assistant", "content": "x"}, "stop"),
    ],
    ids=["text", "thinking", "max-tokens", "tool", "refusal", "unknown-stop-reason"],
)
def test_response(content, stop_reason, expected_message, expected_finish) -> None:
    result = anthropic_to_openai_response(anthropic_message(content, stop_reason), "gpt-requested")
    ChatCompletion.model_validate(result)
    assert result["object"] == "chat.completion" and result["model"] == "gpt-requested"
    assert result["id"].startswith("chatcmpl-") and isinstance(result["created"], int)
    assert result["choices"] == [{"index": 0, "message": expected_message, "finish_reason": expected_finish}]


def test_response_usage_counts_cached_tokens_as_prompt() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    result = anthropic_to_openai_response(anthropic_message([], usage=usage), "m")
    assert result["usage"] == {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135}


def anthropic_events() -> list[dict]:
    """A streamed answer with thinking, text and two tool calls."""
    def delta(index: int, **body) -> dict:
        return {"type": "content_block_delta", "index": index, "delta": body}

    return [
        {"type": "message_start", "message": anthropic_message([], usage={"input_tokens": 30, "output_tokens": 1})},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        delta(0, type="thinking_delta", thinking="plan"),
        delta(0, type="signature_delta", signature="sig"),
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        delta(1, type="text_delta", text="Reading"),
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "toolu_a", "name": "read_file", "input": {}}},
        delta(2, type="input_json_delta", partial_json=""),
        delta(2, type="input_json_delta", partial_json='{"path": '),
        delta(2, type="input_json_delta", partial_json='"a"}'),
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3,
         "content_block": {"type": "tool_use", "id": "toolu_b", "name": "shell", "input": {}}},
        delta(3, type="input_json_delta", partial_json='{"command": "ls"}'),
        {"type": "content_block_stop", "index": 3},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 42}},
        {"type": "message_stop"},
    ]


def stream(events: list[dict], include_usage: bool) -> list[dict]:
    translator = AnthropicToOpenAIStream("gpt-requested", include_usage)
    chunks = [chunk for event in events for chunk in translator.feed(event)] + translator.finish()
    assert translator.finish() == []
    return chunks


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_translation(include_usage) -> None:
    chunks = stream(anthropic_events(), include_usage)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["model"] == "gpt-requested" and chunk["id"] == chunks[0]["id"]
    content_chunks = [chunk for chunk in chunks if chunk["choices"]]
    deltas = [chunk["choices"][0]["delta"] for chunk in content_chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "plan"},
        {"content": "Reading"},
        {"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "read_file", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"a"}'}}]},
        {"tool_calls": [{"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "shell", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"command": "ls"}'}}]},
        {},
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in content_chunks][-2:] == [None, "tool_calls"]
    usage_chunks = [chunk for chunk in chunks if not chunk["choices"]]
    expected_usage = [{"prompt_tokens": 30, "completion_tokens": 42, "total_tokens": 72}] if include_usage else []
    assert [chunk["usage"] for chunk in usage_chunks] == expected_usage
    if include_usage:
        assert chunks[-1] is usage_chunks[0]


def test_stream_cut_short_still_finishes() -> None:
    chunks = stream(anthropic_events()[:8], include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks].count("stop") == 1


def test_stream_error_event_becomes_an_error_payload() -> None:
    translator = AnthropicToOpenAIStream("m", include_usage=True)
    translator.feed(anthropic_events()[0])
    result = translator.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert result == [{"error": {"message": "Overloaded", "type": "overloaded_error", "code": "500"}}]
    assert translator.feed({"type": "message_stop"}) == [] and translator.finish() == []


def test_error_body() -> None:
    assert openai_error_body(401, "bad key", "authentication_error") == {
        "error": {"message": "bad key", "type": "authentication_error", "code": "401"}}


def test_tool_arguments_round_trip_through_both_directions() -> None:
    arguments = {"path": "a b", "lines": [1, 2], "nested": {"ok": True}}
    request = translate([{"role": "user", "content": "go"},
                         {"role": "assistant", "tool_calls": [tool_call("c", "read_file", json.dumps(arguments))]}])
    block = request["messages"][1]["content"][0]
    response = anthropic_to_openai_response(anthropic_message([block], "tool_use"), "m")
    assert json.loads(response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == arguments
