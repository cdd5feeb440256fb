"""Streaming contract: any cutting of any text gives the complete parse; prose is not held back."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcall_corpus import load_cases
from toolcall_corpus.tools import ALL_TOOLS
from loadbalancer.toolcalls.parser import StreamingToolCallParser, TextSegment, parse_tool_calls
from toolcall_stream_support import stream_parse

FRAGMENTS = [
    "Hello ", "world", "\n", "\n\n", " ", "a < b", "x[0]", "{", "}", "[", "]", "<", ">", "`", "```", "```json\n",
    "<tool_", "call>", "</tool_call>", "<think>", "</think>", "functools", "func", '"', "'", ":", ",",
    '{"name": "shell", "arguments": {"command": "ls"}}', '{"tool": "read_file", "args": {"file_path": "a"}}',
    "[read_file(file_path='a')]", "<read_file>", "<file_path>x</file_path>", "</read_file>", "[TOOL_CALLS]",
    "shell", "[ARGS]", '{"command": "pwd"}', "<function=shell>", "<parameter=command>", "</parameter>",
    "</function>", "<｜tool▁calls▁begin｜>", "<|tool_call|>", "<|python_tag|>", "<|channel|>", "é🚀",
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
    assert parser.feed("Sure.\n<tool_") == [TextSegment("Sure.\n")]
    assert parser.feed('call>{"name": "shell", "arguments": {"command": "ls"}}') == []
    [call] = parser.feed("</tool_call>")
    assert (call.name, call.input, call.format) == ("shell", {"command": "ls"}, "hermes")
    assert parser.finish() == []


def test_several_calls_in_one_delta() -> None:
    call = '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
    segments = StreamingToolCallParser(ALL_TOOLS).feed(call + "\n" + call + "\nok")
    assert [type(segment).__name__ for segment in segments] == ["ToolCall", "ToolCall", "TextSegment"]


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown tool-call format"):
        StreamingToolCallParser(ALL_TOOLS, mode="xml")
