"""rewrite_message and ToolCallStreamRewriter: blocks, indices, stop reasons, rejected calls."""
from __future__ import annotations

import copy
import json
import re

from toolcall_corpus.tools import ALL_TOOLS
from loadbalancer.toolcalls.parser import ToolCall, parse_tool_calls
from loadbalancer.toolcalls.rewrite import ToolCallStats, ToolCallStreamRewriter, rewrite_message
from toolcall_stream_support import anthropic_events, assemble_message, random_chunks, rewrite_stream, without_ids

HERMES_LS = '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
CUT_OFF_WRITE = "<tool_call>\n<function=write_file>\n<parameter=file_path>\na.py\n</parameter>\n<parameter=cont"


def _message(*blocks: dict, stop_reason: str = "end_turn") -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "content": list(blocks), "stop_reason": stop_reason}


def test_text_block_split_in_place_keeping_other_blocks() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    existing = {"type": "tool_use", "id": "toolu_existing", "name": "todo_read", "input": {}}
    message = _message(thinking, {"type": "text", "text": "Listing.\n" + HERMES_LS + "\nDone."}, existing)
    original = copy.deepcopy(message)
    rewritten, stats = rewrite_message(message, ALL_TOOLS)
    assert message == original
    types = [block["type"] for block in rewritten["content"]]
    assert types == ["thinking", "text", "tool_use", "text", "tool_use"]
    assert rewritten["content"][1]["text"] == "Listing.\n"
    assert rewritten["content"][2]["input"] == {"command": "ls"}
    assert re.fullmatch(r"toolu_[A-Za-z0-9]{24}", rewritten["content"][2]["id"])
    assert rewritten["content"][4] is existing
    assert rewritten["stop_reason"] == "tool_use"
    assert stats == ToolCallStats(parsed=1, repaired=0, rejected=0)


def test_no_tools_or_off_returns_the_same_message() -> None:
    message = _message({"type": "text", "text": HERMES_LS})
    assert rewrite_message(message, None)[0] is message
    assert rewrite_message(message, [])[0] is message
    assert rewrite_message(message, ALL_TOOLS, mode="off")[0] is message


def test_a_message_with_nothing_to_rewrite_is_returned_as_it_is() -> None:
    prose = _message({"type": "text", "text": "No call here: <b>bold</b> and {\"json\": 1}."},
                     {"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {"command": "ls"}})
    assert rewrite_message(prose, ALL_TOOLS) == (prose, ToolCallStats())
    assert rewrite_message(prose, ALL_TOOLS)[0] is prose
    # A rejected call stays text, as it was written: the message is still the same one.
    cut_off = _message({"type": "text", "text": "Writing.\n" + CUT_OFF_WRITE}, stop_reason="max_tokens")
    rewritten, stats = rewrite_message(cut_off, ALL_TOOLS)
    assert rewritten is cut_off and stats.rejected == 1
    # Reasoning written as text is dropped when the client did not ask for thinking: changed.
    reasoning = _message({"type": "text", "text": "<think>plan</think>The answer."})
    assert rewrite_message(reasoning, ALL_TOOLS)[0]["content"] == [{"type": "text", "text": "The answer."}]


def test_missing_required_argument_stays_text_and_is_counted() -> None:
    message = _message({"type": "text", "text": "Writing.\n" + CUT_OFF_WRITE}, stop_reason="max_tokens")
    rewritten, stats = rewrite_message(message, ALL_TOOLS)
    assert rewritten["content"] == [{"type": "text", "text": "Writing.\n" + CUT_OFF_WRITE}]
    assert rewritten["stop_reason"] == "max_tokens"
    assert stats == ToolCallStats(parsed=0, repaired=0, rejected=1)
    [call] = [segment for segment in parse_tool_calls(CUT_OFF_WRITE, ALL_TOOLS) if isinstance(segment, ToolCall)]
    assert call.missing == ("content",)


def test_complete_call_cut_by_max_tokens_still_becomes_tool_use() -> None:
    rewritten, stats = rewrite_message(_message({"type": "text", "text": HERMES_LS[:-12]}, stop_reason="max_tokens"), ALL_TOOLS)
    assert rewritten["stop_reason"] == "tool_use" and stats.parsed == 1


def test_repaired_calls_are_counted() -> None:
    text = "<tool_call>{'name': 'get_weather', 'arguments': {'city': 'Paris', 'days': '3'}}</tool_call>"
    _, stats = rewrite_message(_message({"type": "text", "text": text}), ALL_TOOLS)
    assert stats == ToolCallStats(parsed=1, repaired=1, rejected=0)


def test_call_object_needing_repair_counts_as_repaired() -> None:
    text = "<tool_call>{'name': 'shell', 'arguments': {'command': 'ls'}}</tool_call>"
    _, stats = rewrite_message(_message({"type": "text", "text": text}), ALL_TOOLS)
    assert stats == ToolCallStats(parsed=1, repaired=1, rejected=0)
    _, stats = rewrite_message(_message({"type": "text", "text": HERMES_LS}), ALL_TOOLS)
    assert stats == ToolCallStats(parsed=1, repaired=0, rejected=0)


def test_mode_restricts_to_one_format() -> None:
    text = HERMES_LS + '\n[TOOL_CALLS]shell[ARGS]{"command": "pwd"}'
    rewritten, stats = rewrite_message(_message({"type": "text", "text": text}), ALL_TOOLS, mode="mistral")
    assert stats.parsed == 1
    assert rewritten["content"][0] == {"type": "text", "text": HERMES_LS + "\n"}
    assert rewritten["content"][1]["input"] == {"command": "pwd"}


def test_stream_text_block_start_waits_for_text_and_tool_use_is_one_delta() -> None:
    rewriter = ToolCallStreamRewriter(ALL_TOOLS)
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert rewriter.feed(start) == []
    assert rewriter.feed({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "text_delta", "text": "<tool_"}}) == []
    assert rewriter.feed({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "text_delta", "text": HERMES_LS[6:]}}) == []
    events = rewriter.feed({"type": "content_block_stop", "index": 0})  # a call waits for the end of its text
    assert [event["type"] for event in events] == ["content_block_start", "content_block_delta", "content_block_stop"]
    assert events[0]["content_block"]["input"] == {} and events[0]["content_block"]["name"] == "shell"
    assert json.loads(events[1]["delta"]["partial_json"]) == {"command": "ls"}
    delta = rewriter.feed({"type": "message_delta", "delta": {"stop_reason": "end_turn"}})
    assert delta[0]["delta"]["stop_reason"] == "tool_use"


