"""Corpus of text tool calls: generated cases for every format, hand-written hard and negative cases,
and one or more cases per model family known to the public parsers (families_cases.py).

Each case holds the answer text, the request's tools, the calls expected (name and exact input),
the prose expected around them (the text segments, in order) and the reasoning expected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from toolcall_corpus.family_renderers import FAMILY_RENDERERS
from toolcall_corpus.renderers import RENDERERS
from toolcall_corpus.tools import ALL_TOOLS


@dataclass(frozen=True)
class Case:
    """One answer text and what the parser must make of it."""

    id: str
    format: str                      # the catalogued format, or "negative"
    text: str
    calls: tuple[tuple[str, dict], ...]
    prose: tuple[str, ...]
    tools: tuple[dict, ...] = field(default=tuple(ALL_TOOLS))
    reasoning: tuple[str, ...] = ()  # the reasoning segments expected, markers removed
    family: str = ""                 # the model family (default: the format)
    loose: bool = False              # prose and reasoning compared with whitespace collapsed

    @property
    def group(self) -> str:
        """The family the case is reported under."""
        return self.family or self.format


TRICKY_CONTENT = 'x = "</tool_call>"\ny = "</parameter>"\nprint(x, y)\n'

CALLS: list[tuple[str, dict]] = [
    ("shell", {"command": "ls -la"}),
    ("read_file", {"file_path": "src/main.py"}),
    ("write_file", {"file_path": "hello.py", "content": 'print("hi")\nfor i in range(3):\n    print(i)\n'}),
    ("str_replace", {"file_path": "a.py", "diff": "--- a\n+++ b\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"}),
    ("final_output", {"summary": "Done: all tests pass ✅ — café, 東京"}),
    ("todo_read", {}),
    ("todo_write", {"content": "- [ ] write tests\n- [x] parse calls"}),
    ("code_search", {"searches": [{"name": "find", "query": "def main", "language": "python"}]}),
    ("get_weather", {"city": "São Paulo", "days": 5, "metric": True}),
    ("search", {"query": "json repair", "limit": 10, "filters": {"lang": "en"}, "tags": ["a", "b"]}),
    ("write_file", {"file_path": "tricky.py", "content": TRICKY_CONTENT}),
    ("read_file", {"file_path": "docs/README.md", "start": 40}),
]

_PROSE_AROUND = [
    ("", ""),
    ("Let me do that.\n\n", ""),
    ("I'll check — ünïcødé 🚀.\n", "\nWaiting for the result."),
    ("", "\nDone."),
]


def _generated_cases() -> list[Case]:
    cases = []
    for format_name, render in {**RENDERERS, **FAMILY_RENDERERS}.items():
        for number, (name, args) in enumerate(CALLS):
            before, after = _PROSE_AROUND[number % len(_PROSE_AROUND)]
            text = before + render(name, args, number) + after
            prose = tuple(part for part in (before, after) if part)
            cases.append(Case(f"{format_name}-{number}", format_name, text, ((name, args),), prose))
        first, second = CALLS[1], CALLS[0]
        text = ("I'll look.\n" + render(*first, 0) + "\n" + render(*second, 1) + "\nThen I'll report.")
        cases.append(Case(f"{format_name}-two-calls", format_name, text, (first, second),
                          ("I'll look.\n", "\nThen I'll report.")))
    return cases


def load_cases() -> list[Case]:
    """Every corpus case: generated per format, the hard and negative cases, then the family cases."""
    from toolcall_corpus.families_cases import FAMILY_CASES
    from toolcall_corpus.hard_cases import HARD_CASES
    from toolcall_corpus.negative_cases import NEGATIVE_CASES
    return _generated_cases() + HARD_CASES + NEGATIVE_CASES + FAMILY_CASES
