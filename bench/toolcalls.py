"""Measure the text tool-call parser on the corpus: per format and overall, complete and streamed.

Run: .venv/bin/python bench/toolcalls.py
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from toolcall_corpus import Case, load_cases  # noqa: E402
from loadbalancer.toolcalls.parser import Segment, StreamingToolCallParser, TextSegment, ToolCall, parse_tool_calls  # noqa: E402
from toolcall_stream_support import random_chunks, stream_parse  # noqa: E402

STREAM_CHUNK = 6          # characters per delta at most, about one or two tokens
TIMING_ROUNDS = 5


@dataclass
class Tally:
    """Counts for one format in one mode."""

    cases: int = 0
    positives: int = 0
    parsed_ok: int = 0
    calls: int = 0
    missing: int = 0
    exact: int = 0
    markup_left: int = 0
    false_calls: int = 0

    def record(self, case: Case, segments: Sequence[Segment]) -> None:
        """Score one parse against the case's expectations."""
        calls = [segment for segment in segments if isinstance(segment, ToolCall)]
        prose = tuple(segment.text for segment in segments if isinstance(segment, TextSegment))
        self.cases += 1
        if case.format == "negative":
            self.false_calls += bool(calls)
            return
        self.positives += 1
        self.parsed_ok += [call.name for call in calls] == [name for name, _ in case.calls]
        self.calls += len(case.calls)
        self.missing += sum(1 for call in calls if call.missing)
        self.exact += sum(1 for call, (_, expected) in zip(calls, case.calls) if call.input == expected)
        self.markup_left += prose != case.prose


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def _row(name: str, complete: Tally, streamed: Tally) -> str:
    cells = [name, str(complete.cases)]
    for tally in (complete, streamed):
        if name == "negative":
            cells += ["-", "-", "-", "-", str(tally.false_calls)]
        else:
            cells += [_percent(tally.parsed_ok, tally.positives), _percent(tally.missing, tally.calls),
                      _percent(tally.exact, tally.calls), str(tally.markup_left), str(tally.false_calls)]
    return "| " + " | ".join(cells) + " |"


def measure_accuracy(cases: Sequence[Case]) -> list[str]:
    """The markdown table of accuracy per format, complete and streamed."""
    complete: dict[str, Tally] = defaultdict(Tally)
    streamed: dict[str, Tally] = defaultdict(Tally)
    for number, case in enumerate(cases):
        tools = list(case.tools)
        segments = parse_tool_calls(case.text, tools)
        for table in (complete[case.format], complete["overall"]):
            table.record(case, segments)
        segments = stream_parse(random_chunks(case.text, number, STREAM_CHUNK), tools)
        for table in (streamed[case.format], streamed["overall"]):
            table.record(case, segments)
    header = ("| format | cases | parse ok % | missing args % | exact args % | markup left | false calls "
              "| stream parse ok % | stream missing % | stream exact % | stream markup left | stream false calls |")
    lines = [header, "|" + "---|" * 12]
    names = sorted(name for name in complete if name not in ("overall", "negative")) + ["negative", "overall"]
    lines += [_row(name, complete[name], streamed[name]) for name in names]
    return lines


def _cpu_microseconds_per_kilobyte(texts: Sequence[str], tools: list[dict], run: Callable[[str], object]) -> float:
    started = time.process_time()
    for _ in range(TIMING_ROUNDS):
        for text in texts:
            run(text)
    elapsed = time.process_time() - started
    kilobytes = TIMING_ROUNDS * sum(len(text.encode()) for text in texts) / 1024
    return 1e6 * elapsed / kilobytes


def _streamer(tools: list[dict]) -> Callable[[str], object]:
    def run(text: str) -> object:
        parser = StreamingToolCallParser(tools)
        for chunk in random_chunks(text, 1, STREAM_CHUNK):
            parser.feed(chunk)
        return parser.finish()
    return run


def measure_speed(cases: Sequence[Case]) -> list[str]:
    """CPU cost per KB of streamed text for the corpus, long prose, and one large call."""
    tools = list(cases[0].tools)
    plain = ("The quick brown fox jumps over the lazy dog, again and again, with no markup at all.\n" * 800,)
    prose = ("The quick brown fox jumps over the lazy dog; a < b, see [docs](x) and {braces}.\n" * 800,)
    big_content = "def f(x):\n    return {'a': [x, x + 1]}  # <b>\n" * 2000
    big_call = ('<tool_call>{"name": "write_file", "arguments": {"file_path": "big.py", "content": '
                + json.dumps(big_content) + "}}</tool_call>",)
    corpus = [case.text for case in cases]
    rows = [("corpus (all cases)", corpus), ("plain prose, 68 KB", plain), ("prose with < [ { on every line, 63 KB", prose), ("one write_file call, 100 KB", big_call)]
    lines = ["| text | streamed µs CPU per KB | complete µs CPU per KB |", "|---|---|---|"]
    for label, texts in rows:
        streamed = _cpu_microseconds_per_kilobyte(texts, tools, _streamer(tools))
        complete = _cpu_microseconds_per_kilobyte(texts, tools, lambda text: parse_tool_calls(text, tools))
        lines.append(f"| {label} | {streamed:.0f} | {complete:.0f} |")
    return lines


def main() -> None:
    """Print both tables."""
    cases = load_cases()
    print(f"Corpus: {len(cases)} cases; streamed in random chunks of 1-{STREAM_CHUNK} characters.\n")
    print("\n".join(measure_accuracy(cases)))
    print()
    print("\n".join(measure_speed(cases)))


if __name__ == "__main__":
    main()
