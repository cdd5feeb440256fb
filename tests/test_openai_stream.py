"""OpenAI stream chunks -> strict Anthropic events: grammar, tool calls, usage, failures."""

from __future__ import annotations

import json

import anthropic.types as anthropic_types
import pytest

from loadbalancer.translation.chat_to_messages_answer import openai_to_anthropic_message
from loadbalancer.translation import chat_to_messages_stream
from loadbalancer.translation.chat_to_messages_stream import OpenAIStreamTranslator
from loadbalancer.translation.tool_names import ToolNameMap, build_tool_name_map

LONG_TOOL = "mcp__filesystem__" + "read_a_very_long_file_name_" * 3
TOOL_NAMES = build_tool_name_map(["read_file", "shell", LONG_TOOL])
SHORT_LONG_TOOL = TOOL_NAMES.backend_name(LONG_TOOL)

_EVENT_MODELS = {
    "message_start": anthropic_types.RawMessageStartEvent,
    "content_block_start": anthropic_types.RawContentBlockStartEvent,
    "content_block_delta": anthropic_types.RawContentBlockDeltaEvent,
    "content_block_stop": anthropic_types.RawContentBlockStopEvent,
    "message_delta": anthropic_types.RawMessageDeltaEvent,
    "message_stop": anthropic_types.RawMessageStopEvent,
}
_DELTA_FOR_BLOCK = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}


def validate_stream(events: list[dict], *, ends_with_error: bool = False) -> dict:
    """Check the strict Anthropic stream grammar and return the assembled message."""
    assert events and events[0]["type"] == "message_start"
    assert [event["type"] for event in events].count("message_start") == 1
    message = dict(events[0]["message"], content=[])
    open_index: int | None = None
    json_buffers: dict[int, str] = {}
    body = events[1:-1] if ends_with_error else events[1:-2]
    for event in body:
        if event["type"] in _EVENT_MODELS:
            _EVENT_MODELS[event["type"]].model_validate(event)
        if event["type"] == "content_block_start":
            assert open_index is None, "a block opened while another was open"
            assert event["index"] == len(message["content"]), "indices must be sequential"
            block = dict(event["content_block"])
            if block["type"] == "tool_use":
                assert block["input"] == {}
                json_buffers[event["index"]] = ""
            else:
                assert block.get(block["type"]) == ""
            message["content"].append(block)
            open_index = event["index"]
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index, "a delta for a block that is not open"
            block = message["content"][open_index]
            delta = event["delta"]
            assert delta["type"] == _DELTA_FOR_BLOCK[block["type"]]
            if delta["type"] == "input_json_delta":
                json_buffers[open_index] += delta["partial_json"]
            else:
                key = block["type"]
                block[key] += delta[key]
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_index
            if open_index in json_buffers:
                parsed = json.loads(json_buffers[open_index])
                assert isinstance(parsed, dict)
                message["content"][open_index]["input"] = parsed
            open_index = None
        else:
            pytest.fail(f"unexpected event inside the stream: {event}")
    assert open_index is None, "a block was left open"
    if ends_with_error:
        assert events[-1]["type"] == "error"
        assert set(events[-1]["error"]) == {"type", "message"}
        return message
    assert [events[-2]["type"], events[-1]["type"]] == ["message_delta", "message_stop"]
    _EVENT_MODELS["message_delta"].model_validate(events[-2])
    message.update(events[-2]["delta"])
    message["usage"] = dict(message["usage"], **events[-2]["usage"])
    anthropic_types.Message.model_validate(message)
    return message


def chunk(delta: dict | None = None, finish_reason: str | None = None, **extra) -> dict:
    """One OpenAI chat.completion.chunk with a single choice."""
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish_reason}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice], **extra}


def tool_fragment(position: int, name: str | None = None, arguments: str | None = None) -> dict:
    """A delta carrying one tool call fragment."""
    function: dict = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    call: dict = {"index": position, "function": function}
    if name is not None:
        call.update(id=f"call_{position}", type="function")
    return {"tool_calls": [call]}


