"""Measure the text tool-call parser on the corpus: per family and overall, complete and streamed.

Run: .venv/bin/python bench/toolcalls.py [--families]

Accuracy is reported for the family cases (one or more per family the public parsers know,
like the held-out sets drawn from their suites), for the catalogue corpus (generated per format,
hard and negative cases) and for both; --families adds the table per family. CPU cost is per KB
of parsed text, streamed in small deltas and complete.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from toolcall_corpus import Case, load_cases  # noqa: E402
from toolcall_corpus.renderers import RENDERERS  # noqa: E402
from loadbalancer.toolcalls.detectors import ENTRIES  # noqa: E402
from loadbalancer.toolcalls.detectors.reasoning import FRAMING_OPENERS, REASONING_OPENERS  # noqa: E402
from loadbalancer.toolcalls.parser import (Segment, StreamingToolCallParser, TextSegment, ToolCall,  # noqa: E402
                                           parse_tool_calls)
from loadbalancer.toolcalls.rewrite import REASONING_REACH  # noqa: E402
from toolcall_stream_support import random_chunks, stream_parse  # noqa: E402

STREAM_CHUNK = 6          # characters per delta at most, about one or two tokens
TIMING_ROUNDS = 5
# Protocol markup that must never reach a client: every opener the detectors know (the generic
# one-character ones excepted), reasoning markers and template tokens, and the usual closers.
MARKERS = sorted({opener for entry in ENTRIES for opener in entry.openers if len(opener) > 3 and "\x00" not in opener}
                 | set(REASONING_OPENERS) | set(FRAMING_OPENERS) - {"<co>", "</co:", "<answer>", "<response>"}
                 | {"</tool_call>", "</function>", "</invoke>", "</parameter>", "<|tool_call_end|>", "<|END_ACTION|>",
                    "<|message|>", "<|channel|>", "<tool_call|>", "[ARGS]", "<arg_key>", "<arg_value>"})


@dataclass
class Tally:
    """Counts for one group of cases in one mode."""

    cases: int = 0
    positives: int = 0
    parsed_ok: int = 0
    calls: int = 0
    missing: int = 0
    exact: int = 0
    markup_left: int = 0
    prose_differs: int = 0
    false_calls: int = 0

    def record(self, case: Case, segments: Sequence[Segment]) -> None:
        """Score one parse against the case's expectations."""
        calls = [segment for segment in segments if isinstance(segment, ToolCall)]
        text = "".join(segment.text for segment in segments if isinstance(segment, TextSegment))
        self.cases += 1
        expected_prose = "".join(case.prose)
        self.markup_left += any(marker in text and marker not in expected_prose for marker in MARKERS)
        self.prose_differs += _collapsed(text) != _collapsed(expected_prose)
        self.false_calls += bool(Counter(call.name for call in calls) - Counter(name for name, _ in case.calls))
        if not case.calls:
            return
        self.positives += 1
        self.parsed_ok += [call.name for call in calls] == [name for name, _ in case.calls]
        self.calls += len(case.calls)
        self.missing += sum(1 for call in calls if call.missing)
        self.exact += sum(1 for call, (_, expected) in zip(calls, case.calls) if call.input == expected)


def _collapsed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def _cells(tally: Tally) -> list[str]:
    return [_percent(tally.parsed_ok, tally.positives), _percent(tally.missing, tally.calls),
            _percent(tally.exact, tally.calls), str(tally.markup_left), str(tally.false_calls), str(tally.prose_differs)]


HEADER = ("| {0} | cases | parse ok % | missing args % | exact args % | markup left | false calls | prose differs "
          "| stream parse ok % | stream missing % | stream exact % | stream markup left | stream false calls "
          "| stream prose differs |")


def _table(title: str, groups: dict[str, tuple[Tally, Tally]]) -> list[str]:
    lines = [HEADER.format(title), "|" + "---|" * 14]
    for name, (complete, streamed) in groups.items():
        lines.append("| " + " | ".join([name, str(complete.cases)] + _cells(complete) + _cells(streamed)) + " |")
    return lines


