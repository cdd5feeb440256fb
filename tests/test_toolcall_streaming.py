"""Streaming contract: any cutting of any text gives the complete parse; prose is not held back."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcall_corpus import load_cases
from toolcall_corpus.tools import ALL_TOOLS
from loadbalancer.toolcalls.parser import ReasoningSegment, StreamingToolCallParser, TextSegment, ToolCall, parse_tool_calls
from toolcall_stream_support import stream_parse

FRAGMENTS = [
    "Hello ", "world", "\n", "\n\n", " ", "a < b", "x[0]", "{", "}", "[", "]", "<", ">", "`", "```", "```json\n",
    "<tool_", "call>", "</tool_call>", "<think>", "</think>", "functools", "func", '"', "'", ":", ",",
    '{"name": "shell", "arguments": {"command": "ls"}}', '{"tool": "read_file", "args": {"file_path": "a"}}',
    "[read_file(file_path='a')]", "<read_file>", "<file_path>x</file_path>", "</read_file>", "[TOOL_CALLS]",
    "shell", "[ARGS]", '{"command": "pwd"}', "<function=shell>", "<parameter=command>", "</parameter>",
    "</function>", "<｜tool▁calls▁begin｜>", "<|tool_call|>", "<|python_tag|>", "<|channel|>", "é🚀",
    "<|tool_call_start|>", "<|tool_call_end|>", "<|START_ACTION|>", "<|END_ACTION|>", "<|START_THINKING|>",
    "<|END_THINKING|>", "<|START_RESPONSE|>", "<|message_sep|>", "function call<|role_sep|>", "</s>",
    "<|start|>assistant", "<|message|>", "commentary to=functions.shell ", "analysis", "<|end|>", "<|call|>",
    "[THINK]", "[/THINK]", "<seed:think>", "</seed:think>", "<function_calls>", "</function_calls>",
    '<invoke name="shell">', '<parameter name="command">', "</invoke>", "<minimax:tool_call>", "<answer>",
    "</answer>", "shell(command='ls')", "<function_call> ", "<arg_key>", "</arg_key>", "<arg_value>",
    "</arg_value>", "<｜DSML｜function_calls>", "<|tools_prefix|>", "Here is my thought process:",
]
CORPUS_TEXTS = [case.text for case in load_cases()]


@st.composite
def texts_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A text stitched from markers, prose and corpus items, and places to cut it."""
    pieces = draw(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(CORPUS_TEXTS),
                                     st.text(max_size=8)), max_size=12))
    text = "".join(pieces)
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(text)), max_size=10))
    return text, sorted(set(cuts))