def run(chunks: list, *, thinking_requested: bool = False, finish: bool = True) -> list[dict]:
    """Feed every chunk to a fresh translator and finish it."""
    translator = OpenAIStreamTranslator("claude-test", TOOL_NAMES, thinking_requested=thinking_requested)
    events: list[dict] = []
    for item in chunks:
        events += translator.feed(item)
    if finish:
        events += translator.finish()
    return events


def summary(message: dict) -> list[tuple]:
    """The content of a message as comparable tuples (ids left out)."""
    return [
        (block["type"], block.get("text") or block.get("thinking") or block.get("name"), block.get("input"))
        for block in message["content"]
    ]


def test_text_only_stream() -> None:
    events = run([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                  chunk({"content": ""}), chunk({"content": "lo"}), chunk({}, "stop")])
    message = validate_stream(events)
    assert summary(message) == [("text", "Hello", None)]
    assert message["stop_reason"] == "end_turn"
    assert message["model"] == "claude-test"


def without_ids(value):
    """Events with their generated message and tool_use ids left out."""
    if isinstance(value, list):
        return [without_ids(item) for item in value]
    if isinstance(value, dict):
        return {key: without_ids(item) for key, item in value.items() if key != "id"}
    return value


@pytest.mark.parametrize("chunks", [
    [chunk({"content": "a"}), chunk({"content": "b"}, "stop")],
    [chunk({"content": "a"}), chunk({"content": "b"}), chunk({"reasoning_content": "hm", "content": "c"}),
     chunk({"content": "d"})],
    [chunk({"content": "a"}), chunk({"content": 5}), chunk({"content": None}), chunk({"content": ""}),
     chunk({"content": "b"})],
    [chunk({"content": "a"}), {"choices": [{"delta": {"content": "b"}}], "usage": {"prompt_tokens": 7}}],
    [chunk({"content": "a"}), chunk(tool_fragment(0, "shell", '{"cmd"')), chunk({"content": "b"}),
     chunk(tool_fragment(0, None, ': "ls"}')), chunk({}, "tool_calls")],
])
def test_text_only_deltas_take_a_short_way_to_the_same_events(chunks: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a text block is open, a delta of text alone is appended directly: the events are the long way's."""
    short_way = run(chunks, thinking_requested=True)
    monkeypatch.setattr(chat_to_messages_stream, "_TEXT_ONLY", frozenset({"never a key"}))
    long_way = run(chunks, thinking_requested=True)
    assert without_ids(short_way) == without_ids(long_way)
    validate_stream(short_way)


@pytest.mark.parametrize(
    ("thinking_requested", "expected"),
    [
        (True, [("thinking", "Let me think.", None), ("text", "Answer", None)]),
        (False, [("text", "Answer", None)]),
    ],
)
def test_reasoning_becomes_thinking_only_when_requested(thinking_requested, expected) -> None:
    chunks = [chunk({"reasoning_content": "Let me "}), chunk({"reasoning": "think."}),
              chunk({"content": "Answer"}), chunk({}, "stop")]
    message = validate_stream(run(chunks, thinking_requested=thinking_requested))
    assert summary(message) == expected


def test_one_tool_call_split_across_many_chunks() -> None:
    arguments = '{"file_path": "/tmp/a b.txt", "limit": 10}'
    chunks = [chunk(tool_fragment(0, name="read_file", arguments=""))]
    chunks += [chunk(tool_fragment(0, arguments=arguments[i:i + 3])) for i in range(0, len(arguments), 3)]
    chunks.append(chunk({}, "tool_calls"))
    message = validate_stream(run(chunks))
    assert summary(message) == [("tool_use", "read_file", {"file_path": "/tmp/a b.txt", "limit": 10})]
    assert message["stop_reason"] == "tool_use"
    assert message["content"][0]["id"].startswith("toolu_")


def test_parallel_tool_calls_interleaved_by_index() -> None:
    chunks = [
        chunk(tool_fragment(0, name="read_file", arguments='{"file_')),
        chunk(tool_fragment(1, name="shell", arguments='{"comm')),
        chunk(tool_fragment(0, arguments='path": "a.py"}')),
        chunk(tool_fragment(1, arguments='and": "ls"}')),
        chunk({}, "tool_calls"),
    ]
    message = validate_stream(run(chunks))
    assert summary(message) == [
        ("tool_use", "read_file", {"file_path": "a.py"}),
        ("tool_use", "shell", {"command": "ls"}),
    ]


def test_text_then_tools_and_long_name_restored() -> None:
    chunks = [chunk({"content": "I will look."}),
              chunk(tool_fragment(0, name=SHORT_LONG_TOOL, arguments='{"path": "x"}')),
              chunk({}, "stop")]
    message = validate_stream(run(chunks))
    assert summary(message) == [("text", "I will look.", None), ("tool_use", LONG_TOOL, {"path": "x"})]
    assert message["stop_reason"] == "tool_use", "tool calls mean tool_use whatever finish_reason says"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", {}),
        ('{"command": "ls"', {"command": "ls"}),
        ('"{\\"command\\": \\"ls\\"}"', {"command": "ls"}),
        ("42", {}),
    ],
)
def test_broken_tool_arguments_are_repaired_to_an_object(arguments, expected) -> None:
    chunks = [chunk(tool_fragment(0, name="shell", arguments=arguments)), chunk({}, "tool_calls")]
    assert summary(validate_stream(run(chunks))) == [("tool_use", "shell", expected)]