def test_stream_reindexes_passthrough_blocks_and_never_interleaves() -> None:
    events = [
        {"type": "message_start", "message": {"content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "plan"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Go.\n" + HERMES_LS}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "\nThen:"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "toolu_up", "name": "todo_read", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}},
        {"type": "message_stop"},
    ]
    output, rewriter = rewrite_stream(events, ALL_TOOLS)
    message = assemble_message(output)
    assert [block["type"] for block in message["content"]] == ["thinking", "text", "tool_use", "text", "tool_use"]
    assert message["content"][4]["id"] == "toolu_up"
    assert output[0]["type"] == "message_start" and output[-1]["type"] == "message_stop"
    assert rewriter.stats.parsed == 1


def test_stream_rejected_call_is_sent_as_its_text() -> None:
    output, rewriter = rewrite_stream(anthropic_events(random_chunks(CUT_OFF_WRITE, 3), "max_tokens"), ALL_TOOLS)
    message = assemble_message(output)
    assert message["content"] == [{"type": "text", "text": CUT_OFF_WRITE}]
    assert message["stop_reason"] == "max_tokens"
    assert rewriter.stats.rejected == 1


def test_stream_without_message_stop_is_flushed_by_finish() -> None:
    rewriter = ToolCallStreamRewriter(ALL_TOOLS)
    output = []
    for event in anthropic_events(["Hi ", HERMES_LS[:-12]])[:4]:
        output.extend(rewriter.feed(event))
    output.extend(rewriter.finish())
    message = assemble_message(output)
    assert [block["type"] for block in message["content"]] == ["text", "tool_use"]


def test_inactive_rewriter_passes_events_through() -> None:
    for rewriter in (ToolCallStreamRewriter(None), ToolCallStreamRewriter(ALL_TOOLS, mode="off")):
        assert rewriter.active is False
        event = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        assert rewriter.feed(event) == [event]
    assert ToolCallStreamRewriter(ALL_TOOLS).active is True


def test_two_text_blocks_are_rewritten_separately_in_both_modes() -> None:
    message = _message({"type": "text", "text": "A " + HERMES_LS}, {"type": "text", "text": "B"})
    rewritten, _ = rewrite_message(message, ALL_TOOLS)
    events = [{"type": "message_start", "message": {}}]
    for index, block in enumerate(message["content"]):
        events += [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                   {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": block["text"]}},
                   {"type": "content_block_stop", "index": index}]
    events += [{"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, {"type": "message_stop"}]
    assembled = assemble_message(rewrite_stream(events, ALL_TOOLS)[0])
    assert without_ids(assembled["content"]) == without_ids(rewritten["content"])
    assert [block["type"] for block in rewritten["content"]] == ["text", "tool_use", "text"]