def _chunks(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [text[start:end] for start, end in zip(bounds, bounds[1:])]


@settings(max_examples=400, deadline=None)
@given(texts_and_cuts())
def test_any_cutting_equals_the_complete_parse(sample: tuple[str, list[int]]) -> None:
    text, cuts = sample
    assert stream_parse(_chunks(text, cuts), ALL_TOOLS) == parse_tool_calls(text, ALL_TOOLS)


@settings(max_examples=300, deadline=None)
@given(texts_and_cuts(), st.sampled_from([16, 200, 4096]))
def test_any_cutting_equals_the_complete_parse_when_the_prompt_may_have_opened_reasoning(
        sample: tuple[str, list[int]], reach: int) -> None:
    text, cuts = sample
    expected = parse_tool_calls(text, ALL_TOOLS, reasoning_reach=reach)
    assert stream_parse(_chunks(text, cuts), ALL_TOOLS, reasoning_reach=reach) == expected


def test_function_tag_without_arguments_cut_before_its_closer() -> None:
    """The known mismatch of the seed: <function=shell></ then function> gave text, not the call."""
    text = "<function=shell></function>"
    expected = parse_tool_calls(text, ALL_TOOLS)
    assert [type(segment).__name__ for segment in expected] == ["ToolCall"]
    for cut in range(1, len(text)):
        assert stream_parse([text[:cut], text[cut:]], ALL_TOOLS) == expected, cut


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_without_tools_is_unchanged(text: str) -> None:
    assert parse_tool_calls(text, None) == ([TextSegment(text)] if text else [])
    assert stream_parse(list(text), []) == ([TextSegment(text)] if text else [])


@pytest.mark.parametrize("prose", [
    "Plain prose with no markers at all, just words and numbers 1, 2, 3.",
    "Compare a < b and c > d, then see [the docs](http://example.com) for {placeholders}.",
    "Use `code` and <b>bold</b> tags; functools.partial is handy.\nNext line [x] done.",
    '{"status": "ok"}\nThe JSON above is the reply of the server, nothing to run.',
])
def test_prose_is_not_held_back(prose: str) -> None:
    parser = StreamingToolCallParser(ALL_TOOLS)
    emitted = "".join(segment.text for char in prose for segment in parser.feed(char) if isinstance(segment, TextSegment))
    assert len(prose) - len(emitted) <= 8
    assert emitted + "".join(segment.text for segment in parser.finish()) == prose


def test_marker_split_across_deltas_is_held_then_parsed() -> None:
    parser = StreamingToolCallParser(ALL_TOOLS)
    assert parser.feed("<think>List it.</think>Sure.\n<tool_") == [ReasoningSegment("List it."), TextSegment("Sure.\n")]
    assert parser.feed('call>{"name": "shell", "arguments": {"command": "ls"}}') == []
    [call] = parser.feed("</tool_call>")
    assert (call.name, call.input, call.format) == ("shell", {"command": "ls"}, "hermes")
    assert parser.finish() == []


def test_several_calls_in_one_delta() -> None:
    call = '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
    parser = StreamingToolCallParser(ALL_TOOLS)
    segments = parser.feed("<think>x</think>" + call + "\n" + call + "\nok")
    assert [type(segment).__name__ for segment in segments] == ["ReasoningSegment", "ToolCall", "ToolCall", "TextSegment"]


def test_call_before_any_reasoning_marker_waits_for_the_end_of_the_text() -> None:
    call = '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
    parser = StreamingToolCallParser(ALL_TOOLS)
    assert parser.feed("Listing.\n" + call + "\nThen") == [TextSegment("Listing.\n")]
    [first, then] = parser.finish()
    assert isinstance(first, ToolCall) and then == TextSegment("\nThen")


def test_call_before_a_bare_think_close_is_reasoning() -> None:
    """Templates that open <think> in the prompt: a call quoted before the bare </think> is a draft."""
    call = '<tool_call>{"name": "shell", "arguments": {"command": "rm -rf /"}}</tool_call>'
    parser = StreamingToolCallParser(ALL_TOOLS)
    segments = parser.feed("It would be " + call + " but no.") + parser.feed("</think>Nothing to run.") + parser.finish()
    assert segments == [TextSegment("It would be "), ReasoningSegment(call + " but no."), TextSegment("Nothing to run.")]


def test_call_in_a_section_never_closed_ends_the_reasoning() -> None:
    call = '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
    parser = StreamingToolCallParser(ALL_TOOLS)
    assert parser.feed("<think>I need a listing.\n" + call) == [ReasoningSegment("I need a listing.\n")]
    [segment] = parser.finish()
    assert isinstance(segment, ToolCall) and segment.input == {"command": "ls"}
    closed = parse_tool_calls("<think>I need a listing.\n" + call + "</think>Done.", ALL_TOOLS)
    assert closed == [ReasoningSegment("I need a listing.\n" + call), TextSegment("Done.")]


@pytest.mark.parametrize("cut", range(len("<think>Weather:\n"), len("<think>Weather:\nfunctools[")))
def test_a_call_word_cut_by_a_delta_inside_open_reasoning_still_ends_it(cut: int) -> None:
    text = '<think>Weather:\nfunctools[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'
    parser = StreamingToolCallParser(ALL_TOOLS)
    segments = parser.feed(text[:cut]) + parser.feed(text[cut:]) + parser.finish()
    assert segments == parse_tool_calls(text, ALL_TOOLS)
    assert segments[0] == ReasoningSegment("Weather:\n")
    assert isinstance(segments[1], ToolCall) and segments[1].input == {"city": "Oslo"}


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown tool-call format"):
        StreamingToolCallParser(ALL_TOOLS, mode="xml")
