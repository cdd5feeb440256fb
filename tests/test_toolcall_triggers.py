"""The trigger search: one combined pattern on short texts, a character class plus str.find on
longer ones. Which way a text is searched is a matter of speed only; both must find the same place."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from loadbalancer.toolcalls.arguments import build_tool_index
from loadbalancer.toolcalls.detectors import detector_table, table

TOOLS = [{"name": name, "input_schema": {"type": "object"}}
         for name in ("read_file", "read", "write_file", "bash", "grep")]
PIECES = ["The function reads the request. ", "x", " ", "\n", "\n  ", "\t", "(", ")", "<", "[", "]", "{", "`",
          "*", "◁", "functools", "funct", "read_file(", "read(", "bash (", "\nread_file(", "\n bash(",
          "\ngrep", "writ", "<tool_call>", "[TOOL_CALLS]", "```json\n", '{"name": "bash"}']


def both_ways(text: str, start: int, end: int, line_start: bool, mode: str = "auto"):
    triggers = detector_table(build_tool_index(TOOLS), mode)
    found = []
    for short in (0, len(text) + 1):  # every search split, then every search combined
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(table, "_SHORT", short)
            found.append(triggers.next_trigger(text, start, end, line_start))
    return found


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=40), data=st.data(), line_start=st.booleans())
def test_the_split_search_finds_what_the_combined_one_finds(pieces, data, line_start):
    text = "".join(pieces)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    split, combined = both_ways(text, start, end, line_start)
    assert split == combined


@pytest.mark.parametrize("text, expected", [
    ("plain prose with nothing in it " * 10, None),
    ("prose " * 20 + "<tool_call>", 120),
    ("prose " * 20 + "\n  bash(", 121),  # the tool line begins after its newline
    ("prose " * 20 + "import functools", 127),
    ("functools " + "prose " * 20, 0),
    ("code(a)[0] " * 12, 7),
])
def test_an_answer_sized_text_is_searched_the_fast_way_with_the_same_answer(text, expected):
    assert len(text) >= table._SHORT  # what an answer's text is: longer than the combined search pays for
    assert both_ways(text, 0, len(text), line_start=False) == [expected, expected]
