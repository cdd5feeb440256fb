"""The detectors of one request, indexed by how their openers begin, and the triggers that find candidates.

The parser asks only the detectors whose opener begins like the text at hand. Triggers are the
characters and words that can begin a marker; a line that starts with one of the request's tool
names and a parenthesis is a trigger too (Granite's call lines). While a text may still grow, the
start of a word marker (or of such a line) at its very end is held back.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadbalancer.toolcalls.scan import NEED_MORE, Detection, DetectorResult, Markup, ScanContext

NAME_OPENER = "\x00name"      # stands for "a tool name at a line start" among a detector's openers
_KEY = 4                      # detectors are looked up by this many first characters of their openers
# Below this many characters one combined trigger search is cheapest; above it the alternation
# costs more per character than a character class plus str.find (a 1.3 KB answer text: 22 µs
# against 6; the two cross at about 50 characters, so only short stream deltas take it).
_SHORT = 64


@dataclass(frozen=True)
class Entry:
    """One detector: the literals it may start with and the formats it can report (none: markup)."""

    detect: Callable[[str, int, ScanContext], DetectorResult]
    openers: tuple[str, ...]
    formats: frozenset[str] = frozenset()


class DetectorTable:
    """The detectors of one request (its mode and tool names), most specific first."""

    def __init__(self, entries: Sequence[Entry], tool_names: Sequence[str], mode: str = "auto") -> None:
        self._mode = mode
        self._by_prefix: dict[str, list[Entry]] = {}   # by the first (up to) _KEY characters of an opener
        self._named: list[Entry] = [entry for entry in entries if NAME_OPENER in entry.openers]
        self._order = {entry: position for position, entry in enumerate(entries)}
        self._candidates: dict[str, tuple[Entry, ...]] = {}
        openers = [opener for entry in entries for opener in entry.openers if opener != NAME_OPENER]
        for entry in entries:
            for opener in entry.openers:
                if opener != NAME_OPENER:
                    bucket = self._by_prefix.setdefault(opener[:_KEY], [])
                    bucket.append(entry) if entry not in bucket else None
        marker_chars = sorted({opener[0] for opener in openers if not opener[0].isalnum()})
        self._words = sorted({opener for opener in openers if opener[0].isalnum()}, key=len, reverse=True)
        self._trigger = re.compile("|".join(["[" + re.escape("".join(marker_chars)) + "]"]
                                            + [re.escape(word) for word in self._words]))
        self._marker_chars = re.compile("[" + re.escape("".join(marker_chars)) + "]")
        self._prefixes = {opener[:size] for opener in openers for size in range(1, len(opener))}
        self._longest = max(map(len, openers))
        names = sorted(tool_names, key=len, reverse=True) if self._named else []
        # a delta with none of these characters cannot begin a marker (tool lines are checked apart)
        stop_chars = "".join(marker_chars) + "".join({word[0] for word in self._words})
        self._fast_stop = re.compile("[" + re.escape(stop_chars) + "]")
        self._line_call = self._line_call_at = self._line_partial = None
        self._combined = self._trigger
        if names:
            alternatives = "|".join(map(re.escape, names))
            prefixes = sorted({name[:size] for name in names for size in range(1, len(name) + 1)}, key=len, reverse=True)
            self._line_call = re.compile(rf"\n[ \t]*(?:{alternatives})[ \t]*\(")
            self._line_call_at = re.compile(rf"[ \t]*(?:{alternatives})[ \t]*\(")
            self._combined = re.compile(self._trigger.pattern + "|" + self._line_call.pattern)
            self._line_partial = re.compile(r"[ \t]*(?:" + "|".join(map(re.escape, prefixes)) + "|"
                                            + "|".join(re.escape(name) + r"[ \t]+" for name in names) + r")\Z")

    def is_plain(self, delta: str, line_start: bool) -> bool:
        """A quick yes for a delta in which nothing can begin a marker (the parser's fast path)."""
        if self._fast_stop.search(delta) is not None:
            return False
        if self._line_call is None:
            return True
        if line_start and (self._line_call_at.match(delta) or self._line_partial.match(delta)):
            return False
        if "\n" not in delta:
            return True
        return not (self._line_call.search(delta) or self._line_partial.match(delta, delta.rfind("\n") + 1))

    def next_trigger(self, text: str, start: int, end: int, line_start: bool) -> int | None:
        """Where the first possible marker in text[start:end] begins."""
        if line_start and self._line_call_at is not None and self._line_call_at.match(text, start, end):
            return start
        if end - start < _SHORT:  # one search is cheapest on a short text, whatever its alternatives
            found = self._combined.search(text, start, end)
            return None if found is None else found.start() + (text[found.start()] == "\n")
        found = self._marker_chars.search(text, start, end)
        stop = found.start() if found else None
        for word in self._words:  # on a long text str.find beats an alternation in the pattern
            position = text.find(word, start, end if stop is None else stop + len(word) - 1)
            if position >= 0 and (stop is None or position < stop):
                stop = position
        if self._line_call is not None:
            line = self._line_call.search(text, start, end if stop is None else stop)
            if line is not None:
                return line.start() + 1
        return stop

    def trigger_at(self, text: str, position: int, line_start: bool) -> bool:
        """Whether a possible marker begins exactly at position."""
        if self._trigger.match(text, position) is not None:
            return True
        return line_start and self._line_call_at is not None and self._line_call_at.match(text, position) is not None

    def trigger_length(self, text: str, position: int) -> int:
        """Length of the trigger at position (one character when none matches)."""
        found = self._trigger.match(text, position)
        if found is None and self._line_call_at is not None:
            found = self._line_call_at.match(text, position)
        return len(found.group()) if found else 1

    def plain_text_end(self, text: str, start: int, line_start: bool, final: bool = False) -> int:
        """How much of text is certainly prose: up to the first trigger, or before a marker's start at its end."""
        found = self.next_trigger(text, start, len(text), line_start)
        if found is not None:
            return found
        return len(text) if final else len(text) - self.partial_tail(text, start, line_start)

    def partial_tail(self, text: str, start: int, line_start: bool) -> int:
        """Length of an end of text that could grow into a word marker or a tool call line."""
        longest = 0
        for word in self._words:
            found = text.find(word[0], max(start, len(text) - len(word) + 1))
            while found >= 0:
                if word.startswith(text[found:]):
                    longest = max(longest, len(text) - found)
                    break
                found = text.find(word[0], found + 1)
        if self._line_partial is not None:
            newline = text.rfind("\n", start)
            line_begin = newline + 1 if newline >= 0 else start if line_start else -1
            if line_begin >= 0 and self._line_partial.match(text, line_begin):
                longest = max(longest, len(text) - line_begin)
        return longest

    def detect(self, text: str, start: int, context: ScanContext, calls_only: bool) -> DetectorResult:
        """The first detector's answer at start (markup detectors skipped when calls_only)."""
        if not context.final and len(text) - start < self._longest and text[start:] in self._prefixes:
            return NEED_MORE  # the text so far is the beginning of an opener
        for entry in self._entries_for(text[start:start + _KEY]):
            if calls_only and not entry.formats:
                continue
            result = entry.detect(text, start, context)
            if result is NEED_MORE:
                return NEED_MORE
            if isinstance(result, Markup) or isinstance(result, Detection) and self._mode in ("auto", result.format):
                return result
        return None

    def _entries_for(self, key: str) -> tuple[Entry, ...]:
        entries = self._candidates.get(key)
        if entries is None:
            found = [entry for size in range(1, len(key) + 1) for entry in self._by_prefix.get(key[:size], ())]
            if key[:1].isalpha() or key[:1] in ("_", " ", "\t"):
                found += self._named
            entries = tuple(sorted(set(found), key=self._order.__getitem__))
            self._candidates[key] = entries
        return entries
