"""The Responses front door, outbound: Anthropic messages and stream events -> Responses objects and events.

Every event is validated with the openai SDK's own types and replayed through its stream
accumulator (`ResponseStreamState`), as `client.responses.stream` would.
"""

from __future__ import annotations

import json
import re

import pytest

import openai.types.responses as openai_types
import pydantic
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState

from loadbalancer.translation.messages_to_responses_answer import error_body, messages_to_responses, response_error
from loadbalancer.translation.messages_to_responses_stream import ResponsesStream
from loadbalancer.translation.responses_input import decode_reasoning
from loadbalancer.translation.responses_to_messages_request import responses_to_messages
from support.anthropic_rules import codex_request

EVENT_ADAPTER = pydantic.TypeAdapter(openai_types.ResponseStreamEvent)
TOOLS = [
    {"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}},
    {"type": "namespace", "name": "crm", "description": "d", "tools": [{"type": "function", "name": "lookup"}]},
    {"type": "custom", "name": "apply_patch", "description": "patch"},
    {"type": "web_search"},
]


def request(summary: str | None = "auto", **fields):
    """A translated request with every kind of tool; reasoning summaries as asked."""
    body = {"model": "claude-sonnet-4-5", "input": "hi", "tools": TOOLS, "stream": True, **fields}
    if summary:
        body["reasoning"] = {"summary": summary}
    return responses_to_messages(body)


def message_start() -> dict:
    return {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                                 "model": "claude", "usage": {"input_tokens": 10,
                                                                              "cache_read_input_tokens": 90,
                                                                              "output_tokens": 1}}}


def text_block(index: int, *chunks: str) -> list[dict]:
    return ([{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}]
            + [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": chunk}}
               for chunk in chunks]
            + [{"type": "content_block_stop", "index": index}])


def tool_block(index: int, name: str, *json_chunks: str, tool_id: str = "toolu_1") -> list[dict]:
    start = {"type": "content_block_start", "index": index,
             "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}}
    deltas = [{"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": c}}
              for c in json_chunks]
    return [start, *deltas, {"type": "content_block_stop", "index": index}]


def thinking_block(index: int, text: str, signature: str = "sig==") -> list[dict]:
    return [{"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}},
            {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}},
            {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": signature}},
            {"type": "content_block_stop", "index": index}]


def ending(stop_reason: str = "end_turn", output_tokens: int = 20) -> list[dict]:
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": output_tokens}},
            {"type": "message_stop"}]


def run(events: list[dict], translated=None) -> list[dict]:
    """Feed every event, then finish(); check numbering, spec types, and the SDK's accumulator."""
    stream = ResponsesStream(translated or request())
    out = [produced for event in events for produced in stream.feed(event)] + stream.finish()
    assert [event["sequence_number"] for event in out] == list(range(len(out)))
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in out:
        state.handle_event(EVENT_ADAPTER.validate_python(json.loads(json.dumps(event))))
    return out


def types(events: list[dict]) -> list[str]:
    return [event["type"] for event in events]


def test_text_then_tool_call_streams_in_the_spec_order():
    events = run([message_start(), *text_block(0, "Hel", "lo"), *tool_block(1, "exec_command", '{"cmd":', ' "ls"}'),
                  *ending("tool_use")])
    assert types(events) == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    call = events[13]["item"]
    assert (call["type"], call["name"], call["call_id"], call["status"]) == ("function_call", "exec_command",
                                                                             "toolu_1", "completed")
    assert json.loads(call["arguments"]) == {"cmd": "ls"}
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and [item["type"] for item in completed["output"]] == ["message",
                                                                                                   "function_call"]
    assert completed["usage"] == {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 90, "cache_write_tokens": 0},
                                  "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0},
                                  "total_tokens": 120}
    assert events[0]["response"]["id"] == completed["id"] and events[0]["response"]["status"] == "in_progress"


def test_namespaced_tool_call_comes_back_with_its_namespace():
    events = run([message_start(), *tool_block(0, "crm__lookup", "{}"), *ending("tool_use")])
    call = events[-2]["item"]
    assert (call["name"], call["namespace"]) == ("lookup", "crm")