def test_tool_call_without_a_name_is_dropped() -> None:
    chunks = [chunk({"content": "hi"}), chunk(tool_fragment(0, arguments='{"a": 1}')), chunk({}, "stop")]
    message = validate_stream(run(chunks))
    assert summary(message) == [("text", "hi", None)]
    assert message["stop_reason"] == "end_turn"


def test_usage_only_in_a_final_empty_choices_chunk() -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 100}}
    events = run([chunk({"content": "ok"}), chunk({}, "stop"), {"id": "c", "choices": [], "usage": usage}])
    message = validate_stream(events)
    assert events[-2]["usage"] == {"output_tokens": 7, "input_tokens": 20, "cache_read_input_tokens": 100}
    assert message["usage"]["output_tokens"] == 7


def test_known_input_tokens_are_not_overwritten() -> None:
    translator = OpenAIStreamTranslator("m", ToolNameMap(), thinking_requested=False, input_tokens=55)
    events = translator.feed(chunk({"content": "x"}, usage={"prompt_tokens": 60, "completion_tokens": 2}))
    events += translator.finish()
    assert events[0]["message"]["usage"]["input_tokens"] == 55
    assert events[-2]["usage"] == {"output_tokens": 2}


def test_no_finish_reason_then_finish_closes_everything() -> None:
    translator = OpenAIStreamTranslator("m", TOOL_NAMES, thinking_requested=False)
    events = translator.feed(chunk({"content": "partial"}))
    events += translator.feed(chunk(tool_fragment(0, name="shell", arguments='{"command": "ls"}')))
    assert translator.started and translator.has_content
    events += translator.finish()
    assert translator.finish() == [], "finish is idempotent"
    assert translator.feed(chunk({"content": "late"})) == []
    message = validate_stream(events)
    assert summary(message) == [("text", "partial", None), ("tool_use", "shell", {"command": "ls"})]


def test_empty_stream_still_yields_a_valid_message() -> None:
    translator = OpenAIStreamTranslator("m", ToolNameMap(), thinking_requested=False)
    assert not translator.started
    events = translator.finish()
    assert [event["type"] for event in events] == ["message_start", "message_delta", "message_stop"]
    assert validate_stream(events)["content"] == []
    assert not translator.has_content


@pytest.mark.parametrize("garbage", [None, "data", 42, [], {}, {"choices": None}, {"choices": [None]},
                                     {"choices": [{"delta": None}]}, {"choices": [{"delta": {"tool_calls": [None]}}]}])
def test_malformed_chunks_are_ignored(garbage) -> None:
    message = validate_stream(run([garbage, chunk({"content": "ok"}), garbage, chunk({}, "stop")]))
    assert summary(message) == [("text", "ok", None)]


