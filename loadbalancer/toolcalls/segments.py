"""What the parser splits an answer into: prose, reasoning and tool calls."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextSegment:
    """Prose of the answer."""

    text: str


@dataclass(frozen=True)
class ReasoningSegment:
    """Reasoning the model wrote as text (<think>…</think> and its kin), markers removed."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A tool call found in the text; markup is the text to show instead if the call is rejected."""

    name: str
    input: dict
    format: str
    repaired: bool
    missing: tuple[str, ...]
    markup: str = field(default="", compare=False)
    block: int = field(default=0, compare=False)


Segment = TextSegment | ReasoningSegment | ToolCall


def merge_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Join adjacent TextSegments and adjacent ReasoningSegments."""
    merged: list[Segment] = []
    for segment in segments:
        previous = merged[-1] if merged else None
        if isinstance(segment, TextSegment) and isinstance(previous, TextSegment):
            merged[-1] = TextSegment(previous.text + segment.text)
        elif isinstance(segment, ReasoningSegment) and isinstance(previous, ReasoningSegment):
            merged[-1] = ReasoningSegment(previous.text + segment.text)
        else:
            merged.append(segment)
    return merged