def test_custom_tool_call_comes_back_with_the_raw_input():
    patch = "*** Begin Patch\n*** Add File: a\n+hi\n*** End Patch\n"
    events = run([message_start(), *tool_block(0, "apply_patch", json.dumps({"input": patch})), *ending("tool_use")])
    assert types(events)[2:6] == ["response.output_item.added", "response.custom_tool_call_input.delta",
                                  "response.custom_tool_call_input.done", "response.output_item.done"]
    item = events[5]["item"]
    assert (item["type"], item["name"], item["input"], item["call_id"]) == ("custom_tool_call", "apply_patch",
                                                                            patch, "toolu_1")


def test_a_tool_without_arguments_gets_an_empty_object():
    events = run([message_start(), *tool_block(0, "exec_command"), *ending("tool_use")])
    assert events[-2]["item"]["arguments"] == "{}"


def test_thinking_becomes_a_reasoning_item_with_summary_and_a_round_trippable_block():
    events = run([message_start(), *thinking_block(0, "**Plan** it"), *text_block(1, "ok"), *ending()])
    assert types(events)[2:7] == ["response.output_item.added", "response.reasoning_summary_part.added",
                                  "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
                                  "response.reasoning_summary_part.done"]
    reasoning = events[7]["item"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "**Plan** it"}]
    assert decode_reasoning(reasoning["encrypted_content"]) == {"type": "thinking", "thinking": "**Plan** it",
                                                                "signature": "sig=="}


def test_without_summaries_asked_reasoning_keeps_only_the_encrypted_block():
    events = run([message_start(), *thinking_block(0, "secret"), *ending()], translated=request(summary=None))
    assert "response.reasoning_summary_text.delta" not in types(events)
    assert events[3]["item"]["summary"] == [] and "encrypted_content" in events[3]["item"]


def test_codex_history_with_our_reasoning_translates_back_to_the_same_thinking_block():
    events = run([message_start(), *thinking_block(0, "plan"), *tool_block(1, "exec_command", '{"cmd":"ls"}'),
                  *ending("tool_use")])
    output = events[-1]["response"]["output"]
    history = [{"role": "user", "content": "hi"}, *output,
               {"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt"}]
    body = responses_to_messages({"model": "m", "input": history, "tools": TOOLS,
                                  "reasoning": {"effort": "low"}}).body
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "plan", "signature": "sig=="}
    assert body["messages"][1]["content"][1]["type"] == "tool_use" and "thinking" in body