def _parse_both(case: Case, number: int) -> tuple[list[Segment], list[Segment]]:
    tools = list(case.tools)
    complete = parse_tool_calls(case.text, tools, reasoning_reach=REASONING_REACH)
    streamed = stream_parse(random_chunks(case.text, number, STREAM_CHUNK), tools, reasoning_reach=REASONING_REACH)
    return complete, streamed


def measure_accuracy(cases: Sequence[Case], per_family: bool) -> list[str]:
    """The markdown tables of accuracy, complete and streamed."""
    parts: dict[str, tuple[Tally, Tally]] = defaultdict(lambda: (Tally(), Tally()))
    families: dict[str, tuple[Tally, Tally]] = defaultdict(lambda: (Tally(), Tally()))
    for number, case in enumerate(cases):
        complete, streamed = _parse_both(case, number)
        part = "family cases (public-suite-like)" if case.id.startswith("family-") else "catalogue corpus"
        for complete_tally, stream_tally in (parts[part], parts["all"], families[case.group]):
            complete_tally.record(case, complete)
            stream_tally.record(case, streamed)
    ordered = {name: parts[name] for name in ("family cases (public-suite-like)", "catalogue corpus", "all")}
    lines = _table("cases", ordered)
    if per_family:
        lines += ["", *_table("family or format", dict(sorted(families.items())))]
    return lines


def _cpu_microseconds_per_kilobyte(texts: Sequence[str], run: Callable[[str], object]) -> float:
    best = float("inf")
    for _ in range(TIMING_ROUNDS):  # the least disturbed round: the machine is shared
        started = time.process_time()
        for text in texts:
            run(text)
        best = min(best, time.process_time() - started)
    kilobytes = sum(len(text.encode()) for text in texts) / 1024
    return 1e6 * best / kilobytes


def _streamer(tools: list[dict]) -> Callable[[str], object]:
    def run(text: str) -> object:
        parser = StreamingToolCallParser(tools)
        for chunk in random_chunks(text, 1, STREAM_CHUNK):
            parser.feed(chunk)
        return parser.finish()
    return run


def measure_speed(cases: Sequence[Case]) -> list[str]:
    """CPU cost per KB for the corpus, the seed corpus, long prose, and one large call."""
    tools = list(cases[0].tools)
    plain = ("The quick brown fox jumps over the lazy dog, again and again, with no markup at all.\n" * 800,)
    prose = ("The quick brown fox jumps over the lazy dog; a < b, see [docs](x) and {braces}.\n" * 800,)
    big_content = "def f(x):\n    return {'a': [x, x + 1]}  # <b>\n" * 2000
    big_call = ('<tool_call>{"name": "write_file", "arguments": {"file_path": "big.py", "content": '
                + json.dumps(big_content) + "}}</tool_call>",)
    corpus = [case.text for case in cases]
    seed = [case.text for case in cases if case.format in RENDERERS and not case.id.startswith("family-")
            or case.id.startswith(("hard-", "negative-"))]
    rows = [("corpus (all cases)", corpus), ("catalogue corpus of formats 1-25 (the seed's)", seed),
            ("plain prose, 68 KB", plain), ("prose with < [ { on every line, 63 KB", prose),
            ("one write_file call, 100 KB", big_call)]
    lines = ["| text | streamed µs CPU per KB | complete µs CPU per KB |", "|---|---|---|"]
    for label, texts in rows:
        streamed = _cpu_microseconds_per_kilobyte(texts, _streamer(tools))
        complete = _cpu_microseconds_per_kilobyte(texts, lambda text: parse_tool_calls(text, tools))
        lines.append(f"| {label} | {streamed:.0f} | {complete:.0f} |")
    return lines


def main() -> None:
    """Print the tables."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--families", action="store_true", help="also print the table per family")
    arguments = options.parse_args()
    cases = load_cases()
    families = len({case.group for case in cases if case.id.startswith("family-")})
    print(f"Corpus: {len(cases)} cases ({families} families in the family cases); streamed in random chunks "
          f"of 1-{STREAM_CHUNK} characters.\n")
    print("\n".join(measure_accuracy(cases, arguments.families)))
    print()
    print("\n".join(measure_speed(cases)))


if __name__ == "__main__":
    main()
