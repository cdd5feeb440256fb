"""The corpus, in complete and streamed form, through the parser and the rewriter."""
from __future__ import annotations

import re

import pytest

from toolcall_corpus import Case, load_cases
from loadbalancer.toolcalls.parser import (ReasoningSegment, StreamingToolCallParser, TextSegment, ToolCall,
                                           merge_text_segments, parse_tool_calls)
from loadbalancer.toolcalls.rewrite import REASONING_REACH, rewrite_message
from toolcall_stream_support import (
    anthropic_events,
    assemble_message,
    random_chunks,
    rewrite_stream,
    stream_parse,
    without_ids,
)

CASES = load_cases()


def _summary(segments: list, loose: bool = False) -> tuple[tuple, tuple, tuple]:
    calls = tuple((segment.name, segment.input) for segment in segments if isinstance(segment, ToolCall))
    reasoning = tuple(segment.text for segment in segments if isinstance(segment, ReasoningSegment))
    if not loose:
        prose = tuple(segment.text for segment in segments if isinstance(segment, TextSegment))
        return calls, prose, reasoning
    runs, current = [], []
    for segment in segments:  # the visible text between calls, whitespace collapsed
        if isinstance(segment, TextSegment):
            current.append(segment.text)
        elif isinstance(segment, ToolCall):
            runs.append("".join(current))
            current = []
    runs.append("".join(current))
    return calls, _collapsed(runs), _collapsed(["".join(reasoning)])


def _collapsed(texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(collapsed for collapsed in (re.sub(r"\s+", " ", text).strip() for text in texts) if collapsed)


def _expected(case: Case) -> tuple[tuple, tuple, tuple]:
    if case.loose:
        return case.calls, _collapsed(case.prose), _collapsed(["".join(case.reasoning)])
    return case.calls, case.prose, case.reasoning


def _parse(case: Case) -> list:
    return parse_tool_calls(case.text, list(case.tools), reasoning_reach=REASONING_REACH)


def test_corpus_covers_every_format_at_least_ten_times() -> None:
    from loadbalancer.toolcalls.parser import FORMATS
    counts = {name: sum(1 for case in CASES if case.format == name) for name in FORMATS}
    assert all(count >= 10 for count in counts.values()), counts
    assert sum(1 for case in CASES if case.format == "negative") >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_complete_text_gives_expected_calls_and_prose(case: Case) -> None:
    segments = _parse(case)
    assert _summary(segments, case.loose) == _expected(case)
    assert all(not segment.missing for segment in segments if isinstance(segment, ToolCall))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_stream_equals_complete_for_random_and_single_character_chunks(case: Case) -> None:
    expected = _parse(case)
    for seed in range(3):
        assert stream_parse(random_chunks(case.text, seed), list(case.tools), reasoning_reach=REASONING_REACH) == expected, seed
    assert stream_parse(list(case.text), list(case.tools), reasoning_reach=REASONING_REACH) == expected


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_stream_equals_complete_for_every_single_cut(case: Case) -> None:
    tools = list(case.tools)
    expected = _parse(case)
    for cut in range(1, len(case.text)):
        parser = StreamingToolCallParser(tools, reasoning_reach=REASONING_REACH)
        segments = parser.feed(case.text[:cut]) + parser.feed(case.text[cut:]) + parser.finish()
        assert merge_text_segments(segments) == expected, cut


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_rewritten_stream_equals_rewritten_message(case: Case) -> None:
    tools = list(case.tools)
    message = {"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": case.text}]}
    rewritten, stats = rewrite_message(message, tools)
    assert stats.parsed == len(case.calls) and stats.rejected == 0
    assert [(block["name"], block["input"]) for block in rewritten["content"] if block["type"] == "tool_use"] == list(case.calls)
    expected_stop = "tool_use" if case.calls else "end_turn"
    assert rewritten["stop_reason"] == expected_stop
    for chunks in (random_chunks(case.text, 11), list(case.text)):
        events, rewriter = rewrite_stream(anthropic_events(chunks), tools)
        assembled = assemble_message(events)
        assert without_ids(assembled["content"]) == without_ids(rewritten["content"])
        assert assembled["stop_reason"] == expected_stop
        assert rewriter.stats == stats