def test_server_tool_blocks_are_skipped_and_indexes_stay_contiguous():
    server = [{"type": "content_block_start", "index": 0,
               "content_block": {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
              {"type": "content_block_stop", "index": 0}]
    events = run([message_start(), *server, *text_block(1, "found"), *ending()])
    assert [event["output_index"] for event in events if "output_index" in event] == [0] * 6


def test_pings_neither_start_nor_change_the_stream():
    stream = ResponsesStream(request())
    assert stream.feed({"type": "ping"}) == []
    assert types(stream.feed(message_start())) == ["response.created", "response.in_progress"]


def test_max_tokens_ends_with_response_incomplete():
    events = run([message_start(), *text_block(0, "cut"), *ending("max_tokens")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_an_error_mid_tool_call_fails_without_closing_the_call():
    stream = ResponsesStream(request())
    events = [out for event in [message_start(), *tool_block(0, "exec_command", '{"cmd": "rm')[:-1],
                                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]
              for out in stream.feed(event)]
    assert types(events)[-3:] == ["response.function_call_arguments.delta", "error", "response.failed"]
    assert (events[-2]["code"], events[-2]["message"]) == ("server_error", "Overloaded")
    assert "response.output_item.done" not in types(events)
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "server_error", "message": "Overloaded"}
    assert failed["output"][0]["status"] == "incomplete"
    assert stream.feed(ending()[1]) == [] and stream.finish() == [] and stream.finished


def test_an_upstream_that_ends_early_fails_and_a_finished_one_completes():
    cut = run([message_start(), *text_block(0, "half")[:-1]])
    assert cut[-1]["type"] == "response.failed" and "ended before" in cut[-1]["response"]["error"]["message"]
    no_stop = run([message_start(), *text_block(0, "all"), ending()[0]])
    assert no_stop[-1]["type"] == "response.completed"


def test_failing_before_anything_still_opens_the_stream():
    stream = ResponsesStream(request())
    events = stream.fail({"type": "api_error", "message": "no provider"})
    assert types(events) == ["response.created", "response.in_progress", "error", "response.failed"]


def test_rate_limit_failures_carry_the_delay_codex_parses():
    error = response_error({"type": "rate_limit_error", "message": "Slow down."}, retry_after_seconds=2)
    assert error["code"] == "rate_limit_exceeded"
    assert re.search(r"(?i)try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)", error["message"]).group(1) == "2"


@pytest.mark.parametrize("status, error, code", [
    (400, {"type": "invalid_request_error", "message": "prompt is too long: 300000 tokens > 200000"},
     "context_length_exceeded"),
    (400, {"type": "invalid_request_error", "message": "bad"}, None),
    (429, {"type": "rate_limit_error", "message": "slow"}, "rate_limit_exceeded"),
    (529, {"type": "overloaded_error", "message": "busy"}, "server_error"),
])
def test_http_error_bodies_use_openai_shape_and_codes(status, error, code):
    body = error_body(status, error)
    assert body == {"error": {"message": error["message"], "type": error["type"], "param": None, "code": code}}


def test_non_stream_message_becomes_a_response_object_the_sdk_parses():
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "tool_use",
               "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "Hi"},
                           {"type": "tool_use", "id": "toolu_9", "name": "crm__lookup", "input": {"q": 1}},
                           {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}}],
               "usage": {"input_tokens": 5, "output_tokens": 7}}
    response = messages_to_responses(message, request())
    parsed = openai_types.Response.model_validate(response)
    assert parsed.output_text == "Hi" and parsed.status == "completed"
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["output"][2]["namespace"] == "crm" and response["output"][2]["arguments"] == '{"q":1}'
    assert response["model"] == "claude-sonnet-4-5" and response["usage"]["total_tokens"] == 12


def test_response_echoes_the_request_settings():
    response = messages_to_responses({"content": [], "stop_reason": "end_turn"},
                                     request(parallel_tool_calls=False, tool_choice="required", temperature=0.3))
    assert (response["parallel_tool_calls"], response["tool_choice"], response["temperature"]) == (False, "required",
                                                                                                    0.3)
    assert response["tools"] == TOOLS


def test_codex_real_turn_translates_and_streams_back():
    translated = responses_to_messages(codex_request("run1-1"))
    events = run([message_start(), *tool_block(0, "exec_command", '{"cmd":"printf hi > hello.txt"}'),
                  *ending("tool_use")], translated=translated)
    assert events[-2]["item"]["name"] == "exec_command" and events[-1]["type"] == "response.completed"


def test_a_tool_call_the_load_balancer_closed_before_its_error_is_never_done():
    # After content was sent, a failure closes the open block and then sends `error`
    # (failover._stream_rest): the truncated call must not reach Codex as done.
    stream = ResponsesStream(request())
    cut = [message_start(), *tool_block(0, "exec_command", '{"cmd": "rm -rf bu')]
    events = [out for event in cut for out in stream.feed(event)]
    events += stream.feed({"type": "error", "error": {"type": "api_error", "message": "stream failed"}})
    assert "response.output_item.done" not in types(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


def test_reasoning_without_a_signature_round_trips_for_openai_compatible_backends():
    # An OpenAI-compatible backend's reasoning arrives as unsigned thinking; it must come back
    # (as reasoning_content) even when the next request asks for no thinking.
    events = run([message_start(), *thinking_block(0, "step by step", signature=""),
                  *tool_block(1, "exec_command", '{"cmd":"ls"}'), *ending("tool_use")])
    output = events[-1]["response"]["output"]
    assert decode_reasoning(output[0]["encrypted_content"]) == {"type": "thinking", "thinking": "step by step",
                                                                "signature": ""}
    history = [{"role": "user", "content": "hi"}, *output,
               {"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt"}]
    body = responses_to_messages({"model": "m", "input": history, "tools": TOOLS}).body
    assert "thinking" not in body
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "step by step", "signature": ""}