@pytest.mark.parametrize(
    "chunks",
    [
        [chunk({"content": "Hello"})],
        [chunk({"reasoning_content": "hmm"})],
        [chunk({"content": "x"}), chunk(tool_fragment(0, name="shell", arguments='{"comm'))],
    ],
    ids=["mid-text", "mid-thinking", "mid-tool"],
)
def test_fail_closes_open_block_then_error(chunks) -> None:
    translator = OpenAIStreamTranslator("m", TOOL_NAMES, thinking_requested=True)
    events = [event for item in chunks for event in translator.feed(item)]
    events += translator.fail("upstream connection reset", "overloaded_error")
    validate_stream(events, ends_with_error=True)
    assert events[-1]["error"] == {"type": "overloaded_error", "message": "upstream connection reset"}
    assert not any(event["type"] == "message_stop" for event in events)
    assert translator.finish() == [] and translator.fail("again") == []


def test_error_chunk_in_stream_becomes_error_event() -> None:
    events = run([chunk({"content": "a"}), {"error": {"message": "model crashed", "type": "server_error"}}],
                 finish=False)
    validate_stream(events, ends_with_error=True)
    assert events[-1]["error"]["message"] == "model crashed"


REFERENCE_TEXT = "Sure — reading both files now."
REFERENCE_CALLS = [("read_file", '{"file_path": "/src/main.py", "offset": 0}'),
                   ("shell", '{"command": "grep -n \\"def \\" main.py"}')]


def reference_chunks(text_cut: int, argument_cut: int) -> list[dict]:
    """The reference answer streamed with the text and every argument string cut once."""
    chunks = [chunk({"role": "assistant", "content": ""}),
              chunk({"content": REFERENCE_TEXT[:text_cut]}), chunk({"content": REFERENCE_TEXT[text_cut:]})]
    for position, (name, arguments) in enumerate(REFERENCE_CALLS):
        cut = min(argument_cut, len(arguments))
        chunks.append(chunk(tool_fragment(position, name=name, arguments=arguments[:cut])))
        chunks.append(chunk(tool_fragment(position, arguments=arguments[cut:])))
    chunks.append(chunk({}, "tool_calls"))
    return chunks


def reference_non_stream_message() -> dict:
    """The non-stream translation of the same answer."""
    tool_calls = [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
                  for i, (name, arguments) in enumerate(REFERENCE_CALLS)]
    data = {"choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": REFERENCE_TEXT, "tool_calls": tool_calls}}]}
    return openai_to_anthropic_message(data, "claude-test", TOOL_NAMES)


@pytest.mark.parametrize("text_cut", range(len(REFERENCE_TEXT) + 1))
def test_every_text_cut_assembles_like_the_non_stream_answer(text_cut) -> None:
    expected = reference_non_stream_message()
    message = validate_stream(run(reference_chunks(text_cut, 5)))
    assert summary(message) == summary(expected)
    assert message["stop_reason"] == expected["stop_reason"] == "tool_use"


@pytest.mark.parametrize("argument_cut", range(max(len(arguments) for _, arguments in REFERENCE_CALLS) + 1))
def test_every_argument_cut_assembles_like_the_non_stream_answer(argument_cut) -> None:
    expected = reference_non_stream_message()
    message = validate_stream(run(reference_chunks(7, argument_cut)))
    assert summary(message) == summary(expected)
    assert message["stop_reason"] == expected["stop_reason"]


_START = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                               "content": [], "stop_reason": None, "stop_sequence": None,
                                               "usage": {"input_tokens": 0, "output_tokens": 0}}}
_END = [{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 0}}, {"type": "message_stop"}]


def _tool_block(index: int, partial_json: str) -> list[dict]:
    return [{"type": "content_block_start", "index": index,
             "content_block": {"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {}}},
            {"type": "content_block_delta", "index": index,
             "delta": {"type": "input_json_delta", "partial_json": partial_json}},
            {"type": "content_block_stop", "index": index}]


@pytest.mark.parametrize(
    "events",
    [
        [_START] + _tool_block(0, '{"command": "ls"') + _END,
        [_START] + _tool_block(1, "{}") + _END,
        [_START] + _tool_block(0, "{}")[:2] + _tool_block(1, "{}") + _END,
        [_START, _START] + _END,
        [_START] + _tool_block(0, "[]") + _END,
        [_START] + _tool_block(0, "{}") + _END[::-1],
    ],
    ids=["invalid-json", "skipped-index", "interleaved", "two-starts", "not-an-object", "stop-before-delta"],
)
def test_the_validator_rejects_broken_streams(events) -> None:
    with pytest.raises((AssertionError, ValueError)):
        validate_stream(events)
